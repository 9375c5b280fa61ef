"""Segments over time on the real UCI Online Retail log, against an independent pandas computation.

Migration, trend and validation (for the R x F grid and for a K-Means model) must equal what plain
pandas computes from the raw file with the cleaning rules and RFM definitions written out here: exact
customer counts, revenue to the cent. The same questions sent "to Athena" (the rendered statements,
transpiled back and run by DuckDB over the cleaned log in a database table) give the same tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from rfm.cloud.athena import AthenaConfig
from rfm.cloud.dialects import ATHENA_V3_FUNCTIONS, RenderedQuery, functions_used, render_athena, to_duckdb
from rfm.data import timeline as sql
from rfm.data.engine import connect
from rfm.data.ingest import ingest
from rfm.model import SegmentModel, train_model
from rfm.model.sweep import sweep
from rfm.segments import segment_of
from rfm.service import timeline
from rfm.service.datasets import AthenaSource, FileSource

pytestmark = pytest.mark.realdata

START, END = date(2011, 9, 1), date(2011, 12, 1)
SNAPSHOT, HORIZON = date(2011, 9, 1), 90
NOT_YET = "not yet a customer"


# --- the independent computation ------------------------------------------------------------------


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """The cleaning rules in pandas: a customer, a positive price, exact duplicates dropped, then
    purchases (quantity > 0, not a C invoice) and returns (quantity < 0, a C invoice) only."""
    df = raw[raw["CustomerID"].notna() & (raw["UnitPrice"] > 0)].drop_duplicates()
    cancel = df["InvoiceNo"].astype(str).str.upper().str.startswith("C")
    df = df[((df["Quantity"] > 0) & ~cancel) | ((df["Quantity"] < 0) & cancel)]
    return pd.DataFrame({
        "customer_id": df["CustomerID"].astype("int64").astype(str),
        "invoice": df["InvoiceNo"].astype(str),
        "day": df["InvoiceDate"].dt.normalize(),
        "amount": df["Quantity"] * df["UnitPrice"],
    })


def money(lines: pd.DataFrame, returns: str) -> pd.DataFrame:
    """The lines that count as revenue: all (net) or purchases only (exclude)."""
    return lines if returns == "net" else lines[lines["amount"] > 0]


def rfm_at(lines: pd.DataFrame, snapshot: date, returns: str, model: SegmentModel | None) -> pd.DataFrame:
    """The RFM table at `snapshot` from lines before it, with the segment (grid, or the model's)."""
    at = pd.Timestamp(snapshot)
    before = lines[lines["day"] < at]
    purchases = before[before["amount"] > 0]
    grouped = purchases.groupby("customer_id")
    table = pd.DataFrame({"recency": (at - grouped["day"].max()).dt.days,
                          "frequency": grouped["invoice"].nunique()})
    table["monetary"] = money(before, returns).groupby("customer_id")["amount"].sum().reindex(table.index)
    table["monetary"] = table["monetary"].fillna(0.0).round(2)
    n = len(table)
    for column, score, ascending in (("recency", "r_score", False), ("frequency", "f_score", True)):
        rank = table[column].rank(method="min", ascending=ascending)
        table[score] = (np.floor(5 * (rank - 1) / n) + 1).astype(int)
    if model is None:
        table["segment"] = [segment_of(r, f) for r, f in zip(table["r_score"], table["f_score"], strict=True)]
    else:
        table["segment"] = model.predict_names(table[["recency", "frequency", "monetary"]].to_numpy())
    return table


def window_revenue(lines: pd.DataFrame, start: date, end: date, returns: str) -> pd.Series:
    inside = lines[(lines["day"] >= pd.Timestamp(start)) & (lines["day"] < pd.Timestamp(end))]
    return money(inside, returns).groupby("customer_id")["amount"].sum()


def pandas_migration(lines: pd.DataFrame, returns: str, model: SegmentModel | None) -> pd.DataFrame:
    before, after = rfm_at(lines, START, returns, model), rfm_at(lines, END, returns, model)
    frame = pd.DataFrame({"from_segment": before["segment"].reindex(after.index).fillna(NOT_YET),
                          "to_segment": after["segment"],
                          "revenue": window_revenue(lines, START, END, returns).reindex(after.index).fillna(0.0)})
    return frame.groupby(["from_segment", "to_segment"]).agg(customers=("revenue", "size"),
                                                             revenue=("revenue", "sum"))


def pandas_trend(lines: pd.DataFrame, returns: str, model: SegmentModel | None) -> pd.DataFrame:
    rows = []
    ends = [date(2011, month, 1) for month in range(1, 13)]
    for start, end in zip([date(2010, 12, 1), *ends[:-1]], ends, strict=True):
        table = rfm_at(lines, end, returns, model)
        table["revenue"] = window_revenue(lines, start, end, returns).reindex(table.index).fillna(0.0)
        grouped = table.groupby("segment").agg(customers=("revenue", "size"), revenue=("revenue", "sum"),
                                               monetary=("monetary", "sum"))
        grouped["snapshot"] = end
        rows.append(grouped.reset_index())
    return pd.concat(rows).set_index(["snapshot", "segment"]).sort_index()


def pandas_validation(lines: pd.DataFrame, returns: str, model: SegmentModel | None) -> pd.DataFrame:
    table = rfm_at(lines, SNAPSHOT, returns, model)
    end = SNAPSHOT + timedelta(days=HORIZON)
    inside = lines[(lines["day"] >= pd.Timestamp(SNAPSHOT)) & (lines["day"] < pd.Timestamp(end))]
    buyers = set(inside.loc[inside["amount"] > 0, "customer_id"])
    table["bought"] = [c in buyers for c in table.index]
    table["revenue"] = window_revenue(lines, SNAPSHOT, end, returns).reindex(table.index).fillna(0.0)
    return table.groupby("segment").agg(customers=("bought", "size"), repeat_customers=("bought", "sum"),
                                        revenue=("revenue", "sum"))


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lines(online_retail_parquet: Path) -> pd.DataFrame:
    return clean(pd.read_parquet(online_retail_parquet))


@pytest.fixture(scope="module")
def model(retail: Any) -> SegmentModel:
    """A k=4 model trained on the whole log (applied at every snapshot, as `--by model` does)."""
    return train_model(retail, 4)


@pytest.fixture(scope="module")
def opened(online_retail_parquet: Path) -> Iterator[dict[str, timeline.Timeline]]:
    with timeline.opened(FileSource((str(online_retail_parquet),)), "net") as net, \
            timeline.opened(FileSource((str(online_retail_parquet),)), "exclude") as exclude:
        yield {"net": net, "exclude": exclude}


def segments(by: str, model: SegmentModel) -> timeline.Segments:
    return timeline.segments_for(by, model if by == "model" else None)


def assert_cents(actual: pd.Series, expected: pd.Series) -> None:
    """Revenue to the cent: ours is rounded to cents, the pandas sum is not."""
    assert (actual.round(2) == actual).all()
    worst = float(np.abs(actual.to_numpy() - expected.to_numpy()).max())
    assert worst < 0.005, worst


BY = ["rfm", "model"]
RETURNS = ["net", "exclude"]


# --- the service against pandas ---------------------------------------------------------------------


@pytest.mark.parametrize("returns", RETURNS)
@pytest.mark.parametrize("by", BY)
def test_migration_equals_pandas(opened, lines, model, online_retail_parquet, by: str, returns: str) -> None:
    result = opened[returns].migration(START, END, segments(by, model))
    # `rfm migration`'s one-shot job (the grid's: lines de-duplicated inside the window only) answers the same
    once = timeline.migration_of(FileSource((str(online_retail_parquet),)), START, END, segments(by, model), returns)
    assert once.rows == result.rows
    ours = result.table.set_index(["from_segment", "to_segment"]).sort_index()
    expected = pandas_migration(lines, returns, model if by == "model" else None).sort_index()
    assert list(ours.index) == list(expected.index)
    assert (ours["customers"] == expected["customers"]).all()
    assert_cents(ours["revenue"], expected["revenue"])
    assert ours.loc[NOT_YET, "customers"].sum() > 100  # customers who first bought between the snapshots
    assert result.customers == len(rfm_at(lines, END, returns, None))
    # biggest moves first
    assert result.table["customers"].is_monotonic_decreasing


@pytest.mark.parametrize("by", BY)
def test_trend_equals_pandas(opened, lines, model, by: str) -> None:
    result = opened["net"].trend(segments(by, model), "month")
    assert result.snapshots == tuple(date(2011, month, 1) for month in range(1, 13))
    ours = result.table.set_index(["snapshot", "segment"]).sort_index()
    expected = pandas_trend(lines, "net", model if by == "model" else None)
    assert list(ours.index) == list(expected.index)
    assert (ours["customers"] == expected["customers"]).all()
    assert_cents(ours["revenue"], expected["revenue"])
    assert_cents(ours["monetary"], expected["monetary"])
    shares = result.table.groupby("snapshot")["share"].sum()
    assert np.allclose(shares, 1.0)
    first = result.table[result.table["snapshot"] == date(2011, 1, 1)]
    assert set(first["period_start"]) == {date(2010, 12, 1)}


@pytest.mark.parametrize("returns", RETURNS)
@pytest.mark.parametrize("by", BY)
def test_validation_equals_pandas(opened, lines, model, online_retail_parquet, by: str, returns: str) -> None:
    result = opened[returns].validate(SNAPSHOT, HORIZON, segments(by, model))
    once = timeline.validation_of(FileSource((str(online_retail_parquet),)), SNAPSHOT, HORIZON, segments(by, model),
                                  returns)
    pd.testing.assert_frame_equal(once.table, result.table)
    ours = result.table.set_index("segment").sort_index()
    expected = pandas_validation(lines, returns, model if by == "model" else None).sort_index()
    assert list(ours.index) == list(expected.index)
    assert (ours["customers"] == expected["customers"]).all()
    assert (ours["repeat_customers"] == expected["repeat_customers"]).all()
    assert (ours["repeat_rate"] == expected["repeat_customers"] / expected["customers"]).all()
    assert_cents(ours["revenue"], expected["revenue"])
    assert_cents(ours["revenue_per_customer"], expected["revenue"] / expected["customers"])
    # listed from the most valuable segment down
    assert list(result.table["segment"]) == [s for s in segments(by, model).order() if s in ours.index]


def test_k_range_explains_next_period_revenue_as_computed_by_hand(opened, lines, model) -> None:
    result = opened["net"].validate(SNAPSHOT, HORIZON, segments("model", model), k_range=(2, 5))
    assert result.explained is not None
    assert list(result.explained["k"]) == [2, 3, 4, 5]
    table = rfm_at(lines, SNAPSHOT, "net", None).sort_index()
    revenue = window_revenue(lines, SNAPSHOT, SNAPSHOT + timedelta(days=HORIZON), "net")
    y = revenue.reindex(table.index).fillna(0.0).to_numpy()
    trained = table["monetary"].to_numpy() > 0
    reference = sweep(table.reset_index()[["customer_id", "recency", "frequency", "monetary"]], 2, 5)
    for row in result.explained.itertuples(index=False):
        labels = np.full(len(table), -1)
        labels[trained] = reference.labels[row.k]
        between = sum(len(y[labels == g]) * (y[labels == g].mean() - y.mean()) ** 2 for g in np.unique(labels))
        assert row.revenue_explained == pytest.approx(between / ((y - y.mean()) ** 2).sum(), rel=1e-9)
        assert row.silhouette == pytest.approx(reference.for_k(row.k).silhouette)  # type: ignore[union-attr]
        assert 0 <= row.repeat_explained <= 1
    assert set(result.reference) == {"revenue_explained", "repeat_explained"}


def test_the_timeline_state_is_the_rfm_table(opened, retail) -> None:
    """At the default snapshot the per-customer state is exactly `rfm table`'s (scores and segments too)."""
    ours = opened["net"].customers_at(retail.snapshot, retail.snapshot, timeline.Segments())
    expected = retail.table
    assert list(ours["customer_id"]) == list(expected["customer_id"])
    for column in ("recency", "frequency", "monetary", "r_score", "f_score", "m_score"):
        assert (ours[column].to_numpy() == expected[column].to_numpy()).all(), column
    assert list(ours["segment"]) == list(expected["rfm_segment"])


def test_campaign_list_holds_exactly_the_customers_of_the_move(opened, lines, model) -> None:
    seg = segments("model", model)
    moves = opened["net"].migration(START, END, seg).table
    biggest = moves.iloc[0]
    listed = opened["net"].move_customers(START, END, seg, biggest["from_segment"], biggest["to_segment"])
    assert len(listed) == biggest["customers"]
    assert listed["revenue"].sum() == pytest.approx(biggest["revenue"], abs=0.01)
    before, after = rfm_at(lines, START, "net", model), rfm_at(lines, END, "net", model)
    start_segment = before["segment"].reindex(after.index).fillna(NOT_YET)
    expected = after.index[(start_segment == biggest["from_segment"]) & (after["segment"] == biggest["to_segment"])]
    assert sorted(listed["customer_id"]) == sorted(expected)
    assert listed["revenue"].is_monotonic_decreasing


# --- Athena: the rendered statements, transpiled back -----------------------------------------------


@pytest.fixture(scope="module")
def athena_engine(online_retail_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The cleaned log (`rfm ingest`) as the database table Athena would query, in DuckDB."""
    cleaned = tmp_path_factory.mktemp("athena") / "cleaned.parquet"
    ingest([online_retail_parquet], cleaned)
    con = connect()
    con.execute("CREATE SCHEMA retail")
    con.execute(f"CREATE VIEW retail.lines AS SELECT * FROM read_parquet('{cleaned}')")
    yield con
    con.close()


@pytest.fixture
def athena(monkeypatch: pytest.MonkeyPatch, athena_engine: duckdb.DuckDBPyConnection) -> list[RenderedQuery]:
    """Every statement the service sends "to Athena" is checked (Athena v3 functions only, dates bound as
    parameters), transpiled back to DuckDB and run there; returns the list of statements sent."""
    import rfm.cloud.athena as athena_module

    sent: list[RenderedQuery] = []

    def run_query(connection: object, query: RenderedQuery, timeout: float, *, unload: bool = False) -> pd.DataFrame:
        sent.append(query)
        assert functions_used(__import__("sqlglot").parse_one(query.sql, read="athena")) <= ATHENA_V3_FUNCTIONS
        assert "DATE '" not in query.sql  # dates travel as execution parameters
        return athena_engine.execute(to_duckdb(query.sql), [p.strip("'") for p in query.parameters]).df()

    class Connection:
        def close(self) -> None:
            pass

    monkeypatch.setattr(athena_module, "run_query", run_query)
    monkeypatch.setattr(athena_module, "connect_athena", lambda config, **kw: Connection())
    return sent


@pytest.mark.parametrize("by", BY)
def test_athena_statements_give_the_same_tables(athena, opened, model, by: str) -> None:
    seg = segments(by, model)
    source = AthenaSource(AthenaConfig(database="retail", table="lines"))
    with timeline.opened(source, "net") as log:
        pd.testing.assert_frame_equal(log.migration(START, END, seg).table,
                                      opened["net"].migration(START, END, seg).table)
        pd.testing.assert_frame_equal(log.trend(seg).table, opened["net"].trend(seg).table)
        pd.testing.assert_frame_equal(log.validate(SNAPSHOT, HORIZON, seg).table,
                                      opened["net"].validate(SNAPSHOT, HORIZON, seg).table)
        row = opened["net"].migration(START, END, seg).table.iloc[1]
        pd.testing.assert_frame_equal(
            log.move_customers(START, END, seg, row["from_segment"], row["to_segment"]),
            opened["net"].move_customers(START, END, seg, row["from_segment"], row["to_segment"]))
    # the CLI's one-shot jobs (`rfm migration` / `rfm validate --source athena`): the same tables
    assert timeline.migration_of(source, START, END, seg, "net").rows == opened["net"].migration(START, END, seg).rows
    pd.testing.assert_frame_equal(timeline.validation_of(source, SNAPSHOT, HORIZON, seg, "net").table,
                                  opened["net"].validate(SNAPSHOT, HORIZON, seg).table)
    assert len(athena) >= 5
    # one statement per question: each reads the table once (one FROM of the table, however many snapshots)
    trend = [q for q in athena if q.sql.count("?") >= 12 * 4]
    assert trend and all(q.sql.count('"retail"."lines"') == 1 for q in trend)


def test_athena_rendering_of_the_raw_log_statement_equals_duckdb(online_retail_parquet: Path, model) -> None:
    """The single statement over the raw log (cleaning rules inline) through Athena SQL and back."""
    from rfm.data.sources import load_source

    con = connect()
    try:
        view = load_source(con, [online_retail_parquet]).view
        daily = sql.inline_daily(f'"{view}"', cleaned=False, returns="exclude")
        spec = timeline.Segments(model).spec()
        for text in (sql.migration_sql(daily, START, END, spec), sql.validation_sql(daily, SNAPSHOT, END, None)):
            expected = con.execute(text).df()
            query = render_athena(text)
            actual = con.execute(to_duckdb(query.sql), [p.strip("'") for p in query.parameters]).df()
            assert len(expected) > 4
            pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    finally:
        con.close()
