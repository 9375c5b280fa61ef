"""Loading and scoring without scikit-learn: the predictor block in metadata.json, the lazily loaded
pipeline (model.skops, checked against the block), models without a block, and what imports what."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rfm.data.table import RfmResult
from rfm.errors import ModelError
from rfm.model import (
    FEATURES,
    NOT_SEGMENTED,
    ModelStore,
    SegmentModel,
    artifact,
    load_model_dir,
    train_model,
)
from rfm.model.predictor import Predictor
from rfm.service import insights
from tests.test_model_security import old_format_version, reseal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


@pytest.fixture()
def pipeline_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every load of a model.skops (the lazy loader looks `artifact.loads` up at call time)."""
    calls: list[Path] = []
    real = artifact.loads

    def counting(data: bytes, *, where: Path) -> Any:
        calls.append(where)
        return real(data, where=where)

    monkeypatch.setattr(artifact, "loads", counting)
    return calls


def rfm_values(table: pd.DataFrame) -> np.ndarray:
    return table[list(FEATURES)].to_numpy(dtype="float64")


def assert_predicts_like_its_pipeline(model: SegmentModel, table: pd.DataFrame) -> None:
    values = rfm_values(table)
    positive = values[:, 2] > 0
    ids = model.predict(values)
    assert (ids[positive] == model.pipeline.predict(values[positive])).all()
    assert (ids[~positive] == NOT_SEGMENTED).all()


def edit_metadata(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """metadata.json changed and the manifest rewritten to match (as a writer would: the manifest's own
    refusal of hand edits is tested in test_model_security)."""
    path = directory / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    reseal(directory)


# --- the predictor block ------------------------------------------------------------------------
def test_saved_block_is_the_pipelines_arrays_bit_for_bit(store: ModelStore, demo_table: pd.DataFrame) -> None:
    model = train_model(demo_table, 5)
    version = store.save(model)
    block = json.loads((store.root / version / "metadata.json").read_text())["predictor"]
    scale, kmeans = model.pipeline.named_steps["scale"], model.pipeline.named_steps["kmeans"]
    for stored, original in ((block["mean"], scale.mean_), (block["scale"], scale.scale_),
                             (block["centers"], kmeans.cluster_centers_)):
        stored = np.array(stored, dtype="float64")
        assert stored.shape == original.shape
        assert (stored.view("uint64") == np.ascontiguousarray(original, dtype="float64").view("uint64")).all()
    assert Predictor.from_metadata(block) == Predictor.from_pipeline(model.pipeline)


def test_shipped_model_has_a_block_matching_its_pipeline(pipeline_loads: list[Path]) -> None:
    store = ModelStore(REPO / "models")
    version = store.current_version()
    assert version is not None
    meta = json.loads((store.root / version / "metadata.json").read_text())
    assert set(meta["predictor"]) == {"mean", "scale", "centers"}
    model = store.load()
    assert pipeline_loads == []
    assert Predictor.from_pipeline(model.pipeline) == model.predictor
    assert len(pipeline_loads) == 1


@pytest.mark.realdata
def test_lazy_models_predict_like_their_pipelines_on_real_data(
    store: ModelStore, retail: RfmResult, pipeline_loads: list[Path]
) -> None:
    trained = train_model(retail.table, 4)
    loaded = store.load(store.save(trained))
    shipped = ModelStore(REPO / "models").load()
    assert pipeline_loads == []
    assert (loaded.predict(retail.table) == trained.predict(retail.table)).all()
    for model in (loaded, shipped):
        assert_predicts_like_its_pipeline(model, retail.table)
    assert len(pipeline_loads) == 2


def test_lazy_models_predict_like_their_pipelines_on_demo_data(
    store: ModelStore, demo_table: pd.DataFrame, pipeline_loads: list[Path]
) -> None:
    loaded = store.load(store.save(train_model(demo_table, 3)))
    shipped = ModelStore(REPO / "models").load()
    assert pipeline_loads == []
    for model in (loaded, shipped):
        assert_predicts_like_its_pipeline(model, demo_table)
        position = insights.customer_position(model, 15, 12, 540.0)
        assert position.iloc[0]["cluster"] == model.predict([15, 12, 540.0])[0]


# --- laziness -----------------------------------------------------------------------------------
def test_load_score_rename_promote_and_package(
    store: ModelStore, demo_table: pd.DataFrame, pipeline_loads: list[Path], tmp_path: Path
) -> None:
    trained = train_model(demo_table, 4)
    version = store.save(trained)
    model = store.load(version)
    model.assign(demo_table)
    model.predict_names(rfm_values(demo_table)[:5])
    insights.customer_position(model, 15, 12, 540.0)
    renamed = model.renamed(2, "Weekend Shoppers")
    stored = store.rename_cluster(version, 1, "Regulars")
    assert pipeline_loads == [], "loading, scoring and renaming must not load the pipeline"
    assert store.load(version).segment_name(1) == "Regulars" and stored.segment_name(1) == "Regulars"
    assert "predictor" in json.loads((store.root / version / "metadata.json").read_text())

    assert renamed.pipeline is model.pipeline  # one load, shared by the renamed copy
    assert len(pipeline_loads) == 1
    assert (renamed.predict(demo_table) == trained.predict(demo_table)).all()

    store.promote(version)  # promote and package vouch for the whole model: they load the pipeline and check
    # (promote twice: before taking the store's lock, then under it, on the version as it is then)
    assert store.current_version() == version and len(pipeline_loads) == 3
    out = store.package(version, tmp_path / "model.tar.gz")
    assert len(pipeline_loads) == 4
    with tarfile.open(out, "r:gz") as tar:
        tar.extractall(tmp_path / "opt", filter="data")
    unpacked = load_model_dir(tmp_path / "opt")
    assert (unpacked.predict(demo_table) == trained.predict(demo_table)).all() and len(pipeline_loads) == 4


def test_a_lazy_model_pickles_and_saves(
    store: ModelStore, demo_table: pd.DataFrame, pipeline_loads: list[Path]
) -> None:
    model = store.load(store.save(train_model(demo_table, 3)))
    again = pickle.loads(pickle.dumps(model))
    assert (again.predict(demo_table) == model.predict(demo_table)).all() and pipeline_loads == []
    second = store.save(again)  # saving needs the pipeline: loaded (and checked) now
    assert len(pipeline_loads) == 1
    resaved = store.load(second)
    assert resaved.predictor == model.predictor and (resaved.predict(demo_table) == model.predict(demo_table)).all()


# --- refusals -----------------------------------------------------------------------------------
def test_edited_block_is_refused_when_the_pipeline_loads(
    store: ModelStore, demo_table: pd.DataFrame, tmp_path: Path
) -> None:
    version = store.save(train_model(demo_table, 3))
    directory = store.root / version

    def nudge(meta: dict[str, Any]) -> None:
        meta["predictor"]["centers"][1][2] = np.nextafter(meta["predictor"]["centers"][1][2], np.inf)

    edit_metadata(directory, nudge)
    model = store.load(version)  # well-formed: loads, and scores with what the block says
    with pytest.raises(ModelError, match=r"predictor block does not match model\.skops") as info:
        _ = model.pipeline
    assert str(directory / "metadata.json") in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelError, match="predictor block does not match"):
        store.promote(version)
    assert store.current_version() is None
    with pytest.raises(ModelError, match="predictor block does not match"):
        store.package(version, tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()


BAD_BLOCKS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("not an object", lambda p: [1, 2, 3], "expected an object"),
    ("no scale", lambda p: {"mean": p["mean"], "centers": p["centers"]}, "no scale"),
    ("short mean", lambda p: {**p, "mean": p["mean"][:2]}, "mean must be a list of 3"),
    ("zero scale", lambda p: {**p, "scale": [p["scale"][0], 0.0, p["scale"][2]]}, "scale must be positive"),
    ("negative scale", lambda p: {**p, "scale": [-1.0, 1.0, 1.0]}, "scale must be positive"),
    ("string", lambda p: {**p, "mean": ["1.0", 2.0, 3.0]}, "mean must hold numbers"),
    ("boolean", lambda p: {**p, "scale": [True, 1.0, 1.0]}, "scale must hold numbers"),
    ("nan", lambda p: {**p, "mean": [float("nan"), 1.0, 1.0]}, "mean must hold finite"),
    ("infinite", lambda p: {**p, "centers": [[float("inf"), 0, 0], *p["centers"][1:]]},
     r"centers\[0\] must hold finite"),
    ("huge integer", lambda p: {**p, "mean": [10**400, 1, 1]}, "mean must hold finite"),
    ("short row", lambda p: {**p, "centers": [p["centers"][0][:2], *p["centers"][1:]]}, r"centers\[0\] must be"),
    ("no rows", lambda p: {**p, "centers": []}, "non-empty list of rows"),
    ("one centre fewer", lambda p: {**p, "centers": p["centers"][:-1]}, "centres"),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD_BLOCKS], ids=[b[0] for b in BAD_BLOCKS])
def test_malformed_block_is_refused_at_load(
    store: ModelStore, demo_table: pd.DataFrame, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    version = store.save(train_model(demo_table, 3))
    directory = store.root / version
    edit_metadata(directory, lambda meta: meta.update(predictor=change(meta["predictor"])))
    for load in (lambda: store.load(version), lambda: load_model_dir(directory)):
        with pytest.raises(ModelError, match=message) as info:
            load()
        assert str(directory / "metadata.json") in str(info.value) and "\n" not in str(info.value)


def test_model_file_replaced_after_load_is_not_read(store: ModelStore, demo_table: pd.DataFrame) -> None:
    first = store.save(train_model(demo_table, 3))
    second = store.save(train_model(demo_table, 4))
    model = store.load(first)
    target = store.root / first / "model.skops"
    target.write_bytes((store.root / second / "model.skops").read_bytes())
    assert model.pipeline.named_steps["kmeans"].n_clusters == 3  # from the bytes that were verified at load
    assert model.predict([15, 12, 540.0]).shape == (1,)
    with pytest.raises(ModelError, match=r"model\.skops: sha256 .*not match manifest\.json"):
        store.load(first)


# --- models saved before the predictor block ----------------------------------------------------
def test_a_current_format_model_without_a_block_is_refused(store: ModelStore, demo_table: pd.DataFrame) -> None:
    version = store.save(train_model(demo_table, 4))
    edit_metadata(store.root / version, lambda meta: meta.pop("predictor"))
    with pytest.raises(ModelError, match=r"metadata\.json: no predictor block"):
        store.load(version)


def test_an_old_model_without_a_block_gains_one_on_upgrade(
    store: ModelStore, demo_table: pd.DataFrame, pipeline_loads: list[Path]
) -> None:
    trained = train_model(demo_table, 4)
    directory = old_format_version(store, trained, "20200101-000000-k4")
    meta = json.loads((directory / "metadata.json").read_text())
    meta.pop("predictor")
    (directory / "metadata.json").write_text(json.dumps(meta))
    store.upgrade("20200101-000000-k4", lambda _: None)  # the arrays come from the unpickled pipeline
    meta = json.loads((directory / "metadata.json").read_text())
    assert Predictor.from_metadata(meta["predictor"]) == trained.predictor and "sha256" not in meta
    pipeline_loads.clear()
    upgraded = store.load("20200101-000000-k4")
    assert pipeline_loads == [] and (upgraded.predict(demo_table) == trained.predict(demo_table)).all()
    assert_predicts_like_its_pipeline(upgraded, demo_table)


# --- imports ------------------------------------------------------------------------------------
def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


NO_SKLEARN = ("assert not [m for m in sys.modules if m.split('.')[0] in ('sklearn', 'joblib', 'skops')], "
              "'sklearn imported'\n")


def test_importing_rfm_model_and_scoring_do_not_import_sklearn() -> None:
    code = (
        "import sys\n"
        "import rfm.model\n"
        "from rfm.model import ModelStore, SegmentModel, revenue_concentration, segment_profiles, load_model_dir\n"
        "names = [getattr(rfm.model, name) for name in rfm.model.__all__]\n"
        + NO_SKLEARN +
        "model = ModelStore('models').load()\n"
        "print(model.predict([[10, 3, 500.0]])[0], model.predict_names([[10, 3, 500.0]])[0])\n"
        "from rfm.serving.clients import LocalClient, make_client\n"
        "print(LocalClient().score(15, 12, 540).segment, make_client('local').score(15, 12, 540).segment)\n"
        "from rfm.service import insights\n"
        "print(insights.customer_position(model, 15, 12, 540.0).iloc[0]['segment'])\n"
        + NO_SKLEARN +
        "import rfm.model.sweep, rfm.model.train\n"
        + NO_SKLEARN +
        "model.pipeline\n"
        "assert 'sklearn' in sys.modules\n"
    )
    lines = run_python(code).splitlines()
    model = ModelStore(REPO / "models").load()
    cluster = int(model.pipeline.predict(np.array([[10.0, 3.0, 500.0]]))[0])
    expected = model.segment_name(int(model.pipeline.predict(np.array([[15.0, 12.0, 540.0]]))[0]))
    assert lines == [f"{cluster} {model.segment_name(cluster)}", f"{expected} {expected}", expected]


def test_starting_the_server_and_scoring_do_not_import_sklearn(tmp_path: Path) -> None:
    store = ModelStore(REPO / "models")
    model_dir = store.path(store.current_version() or "")
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import uvicorn\n"
        "from fastapi.testclient import TestClient\n"
        "def run(app, **options):  # instead of serving: one request through the app `serve` built\n"
        "    answer = TestClient(app).post('/invocations', json={'recency': 15, 'frequency': 12, 'monetary': 540})\n"
        "    print(answer.status_code, answer.json()['segment'])\n"
        "uvicorn.run = run\n"
        "from rfm.server.__main__ import main\n"
        f"assert main(['serve', '--model-dir', {str(model_dir)!r}, '--workers', '1']) == 0\n"
        + NO_SKLEARN
    )
    model = store.load()
    expected = model.segment_name(int(model.pipeline.predict(np.array([[15.0, 12.0, 540.0]]))[0]))
    assert run_python(code) == f"200 {expected}"
