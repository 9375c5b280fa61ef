"""Typed model metadata: metadata.json read into ModelMetadata (strict, one-line errors naming the file
and the field) and written back in exactly the layout it has always had; data_label; typed summaries."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from rfm.errors import ModelError
from rfm.model import (
    ModelMetadata,
    ModelMetrics,
    ModelStore,
    RowCounts,
    VersionSummary,
    load_model_dir,
    train_model,
)
from rfm.model.store import read_metadata
from tests.helpers import three_group_table
from tests.test_model_security import reseal

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "20261127-084202-k4" / "metadata.json"
KEY_ORDER = ["format", "version", "created", "k", "seed", "features", "transform", "pipeline", "kmeans",
             "snapshot", "returns_policy", "data_fingerprint", "rows", "metrics", "sweep", "clusters",
             "libraries", "predictor"]  # new files have no "sha256" (manifest.json holds the hashes)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return three_group_table(8, (50, 70, 90))


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def dumps(data: dict[str, Any]) -> str:
    """metadata.json's text for a dict, as the store writes it."""
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change metadata.json as a (legitimate) writer would: the manifest is rewritten to match, so what
    these tests see is the metadata check, not the manifest's refusal of a hand-edited file."""
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    reseal(path.parent)


# --- the shipped file ---------------------------------------------------------------------------
def test_shipped_metadata_round_trips_byte_for_byte() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    meta = ModelMetadata.from_json_dict(json.loads(text), where=SHIPPED)
    assert dumps(meta.to_json_dict()) == text
    keys = list(meta.to_json_dict())
    assert keys == [*KEY_ORDER[:12], "data_label", *KEY_ORDER[12:]]  # data_label right after data_fingerprint
    assert meta.data_label == "demo data" and meta.snapshot == date(2011, 12, 10)
    assert isinstance(meta.rows, RowCounts) and meta.rows.trained_customers == 1372
    assert isinstance(meta.metrics, ModelMetrics) and meta.metrics.silhouette_sample == 1372
    assert [c.name for c in meta.clusters] == ["Champions", "Loyal Customers", "At Risk", "Hibernating"]
    assert meta.predictor is not None and len(meta.predictor.centers) == meta.k == 4
    model = ModelStore(REPO / "models").load()
    assert model.metadata == meta and dumps(model.metadata.to_json_dict()) == text


def test_metadata_is_immutable() -> None:
    model = ModelStore(REPO / "models").load()
    meta = model.metadata
    assert meta is model.metadata  # no copy needed: nothing can change it
    with pytest.raises(ValidationError):
        meta.k = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        meta.clusters[0].name = "Whales"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        meta.rows.customers = 1  # type: ignore[misc]


# --- training and saving ------------------------------------------------------------------------
def test_trained_metadata_is_typed_and_saved_in_the_usual_layout(store: ModelStore, table: pd.DataFrame) -> None:
    model = train_model(table, 3)
    meta = model.metadata
    assert isinstance(meta, ModelMetadata) and meta.version is None and meta.sha256 is None
    assert meta.data_label is None and meta.snapshot is None and meta.k == 3
    assert meta.rows.customers == len(table) and meta.rows.excluded_customers == 1
    assert meta.rows.excluded_revenue == -12.5
    assert [c.id for c in meta.clusters] == [0, 1, 2]
    assert sum(c.customers or 0 for c in meta.clusters) == meta.rows.trained_customers
    version = store.save(model)
    path = store.root / version / "metadata.json"
    on_disk = json.loads(path.read_text())
    assert list(on_disk) == KEY_ORDER and "data_label" not in on_disk
    assert on_disk["version"] == version and "sha256" not in on_disk and store.load(version).metadata.sha256 is None
    assert model.metadata.version is None  # saving does not change the trained model
    assert list(on_disk["metrics"]) == ["inertia", "silhouette", "silhouette_sample", "davies_bouldin",
                                        "calinski_harabasz", "smallest_cluster_share"]
    assert list(on_disk["clusters"][0]) == ["id", "name", "default_name", "centroid", "customers"]
    loaded = read_metadata(store.root / version)
    assert dumps(loaded.to_json_dict()) == path.read_text()
    assert loaded.model_copy(update={"version": None, "sha256": None}) == model.metadata


def test_floats_round_trip_exactly(store: ModelStore, table: pd.DataFrame) -> None:
    model = train_model(table, 4)
    version = store.save(model)
    loaded = store.load(version).metadata
    for name in ModelMetrics.model_fields:
        assert getattr(loaded.metrics, name) == getattr(model.metadata.metrics, name)
        assert type(getattr(loaded.metrics, name)) is type(getattr(model.metadata.metrics, name))
    for before, after in zip(model.metadata.clusters, loaded.clusters, strict=True):
        assert before.centroid == after.centroid
    assert loaded.predictor == model.metadata.predictor
    assert loaded.predictor is not None
    assert loaded.predictor.to_predictor() == model.predictor  # bit for bit


def test_data_label_is_recorded_saved_and_listed(store: ModelStore, table: pd.DataFrame) -> None:
    model = train_model(table, 3, data_label="athena:sales.transactions")
    assert model.metadata.data_label == "athena:sales.transactions"
    version = store.save(model)
    on_disk = json.loads((store.root / version / "metadata.json").read_text())
    keys = list(on_disk)
    assert on_disk["data_label"] == "athena:sales.transactions"
    assert keys.index("data_label") == keys.index("data_fingerprint") + 1
    assert store.load(version).metadata.data_label == "athena:sales.transactions"
    renamed = store.rename_cluster(version, 0, "Whales")
    assert renamed.metadata.data_label == "athena:sales.transactions"
    assert json.loads((store.root / version / "metadata.json").read_text())["data_label"] == on_disk["data_label"]
    [summary] = store.summaries()
    assert summary.data_label == "athena:sales.transactions"


def test_unknown_keys_survive_a_rename(store: ModelStore, table: pd.DataFrame) -> None:
    """A newer rfm may add keys; renaming with this one must not drop them."""
    version = store.save(train_model(table, 3))
    path = store.root / version / "metadata.json"
    edit(path, lambda meta: (meta.update(notes={"by": "a newer rfm"}), meta["clusters"][0].update(colour="#123")))
    store.rename_cluster(version, 1, "Regulars")
    meta = json.loads(path.read_text())
    assert meta["notes"] == {"by": "a newer rfm"} and meta["clusters"][0]["colour"] == "#123"
    assert meta["clusters"][1]["name"] == "Regulars"


def test_an_old_file_without_optional_keys_keeps_its_keys(store: ModelStore, table: pd.DataFrame) -> None:
    version = store.save(train_model(table, 3))
    path = store.root / version / "metadata.json"
    edit(path, lambda meta: [c.pop("customers") for c in meta["clusters"]])
    before = json.loads(path.read_text())
    model = store.load(version)
    assert all(c.customers is None for c in model.metadata.clusters)
    assert model.metadata.to_json_dict() == before
    store.rename_cluster(version, 0, "Whales")
    after = json.loads(path.read_text())
    assert "customers" not in after["clusters"][0] and "data_label" not in after
    assert after["clusters"][0]["name"] == "Whales"


# --- refusals: one line, naming the file and the field ------------------------------------------
BAD_FILES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("missing name", lambda m: m["clusters"][0].pop("name"), "clusters.0.name: field required"),
    ("string k", lambda m: m.update(k="3"), "k: input should be a valid integer (got '3')"),
    ("boolean seed", lambda m: m.update(seed=True), "seed: input should be a valid integer (got True)"),
    ("string centroid", lambda m: m["clusters"][1]["centroid"].update(monetary="12.5"),
     "clusters.1.centroid.monetary: input should be a valid number (got '12.5')"),
    ("bad snapshot", lambda m: m.update(snapshot="last tuesday"), "snapshot: input should be a valid date"),
    ("no rows", lambda m: m.pop("rows"), "rows: field required"),
    ("no clusters", lambda m: m.pop("clusters"), "clusters: field required"),
    ("clusters not a list", lambda m: m.update(clusters={"0": "x"}), "clusters: input should be a valid list"),
    ("bad predictor", lambda m: m["predictor"].pop("scale"), "predictor: no scale"),
    ("two problems", lambda m: (m.pop("rows"), m.pop("metrics")), "rows: field required (and 1 more problem)"),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_malformed_metadata_is_one_line_naming_file_and_field(
    store: ModelStore, table: pd.DataFrame, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    version = store.save(train_model(table, 3))
    directory = store.root / version
    path = directory / "metadata.json"
    edit(path, change)
    for load in (lambda: store.load(version), lambda: load_model_dir(directory), lambda: read_metadata(directory)):
        with pytest.raises(ModelError) as info:
            load()
        text = str(info.value)
        assert text.startswith(f"{path}: {message}"), text
        assert "\n" not in text
    [summary] = store.summaries()
    assert summary.error is not None and summary.error.startswith(f"{path}: {message}")
    assert summary.k is None and summary.segments == [] and summary.metrics is None


def test_not_an_object(tmp_path: Path) -> None:
    where = tmp_path / "metadata.json"
    with pytest.raises(ModelError, match=r"metadata\.json: not a model's metadata \(expected a JSON object"):
        ModelMetadata.from_json_dict([1, 2], where=where)


# --- summaries ----------------------------------------------------------------------------------
def test_summaries_are_typed_with_metrics(store: ModelStore, table: pd.DataFrame) -> None:
    first = store.save(train_model(table, 3))
    second = store.save(train_model(table, 4, data_label="demo data"))
    store.promote(second)
    summaries = store.summaries()
    assert all(isinstance(s, VersionSummary) for s in summaries)
    assert [(s.version, s.current, s.k) for s in summaries] == [(first, False, 3), (second, True, 4)]
    latest = summaries[1]
    model = store.load(second)
    assert latest.metrics == model.metadata.metrics and latest.error is None
    assert latest.segments == [c.name for c in model.clusters]
    assert latest.customers == model.metadata.rows.trained_customers and latest.data_label == "demo data"
    assert latest.created == model.metadata.created and latest.snapshot is None
    listed = json.loads(json.dumps([s.as_dict() for s in summaries]))
    assert listed[1]["metrics"]["silhouette"] == model.metadata.metrics.silhouette
    shipped = ModelStore(REPO / "models").summaries()[0]
    assert shipped.snapshot == date(2011, 12, 10) and shipped.as_dict()["snapshot"] == "2011-12-10"


def test_provenance_from_an_rfm_result(store: ModelStore, demo_parquet: Path) -> None:
    from rfm.data.table import compute_rfm

    result = compute_rfm([demo_parquet])
    model = train_model(result, 3, data_label="demo data")
    meta = model.metadata
    assert meta.snapshot == result.snapshot and meta.data_fingerprint == result.fingerprint
    assert meta.returns_policy == "net" and type(meta.returns_policy) is str
    on_disk = json.loads((store.root / store.save(model) / "metadata.json").read_text())
    assert on_disk["snapshot"] == result.snapshot.isoformat() and on_disk["returns_policy"] == "net"
    assert on_disk["data_label"] == "demo data"
