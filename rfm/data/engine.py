"""The embedded DuckDB connection, set up the same way everywhere.

Extensions are never downloaded at run time (locked-down machines cannot), time stamps are read in
UTC so that DATE values do not depend on the machine's time zone, and the memory limit can be set
for large logs (DuckDB spills to disk beyond it). Nothing here reads the environment: callers pass
`Settings.duckdb_memory_limit` (RFM_DUCKDB_MEMORY_LIMIT, see rfm.config).
"""

from __future__ import annotations

from typing import Any

import duckdb


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection; `memory_limit` (e.g. "4GB") caps DuckDB's memory, `threads`
    its threads (DuckDB's defaults when None)."""
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
    return con


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
