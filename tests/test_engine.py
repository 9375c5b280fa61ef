"""The embedded DuckDB connection: threads chosen for DuckDB's aggregation strategy, same answers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rfm.data.engine import connect, own_threads, partitioned_aggregation, quote_identifier, threads_for
from rfm.data.query import rfm_sql
from rfm.data.sources import opened_source


@pytest.mark.parametrize(("detected", "memory_limit", "expected"), [
    (2, None, 3),  # DuckDB partitions its hash tables from 3 threads on
    (2, "3GB", None),  # under a limit fewer threads spill less
    (1, None, None),  # one core: 3 threads were slower
    (4, None, None),
    (16, None, None),
])
def test_threads_for(detected: int, memory_limit: str | None, expected: int | None) -> None:
    assert threads_for(detected, memory_limit) == expected


def _threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    return int(row[0])


def test_connections_run_the_chosen_threads() -> None:
    detected = _threads(duckdb.connect())
    assert _threads(connect()) == (threads_for(detected, None) or detected)
    assert _threads(connect("2GB")) == detected
    assert _threads(connect(threads=1)) == 1
    con = connect()
    own_threads(con)  # `rfm ingest`'s sorted copy runs DuckDB's own thread count
    assert _threads(con) == detected


def test_the_repeated_keys_pass_runs_3_threads_on_2_cores_then_the_connection_s_again() -> None:
    detected = _threads(duckdb.connect())
    con = connect("2GB", threads=1)
    with partitioned_aggregation(con):
        assert _threads(con) == (3 if detected == 2 else detected)
    assert _threads(con) == 1


def test_the_rfm_table_does_not_depend_on_the_threads(demo_parquet: Path) -> None:
    """The de-duplication and every aggregate give the same table under either strategy."""
    with opened_source([str(demo_parquet)]) as (con, loaded):
        statement = f"SELECT * FROM ({rfm_sql(quote_identifier(loaded.view))}) ORDER BY customer_id"
        tables = []
        for threads in (1, 2, 3, 4):
            con.execute(f"SET threads = {threads}")
            tables.append(con.execute(statement).fetchall())
    assert len(tables[0]) > 100
    assert all(table == tables[0] for table in tables[1:])
