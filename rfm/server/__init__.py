"""The SageMaker-compatible model server: `create_app(model)` (FastAPI) and `python -m rfm.server serve`.

Modules: settings (SageMaker environment variables), codecs (request parsing and response rendering,
pure functions), app (the HTTP routes), __main__ (the container's `serve` entry point).
"""
