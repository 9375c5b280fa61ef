"""Model: choose k from the sweep, retrain, review and name the new segments, save, promote."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from rfm.dashboard import charts, tables, views
from rfm.dashboard import format as fmt
from rfm.dashboard import state as app_state
from rfm.errors import RfmError
from rfm.model.sweep import SweepResult
from rfm.service import access, models, segmentation
from rfm.service.access import Action

ctx = app_state.context()
who = app_state.principal()
app_state.page_header("Model", ctx)
state = st.session_state
analyst = who.can(Action.RETRAIN)  # marketers see the sweep, the names and the versions, and change nothing
playbook = ctx.playbook


def naming_widths() -> dict[str, Any]:
    """Column widths that keep the naming table inside a 1440 px page (the advice columns get the room)."""
    config = tables.column_config(pd.DataFrame(columns=list(views.NAMING_COLUMNS)))
    config["cluster"] = st.column_config.NumberColumn("Cluster", width=55, format="%d")
    for column, width in (("name", 140), ("description", 215), ("action", 215)):
        config[column] = st.column_config.TextColumn(fmt.header(column), width=width,
                                                     help="Double-click to edit" if analyst else None)
    numbers = (("customers", "Customers", 80, "%,d"), ("recency", "Recency (days)", 95, "%,.0f"),
               ("frequency", "Orders", 65, "%,.1f"), ("monetary", "Spend", 90, None))  # money: fmt.money's text
    for column, label, width, printf in numbers:
        config[column] = st.column_config.NumberColumn(label, width=width, format=printf)
    return config


def naming_editor(table: pd.DataFrame, key: str) -> dict[str, Any]:
    """The naming data_editor's arguments: the table with its spend as fmt.money writes it, editable
    name, description and action; the rest read-only."""
    return {"data": tables.styled(table, ctx.currency, key=key), "key": key, "hide_index": True,
            "column_order": list(views.NAMING_COLUMNS), "column_config": naming_widths(),
            "disabled": [c for c in table.columns if c not in views.EDITABLE_COLUMNS], "width": "stretch"}


# --- choosing k ----------------------------------------------------------------------------------
result: SweepResult | None
try:
    result = app_state.sweep_for(ctx.data_key, ctx.dataset)
except RfmError as exc:
    result = None
    st.error(f"The k sweep cannot run on this data: {exc}")
if result is not None:
    k = st.slider("Number of segments (k)", 2, 10, value=result.recommended_k, key="model_k")
    swept: SweepResult = result
    panels = app_state.sweep_charts(ctx, swept, k)
    # One chart a metric, three to a row: st.columns stack on a phone, so the panels do too.
    names = list(panels)
    for start in range(0, len(names), 3):
        row = st.columns(3)
        for slot, column in zip(row, names[start:start + 3], strict=False):
            slot.vega_lite_chart(spec=panels[column], key=f"model_sweep_{column}")
    st.caption(f"Recommended k = {result.recommended_k}: {result.reason} ({result.silhouette_note}). "
               f"Red rule: the recommended k; amber rule: the k selected on the slider.")
else:
    k = st.slider("Number of segments (k)", 2, 10, value=4, key="model_k")

# --- retrain -------------------------------------------------------------------------------------
if not analyst:
    st.caption(f"You are signed in as a {who.role.value if who.role else 'user without a role'}: retraining, "
               "renaming and promoting are for analysts.")
elif st.button(f"Retrain with k={k}", type="primary", icon=":material/model_training:", key="model_retrain"):
    progress = st.progress(0.05, text=f"Training k={k} on {len(ctx.dataset.customers):,} customers…")
    try:
        candidate = access.train(who, ctx.dataset, k, sweep_result=result)
        progress.progress(0.8, text="Profiling the new segments…")
        state["candidate"] = {"model": candidate, "data_key": ctx.data_key}
        progress.progress(1.0, text=f"Trained k={k}: review and name the segments, then save.")
    except RfmError as exc:
        progress.empty()
        st.error(f"Training failed: {exc}")

candidate_info = state.get("candidate")
if candidate_info is not None and candidate_info["data_key"] == ctx.data_key and analyst:
    candidate = candidate_info["model"]
    st.subheader(f"New model (k={candidate.k}, not saved yet)")
    metrics = candidate.metadata.metrics
    st.caption(f"Silhouette {metrics.silhouette:.3f} · Davies-Bouldin {metrics.davies_bouldin:.3f} · "
               f"smallest cluster {fmt.percent(metrics.smallest_cluster_share)} of customers")
    colors = charts.segment_colors(candidate)
    profile = segmentation.segment_summary(candidate.assign(ctx.dataset.customers), candidate)
    st.vega_lite_chart(spec=charts.segment_share_chart(profile, colors), key="candidate_shares")
    table = views.naming_table(candidate, playbook)
    edited = st.data_editor(**naming_editor(table, "candidate_names"))
    promote = st.checkbox("Promote it (make it the model the server and `rfm score` use)", key="candidate_promote")
    if st.button("Save as a new version", icon=":material/save:", key="candidate_save"):
        try:
            named = candidate.renamed_many(views.renames(table, edited))
            version = access.save(who, ctx.store, named, promote=promote, audit_log=ctx.settings.audit_log)
            segmentation.save_playbook(who, ctx.store.root, views.playbook_edits(table, edited),
                                       audit_log=ctx.settings.audit_log)
            del state["candidate"]
            state["pending_version"] = version
            state["flash"] = f"Saved version {version}" + (" and promoted it." if promote else ".")
            st.rerun()
        except RfmError as exc:
            st.error(f"Not saved: {exc}")
elif candidate_info is not None:
    del state["candidate"]  # trained on other data: stale

# The flash message has a slot on every run: when it disappears the elements below keep their place in
# the page, so the naming table is not re-created (which would drop an edit made right after a save).
flash_slot = st.empty()
if "flash" in state:
    flash_slot.success(state.pop("flash"))

# --- the active model: names, promotion ----------------------------------------------------------
st.subheader("Active model")
if ctx.model is not None and ctx.version is not None and not analyst:
    st.caption(f"Version **{ctx.version}**, k={ctx.model.k}"
               + (" (promoted)." if ctx.version == ctx.store.current_version() else " (not promoted)."))
    names_view = views.naming_table(ctx.model, playbook)
    tables.table(names_view[list(views.NAMING_COLUMNS)], key="model_names_view", currency=ctx.currency,
                 overrides=naming_widths())
elif ctx.model is not None and ctx.version is not None:
    st.caption(f"Version **{ctx.version}**, k={ctx.model.k}. Edit names, descriptions and recommended "
               "actions in the table (double-click a cell), or rename one segment below. A description and "
               "an action belong to the name: every version with that name shows them.")
    table = views.naming_table(ctx.model, playbook)
    edited = st.data_editor(**naming_editor(table, f"names_{ctx.version}"))
    changes = views.renames(table, edited)
    advice = views.playbook_edits(table, edited)
    if st.button("Save names and playbook", disabled=not (changes or advice), key="names_save"):
        try:
            if changes:
                access.rename(who, ctx.store, ctx.version, changes, audit_log=ctx.settings.audit_log)
            written = segmentation.save_playbook(who, ctx.store.root, advice, audit_log=ctx.settings.audit_log)
            state["flash"] = (f"Saved {fmt.plural(len(changes), 'name')} and "
                              f"{fmt.plural(len(written), 'playbook entry', 'playbook entries')} of {ctx.version}.")
            st.rerun()
        except RfmError as exc:
            st.error(f"Names not saved: {exc}")
    with st.form("rename_one"):
        cols = st.columns([2, 3, 1], vertical_alignment="bottom")
        cluster = cols[0].selectbox("Segment", [c.id for c in ctx.model.clusters], key="rename_cluster",
                                    format_func=ctx.model.segment_name)
        new_name = cols[1].text_input("New name", key="rename_name")
        if cols[2].form_submit_button("Rename"):
            try:
                access.rename(who, ctx.store, ctx.version, {int(cluster): new_name},
                              audit_log=ctx.settings.audit_log)
                state["flash"] = f"Renamed cluster {cluster} to {fmt.markdown_text(repr(' '.join(new_name.split())))}."
                st.rerun()
            except RfmError as exc:
                st.error(f"Not renamed: {exc}")
    if ctx.version != ctx.store.current_version():
        if st.button(f"Promote {ctx.version}", icon=":material/publish:", key="model_promote"):
            try:
                access.promote(who, ctx.store, ctx.version, audit_log=ctx.settings.audit_log)
                state["flash"] = f"Promoted {ctx.version}."
                st.rerun()
            except RfmError as exc:
                st.error(f"Not promoted: {exc}")
    else:
        st.caption("This version is the promoted one (models/CURRENT).")

# --- every version ---------------------------------------------------------------------------------
st.subheader("Versions")
versions = views.versions_frame(models.versions(ctx.store))
if versions.empty:
    st.info(f"No saved model in {ctx.store.root}.")
else:
    versions["promoted"] = versions["promoted"].map({True: "promoted", False: ""})
    # Creation time is in the version's name and the elbow is in the sweep: left out, so the table fits.
    shown = versions.drop(columns=["created", "inertia"])
    widths = {"version": 145, "promoted": 75, "k": 35, "snapshot": 95, "customers": 80, "segments": 190,
              "silhouette": 80, "davies_bouldin": 105, "calinski_harabasz": 125}
    config = tables.column_config(shown)
    for column, width in widths.items():
        config[column]["width"] = width
    tables.table(shown, key="model_versions", currency=ctx.currency, overrides=config)
