"""Figures of the "Over time" page: pure functions of the timeline service's tables, no Streamlit.

Plotly, as the Model and Score pages: Vega-Lite has no Sankey. Every segment keeps the colour it has on
the other pages (the model's colours, or the R x F grid's palette); "not yet a customer" is a pale grey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

NOT_YET_COLOR = "#d5dbe1"
FALLBACK_COLOR = "#a8a8a8"
FONT = "Source Sans Pro, sans-serif"
LAYOUT: dict[str, object] = {"template": "plotly_white", "font": {"family": FONT, "size": 13},
                             "margin": {"l": 10, "r": 10, "t": 50, "b": 10}}


def _rgba(color: str, alpha: float) -> str:
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha})"


def _title(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, height=height, **LAYOUT)
    return fig


def sankey(moves: pd.DataFrame, order: Sequence[str], colors: Mapping[str, str], *, start: str, end: str,
           not_yet: str) -> go.Figure:
    """Customers flowing from their segment at `start` (left) to their segment at `end` (right): one
    band per (from, to) pair of the migration table, as wide as its customers."""
    rank = {name: i for i, name in enumerate([not_yet, *order])}
    left = sorted(moves["from_segment"].unique(), key=lambda s: rank.get(s, len(rank)))
    right = sorted(moves["to_segment"].unique(), key=lambda s: rank.get(s, len(rank)))
    left_total = moves.groupby("from_segment")["customers"].sum()
    right_total = moves.groupby("to_segment")["customers"].sum()
    labels = [f"{s} · {left_total[s]:,}" for s in left] + [f"{s} · {right_total[s]:,}" for s in right]
    node_colors = [NOT_YET_COLOR if s == not_yet else colors.get(s, FALLBACK_COLOR) for s in left]
    node_colors += [colors.get(s, FALLBACK_COLOR) for s in right]
    index_left = {s: i for i, s in enumerate(left)}
    index_right = {s: len(left) + i for i, s in enumerate(right)}
    link_colors = [_rgba(NOT_YET_COLOR if s == not_yet else colors.get(s, FALLBACK_COLOR), 0.45)
                   for s in moves["from_segment"]]
    custom = [[f, t, f"{c:,}", f"{r:,.0f}"] for f, t, c, r in
              zip(moves["from_segment"], moves["to_segment"], moves["customers"], moves["revenue"], strict=True)]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        textfont={"color": "#1f2933", "size": 13, "family": FONT, "shadow": "none"},
        node={"label": labels, "color": node_colors, "pad": 14, "thickness": 16,
              "line": {"color": "white", "width": 0.5},
              "hovertemplate": "%{label} customers<extra></extra>"},
        link={"source": [index_left[s] for s in moves["from_segment"]],
              "target": [index_right[s] for s in moves["to_segment"]],
              "value": moves["customers"].tolist(), "color": link_colors, "customdata": custom,
              "hovertemplate": "%{customdata[0]} → %{customdata[1]}<br>%{customdata[2]} customers, revenue "
                               "%{customdata[3]} between the snapshots<extra></extra>"},
    ))
    fig.add_annotation(x=0, y=1.09, xref="paper", yref="paper", text=f"<b>{start}</b>", showarrow=False,
                       xanchor="left")
    fig.add_annotation(x=1, y=1.09, xref="paper", yref="paper", text=f"<b>{end}</b>", showarrow=False,
                       xanchor="right")
    _title(fig, "Movement between segments", max(420, 26 * max(len(left), len(right)) + 120))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 95, "b": 10})
    return fig


def sizes_over_time(trend: pd.DataFrame, order: Sequence[str], colors: Mapping[str, str],
                    measure: str = "customers") -> go.Figure:
    """Stacked bars: each snapshot's customers (or period revenue) by segment, most valuable on top."""
    label = "customers" if measure == "customers" else "revenue in the period"
    fig = go.Figure()
    snapshots = sorted(trend["snapshot"].unique())
    x = [pd.Timestamp(s) for s in snapshots]
    present = [s for s in order if s in set(trend["segment"])]
    for segment in reversed(present):  # plotly stacks the first trace at the bottom
        rows = trend[trend["segment"] == segment].set_index("snapshot").reindex(snapshots)
        values = rows[measure].fillna(0).tolist()
        shares = rows["share"].fillna(0).tolist()
        fig.add_trace(go.Bar(
            x=x, y=values, name=segment, marker_color=colors.get(segment, FALLBACK_COLOR),
            customdata=[[f"{v:,.0f}", f"{s:.1%}"] for v, s in zip(values, shares, strict=True)],
            hovertemplate=f"<b>{segment}</b><br>%{{x|%Y-%m-%d}}: %{{customdata[0]}} {label}"
                          + (" (%{customdata[1]} of customers)" if measure == "customers" else "")
                          + "<extra></extra>"))
    fig.update_layout(barmode="stack", bargap=0.25,
                      # below the bars: on a phone a legend above wraps into the title
                      legend={"traceorder": "reversed", "title": None, "orientation": "h", "x": 0, "y": -0.12,
                              "xanchor": "left", "yanchor": "top"},
                      xaxis={"title": None, "tickformat": "%b %Y"},
                      yaxis={"title": label, "tickformat": ",.0f", "rangemode": "tozero"})
    _title(fig, "Segment sizes over time" if measure == "customers" else "Revenue by segment over time", 460)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _segment_bars(validation: pd.DataFrame, colors: Mapping[str, str], column: str, title: str, text: list[str],
                  hover: str, customdata: list[list[str]], tickformat: str, top: float) -> go.Figure:
    names = validation["segment"].tolist()
    fig = go.Figure(go.Bar(
        y=names, x=validation[column], orientation="h", marker_color=[colors.get(s, FALLBACK_COLOR) for s in names],
        text=text, textposition="outside", cliponaxis=False, customdata=customdata, hovertemplate=hover))
    fig.update_xaxes(tickformat=tickformat, range=[0, top], fixedrange=True)
    fig.update_yaxes(autorange="reversed", fixedrange=True)
    _title(fig, title, max(260, 34 * len(names) + 90))
    fig.update_layout(margin={"l": 10, "r": 40, "t": 50, "b": 10}, showlegend=False)
    return fig


def repeat_rate_chart(validation: pd.DataFrame, colors: Mapping[str, str], *, horizon_days: int) -> go.Figure:
    """Per segment (most valuable on top): the share of its customers who bought again within the horizon."""
    top = float(validation["repeat_rate"].max()) if len(validation) else 0.0
    return _segment_bars(
        validation, colors, "repeat_rate", f"Bought again within {horizon_days:,} days",
        [f"{v:.1%}" for v in validation["repeat_rate"]],
        "<b>%{y}</b><br>%{customdata[1]} of %{customdata[0]} customers (%{x:.1%})<extra></extra>",
        [[f"{c:,}", f"{r:,}"] for c, r in zip(validation["customers"], validation["repeat_customers"], strict=True)],
        ".0%", min(1.15, max(top, 0.01) * 1.3))


def revenue_per_customer_chart(validation: pd.DataFrame, colors: Mapping[str, str], *, horizon_days: int) -> go.Figure:
    """Per segment (most valuable on top): what its customers brought in the horizon, per customer."""
    top = float(validation["revenue_per_customer"].max()) if len(validation) else 0.0
    return _segment_bars(
        validation, colors, "revenue_per_customer", f"Revenue per customer in those {horizon_days:,} days",
        [f"{v:,.0f}" for v in validation["revenue_per_customer"]],
        "<b>%{y}</b><br>%{x:,.2f} per customer (segment total %{customdata[0]})<extra></extra>",
        [[f"{r:,.0f}"] for r in validation["revenue"]], ",.0f", max(top, 1.0) * 1.3)
