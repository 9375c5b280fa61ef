"""Server settings from the environment, following SageMaker's bring-your-own-container contract.

SageMaker starts the container as `docker run IMAGE serve` and expects HTTP on port 8080, or on
SAGEMAKER_BIND_TO_PORT when it sets it (multi-container endpoints and inference pipelines; the image
declares it with the accept-bind-to-port label). SAGEMAKER_MODEL_SERVER_WORKERS and
SAGEMAKER_MODEL_SERVER_TIMEOUT (or the unprefixed MODEL_SERVER_* forms used by SageMaker's own
serving toolkits) size the server. The model is what SageMaker unpacked from model.tar.gz into
/opt/ml/model; SM_MODEL_DIR or --model-dir point elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rfm.errors import RfmError

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MODEL_DIR = "/opt/ml/model"
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time invocation payload limit (6 MB)
MODEL_DIR_ENV = "RFM_SERVER_MODEL_DIR"  # set by `serve` for uvicorn worker processes


@dataclass(frozen=True)
class ServerSettings:
    """Where to listen, how many workers, the request timeout, and which model to load."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    model_dir: str = DEFAULT_MODEL_DIR
    max_body_bytes: int = MAX_BODY_BYTES
    access_log: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, model_dir: str | None = None,
                 host: str | None = None, port: int | None = None, workers: int | None = None) -> ServerSettings:
        """Settings from SageMaker's variables; explicit arguments (command-line flags) win."""
        env = os.environ if env is None else env
        env_port = _int(env, "SAGEMAKER_BIND_TO_PORT", minimum=1, maximum=65535)
        env_workers = _int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", minimum=1) or _int(
            env, "MODEL_SERVER_WORKERS", minimum=1)
        env_timeout = _float(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT") or _float(env, "MODEL_SERVER_TIMEOUT")
        return cls(
            host=host or env.get("RFM_SERVER_HOST") or "0.0.0.0",
            port=port or env_port or DEFAULT_PORT,
            workers=workers or env_workers or (os.cpu_count() or 1),
            timeout=env_timeout or DEFAULT_TIMEOUT_SECONDS,
            model_dir=model_dir or env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR,
            access_log=env.get("RFM_SERVER_ACCESS_LOG", "").lower() in ("1", "true", "yes"),
        )


def _int(env: Mapping[str, str], name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise RfmError(f"{name}={text!r}: expected a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise RfmError(f"{name}={text!r}: expected {minimum}..{maximum}" if maximum else
                       f"{name}={text!r}: expected at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RfmError(f"{name}={text!r}: expected a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise RfmError(f"{name}={text!r}: expected a positive number of seconds")
    return value
