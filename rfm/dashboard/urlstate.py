"""The view in the URL: data source, returns, snapshot, model version and the page's filters live in
`st.query_params`, so a reload or a shared link shows the same view.

How: on a session's first run, `restore()` copies the link's parameters into the widgets' session
state (before any widget exists, so each widget starts with them); on every run the sidebar and the
page `put()` what they show, and `streamlit_app.py` writes the lot back with `publish()` at the end
of the run (only when it changed). Parameters of another page are dropped on the way, so a link is
exactly the view it was copied from. An upload cannot travel in a link (the file stays in the
session's private folder): `source=upload` is restored as "Upload a file" with a note saying so.

Parameters (all optional): source=demo|path|athena|upload, path=TEXT, athena_database=...,
athena_table=..., athena_workgroup=..., athena_region=..., athena_s3_staging_dir=..., returns=net|exclude,
snapshot=YYYY-MM-DD, model=VERSION, and per page: segments, countries, axis (Segments);
segments, countries, min_spend, max_recency (Export). Lists are repeated parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Protocol

import streamlit as st

SOURCES: dict[str, str] = {"demo": "Demo data", "upload": "Upload a file", "path": "Local path", "athena": "Athena"}
RESTORED = "_url_restored"
WANTED = "_url_wanted"
UPLOAD_NOT_IN_LINK = "_url_upload_note"

# (parameter, session key, kind): what a page restores; kind is "list", "text", "float" or "int".
PAGE_PARAMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "segments": (("segments", "seg_filter", "list"), ("countries", "seg_countries", "list"),
                 ("axis", "seg_axis", "text")),
    "export": (("segments", "export_segments", "list"), ("countries", "export_countries", "list"),
               ("min_spend", "export_min_monetary", "float"), ("max_recency", "export_max_recency", "int")),
}
ATHENA_PARAMS: tuple[str, ...] = ("database", "table", "workgroup", "region", "s3_staging_dir")


def source_kind(param: str | None) -> str | None:
    """The sidebar's source radio value of a `source` parameter (None for an unknown one)."""
    return SOURCES.get((param or "").strip().lower())


def source_param(kind: str) -> str:
    """The `source` parameter of a sidebar source radio value."""
    return next((param for param, label in SOURCES.items() if label == kind), "demo")


def parse_date(text: str | None) -> date | None:
    """A YYYY-MM-DD parameter as a date (None when absent or malformed: a bad link falls back)."""
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


class StateLike(Protocol):
    """What `restore` needs of st.session_state (a dict will do in tests)."""

    def get(self, key: str, /) -> Any: ...

    def __setitem__(self, key: str, value: Any, /) -> None: ...


def restore(params: Mapping[str, list[str]], state: StateLike, page: str) -> None:
    """Seed widget state from a link's parameters, once per session (`params`: name -> all values).

    Pure on its arguments (tested without Streamlit): `state` is st.session_state or a dict."""
    if state.get(RESTORED):
        return
    state[RESTORED] = True

    def first(name: str) -> str | None:
        values = params.get(name) or []
        return values[0] if values else None

    kind = source_kind(first("source"))
    if kind is not None:
        state["source_kind"] = kind
        if kind == SOURCES["upload"]:
            state[UPLOAD_NOT_IN_LINK] = True
    if first("path"):
        state["local_path"] = first("path")
    athena = {name: first(f"athena_{name}") for name in ATHENA_PARAMS}
    for name, value in athena.items():
        if value:
            state[f"athena_{name}"] = value
    if kind == SOURCES["athena"] and athena["database"] and athena["table"]:
        state["athena_settings"] = tuple((k, v) for k, v in athena.items() if v)
    if first("returns") in ("net", "exclude"):
        state["returns"] = first("returns")
    snapshot = parse_date(first("snapshot"))
    if snapshot is not None:
        state["custom_snapshot"] = True
        state["snapshot_date"] = snapshot
    if first("model"):
        state["model_version"] = first("model")
    for name, key, kind_ in PAGE_PARAMS.get(page, ()):
        values = params.get(name) or []
        if not values:
            continue
        try:
            if kind_ == "list":
                state[key] = [v for v in values if v]
            elif kind_ == "float":
                state[key] = float(values[0])
            elif kind_ == "int":
                state[key] = int(values[0])
            else:
                state[key] = values[0]
        except ValueError:
            continue  # a malformed number in a link: that filter is simply not restored


def put(name: str, value: object) -> None:
    """What this run shows, for the URL (None, "" and [] leave the parameter out)."""
    wanted: dict[str, list[str]] = st.session_state.setdefault(WANTED, {})
    if value is None or value == "" or value == [] or value == ():
        wanted.pop(name, None)
        return
    if isinstance(value, (list, tuple)):
        wanted[name] = [str(v) for v in value]
    elif isinstance(value, float) and value.is_integer():
        wanted[name] = [str(int(value))]
    else:
        wanted[name] = [str(value)]


def begin_run() -> None:
    """Start this run's parameter set afresh (a page's filters must not leak into another page)."""
    st.session_state[WANTED] = {}


def as_query(wanted: Mapping[str, Sequence[str]]) -> dict[str, str | list[str]]:
    """The parameters as `st.query_params.from_dict` takes them (one value as a string)."""
    return {name: list(values) if len(values) > 1 else values[0] for name, values in wanted.items() if values}


def publish() -> None:
    """Write this run's parameters to the URL, only when they differ (each write is a browser
    history update)."""
    wanted = as_query(st.session_state.get(WANTED, {}))
    current = {name: (values if len(values) > 1 else values[0])
               for name in st.query_params for values in [st.query_params.get_all(name)] if values}
    if current != wanted:
        st.query_params.from_dict(wanted)


def all_params() -> dict[str, list[str]]:
    """The link's parameters, every value of each."""
    return {name: st.query_params.get_all(name) for name in st.query_params}


def keep_valid(key: str, options: Iterable[str]) -> None:
    """Drop restored values a widget does not offer (a link from another model's segments), so the
    widget never refuses its own state."""
    allowed = set(options)
    value = st.session_state.get(key)
    if isinstance(value, list):
        st.session_state[key] = [v for v in value if v in allowed]
    elif value is not None and value not in allowed:
        del st.session_state[key]
