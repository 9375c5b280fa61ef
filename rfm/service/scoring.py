"""The scoring client a face uses: the endpoint given, else the configured one (`scoring_endpoint`)."""

from __future__ import annotations

from rfm.config import Settings
from rfm.serving.clients import ScoringClient, make_client


def scoring_client(settings: Settings, endpoint: str | None = None, *, version: str | None = None,
                   timeout: float | None = None) -> ScoringClient:
    """In-process with a version of `settings.models_dir` (empty or "local"), a model server
    (http://host:port) or a SageMaker endpoint (sagemaker:NAME)."""
    chosen = settings.scoring_endpoint if endpoint is None else endpoint
    return make_client(chosen or None, models_dir=str(settings.models_dir), version=version,
                       timeout=settings.scoring_timeout if timeout is None else timeout,
                       signing_key=settings.model_signing_key)
