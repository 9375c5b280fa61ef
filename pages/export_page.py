"""Export: choose segments (and filters), see the row count, download the customer list as CSV."""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import format as fmt
from rfm.dashboard import state as app_state
from rfm.dashboard import tables, urlstate
from rfm.dashboard.views import export_file_name
from rfm.errors import RfmError
from rfm.service import access, insights, segmentation

ctx = app_state.context()
who = app_state.principal()
app_state.page_header("Export", ctx)
if not app_state.require_model(ctx) or ctx.segmentation is None:
    st.stop()

countries = insights.countries(ctx.segmentation.assigned)
urlstate.keep_valid("export_segments", ctx.order)
urlstate.keep_valid("export_countries", countries)
if "export_segments" not in st.session_state:  # the most valuable segment, unless a link says otherwise
    st.session_state["export_segments"] = ctx.order[:1]
segments = st.multiselect("Segments to export", ctx.order, key="export_segments")
cols = st.columns(3)
picked = cols[0].multiselect("Countries (optional)", countries, placeholder="All countries",
                             key="export_countries", disabled=not countries)
min_monetary = cols[1].number_input(f"Minimum spend in {ctx.currency} (optional)", value=None, min_value=0.0,
                                    step=50.0, key="export_min_monetary", placeholder="no minimum")
max_recency = cols[2].number_input("Bought within the last N days (optional)", value=None, min_value=0, step=30,
                                   key="export_max_recency", placeholder="any time")
urlstate.put("segments", segments)
urlstate.put("countries", picked)
urlstate.put("min_spend", min_monetary)
urlstate.put("max_recency", max_recency)

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
st.metric("Customers to export", fmt.count(len(rows)))


def _record_download(count: int, chosen: segmentation.ExportFilter) -> None:
    """The download's click: one audit line (who, version, segments, filters, rows)."""
    if ctx.segmentation is None:
        return
    try:
        access.record_export(who, ctx.segmentation, chosen, count, audit_log=ctx.settings.audit_log)
    except RfmError as exc:
        st.session_state["export_audit_error"] = str(exc)


st.download_button(
    f"Download {fmt.count(len(rows))} customers as CSV", data=segmentation.export_csv(rows),
    file_name=export_file_name(segments, ctx.order, ctx.version), mime="text/csv", type="primary", disabled=rows.empty,
    icon=":material/download:", key="export_download", on_click=_record_download, args=(len(rows), filters),
)
if "export_audit_error" in st.session_state:
    st.error(f"The download was not recorded: {st.session_state.pop('export_audit_error')}")
st.caption("In the file, each row also carries its segment's description and recommended action (the playbook), "
           f"the snapshot ({ctx.dataset.snapshot}) and the model version ({ctx.version}). Spend is in {ctx.currency}, "
           f"{ctx.dataset.returns.label}.")
# The preview leaves out what is the same on every row (playbook text per segment, snapshot, version),
# so it fits the page; the file has every column.
preview = rows.head(200).drop(columns=["segment_description", "recommended_action", "snapshot_date",
                                       "model_version"], errors="ignore")
tables.table(preview, key="export_preview", currency=ctx.currency, decimals={"monetary": 2},
             overrides={c: st.column_config.NumberColumn(fmt.header(c), format="%d", width=70)
                        for c in ("cluster", "r_score", "f_score", "m_score")})
if len(rows) > 200:
    st.caption(f"Preview of the first 200 of {fmt.count(len(rows))} rows (most valuable first).")
