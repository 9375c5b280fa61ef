"""Charts of the "Over time" page: pure functions of the timeline service's tables, no Streamlit.

Vega-Lite (Altair), as on the Overview and Segments pages, not plotly: plotly.js is 4.7 MB of script
that the browser fetched, compiled and ran on this page's first visit (about 2.5 s of its 3.7-4.1 s on
a 2-core machine), while Vega-Lite's is already loaded by the page a visitor comes from. Vega-Lite
has no Sankey mark, so `sankey_layout` lays the two columns out (plain arithmetic) and the chart draws
the segments as bars and every move as a smooth band between them.

Every segment keeps the colour it has on the other pages (the model's colours, or the R x F grid's
palette); "not yet a customer" is a pale grey. Labels and tooltips use the one number format
(rfm.dashboard.format).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import altair as alt
import numpy as np
import pandas as pd

from rfm.dashboard.format import count, money, percent

NOT_YET_COLOR = "#d5dbe1"
FALLBACK_COLOR = "#a8a8a8"
TEXT_COLOR = "#1f2933"
BAND_OPACITY = 0.45
NODE_WIDTH = 0.03  # of the chart's width, each side
NODE_GAP = 0.025  # of the chart's height, between two segments of a side
LEGEND_COLUMNS = 3  # legend entries a row under the stacked bars: fits a 390 px phone
LEGEND_ROW_PX = 22
LABEL_PX = 16  # a Sankey label's line height (13 px text)
BAND_STEPS = 9  # points along each band's edges (a smoothstep curve, drawn with monotone interpolation)


@dataclass(frozen=True)
class SankeyLayout:
    """Where the Sankey's parts go, in a unit square (x: 0 left to 1 right, y: 0 top to 1 bottom).

    nodes: one row per (side, segment): side ("from" or "to"), segment, customers, y0, y1.
    links: one row per move: move (its number), from_segment, to_segment, customers, revenue.
    bands: BAND_STEPS rows per move: move, x, top, bottom (the chart looks the rest up in `links`, so
    the names are not repeated on every point). A band is as wide as its customers at both ends, on the
    same scale as the nodes, so the bands leaving a segment fill it exactly."""

    nodes: pd.DataFrame
    links: pd.DataFrame
    bands: pd.DataFrame


def sankey_layout(moves: pd.DataFrame, order: Sequence[str], not_yet: str, *, steps: int = BAND_STEPS,
                  gap: float = NODE_GAP) -> SankeyLayout:
    """Lay out the migration table `moves` (from_segment, to_segment, customers, revenue): segments in
    `order` top to bottom on each side ("not yet a customer" first, unknown names last), the bands
    leaving a segment in the order of their targets and those reaching one in the order of their
    sources (fewest crossings). Moves of no customers are left out."""
    moves = moves[moves["customers"] > 0].reset_index(drop=True)
    rank = {name: i for i, name in enumerate([not_yet, *order])}

    def ranked(names: pd.Series) -> list[str]:
        return sorted(names.unique(), key=lambda s: (rank.get(s, len(rank)), s))

    left, right = ranked(moves["from_segment"]), ranked(moves["to_segment"])
    total = float(moves["customers"].sum())
    most = max(len(left), len(right), 1)
    scale = (1.0 - gap * (most - 1)) / total if total else 0.0
    tops: dict[tuple[str, str], float] = {}
    node_rows: list[dict[str, object]] = []
    for side, names, column in (("from", left, "from_segment"), ("to", right, "to_segment")):
        sizes = moves.groupby(column)["customers"].sum()
        height = sum(float(sizes[s]) * scale for s in names) + gap * (len(names) - 1)
        y = (1.0 - height) / 2  # the side with fewer segments is centred
        for name in names:
            customers = int(sizes[name])
            node_rows.append({"side": side, "segment": name, "customers": customers,
                              "y0": y, "y1": y + customers * scale})
            tops[(side, name)] = y
            y += customers * scale + gap
    nodes = pd.DataFrame(node_rows, columns=["side", "segment", "customers", "y0", "y1"])

    # Where each band starts (in its source, ordered by target) and ends (in its target, by source).
    sources = [str(v) for v in moves["from_segment"]]
    targets = [str(v) for v in moves["to_segment"]]
    widths = [float(c) * scale for c in moves["customers"]]
    starts, ends = [0.0] * len(moves), [0.0] * len(moves)
    for i in sorted(range(len(moves)), key=lambda i: rank.get(targets[i], len(rank))):
        starts[i] = tops[("from", sources[i])]
        tops[("from", sources[i])] += widths[i]
    for i in sorted(range(len(moves)), key=lambda i: rank.get(sources[i], len(rank))):
        ends[i] = tops[("to", targets[i])]
        tops[("to", targets[i])] += widths[i]

    t = np.linspace(0.0, 1.0, steps)
    smooth = t * t * (3 - 2 * t)  # leaves and reaches each side level
    begin, finish = np.array(starts), np.array(ends)
    top = begin[:, None] + (finish - begin)[:, None] * smooth[None, :]
    bands = pd.DataFrame({
        "move": np.repeat(np.arange(len(moves)), steps),
        "x": np.tile(NODE_WIDTH + (1 - 2 * NODE_WIDTH) * t, len(moves)),
        "top": top.ravel(),
        "bottom": (top + np.array(widths)[:, None]).ravel(),
    })
    links = moves[["from_segment", "to_segment", "customers", "revenue"]].assign(move=np.arange(len(moves)))
    return SankeyLayout(nodes=nodes, links=links, bands=bands)


def spread_labels(middles: Sequence[float], gap: float) -> list[float]:
    """Label positions (top to bottom, in order) at least `gap` apart and as near as can be to
    `middles` (each segment's bar), kept inside [gap / 2, 1 - gap / 2] when they fit: thin segments
    next to each other would otherwise print their labels over one another."""
    placed: list[float] = []
    for middle in middles:  # down: each label at least a gap below the one above
        placed.append(max(middle, placed[-1] + gap) if placed else max(middle, gap / 2))
    bottom = 1 - gap / 2
    for i in range(len(placed) - 1, -1, -1):  # then up from the bottom edge, where they overflowed
        limit = bottom if i == len(placed) - 1 else placed[i + 1] - gap
        placed[i] = min(placed[i], limit)
    return placed


def _color_scale(names: Sequence[str], colors: Mapping[str, str], not_yet: str | None = None) -> alt.Scale:
    domain = list(dict.fromkeys(names))
    return alt.Scale(domain=domain, range=[NOT_YET_COLOR if n == not_yet else colors.get(n, FALLBACK_COLOR)
                                           for n in domain])


def sankey(moves: pd.DataFrame, order: Sequence[str], colors: Mapping[str, str], *, start: date, end: date,
           not_yet: str, currency: str) -> alt.LayerChart | alt.FacetChart:
    """Customers flowing from their segment at `start` (left) to their segment at `end` (right): one
    band per (from, to) pair of the migration table, as wide as its customers; each side's segments
    are labelled with their customers."""
    layout = sankey_layout(moves, order, not_yet)
    most = int(max(layout.nodes["side"].value_counts().max(), 1)) if len(layout.nodes) else 1
    height = max(400, 28 * most + 80)
    label_gap = LABEL_PX / (height - 60)  # a label's height in the unit square (the plot is ~60 px short)
    nodes = layout.nodes.assign(
        label=[f"{s} · {count(c)}" for s, c in zip(layout.nodes["segment"], layout.nodes["customers"], strict=True)],
        x0=[0.0 if side == "from" else 1 - NODE_WIDTH for side in layout.nodes["side"]],
        middle=np.concatenate([  # by each segment's bar, moved apart where thin segments crowd
            spread_labels(((side_nodes["y0"] + side_nodes["y1"]) / 2).tolist(), label_gap)
            for _, side_nodes in layout.nodes.groupby("side", sort=False)]) if len(layout.nodes) else [],
        when=[f"at {start.isoformat()}" if side == "from" else f"at {end.isoformat()}"
              for side in layout.nodes["side"]],
        customers_label=[count(c) for c in layout.nodes["customers"]])
    nodes["x1"] = nodes["x0"] + NODE_WIDTH
    links = layout.links[["move", "from_segment", "to_segment"]].assign(
        customers_label=[count(c) for c in layout.links["customers"]],
        revenue_label=[money(float(r), currency) for r in layout.links["revenue"]])
    segments = _color_scale([*nodes["segment"]], colors, not_yet)
    across = alt.Scale(domain=[0, 1], nice=False, zero=False)
    down = alt.Scale(domain=[0, 1], reverse=True, nice=False, zero=False)
    looked_up = [c for c in links.columns if c != "move"]
    flows = alt.Chart(layout.bands).mark_area(
        opacity=BAND_OPACITY, orient="vertical", interpolate="monotone",
    ).transform_lookup(lookup="move", from_=alt.LookupData(links, key="move", fields=looked_up)).encode(
        x=alt.X("x:Q", axis=None, scale=across), y=alt.Y("top:Q", axis=None, scale=down, stack=None),
        y2="bottom:Q", detail="move:N", color=alt.Color("from_segment:N", legend=None, scale=segments),
        tooltip=[alt.Tooltip("from_segment:N", title="from"), alt.Tooltip("to_segment:N", title="to"),
                 alt.Tooltip("customers_label:N", title="customers"),
                 alt.Tooltip("revenue_label:N", title="revenue between the snapshots")])
    bars = alt.Chart(nodes).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("x0:Q", axis=None, scale=across), x2="x1:Q", y=alt.Y("y0:Q", axis=None, scale=down), y2="y1:Q",
        color=alt.Color("segment:N", legend=None, scale=segments),
        tooltip=[alt.Tooltip("segment:N"), alt.Tooltip("when:N", title="snapshot"),
                 alt.Tooltip("customers_label:N", title="customers")])
    # Labels inside the chart, beside their bars: the left side's to the right, the right side's to the left.
    left = alt.Chart(nodes[nodes["side"] == "from"]).mark_text(
        align="left", dx=4, fontSize=13, color=TEXT_COLOR, baseline="middle").encode(
        x=alt.X("x1:Q", axis=None, scale=across), y=alt.Y("middle:Q", axis=None, scale=down), text="label:N")
    right = alt.Chart(nodes[nodes["side"] == "to"]).mark_text(
        align="right", dx=-4, fontSize=13, color=TEXT_COLOR, baseline="middle").encode(
        x=alt.X("x0:Q", axis=None, scale=across), y=alt.Y("middle:Q", axis=None, scale=down), text="label:N")
    return alt.layer(flows, bars, left, right).properties(
        title=alt.Title("Movement between segments", anchor="start", fontSize=16,
                        subtitle=[f"left: segments at {start.isoformat()}",  # two lines: a phone is narrow
                                  f"right: segments at {end.isoformat()} · band width: customers"]),
        height=height).configure_view(stroke=None)


def sizes_over_time(trend: pd.DataFrame, order: Sequence[str], colors: Mapping[str, str],
                    measure: str = "customers", *, currency: str) -> alt.Chart:
    """Stacked bars: each snapshot's customers (or period revenue) by segment, most valuable on top."""
    present = [s for s in order if s in set(trend["segment"])]
    present += sorted(set(trend["segment"]) - set(present))
    data = trend.copy()  # every segment is in `present`
    data["when"] = [pd.Timestamp(s).date().isoformat() for s in data["snapshot"]]
    data["stack"] = [len(present) - present.index(s) for s in data["segment"]]  # the first on top
    values = data[measure].astype("float64")
    data["value"] = values
    data["value_label"] = [count(v) if measure == "customers" else money(v, currency) for v in values]
    data["share_label"] = [percent(s) for s in data["share"].astype("float64")]
    snapshots = sorted(data["when"].unique())
    label = "customers" if measure == "customers" else f"revenue in the period ({currency})"
    tooltip = [alt.Tooltip("segment:N"), alt.Tooltip("when:N", title="snapshot"),
               alt.Tooltip("value_label:N", title=label)]
    if measure == "customers":
        tooltip.append(alt.Tooltip("share_label:N", title="share of customers"))
    return alt.Chart(data[["segment", "when", "stack", "value", "value_label", "share_label"]]).mark_bar().encode(
        x=alt.X("when:O", sort=snapshots, title="snapshot (segments from the lines before this day)",
                axis=alt.Axis(labelAngle=0, labelOverlap="greedy")),
        y=alt.Y("value:Q", title=label, stack="zero", axis=alt.Axis(format=",.0f")),
        color=alt.Color("segment:N", scale=_color_scale(present, colors),
                        legend=alt.Legend(orient="bottom", title=None, columns=LEGEND_COLUMNS, labelLimit=220)),
        order=alt.Order("stack:Q"),
        tooltip=tooltip,
    ).properties(
        title=alt.Title("Segment sizes over time" if measure == "customers" else "Revenue by segment over time",
                        anchor="start", fontSize=16),
        # The chart is fitted into this height, legend included: each row of legend entries gets its own
        # room, so ten grid segments do not squeeze the bars (or push the title out of view).
        height=360 + LEGEND_ROW_PX * math.ceil(len(present) / LEGEND_COLUMNS))


def _segment_bars(data: pd.DataFrame, colors: Mapping[str, str], value: str, domain: tuple[float, float], title: str,
                  axis_format: str, tooltip: list[alt.Tooltip]) -> alt.LayerChart | alt.FacetChart:
    """Horizontal bars per segment (the table's order, most valuable on top), each labelled at its end
    (a negative bar's label left of it)."""
    names = data["segment"].tolist()
    data = data.assign(negative=data[value] < 0)
    base = alt.Chart(data).encode(
        y=alt.Y("segment:N", sort=names, title=None, axis=alt.Axis(labelLimit=150, labelFontSize=13)),
        x=alt.X(f"{value}:Q", title=None, scale=alt.Scale(domain=list(domain), nice=False),
                axis=alt.Axis(format=axis_format, tickCount=4)),
        tooltip=tooltip)
    bars = base.mark_bar(cornerRadiusEnd=2).encode(color=alt.Color("segment:N", legend=None,
                                                                   scale=_color_scale(names, colors)))
    after = base.mark_text(align="left", dx=4, fontSize=12, color=TEXT_COLOR).encode(
        text="label:N").transform_filter("!datum.negative")
    before = base.mark_text(align="right", dx=-4, fontSize=12, color=TEXT_COLOR).encode(
        text="label:N").transform_filter("datum.negative")
    return alt.layer(bars, after, before).properties(title=alt.Title(title, anchor="start", fontSize=16),
                                                     height=alt.Step(28))


def repeat_rate_chart(validation: pd.DataFrame, colors: Mapping[str, str], *,
                      horizon_days: int) -> alt.LayerChart | alt.FacetChart:
    """Per segment (most valuable on top): the share of its customers who bought again within the horizon."""
    data = validation[["segment", "customers", "repeat_customers", "repeat_rate"]].copy()
    data["repeat_rate"] = data["repeat_rate"].astype("float64")
    data["label"] = [percent(v) for v in data["repeat_rate"]]
    data["customers_label"] = [count(v) for v in data["customers"]]
    data["repeat_label"] = [count(v) for v in data["repeat_customers"]]
    top = float(data["repeat_rate"].max()) if len(data) else 0.0
    return _segment_bars(
        data, colors, "repeat_rate", (0.0, min(1.15, max(top, 0.01) * 1.3)),
        f"Bought again within {count(horizon_days)} days", ".0%",
        [alt.Tooltip("segment:N"), alt.Tooltip("customers_label:N", title="customers"),
         alt.Tooltip("repeat_label:N", title="bought again"), alt.Tooltip("label:N", title="repeat rate")])


def revenue_per_customer_chart(validation: pd.DataFrame, colors: Mapping[str, str], *, horizon_days: int,
                               currency: str) -> alt.LayerChart | alt.FacetChart:
    """Per segment (most valuable on top): what its customers brought in the horizon, per customer."""
    data = validation[["segment", "customers", "revenue", "revenue_per_customer"]].copy()
    data["revenue_per_customer"] = data["revenue_per_customer"].astype("float64")
    data["label"] = [money(v, currency) for v in data["revenue_per_customer"]]
    data["exact_label"] = [money(v, currency, 2) for v in data["revenue_per_customer"]]
    data["revenue_label"] = [money(v, currency) for v in data["revenue"].astype("float64")]
    top = float(data["revenue_per_customer"].max()) if len(data) else 0.0
    low = float(data["revenue_per_customer"].min()) if len(data) else 0.0
    return _segment_bars(
        data, colors, "revenue_per_customer", (min(0.0, low) * 1.3, max(top, 1.0) * 1.3),
        f"Revenue per customer in those {count(horizon_days)} days ({currency})", ",.0f",
        [alt.Tooltip("segment:N"), alt.Tooltip("exact_label:N", title="per customer"),
         alt.Tooltip("revenue_label:N", title="segment total")])
