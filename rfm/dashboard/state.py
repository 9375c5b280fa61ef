"""The dashboard's session state and caches, and the `Context` every page gets.

Why a module of its own: `streamlit_app.py` renders the sidebar once per run (rfm.dashboard.sidebar,
so its widgets keep their state across page switches) and hands a `Context` to the page; pages stay
thin and call rfm.service. Everything that costs time is cached: `st.cache_data` keyed on the source
key and the RFM parameters, models with `st.cache_resource` keyed on version and metadata mtime (a
rename invalidates it), so switching pages recomputes nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from rfm.config import Settings, load_settings
from rfm.data.query import ReturnsPolicy
from rfm.data.sources import SourceOptions
from rfm.errors import RfmError, first_line
from rfm.service import access, datasets, models
from rfm.service.access import Principal
from rfm.service.datasets import Dataset, DatasetRequest, FileSource
from rfm.service.segmentation import FitIssue, PlaybookEntry, Segmentation, fit_issues, fit_warning, load_playbook

if TYPE_CHECKING:
    import altair as alt
    import plotly.graph_objects as go

    from rfm.model import ModelStore, RevenueConcentration, SegmentModel
    from rfm.model.sweep import SweepResult
    from rfm.serving.clients import ScoringClient

CacheKey = tuple[Hashable, ...]


# --- cached loaders ------------------------------------------------------------------------------


def _request(paths: tuple[str, ...], mapping: tuple[tuple[str, str], ...], snapshot: str, returns: str,
             label: str) -> DatasetRequest:
    source = FileSource(paths, SourceOptions(mapping=dict(mapping) or None), label)
    return DatasetRequest(source, _snapshot(snapshot), ReturnsPolicy(returns))


def _snapshot(text: str) -> date | None:
    """The sidebar's snapshot as the cache keys carry it: "auto" (the day after the log ends) or a date."""
    return None if text == "auto" else date.fromisoformat(text)


@st.cache_data(show_spinner="Computing the RFM table…", max_entries=16)
def _files_dataset(paths: tuple[str, ...], mapping: tuple[tuple[str, str], ...], source_key: str,
                   snapshot: str, returns: str, label: str, memory_limit: str | None) -> Dataset:
    """Keyed on the source key (paths, sizes, mtimes, options): a changed file is a new entry."""
    request = _request(paths, mapping, snapshot, returns, label)
    # With the cleaning report and the revenue reconciliation: the Overview's data panel shows both.
    return datasets.load_dataset(request, memory_limit=memory_limit, with_cleaning_report=True)


@st.cache_data(show_spinner="Running the RFM query in Athena…", max_entries=4, ttl=3600)
def _athena_dataset(athena: tuple[tuple[str, str], ...], snapshot: str, returns: str) -> Dataset:
    from rfm.cloud.athena import athena_config
    from rfm.service.datasets import AthenaSource

    config = athena_config(load_settings({f"athena_{name}": value for name, value in athena}))
    request = DatasetRequest(AthenaSource(config), _snapshot(snapshot), ReturnsPolicy(returns))
    return datasets.load_dataset(request)


@st.cache_data(show_spinner=False, max_entries=32)
def mapping_check(path: str, source_key: str, mapping: tuple[tuple[str, str], ...]) -> datasets.MappingCheck:
    return datasets.check_mapping(path, dict(mapping) or None)


@st.cache_resource(show_spinner=False, max_entries=16)
def _model(root: str, version: str, stamp: int) -> SegmentModel:
    """One loaded model per (version, metadata mtime): renaming rewrites metadata.json, so a renamed
    model is a new entry, never a stale one. The signing key is read here, not passed: a secret is no
    cache key."""
    return models.load(models.open_store(root, signing_key=load_settings().model_signing_key), version)


@st.cache_data(show_spinner=False, max_entries=16)
def _assigned(data_key: CacheKey, model_key: CacheKey, _customers: pd.DataFrame,
              _model_obj: SegmentModel) -> pd.DataFrame:
    return _model_obj.assign(_customers)


@st.cache_data(show_spinner="Sweeping k = 2…10…", max_entries=8)
def sweep_for(data_key: CacheKey, _dataset: Dataset) -> SweepResult:
    """The k sweep of the current data (slow: cached on the data's key)."""
    return models.sweep(_dataset)


@st.cache_data(show_spinner=False, max_entries=8)
def concentration_for(data_key: CacheKey, _customers: pd.DataFrame) -> RevenueConcentration:
    from rfm.service.insights import concentration

    return concentration(_customers)


@st.cache_data(show_spinner=False, max_entries=64)
def chart_spec(name: str, key: CacheKey, _build: Callable[[], alt.TopLevelMixin | dict[str, Any]]) -> dict[str, object]:
    """The Vega-Lite dict of a chart, built once per (name, key): the key must cover everything the
    chart shows (data key, model key, ...); `_build` makes the chart (an Altair chart, or already the
    Vega-Lite dict) on a miss.

    Its datasets are kept as the Arrow IPC bytes st.vega_lite_chart sends (made by Streamlit's own
    converter, which it skips for bytes): otherwise every run turns each dataset's rows into a DataFrame
    and then Arrow again (~0.05 s for the Segments page's three charts at 68,000 customers)."""
    from streamlit import dataframe_util

    from rfm.dashboard.charts import vega_lite_spec

    built = _build()
    spec = built if isinstance(built, dict) else vega_lite_spec(built)
    datasets = spec.get("datasets")
    if isinstance(datasets, dict):
        spec["datasets"] = {name: dataframe_util.convert_anything_to_arrow_bytes(rows)
                            for name, rows in datasets.items()}
    return spec


@st.cache_data(show_spinner=False, max_entries=64)
def _segment_summary(key: CacheKey, _view: pd.DataFrame, _model: SegmentModel) -> pd.DataFrame:
    from rfm.service.segmentation import segment_summary

    return segment_summary(_view, _model)


def segment_profiles(ctx: Context, view: pd.DataFrame, filters: CacheKey = ((), ())) -> pd.DataFrame:
    """`segmentation.segment_summary` of `view` (the customers the Segments page's `filters` leave), once
    per data, model and filters: a group-by over every customer (~0.09 s a run at 68,000 customers)."""
    assert ctx.model is not None
    return _segment_summary((ctx.data_key, ctx.model_key, *filters), view, ctx.model)


@st.cache_resource(show_spinner=False, max_entries=32)
def figure(name: str, key: CacheKey, _build: Callable[[], go.Figure]) -> go.Figure:
    """A plotly figure built once per (name, key), like `chart_spec`. Shared, not copied: a plotly
    Figure is re-validated when unpickled, and `st.plotly_chart` only reads it."""
    return _build()


@st.cache_resource(show_spinner=False, max_entries=8)
def _scoring_client(endpoint: str, root: str, version: str, stamp: int, timeout: float) -> ScoringClient:
    from rfm.service.scoring import scoring_client

    return scoring_client(load_settings({"models_dir": root}), endpoint, version=version or None, timeout=timeout)


def model_stamp(root: Path, version: str) -> int:
    try:
        return (root / version / "metadata.json").stat().st_mtime_ns
    except OSError:
        return 0


def store(config: Settings) -> ModelStore:
    key = config.model_signing_key
    return models.open_store(config.models_dir, signing_key=key.get_secret_value() if key is not None else None)


# --- the context every page gets -----------------------------------------------------------------


@dataclass
class Context:
    """What a page needs: the data, the active model, its segments of every customer and their colours."""

    dataset: Dataset
    data_key: CacheKey
    store: ModelStore
    version: str | None
    endpoint: str
    settings: Settings
    model: SegmentModel | None = None
    segmentation: Segmentation | None = None
    colors: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    model_key: CacheKey = ()  # (models dir, version, metadata mtime): part of every cache key
    playbook: dict[str, PlaybookEntry] = field(default_factory=dict)  # analysts' entries, by segment key
    playbook_error: str | None = None  # a playbook.json that cannot be read: said, defaults used
    pending: Any = None  # sidebar.Pending: a source waiting for the user (upload, column mapping)
    snapshot_note: str | None = None  # a custom snapshot outside the data's range, said on every page

    @property
    def currency(self) -> str:
        return self.settings.currency

    @property
    def assigned(self) -> pd.DataFrame | None:
        return self.segmentation.assigned if self.segmentation is not None else None

    @property
    def fit_issues(self) -> tuple[FitIssue, ...]:
        return self.segmentation.issues if self.segmentation is not None else ()

    def scoring_client(self) -> ScoringClient:
        root = str(self.store.root)
        version = self.version or ""
        return _scoring_client(self.endpoint, root, version, model_stamp(self.store.root, version),
                               self.settings.scoring_timeout)


@dataclass(frozen=True)
class SourceRequest:
    """A source the sidebar asks for: files (paths, mapping, cache key) or Athena settings."""

    kind: str  # "files" or "athena"
    key: CacheKey
    label: str
    paths: tuple[str, ...] = ()
    mapping: tuple[tuple[str, str], ...] = ()
    source_key: str = ""
    athena: tuple[tuple[str, str], ...] = ()  # (setting without athena_, value) pairs


def load(request: SourceRequest, snapshot: str, returns: str, config: Settings) -> Dataset:
    if request.kind == "athena":
        return _athena_dataset(request.athena, snapshot, returns)
    return _files_dataset(request.paths, request.mapping, request.source_key, snapshot, returns, request.label,
                          config.duckdb_memory_limit)


def one_line(exc: BaseException) -> str:
    """Our own errors as they are; anything else with its type, which may be all it says."""
    message = first_line(exc)
    return message if isinstance(exc, RfmError) else f"{type(exc).__name__}: {message}"


def default_request(config: Settings) -> SourceRequest:
    """The default data: RFM_DATA when set, else the demo log (generated on first use)."""
    from rfm.data.sources import expand_paths

    if config.data:
        paths = tuple(expand_paths([os.path.expanduser(p) for p in config.data]))  # "~/data/log.csv" too
        label = ", ".join(Path(p).name for p in config.data)
    else:
        paths = (str(datasets.ensure_demo(config.demo_data)),)
        label = datasets.DEMO_LABEL
    key = datasets.source_key(FileSource(paths))
    return SourceRequest("files", ("files", paths, (), key), label, paths=paths, source_key=key)


def build_context(dataset: Dataset, data_key: CacheKey, config: Settings, model_store: ModelStore,
                  version: str | None, endpoint: str) -> Context:
    """The Context of a data set and model version: the (cached) model, its segments of every customer,
    the fit check and the segment colours. Raises RfmError for a version that cannot be loaded."""
    ctx = Context(dataset, data_key, model_store, version, endpoint, config)
    try:
        ctx.playbook = load_playbook(model_store.root)
    except RfmError as exc:
        ctx.playbook_error = f"The segment playbook is not used: {exc}"
    if not version:
        return ctx
    from rfm.dashboard.charts import segment_colors, segment_order

    model_key = (str(model_store.root), version, model_stamp(model_store.root, version))
    model = _model(*model_key)
    assigned = _assigned(data_key, model_key, dataset.customers, model)
    ctx.model, ctx.model_key = model, model_key
    ctx.segmentation = Segmentation(dataset, model, assigned, fit_issues(model, dataset), ctx.playbook)
    ctx.colors, ctx.order = segment_colors(model), segment_order(model)
    return ctx


def warm_caches() -> None:
    """Before the first visitor, do what the first visit of the Overview does: import the libraries
    and fill the caches of the default data, the active model, its assignments and the Overview's
    charts, through the same cached functions a session calls (so its first run only hits caches).

    A freshly started Streamlit server otherwise does all of this while its first visitor waits
    (several seconds). Called by the launcher's lifespan, outside any session; an exception is the
    caller's to log (the page reports a bad source or model in its own words).

    The Model page's first visit is warmed too: scikit-learn's import (about 1.7 s, on a thread while
    DuckDB reads the log, which releases the interpreter lock) and the k sweep of the default data; and
    the Over time page's first view for a local log (timeline_views.warm: about 1 s on the real data)."""
    importer = threading.Thread(target=_import_page_libraries, name="rfm-warm-imports", daemon=True)
    importer.start()
    config = load_settings()
    request = default_request(config)
    snapshot, returns = "auto", ReturnsPolicy.NET.value
    dataset = load(request, snapshot, returns, config)
    data_key = (*request.key, snapshot, returns)
    model_store = store(config)
    ctx = build_context(dataset, data_key, config, model_store, models.default_version(model_store), "")
    overview_charts(ctx)
    if ctx.segmentation is not None:  # the Segments page without filters
        segments_charts(ctx, ctx.segmentation.assigned)
        segment_profiles(ctx, ctx.segmentation.assigned)
    importer.join()
    with contextlib.suppress(RfmError):  # too few customers for a sweep: the Model page says so itself
        result = sweep_for(data_key, dataset)
        sweep_charts(ctx, result, result.recommended_k)  # the page opens on the recommended k
    if data_key[0] == "files":  # not Athena: a warm-up must not run (and bill) queries nobody asked for
        from rfm.dashboard import timeline_views

        with contextlib.suppress(RfmError):  # the Over time page says what is wrong itself
            timeline_views.warm(ctx)
    # The first element any run creates makes Streamlit check, once per process, whether it runs in a
    # REPL (a full inspect.stack(), ~0.15 s): outside a session this element goes nowhere.
    st.empty()


def _import_page_libraries() -> None:
    """What pages import on their first visit: scikit-learn (the Model page), pandas' Styler, whose
    class compiles its Jinja templates on import (~0.2 s of the first page with a table, Segments),
    and Streamlit's emoji table: a widget label that is not plain ASCII ("R×F grid" on the Over time
    page) is searched for a leading emoji with a pattern compiled from it on first use (~0.19 s)."""
    models.import_estimators()
    import pandas.io.formats.style  # noqa: F401

    with contextlib.suppress(ImportError, AttributeError):  # Streamlit's internals: only a warm-up
        from streamlit import string_util

        string_util.extract_leading_emoji("R×F grid")


def overview_charts(ctx: Context) -> dict[str, dict[str, object]]:
    """The Overview's chart specs ("shares" only with a model, "pareto", "lorenz"), cached per data and
    model: built here so the page and `warm_caches` ask for exactly the same cache entries."""
    from rfm.dashboard import charts
    from rfm.service.segmentation import segment_summary

    monetary = ctx.dataset.customers["monetary"]
    concentration = concentration_for(ctx.data_key, ctx.dataset.customers)
    specs = {
        "pareto": chart_spec("pareto", ctx.data_key, lambda: charts.pareto_chart(monetary.to_numpy())),
        "lorenz": chart_spec("lorenz", ctx.data_key,
                             lambda: charts.lorenz_chart(concentration.lorenz, concentration.gini)),
    }
    segmentation = ctx.segmentation
    if ctx.model is not None and segmentation is not None:
        model = ctx.model
        specs["shares"] = chart_spec(
            "segment_shares", (ctx.data_key, ctx.model_key),
            lambda: charts.segment_share_chart(segment_summary(segmentation.assigned, model), ctx.colors))
    return specs


def segments_charts(ctx: Context, view: pd.DataFrame, filters: CacheKey = ((), ()),
                    axis: str = "recency") -> dict[str, dict[str, object]]:
    """The Segments page's chart specs ("heatmap", "grid", "scatter") of `view`, the customers its
    `filters` (segments, countries) leave; cached per data, model and filters, and built here so the
    page and `warm_caches` ask for the same cache entries."""
    from rfm.dashboard import charts
    from rfm.service import insights

    assert ctx.segmentation is not None
    assigned = ctx.segmentation.assigned
    key = (ctx.data_key, ctx.model_key, *filters)

    def heatmap() -> alt.TopLevelMixin:
        # The colour scale comes from every customer, so a filter never re-colours the heatmap.
        domain = charts.heatmap_domain(insights.rf_heatmap_data(assigned)[0])
        return charts.rf_heatmap(*insights.rf_heatmap_data(view), currency=ctx.currency, domain=domain)

    return {
        "heatmap": chart_spec("rf_heatmap", (*key, ctx.currency), heatmap),
        "grid": chart_spec("rf_grid", key, lambda: charts.rf_grid_chart(insights.grid_frame(view))),
        "scatter": chart_spec("customer_scatter", (*key, axis, ctx.currency), lambda: charts.customer_scatter(
            view, ctx.colors, ctx.order, x=axis, currency=ctx.currency)),
    }


def sweep_charts(ctx: Context, result: SweepResult, k: int) -> dict[str, dict[str, object]]:
    """The Model page's sweep panels (one spec per metric of `charts.SWEEP_PANELS`, in order) with the
    recommended k and the selected `k` marked; cached per data and k, built here so the page and
    `warm_caches` ask for the same cache entries."""
    from functools import partial

    from rfm.dashboard import charts

    frame = result.frame()
    return {column: chart_spec(f"sweep_{column}", (ctx.data_key, result.recommended_k, k),
                               partial(charts.sweep_panel, frame, column, result.recommended_k, k))
            for column, _, _ in charts.SWEEP_PANELS}


# --- page furniture ------------------------------------------------------------------------------


def page_header(title: str, ctx: Context) -> None:
    """Title, one line of provenance (data, snapshot, active model) and, when the active model was
    trained on other data, snapshot or returns policy, a warning that says so with a one-click retrain."""
    st.title(title)
    model = f"model **{ctx.version}** (k={ctx.model.k})" if ctx.model is not None else "no model"
    st.caption(f"Data: **{ctx.dataset.label}** · {len(ctx.dataset.customers):,} customers · snapshot "
               f"{ctx.dataset.snapshot.isoformat()} · {ctx.dataset.returns.label} · amounts in {ctx.currency} · "
               f"{model}")
    if ctx.playbook_error:
        st.error(ctx.playbook_error, icon=":material/error:")
    if ctx.snapshot_note:
        st.warning(ctx.snapshot_note, icon=":material/event_busy:")
    if "fit_flash" in st.session_state:
        st.success(st.session_state.pop("fit_flash"), icon=":material/check_circle:")
    if ctx.model is not None and ctx.fit_issues:
        _fit_warning(title, ctx, ctx.model)


def _fit_warning(page: str, ctx: Context, model: SegmentModel) -> None:
    text = fit_warning(model, ctx.fit_issues, plain=True)
    message = f"{text[0].upper()}{text[1:]}." if text else ""
    who = principal()
    st.warning(message, icon=":material/warning:")
    if not who.can(access.Action.RETRAIN):  # marketers see the warning; retraining is an analyst's job
        return
    # Below the warning, not beside it: a side column cut the button's label short at 1440 px.
    if st.button(f"Retrain k={model.k} on this data", key=f"fit_retrain_{page}",
                 icon=":material/model_training:",
                 help="Train a new version with the same k on the data shown and make it the active "
                      "model (it is not promoted)."):
        with st.spinner(f"Training k={model.k} on {len(ctx.dataset.customers):,} customers…"):
            try:
                version = access.train_and_save(who, ctx.store, ctx.dataset, model.k,
                                                audit_log=ctx.settings.audit_log)
            except RfmError as exc:
                st.error(f"Not retrained: {exc}")
                return
        st.session_state["pending_version"] = version
        st.session_state["fit_flash"] = f"Trained and saved {version} on {ctx.dataset.label}; it is the active model."
        st.rerun()


def context() -> Context:
    """The Context streamlit_app.py built in this run (only after `auth.gate` admitted the user)."""
    principal()
    ctx: Context = st.session_state["_ctx"]
    return ctx


def principal() -> Principal:
    """Who uses this session (rfm.dashboard.auth.gate): pass it to the rfm.service.access jobs."""
    from rfm.dashboard.auth import principal as admitted

    return admitted()


def require_model(ctx: Context) -> bool:
    if ctx.model is None or ctx.segmentation is None:
        st.info("No model is available: train and save one on the Model page.")
        return False
    return True
