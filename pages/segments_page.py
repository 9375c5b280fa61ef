"""Segments: RFM heatmap, the R x F grid, per-segment profiles and customers by segment."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import charts
from rfm.dashboard import state as app_state
from rfm.dashboard import views as dd

ctx = app_state.context()
app_state.page_header("Segments", ctx)
if not app_state.require_model(ctx):
    st.stop()

countries = dd.countries(ctx.assigned)
filters = st.columns([2, 2, 1])
chosen = filters[0].multiselect("Segments", ctx.order, placeholder="All segments", key="seg_filter")
picked_countries = filters[1].multiselect("Countries", countries, placeholder="All countries", key="seg_countries",
                                          disabled=not countries)
axis = filters[2].radio("Scatter x axis", ["recency", "frequency"], horizontal=True, key="seg_axis")
view = dd.filter_customers(ctx.assigned, chosen, picked_countries)
if view.empty:
    st.warning("No customer matches these filters.")
    st.stop()
st.caption(f"{len(view):,} of {len(ctx.assigned):,} customers shown.")

key = (ctx.data_key, ctx.model_key, tuple(chosen), tuple(picked_countries))  # what the charts below show
left, right = st.columns(2)
left.vega_lite_chart(spec=app_state.chart_spec("rf_heatmap", key, lambda: charts.rf_heatmap(*dd.rf_heatmap_data(view))),
                     key="seg_heatmap")
right.vega_lite_chart(spec=app_state.chart_spec("rf_grid", key, lambda: charts.rf_grid_chart(dd.grid_frame(view))),
                      key="seg_grid")

st.subheader("Segment profiles")
profiles = dd.segment_summary(view, ctx.model)
profiles.insert(1, "description", [dd.segment_description(s) for s in profiles["segment"]])
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
