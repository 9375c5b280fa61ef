"""Model versions on disk: `models/<version>/{model.joblib, metadata.json}` and `models/CURRENT`.

Every write is atomic: a version is written into a hidden temporary directory and renamed into
place, and single files (metadata.json after a rename, CURRENT) are written to a temporary file and
`os.replace`d, so a crash at any point leaves either the old state or the new one, never a half
model. Loading checks the sha256 of model.joblib (recorded in metadata.json) and the predictor
block, but does not unpickle: the model scores from the block (see rfm.model.segment_model), and
model.joblib is unpickled only when its pipeline is first used, from bytes hashed again at that
moment (a file changed since is refused rather than executed) and checked to hold exactly the
block's arrays. Models saved before predictor blocks are unpickled at load, as they always were;
rewriting their metadata (`rename_clusters`) adds the block. `promote` and `package` unpickle and
check at once: what they vouch for is the whole model. scikit-learn and joblib are imported only
when something is unpickled or saved.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rfm.errors import ModelError
from rfm.model.metadata import ModelMetadata, VersionSummary
from rfm.model.predictor import Predictor
from rfm.model.segment_model import LazyPipeline, SegmentModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"
PIPELINE_STEPS = ["log1p", "scale", "kmeans"]
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TMP_PREFIX = ".tmp-"


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model_dir(path: str | os.PathLike[str]) -> SegmentModel:
    """A model from a directory holding model.joblib and metadata.json (a version directory, or
    SageMaker's /opt/ml/model). Refuses a model.joblib whose sha256 differs from the metadata's and a
    malformed predictor block; unpickles nothing unless the metadata predates predictor blocks."""
    directory = Path(path)
    metadata = read_metadata(directory)
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise ModelError(f"{model_path}: missing (a model directory holds {MODEL_FILE} and {METADATA_FILE})")
    sha256 = _check_sha256(model_path, sha256_file(model_path), metadata.sha256)
    if metadata.predictor is None:  # saved before predictor blocks: the arrays come from the pipeline
        return _segment_model(directory, _unpickle(model_path, sha256), metadata)
    predictor = metadata.predictor.to_predictor()  # checked when metadata.json was read
    load = functools.partial(_unpickle_matching, model_path, sha256, predictor)
    return _segment_model(directory, LazyPipeline(load), metadata, predictor)


def _segment_model(directory: Path, pipeline: Pipeline | LazyPipeline, metadata: ModelMetadata,
                   predictor: Predictor | None = None) -> SegmentModel:
    try:
        return SegmentModel(pipeline, metadata, predictor=predictor)
    except ModelError as exc:  # e.g. the cluster list and the centres disagree
        raise ModelError(f"{directory / METADATA_FILE}: {exc}") from None


def _check_sha256(model_path: Path, actual: str, expected: str | None) -> str:
    """The recorded sha256, when `actual` is it (else a one-line refusal)."""
    if expected is None or actual != expected:
        raise ModelError(
            f"{model_path}: sha256 {actual[:12]}... does not match metadata.json "
            f"({str(expected)[:12]}...): the file was modified or corrupted; refusing to load it"
        )
    return expected


def _unpickle(model_path: Path, sha256: str) -> Pipeline:
    """The pipeline in model.joblib, unpickled from the very bytes that were hashed (so a file
    replaced after `load_model_dir` checked it is refused, not executed)."""
    import joblib
    from sklearn.pipeline import Pipeline

    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{model_path}: cannot be read ({exc.strerror or exc})") from None
    _check_sha256(model_path, hashlib.sha256(data).hexdigest(), sha256)
    try:
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as exc:  # a matching hash but unreadable pickle: wrong library versions
        raise ModelError(f"{model_path}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
    if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != PIPELINE_STEPS:
        raise ModelError(f"{model_path}: not an rfm segmentation pipeline (log1p -> scale -> kmeans)")
    return pipeline


def _unpickle_matching(model_path: Path, sha256: str, predictor: Predictor) -> Pipeline:
    """The pipeline, refused unless it holds exactly the predictor block's arrays (the model has
    been scoring with those: a pipeline that disagrees means metadata.json was edited)."""
    pipeline = _unpickle(model_path, sha256)
    if Predictor.from_pipeline(pipeline) != predictor:
        raise ModelError(
            f"{model_path.parent / METADATA_FILE}: the predictor block does not match {MODEL_FILE} "
            "(scaler mean/scale or centres differ): the metadata was modified; refusing to use the model"
        )
    return pipeline


def read_metadata(directory: str | os.PathLike[str]) -> ModelMetadata:
    """The metadata.json of a model directory, validated (one-line ModelError naming the file and field)."""
    path = Path(directory) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (not a model directory?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable or not valid JSON ({exc})") from None
    return ModelMetadata.from_json_dict(data, where=path)


class ModelStore:
    """The versions in one models directory (default `models`)."""

    def __init__(self, models_dir: str | os.PathLike[str] = "models") -> None:
        self.root = Path(models_dir)

    # --- reading --------------------------------------------------------------------------------
    def list_versions(self) -> list[str]:
        """Saved versions, oldest first (version names start with their UTC creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()
        )

    def current_version(self) -> str | None:
        """The promoted version named by CURRENT, or None when nothing is promoted."""
        try:
            text = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def path(self, version: str) -> Path:
        """The directory of an existing version (one-line error for an unknown one)."""
        if not _VERSION_RE.match(version or ""):
            raise ModelError(f"{version!r} is not a valid model version name")
        directory = self.root / version
        if not directory.is_dir():
            known = self.list_versions()
            hint = f"versions in {self.root}: {', '.join(known[-5:])}" if known else f"{self.root} has no models"
            raise ModelError(f"unknown model version {version!r} ({hint})")
        return directory

    def load(self, version: str | None = None) -> SegmentModel:
        """A saved version (None: the promoted one), checked against its sha256."""
        if version is None:
            version = self.current_version()
            if version is None:
                raise ModelError(
                    f"no promoted model in {self.root} (train one with `rfm train --promote` "
                    "or promote one with `rfm models promote VERSION`)"
                )
        model = load_model_dir(self.path(version))
        if model.version != version:
            raise ModelError(f"{self.root / version / METADATA_FILE}: records version {model.version!r}")
        return model

    def load_verified(self, version: str) -> SegmentModel:
        """A saved version with its pipeline unpickled now, so it is known to match the predictor
        block (`load` defers that to the pipeline's first use, which scoring never needs)."""
        model = self.load(version)
        _ = model.pipeline
        return model

    def summaries(self) -> list[VersionSummary]:
        """One summary a version, oldest first (from metadata.json, without unpickling): for listings.
        A version whose metadata cannot be read is listed with `error` set."""
        current = self.current_version()
        out = []
        for version in self.list_versions():
            try:
                meta = read_metadata(self.root / version)
            except ModelError as exc:
                out.append(VersionSummary(version=version, current=version == current, error=str(exc)))
                continue
            out.append(VersionSummary.of(meta, version=version, current=version == current))
        return out

    # --- writing --------------------------------------------------------------------------------
    def save(self, model: SegmentModel, version: str | None = None) -> str:
        """Write a model as a new version (atomically) and return the version name."""
        import joblib  # not at module level: loading and scoring never need it

        self.root.mkdir(parents=True, exist_ok=True)
        base = version or _new_version_name(model.k)
        if not _VERSION_RE.match(base):
            raise ModelError(f"{base!r} is not a valid model version name")
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.root))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; a server may run as another user
            joblib.dump(model.pipeline, tmp / MODEL_FILE)
            _fsync(tmp / MODEL_FILE)
            sha256 = sha256_file(tmp / MODEL_FILE)
            for attempt in range(1, 100):
                name = base if attempt == 1 else f"{base}-{attempt}"
                if (self.root / name).exists():
                    if version is not None:
                        raise ModelError(f"model version {version!r} already exists in {self.root}")
                    continue
                metadata = model.metadata.model_copy(update={"version": name, "sha256": sha256})
                _write_json(tmp / METADATA_FILE, metadata.to_json_dict())
                try:
                    os.rename(tmp, self.root / name)
                except OSError:  # created concurrently: try the next name
                    if version is not None:
                        raise
                    continue
                _fsync_dir(self.root)
                return name
            raise ModelError(f"cannot find a free version name for {base!r} in {self.root}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def promote(self, version: str) -> None:
        """Make a version the one CURRENT names (it must load, pass its sha256 check, and its pipeline
        must unpickle and match the predictor block)."""
        self.load_verified(version)
        _atomic_write_bytes(self.root / CURRENT_FILE, f"{version}\n".encode())

    def rename_cluster(self, version: str, cluster_id: int, name: str) -> SegmentModel:
        """Give one cluster of a saved version a new business name (see `rename_clusters`)."""
        return self.rename_clusters(version, {cluster_id: name})

    def rename_clusters(self, version: str, changes: Mapping[int, str]) -> SegmentModel:
        """Rename clusters of a saved version (cluster id -> new name) in ONE atomic rewrite of
        metadata.json. The names are checked together first (`SegmentModel.renamed_many`: unique in
        the final set, so swaps work), so a bad one changes nothing on disk. model.joblib is not
        touched (its hash stays valid); a model saved before predictor blocks gains one."""
        model = self.load(version).renamed_many(changes)
        _write_json(self.path(version) / METADATA_FILE, model.metadata.to_json_dict())
        return model

    def package(self, version: str, out: str | os.PathLike[str]) -> Path:
        """model.tar.gz for SageMaker: model.joblib and metadata.json at the archive root, so they
        unpack straight into /opt/ml/model. The version is verified first (`load_verified`)."""
        model = self.load_verified(version)
        directory = self.path(version)
        out_path = Path(out)
        with _atomic_file(out_path) as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for name in (MODEL_FILE, METADATA_FILE):
                tar.add(directory / name, arcname=name, filter=_normalise_member)
        if sha256_file(directory / MODEL_FILE) != model.metadata.sha256:
            out_path.unlink(missing_ok=True)
            raise ModelError(f"{directory / MODEL_FILE} changed while it was being packaged")
        return out_path


def _new_version_name(k: int) -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-k{k}"


def _normalise_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Archive members owned by root with plain permissions, whoever built the package."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644
    return info


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    with _atomic_file(path) as handle:
        handle.write(payload)


@contextmanager
def _atomic_file(path: Path) -> Iterator[io.BufferedWriter]:
    """A file written next to `path` and renamed over it only when the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; readers may be other users
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
