"""Figure builders for the dashboard: pure functions of DataFrames, no Streamlit.

Segment colours are fixed by cluster id (the model orders ids by value: 0 = most valuable), not by
name, so renaming a segment keeps its colour and every page paints a segment the same way. The R x F
grid's named cells have their own fixed palette.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rfm.segments import SEGMENTS

if TYPE_CHECKING:
    from rfm.model import SegmentModel

# Most valuable first: green, blue, amber, orange-red, then distinct hues; grey for "No Net Revenue".
CLUSTER_PALETTE: tuple[str, ...] = ("#2a9d8f", "#3d6fb6", "#e9a23b", "#d1495b", "#8e6bbf", "#6aaa3a",
                                    "#c2663a", "#4fb3d9", "#b5547f", "#7d8c3c", "#5c6bc0", "#a1887f")
NOT_SEGMENTED_COLOR = "#a8a8a8"
GRID_COLORS: dict[str, str] = dict(zip(SEGMENTS, (
    "#9aa5b1",  # hibernating
    "#e76f51",  # at risk
    "#b5179e",  # can't lose
    "#f4a261",  # about to sleep
    "#e9c46a",  # need attention
    "#3d6fb6",  # loyal
    "#8ecae6",  # promising
    "#90be6d",  # new customers
    "#43aa8b",  # potential loyalists
    "#2a9d8f",  # champions
), strict=True))
FONT = "Source Sans Pro, sans-serif"
_LAYOUT: dict[str, object] = {"template": "plotly_white", "font": {"family": FONT, "size": 13},
                           "margin": {"l": 10, "r": 10, "t": 50, "b": 10}}


def segment_colors(model: SegmentModel) -> dict[str, str]:
    """Segment name -> colour for a model, by cluster id (stable under renaming)."""
    from rfm.model import NOT_SEGMENTED_NAME

    colors = {c.name: CLUSTER_PALETTE[c.id % len(CLUSTER_PALETTE)] for c in model.clusters}
    colors[NOT_SEGMENTED_NAME] = NOT_SEGMENTED_COLOR
    return colors


def segment_order(model: SegmentModel) -> list[str]:
    """Segment names from most to least valuable, then "No Net Revenue"."""
    from rfm.model import NOT_SEGMENTED_NAME

    return [c.name for c in sorted(model.clusters, key=lambda c: c.id)] + [NOT_SEGMENTED_NAME]


def _layout(fig: go.Figure, title: str, height: int = 380, **extra: object) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, height=height, **_LAYOUT, **extra)
    return fig


SHARE_MEASURES: dict[str, str] = {"customer_share": "share of customers", "revenue_share": "share of revenue"}


def segment_share_chart(summary: pd.DataFrame, colors: Mapping[str, str]) -> alt.LayerChart | alt.FacetChart:
    """Each segment's share of customers beside its share of revenue: two bars a segment, best
    segment on top, the customer bar light and the revenue bar solid in the segment's colour.

    Altair, not plotly: this is the landing page's chart and Vega-Lite's script is a sixth of
    plotly.js, so the Overview draws seconds sooner on a cold browser."""
    names = summary["segment"].tolist()
    domain = list(dict.fromkeys(names))
    data = summary[["segment", *SHARE_MEASURES]].melt(id_vars="segment", var_name="measure", value_name="share")
    data["measure"] = data["measure"].map(SHARE_MEASURES)
    data["share"] = data["share"].astype("float64")
    data["label"] = [f"{v:.0%}" if abs(v) >= 0.005 else "0%" for v in data["share"]]  # never "-0%"
    measures = list(SHARE_MEASURES.values())
    base = alt.Chart(data).encode(
        y=alt.Y("segment:N", sort=domain, title=None, axis=alt.Axis(labelLimit=240, labelFontSize=13)),
        yOffset=alt.YOffset("measure:N", sort=measures),
        x=alt.X("share:Q", title=None, axis=alt.Axis(format=".0%", tickCount=5),
                scale=alt.Scale(domainMin=0, nice=True)),
    )
    bars = base.mark_bar(cornerRadiusEnd=2).encode(
        color=alt.Color("segment:N", legend=None, scale=alt.Scale(
            domain=domain, range=[colors.get(n, NOT_SEGMENTED_COLOR) for n in domain])),
        opacity=alt.Opacity("measure:N", sort=measures, scale=alt.Scale(domain=measures, range=[0.4, 1.0]),
                            legend=alt.Legend(title=None, orient="top", symbolType="square")),
        tooltip=[alt.Tooltip("segment:N"), alt.Tooltip("measure:N"), alt.Tooltip("share:Q", format=".1%")],
    )
    text = base.mark_text(align="left", dx=4, fontSize=12, color="#1f2933").encode(text="label:N")
    return alt.layer(bars, text).properties(
        title=alt.Title("Segment sizes and revenue", anchor="start", fontSize=16),
        height=alt.Step(16))


def pareto_chart(monetary: Sequence[float] | np.ndarray, top: float = 0.2,
                 points: int = 201) -> alt.LayerChart | alt.FacetChart:
    """Cumulative share of revenue against share of customers, biggest spenders first; the top
    `top` share of customers is marked with the revenue they bring."""
    values = np.sort(np.asarray(monetary, dtype="float64"))[::-1]
    values = values[values > 0]
    n, total = len(values), float(values.sum()) if len(values) else 1.0
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total
    idx = np.unique(np.rint(np.linspace(0, n, points)).astype(int))
    top_n = int(np.ceil(top * n))
    share = float(cumulative[top_n]) if n else 0.0
    curve = pd.DataFrame({"customers": idx / max(n, 1), "revenue": cumulative[idx]})
    x = alt.X("customers:Q", title="share of customers (biggest spenders first)",
              axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("revenue:Q", title="cumulative share of revenue", axis=alt.Axis(format=".0%"),
              scale=alt.Scale(domain=[0, 1]))
    area = alt.Chart(curve).mark_area(color="#3d6fb6", opacity=0.12).encode(x=x, y=y)
    line = alt.Chart(curve).mark_line(color="#3d6fb6", strokeWidth=3).encode(x=x, y=y)
    marker = pd.DataFrame({"customers": [top], "revenue": [share],
                           "label": [f"top {top:.0%} → {share:.0%} of revenue"]})
    rule_x = alt.Chart(marker).mark_rule(color="#d1495b", strokeDash=[6, 4]).encode(x="customers:Q")
    rule_y = alt.Chart(marker).mark_rule(color="#d1495b", strokeDash=[2, 3]).encode(y="revenue:Q")
    label = alt.Chart(marker).mark_text(align="left", dx=8, dy=18, color="#d1495b", fontSize=13,
                                        fontWeight="bold").encode(x="customers:Q", y="revenue:Q", text="label:N")
    hover = _hover_layer(curve, x, y, "top {x} of customers: {y} of revenue")
    return alt.layer(area, line, rule_x, rule_y, label, *hover).properties(
        title=alt.Title("Pareto curve", anchor="start", fontSize=16,
                        subtitle=f"red: the top {top:.0%} of customers and their share of revenue"), height=340)


def lorenz_chart(lorenz: Sequence[tuple[float, float]], gini: float) -> alt.LayerChart | alt.FacetChart:
    """The Lorenz curve against the line of equality (the gap between them shaded), with the Gini
    coefficient in the title."""
    curve = pd.DataFrame({"customers": [p[0] for p in lorenz], "revenue": [p[1] for p in lorenz]})
    curve["equality"] = curve["customers"]
    x = alt.X("customers:Q", title="share of customers (smallest spenders first)",
              axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("revenue:Q", title="share of revenue", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    gap = alt.Chart(curve).mark_area(color="#e9a23b", opacity=0.18).encode(x=x, y=y, y2="equality:Q")
    equality = alt.Chart(curve).mark_line(color="#9aa5b1", strokeDash=[6, 4]).encode(x=x, y=alt.Y("equality:Q"))
    line = alt.Chart(curve).mark_line(color="#e9a23b", strokeWidth=3).encode(x=x, y=y)
    hover = _hover_layer(curve, x, y, "smallest {x} of customers: {y} of revenue")
    return alt.layer(gap, equality, line, *hover).properties(
        title=alt.Title(f"Lorenz curve · Gini {gini:.2f}", anchor="start", fontSize=16,
                        subtitle="dashed: every customer spending the same"), height=340)


def vega_lite_spec(chart: alt.TopLevelMixin) -> dict[str, object]:
    """An Altair chart as a plain Vega-Lite dict (data inline), for `st.vega_lite_chart`.

    Altair validates a chart against the Vega-Lite JSON schema every time it is serialised, which
    costs ~0.1 s a chart and `st.altair_chart` does it on every rerun: the dashboard caches this dict
    instead. Altair's default theme sizes views at 300 px; that is dropped so Streamlit sizes them.
    """
    spec = chart.to_dict()
    view = spec.get("config", {}).get("view", {})
    for key in ("continuousWidth", "continuousHeight"):
        view.pop(key, None)
    if "config" in spec and not view:
        spec["config"].pop("view", None)
        if not spec["config"]:
            del spec["config"]
    return spec


def _hover_layer(curve: pd.DataFrame, x: alt.X, y: alt.Y, text: str) -> tuple[alt.Chart, alt.Chart]:
    """A point and a tooltip on the curve nearest the pointer (Vega-Lite's nearest selection)."""
    data = curve[["customers", "revenue"]].copy()
    data["tip"] = [text.format(x=f"{a:.0%}", y=f"{b:.1%}") for a, b in zip(data["customers"], data["revenue"],
                                                                           strict=True)]
    nearest = alt.selection_point(nearest=True, on="pointerover", fields=["customers"], empty=False,
                                  clear="pointerout")
    catcher = alt.Chart(data).mark_point(opacity=0, size=200).encode(
        x=x, y=y, tooltip=alt.Tooltip("tip:N", title=None)).add_params(nearest)
    dot = alt.Chart(data).mark_point(filled=True, size=70, color="#1f2933").encode(
        x=x, y=y, opacity=alt.condition(nearest, alt.value(1), alt.value(0)))
    return catcher, dot


def rf_heatmap(mean_monetary: pd.DataFrame, counts: pd.DataFrame) -> alt.LayerChart | alt.FacetChart:
    """R score x F score: colour = mean monetary, text = customers per cell and their mean monetary.
    Laid out like the R x F grid beside it (R5 on top, F1 on the left)."""
    rows = []
    for r in mean_monetary.index:
        for f in mean_monetary.columns:
            mean = mean_monetary.loc[r, f]
            count = int(counts.loc[r, f])
            rows.append({"R": f"R{r}", "F": f"F{f}", "customers": count,
                         "mean_monetary": float(mean) if count and np.isfinite(mean) else None,
                         "label": f"{count:,} cust.\n{_money(mean)}" if count else "–"})
    data = pd.DataFrame(rows)
    base = alt.Chart(data).encode(
        x=alt.X("F:N", sort=[f"F{i}" for i in range(1, 6)], title="frequency score (5 = most orders)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("R:N", sort=[f"R{i}" for i in range(5, 0, -1)], title="recency score (5 = most recent)"),
    )
    # Mean monetary is heavy-tailed: a symmetric-log colour scale keeps the ordinary cells apart
    # (and, unlike log, accepts a cell whose returns outweigh its purchases).
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("mean_monetary:Q", scale=alt.Scale(scheme="yellowgreenblue", type="symlog"),
                        legend=alt.Legend(title=["mean", "monetary"], format=",.0f")),
        tooltip=[alt.Tooltip("R:N"), alt.Tooltip("F:N"), alt.Tooltip("customers:Q", format=","),
                 alt.Tooltip("mean_monetary:Q", format=",.0f", title="mean monetary")],
    )
    text = base.mark_text(fontSize=11, lineBreak="\n").encode(
        text="label:N",
        color=alt.condition(alt.datum.mean_monetary > _dark_from(data["mean_monetary"]), alt.value("white"),
                            alt.value("#1f2933")),
    )
    return alt.layer(cells, text).properties(
        title=alt.Title("RFM heatmap: mean monetary and customers per cell", anchor="start", fontSize=16),
        height=400)


def _dark_from(values: pd.Series) -> float:
    """The value above which a cell of the symlog colour scale is dark enough for white text."""
    finite = values.astype("float64").dropna()
    if finite.empty:
        return float("inf")
    lo, hi = (np.sign(v) * np.log1p(abs(v)) for v in (finite.min(), finite.max()))
    mid = lo + 0.6 * (hi - lo)
    return float(np.sign(mid) * np.expm1(abs(mid)))


def rf_grid_chart(grid: pd.DataFrame) -> alt.LayerChart:
    """The named R x F segment grid (altair: a categorical grid is what it does best)."""
    data = grid.copy()
    data["R"] = "R" + data["r_score"].astype(str)
    data["F"] = "F" + data["f_score"].astype(str)
    # Names wrap into lines of at most 10 characters inside their cell; the customer count gets its own line.
    data["label"] = ["\n".join(textwrap.wrap(name, width=10)) for name in data["segment"]]
    if "customers" in data.columns:
        data["label"] = data["label"] + "\n(" + data["customers"].map("{:,}".format) + ")"
    names = [s for s in SEGMENTS if s in set(data["segment"])]
    base = alt.Chart(data).encode(
        x=alt.X("F:N", sort=[f"F{i}" for i in range(1, 6)], title="frequency score (5 = most orders)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("R:N", sort=[f"R{i}" for i in range(5, 0, -1)], title="recency score (5 = most recent)"),
    )
    rects = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("segment:N", scale=alt.Scale(domain=names, range=[GRID_COLORS[n] for n in names]),
                        legend=None),
        tooltip=[alt.Tooltip(c) for c in ("segment", "R", "F", *(["customers"] if "customers" in data else []))],
    )
    text = base.mark_text(fontSize=11, color="#1f2933", lineBreak="\n").encode(text="label:N")
    return (rects + text).properties(title="R x F segment grid (customers per cell)", height=400)


def customer_scatter(assigned: pd.DataFrame, colors: Mapping[str, str], order: Sequence[str],
                     x: str = "recency", max_points: int = 5000, seed: int = 0) -> alt.Chart:
    """Customers on log axes (x: recency or frequency, y: monetary) coloured by segment, zoomable;
    a seeded sample of at most `max_points` keeps the browser fast on large tables.

    Vega-Lite draws a few thousand points in a fraction of the time plotly needs to set up a WebGL
    scatter on a machine without a GPU."""
    data = assigned.loc[assigned["monetary"] > 0, ["customer_id", "recency", "frequency", "monetary", "segment"]]
    sampled = len(data) > max_points
    if sampled:
        data = data.sample(max_points, random_state=seed)
    data = data.assign(plotted=data[x].clip(lower=0.5))  # bought on the snapshot's eve: recency 0, off a log axis
    names = [n for n in order if n in set(data["segment"])]
    title = "Customers by segment" + (f" (seeded sample of {len(data):,})" if sampled else "")
    x_title = f"{x} ({'days since last purchase' if x == 'recency' else 'orders'}, log)"
    return alt.Chart(data).mark_circle(size=28, opacity=0.65).encode(
        x=alt.X("plotted:Q", scale=alt.Scale(type="log"), title=x_title),
        y=alt.Y("monetary:Q", scale=alt.Scale(type="log"), title="monetary (net revenue, log)"),
        color=alt.Color("segment:N", sort=names, scale=alt.Scale(
            domain=names, range=[colors.get(n, NOT_SEGMENTED_COLOR) for n in names]),
            legend=alt.Legend(title=None, orient="bottom", direction="horizontal")),
        tooltip=[alt.Tooltip("customer_id:N", title="customer"), alt.Tooltip("segment:N"),
                 alt.Tooltip("recency:Q", title="recency (days)"), alt.Tooltip("frequency:Q", title="orders"),
                 alt.Tooltip("monetary:Q", format=",.2f")],
    ).properties(title=alt.Title(title, anchor="start", fontSize=16), height=460).interactive()


SWEEP_PANELS: tuple[tuple[str, str], ...] = (
    ("inertia", "Elbow: inertia (lower is tighter)"),
    ("silhouette", "Silhouette (higher is better)"),
    ("davies_bouldin", "Davies-Bouldin (lower is better)"),
    ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
    ("smallest_cluster_share", "Smallest cluster share"),
)


def sweep_chart(metrics: pd.DataFrame, recommended_k: int, chosen_k: int | None = None) -> go.Figure:
    """Every sweep metric against k, the recommended k marked (and the k chosen on the slider)."""
    fig = make_subplots(rows=2, cols=3, subplot_titles=[t for _, t in SWEEP_PANELS], vertical_spacing=0.16,
                        horizontal_spacing=0.07)
    for i, (column, _) in enumerate(SWEEP_PANELS):
        row, col = divmod(i, 3)
        fig.add_trace(go.Scatter(x=metrics["k"], y=metrics[column], mode="lines+markers", showlegend=False,
                                 line={"color": "#3d6fb6"}, marker={"size": 7},
                                 hovertemplate="k=%{x}: %{y:.4g}<extra></extra>"), row=row + 1, col=col + 1)
        best = metrics.loc[metrics["k"] == recommended_k, column]
        if len(best):
            fig.add_trace(go.Scatter(x=[recommended_k], y=[best.iloc[0]], mode="markers", showlegend=i == 0,
                                     name=f"recommended k={recommended_k}",
                                     marker={"color": "#d1495b", "size": 14, "symbol": "star"}),
                          row=row + 1, col=col + 1)
        if chosen_k is not None and chosen_k != recommended_k:
            fig.add_vline(x=chosen_k, line_dash="dot", line_color="#e9a23b", row=row + 1, col=col + 1)
        fig.update_xaxes(dtick=1, row=row + 1, col=col + 1)
    fig.update_yaxes(tickformat=".0%", row=2, col=2)
    return _layout(fig, "Choosing k", height=560, legend={"orientation": "h", "x": 0.7, "y": 0.22})


def position_chart(position: pd.DataFrame, customer: Mapping[str, float], colors: Mapping[str, str]) -> go.Figure:
    """Per feature (log scale), every segment centroid and the scored customer, on one strip each."""
    features = ("recency", "frequency", "monetary")
    fig = make_subplots(rows=3, cols=1, vertical_spacing=0.16,
                        subplot_titles=("recency (days)", "frequency (orders)", "monetary (net revenue)"))
    for row, feature in enumerate(features, start=1):
        for record in position.itertuples(index=False):
            segment = cast(str, record.segment)  # the segment names of a model
            fig.add_trace(go.Scatter(
                x=[max(getattr(record, feature), 0.5)], y=[0], mode="markers", name=segment,
                legendgroup=segment, showlegend=row == 1,
                marker={"color": colors.get(segment, NOT_SEGMENTED_COLOR), "size": 16,
                        "line": {"color": "white", "width": 1}},
                hovertemplate=f"{segment} centroid: %{{x:,.1f}}<extra></extra>",
            ), row=row, col=1)
        fig.add_trace(go.Scatter(
            x=[max(float(customer[feature]), 0.5)], y=[0], mode="markers", name="this customer",
            legendgroup="customer", showlegend=row == 1,
            marker={"color": "#111827", "size": 18, "symbol": "diamond-open", "line": {"width": 3}},
            hovertemplate="this customer: %{x:,.1f}<extra></extra>",
        ), row=row, col=1)
        fig.update_xaxes(type="log", row=row, col=1)
        fig.update_yaxes(visible=False, row=row, col=1)
    return _layout(fig, "The customer against the segment centroids", height=420,
                   legend={"orientation": "h", "y": -0.12})


def _money(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:,.0f}"


__all__ = [
    "CLUSTER_PALETTE",
    "GRID_COLORS",
    "NOT_SEGMENTED_COLOR",
    "customer_scatter",
    "lorenz_chart",
    "pareto_chart",
    "position_chart",
    "rf_grid_chart",
    "rf_heatmap",
    "segment_colors",
    "segment_order",
    "segment_share_chart",
    "sweep_chart",
    "vega_lite_spec",
]
