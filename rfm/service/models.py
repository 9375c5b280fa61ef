"""Choosing k, training, naming, saving, promoting and listing model versions, for every face.

Training takes a `Dataset`, so the model's metadata records what it was trained on (data label and
fingerprint, snapshot, returns policy) and can be checked against the data it is later applied to
(see rfm.service.segmentation). scikit-learn is imported when a sweep or a training runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rfm.errors import ModelError
from rfm.model import ModelStore, SegmentModel
from rfm.model.manifest import SigningKey

if TYPE_CHECKING:
    from rfm.model.store import VersionSummary
    from rfm.model.sweep import SweepResult
    from rfm.service.datasets import Dataset
    from rfm.serving.deploy import DeployResult

DEFAULT_SEED = 42  # the same data, k and seed give the same model
DEFAULT_K_RANGE = (2, 10)


def sweep(dataset: Dataset, k_min: int = DEFAULT_K_RANGE[0], k_max: int = DEFAULT_K_RANGE[1], *,
          seed: int = DEFAULT_SEED) -> SweepResult:
    """Fit k = k_min..k_max on the dataset's customers and recommend one (see rfm.model.sweep)."""
    from rfm.model import sweep as run_sweep

    return run_sweep(dataset.table, k_min, k_max, seed=seed)


def import_estimators() -> None:
    """Import scikit-learn now (about 1.7 s) instead of at the first sweep or training: for a server
    warming up before its first visitor (see rfm.model.sweep.import_estimators)."""
    from rfm.model.sweep import import_estimators as load

    load()


def train(dataset: Dataset, k: int, *, seed: int = DEFAULT_SEED, sweep_result: SweepResult | None = None,
          with_sweep: bool = True) -> SegmentModel:
    """A k-segment model of the dataset, not saved yet (see `save`).

    With `with_sweep` (and no `sweep_result` given) the k = 2..10 sweep is run too and kept in the
    metadata, so the model records why k was chosen; it is skipped when there are too few customers."""
    from rfm.model import train_model
    from rfm.model.pipeline import training_data

    if sweep_result is None and with_sweep:
        trained = training_data(dataset.table).trained_customers
        k_max = min(DEFAULT_K_RANGE[1], trained - 1)
        if 2 <= k < trained and k_max >= 2:
            sweep_result = sweep(dataset, 2, k_max, seed=seed)
    return train_model(dataset.rfm_result(), k, seed=seed, sweep_result=sweep_result, data_label=dataset.label)


def open_store(models_dir: str | os.PathLike[str], signing_key: SigningKey = None) -> ModelStore:
    """The model versions in a folder (created on the first save). With a signing key
    (`settings.model_signing_key`, RFM_MODEL_SIGNING_KEY) saves are signed and loads require a valid
    signature."""
    return ModelStore(models_dir, signing_key=signing_key)


def save(store: ModelStore, model: SegmentModel, *, promote: bool = False) -> str:
    """Save a model as a new version (atomically), promoting it when asked; returns the version."""
    version = store.save(model)
    if promote:
        store.promote(version)
    return version


def load(store: ModelStore, version: str | None = None) -> SegmentModel:
    """A saved version (None: the promoted one), verified."""
    return store.load(version)


def resolve_cluster(model: SegmentModel, cluster: int | str) -> int:
    """A cluster id from an id or a segment name (case-insensitive), as users type either."""
    if isinstance(cluster, int):
        model.segment_name(cluster)  # checks it exists
        return cluster
    text = str(cluster).strip()
    try:
        cluster_id = int(text)
    except ValueError:
        return model.cluster_id(text)
    model.segment_name(cluster_id)
    return cluster_id


ClusterNames = Mapping[int, str] | Mapping[str, str] | Mapping[int | str, str]


def rename(store: ModelStore, version: str, changes: ClusterNames) -> SegmentModel:
    """Rename clusters of a saved version (by id or current name) in ONE atomic write: every new name
    is checked first (non-empty, unique, swaps allowed), so a bad one changes nothing."""
    if not changes:
        raise ModelError("no segment to rename")
    model = store.load(version)
    by_id = {resolve_cluster(model, cluster): name for cluster, name in changes.items()}
    return store.rename_clusters(version, by_id)


def package(store: ModelStore, version: str, out: str | os.PathLike[str]) -> Path:
    """model.tar.gz for SageMaker (the version's files: model.skops, metadata.json, manifest.json and
    manifest.sig when signed, at the root); the version is verified
    first. An unwritable `out` is a one-line ModelError."""
    try:
        return store.package(version, out)
    except OSError as exc:
        raise ModelError(f"{out}: cannot write: {exc.strerror or exc}") from exc


def deploy(store: ModelStore, version: str, endpoint: str, *, image_uri: str, role_arn: str, bucket: str,
           prefix: str, instance_type: str, instance_count: int, region: str | None, wait: bool,
           poll_seconds: float, timeout_seconds: float, progress: Callable[[str], None],
           signing_key: SigningKey = None) -> DeployResult:
    """Deploy a version to a SageMaker real-time endpoint (package, upload to S3, Model, EndpointConfig,
    create or update the endpoint, wait); see rfm.serving.deploy."""
    from rfm.serving.deploy import deploy_model

    return deploy_model(version=version, endpoint=endpoint, image_uri=image_uri, role_arn=role_arn, bucket=bucket,
                        prefix=prefix, instance_type=instance_type, instance_count=instance_count,
                        models_dir=str(store.root), region=region, wait=wait, poll_seconds=poll_seconds,
                        timeout_seconds=timeout_seconds, progress=progress, signing_key=signing_key)


def promote(store: ModelStore, version: str) -> None:
    """Make a version the promoted one (what the server and `rfm score` use); it is verified first."""
    store.promote(version)


def upgrade(store: ModelStore, version: str, *, warn: Callable[[str], None]) -> SegmentModel:
    """Convert an old-format version (model.joblib) in place to model.skops + manifest. This UNPICKLES
    model.joblib (runs any code it holds): `warn` is called with a one-line warning first. The
    unpickled pipeline must match the metadata's predictor block; the version is replaced atomically."""
    return store.upgrade(version, warn)


def versions(store: ModelStore) -> list[VersionSummary]:
    """Every saved version, oldest first, read without loading the models."""
    return store.summaries()


def default_version(store: ModelStore) -> str | None:
    """The version a new session starts on: the promoted one, else the newest."""
    names = store.list_versions()
    current = store.current_version()
    return current if current in names else (names[-1] if names else None)
