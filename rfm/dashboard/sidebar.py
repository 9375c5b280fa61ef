"""The sidebar every page shares: data source, snapshot, returns, active model and scoring endpoint.

Rendered by streamlit_app.py on every run, before the page, so its widgets keep their state across page
switches; it returns the page `Context`. A failing source never raises: one `st.error` line and the
last data that loaded. A source that needs the user first (a file not uploaded yet, columns to map)
is a `Pending` step on the Context: streamlit_app.py then shows that step in the main area instead of
the page, never the demo data as if it were the user's.

The "Local path" source reads only under the allowed data folders (settings.data_roots, checked by
`rfm.service.confinement.confine` before anything looks at a file). Uploads are capped at
settings.upload_max_mb, kept in a private folder per session (`save_upload`), and named in every
message by their original file name (`public_message`), never by their server path.

What the sidebar shows is also put in the URL (rfm.dashboard.urlstate), so a reload or a shared
link restores it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st

from rfm.config import Settings, load_settings
from rfm.dashboard import state, uploads, urlstate
from rfm.dashboard.state import Context, SourceRequest
from rfm.data.columns import CANONICAL_COLUMNS
from rfm.data.query import ReturnsPolicy
from rfm.data.sources import SourceOptions
from rfm.errors import RfmError
from rfm.service import confinement, datasets, models
from rfm.service.datasets import Dataset, FileSource

SOURCE_KINDS: tuple[str, ...] = tuple(urlstate.SOURCES.values())
NO_COLUMN = "(none)"
ATHENA_FIELDS: tuple[tuple[str, str], ...] = (("database", "Database"), ("table", "Table"),
                                              ("workgroup", "Workgroup"), ("region", "Region"),
                                              ("s3_staging_dir", "S3 staging dir"))
# What each canonical column holds, for the mapping step's labels.
CANONICAL_HELP: dict[str, str] = {
    "customer_id": "Customer id (required)",
    "invoice_id": "Invoice or order id (counts orders; without it every line is an order)",
    "invoice_date": "Invoice date (required)",
    "quantity": "Quantity (with unit price, or give a line amount)",
    "unit_price": "Unit price (with quantity, or give a line amount)",
    "amount": "Line amount (instead of quantity × unit price)",
    "country": "Country (optional, for filters)",
}


def returns_label(policy: ReturnsPolicy | str) -> str:
    """The one wording of the returns choice everywhere (sidebar, page header, KPI labels)."""
    label = ReturnsPolicy(policy).label
    return label[:1].upper() + label[1:]


@dataclass(frozen=True)
class Pending:
    """A source waiting for the user: `upload` (nothing uploaded yet) or `mapping` (columns to map)."""

    kind: str
    label: str  # the file's own name: what the user uploaded or typed, never a server path
    path: str = ""
    check: datasets.MappingCheck | None = None


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
    pending: Pending | None = None
    error: str | None = None
    with st.sidebar:
        st.subheader("Data")
        kind = st.radio("Data source", SOURCE_KINDS, key="source_kind",
                        format_func=lambda k: "Default data (RFM_DATA)" if k == "Demo data" and config.data else k)
        urlstate.put("source", urlstate.source_param(kind))
        try:
            if kind == "Demo data":
                request = state.default_request(config)
            elif kind == "Upload a file":
                upload = st.file_uploader("Transaction log (CSV, Excel, Parquet)",
                                          type=list(datasets.UPLOAD_EXTENSIONS), key="upload",
                                          max_upload_size=config.upload_max_mb,
                                          help=f"Up to {config.upload_max_mb} MB. Kept in a private folder of "
                                               "this session, removed when it is replaced or the session ends.")
                if upload is None:
                    pending = Pending("upload", "")
                else:
                    st.session_state.pop(urlstate.UPLOAD_NOT_IN_LINK, None)
                    path = save_upload(upload.name, upload.getvalue(), config)
                    original = datasets.upload_name(upload.name)
                    request, pending = _files_request([str(path)], original, original)
            elif kind == "Local path":
                roots = confinement.describe_roots(config.data_roots)
                text = st.text_input("File, glob or folder", key="local_path",
                                     placeholder="data/online_retail.parquet",
                                     help=f"Under the allowed data folders only: {roots} (RFM_DATA_ROOTS). "
                                          "Several: separate them with commas. ~ is your home folder.")
                urlstate.put("path", text.strip())
                if text.strip():
                    paths = [p.strip() for p in text.split(",") if p.strip()]
                    # Confined before anything looks at a file (cache key, mapping preview, readers).
                    request, pending = _files_request(list(confinement.confine(paths, config.data_roots)),
                                                      text.strip())
            else:
                request = _athena_request(config)
        except Exception as exc:  # a broken file can fail in the reader itself: still one line
            error = public_message(state.one_line(exc))

        returns = st.radio("Returns", [p.value for p in ReturnsPolicy], format_func=returns_label, key="returns",
                           horizontal=True, help="Net of returns: returned goods are subtracted from what a "
                                                 "customer spent. Returns ignored: purchases only.")
        urlstate.put("returns", returns if returns != ReturnsPolicy.NET.value else None)
        custom = st.toggle("Custom snapshot date", key="custom_snapshot",
                           help="Recency is counted in days before the snapshot. By default it is the day "
                                "after the data ends.")
        snapshot = "auto"
        snapshot_note: str | None = None
        if custom:
            first, last = _date_range(request, returns, config)
            if last is not None and "snapshot_date" not in st.session_state:
                st.session_state["snapshot_date"] = last + timedelta(days=1)
            picked = st.date_input("Snapshot date", key="snapshot_date", min_value=date(1990, 1, 1),
                                   max_value=date(2100, 12, 31), format="YYYY-MM-DD",
                                   help=f"The data runs from {first} to {last}." if first and last else None)
            if isinstance(picked, date):
                snapshot = picked.isoformat()
                snapshot_note = snapshot_warning(picked, first, last)
                if snapshot_note:
                    st.warning(snapshot_note, icon=":material/event_busy:")
        urlstate.put("snapshot", snapshot if snapshot != "auto" else None)

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
        # The widget's key names the promoted version: the browser keeps an option's old label while
        # a widget lives, so after a promotion a new widget is what shows "(promoted)" on the right
        # version. "model_version" stays the one place the active version is kept.
        widget = f"model_version_widget_{current}"
        st.session_state[widget] = st.session_state["model_version"]  # a save, a link, a retrain set it
        # The versions sit in a popover whose button names the active one: its content is drawn only
        # when opened, so a cold load draws no list (a selectbox here, the sidebar's largest JavaScript,
        # added 0.05-0.3 s to every cold load), and a long list of versions scrolls in full width.
        label = version_label(st.session_state["model_version"], current)
        with st.popover(label, width="stretch", help="The active model version. Open to pick another saved "
                                                     "version; promoting one is on the Model page."):
            version = st.radio("Active model version", versions[::-1], key=widget, on_change=_version_picked,
                               args=(widget,), format_func=lambda v: version_label(v, current))
        urlstate.put("model", version)
        st.subheader("Scoring")
        endpoint = st.text_input("Scoring endpoint", value=config.scoring_endpoint, key="scoring_endpoint",
                                 help="Empty: in-process with the active model. http://host:port: the model "
                                      "server or container. sagemaker:NAME: a SageMaker endpoint.").strip()

    try:
        ctx = state.build_context(dataset, data_key, config, model_store, version, endpoint)
    except RfmError as exc:
        st.error(f"Model {version}: {state.one_line(exc)}", icon=":material/error:")
        ctx = Context(dataset, data_key, model_store, version, endpoint, config)
    ctx.pending = pending
    ctx.snapshot_note = snapshot_note if snapshot != "auto" else None
    with st.sidebar:
        if ctx.model is not None:
            st.caption(f"Active model **{version}** · k={ctx.model.k}"
                       + (" · promoted" if version == current else " · not promoted"))
        else:
            st.caption("No usable model: train one on the Model page.")
    from rfm.dashboard.auth import render_identity  # who is signed in (and their role), or local mode

    render_identity()
    return ctx


def version_label(version: str, promoted: str | None) -> str:
    """How a saved version is named in the selector and on its button."""
    return f"{version} (promoted)" if version == promoted else version


def _version_picked(widget: str) -> None:
    """The user picked a version in the selector: it becomes the active one."""
    st.session_state["model_version"] = st.session_state[widget]


def snapshot_warning(snapshot: date, first: date | None, last: date | None) -> str | None:
    """A custom snapshot outside the data's range, said in one line (None when it is inside: a date
    before the data ends is a look back, and the page header shows the snapshot used).

    On or before the first day no purchase counts; after the day after the last one every recency
    grows by the gap, and segments that depend on recency shift without anything else changing."""
    if first is None or last is None:
        return None
    if snapshot <= first:
        return (f"Snapshot {snapshot} is on or before the data's first day ({first}): no purchase is "
                "counted.")
    end = last + timedelta(days=1)
    if snapshot > end:
        gap = (snapshot - end).days
        days = f"{gap:,} day{'s' if gap != 1 else ''}"
        return (f"Snapshot {snapshot} is {days} after the data ends ({last}): every recency grows by {days}. "
                f"The default is {end}.")
    return None  # inside the data: a snapshot in the past is a legitimate look back


def _date_range(request: SourceRequest | None, returns: str, config: Settings) -> tuple[date | None, date | None]:
    """First and last day of the data asked for (the default data while nothing loadable is)."""
    for source in (request, state.default_request(config)):
        if source is None:
            continue
        try:
            dataset = state.load(source, "auto", returns, config)
        except Exception:  # the error is reported once, by the load of the chosen snapshot
            continue
        return dataset.first_date, dataset.last_date
    return None, None


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


def _files_request(paths: list[str], label: str, name: str = "") -> tuple[SourceRequest | None, Pending | None]:
    """A request for files (already expanded: confined local files or an upload), or the pending
    column-mapping step (shown in the main area by `render_pending`, naming the file `name`, or the
    first file's own name)."""
    expanded = tuple(paths)
    mappings: dict[str, dict[str, str]] = st.session_state.setdefault("mappings", {})
    mapping = mappings.get(expanded[0], {})
    items = tuple(sorted(mapping.items()))
    key = datasets.source_key(FileSource(expanded, SourceOptions(mapping=mapping or None)))
    check = state.mapping_check(expanded[0], key, items)
    if check.needs_mapping:
        return None, Pending("mapping", name or os.path.basename(expanded[0]), expanded[0], check)
    return SourceRequest("files", ("files", expanded, items, key), label, paths=expanded, mapping=items,
                         source_key=key), None


def map_args(mapping: dict[str, str]) -> str:
    """A mapping as the command line's `--map` arguments (shell-quoted), for reuse in scripts."""
    import shlex

    return " ".join(f"--map {shlex.quote(f'{canonical}={source}')}" for canonical, source in mapping.items())


def render_pending(pending: Pending) -> None:
    """The main area while a source waits for the user: the upload hint, or the column-mapping step
    (the file's own name, a preview, one full-width selector per canonical column with the guess
    preselected, and the mapping as `--map` arguments)."""
    if pending.kind == "upload":
        st.title("Upload a file")
        if st.session_state.get(urlstate.UPLOAD_NOT_IN_LINK):
            st.info("This link was made from an uploaded file, and uploads are not part of a link: upload "
                    "the file again in the sidebar.", icon=":material/link_off:")
        st.info("Choose a transaction log (CSV, Excel or Parquet) with **Browse files** in the sidebar. "
                "Nothing is shown until it is uploaded: the demo data is not your data.",
                icon=":material/upload_file:")
        return
    check = pending.check
    assert check is not None
    st.title("Map your columns")
    st.warning(f"**{pending.label}**: the columns were not all recognised. Choose below which column holds "
               "each figure; customer and date are required, plus quantity and unit price or a line amount. "
               "Nothing is shown until then: the demo data is not your data.", icon=":material/table_edit:")
    st.caption(plain_reason(public_message(str(check.error))))
    st.markdown(f"**The first rows of {pending.label}**")
    st.dataframe(check.head, hide_index=True, width="stretch")
    options = [NO_COLUMN, *check.columns]
    # Plain widgets, not a form: the command-line arguments below follow every choice as it is made.
    with st.container(border=True):
        choices: dict[str, str | None] = {}
        for canonical in CANONICAL_COLUMNS:
            guess = check.guess.get(canonical)
            picked = st.selectbox(CANONICAL_HELP.get(canonical, canonical), options,
                                  index=options.index(guess) if guess in options else 0, key=f"map_{canonical}")
            choices[canonical] = None if picked == NO_COLUMN else picked
        mapping = datasets.mapping_from_choices(choices)
        st.markdown("**The same mapping on the command line** (`rfm table`, `rfm export`, ...):")
        st.code(map_args(mapping) or "(no column chosen yet)", language="bash", wrap_lines=True)
        if st.button("Apply mapping", type="primary", key="mapping_apply"):
            st.session_state["mappings"][pending.path] = mapping
            st.rerun()


def plain_reason(error: str) -> str:
    """The reader's reason without its command-line advice ("Map them with --map ..."): here the
    selectors below are the way to map."""
    return re.sub(r"\s*Map (?:them|it) with --map.*$", "", error).strip()


def _athena_request(config: Settings) -> SourceRequest | None:
    """Athena settings (defaults from the settings); the query runs on the button."""
    fields = {}
    for name, label in ATHENA_FIELDS:
        default = getattr(config, f"athena_{name}") or ""
        if f"athena_{name}" not in st.session_state:
            st.session_state[f"athena_{name}"] = str(default)
        fields[name] = st.text_input(label, key=f"athena_{name}").strip()
        urlstate.put(f"athena_{name}", fields[name])  # names of a table, never credentials
    missing = [label for name, label in ATHENA_FIELDS[:2] if not fields[name]]
    if st.button("Run the RFM query in Athena", key="athena_run"):
        if missing:
            st.session_state["athena_missing"] = missing
        else:
            chosen: tuple[tuple[str, str], ...] | None = tuple((k, v) for k, v in fields.items() if v)
            st.session_state["athena_settings"] = chosen
            st.session_state.setdefault("failed", {}).pop(("athena", chosen), None)
            st.session_state.pop("athena_missing", None)
    if st.session_state.get("athena_missing"):
        st.error(f"Fill in {' and '.join(st.session_state['athena_missing']).lower()} first: the query needs "
                 "them.", icon=":material/error:")
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
