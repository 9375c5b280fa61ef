"""The embedded DuckDB connection, set up the same way everywhere.

Extensions are never downloaded at run time (locked-down machines cannot), time stamps are read in
UTC so that DATE values do not depend on the machine's time zone, and the memory limit can be set
for large logs (DuckDB spills to disk beyond it).
"""

from __future__ import annotations

import os

import duckdb


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection; `RFM_DUCKDB_MEMORY_LIMIT` sets the default memory limit."""
    config: dict[str, str | bool | int] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    memory_limit = memory_limit or os.environ.get("RFM_DUCKDB_MEMORY_LIMIT")
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB SQL (source headers may hold spaces or quotes)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for DuckDB SQL (used for file paths, which cannot be bound)."""
    return "'" + value.replace("'", "''") + "'"
