"""Streamlit glue shared by every page: the sidebar, cached loaders and session state.

Why a module of its own: `streamlit_app.py` renders the sidebar once per run (so its widgets keep
their state across page switches) and hands a `Context` to the page; pages stay thin and call the
pure functions of `rfm.dashboard.views` and `rfm.dashboard.charts`. Everything that costs time is cached:
`st.cache_data` keyed on the source fingerprint and the RFM parameters, models with
`st.cache_resource` keyed on version and metadata mtime (a rename invalidates it), so switching
pages recomputes nothing. A failing source never raises: one `st.error` and the last good data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from rfm.dashboard import views as dd
from rfm.data.columns import CANONICAL_COLUMNS
from rfm.data.sources import SourceOptions, expand_paths
from rfm.data.table import RfmOptions
from rfm.errors import RfmError, first_line
from rfm.secrets import load_secrets, secrets_path

REPO = Path(__file__).resolve().parents[2]
SOURCE_KINDS: tuple[str, ...] = ("Demo data", "Upload a file", "Local path", "Athena")
RETURNS_LABELS: dict[str, str] = {"net": "Net of returns", "exclude": "Ignore returns"}
NO_COLUMN = "(none)"


def models_dir() -> Path:
    """RFM_MODELS_DIR, else the repository's models/ (tests point it at a temporary copy)."""
    return Path(os.environ.get("RFM_MODELS_DIR") or REPO / "models")


def demo_path() -> Path:
    return Path(os.environ.get("RFM_DEMO_DATA") or REPO / ".data" / "demo.parquet")


def default_data() -> list[str] | None:
    """RFM_DATA (comma-separated files, globs or folders): what the app opens on instead of the demo."""
    text = os.environ.get("RFM_DATA", "").strip()
    return [p.strip() for p in text.split(",") if p.strip()] or None


def uploads_dir() -> Path:
    return Path(os.environ.get("RFM_UPLOAD_DIR") or REPO / ".data" / "uploads")


def secrets() -> dict[str, Any]:
    """.streamlit/secrets.toml (RFM_SECRETS_TOML names another file), read directly so a missing file
    is simply empty settings."""
    try:
        return load_secrets(secrets_path(default=REPO / ".streamlit" / "secrets.toml"))
    except RfmError:
        return {}


# --- cached loaders ------------------------------------------------------------------------------


@st.cache_data(show_spinner="Computing the RFM table…", max_entries=16)
def _files_dataset(paths: tuple[str, ...], mapping: tuple[tuple[str, str], ...], fingerprint: str,
                   snapshot: str, returns: str, label: str) -> dd.Dataset:
    """Keyed on the fingerprint (paths, sizes, mtimes, options): a changed file is a new entry."""
    options = RfmOptions(snapshot=date.fromisoformat(snapshot) if snapshot != "auto" else None, returns=returns)
    return dd.load_files(list(paths), SourceOptions(mapping=dict(mapping) or None), options, label=label)


@st.cache_data(show_spinner="Running the RFM query in Athena…", max_entries=4, ttl=3600)
def _athena_dataset(settings: tuple[tuple[str, Any], ...], snapshot: str, returns: str) -> dd.Dataset:
    from rfm.cloud.athena import load_config

    options = RfmOptions(snapshot=date.fromisoformat(snapshot) if snapshot != "auto" else None, returns=returns)
    return dd.load_athena(load_config(dict(settings)), options)


@st.cache_data(show_spinner=False, max_entries=32)
def _mapping_check(path: str, fingerprint: str, mapping: tuple[tuple[str, str], ...]) -> dd.MappingCheck:
    return dd.check_mapping(path, dict(mapping) or None)


@st.cache_resource(show_spinner=False, max_entries=16)
def _model(root: str, version: str, stamp: int) -> Any:
    """One loaded model per (version, metadata mtime): renaming rewrites metadata.json, so a renamed
    model is a new entry, never a stale one."""
    from rfm.model import ModelStore

    return ModelStore(root).load(version)


@st.cache_data(show_spinner=False, max_entries=16)
def _assigned(data_key: tuple[Any, ...], model_key: tuple[Any, ...], _customers: pd.DataFrame,
              _model_obj: Any) -> pd.DataFrame:
    return dd.assign_segments(_customers, _model_obj)


@st.cache_data(show_spinner="Sweeping k = 2…10…", max_entries=8)
def sweep_for(data_key: tuple[Any, ...], _table: pd.DataFrame) -> Any:
    """The k sweep of the current data (slow: cached on the data's key)."""
    from rfm.model import sweep

    return sweep(_table)


@st.cache_data(show_spinner=False, max_entries=8)
def concentration_for(data_key: tuple[Any, ...], _monetary: pd.Series) -> Any:
    from rfm.model import revenue_concentration

    return revenue_concentration(_monetary)


@st.cache_data(show_spinner=False, max_entries=64)
def chart_spec(name: str, key: tuple[Any, ...], _build: Callable[[], Any]) -> dict[str, Any]:
    """The Vega-Lite dict of an Altair chart, built once per (name, key): the key must cover everything
    the chart shows (data key, model key, ...); `_build` makes the chart on a miss."""
    from rfm.dashboard.charts import vega_lite_spec

    return vega_lite_spec(_build())


@st.cache_resource(show_spinner=False, max_entries=32)
def figure(name: str, key: tuple[Any, ...], _build: Callable[[], Any]) -> Any:
    """A plotly figure built once per (name, key), like `chart_spec`. Shared, not copied: a plotly
    Figure is re-validated when unpickled, and `st.plotly_chart` only reads it."""
    return _build()


@st.cache_resource(show_spinner=False, max_entries=8)
def _scoring_client(endpoint: str, root: str, version: str, stamp: int) -> Any:
    from rfm.serving.clients import make_client

    return make_client(endpoint or None, models_dir=root, version=version)


def model_stamp(root: Path, version: str) -> int:
    try:
        return (root / version / "metadata.json").stat().st_mtime_ns
    except OSError:
        return 0


# --- the context every page gets -----------------------------------------------------------------


@dataclass
class Context:
    """What a page needs: the data, the active model and its segment colours."""

    dataset: dd.Dataset
    data_key: tuple[Any, ...]
    store: Any
    version: str | None
    model: Any
    assigned: pd.DataFrame | None
    colors: dict[str, str]
    order: list[str]
    endpoint: str
    model_key: tuple[Any, ...] = ()  # (models dir, version, metadata mtime): part of every cache key

    def scoring_client(self) -> Any:
        root = str(self.store.root)
        version = self.version or ""
        return _scoring_client(self.endpoint, root, version, model_stamp(self.store.root, version))


@dataclass(frozen=True)
class _Request:
    kind: str  # "files" or "athena"
    key: tuple[Any, ...]
    label: str
    paths: tuple[str, ...] = ()
    mapping: tuple[tuple[str, str], ...] = ()
    fingerprint: str = ""
    athena: tuple[tuple[str, Any], ...] = ()


def _load(request: _Request, snapshot: str, returns: str) -> dd.Dataset:
    if request.kind == "athena":
        return _athena_dataset(request.athena, snapshot, returns)
    return _files_dataset(request.paths, request.mapping, request.fingerprint, snapshot, returns, request.label)


def _one_line(exc: BaseException) -> str:
    """Our own errors as they are; anything else with its type, which may be all it says."""
    message = first_line(exc)
    return message if isinstance(exc, RfmError) else f"{type(exc).__name__}: {message}"


def _demo_request() -> _Request:
    """The default data: RFM_DATA when set, else the demo log (generated on first use)."""
    configured = default_data()
    if configured:
        paths = tuple(expand_paths(configured))
        label = ", ".join(os.path.basename(p) for p in configured)
    else:
        paths = (str(dd.ensure_demo(demo_path())),)
        label = "demo data"
    fp = dd.file_fingerprint(paths, SourceOptions())
    return _Request("files", ("files", paths, (), fp), label, paths=paths, fingerprint=fp)


def _files_request(paths: list[str], label: str) -> _Request | None:
    """A request for files, or None while the column-mapping step is pending (the form is shown)."""
    expanded = tuple(expand_paths(paths))
    mappings: dict[str, dict[str, str]] = st.session_state.setdefault("mappings", {})
    mapping = mappings.get(expanded[0], {})
    options = SourceOptions(mapping=mapping or None)
    fp = dd.file_fingerprint(list(expanded), options)
    check = _mapping_check(expanded[0], fp, tuple(sorted(mapping.items())))
    if check.needs_mapping:
        _mapping_form(expanded[0], check, label)
        return None
    items = tuple(sorted(mapping.items()))
    return _Request("files", ("files", expanded, items, fp), label, paths=expanded, mapping=items, fingerprint=fp)


def _mapping_form(path: str, check: dd.MappingCheck, label: str) -> None:
    """The column-mapping step: the file's first rows and one selectbox per canonical column."""
    st.warning(f"**{label}**: the columns were not all recognised. {check.error}")
    with st.form("mapping_form"):
        st.markdown("**Map your columns.** Customer and date are required, plus quantity and unit price "
                    "or a line amount.")
        st.dataframe(check.head, hide_index=True)
        options = [NO_COLUMN, *check.columns]
        choices: dict[str, str | None] = {}
        cols = st.columns(4)
        for i, canonical in enumerate(CANONICAL_COLUMNS):
            guess = check.guess.get(canonical)
            with cols[i % 4]:
                picked = st.selectbox(canonical, options, index=options.index(guess) if guess in options else 0,
                                      key=f"map_{canonical}")
            choices[canonical] = None if picked == NO_COLUMN else picked
        if st.form_submit_button("Apply mapping", type="primary"):
            st.session_state["mappings"][path] = dd.mapping_from_choices(choices)
            st.rerun()


def _athena_request() -> _Request | None:
    """Athena settings (defaults from RFM_ATHENA_* / secrets.toml); the query runs on the button."""
    try:
        from rfm.cloud.athena import load_config

        defaults = load_config().__dict__
    except Exception:  # no configuration yet: empty fields
        defaults = {}
    fields = {}
    for name, label in (("database", "Database"), ("table", "Table"), ("workgroup", "Workgroup"),
                        ("region", "Region"), ("s3_staging_dir", "S3 staging dir")):
        fields[name] = st.text_input(label, value=str(defaults.get(name) or ""), key=f"athena_{name}").strip()
    if st.button("Run the RFM query in Athena", key="athena_run"):
        settings = tuple((k, v) for k, v in fields.items() if v)
        st.session_state["athena_settings"] = settings
        st.session_state.setdefault("failed", {}).pop(("athena", settings), None)
    settings = st.session_state.get("athena_settings")
    if not settings:
        st.caption("Credentials come from the AWS chain (environment, profile, role); never typed here.")
        return None
    label = "athena:" + ".".join(v for k, v in settings if k in ("database", "table"))
    return _Request("athena", ("athena", settings), label, athena=settings)


def render_sidebar() -> Context:
    """The data source, RFM parameters, model version and scoring backend; returns the Context.

    Called by streamlit_app.py on every run, before the page."""
    store = _store()
    if "pending_version" in st.session_state:  # set by the Model page after a save or promote
        st.session_state["model_version"] = st.session_state.pop("pending_version")

    request: _Request | None = None
    error: str | None = None
    with st.sidebar:
        st.subheader("Data")
        kind = st.radio("Data source", SOURCE_KINDS, key="source_kind",
                        format_func=lambda k: "Default data (RFM_DATA)" if k == "Demo data" and default_data() else k)
        try:
            if kind == "Demo data":
                request = _demo_request()
            elif kind == "Upload a file":
                upload = st.file_uploader("Transaction log (CSV, Excel, Parquet)", type=list(dd.UPLOAD_EXTENSIONS),
                                          key="upload")
                if upload is not None:
                    path = dd.save_upload(upload.name, upload.getvalue(), uploads_dir())
                    request = _files_request([str(path)], upload.name)
            elif kind == "Local path":
                text = st.text_input("File, glob or folder", key="local_path",
                                     placeholder="/data/online_retail.parquet")
                if text.strip():
                    paths = [p.strip() for p in text.split(",") if p.strip()]
                    request = _files_request(paths, text.strip())
            else:
                request = _athena_request()
        except RfmError as exc:
            error = _one_line(exc)
        except Exception as exc:  # a broken file can fail in the reader itself: still one line
            error = _one_line(exc)

        custom = st.toggle("Custom snapshot date", key="custom_snapshot")
        snapshot = "auto"
        if custom:
            picked = st.date_input("Snapshot date", key="snapshot_date", value=date(2011, 12, 10))
            snapshot = picked.isoformat() if isinstance(picked, date) else "auto"
        returns = st.radio("Returns", list(RETURNS_LABELS), format_func=RETURNS_LABELS.get, key="returns",
                           horizontal=True)

    dataset, data_key, error = _dataset(request, snapshot, returns, error)
    if error:
        st.error(f"{error}  \nShowing **{dataset.label}** instead.", icon=":material/error:")

    with st.sidebar:
        st.subheader("Model")
        versions = store.list_versions()
        current = store.current_version()
        if st.session_state.get("model_version") not in versions:
            st.session_state["model_version"] = default_version(store)
        version = st.selectbox("Active model version", versions[::-1], key="model_version",
                               format_func=lambda v: f"{v} (promoted)" if v == current else v)
        endpoint_default = str((secrets().get("scoring") or {}).get("endpoint") or "")
        st.subheader("Scoring")
        endpoint = st.text_input("Scoring endpoint", value=endpoint_default, key="scoring_endpoint",
                                 help="Empty: in-process with the active model. http://host:port: the model "
                                      "server or container. sagemaker:NAME: a SageMaker endpoint.").strip()

    try:
        ctx = build_context(dataset, data_key, store, version, endpoint)
    except RfmError as exc:
        st.error(f"Model {version}: {_one_line(exc)}", icon=":material/error:")
        ctx = Context(dataset, data_key, store, version, None, None, {}, [], endpoint)
    model = ctx.model
    with st.sidebar:
        if model is not None:
            st.caption(f"Active model **{version}** · k={model.k}"
                       + (" · promoted" if version == current else " · not promoted"))
        else:
            st.caption("No usable model: train one on the Model page.")
    return ctx


def build_context(dataset: dd.Dataset, data_key: tuple[Any, ...], store: Any, version: str | None,
                  endpoint: str) -> Context:
    """The Context of a data set and model version: the (cached) model, its segments of every customer
    and their colours. Raises RfmError for a version that cannot be loaded."""
    if not version:
        return Context(dataset, data_key, store, version, None, None, {}, [], endpoint)
    from rfm.dashboard.charts import segment_colors, segment_order

    model_key = (str(store.root), version, model_stamp(store.root, version))
    model = _model(*model_key)
    assigned = _assigned(data_key, model_key, dataset.customers, model)
    return Context(dataset, data_key, store, version, model, assigned, segment_colors(model),
                   segment_order(model), endpoint, model_key)


def _store() -> Any:
    from rfm.model import ModelStore

    return ModelStore(models_dir())


def default_version(store: Any) -> str | None:
    """The version a new session starts on: the promoted one, else the newest."""
    versions = store.list_versions()
    current = store.current_version()
    return current if current in versions else (versions[-1] if versions else None)


def warm_caches() -> None:
    """Before the first visitor, do what the first visit of the Overview does: import the libraries
    and fill the caches of the default data, the active model, its assignments and the Overview's
    charts, through the same cached functions a session calls (so its first run only hits caches).

    A freshly started Streamlit server otherwise does all of this while its first visitor waits
    (several seconds). Called by dashboard.py's lifespan, outside any session; an exception is the
    caller's to log (the page reports a bad source or model in its own words)."""
    request = _demo_request()
    snapshot, returns = "auto", next(iter(RETURNS_LABELS))
    dataset = _load(request, snapshot, returns)
    data_key = (*request.key, snapshot, returns)
    store = _store()
    overview_charts(build_context(dataset, data_key, store, default_version(store), ""))
    # The first element any run creates makes Streamlit check, once per process, whether it runs in a
    # REPL (a full inspect.stack(), ~0.15 s): outside a session this element goes nowhere.
    st.empty()


def _dataset(request: _Request | None, snapshot: str, returns: str,
             error: str | None) -> tuple[dd.Dataset, tuple[Any, ...], str | None]:
    """The requested data, or (with the error) the last data that loaded, or the demo data."""
    failed: dict[tuple[Any, ...], str] = st.session_state.setdefault("failed", {})
    if request is not None and error is None:
        key = (*request.key, snapshot, returns)
        if key in failed:  # do not re-run a failing source (e.g. an Athena query) on every rerun
            error = failed[key]
        else:
            try:
                dataset = _load(request, snapshot, returns)
                st.session_state["last_good"] = (request, snapshot, returns)
                return dataset, key, None
            except Exception as exc:
                error = failed[key] = _one_line(exc)
    # Nothing loadable asked for (no file uploaded yet, mapping pending) or it failed: the last good
    # source stays usable (with the current parameters when they work); on a first visit, the demo data.
    previous = st.session_state.get("last_good") or (_demo_request(), snapshot, returns)
    attempts = [(previous[0], snapshot, returns), previous, (_demo_request(), "auto", "net")]
    last_exc: Exception | None = None
    for fallback, snap, ret in attempts:
        try:
            dataset = _load(fallback, snap, ret)
        except Exception as exc:
            last_exc = exc
            continue
        st.session_state["last_good"] = (fallback, snap, ret)
        return dataset, (*fallback.key, snap, ret), error
    raise RuntimeError(f"even the demo data cannot be loaded: {last_exc}")


def overview_charts(ctx: Context) -> dict[str, dict[str, Any]]:
    """The Overview's chart specs ("shares" only with a model, "pareto", "lorenz"), cached per data and
    model: built here so the page and `warm_caches` ask for exactly the same cache entries."""
    from rfm.dashboard import charts

    monetary = ctx.dataset.customers["monetary"]
    concentration = concentration_for(ctx.data_key, monetary)
    specs = {
        "pareto": chart_spec("pareto", ctx.data_key, lambda: charts.pareto_chart(monetary.to_numpy())),
        "lorenz": chart_spec("lorenz", ctx.data_key,
                             lambda: charts.lorenz_chart(concentration.lorenz, concentration.gini)),
    }
    if ctx.model is not None and ctx.assigned is not None:
        specs["shares"] = chart_spec(
            "segment_shares", (ctx.data_key, ctx.model_key),
            lambda: charts.segment_share_chart(dd.segment_summary(ctx.assigned, ctx.model), ctx.colors))
    return specs


def page_header(title: str, ctx: Context) -> None:
    """Title plus one line of provenance (data, snapshot, active model) at the top of each page."""
    st.title(title)
    model = f"model **{ctx.version}** (k={ctx.model.k})" if ctx.model is not None else "no model"
    st.caption(f"Data: **{ctx.dataset.label}** · {len(ctx.dataset.customers):,} customers · snapshot "
               f"{ctx.dataset.snapshot.isoformat()} · returns {ctx.dataset.options.returns} · {model}")


def context() -> Context:
    """The Context streamlit_app.py built in this run."""
    return st.session_state["_ctx"]


def require_model(ctx: Context) -> bool:
    if ctx.model is None or ctx.assigned is None:
        st.info("No model is available: train and save one on the Model page.")
        return False
    return True
