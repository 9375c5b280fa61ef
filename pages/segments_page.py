"""Segments: RFM heatmap, the R x F grid, per-segment profiles and customers by segment."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import charts
from rfm.dashboard import state as app_state
from rfm.service import insights, segmentation

ctx = app_state.context()
app_state.page_header("Segments", ctx)
if not app_state.require_model(ctx) or ctx.segmentation is None or ctx.model is None:
    st.stop()
assigned = ctx.segmentation.assigned

countries = insights.countries(assigned)
filters = st.columns([2, 2, 1])
chosen = filters[0].multiselect("Segments", ctx.order, placeholder="All segments", key="seg_filter")
picked_countries = filters[1].multiselect("Countries", countries, placeholder="All countries", key="seg_countries",
                                          disabled=not countries)
axis = filters[2].radio("Scatter x axis", ["recency", "frequency"], horizontal=True, key="seg_axis")
view = segmentation.filter_customers(
    ctx.segmentation, segmentation.ExportFilter(segments=tuple(chosen), countries=tuple(picked_countries)))
if view.empty:
    st.warning("No customer matches these filters.")
    st.stop()
st.caption(f"{len(view):,} of {len(assigned):,} customers shown.")

key = (ctx.data_key, ctx.model_key, tuple(chosen), tuple(picked_countries))  # what the charts below show
left, right = st.columns(2)
heatmap = app_state.chart_spec("rf_heatmap", key, lambda: charts.rf_heatmap(*insights.rf_heatmap_data(view)))
left.vega_lite_chart(spec=heatmap, key="seg_heatmap")
grid = app_state.chart_spec("rf_grid", key, lambda: charts.rf_grid_chart(insights.grid_frame(view)))
right.vega_lite_chart(spec=grid, key="seg_grid")

st.subheader("Segment profiles")
profiles = segmentation.segment_summary(view, ctx.model)
profiles.insert(1, "description", [insights.segment_description(s) for s in profiles["segment"]])
st.dataframe(
    profiles, hide_index=True, key="seg_profiles",
    column_config={
        "customer_share": st.column_config.ProgressColumn("customers %", format="percent", min_value=0,
                                                          max_value=1),
        "revenue_share": st.column_config.ProgressColumn("revenue %", format="percent", min_value=0, max_value=1),
        "revenue": st.column_config.NumberColumn(format="%.0f"),
        **{c: st.column_config.NumberColumn(format="%.1f") for c in profiles.columns
           if c.endswith(("_mean", "_median"))},
    },
)
st.vega_lite_chart(spec=app_state.chart_spec("customer_scatter", (*key, axis),
                                            lambda: charts.customer_scatter(view, ctx.colors, ctx.order, x=axis)),
                   key="seg_scatter")
