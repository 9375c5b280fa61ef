"""The Streamlit dashboard: session state and caches, the sidebar, page views, charts and the launcher.
The only package that imports streamlit (with `streamlit_app.py` and `pages/` at the repository root)."""
