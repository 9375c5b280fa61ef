"""Figure builders for the dashboard: pure functions of DataFrames, no Streamlit.

Segment colours belong to names (`NAME_COLORS`, looked up by `segment_key`): a segment has the same
colour in every model version and on the R x F grid, and every page paints it the same way.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rfm.dashboard.format import count, currency_prefix, money, percent
from rfm.segments import SEGMENTS
from rfm.service.segmentation import segment_key

NOT_SEGMENTED = "No Net Revenue"  # rfm.model.NOT_SEGMENTED_NAME, without importing the model package here

if TYPE_CHECKING:
    from rfm.model import SegmentModel

# A colour belongs to a segment name (by `segment_key`, so "At-Risk" and "At Risk" match), the same in
# every model version and on the R x F grid: Champions are teal wherever they appear.
NAME_COLORS: dict[str, str] = {
    "champions": "#2a9d8f",
    "loyal": "#3d6fb6",
    "loyalcustomers": "#3d6fb6",
    "potentialloyalists": "#6aaa3a",
    "newcustomers": "#4fb3d9",
    "promising": "#8e6bbf",
    "needattention": "#e9c46a",
    "abouttosleep": "#b5547f",
    "atrisk": "#e9a23b",
    "cantlose": "#b5179e",
    "hibernating": "#d1495b",
}
# Names the table does not know take a colour from here, chosen by a hash of the name (stable).
EXTRA_PALETTE: tuple[str, ...] = ("#5c6bc0", "#a1887f", "#7d8c3c", "#c2663a", "#00897b", "#6d4c41",
                                  "#9e9d24", "#ad1457", "#0277bd", "#ef6c00", "#558b2f", "#4527a0")
NOT_SEGMENTED_COLOR = "#a8a8a8"
GRID_COLORS: dict[str, str] = {name: NAME_COLORS[segment_key(name)] for name in SEGMENTS}
FONT = "Source Sans Pro, sans-serif"
_LAYOUT: dict[str, object] = {"template": "plotly_white", "font": {"family": FONT, "size": 13},
                           "margin": {"l": 10, "r": 10, "t": 50, "b": 10}}


def name_color(name: str) -> str:
    """The colour of a segment name: its own for a known name, else one picked by a hash of the name
    (never Python's salted hash(): the same name gets the same colour in every process)."""
    import hashlib

    key = segment_key(name)
    if key in NAME_COLORS:
        return NAME_COLORS[key]
    if key == segment_key(NOT_SEGMENTED):
        return NOT_SEGMENTED_COLOR
    digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    return EXTRA_PALETTE[digest % len(EXTRA_PALETTE)]


def name_colors(names: Sequence[str]) -> dict[str, str]:
    """Colours of a model's segment names (given most valuable first): each name's own colour, and
    names that share one told apart by lighter shades of it. Who keeps the full colour does not depend
    on the model's order: a known name first, then by `segment_key`, so "Regulars" keeps its colour
    beside any other name that hashes onto it; spend tiers of one name ("At Risk (High Spend)",
    "(Low Spend)") share a key and are shaded in the given (value) order."""
    position = {name: i for i, name in enumerate(names)}
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name_color(name), []).append(name)
    colors: dict[str, str] = {}
    for base, members in groups.items():
        members.sort(key=lambda n: (segment_key(n) not in NAME_COLORS, segment_key(n), position[n]))
        for shade, name in enumerate(members):
            colors[name] = base if shade == 0 else _lighter(base, min(0.3 * shade, 0.75))
    return {name: colors[name] for name in names}


def _lighter(color: str, amount: float) -> str:
    """`color` mixed with white (amount 0..1)."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def segment_colors(model: SegmentModel) -> dict[str, str]:
    """Segment name -> colour for a model: the colour belongs to the name (`name_colors`), so a
    segment keeps its colour across versions, and a renamed one takes its new name's colour."""
    from rfm.model import NOT_SEGMENTED_NAME

    ordered = [c.name for c in sorted(model.clusters, key=lambda c: c.id)]
    colors = name_colors(ordered)
    colors[NOT_SEGMENTED_NAME] = NOT_SEGMENTED_COLOR
    return colors


def segment_order(model: SegmentModel) -> list[str]:
    """Segment names from most to least valuable, then "No Net Revenue"."""
    from rfm.model import NOT_SEGMENTED_NAME

    return [c.name for c in sorted(model.clusters, key=lambda c: c.id)] + [NOT_SEGMENTED_NAME]


def _layout(fig: go.Figure, title: str, height: int = 380, **extra: object) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, height=height, **_LAYOUT, **extra)
    return fig


# A Vega-Lite specification as a plain dict (what Altair's `to_dict` gives, `datasets` inline): the
# Overview's charts are written so, for speed (see `segment_share_chart`); the others through Altair.
VegaLiteSpec = dict[str, Any]

SHARE_MEASURES: dict[str, str] = {"customer_share": "share of customers", "revenue_share": "share of revenue"}


def segment_share_chart(summary: pd.DataFrame, colors: Mapping[str, str]) -> VegaLiteSpec:
    """Each segment's share of customers beside its share of revenue: two bars a segment, best
    segment on top, the customer bar light and the revenue bar solid in the segment's colour.

    No legend: a legend of the two opacities could only show grey swatches beside coloured bars, so
    the subtitle says which bar is which. A negative share (returns outweigh purchases) has its label
    left of the bar's end, never over the zero line's label.

    Vega-Lite, not plotly: this is the landing page's chart and Vega-Lite's script is a sixth of
    plotly.js, so the Overview draws seconds sooner on a cold browser. Written as the Vega-Lite dict
    (see `VegaLiteSpec`), not through Altair, whose objects cost ~0.1 s a chart to build and serialise
    while a new upload's Overview waits."""
    names = summary["segment"].tolist()
    domain = list(dict.fromkeys(names))
    data = summary[["segment", *SHARE_MEASURES]].melt(id_vars="segment", var_name="measure", value_name="share")
    data["measure"] = data["measure"].map(SHARE_MEASURES)
    data["share"] = data["share"].astype("float64")
    data["label"] = [percent(v) for v in data["share"]]
    data["negative"] = data["label"].str.startswith("−")  # "0.0%" of a tiny negative share stays right
    measures = list(SHARE_MEASURES.values())
    lowest = min(0.0, float(data["share"].min()))
    encoding: dict[str, object] = {
        "y": {"field": "segment", "type": "nominal", "sort": domain, "title": None,
              "axis": {"labelLimit": 150, "labelFontSize": 13}},
        "yOffset": {"field": "measure", "type": "nominal", "sort": measures},
        "x": {"field": "share", "type": "quantitative", "title": "share of all customers / of all revenue",
              "axis": {"format": ".0%", "tickCount": 5},
              "scale": {"domainMin": lowest * 1.25 if lowest < 0 else 0, "nice": True}},
    }
    bars = {"mark": {"type": "bar", "cornerRadiusEnd": 2}, "encoding": {
        **encoding,
        "color": {"field": "segment", "type": "nominal", "legend": None,
                  "scale": {"domain": domain, "range": [colors.get(n, NOT_SEGMENTED_COLOR) for n in domain]}},
        "opacity": {"field": "measure", "type": "nominal", "sort": measures, "legend": None,
                    "scale": {"domain": measures, "range": [0.4, 1.0]}},
        "tooltip": [{"field": "segment", "type": "nominal"}, {"field": "measure", "type": "nominal"},
                    {"field": "label", "type": "nominal", "title": "share"}]}}
    text = {"type": "text", "fontSize": 12, "color": "#1f2933"}
    label = {**encoding, "text": {"field": "label", "type": "nominal"}}
    return {
        "$schema": alt.SCHEMA_URL,
        "datasets": {"shares": _records(data)},
        "data": {"name": "shares"},
        "layer": [bars,
                  {"mark": {**text, "align": "left", "dx": 4}, "encoding": label,
                   "transform": [{"filter": "!datum.negative"}]},
                  {"mark": {**text, "align": "right", "dx": -4}, "encoding": label,
                   "transform": [{"filter": "datum.negative"}]}],
        "height": {"step": 16},
        "title": {"text": "Segment sizes and revenue", "anchor": "start", "fontSize": 16,
                  "subtitle": "light bar: share of customers · solid bar: share of revenue"},
    }


def _unit_axis(field: str, title: str) -> dict[str, object]:
    """A share from 0 to 1 on an axis labelled in whole percentages."""
    return {"field": field, "type": "quantitative", "title": title, "axis": {"format": ".0%"},
            "scale": {"domain": [0, 1]}}


def pareto_chart(monetary: Sequence[float] | np.ndarray, top: float = 0.2, points: int = 201) -> VegaLiteSpec:
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
    x = _unit_axis("customers", "share of customers (biggest spenders first)")
    y = _unit_axis("revenue", "cumulative share of revenue")
    marker = pd.DataFrame({"customers": [top], "revenue": [share],
                           "label": [f"top {top:.0%} → {share:.0%} of revenue"]})
    red = "#d1495b"
    at_x, at_y = {"field": "customers", "type": "quantitative"}, {"field": "revenue", "type": "quantitative"}
    hover_data, hover_layers, params = _hover_layers(curve, x, y, "top {x} of customers: {y} of revenue")
    return {
        "$schema": alt.SCHEMA_URL,
        "datasets": {"curve": _records(curve), "marker": _records(marker), "hover": hover_data},
        "layer": [
            {"data": {"name": "curve"}, "mark": {"type": "area", "color": "#3d6fb6", "opacity": 0.12},
             "encoding": {"x": x, "y": y}},
            {"data": {"name": "curve"}, "mark": {"type": "line", "color": "#3d6fb6", "strokeWidth": 3},
             "encoding": {"x": x, "y": y}},
            {"data": {"name": "marker"}, "mark": {"type": "rule", "color": red, "strokeDash": [6, 4]},
             "encoding": {"x": at_x}},
            {"data": {"name": "marker"}, "mark": {"type": "rule", "color": red, "strokeDash": [2, 3]},
             "encoding": {"y": at_y}},
            {"data": {"name": "marker"}, "mark": {"type": "text", "align": "left", "dx": 8, "dy": 18, "color": red,
                                                  "fontSize": 13, "fontWeight": "bold"},
             "encoding": {"x": at_x, "y": at_y, "text": {"field": "label", "type": "nominal"}}},
            *hover_layers,
        ],
        "params": params,
        "height": 340,
        "title": {"text": "Pareto curve", "anchor": "start", "fontSize": 16,
                  "subtitle": f"red: the top {top:.0%} of customers and their share of revenue"},
    }


def lorenz_chart(lorenz: Sequence[tuple[float, float]], gini: float) -> VegaLiteSpec:
    """The Lorenz curve against the line of equality (the gap between them shaded), with the Gini
    coefficient in the title."""
    curve = pd.DataFrame({"customers": [p[0] for p in lorenz], "revenue": [p[1] for p in lorenz]})
    curve["equality"] = curve["customers"]
    x = _unit_axis("customers", "share of customers (smallest spenders first)")
    y = _unit_axis("revenue", "share of revenue")
    hover_data, hover_layers, params = _hover_layers(curve, x, y, "smallest {x} of customers: {y} of revenue")
    return {
        "$schema": alt.SCHEMA_URL,
        "datasets": {"curve": _records(curve), "hover": hover_data},
        "layer": [
            {"data": {"name": "curve"}, "mark": {"type": "area", "color": "#e9a23b", "opacity": 0.18},
             "encoding": {"x": x, "y": y, "y2": {"field": "equality"}}},
            {"data": {"name": "curve"}, "mark": {"type": "line", "color": "#9aa5b1", "strokeDash": [6, 4]},
             "encoding": {"x": x, "y": {"field": "equality", "type": "quantitative"}}},
            {"data": {"name": "curve"}, "mark": {"type": "line", "color": "#e9a23b", "strokeWidth": 3},
             "encoding": {"x": x, "y": y}},
            *hover_layers,
        ],
        "params": params,
        "height": 340,
        "title": {"text": f"Lorenz curve · Gini {gini:.2f}", "anchor": "start", "fontSize": 16,
                  "subtitle": "dashed: every customer spending the same"},
    }


def vega_lite_spec(chart: alt.TopLevelMixin) -> dict[str, object]:
    """An Altair chart as a plain Vega-Lite dict (data inline), for `st.vega_lite_chart`.

    Altair validates a chart against the Vega-Lite JSON schema every time it is serialised, which
    costs ~0.05-0.1 s a chart and `st.altair_chart` does it on every rerun: the dashboard caches this
    dict instead, and skips the validation (a new file's first Overview builds several charts while
    its user waits); tests/test_dashboard_views.py validates every chart the pages draw. Altair's
    default theme sizes views at 300 px; that is dropped so Streamlit sizes them.
    """
    spec = chart.to_dict(validate=False)
    view = spec.get("config", {}).get("view", {})
    for key in ("continuousWidth", "continuousHeight"):
        view.pop(key, None)
    if "config" in spec and not view:
        spec["config"].pop("view", None)
        if not spec["config"]:
            del spec["config"]
    return spec


def _hover_layers(curve: pd.DataFrame, x: dict[str, object], y: dict[str, object], text: str
                  ) -> tuple[list[dict[str, object]], list[dict[str, object]], list[dict[str, object]]]:
    """A point and a tooltip on the curve nearest the pointer (Vega-Lite's nearest selection): the
    "hover" dataset's rows, the two layers, the chart's params.

    The points are the curve's nearest to each whole percentage of customers (101, not the curve's
    201): the tooltip names whole percentages, so two points never read "top 3%" with different
    revenue, and the browser draws half the hover marks (about 0.07 s less on the Overview)."""
    data = curve.iloc[_nearest_rows(curve["customers"].to_numpy(), np.linspace(0.0, 1.0, 101))]
    data = data[["customers", "revenue"]].reset_index(drop=True)
    data["tip"] = [text.format(x=f"{a:.0%}", y=f"{b:.1%}") for a, b in zip(data["customers"], data["revenue"],
                                                                           strict=True)]
    catcher: dict[str, object] = {
        "name": "hover_catcher", "data": {"name": "hover"}, "mark": {"type": "point", "opacity": 0, "size": 200},
        "encoding": {"x": x, "y": y, "tooltip": {"field": "tip", "type": "nominal", "title": None}}}
    dot = {"data": {"name": "hover"}, "mark": {"type": "point", "filled": True, "size": 70, "color": "#1f2933"},
           "encoding": {"x": x, "y": y, "opacity": {"condition": {"param": "nearest", "value": 1, "empty": False},
                                                    "value": 0}}}
    params: list[dict[str, object]] = [{"name": "nearest", "views": ["hover_catcher"],
                                        "select": {"type": "point", "nearest": True, "on": "pointerover",
                                                   "fields": ["customers"], "clear": "pointerout"}}]
    return _records(data), [catcher, dot], params


def _nearest_rows(ascending: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target, the position of the nearest value of `ascending` (each position once)."""
    after = np.clip(np.searchsorted(ascending, targets), 0, len(ascending) - 1)
    before = np.clip(after - 1, 0, len(ascending) - 1)
    nearer = np.where(np.abs(ascending[before] - targets) <= np.abs(ascending[after] - targets), before, after)
    return np.unique(nearer)


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """A small DataFrame as the list of row dicts a Vega-Lite dataset holds (plain Python values)."""
    return cast(list[dict[str, object]], frame.to_dict(orient="records"))


def rf_heatmap(mean_monetary: pd.DataFrame, counts: pd.DataFrame, currency: str = "GBP",
               domain: tuple[float, float] | None = None) -> alt.LayerChart | alt.FacetChart:
    """R score x F score: colour = mean spend, text = customers per cell and their mean spend.
    Laid out like the R x F grid beside it (R5 on top, F1 on the left).

    `domain` fixes the colour scale (the unfiltered table's lowest and highest cell means), so a
    filter never re-colours the cells: the same colour is the same spend with or without filters."""
    rows = []
    for r in mean_monetary.index:
        for f in mean_monetary.columns:
            mean = mean_monetary.loc[r, f]
            cell = int(counts.loc[r, f])
            rows.append({"R": f"R{r}", "F": f"F{f}", "customers": cell,
                         "mean_monetary": float(mean) if cell and np.isfinite(mean) else None,
                         "customers_text": count(cell), "mean_text": money(mean, currency) if cell else "–",
                         "label": f"{count(cell)} cust.\n{money(mean, currency)}" if cell else "–"})
    data = pd.DataFrame(rows)
    base = alt.Chart(data).encode(
        x=alt.X("F:N", sort=[f"F{i}" for i in range(1, 6)], title="frequency score (5 = most orders)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("R:N", sort=[f"R{i}" for i in range(5, 0, -1)], title="recency score (5 = most recent)"),
    )
    # Mean spend is heavy-tailed: a symmetric-log colour scale keeps the ordinary cells apart
    # (and, unlike log, accepts a cell whose returns outweigh its purchases).
    scale = (alt.Scale(scheme="yellowgreenblue", type="symlog", domain=[float(domain[0]), float(domain[1])],
                       clamp=True) if domain else alt.Scale(scheme="yellowgreenblue", type="symlog"))
    prefix = currency_prefix(currency).strip()
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("mean_monetary:Q", scale=scale,
                        legend=alt.Legend(title=f"mean spend ({prefix})", format=",.0f", orient="bottom",
                                          direction="horizontal", gradientLength=220)),
        tooltip=[alt.Tooltip("R:N"), alt.Tooltip("F:N"), alt.Tooltip("customers_text:N", title="customers"),
                 alt.Tooltip("mean_text:N", title="mean spend")],
    )
    shade_values = pd.Series(list(domain), dtype="float64") if domain else data["mean_monetary"]
    text = base.mark_text(fontSize=11, lineBreak="\n").encode(
        text="label:N",
        color=alt.condition(alt.datum.mean_monetary > _dark_from(shade_values), alt.value("white"),
                            alt.value("#1f2933")),
    )
    return alt.layer(cells, text).properties(
        title=alt.Title("RFM heatmap", anchor="start", fontSize=16,
                        subtitle=["mean spend and customers per cell;",
                                  "colours fixed to all customers (filters keep them)"]),
        height=510)  # the legend below takes ~110 px: the cells come out as tall as the grid's beside it


def heatmap_domain(mean_monetary: pd.DataFrame) -> tuple[float, float] | None:
    """The lowest and highest cell mean of a (normally unfiltered) heatmap table."""
    values = mean_monetary.to_numpy(dtype="float64").ravel()
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if len(values) else None


def _dark_from(values: pd.Series) -> float:
    """The value above which a cell of the symlog colour scale is dark enough for white text."""
    finite = values.astype("float64").dropna()
    if finite.empty:
        return float("inf")
    lo, hi = (np.sign(v) * np.log1p(abs(v)) for v in (finite.min(), finite.max()))
    mid = lo + 0.6 * (hi - lo)
    return float(np.sign(mid) * np.expm1(abs(mid)))


def grid_label(name: str, width: int = 10) -> str:
    """A segment name in Title Case on lines of about `width` characters, never split inside a word
    ("Hibernating" stays whole on its own line)."""
    titled = " ".join(word[:1].upper() + word[1:] for word in name.split())
    return "\n".join(textwrap.wrap(titled, width=width, break_long_words=False, break_on_hyphens=False))


def rf_grid_chart(grid: pd.DataFrame) -> alt.LayerChart | alt.FacetChart:
    """The named R x F segment grid (altair: a categorical grid is what it does best), each segment
    in its name's colour (the same colour a model segment of that name has)."""
    data = grid.copy()
    data["R"] = "R" + data["r_score"].astype(str)
    data["F"] = "F" + data["f_score"].astype(str)
    data["label"] = [grid_label(name) for name in data["segment"]]
    if "customers" in data.columns:
        data["label"] = data["label"] + "\n(" + data["customers"].map(count) + ")"
    names = [s for s in SEGMENTS if s in set(data["segment"])]
    base = alt.Chart(data).encode(
        x=alt.X("F:N", sort=[f"F{i}" for i in range(1, 6)], title="frequency score (5 = most orders)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("R:N", sort=[f"R{i}" for i in range(5, 0, -1)], title="recency score (5 = most recent)"),
    )
    rects = base.mark_rect(stroke="white", strokeWidth=2, opacity=0.55).encode(
        color=alt.Color("segment:N", scale=alt.Scale(domain=names, range=[GRID_COLORS[n] for n in names]),
                        legend=None),
        tooltip=[alt.Tooltip(c) for c in ("segment", "R", "F", *(["customers"] if "customers" in data else []))],
    )
    text = base.mark_text(fontSize=10, color="#1f2933", lineBreak="\n").encode(text="label:N")
    return alt.layer(rects, text).properties(
        title=alt.Title("R x F segment grid", anchor="start", fontSize=16, subtitle="customers per cell"), height=400)


def proportional_sample(data: pd.DataFrame, by: str, size: int, seed: int = 0) -> pd.DataFrame:
    """About `size` rows of `data`, each group of `by` in proportion to its rows and at least one of each
    (a small segment stays visible), seeded; groups in their first appearance's order."""
    fraction = size / len(data)
    parts = [group.sample(max(1, round(len(group) * fraction)), random_state=seed)
             for _, group in data.groupby(by, sort=False, observed=True)]
    return pd.concat(parts) if parts else data.iloc[:0]


def customer_scatter(assigned: pd.DataFrame, colors: Mapping[str, str], order: Sequence[str],
                     x: str = "recency", max_points: int = 1000, seed: int = 0, currency: str = "GBP") -> alt.Chart:
    """Customers on log axes (x: recency or frequency, y: monetary) coloured by segment, zoomable;
    a seeded sample of about `max_points` (the title says so), each segment in proportion and none left
    out, keeps the page fast: drawing costs the browser about 0.07 ms a point, so 4,300 points made the
    Segments page miss its 0.8 s, and its first visit took 0.83-0.92 s with 2,000, 0.71-0.80 s with 1,000.

    Vega-Lite draws a few thousand points in a fraction of the time plotly needs to set up a WebGL
    scatter on a machine without a GPU."""
    data = assigned.loc[assigned["monetary"] > 0, ["customer_id", "recency", "frequency", "monetary", "segment"]]
    sampled, total = len(data) > max_points, len(data)
    if sampled:
        data = proportional_sample(data, "segment", max_points, seed)
    data = data.assign(plotted=data[x].clip(lower=0.5),  # bought on the snapshot's eve: recency 0, off a log axis
                       spend=[money(v, currency, 2) for v in data["monetary"]])
    names = [n for n in order if n in set(data["segment"])]
    # The sample on lines of its own: in the title it was cut short at 390 px.
    sample_note = [f"a seeded sample of {len(data):,} of {total:,} customers,", "each segment in proportion"]
    title = alt.Title("Customers by segment", anchor="start", fontSize=16,
                      subtitle=sample_note if sampled else alt.Undefined)
    x_title = "recency (days since last purchase, log)" if x == "recency" else "frequency (orders, log)"
    return alt.Chart(data).mark_circle(size=28, opacity=0.65).encode(
        x=alt.X("plotted:Q", scale=alt.Scale(type="log"), title=x_title),
        y=alt.Y("monetary:Q", scale=alt.Scale(type="log"), title=f"spend ({currency_prefix(currency).strip()}, log)",
                axis=alt.Axis(format=",.2~f")),  # not "~s": its "100m" for 0.1 reads as 100 million
        color=alt.Color("segment:N", sort=names, scale=alt.Scale(
            domain=names, range=[colors.get(n, NOT_SEGMENTED_COLOR) for n in names]),
            # Two columns of entries: they wrap under the chart and fit a 390 px phone.
            legend=alt.Legend(title=None, orient="bottom", columns=2, labelLimit=160, symbolType="circle")),
        tooltip=[alt.Tooltip("customer_id:N", title="customer"), alt.Tooltip("segment:N"),
                 alt.Tooltip("recency:Q", title="recency (days)", format=",d"),
                 alt.Tooltip("frequency:Q", title="orders", format=",d"),
                 alt.Tooltip("spend:N", title="spend")],
    ).properties(title=title, height=460).interactive()


SWEEP_PANELS: tuple[tuple[str, str, str], ...] = (
    ("inertia", "Elbow: inertia (lower is tighter)", "inertia"),
    ("silhouette", "Silhouette (higher is better)", "silhouette"),
    ("davies_bouldin", "Davies-Bouldin (lower is better)", "DB index"),
    ("calinski_harabasz", "Calinski-Harabasz (higher is better)", "CH index"),
    ("smallest_cluster_share", "Smallest cluster share", "customers"),
)
RECOMMENDED_COLOR = "#d1495b"
SELECTED_COLOR = "#e9a23b"


def sweep_panel(metrics: pd.DataFrame, column: str, recommended_k: int,
                chosen_k: int | None = None) -> alt.LayerChart | alt.FacetChart:
    """One sweep metric against k, with the recommended k and the selected k as labelled vertical
    rules (a rule, not a star on the curve: the recommendation weighs every metric, so on any one
    panel it may sit on that metric's worst point, and a star there read as "best").

    One small chart per metric, laid out by the page in st.columns: columns stack on a phone, so the
    panels stack with them and their titles never overlap."""
    title, y_title = next((t, y) for c, t, y in SWEEP_PANELS if c == column)
    data = metrics[["k", column]].rename(columns={column: "value"}).astype({"value": "float64"})
    share = column == "smallest_cluster_share"
    y_format = ".0%" if share else ("~s" if column in ("inertia", "calinski_harabasz") else ".2f")
    x = alt.X("k:Q", title="k (number of segments)", scale=alt.Scale(domain=[int(data["k"].min()),
                                                                            int(data["k"].max())]),
              axis=alt.Axis(tickMinStep=1, format="d"))
    line = alt.Chart(data).mark_line(point=True, color="#3d6fb6").encode(
        x=x, y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False), axis=alt.Axis(format=y_format)),
        tooltip=[alt.Tooltip("k:Q"), alt.Tooltip("value:Q", title=y_title, format=".1%" if share else ",.4~g")])
    marks: list[dict[str, Any]] = [{"k": recommended_k, "label": f"recommended k={recommended_k}",
                                    "color": RECOMMENDED_COLOR, "dy": 0}]
    if chosen_k is not None and chosen_k != recommended_k:
        marks.append({"k": chosen_k, "label": f"selected k={chosen_k}", "color": SELECTED_COLOR, "dy": 14})
    elif chosen_k is not None:
        marks[0]["label"] = f"recommended = selected k={recommended_k}"
    rules = alt.Chart(pd.DataFrame(marks)).mark_rule(strokeDash=[5, 3], strokeWidth=2).encode(
        x="k:Q", color=alt.Color("color:N", scale=None))
    # Labels at the top of the panel, left of their rule when it sits in the right half.
    right_half = (max(recommended_k, chosen_k or 0) - float(data["k"].min())) > (
        float(data["k"].max()) - float(data["k"].min())) / 2
    labels = [alt.Chart(pd.DataFrame([mark])).mark_text(
        align="right" if right_half else "left", dx=-4 if right_half else 4, dy=int(mark["dy"]), baseline="top",
        fontSize=11, fontWeight="bold", color=str(mark["color"])).encode(x="k:Q", y=alt.value(2), text="label:N")
        for mark in marks]
    return alt.layer(line, rules, *labels).properties(
        title=alt.Title(title, anchor="start", fontSize=14), height=250)


def position_chart(position: pd.DataFrame, customer: Mapping[str, float], colors: Mapping[str, str],
                   currency: str = "GBP") -> go.Figure:
    """Per feature (log scale), every segment centroid and the scored customer, on one strip each.

    Ticks at powers of ten only (1, 10, 100, 1,000): plotly's default log ticks label every digit in
    between and cluttered the strips."""
    features = ("recency", "frequency", "monetary")
    prefix = currency_prefix(currency).strip()
    fig = make_subplots(rows=3, cols=1, vertical_spacing=0.22,
                        subplot_titles=("recency (days since last purchase)", "frequency (orders)",
                                        f"spend ({prefix})"))
    for row, feature in enumerate(features, start=1):
        # Legend in the model's value order (cluster 0 first), not nearest first: the same on every score.
        for record in position.sort_values("cluster", kind="stable").itertuples(index=False):
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
        fig.update_xaxes(type="log", dtick=1, tickformat=",.0f", minor={"showgrid": False, "ticks": ""},
                         showgrid=True, row=row, col=1)
        fig.update_yaxes(visible=False, row=row, col=1)
    fig = _layout(fig, "The customer against the segment centroids", height=480,
                  legend={"orientation": "h", "y": -0.15, "x": 0, "xanchor": "left"})
    fig.update_layout(margin={"l": 10, "r": 10, "t": 90, "b": 10})  # room between the title and the first strip
    return fig


__all__ = [
    "EXTRA_PALETTE",
    "GRID_COLORS",
    "NAME_COLORS",
    "NOT_SEGMENTED_COLOR",
    "customer_scatter",
    "heatmap_domain",
    "lorenz_chart",
    "name_color",
    "name_colors",
    "pareto_chart",
    "position_chart",
    "rf_grid_chart",
    "rf_heatmap",
    "segment_colors",
    "segment_order",
    "segment_share_chart",
    "sweep_panel",
    "vega_lite_spec",
]
