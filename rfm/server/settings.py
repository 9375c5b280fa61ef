"""Server settings, following SageMaker's bring-your-own-container contract.

SageMaker starts the container as `docker run IMAGE serve` and expects HTTP on port 8080, or on
SAGEMAKER_BIND_TO_PORT when it sets it (multi-container endpoints and inference pipelines; the image
declares it with the accept-bind-to-port label). SAGEMAKER_MODEL_SERVER_WORKERS and
SAGEMAKER_MODEL_SERVER_TIMEOUT (or the unprefixed MODEL_SERVER_* forms used by SageMaker's own
serving toolkits) size the server. The model is what SageMaker unpacked from model.tar.gz into
/opt/ml/model; SM_MODEL_DIR or --model-dir point elsewhere. Those variables are read, with every
other setting, by `rfm.config.load_settings`; `ServerSettings.from_settings` adds the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rfm.errors import RfmError

if TYPE_CHECKING:
    from rfm.config import Settings

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MODEL_DIR = "/opt/ml/model"
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time invocation payload limit (6 MB)
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # SageMaker real-time response limit (6 MB): larger answers are 413
# Large bodies (over the app's THREAD_THRESHOLD_BYTES) scored at once; more wait (see rfm.server.app).
HEAVY_SLOTS = 2
# Set by `serve` for uvicorn worker processes; read back as Settings.server_worker_model_dir.
MODEL_DIR_ENV = "RFM_SERVER_MODEL_DIR"


@dataclass(frozen=True)
class ServerSettings:
    """Where to listen, how many workers, the request timeout, and which model to load."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    model_dir: str = DEFAULT_MODEL_DIR
    max_body_bytes: int = MAX_BODY_BYTES
    max_response_bytes: int = MAX_RESPONSE_BYTES
    heavy_slots: int = HEAVY_SLOTS
    access_log: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, model_dir: str | None = None, host: str | None = None,
                      port: int | None = None, workers: int | None = None) -> ServerSettings:
        """The server's settings from `settings` (SageMaker's variables, see rfm.config); explicit
        arguments (command-line flags) win. Defaults: port 8080, one worker per CPU, a 60 s timeout,
        the model in /opt/ml/model."""
        if port is not None and not 1 <= port <= 65535:
            raise RfmError(f"--port {port}: expected 1..65535")
        if workers is not None and workers < 1:
            raise RfmError(f"--workers {workers}: expected at least 1")
        return cls(
            host=host or settings.server_host,
            port=port or settings.server_port or DEFAULT_PORT,
            workers=workers or settings.server_workers or (os.cpu_count() or 1),
            timeout=settings.server_timeout or DEFAULT_TIMEOUT_SECONDS,
            model_dir=model_dir or settings.server_model_dir or DEFAULT_MODEL_DIR,
            access_log=settings.server_access_log,
        )
