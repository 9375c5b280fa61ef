"""The "Over time" page's charts: the Sankey's layout (pure arithmetic, checked against the migration
table it draws) and every chart a valid Vega-Lite spec showing the one number format."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm.dashboard import charts
from rfm.dashboard import timeline_charts as tc

NOT_YET = "not yet a customer"
ORDER = ["Champions", "Loyal", "At Risk", "Hibernating"]
COLORS = {"Champions": "#1b9e77", "Loyal": "#3d6fb6", "At Risk": "#e9a23b", "Hibernating": "#d1495b"}


def moves_table(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["from_segment", "to_segment", "customers", "revenue"])


MOVES = moves_table([
    (NOT_YET, "Loyal", 30, 900.0), ("Champions", "Champions", 50, 5000.0), ("Champions", "At Risk", 10, 100.0),
    ("Loyal", "Champions", 20, 2500.0), ("Hibernating", "Hibernating", 1800, 0.0),
    ("At Risk", "Hibernating", 15, -20.0), ("Loyal", "Loyal", 0, 0.0),
])


def band_ends(layout: tc.SankeyLayout) -> pd.DataFrame:
    """Each band's first and last point joined to its move."""
    first = layout.bands.groupby("move").first()
    last = layout.bands.groupby("move").last()
    ends = layout.links.set_index("move").join(first.add_prefix("start_")).join(last.add_prefix("end_"))
    return ends.reset_index()


def check_layout(moves: pd.DataFrame, layout: tc.SankeyLayout, order: list[str]) -> None:
    kept = moves[moves["customers"] > 0]
    total = kept["customers"].sum()
    nodes = layout.nodes
    # Every segment of each side once, with its customers; heights on one scale for both sides.
    for side, column in (("from", "from_segment"), ("to", "to_segment")):
        own = nodes[nodes["side"] == side].set_index("segment")
        assert own["customers"].to_dict() == kept.groupby(column)["customers"].sum().to_dict()
        rank = {name: i for i, name in enumerate([NOT_YET, *order])}
        assert list(own.index) == sorted(own.index, key=lambda s: (rank.get(s, len(rank)), s))
        assert (own["y0"].diff().dropna() > 0).all()  # top to bottom, in order
        assert (own["y0"].iloc[1:].to_numpy() >= own["y1"].iloc[:-1].to_numpy()).all()  # never overlapping
        assert own["y0"].min() >= -1e-9 and own["y1"].max() <= 1 + 1e-9
    heights = (nodes["y1"] - nodes["y0"]) / nodes["customers"]
    assert np.allclose(heights, heights.iloc[0])
    # Each band as wide as its customers at both ends, the bands leaving (reaching) a segment tile it exactly.
    ends = band_ends(layout)
    assert len(ends) == len(kept) and ends["customers"].sum() == total
    width = heights.iloc[0]
    assert np.allclose(ends["start_bottom"] - ends["start_top"], ends["customers"] * width)
    assert np.allclose(ends["end_bottom"] - ends["end_top"], ends["customers"] * width)
    for side, column, top, bottom in (("from", "from_segment", "start_top", "start_bottom"),
                                      ("to", "to_segment", "end_top", "end_bottom")):
        for name, group in ends.groupby(column):
            node = nodes[(nodes["side"] == side) & (nodes["segment"] == name)].iloc[0]
            spans = group.sort_values(top)
            assert spans[top].iloc[0] == pytest.approx(node["y0"])
            assert spans[bottom].iloc[-1] == pytest.approx(node["y1"])
            assert np.allclose(spans[top].iloc[1:].to_numpy(), spans[bottom].iloc[:-1].to_numpy())
    # Bands run from the left bars' edge to the right bars' edge, never thinner on the way.
    assert layout.bands["x"].min() == pytest.approx(tc.NODE_WIDTH)
    assert layout.bands["x"].max() == pytest.approx(1 - tc.NODE_WIDTH)
    thickness = layout.bands["bottom"] - layout.bands["top"]
    assert np.allclose(thickness, layout.bands["move"].map(ends.set_index("move")["customers"]) * width)


def test_sankey_layout_tiles_each_segment_with_its_moves() -> None:
    layout = tc.sankey_layout(MOVES, ORDER, NOT_YET)
    check_layout(MOVES, layout, ORDER)
    left = layout.nodes[layout.nodes["side"] == "from"]
    assert list(left["segment"]) == [NOT_YET, "Champions", "Loyal", "At Risk", "Hibernating"]
    assert "Loyal" in set(layout.links["from_segment"]) and len(layout.links) == 6  # the empty move is gone
    # Leaving Champions: to Champions first, then At Risk (the targets' order), so the bands cross least.
    ends = band_ends(layout)
    champions = ends[ends["from_segment"] == "Champions"].sort_values("start_top")
    assert list(champions["to_segment"]) == ["Champions", "At Risk"]


moves_strategy = st.lists(
    st.tuples(st.sampled_from([NOT_YET, *ORDER, "Unnamed"]), st.sampled_from([*ORDER, "Unnamed"]),
              st.integers(0, 5_000), st.floats(-1e6, 1e6, allow_nan=False)),
    min_size=1, max_size=30, unique_by=lambda r: (r[0], r[1])).filter(lambda rows: any(r[2] > 0 for r in rows))


@settings(max_examples=60, deadline=None)
@given(moves_strategy)
def test_sankey_layout_holds_for_any_migration_table(rows: list[tuple[str, str, int, float]]) -> None:
    moves = moves_table(rows)
    check_layout(moves, tc.sankey_layout(moves, ORDER, NOT_YET), ORDER)


def validation_table() -> pd.DataFrame:
    return pd.DataFrame({"segment": ORDER, "customers": [211, 840, 653, 1653], "repeat_customers": [207, 586, 468, 657],
                         "repeat_rate": [207 / 211, 586 / 840, 468 / 653, 657 / 1653],
                         "revenue": [1_222_259.4, 532_245.0, 490_601.2, -335.5],
                         "revenue_per_customer": [5792.69, 633.63, 751.30, -0.203]})


def trend_table() -> pd.DataFrame:
    rows = []
    for month, scale in ((date(2011, 1, 1), 1), (date(2011, 2, 1), 10)):
        for i, segment in enumerate(ORDER):
            rows.append({"snapshot": month, "period_start": month, "segment": segment,
                         "customers": (i + 1) * 100 * scale, "share": (i + 1) / 10,
                         "revenue": 12_345.6 * scale, "monetary": 1.0})
    return pd.DataFrame(rows)


def built_charts() -> dict[str, object]:
    start, end = date(2011, 9, 11), date(2011, 12, 10)
    return {
        "sankey": tc.sankey(MOVES, ORDER, COLORS, start=start, end=end, not_yet=NOT_YET, currency="GBP"),
        "customers": tc.sizes_over_time(trend_table(), ORDER, COLORS, "customers", currency="GBP"),
        "revenue": tc.sizes_over_time(trend_table(), ORDER, COLORS, "revenue", currency="EUR"),
        "repeat": tc.repeat_rate_chart(validation_table(), COLORS, horizon_days=1000),
        "per_customer": tc.revenue_per_customer_chart(validation_table(), COLORS, horizon_days=90, currency="GBP"),
    }


def test_every_over_time_chart_is_a_valid_vega_lite_spec_in_the_one_format() -> None:
    for name, chart in built_charts().items():
        validated = chart.to_dict()  # type: ignore[attr-defined]  # raises on a spec the schema refuses
        spec = charts.vega_lite_spec(chart)  # type: ignore[arg-type]
        assert spec.get("datasets") == validated.get("datasets"), name
        text = json.dumps(validated, ensure_ascii=False)
        assert "plotly" not in text
        if name == "sankey":
            labels = set(re.findall(r'"label": "([^"]*)"', text))  # each side's customers, thousands separators
            assert {"Champions · 60", "Champions · 70", "Loyal · 30", "Hibernating · 1,800",
                    "Hibernating · 1,815"} <= labels
            assert "£5,000" in text and "−£20" in text  # moves' revenue in the tooltip, currency and minus sign
            assert "2011-09-11" in text and "2011-12-10" in text
        if name == "customers":
            # snapshot dates, counts with thousands separators, shares with one decimal
            assert "2011-02-01" in text and "4,000" in text and "40.0%" in text
        if name == "revenue":
            assert "€123,456" in text and "revenue in the period (EUR)" in text
        if name == "repeat":
            assert "98.1%" in text and "1,000 days" in text and "1,653" in text
        if name == "per_customer":
            assert "£5,793" in text and "£5,792.69" in text and '"label": "£0"' in text  # never "−£0"


def test_stacked_sizes_put_the_most_valuable_segment_on_top() -> None:
    spec = tc.sizes_over_time(trend_table(), ORDER, COLORS, "customers", currency="GBP").to_dict()
    rows = next(iter(spec["datasets"].values()))
    stack = {r["segment"]: r["stack"] for r in rows}
    assert stack["Champions"] > stack["Loyal"] > stack["At Risk"] > stack["Hibernating"]  # stacked upwards
    assert spec["encoding"]["order"]["field"] == "stack"
    assert spec["encoding"]["color"]["scale"]["domain"] == ORDER
    assert spec["encoding"]["color"]["scale"]["range"] == [COLORS[s] for s in ORDER]


def test_a_negative_revenue_per_customer_stays_inside_the_axis() -> None:
    spec = tc.revenue_per_customer_chart(validation_table(), COLORS, horizon_days=90, currency="GBP").to_dict()
    domain = spec["layer"][0]["encoding"]["x"]["scale"]["domain"]
    assert domain[0] < -0.203 and domain[1] > 5792.69


def test_sankey_labels_of_thin_neighbours_move_apart_and_others_stay() -> None:
    gap = 0.05
    assert tc.spread_labels([0.1, 0.5, 0.9], gap) == [0.1, 0.5, 0.9]  # room enough: by their bars
    placed = tc.spread_labels([0.30, 0.31, 0.32, 0.8], gap)
    assert placed[0] == pytest.approx(0.30) and placed[3] == pytest.approx(0.8)
    assert np.diff(placed[:3]) == pytest.approx([gap, gap])
    assert tc.spread_labels([0.97, 0.98, 0.99], gap) == pytest.approx([0.875, 0.925, 0.975])  # up from the edge


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=14).map(sorted), st.floats(0.01, 0.07))
def test_sankey_labels_never_overlap_and_stay_inside_when_they_fit(middles: list[float], gap: float) -> None:
    placed = tc.spread_labels(middles, gap)
    assert len(placed) == len(middles)
    assert all(b - a >= gap - 1e-9 for a, b in itertools.pairwise(placed))
    if len(middles) * gap <= 1:
        assert min(placed) >= gap / 2 - 1e-9 and max(placed) <= 1 - gap / 2 + 1e-9
