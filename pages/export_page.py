"""Export: choose segments (and filters), see the row count, download the customer list as CSV."""

from __future__ import annotations

import re

import streamlit as st

from rfm.dashboard import state as app_state
from rfm.dashboard import views as dd

ctx = app_state.context()
app_state.page_header("Export", ctx)
if not app_state.require_model(ctx):
    st.stop()

segments = st.multiselect("Segments to export", ctx.order, default=ctx.order[:1], key="export_segments")
cols = st.columns(3)
countries = dd.countries(ctx.assigned)
picked = cols[0].multiselect("Countries (optional)", countries, placeholder="All countries",
                             key="export_countries", disabled=not countries)
min_monetary = cols[1].number_input("Minimum monetary (optional)", value=None, min_value=0.0, step=50.0,
                                    key="export_min_monetary", placeholder="no minimum")
max_recency = cols[2].number_input("Bought within the last N days (optional)", value=None, min_value=0, step=30,
                                   key="export_max_recency", placeholder="any time")

if not segments:
    st.info("Choose at least one segment.")
    st.stop()
rows = dd.export_frame(dd.filter_customers(ctx.assigned, segments, picked, min_monetary,
                                           int(max_recency) if max_recency is not None else None))
st.metric("Customers to export", f"{len(rows):,}")
slug = re.sub(r"[^a-z0-9]+", "-", "-".join(segments).lower()).strip("-")[:60] or "customers"
st.download_button(
    f"Download {len(rows):,} customers as CSV", data=dd.to_csv_bytes(rows), file_name=f"customers-{slug}.csv",
    mime="text/csv", type="primary", disabled=rows.empty, icon=":material/download:", key="export_download",
    on_click="ignore",
)
st.dataframe(rows.head(200), hide_index=True, key="export_preview")
if len(rows) > 200:
    st.caption(f"Preview of the first 200 of {len(rows):,} rows (most valuable first).")
