"""Export: choose segments (and filters), see the row count, download the customer list as CSV."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import state as app_state
from rfm.dashboard.views import export_file_name
from rfm.errors import RfmError
from rfm.service import access, insights, segmentation

ctx = app_state.context()
who = app_state.principal()
app_state.page_header("Export", ctx)
if not app_state.require_model(ctx) or ctx.segmentation is None:
    st.stop()

segments = st.multiselect("Segments to export", ctx.order, default=ctx.order[:1], key="export_segments")
cols = st.columns(3)
countries = insights.countries(ctx.segmentation.assigned)
picked = cols[0].multiselect("Countries (optional)", countries, placeholder="All countries",
                             key="export_countries", disabled=not countries)
min_monetary = cols[1].number_input("Minimum monetary (optional)", value=None, min_value=0.0, step=50.0,
                                    key="export_min_monetary", placeholder="no minimum")
max_recency = cols[2].number_input("Bought within the last N days (optional)", value=None, min_value=0, step=30,
                                   key="export_max_recency", placeholder="any time")

if not segments:
    st.info("Choose at least one segment.")
    st.stop()
filters = segmentation.ExportFilter(
    segments=tuple(segments), countries=tuple(picked), min_monetary=min_monetary,
    max_recency=int(max_recency) if max_recency is not None else None)
try:
    rows = access.export_rows(who, ctx.segmentation, filters)
except RfmError as exc:
    st.error(str(exc))
    st.stop()
st.metric("Customers to export", f"{len(rows):,}")


def _record_download(count: int, chosen: segmentation.ExportFilter) -> None:
    """The download's click: one audit line (who, version, segments, filters, rows)."""
    if ctx.segmentation is None:
        return
    try:
        access.record_export(who, ctx.segmentation, chosen, count, audit_log=ctx.settings.audit_log)
    except RfmError as exc:
        st.session_state["export_audit_error"] = str(exc)


st.download_button(
    f"Download {len(rows):,} customers as CSV", data=segmentation.export_csv(rows),
    file_name=export_file_name(segments), mime="text/csv", type="primary", disabled=rows.empty,
    icon=":material/download:", key="export_download", on_click=_record_download, args=(len(rows), filters),
)
if "export_audit_error" in st.session_state:
    st.error(f"The download was not recorded: {st.session_state.pop('export_audit_error')}")
st.dataframe(rows.head(200), hide_index=True, key="export_preview")
if len(rows) > 200:
    st.caption(f"Preview of the first 200 of {len(rows):,} rows (most valuable first).")
