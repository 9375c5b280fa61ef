"""Over time: who moved between segments (Sankey, biggest moves, campaign list), segment sizes at every
period end, and whether the segments predict who buys next. Follows the sidebar's data, snapshot,
returns policy and active model; the work is done by rfm.service.timeline."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from rfm.dashboard import format as fmt
from rfm.dashboard import state as app_state
from rfm.dashboard import tables
from rfm.dashboard import timeline_views as views
from rfm.errors import RfmError
from rfm.service import timeline

ctx = app_state.context()
who = app_state.principal()
app_state.page_header("Over time", ctx)

snapshot = ctx.dataset.snapshot
choices = views.by_choices(ctx)
if st.session_state.get("time_by") not in (*choices, None):  # the model went away since it was picked
    del st.session_state["time_by"]
by = st.segmented_control(
    "Segments", choices, default=choices[0], key="time_by",
    format_func=lambda c: f"Model {ctx.version}" if c == "model" else views.BY_LABELS[c],
    help="The active model applied at every snapshot, or the classic R×F grid of the RFM table.") or choices[0]
view = views.time_view(ctx, by)
model, segments, common = view.model, view.segments, view.common
returns, memory = view.returns, view.memory_limit
try:
    source = views.source_of(ctx.data_key, ctx.settings)
except RfmError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

# --- movement between two snapshots -------------------------------------------------------------------
st.subheader("Movement between two snapshots")
left, right = st.columns(2)
start = left.date_input("First snapshot", value=snapshot - timedelta(days=timeline.DEFAULT_LOOKBACK_DAYS),
                        max_value=snapshot, key=f"time_from_{snapshot}",
                        help="Segments from the lines before this date.")
end = right.date_input("Second snapshot", value=snapshot, max_value=snapshot, key=f"time_to_{snapshot}",
                       help="Segments from the lines before this date; revenue is counted between the two.")
moves: pd.DataFrame | None = None
try:
    moves = views.migration(*common, start, end, returns, memory, source, model)
except RfmError as exc:
    st.error(str(exc), icon=":material/error:")
if moves is not None and not moves.empty:
    total = int(moves["customers"].sum())
    new = int(moves.loc[moves["from_segment"] == timeline.NOT_YET, "customers"].sum())
    cols = st.columns(3)
    cols[0].metric("Customers at the second snapshot", fmt.count(total))
    cols[1].metric("New since the first", fmt.count(new), help="No purchase before the first snapshot")
    cols[2].metric("Stayed in their segment", fmt.percent(views.stayed_share(moves)),
                   help="Of the customers who were already customers at the first snapshot")
    st.vega_lite_chart(spec=views.sankey_spec(view, start, end, moves), key="time_sankey")

    st.markdown("**Biggest moves** · select a row for its customer list")
    shortlist = views.biggest_moves(moves)
    event = st.dataframe(tables.styled(views.as_percent(shortlist, "share_of_from"), ctx.currency, key="time_moves"),
                         hide_index=True, key="time_moves", on_select="rerun", selection_mode="single-row",
                         column_config=views.moves_column_config())
    rows = event.selection.rows if event is not None else []
    if not shortlist.empty:
        chosen = shortlist.iloc[rows[0] if rows else 0]
        move_from, move_to = str(chosen["from_segment"]), str(chosen["to_segment"])
        try:
            timeline.require_export(who)
        except RfmError as exc:
            st.caption(f"Customer lists: {exc}")
        else:
            try:
                listed = views.move_customers(*common, start, end, move_from, move_to, returns, memory, source, model)
            except RfmError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                def _record(count: int, first: str, second: str) -> None:
                    """The download's click: one audit line (who, data, segments, move, rows)."""
                    try:
                        timeline.record_move_export(who, audit_log=str(ctx.settings.audit_log),
                                                    data=ctx.dataset.label, segments=segments, start=start,
                                                    end=end, from_segment=first, to_segment=second, rows=count)
                    except RfmError as exc:
                        st.session_state["time_audit_error"] = str(exc)

                st.download_button(
                    f"Download {fmt.count(len(listed))} customers: {move_from} → {move_to} (CSV)",
                    data=timeline.move_csv(listed), file_name=views.move_file_name(move_from, move_to, start, end),
                    mime="text/csv", type="primary", icon=":material/download:", key="time_download",
                    on_click=_record, args=(len(listed), move_from, move_to), disabled=listed.empty)
                if "time_audit_error" in st.session_state:
                    st.error(f"The download was not recorded: {st.session_state.pop('time_audit_error')}")

# --- segment sizes over time --------------------------------------------------------------------------
st.subheader("Segment sizes over time")
left, right = st.columns(2)
every = left.segmented_control("Snapshot every", list(timeline.PERIODS), default=views.DEFAULT_EVERY,
                               key="time_every") or views.DEFAULT_EVERY
measure = right.segmented_control("Show", ["customers", "revenue"], default=views.DEFAULT_MEASURE, key="time_measure",
                                  format_func=lambda m: "Customers" if m == "customers" else "Revenue in the period"
                                  ) or views.DEFAULT_MEASURE
try:
    sizes = views.trend(*common, every, returns, memory, source, model)
except RfmError as exc:
    st.error(str(exc), icon=":material/error:")
else:
    st.vega_lite_chart(spec=views.trend_spec(view, every, measure, sizes), key="time_trend")
    st.caption(f"{sizes['snapshot'].nunique()} snapshots, each from the lines before the first day of a {every}; "
               "revenue is what the segment's customers brought in the period just ended.")

# --- do the segments predict who buys next? -----------------------------------------------------------
st.subheader("Do the segments predict who buys next?")
left, right = st.columns(2)
horizon = int(right.number_input("Next period (days)", min_value=7, max_value=730, value=views.DEFAULT_HORIZON_DAYS,
                                 step=30, key="time_horizon"))
checked = left.date_input("Segments at", value=snapshot - timedelta(days=views.DEFAULT_CHECK_LOOKBACK_DAYS),
                          max_value=snapshot, key=f"time_validate_{snapshot}",
                          help="The segments of this snapshot are compared with what their customers did next.")
try:
    checks = views.validation(*common, checked, horizon, returns, memory, source, model)
except RfmError as exc:
    st.error(str(exc), icon=":material/error:")
else:
    left, right = st.columns(2)
    repeat_spec, revenue_spec = views.validation_specs(view, checked, horizon, checks)
    left.vega_lite_chart(spec=repeat_spec, key="time_repeat")
    right.vega_lite_chart(spec=revenue_spec, key="time_revenue_per_customer")
    st.dataframe(tables.styled(views.as_percent(checks, "repeat_rate"), ctx.currency, key="time_validation_table",
                               decimals={"revenue_per_customer": 2}), hide_index=True, key="time_validation_table",
                 column_order=["segment", "customers", "repeat_customers", "repeat_rate", "revenue",
                               "revenue_per_customer"], column_config=views.validation_column_config())
