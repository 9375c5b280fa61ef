"""Model files that cannot run code (issue 11): skops with an explicit type list, a manifest verifying a
version as a whole, HMAC signatures, old-format versions loaded only through `rfm models upgrade`,
store writes under a lock (real parallel processes)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rfm.cli import main
from rfm.errors import ModelError
from rfm.model import ModelStore, SegmentModel, artifact, load_model_dir, manifest, train_model
from rfm.model import store as store_module
from rfm.service import models as models_service
from tests.helpers import three_group_table

REPO = Path(__file__).resolve().parents[1]
KEY = "k3y-for-tests"


# --- helpers (also used by the other model tests) ------------------------------------------------
def reseal(directory: Path, key: str | None = None) -> None:
    """Rewrite manifest.json (and manifest.sig with a key; without one it is removed) to match the
    files as they are now: what a legitimate writer of those files would have produced."""
    files = {name: (directory / name).read_bytes() for name in manifest.LISTED_FILES}
    data = manifest.build(files)
    (directory / manifest.MANIFEST_FILE).write_bytes(data)
    sig = directory / manifest.SIGNATURE_FILE
    if key is None:
        sig.unlink(missing_ok=True)
    else:
        sig.write_text(manifest.signature(data, key.encode()) + "\n")


class Planted:
    """Unpickling this creates the marker file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def plant_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Planted(marker)))


def old_format_version(store: ModelStore, model: SegmentModel, version: str, *, pipeline: bool = True) -> Path:
    """A version as rfm wrote them before issue 11: model.joblib + metadata.json (with its sha256)."""
    import joblib

    directory = store.root / version
    directory.mkdir(parents=True)
    joblib.dump(model.pipeline, directory / "model.joblib")
    meta = model.metadata.model_copy(update={"version": version}).to_json_dict()
    meta["sha256"] = hashlib.sha256((directory / "model.joblib").read_bytes()).hexdigest()
    (directory / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return three_group_table(10, (40, 60, 80))


@pytest.fixture(scope="module")
def trained(table: pd.DataFrame) -> SegmentModel:
    return train_model(table, 3)


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def rfm_rows(table: pd.DataFrame) -> np.ndarray:
    return table[["recency", "frequency", "monetary"]].to_numpy(dtype="float64")


# --- the layout of a version --------------------------------------------------------------------
def test_a_saved_version_is_skops_metadata_and_manifest(store: ModelStore, trained: SegmentModel) -> None:
    version = store.save(trained)
    directory = store.root / version
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "metadata.json", "model.skops"]
    listed = json.loads((directory / "manifest.json").read_text())
    assert listed["kind"] == "rfm-model-version" and listed["model_format"] == "skops"
    for name in ("metadata.json", "model.skops"):
        data = (directory / name).read_bytes()
        assert listed["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert "sha256" not in json.loads((directory / "metadata.json").read_text())
    with (directory / "model.skops").open("rb") as handle:
        assert handle.read(2) == b"PK"  # a zip of JSON + .npy: no pickle
    assert not list(store.root.glob(".tmp-*"))


def test_the_trusted_type_list_is_exactly_what_a_pipeline_holds(trained: SegmentModel) -> None:
    data = artifact.dumps(trained.pipeline)
    assert artifact.schema_types(data, where=Path("m")) == sorted(artifact.TRUSTED_TYPES)
    import skops.io

    assert skops.io.get_untrusted_types(data=data) == []  # skops' defaults cover them too
    loaded = artifact.loads(data, where=Path("m"))
    X = rfm_rows(three_group_table(3, (10, 20, 30)))
    X = X[X[:, 2] > 0]
    assert (loaded.predict(X) == trained.pipeline.predict(X)).all()
    assert loaded.named_steps["log1p"].func is np.log1p  # loaded by name, no arbitrary callable


def replace_skops(directory: Path, obj: object) -> None:
    import skops.io

    (directory / "model.skops").write_bytes(skops.io.dumps(obj))
    reseal(directory)


def test_a_skops_file_with_an_untrusted_type_is_refused(store: ModelStore, trained: SegmentModel) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    version = store.save(trained)
    directory = store.root / version
    # skops itself trusts every scikit-learn estimator; the list does not.
    replace_skops(directory, LogisticRegression())
    model = store.load(version)  # scoring does not need the pipeline...
    assert model.predict(np.array([[5.0, 3.0, 100.0]])).shape == (1,)
    with pytest.raises(ModelError, match=r"model\.skops: holds types outside the trusted list "
                                         r"\(sklearn\.linear_model\._logistic\.LogisticRegression\)") as info:
        _ = model.pipeline  # ...loading it refuses
    assert "\n" not in str(info.value)
    # A function reference that would run a shell command.
    replace_skops(directory, Pipeline([("log1p", FunctionTransformer(os.system))]))
    with pytest.raises(ModelError, match=r"outside the trusted list \((posix|nt)\.system\)"):
        _ = store.load(version).pipeline
    for refuse in (lambda: store.promote(version), lambda: store.package(version, directory.parent / "m.tgz")):
        with pytest.raises(ModelError, match="outside the trusted list"):
            refuse()
    assert store.current_version() is None and not (directory.parent / "m.tgz").exists()


def test_not_a_zip_is_one_line(store: ModelStore, trained: SegmentModel) -> None:
    version = store.save(trained)
    (store.root / version / "model.skops").write_bytes(pickle.dumps({"a": 1}))
    reseal(store.root / version)
    with pytest.raises(ModelError, match=r"model\.skops: not a skops model file"):
        _ = store.load(version).pipeline


# --- the manifest: a version verified as a whole --------------------------------------------------
def edit_metadata(directory: Path, change: Any) -> None:
    path = directory / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta, indent=2) + "\n")


def swap_centres(meta: dict[str, Any]) -> None:
    centers = meta["predictor"]["centers"]
    centers[0], centers[1] = centers[1], centers[0]


TAMPERING = [
    ("edit a centroid", lambda m: m["clusters"][0]["centroid"].update(monetary=1.0)),
    ("swap two predictor centres", swap_centres),
    ("rename a cluster by hand", lambda m: m["clusters"][0].update(name="Whales")),
    ("edit the scale", lambda m: m["predictor"]["scale"].__setitem__(0, 2.0)),
]


@pytest.mark.parametrize("change", [t[1] for t in TAMPERING], ids=[t[0] for t in TAMPERING])
def test_tampered_metadata_is_refused_everywhere(store: ModelStore, trained: SegmentModel, change: Any) -> None:
    version = store.save(trained)
    store.promote(version)
    directory = store.root / version
    edit_metadata(directory, change)
    expected = (rf"{directory / 'metadata.json'}: sha256 ([0-9a-f]{{12}}\.\.\. does|and size do) not match "
                r"manifest\.json")
    for load in (lambda: store.load(version), lambda: store.load(), lambda: load_model_dir(directory),
                 lambda: store.promote(version), lambda: store.rename_cluster(version, 1, "X"),
                 lambda: store.package(version, directory.parent / "m.tgz")):
        with pytest.raises(ModelError, match=expected) as info:
            load()
        assert "\n" not in str(info.value)
    [summary] = store.summaries()
    assert summary.error is not None and "not match manifest.json" in summary.error


def test_tampered_model_file_missing_and_extra_files(store: ModelStore, trained: SegmentModel) -> None:
    version = store.save(trained)
    directory = store.root / version
    skops_file = directory / "model.skops"
    good = skops_file.read_bytes()
    skops_file.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ModelError, match=r"model\.skops: sha256 .* does not match manifest\.json"):
        store.load(version)
    skops_file.write_bytes(good + b"\0")
    with pytest.raises(ModelError, match=r"model\.skops: sha256 and size do not match manifest\.json "
                                         r"\(\d+ bytes listed, more found\)"):
        store.load(version)
    skops_file.unlink()
    with pytest.raises(ModelError, match=r"model\.skops: missing \(listed in manifest\.json\)"):
        store.load(version)
    skops_file.write_bytes(good)
    store.load(version)
    (directory / "notes.txt").write_text("hi")
    with pytest.raises(ModelError, match=r"notes\.txt: not listed in manifest\.json"):
        store.load(version)
    (directory / "notes.txt").unlink()
    manifest_text = (directory / "manifest.json").read_text()
    (directory / "manifest.json").unlink()
    with pytest.raises(ModelError, match=r"manifest\.json: missing .* refusing to load it"):
        store.load(version)
    listed = json.loads(manifest_text)
    listed["files"]["extra.bin"] = listed["files"]["model.skops"]
    (directory / "manifest.json").write_text(json.dumps(listed))
    with pytest.raises(ModelError, match=r"manifest\.json: must list exactly metadata\.json, model\.skops"):
        store.load(version)


# --- signatures ---------------------------------------------------------------------------------
def test_signature_written_checked_and_refused(tmp_path: Path, trained: SegmentModel) -> None:
    signed = ModelStore(tmp_path / "models", signing_key=KEY)
    version = signed.save(trained)
    directory = signed.root / version
    sig = (directory / "manifest.sig").read_text().strip()
    expected = hmac.new(KEY.encode(), (directory / "manifest.json").read_bytes(), hashlib.sha256).hexdigest()
    assert sig == expected
    signed.load(version)
    load_model_dir(directory, signing_key=KEY)
    load_model_dir(directory, signing_key=KEY.encode())
    ModelStore(signed.root).load(version)  # without a key the signature is not required (the manifest is)
    wrong = f"{directory}: manifest signature is wrong; refusing to load (RFM_MODEL_SIGNING_KEY is set)"
    missing = f"{directory}: manifest signature is missing; refusing to load (RFM_MODEL_SIGNING_KEY is set)"
    for load in (lambda: ModelStore(signed.root, signing_key="another key").load(version),
                 lambda: load_model_dir(directory, signing_key="another key")):
        with pytest.raises(ModelError) as info:
            load()
        assert str(info.value) == wrong
    # A re-sealed manifest (tampered metadata, hashes recomputed) without the key cannot be re-signed.
    edit_metadata(directory, swap_centres)
    sig_text = (directory / "manifest.sig").read_text()
    reseal(directory)
    ModelStore(signed.root).load(version)  # unsigned check only: this is why a key matters
    (directory / "manifest.sig").write_text(sig_text)
    with pytest.raises(ModelError) as info:
        signed.load(version)
    assert str(info.value) == wrong
    (directory / "manifest.sig").unlink()
    with pytest.raises(ModelError) as info:
        signed.load(version)
    assert str(info.value) == missing
    # An unsigned version (saved without a key) is refused once a key is configured.
    unsigned = ModelStore(tmp_path / "plain").save(trained)
    with pytest.raises(ModelError) as info:
        ModelStore(tmp_path / "plain", signing_key=KEY).load(unsigned)
    assert str(info.value) == f"{tmp_path / 'plain' / unsigned}: manifest signature is missing; refusing to load " \
                              "(RFM_MODEL_SIGNING_KEY is set)"
    with pytest.raises(ModelError, match="empty"):
        ModelStore(tmp_path / "plain", signing_key="")


def test_signed_rename_promote_and_package(tmp_path: Path, trained: SegmentModel) -> None:
    signed = ModelStore(tmp_path / "models", signing_key=KEY)
    version = signed.save(trained)
    signed.rename_cluster(version, 0, "Whales")
    signed.promote(version)
    assert signed.load().segment_name(0) == "Whales"
    archive = signed.package(version, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "manifest.sig", "metadata.json", "model.skops"]
        tar.extractall(tmp_path / "opt", filter="data")
    assert load_model_dir(tmp_path / "opt", signing_key=KEY).segment_name(0) == "Whales"


def test_cli_exits_2_with_one_line_on_a_bad_signature(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained: SegmentModel,
    demo_parquet: Path,
) -> None:
    version = ModelStore(tmp_path).save(trained)  # unsigned
    monkeypatch.setenv("RFM_MODEL_SIGNING_KEY", KEY)
    line = f"{tmp_path / version}: manifest signature is missing; refusing to load (RFM_MODEL_SIGNING_KEY is set)"
    for argv in (["models", "promote", version], ["label", version, "0", "X"],
                 ["package", version, "--out", str(tmp_path / "m.tgz")],
                 ["report", "--data", str(demo_parquet), "--model", version]):
        code = main([*argv, "--models-dir", str(tmp_path)])
        _, err = capsys.readouterr()
        assert code == 2 and line in err and err.count("\n") == 1, (argv, err)
    code = main(["models", "list", "--models-dir", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 0 and "manifest signature is missing" in out


def test_server_does_not_start_with_a_bad_signature(tmp_path: Path, trained: SegmentModel) -> None:
    from server_process import ServerProcess

    store = ModelStore(tmp_path / "models", signing_key="the real key")
    version = store.save(trained)
    archive = store.package(version, tmp_path / "model.tar.gz")
    target = tmp_path / "sm" / "model"
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    proc = ServerProcess(target, env={"RFM_MODEL_SIGNING_KEY": "an attacker's guess"})
    proc.proc.wait(timeout=60)
    output = proc.stop()
    assert proc.proc.returncode == 2
    assert "refusing to start" in output and "manifest signature is wrong" in output


# --- old format and upgrade ----------------------------------------------------------------------
def test_old_format_is_refused_with_the_upgrade_hint(store: ModelStore, trained: SegmentModel) -> None:
    directory = old_format_version(store, trained, "20200101-000000-k3")
    line = (f"{directory}: old model format (model.joblib); run `rfm models upgrade 20200101-000000-k3` "
            "if you trust this file")
    version = "20200101-000000-k3"
    for load in (lambda: store.load(version), lambda: load_model_dir(directory), lambda: store.promote(version),
                 lambda: store.rename_cluster(version, 0, "X"), lambda: store.package(version, store.root / "m.tgz")):
        with pytest.raises(ModelError) as info:
            load()
        assert str(info.value) == line
    [summary] = store.summaries()
    assert summary.error == line


def test_upgrade_converts_in_place_and_predicts_the_same(
    store: ModelStore, trained: SegmentModel, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = "20200101-000000-k3"
    directory = old_format_version(store, trained, version)
    old_meta = json.loads((directory / "metadata.json").read_text())
    events: list[str] = []
    real = store_module._unpickle_legacy

    def recording(path: Path, sha256: str | None) -> Any:
        events.append("unpickle")
        return real(path, sha256)

    monkeypatch.setattr(store_module, "_unpickle_legacy", recording)
    upgraded = models_service.upgrade(store, version, warn=lambda message: events.append(message))
    assert len(events) == 2 and events[1] == "unpickle" and "unpickles" in events[0]  # warned first
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "metadata.json", "model.skops"]
    new_meta = json.loads((directory / "metadata.json").read_text())
    assert {k: v for k, v in old_meta.items() if k != "sha256"} == new_meta
    X = rfm_rows(table)
    assert (upgraded.predict(X) == trained.predict(X)).all()
    reloaded = store.load_verified(version)
    assert (reloaded.pipeline.predict(X[X[:, 2] > 0]) == trained.pipeline.predict(X[X[:, 2] > 0])).all()
    assert reloaded.predictor == trained.predictor
    with pytest.raises(ModelError, match="already in the current format"):
        store.upgrade(version, events.append)
    assert not list(store.root.glob(".tmp-*")) and not list(store.root.glob(".old-*"))


def test_upgrade_refuses_a_pickle_that_disagrees_with_the_metadata(
    store: ModelStore, trained: SegmentModel
) -> None:
    directory = old_format_version(store, trained, "20200101-000000-k3")
    edit_metadata(directory, swap_centres)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    with pytest.raises(ModelError, match=r"predictor block does not match model\.joblib"):
        store.upgrade("20200101-000000-k3", lambda _: None)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_cli_upgrade_signs_with_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained: SegmentModel
) -> None:
    store = ModelStore(tmp_path)
    old_format_version(store, trained, "20200101-000000-k3")
    monkeypatch.setenv("RFM_MODEL_SIGNING_KEY", KEY)
    code = main(["models", "upgrade", "20200101-000000-k3", "--models-dir", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert err.startswith("warning: ") and "model.joblib: upgrading unpickles this file" in err
    assert "upgraded 20200101-000000-k3" in err
    assert (tmp_path / "20200101-000000-k3" / "manifest.sig").is_file()
    ModelStore(tmp_path, signing_key=KEY).load_verified("20200101-000000-k3")


# --- a planted pickle never runs ------------------------------------------------------------------
def test_a_planted_pickle_is_never_run_except_by_upgrade(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained: SegmentModel, demo_parquet: Path
) -> None:
    from server_process import ServerProcess

    models = tmp_path / "models"
    store = ModelStore(models)
    marker = tmp_path / "PWNED"
    # 1) an old-format version whose model.joblib is a planted pickle, promoted by hand
    old = old_format_version(store, trained, "20200101-000000-k3")
    plant_pickle(old / "model.joblib", marker)
    digest = hashlib.sha256((old / "model.joblib").read_bytes()).hexdigest()
    edit_metadata(old, lambda m: m.update(sha256=digest))  # whoever plants the file rewrites its hash too
    (models / "CURRENT").write_text("20200101-000000-k3\n")
    # 2) a good new-format version with a planted model.joblib next to its files
    good = store.save(trained)
    plant_pickle(models / good / "model.joblib", marker)
    out = str(tmp_path / "out.csv")
    commands = [
        ["export", "--data", str(demo_parquet), "--out", out], ["report", "--data", str(demo_parquet)],
        ["label", "20200101-000000-k3", "0", "X"], ["models", "promote", "20200101-000000-k3"],
        ["package", "20200101-000000-k3", "--out", str(tmp_path / "m.tgz")], ["models", "list"],
    ]
    for version in (good,):
        commands += [["export", "--data", str(demo_parquet), "--out", out, "--model", version],
                     ["label", version, "0", "X"], ["models", "promote", version],
                     ["package", version, "--out", str(tmp_path / "m.tgz")]]
    for argv in commands:
        main([*argv, "--models-dir", str(models)])
        capsys.readouterr()
        assert not marker.exists(), argv
    for load in (lambda: store.load(), lambda: load_model_dir(old), lambda: load_model_dir(models / good),
                 lambda: store.load_verified(good)):
        with pytest.raises(ModelError):
            load()
    assert not marker.exists()
    for directory in (old, models / good):
        proc = ServerProcess(directory)
        proc.proc.wait(timeout=60)
        output = proc.stop()
        assert proc.proc.returncode == 2 and "refusing to start" in output, output
        assert not marker.exists()
    # 3) only upgrade runs it, after its warning (and then refuses what came out)
    code = main(["models", "upgrade", "20200101-000000-k3", "--models-dir", str(models)])
    _, err = capsys.readouterr()
    assert code == 2 and marker.exists()
    assert err.startswith("warning: ") and "not an rfm segmentation pipeline" in err.splitlines()[1]
    assert (old / "model.joblib").exists() and not (old / "manifest.json").exists()  # nothing replaced


# --- store writes under a lock ---------------------------------------------------------------------
LABEL = [sys.executable, "-c", "import sys; from rfm.cli import main; sys.exit(main(sys.argv[1:]))"]
# Loaded by every child process (sitecustomize): widens the read-modify-write window of a rename to
# 0.3 s, so processes started together overlap in it. Without the lock, updates are then lost (checked
# by hand: two of four renames vanish in a round); with it, none is.
SLOW_WRITES = """
import time
import rfm.model.store as store
real = store.ModelStore._replace_version
def slow(self, *args):
    time.sleep(0.3)
    return real(self, *args)
store.ModelStore._replace_version = slow
"""


def test_parallel_label_processes_lose_no_update(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    model = train_model(three_group_table(6, (80, 100, 120)), 4)
    version = store.save(model)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_WRITES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(REPO)])}
    env.pop("RFM_MODEL_SIGNING_KEY", None)
    for round_ in range(2):  # k processes renaming one cluster each, and a promotion, all at once
        procs = [subprocess.Popen([*LABEL, "label", "--models-dir", str(store.root), version, str(cluster),
                                   f"Segment {cluster} round {round_}"], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for cluster in range(model.k)]
        procs.append(subprocess.Popen([*LABEL, "models", "promote", "--models-dir", str(store.root), version],
                                      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        names = [c.name for c in store.load(version).clusters]
        assert names == [f"Segment {c} round {round_}" for c in range(model.k)], names
        assert store.current_version() == version
    assert not list(store.root.glob(".tmp-*")) and not list(store.root.glob(".old-*"))


def test_readers_never_see_a_half_renamed_version(store: ModelStore, trained: SegmentModel) -> None:
    version = store.save(trained)
    errors: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                store.load(version)
            except ModelError as exc:
                errors.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            store.rename_cluster(version, i % trained.k, f"Name {i}")
    finally:
        done.set()
        reader.join()
    assert errors == []


def test_fallback_swap_and_crash_recovery(
    store: ModelStore, trained: SegmentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = store.save(trained)
    monkeypatch.setattr(store_module, "_exchange", lambda a, b: False)  # no renameat2 here
    store.rename_cluster(version, 0, "Whales")
    assert store.load(version).segment_name(0) == "Whales"
    # a crash between the two renames of the fallback: only .old-V is left
    os.rename(store.root / version, store.root / f".old-{version}")
    assert store.list_versions() == []
    store.rename_cluster(version, 1, "Minnows")  # the next writer restores it first, under the lock
    model = store.load(version)
    assert (model.segment_name(0), model.segment_name(1)) == ("Whales", "Minnows")
    assert not list(store.root.glob(".old-*"))
