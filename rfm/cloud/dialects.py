"""Rendering the one RFM query (written in DuckDB SQL) for another engine with sqlglot.

rfm/data/query.py writes each statement once. Athena (engine version 3, i.e. Trino) gets the same statement
transpiled by sqlglot, then checked: every function in the result must be one Athena v3 has (sqlglot
renders DuckDB's exact `quantile_cont` as `PERCENTILE_CONT`, which Athena would reject at run time),
so a statement that cannot run there fails here, with the function named, before any query is sent.

Values are bound as execution parameters, never pasted into Athena SQL: `bind_date_literals` turns
the statement's `DATE 'YYYY-MM-DD'` literals (the snapshot date) into `CAST(? AS DATE)` placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from rfm.errors import RfmError, first_line

SOURCE_DIALECT = "duckdb"
ENGINES: tuple[str, ...] = ("duckdb", "athena")

# Functions of Athena engine version 3 (Trino) that RFM statements may use. Kept short on purpose:
# a function is added after checking the Athena v3 / Trino function reference (and the semantics:
# e.g. Trino's `/` on DECIMAL keeps the scale, so sqlglot's CAST(... AS DOUBLE) must stay).
ATHENA_V3_FUNCTIONS: frozenset[str] = frozenset({
    # aggregate
    "APPROX_DISTINCT", "APPROX_PERCENTILE", "ARBITRARY", "AVG", "COUNT", "COUNT_IF", "MAX", "MIN",
    "STDDEV", "STDDEV_POP", "STDDEV_SAMP", "SUM", "VARIANCE", "VAR_POP", "VAR_SAMP",
    # window
    "CUME_DIST", "DENSE_RANK", "FIRST_VALUE", "LAG", "LAST_VALUE", "LEAD", "NTILE", "PERCENT_RANK",
    "RANK", "ROW_NUMBER",
    # conversion and conditional
    "CAST", "TRY_CAST", "COALESCE", "NULLIF", "IF", "GREATEST", "LEAST",
    # math
    "ABS", "CEIL", "CEILING", "EXP", "FLOOR", "LN", "LOG10", "MOD", "POWER", "ROUND", "SQRT",
    "TRUNCATE",
    # date and time
    "CURRENT_DATE", "DATE_ADD", "DATE_DIFF", "DATE_FORMAT", "DATE_PARSE", "DATE_TRUNC", "DAY",
    "FROM_ISO8601_DATE", "MONTH", "YEAR",
    # string
    "CONCAT", "LENGTH", "LOWER", "REGEXP_LIKE", "REGEXP_REPLACE", "REPLACE", "STRPOS", "SUBSTR",
    "TRIM", "UPPER",
})

# Syntax that sqlglot models as function nodes but that is not a function call in Trino
# (CASE branches, AND/OR, operators).
_SYNTAX_NODES: tuple[type[exp.Expr], ...] = (exp.Case, exp.If, exp.Interval, exp.Connector,
                                              exp.Binary, exp.Predicate)
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


class DialectError(RfmError):
    """The statement cannot be rendered for the engine (a function the engine lacks, a parse error)."""


@dataclass(frozen=True)
class RenderedQuery:
    """A statement for one engine and the values bound to its `?` placeholders, in order."""

    engine: str
    sql: str
    parameters: tuple[str, ...] = ()


def render(sql: str, engine: str, *, pretty: bool = True) -> RenderedQuery:
    """`sql` (DuckDB dialect) for `engine`; Athena output is checked against ATHENA_V3_FUNCTIONS."""
    if engine not in ENGINES:
        raise DialectError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "duckdb":
        return RenderedQuery("duckdb", sql)
    tree = _for_trino(_parse(sql, SOURCE_DIALECT))
    rendered = tree.sql(dialect="athena", pretty=pretty)
    check_athena_functions(rendered)
    return RenderedQuery("athena", rendered)


def render_athena(sql: str, *, bind_dates: bool = True, pretty: bool = True) -> RenderedQuery:
    """`sql` for Athena, with its DATE literals bound as execution parameters (Athena's own
    `ExecutionParameters`: each value is a SQL literal, here a quoted ISO date)."""
    tree = _for_trino(_parse(sql, SOURCE_DIALECT))
    parameters: tuple[str, ...] = ()
    if bind_dates:
        tree, dates = bind_date_literals(tree)
        parameters = tuple(f"'{d.isoformat()}'" for d in dates)
    rendered = tree.sql(dialect="athena", pretty=pretty)
    check_athena_functions(rendered)
    return RenderedQuery("athena", rendered, parameters)


def bind_date_literals(tree: exp.Expr) -> tuple[exp.Expr, list[date]]:
    """Replace every `DATE 'YYYY-MM-DD'` literal by a placeholder; return the dates in SQL order."""
    tree = tree.copy()
    dates: list[date] = []
    for cast in list(tree.find_all(exp.Cast)):
        literal = cast.this
        if (
            isinstance(literal, exp.Literal)
            and literal.is_string
            and cast.to.is_type(exp.DataType.Type.DATE)
        ):
            try:
                value = date.fromisoformat(literal.this)
            except ValueError:
                continue
            dates.append(value)
            literal.replace(exp.Placeholder())
    # find_all walks breadth-first; parameters must follow the placeholders' order in the text.
    positions = [node for node in tree.find_all(exp.Placeholder)]
    if len(positions) != len(dates):
        raise DialectError("the statement already holds placeholders; cannot bind its dates")
    return tree, _in_text_order(tree, dates)


def check_athena_functions(sql: str) -> None:
    """Raise DialectError when `sql` (Athena dialect) calls a function missing from Athena v3."""
    tree = _parse(sql, "athena")
    for node in tree.find_all(exp.IgnoreNulls, exp.RespectNulls):
        if not isinstance(node.parent, exp.Window):
            raise DialectError(
                f"Athena accepts IGNORE/RESPECT NULLS only on window functions: {node.sql(dialect='athena')}"
            )
    unknown = sorted(name for name in functions_used(tree) if name not in ATHENA_V3_FUNCTIONS)
    if unknown:
        raise DialectError(
            f"the query uses {', '.join(unknown)}, which Athena engine version 3 does not provide "
            "(or which is not checked yet); rewrite it with portable functions"
        )


def functions_used(tree: exp.Expr, dialect: str = "athena") -> set[str]:
    """Upper-case names of the functions called in `tree`, as `dialect` spells them."""
    names: set[str] = set()
    for node in tree.find_all(exp.Func):
        if isinstance(node, _SYNTAX_NODES):
            continue
        if isinstance(node, exp.Anonymous):
            names.add(str(node.name).upper())
            continue
        text = node.sql(dialect=dialect)
        match = _CALL.match(text)
        if match:
            names.add(match.group(1).upper())
        elif re.fullmatch(r"[A-Za-z_]+", text.strip()):  # CURRENT_DATE and the like, no parentheses
            names.add(text.strip().upper())
    return names


def to_duckdb(athena_sql: str) -> str:
    """An Athena statement back in DuckDB SQL (used by the tests to run the Athena rendering)."""
    return _parse(athena_sql, "athena").sql(dialect="duckdb")


def _for_trino(tree: exp.Expr) -> exp.Expr:
    """Rewrites sqlglot does not do: DuckDB's any_value skips NULLs, and sqlglot renders it as
    `ARBITRARY(x) IGNORE NULLS`, which Trino rejects outside a window; Trino's arbitrary already
    returns a non-null value, so the modifier is dropped there."""
    tree = tree.copy()
    for node in list(tree.find_all(exp.IgnoreNulls)):
        if isinstance(node.this, exp.AnyValue) and not isinstance(node.parent, exp.Window):
            node.replace(node.this)
    return tree


def _parse(sql: str, dialect: str) -> exp.Expr:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError as exc:
        raise DialectError(f"cannot parse the query as {dialect} SQL: {first_line(exc)}") from exc
    if tree is None:
        raise DialectError(f"empty {dialect} statement")
    return tree


def _in_text_order(tree: exp.Expr, dates: list[date]) -> list[date]:
    """`dates` (collected in tree-walk order) re-ordered as their placeholders appear in the SQL."""
    if len(dates) <= 1:
        return dates
    # Mark each placeholder with its walk index, render, and read the indexes back in text order.
    marked = tree.copy()
    for index, node in enumerate(list(marked.find_all(exp.Placeholder))):
        node.replace(exp.Literal.string(f"__rfm_param_{index}__"))
    order = [int(m) for m in re.findall(r"__rfm_param_(\d+)__", marked.sql(dialect="athena"))]
    return [dates[i] for i in order]
