"""The RFM segmentation dashboard: `streamlit run streamlit_app.py` (or `make run`).

This entrypoint is the frame around every page: it sets the page config, admits the user (sign-in and
role, or local mode: rfm.dashboard.auth), renders the shared sidebar (data source, snapshot date,
returns policy, model version, scoring backend) and runs the page the user picked. Pages live in
pages/, one file each, and only lay out widgets.

The files are named `<page>_page.py` while the URLs are `/<page>`: a file whose name equals its URL
path would also match Streamlit's legacy pages/ discovery (same page hash), which runs the file
without this entrypoint (no sidebar) on a fresh server's first deep link and in AppTest.
"""

from __future__ import annotations

import streamlit as st

from rfm.dashboard import auth, urlstate
from rfm.dashboard.favicon import FAVICON_SVG
from rfm.dashboard.sidebar import render_pending, render_sidebar

st.set_page_config(page_title="RFM segments", page_icon=FAVICON_SVG, layout="wide")

OVERVIEW = st.Page("pages/overview_page.py", url_path="overview", title="Overview", icon=":material/dashboard:")


def _home() -> None:
    """The app's root URL: the Overview, at its own URL, with the link's parameters (so /overview is a
    deep link like every other page's; a default page would only be served at /)."""
    st.switch_page(OVERVIEW, query_params=urlstate.all_params())


PAGES = [
    st.Page(_home, url_path="home", title="Home", default=True, visibility="hidden"),
    OVERVIEW,
    st.Page("pages/segments_page.py", url_path="segments", title="Segments", icon=":material/grid_view:"),
    st.Page("pages/model_page.py", url_path="model", title="Model", icon=":material/model_training:"),
    st.Page("pages/score_page.py", url_path="score", title="Score", icon=":material/person_search:"),
    st.Page("pages/export_page.py", url_path="export", title="Export", icon=":material/download:"),
    st.Page("pages/time_page.py", url_path="time", title="Over time", icon=":material/timeline:"),
]

# Who is this? Before the sidebar loads any data: a visitor who is not signed in (or has no role) gets
# the sign-in screen or one line, and the run ends here with nothing of the data read.
if auth.gate() is None:
    st.session_state.pop("_ctx", None)
    st.navigation(PAGES, position="hidden")  # still an st.navigation app; no page runs
    st.stop()

page = st.navigation(PAGES)
if page.url_path == "":  # the root: on to /overview, parameters kept
    page.run()
urlstate.restore(urlstate.all_params(), st.session_state, page.url_path)  # a session's first run only
urlstate.begin_run()
try:
    ctx = render_sidebar()
    st.session_state["_ctx"] = ctx
    if ctx.pending is not None:  # a source waiting for the user: its step, not another data set's page
        render_pending(ctx.pending)
    else:
        page.run()
finally:  # also after a page's st.stop(): the URL always holds the view on screen
    urlstate.publish()
