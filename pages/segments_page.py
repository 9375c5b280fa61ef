"""Segments: RFM heatmap, the R x F grid, per-segment profiles with the playbook (what each segment is
and what to do), and customers by segment. The filters live in the URL."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import charts, tables, urlstate
from rfm.dashboard import format as fmt
from rfm.dashboard import state as app_state
from rfm.service import insights, segmentation

ctx = app_state.context()
app_state.page_header("Segments", ctx)
if not app_state.require_model(ctx) or ctx.segmentation is None or ctx.model is None:
    st.stop()
assigned = ctx.segmentation.assigned

countries = insights.countries(assigned)
urlstate.keep_valid("seg_filter", ctx.order)
urlstate.keep_valid("seg_countries", countries)
urlstate.keep_valid("seg_axis", ["recency", "frequency"])
filters = st.columns([2, 2, 1])
chosen = filters[0].multiselect("Segments", ctx.order, placeholder="All segments", key="seg_filter")
picked_countries = filters[1].multiselect("Countries", countries, placeholder="All countries", key="seg_countries",
                                          disabled=not countries)
axis = filters[2].radio("Scatter x axis", ["recency", "frequency"], horizontal=True, key="seg_axis")
urlstate.put("segments", chosen)
urlstate.put("countries", picked_countries)
urlstate.put("axis", axis if axis != "recency" else None)
view = segmentation.filter_customers(
    ctx.segmentation, segmentation.ExportFilter(segments=tuple(chosen), countries=tuple(picked_countries)))
if view.empty:
    st.warning("No customer matches these filters.")
    st.stop()
st.caption(f"{fmt.count(len(view))} of {fmt.count(len(assigned))} customers shown.")

filter_key = (tuple(chosen), tuple(picked_countries))
specs = app_state.segments_charts(ctx, view, filter_key, axis)
left, right = st.columns(2)
left.vega_lite_chart(spec=specs["heatmap"], key="seg_heatmap")
right.vega_lite_chart(spec=specs["grid"], key="seg_grid")

st.subheader("Segment profiles")
profiles = app_state.segment_profiles(ctx, view, filter_key)
defaults = segmentation.default_names(ctx.model)
entries = [segmentation.playbook_entry(s, ctx.playbook, defaults.get(s)) for s in profiles["segment"]]
profiles.insert(1, "description", [e.description for e in entries])
profiles.insert(2, "action", [e.action for e in entries])
numbers = profiles.drop(columns=["description", "action"])
# Markdown, not a data grid: a few rows read whole (cells wrap on a phone), and the page's first visit does
# not wait for the browser to load and compile the grid's code (0.75 -> 0.58-0.67 s, medians of 4 visits).
st.markdown(tables.markdown_frame(numbers[[c for c in numbers.columns if not c.endswith("_median")]],
                                  ctx.currency))
st.caption("Means per segment; recency in days before the snapshot, spend in " + ctx.currency + ". "
           "Medians are in the export's report (`rfm report`).")
st.subheader("Playbook: what each segment is and what to do")
# Text, not a table: advice is a sentence or two, and table cells cut it short (worse on a phone).
for segment, entry in zip(profiles["segment"], entries, strict=True):
    color = ctx.colors.get(segment, charts.NOT_SEGMENTED_COLOR)
    st.markdown(f"{fmt.colored('■', color)} **{fmt.markdown_text(segment)}**: {fmt.markdown_text(entry.description)}"
                f"  \n*Recommended action:* {fmt.markdown_text(entry.action)}")
st.vega_lite_chart(spec=specs["scatter"], key="seg_scatter")
