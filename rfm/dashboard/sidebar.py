"""The sidebar every page shares: data source, snapshot, returns, active model and scoring endpoint.

Rendered by streamlit_app.py on every run, before the page, so its widgets keep their state across page
switches; it returns the page `Context`. A failing source never raises: one `st.error` line and the
last data that loaded.

The "Local path" source reads only under the allowed data folders (settings.data_roots, checked by
`rfm.service.confinement.confine` before anything looks at a file). Uploads are capped at
settings.upload_max_mb, kept in a private folder per session (`save_upload`), and named in every
message by their original file name (`public_message`), never by their server path.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from rfm.config import Settings, load_settings
from rfm.dashboard import state, uploads
from rfm.dashboard.state import Context, SourceRequest
from rfm.data.columns import CANONICAL_COLUMNS
from rfm.data.query import ReturnsPolicy
from rfm.data.sources import SourceOptions
from rfm.errors import RfmError
from rfm.service import confinement, datasets, models
from rfm.service.datasets import Dataset, FileSource

SOURCE_KINDS: tuple[str, ...] = ("Demo data", "Upload a file", "Local path", "Athena")
RETURNS_LABELS: dict[str, str] = {ReturnsPolicy.NET.value: "Net of returns",
                                  ReturnsPolicy.EXCLUDE.value: "Ignore returns"}
NO_COLUMN = "(none)"
ATHENA_FIELDS: tuple[tuple[str, str], ...] = (("database", "Database"), ("table", "Table"),
                                              ("workgroup", "Workgroup"), ("region", "Region"),
                                              ("s3_staging_dir", "S3 staging dir"))


def render_sidebar() -> Context:
    """The data source, RFM parameters, model version and scoring backend; returns the Context."""
    try:
        config = load_settings()
    except RfmError as exc:  # a malformed settings file or variable: say so where the user looks
        st.error(f"Settings: {exc}", icon=":material/error:")
        st.stop()
    model_store = state.store(config)
    upload_folder(config)  # a new session: names its private upload folder, removes stale ones
    if "pending_version" in st.session_state:  # set after a save, promotion or retrain
        st.session_state["model_version"] = st.session_state.pop("pending_version")

    request: SourceRequest | None = None
    error: str | None = None
    with st.sidebar:
        st.subheader("Data")
        kind = st.radio("Data source", SOURCE_KINDS, key="source_kind",
                        format_func=lambda k: "Default data (RFM_DATA)" if k == "Demo data" and config.data else k)
        try:
            if kind == "Demo data":
                request = state.default_request(config)
            elif kind == "Upload a file":
                upload = st.file_uploader("Transaction log (CSV, Excel, Parquet)",
                                          type=list(datasets.UPLOAD_EXTENSIONS), key="upload",
                                          max_upload_size=config.upload_max_mb,
                                          help=f"Up to {config.upload_max_mb} MB. Kept in a private folder of "
                                               "this session, removed when it is replaced or the session ends.")
                if upload is not None:
                    path = save_upload(upload.name, upload.getvalue(), config)
                    request = _files_request([str(path)], datasets.upload_name(upload.name))
            elif kind == "Local path":
                roots = confinement.describe_roots(config.data_roots)
                text = st.text_input("File, glob or folder", key="local_path",
                                     placeholder="data/online_retail.parquet",
                                     help=f"Under the allowed data folders only: {roots} (RFM_DATA_ROOTS).")
                if text.strip():
                    paths = [p.strip() for p in text.split(",") if p.strip()]
                    # Confined before anything looks at a file (cache key, mapping preview, readers).
                    request = _files_request(list(confinement.confine(paths, config.data_roots)), text.strip())
            else:
                request = _athena_request(config)
        except Exception as exc:  # a broken file can fail in the reader itself: still one line
            error = public_message(state.one_line(exc))

        custom = st.toggle("Custom snapshot date", key="custom_snapshot")
        snapshot = "auto"
        if custom:
            picked = st.date_input("Snapshot date", key="snapshot_date", value=date(2011, 12, 10))
            snapshot = picked.isoformat() if isinstance(picked, date) else "auto"
        returns = st.radio("Returns", list(RETURNS_LABELS), format_func=RETURNS_LABELS.__getitem__, key="returns",
                           horizontal=True)

    dataset, data_key, error = _dataset(request, snapshot, returns, error, config)
    error = public_message(error) if error else error
    if error:
        st.error(f"{error}  \nShowing **{dataset.label}** instead.", icon=":material/error:")

    with st.sidebar:
        st.subheader("Model")
        versions = model_store.list_versions()
        current = model_store.current_version()
        if st.session_state.get("model_version") not in versions:
            st.session_state["model_version"] = models.default_version(model_store)
        version = st.selectbox("Active model version", versions[::-1], key="model_version",
                               format_func=lambda v: f"{v} (promoted)" if v == current else v)
        st.subheader("Scoring")
        endpoint = st.text_input("Scoring endpoint", value=config.scoring_endpoint, key="scoring_endpoint",
                                 help="Empty: in-process with the active model. http://host:port: the model "
                                      "server or container. sagemaker:NAME: a SageMaker endpoint.").strip()

    try:
        ctx = state.build_context(dataset, data_key, config, model_store, version, endpoint)
    except RfmError as exc:
        st.error(f"Model {version}: {state.one_line(exc)}", icon=":material/error:")
        ctx = Context(dataset, data_key, model_store, version, endpoint, config)
    with st.sidebar:
        if ctx.model is not None:
            st.caption(f"Active model **{version}** · k={ctx.model.k}"
                       + (" · promoted" if version == current else " · not promoted"))
        else:
            st.caption("No usable model: train one on the Model page.")
    from rfm.dashboard.auth import render_identity  # who is signed in (and their role), or local mode

    render_identity()
    return ctx


def save_upload(name: str, data: bytes, config: Settings) -> str:
    """An upload saved in this session's private folder (capped at settings.upload_max_mb); returns its
    server path, remembered with the original name so messages show the latter (`public_message`).

    The folder (under settings.upload_dir) is made on the session's first visit, which also removes
    the folders of sessions gone for longer than `datasets.UPLOAD_SESSION_MAX_AGE_HOURS` (see
    `datasets.start_upload_session`); the session's previous upload is removed when a new one
    replaces it. Raises DataError (naming the original file) for a file over the cap."""
    folder = upload_folder(config)
    path = str(datasets.save_upload(name, data, folder, max_mb=config.upload_max_mb))
    st.session_state.setdefault("upload_names", {})[path] = datasets.upload_name(name)
    return path


def upload_folder(config: Settings) -> str:
    """This session's private upload folder (named on the first call of the session), removed after
    the session ends (rfm.dashboard.uploads)."""
    if "upload_folder" not in st.session_state:
        folder = str(datasets.start_upload_session(config.upload_dir))
        uploads.track_session_folder(folder)
        st.session_state["upload_folder"] = folder
    return str(st.session_state["upload_folder"])


def public_message(message: str) -> str:
    """A message with this session's uploads named by their original names, never a server path."""
    for stored, original in st.session_state.get("upload_names", {}).items():
        message = datasets.upload_message(message, stored, original)
    return message


def _files_request(paths: list[str], label: str) -> SourceRequest | None:
    """A request for files (already expanded: confined local files or an upload), or None while the
    column-mapping step is pending (the form is shown)."""
    expanded = tuple(paths)
    mappings: dict[str, dict[str, str]] = st.session_state.setdefault("mappings", {})
    mapping = mappings.get(expanded[0], {})
    items = tuple(sorted(mapping.items()))
    key = datasets.source_key(FileSource(expanded, SourceOptions(mapping=mapping or None)))
    check = state.mapping_check(expanded[0], key, items)
    if check.needs_mapping:
        _mapping_form(expanded[0], check, label)
        return None
    return SourceRequest("files", ("files", expanded, items, key), label, paths=expanded, mapping=items,
                         source_key=key)


def _mapping_form(path: str, check: datasets.MappingCheck, label: str) -> None:
    """The column-mapping step: the file's first rows and one selectbox per canonical column."""
    st.warning(f"**{label}**: the columns were not all recognised. {public_message(str(check.error))}")
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
            st.session_state["mappings"][path] = datasets.mapping_from_choices(choices)
            st.rerun()


def _athena_request(config: Settings) -> SourceRequest | None:
    """Athena settings (defaults from the settings); the query runs on the button."""
    fields = {}
    for name, label in ATHENA_FIELDS:
        default = getattr(config, f"athena_{name}") or ""
        fields[name] = st.text_input(label, value=str(default), key=f"athena_{name}").strip()
    if st.button("Run the RFM query in Athena", key="athena_run"):
        chosen: tuple[tuple[str, str], ...] | None = tuple((k, v) for k, v in fields.items() if v)
        st.session_state["athena_settings"] = chosen
        st.session_state.setdefault("failed", {}).pop(("athena", chosen), None)
    chosen = st.session_state.get("athena_settings")
    if not chosen:
        st.caption("Credentials come from the AWS chain (environment, profile, role); never typed here.")
        return None
    label = "athena:" + ".".join(v for k, v in chosen if k in ("database", "table"))
    return SourceRequest("athena", ("athena", chosen), label, athena=chosen)


def _dataset(request: SourceRequest | None, snapshot: str, returns: str, error: str | None,
             config: Settings) -> tuple[Dataset, state.CacheKey, str | None]:
    """The requested data, or (with the error) the last data that loaded, or the default data."""
    failed: dict[state.CacheKey, str] = st.session_state.setdefault("failed", {})
    if request is not None and error is None:
        key = (*request.key, snapshot, returns)
        if key in failed:  # do not re-run a failing source (e.g. an Athena query) on every rerun
            error = failed[key]
        else:
            try:
                dataset = state.load(request, snapshot, returns, config)
                st.session_state["last_good"] = (request, snapshot, returns)
                return dataset, key, None
            except Exception as exc:
                error = failed[key] = state.one_line(exc)
    # Nothing loadable asked for (no file uploaded yet, mapping pending) or it failed: the last good
    # source stays usable (with the current parameters when they work); on a first visit, the default data.
    previous = st.session_state.get("last_good") or (state.default_request(config), snapshot, returns)
    attempts = [(previous[0], snapshot, returns), previous,
                (state.default_request(config), "auto", ReturnsPolicy.NET.value)]
    last_exc: Exception | None = None
    for fallback, snap, ret in attempts:
        try:
            dataset = state.load(fallback, snap, ret, config)
        except Exception as exc:
            last_exc = exc
            continue
        st.session_state["last_good"] = (fallback, snap, ret)
        return dataset, (*fallback.key, snap, ret), error
    raise RuntimeError(f"even the default data cannot be loaded: {last_exc}")
