"""The one RFM statement rendered for Athena: valid Athena/Trino SQL, Athena v3 functions only, and,
transpiled back to DuckDB, exactly the table the DuckDB statement gives on the real Online Retail log."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlglot

from rfm.cloud.athena import AthenaConfig, athena_rfm_query
from rfm.cloud.dialects import (
    ATHENA_V3_FUNCTIONS,
    DialectError,
    check_athena_functions,
    functions_used,
    render,
    render_athena,
    to_duckdb,
)
from rfm.data.engine import connect, quote_identifier
from rfm.data.ingest import ingest
from rfm.data.query import rfm_sql
from rfm.data.sources import load_source
from rfm.data.table import RfmOptions, compute_rfm, result_from_frame

OPTIONS = [
    RfmOptions(),
    RfmOptions(returns="exclude"),
    RfmOptions(snapshot=date(2011, 9, 1)),
    RfmOptions(snapshot=date(2011, 12, 10), returns="exclude"),
]


@pytest.mark.parametrize("cleaned", [False, True])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_athena_rendering_parses_as_athena_and_trino(cleaned: bool, options: RfmOptions) -> None:
    sql = rfm_sql('"source_lines"', cleaned=cleaned, snapshot=options.snapshot, returns=options.returns)
    query = render_athena(sql)
    for dialect in ("athena", "trino"):
        assert sqlglot.parse_one(query.sql, read=dialect) is not None
    assert functions_used(sqlglot.parse_one(query.sql, read="athena")) <= ATHENA_V3_FUNCTIONS
    # The snapshot date travels as a parameter, never as text in the statement.
    assert query.sql.count("?") == len(query.parameters)
    assert bool(query.parameters) == bool(options.snapshot)
    if options.snapshot:
        assert set(query.parameters) == {f"'{options.snapshot.isoformat()}'"}
        assert options.snapshot.isoformat() not in query.sql
    # Recency is a whole-day difference of DATE values in both engines.
    assert re.search(r"DATE_DIFF\(\s*'DAY'", query.sql)


def test_function_missing_from_athena_is_refused() -> None:
    # DuckDB's exact median renders as PERCENTILE_CONT, which Athena v3 lacks.
    with pytest.raises(DialectError, match="PERCENTILE_CONT"):
        render_athena("SELECT quantile_cont(amount, 0.5) AS median FROM lines")
    with pytest.raises(DialectError, match="PERCENTILE_CONT"):
        render("SELECT median(amount) FROM lines", "athena")
    with pytest.raises(DialectError, match="unknown engine"):
        render("SELECT 1", "postgres")


def test_null_treatment_outside_windows_is_not_rendered_for_athena() -> None:
    """Trino rejects `ARBITRARY(x) IGNORE NULLS` without OVER; DuckDB's any_value must not produce it."""
    with pytest.raises(DialectError, match="IGNORE/RESPECT NULLS"):
        check_athena_functions("SELECT ARBITRARY(x) IGNORE NULLS FROM t")
    raw = render_athena(rfm_sql('"source_lines"', cleaned=False)).sql
    assert "IGNORE NULLS" not in raw.upper()
    assert "ARBITRARY(" in render_athena("SELECT any_value(x) FROM t").sql


def _run_athena_in_duckdb(con: duckdb.DuckDBPyConnection, sql: str, parameters: tuple[str, ...]) -> pd.DataFrame:
    """Run an Athena statement in DuckDB: transpile back, bind the ISO-date parameters."""
    values = [p.strip("'") for p in parameters]
    return con.execute(to_duckdb(sql), values).df()


@pytest.mark.realdata
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_athena_rendering_gives_the_duckdb_table_on_online_retail(
    online_retail_parquet: Path, options: RfmOptions
) -> None:
    """Raw log: the full statement (cleaning rules included) through Athena SQL and back."""
    con = connect()
    try:
        source = load_source(con, [online_retail_parquet])
        sql = rfm_sql(quote_identifier(source.view), snapshot=options.snapshot, returns=options.returns)
        expected = con.execute(sql).df()
        query = render_athena(sql)
        assert query.sql != sql
        actual = _run_athena_in_duckdb(con, query.sql, query.parameters)
    finally:
        con.close()
    assert len(expected) > 3000
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


@pytest.mark.realdata
def test_statement_sent_to_athena_gives_the_duckdb_table(online_retail_parquet: Path, tmp_path: Path) -> None:
    """The exact statement `rfm table --source athena` sends (over the cleaned log in a database
    table, with renamed columns) gives the table `rfm table --data` computes from the raw file."""
    cleaned = tmp_path / "cleaned.parquet"
    ingest([online_retail_parquet], cleaned)
    options = RfmOptions(snapshot=date(2011, 12, 1), returns="net")
    expected = compute_rfm([online_retail_parquet], options=options).table

    config = AthenaConfig(database="retail", table="lines",
                          columns=(("customer_id", "cust"), ("amount", "line_total")))
    query = athena_rfm_query(config, options)
    con = connect()
    try:
        con.execute("CREATE SCHEMA retail")
        con.execute(
            "CREATE VIEW retail.lines AS SELECT customer_id AS cust, invoice_id, invoice_date, "
            f"amount AS line_total FROM read_parquet('{cleaned}')"
        )
        frame = _run_athena_in_duckdb(con, query.sql, query.parameters)
    finally:
        con.close()
    actual = result_from_frame(frame, options, where="athena").table
    assert len(actual) > 4000
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
