"""Model versions on disk: round trip, sha256 refusal, atomic writes, CURRENT, SageMaker package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rfm.errors import ModelError
from rfm.model import ModelStore, load_model_dir, sha256_file, train_model
from rfm.model import store as store_module
from tests.helpers import three_group_table
from tests.test_model_security import reseal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return three_group_table(5)


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def test_save_load_promote_round_trip(store: ModelStore, table: pd.DataFrame) -> None:
    assert store.list_versions() == [] and store.current_version() is None
    with pytest.raises(ModelError, match="no promoted model"):
        store.load()
    model = train_model(table, 3)
    version = store.save(model)
    second = store.save(train_model(table, 4))
    assert store.list_versions() == sorted([version, second]) and version != second
    store.promote(version)
    assert store.current_version() == version
    loaded = store.load()
    assert loaded.version == version and loaded.k == 3
    assert [c.as_dict() for c in loaded.clusters] == [c.as_dict() for c in model.clusters]
    assert (loaded.predict(table) == model.predict(table)).all()
    meta = json.loads((store.root / version / "metadata.json").read_text())
    listed = json.loads((store.root / version / "manifest.json").read_text())["files"]
    assert listed["model.skops"]["sha256"] == sha256_file(store.root / version / "model.skops")
    assert listed["metadata.json"]["sha256"] == sha256_file(store.root / version / "metadata.json")
    assert "sha256" not in meta
    assert meta["version"] == version
    assert {"id", "name", "centroid"} <= set(meta["clusters"][0])
    assert set(meta["clusters"][0]["centroid"]) == {"recency", "frequency", "monetary"}
    assert store.load(second).k == 4


def test_versions_saved_in_the_same_second_list_in_saving_order(store: ModelStore, table: pd.DataFrame,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = train_model(table, 3)
    monkeypatch.setattr(store_module, "_new_version_name", lambda k: f"20261201-120000-k{k}")
    names = [store.save(model) for _ in range(12)]
    assert names[:3] == ["20261201-120000-k3", "20261201-120000-k3-2", "20261201-120000-k3-3"]
    assert store.list_versions() == names  # "-10" after "-9", not before "-2"
    store.save(model, version="20261201-120001-k3")
    assert store.list_versions()[-1] == "20261201-120001-k3"


def test_rename_is_stored_and_keeps_the_hash(store: ModelStore, table: pd.DataFrame) -> None:
    version = store.save(train_model(table, 3))
    digest = sha256_file(store.root / version / "model.skops")
    store.rename_cluster(version, 1, "  Weekend   Shoppers ")
    reloaded = store.load(version)
    assert reloaded.segment_name(1) == "Weekend Shoppers"
    assert reloaded.cluster_id("weekend shoppers") == 1
    assert sha256_file(store.root / version / "model.skops") == digest  # the model file is kept byte for byte
    other = reloaded.segment_name(0)
    with pytest.raises(ModelError, match="unique"):
        store.rename_cluster(version, 1, other.upper())
    with pytest.raises(ModelError, match="empty"):
        store.rename_cluster(version, 1, "   ")
    with pytest.raises(ModelError, match="no cluster 7"):
        store.rename_cluster(version, 7, "x")


def test_tampered_model_file_is_refused(store: ModelStore, table: pd.DataFrame) -> None:
    version = store.save(train_model(table, 3))
    store.promote(version)
    path = store.root / version / "model.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        store.load(version)
    with pytest.raises(ModelError, match="sha256"):
        load_model_dir(store.root / version)
    with pytest.raises(ModelError, match="sha256"):
        store.promote(version)
    with pytest.raises(ModelError, match="sha256"):
        store.package(version, store.root.parent / "model.tar.gz")
    assert not (store.root.parent / "model.tar.gz").exists()


def test_corrupted_metadata_is_refused(store: ModelStore, table: pd.DataFrame) -> None:
    version = store.save(train_model(table, 3))
    meta_path = store.root / version / "metadata.json"
    good = meta_path.read_text()
    meta_path.write_text(good[: len(good) // 2])
    with pytest.raises(ModelError, match=r"metadata\.json: sha256 .* not match manifest\.json"):
        store.load(version)
    reseal(meta_path.parent)  # as if a writer had produced it: then the content checks speak
    with pytest.raises(ModelError, match="not valid JSON"):
        store.load(version)
    meta = json.loads(good)
    meta["sha256"] = "0" * 64  # the old in-metadata hash is read but trusted for nothing
    meta_path.write_text(json.dumps(meta))
    reseal(meta_path.parent)
    assert store.load(version).metadata.sha256 == "0" * 64
    meta = json.loads(good)
    meta["clusters"] = meta["clusters"][:2]
    meta_path.write_text(json.dumps(meta))
    reseal(meta_path.parent)
    with pytest.raises(ModelError, match="centres"):
        store.load(version)
    (store.root / version / "model.skops").unlink()
    with pytest.raises(ModelError, match="missing"):
        store.load(version)


def test_unknown_or_unsafe_version_names(store: ModelStore, table: pd.DataFrame) -> None:
    store.save(train_model(table, 3))
    for bad in ("nope", "../models", "", "a/b"):
        with pytest.raises(ModelError):
            store.load(bad)
        with pytest.raises(ModelError):
            store.promote(bad)


def test_failed_save_leaves_previous_version_intact(
    store: ModelStore, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.save(train_model(table, 3))
    store.promote(first)

    def boom(fd: int) -> None:
        os.ftruncate(fd, 5)  # a partial write, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(store_module.os, "fsync", boom)
    with pytest.raises(ModelError, match=r"cannot write to the models folder .*\(disk full\)"):
        store.save(train_model(table, 4))
    monkeypatch.undo()
    assert store.list_versions() == [first]
    assert store.current_version() == first and store.load().version == first
    assert sorted(p.name for p in store.root.iterdir() if p.name.startswith(".")) == [".lock", ".tmp"]
    assert list((store.root / ".tmp").iterdir()) == []  # the failed write removed its temporary directory


def test_failed_rename_keeps_old_metadata(
    store: ModelStore, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = store.save(train_model(table, 3))
    before = (store.root / version / "metadata.json").read_bytes()

    def no_swap(a: Path, b: Path) -> bool:
        raise OSError("power cut")

    monkeypatch.setattr(store_module, "_exchange", no_swap)
    with pytest.raises(ModelError, match="power cut"):
        store.rename_cluster(version, 0, "New Name")
    monkeypatch.undo()
    assert (store.root / version / "metadata.json").read_bytes() == before
    assert store.load(version).segment_name(0) != "New Name"
    assert sorted(p.name for p in (store.root / version).iterdir()) == ["manifest.json", "metadata.json", "model.skops"]
    assert [p.name for p in store.root.iterdir() if p.name.startswith((".tmp-", ".old"))] == []
    assert list((store.root / ".tmp").iterdir()) == []


KILL_MID_SAVE = """
import os, sys
import numpy as np, pandas as pd
from rfm.model import ModelStore, train_model
from rfm.model import store
table = pd.read_parquet(sys.argv[2])
model = train_model(table, 4)
def write_half_then_die(fd):
    os.ftruncate(fd, 100)  # half a file on disk
    os._exit(9)  # the process dies: no exception handler, no cleanup
store.os.fsync = write_half_then_die  # ModelStore.save fsyncs each file it writes
ModelStore(sys.argv[1]).save(model)
"""


def test_killed_process_mid_save_leaves_previous_version_intact(
    store: ModelStore, table: pd.DataFrame, tmp_path: Path
) -> None:
    first = store.save(train_model(table, 3))
    store.promote(first)
    data = tmp_path / "table.parquet"
    table.to_parquet(data)
    proc = subprocess.run([sys.executable, "-c", KILL_MID_SAVE, str(store.root), str(data)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    leftovers = list((store.root / ".tmp").iterdir())
    assert leftovers, "the killed save should have left its temporary directory (in the store's .tmp)"
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".tmp-")] == []  # nowhere else
    assert store.list_versions() == [first]
    assert store.load().version == first
    assert [s.version for s in store.summaries()] == [first]
    store.promote(first)  # the next write, under the lock, removes what the killed one left
    assert list((store.root / ".tmp").iterdir()) == []


def test_package_has_files_at_the_archive_root(store: ModelStore, table: pd.DataFrame, tmp_path: Path) -> None:
    model = train_model(table, 3)
    version = store.save(model)
    out = store.package(version, tmp_path / "model.tar.gz")
    with tarfile.open(out, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "metadata.json", "model.skops"]
        opt_ml_model = tmp_path / "opt" / "ml" / "model"
        tar.extractall(opt_ml_model, filter="data")
    unpacked = load_model_dir(opt_ml_model)
    assert unpacked.version == version
    assert (unpacked.predict(table) == model.predict(table)).all()
    for name in ("manifest.json", "metadata.json", "model.skops"):
        assert sha256_file(opt_ml_model / name) == sha256_file(store.root / version / name)


def test_saved_files_are_readable_by_others(store: ModelStore, table: pd.DataFrame) -> None:
    version = store.save(train_model(table, 3))
    store.promote(version)
    assert os.stat(store.root / version).st_mode & 0o005 == 0o005
    for path in (store.root / version / "metadata.json", store.root / "CURRENT"):
        assert os.stat(path).st_mode & 0o004


# --- renaming several clusters: one check, one atomic write --------------------------------------
def count_metadata_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every rewrite of a version's metadata.json through the store (the only way: one atomic replacement
    of the version directory, metadata.json and its manifest together)."""
    writes: list[Path] = []
    real = ModelStore._replace_version

    def counting(self: ModelStore, version: str, metadata: Any, model_bytes: bytes) -> None:
        writes.append(self.root / version / "metadata.json")
        real(self, version, metadata, model_bytes)

    monkeypatch.setattr(ModelStore, "_replace_version", counting)
    return writes


def test_rename_clusters_swaps_names_in_one_write(
    store: ModelStore, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = store.save(train_model(table, 3))
    digest = sha256_file(store.root / version / "model.skops")
    before = store.load(version)
    first, second, third = (before.segment_name(i) for i in range(3))
    writes = count_metadata_writes(monkeypatch)
    renamed = store.rename_clusters(version, {0: second, 1: first})
    assert writes == [store.root / version / "metadata.json"]
    assert [renamed.segment_name(i) for i in range(3)] == [second, first, third]
    reloaded = store.load(version)
    assert [c.name for c in reloaded.clusters] == [second, first, third]
    assert reloaded.cluster_id(first) == 1 and reloaded.cluster_id(second.upper()) == 0
    assert sha256_file(store.root / version / "model.skops") == digest
    assert [c.default_name for c in reloaded.metadata.clusters] == [first, second, third]
    # A three-way rotation plus a new name, still one write; rename_cluster is one write as well.
    store.rename_clusters(version, {0: third, 1: "  Brand   New ", 2: second})
    assert len(writes) == 2
    assert [c.name for c in store.load(version).clusters] == [third, "Brand New", second]
    store.rename_cluster(version, 1, first)
    assert len(writes) == 3 and store.load(version).segment_name(1) == first
    assert "__renaming" not in (store.root / version / "metadata.json").read_text()


@pytest.mark.parametrize(("changes", "message"), [
    ({0: "Fine Name", 1: "   "}, "empty"),
    ({0: "Same", 1: "same"}, "unique"),
    ({0: "Fine Name", 7: "Other"}, "no cluster 7"),
    ({0: "Fine Name", -1: "Other"}, "cannot be renamed"),
    ({0: "Fine Name", 1: "No Net Revenue"}, "reserved"),
    ({0: "Fine Name", 1: "x" * 61}, "at most 60"),
], ids=["empty", "duplicate among changes", "unknown id", "not segmented", "reserved", "too long"])
def test_a_bad_name_among_several_changes_nothing(
    store: ModelStore, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, changes: dict[int, str], message: str
) -> None:
    version = store.save(train_model(table, 3))
    path = store.root / version / "metadata.json"
    before = path.read_bytes()
    writes = count_metadata_writes(monkeypatch)
    with pytest.raises(ModelError, match=message) as info:
        store.rename_clusters(version, changes)
    assert "\n" not in str(info.value)
    assert writes == [] and path.read_bytes() == before
    assert sorted(p.name for p in (store.root / version).iterdir()) == ["manifest.json", "metadata.json", "model.skops"]


def test_a_new_name_may_not_clash_with_an_unchanged_cluster(store: ModelStore, table: pd.DataFrame) -> None:
    version = store.save(train_model(table, 3))
    path = store.root / version / "metadata.json"
    before = path.read_bytes()
    kept = store.load(version).segment_name(2)
    with pytest.raises(ModelError, match="unique"):
        store.rename_clusters(version, {0: "Fresh", 1: kept.lower()})
    assert path.read_bytes() == before
    # ...but may take a name another changed cluster gives up in the same call.
    old_zero = store.load(version).segment_name(0)
    store.rename_clusters(version, {0: "Fresh", 1: old_zero})
    assert store.load(version).segment_name(1) == old_zero


def test_renamed_many_is_in_memory_and_leaves_the_original_alone(table: pd.DataFrame) -> None:
    model = train_model(table, 3)
    names = [c.name for c in model.clusters]
    swapped = model.renamed_many({0: names[2], 2: names[0]})
    assert [c.name for c in swapped.clusters] == [names[2], names[1], names[0]]
    assert [c.name for c in model.clusters] == names
    assert [c.name for c in model.metadata.clusters] == names
    assert swapped.pipeline is model.pipeline and swapped.predictor is model.predictor
    assert (swapped.predict(table) == model.predict(table)).all()
    assert model.renamed_many({}).metadata == model.metadata
    assert model.renamed(1, "Solo").segment_name(1) == "Solo"
