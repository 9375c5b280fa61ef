"""The embedded DuckDB connection, set up the same way everywhere.

Extensions are never downloaded at run time (locked-down machines cannot), time stamps are read in
UTC so that DATE values do not depend on the machine's time zone, and the memory limit can be set
for large logs (DuckDB spills to disk beyond it). Nothing here reads the environment: callers pass
`Settings.duckdb_memory_limit` (RFM_DUCKDB_MEMORY_LIMIT, see rfm.config).

Threads: DuckDB's hash aggregation radix-partitions its tables into cache-sized pieces only when it runs
more than 2 threads (`GROW_STRATEGY_THREAD_THRESHOLD` in its source); with 1 or 2 it grows one table per
thread, which is about 3x slower when nearly every group is new, as in the de-duplication of a raw log
(7.5 million lines, 7.3 million distinct). So on a 2-core machine without a memory limit a connection
runs 3 threads: the raw 10-million-line RFM query 2.46 s -> 2.00 s (median of 5, alternating), the
timeline's per-day pass 2.13 s -> 1.55 s, less memory (0.59 -> 0.45 GiB); the cleaned log's query and,
at 10 million lines, `rfm ingest`'s copy are unchanged. Not with a memory limit: each thread's share
of it shrinks, and at 100 million lines under 3 GB the query spilled more (25-27 s -> 28-35 s). Not on
1 core: 3 threads there took 4.8 s against 3.9 s for one. Not for `rfm ingest`'s sorted copy
(`own_threads`): at 100 million lines it took 107 s with 3 threads against 73 s with 2; in the log's
own order 26.0-28.7 s against 24.6-24.8 s (the copy alone, under 3 GB). But for its
narrow pass over the repeated line keys (`partitioned_aggregation`), even under 3 GB: 100 million lines
10.5-10.8 s with 2 threads, 8.1-8.5 s with 3 (alternating).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb


def threads_for(detected: int, memory_limit: str | None) -> int | None:
    """The threads a connection should run when the caller names none, given the cores DuckDB detected
    (its default thread count): 3 on a 2-core machine without a memory limit (see the module's
    docstring), else None (DuckDB's default)."""
    return 3 if detected == 2 and not memory_limit else None


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection; `memory_limit` (e.g. "4GB") caps DuckDB's memory, `threads`
    its threads (when None: `threads_for` the cores DuckDB detects)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    if not threads:
        row = first_row(con.execute("SELECT current_setting('threads')"))
        chosen = threads_for(int(row[0]), memory_limit) if row else None
        if chosen:
            con.execute(f"SET threads = {chosen}")
    return con


def own_threads(con: duckdb.DuckDBPyConnection) -> None:
    """Back to DuckDB's own thread count (the cores), for work that sorts and writes rather than
    aggregates: `rfm ingest`'s copy gains nothing from a third thread on 2 cores and loses at scale."""
    con.execute("RESET threads")


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, the result read to its end: a result left open (`fetchone`) makes
    the connection refuse other work, such as registering a DataFrame."""
    rows = result.fetchall()
    return rows[0] if rows else None


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB SQL (source headers may hold spaces or quotes)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for DuckDB SQL (used for file paths, which cannot be bound)."""
    return "'" + value.replace("'", "''") + "'"


@contextmanager
def partitioned_aggregation(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """3 threads on a 2-core machine inside the block, whatever the memory limit, then the connection's
    threads again: for a narrow aggregation whose groups are nearly all new (see the module's docstring)."""
    row = first_row(con.execute("SELECT current_setting('threads')"))
    con.execute("RESET threads")
    cores = first_row(con.execute("SELECT current_setting('threads')"))
    chosen = threads_for(int(cores[0]), memory_limit=None) if cores else None  # as if there were no limit
    if chosen:
        con.execute(f"SET threads = {chosen}")
    try:
        yield
    finally:
        if row:
            con.execute(f"SET threads = {int(row[0])}")
