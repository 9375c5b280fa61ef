"""`python -m rfm.server serve`: the container's entry point (SageMaker runs `docker run IMAGE serve`).

Verifies and loads the model BEFORE binding the port, so a container without a valid model exits
with one clear log line (and SageMaker reports the failed health check) instead of serving errors.
One worker serves the loaded model directly; more workers run the `app_from_env` factory in uvicorn
worker processes, each verifying the same model directory again.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TypedDict

from rfm.errors import RfmError
from rfm.server.settings import MODEL_DIR_ENV, ServerSettings

log = logging.getLogger("rfm.server")


class _UvicornOptions(TypedDict):
    """The `uvicorn.run` options both ways of serving share."""

    host: str
    port: int
    access_log: bool
    log_level: str
    timeout_graceful_shutdown: int


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rfm.server",
        description="SageMaker-compatible model server for the RFM segment model.",
    )
    parser.add_argument("command", choices=["serve"], help="serve: start the inference server (what SageMaker runs)")
    parser.add_argument("--model-dir", help="a model directory (model.skops, metadata.json, manifest.json) "
                        "(default: SM_MODEL_DIR, then /opt/ml/model)")
    parser.add_argument("--host", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default: SAGEMAKER_BIND_TO_PORT, then 8080)")
    parser.add_argument("--workers", type=int,
                        help="worker processes (default: SAGEMAKER_MODEL_SERVER_WORKERS, then the CPU count)")
    return parser


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(settings: ServerSettings) -> int:
    """Load and verify the model, then run uvicorn until SIGTERM; 2 when there is no valid model."""
    from rfm.config import load_settings
    from rfm.model import load_model_dir

    try:
        model = load_model_dir(settings.model_dir, signing_key=load_settings().model_signing_key)
    except RfmError as exc:
        log.error("refusing to start: no valid model in %s: %s", settings.model_dir, exc)
        return 2
    log.info("loaded model %s (k=%d, sha256 verified) from %s; listening on %s:%d, %d worker(s), timeout %g s",
             model.version, model.k, settings.model_dir, settings.host, settings.port, settings.workers,
             settings.timeout)
    import uvicorn

    common: _UvicornOptions = {"host": settings.host, "port": settings.port, "access_log": settings.access_log,
                               "log_level": "info", "timeout_graceful_shutdown": 30}
    if settings.workers == 1:
        from rfm.server.app import FastPath, create_app

        uvicorn.run(FastPath(create_app(model, settings)), **common)
    else:
        os.environ[MODEL_DIR_ENV] = os.path.abspath(settings.model_dir)
        del model
        uvicorn.run("rfm.server.app:app_from_env", factory=True, workers=settings.workers, **common)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        from rfm.config import load_settings

        settings = ServerSettings.from_settings(load_settings(), model_dir=args.model_dir, host=args.host,
                                                port=args.port, workers=args.workers)
    except RfmError as exc:
        log.error("refusing to start: %s", exc)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
