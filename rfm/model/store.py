"""Model versions on disk: `models/<version>/{model.skops, metadata.json, manifest.json[, manifest.sig]}`
and `models/CURRENT`.

**Nothing is unpickled** on any path but `ModelStore.upgrade`. The pipeline is saved with skops
(rfm.model.artifact: data, not code, loaded with an explicit list of trusted types), and scoring does not
even load it: a model scores from the predictor arrays in metadata.json, and `SegmentModel.pipeline`
loads model.skops only when asked (then checks it holds exactly those arrays).

**A version is verified as a whole** (rfm.model.manifest): manifest.json lists the sha256 and size of
metadata.json and model.skops; every load (`ModelStore.load`, `load_model_dir`, listings too) reads the
manifest, checks its HMAC signature when a signing key is configured, checks that the directory holds
exactly the listed files with those hashes, and only then parses the bytes it hashed. The old
"sha256 of model.joblib" field of metadata.json is still read (old files have it) but trusted for
nothing; new files leave it out.

**Atomicity.** A version's files only ever change together, by replacing the whole directory:
- `save` writes every file into a `.tmp-*` directory in the store's one temporary folder, `models/.tmp`
  (same filesystem), fsyncs them, and `rename(2)`s the directory to its version name: the name appears
  complete or not at all.
- `rename_clusters` and `upgrade` write the new version (same model bytes, or the converted model; new
  metadata.json, manifest.json, manifest.sig) into a `.tmp-*` directory and swap it with the version
  directory in ONE `renameat2(RENAME_EXCHANGE)` system call (Linux; atomic: any reader resolving
  `models/V` sees either the old directory or the new one, each complete and consistent), then delete
  the old one, now under the hidden name. Where the exchange is not available (not Linux, a filesystem
  without it) the swap is two renames, `V -> .old-V` then `.tmp-* -> V`: there is a moment where `V` is
  absent (a reader then gets "unknown version" and may retry), but never a moment where it is
  inconsistent; after a crash in between, the next writer (under the lock) renames `.old-V` back.
- `CURRENT` is replaced with a temporary file (in `models/.tmp`) and `os.replace`; it must be a plain
  file holding a version name (a symlink, a folder or binary content is a one-line error that never
  quotes the content).
A crash therefore leaves the old state or the new one plus, at most, something in `models/.tmp` (or an
`.old-*` directory) that listings ignore and the next writer removes under the lock.
metadata.json can never be newer or older than the manifest that lists
it, because they are never replaced one at a time. A reader that catches a directory mid-swap (files
read from two generations) fails the hash check rather than accepting a mix; it notices the directory
changed under it and reads again.

**Writers take a lock** (`models/.lock`, filelock) around every write of the store (read-modify-write):
`save`, `promote`, `rename_clusters` and `upgrade` re-read what they change after taking it, so
concurrent `rfm label`, `promote` and `train` never lose an update; a write the system refuses (an
unwritable folder, a full disk) is a one-line ModelError. Readers take no lock. A models folder that is
a file is a one-line error for readers and writers alike.

scikit-learn and skops are imported only when a pipeline is loaded or saved; joblib only by `upgrade`.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import io
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rfm.errors import ModelError, short_repr
from rfm.model import artifact
from rfm.model.artifact import MODEL_FILE, PIPELINE_STEPS
from rfm.model.manifest import (
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    SIGNATURE_FILE,
    SigningKey,
    key_bytes,
    read_verified,
    version_files,
)
from rfm.model.metadata import ModelMetadata, VersionSummary
from rfm.model.predictor import Predictor
from rfm.model.segment_model import LazyPipeline, SegmentModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "CURRENT_FILE",
    "LEGACY_MODEL_FILE",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "METADATA_FILE",
    "MODEL_FILE",
    "PIPELINE_STEPS",
    "SIGNATURE_FILE",
    "ModelStore",
    "VersionSummary",
    "load_model_dir",
    "read_metadata",
    "sha256_file",
]

CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
LOCK_TIMEOUT_SECONDS = 120.0
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"
# Every temporary file and directory of the store's writes lives in this one hidden folder of the store
# (same filesystem, so renames out of it are atomic); the next writer empties it under the lock, so a
# killed `train` or `label` leaves nothing behind for long.
TMP_DIR = ".tmp"
# CURRENT holds one version name: anything longer is not read (nor ever quoted in an error).
_CURRENT_MAX_BYTES = 256


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model_dir(path: str | os.PathLike[str], signing_key: SigningKey = None) -> SegmentModel:
    """A model from a version directory (or SageMaker's /opt/ml/model, unpacked from `ModelStore.package`).

    The whole directory is verified first (manifest hashes; the signature when `signing_key` is given:
    a str, bytes or pydantic SecretStr such as `settings.model_signing_key`); nothing is unpickled and
    model.skops is not parsed until the pipeline is asked for. One-line ModelError otherwise."""
    directory = Path(path)
    files = _read_version(directory, key_bytes(signing_key))
    return _model_from(directory, files)


def _read_version(directory: Path, key: bytes | None) -> dict[str, bytes]:
    """`read_verified`, read again when the directory was swapped while it was being read; a file the
    system refuses (permissions, a folder where a file should be) is a one-line ModelError."""
    for attempt in range(3):
        before = _inode(directory)
        try:
            return read_verified(directory, key)
        except ModelError:
            if attempt == 2 or before is None or _inode(directory) == before:
                raise
        except OSError as exc:
            where = exc.filename or directory
            raise ModelError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__}); "
                             "refusing to load the model") from None
    raise AssertionError("unreachable")


def _inode(directory: Path) -> int | None:
    try:
        return directory.stat().st_ino
    except OSError:
        return None


def _model_from(directory: Path, files: Mapping[str, bytes]) -> SegmentModel:
    """The model of verified version files: scores from metadata.json's predictor block; the pipeline
    is loaded from the verified model.skops bytes (kept in memory) on first use."""
    metadata = _parse_metadata(directory / METADATA_FILE, files[METADATA_FILE])
    if metadata.predictor is None:
        raise ModelError(f"{directory / METADATA_FILE}: no predictor block (the arrays scoring uses); "
                         "refusing to load the model")
    predictor = metadata.predictor.to_predictor()
    load = functools.partial(_pipeline_matching, directory, files[MODEL_FILE], predictor)
    try:
        return SegmentModel(LazyPipeline(load), metadata, predictor=predictor)
    except ModelError as exc:  # e.g. the cluster list and the centres disagree
        raise ModelError(f"{directory / METADATA_FILE}: {exc}") from None


def _pipeline_matching(directory: Path, data: bytes, predictor: Predictor) -> Pipeline:
    """The pipeline of model.skops, refused unless it holds exactly the predictor block's arrays (both
    files passed the manifest check, so a difference means the version was built wrong)."""
    pipeline = artifact.loads(data, where=directory / MODEL_FILE)
    if Predictor.from_pipeline(pipeline) != predictor:
        raise ModelError(
            f"{directory / METADATA_FILE}: the predictor block does not match {MODEL_FILE} "
            "(scaler mean/scale or centres differ); refusing to use the model"
        )
    return pipeline


def _parse_metadata(path: Path, data: bytes) -> ModelMetadata:
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable or not valid JSON ({exc})") from None
    return ModelMetadata.from_json_dict(parsed, where=path)


def read_metadata(directory: str | os.PathLike[str]) -> ModelMetadata:
    """The metadata.json of a model directory, validated but NOT verified against a manifest (for
    messages and the upgrade of old versions; loading uses `load_model_dir`)."""
    path = Path(directory) / METADATA_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (not a model directory?)") from None
    except OSError as exc:
        raise ModelError(f"{path}: unreadable ({exc.strerror or exc})") from None
    return _parse_metadata(path, data)


class ModelStore:
    """The versions in one models directory (default `models`). With a `signing_key` (str, bytes or
    SecretStr: RFM_MODEL_SIGNING_KEY), saving signs each version's manifest and loading refuses a
    version whose signature is missing or wrong."""

    def __init__(self, models_dir: str | os.PathLike[str] = "models", signing_key: SigningKey = None) -> None:
        self.root = Path(models_dir)
        self._key = key_bytes(signing_key)

    @property
    def signed(self) -> bool:
        """Whether a signing key is configured (saves sign, loads require a valid signature)."""
        return self._key is not None

    # --- reading --------------------------------------------------------------------------------
    def _check_root(self) -> bool:
        """Whether the models folder exists; a file (or anything not a folder) there is a ModelError."""
        try:
            mode = self.root.stat().st_mode
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ModelError(f"{self.root}: the models folder cannot be read "
                             f"({exc.strerror or type(exc).__name__})") from None
        if not stat.S_ISDIR(mode):
            raise ModelError(f"{self.root}: not a folder (the models folder, --models-dir / RFM_MODELS_DIR, "
                             "must be a folder)")
        return True

    def list_versions(self) -> list[str]:
        """Saved versions, oldest first (version names start with their UTC creation time)."""
        if not self._check_root():
            return []
        try:
            return sorted(
                (p.name for p in self.root.iterdir()
                 if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()),
                key=_version_order,
            )
        except OSError as exc:
            raise ModelError(f"{self.root}: the models folder cannot be read "
                             f"({exc.strerror or type(exc).__name__})") from None

    def current_version(self) -> str | None:
        """The promoted version named by CURRENT, or None when nothing is promoted. CURRENT must be a
        plain file (not a symlink, not a folder) holding one version name; its content is never quoted
        in an error (a CURRENT pointing at another file must not print that file)."""
        if not self._check_root():
            return None
        path = self.root / CURRENT_FILE
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ModelError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        if stat.S_ISLNK(info.st_mode):
            raise ModelError(f"{path}: is a symbolic link; CURRENT must be a plain file holding a version name "
                             "(`rfm models promote VERSION` rewrites it)")
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"{path}: not a plain file; CURRENT must hold a version name "
                             "(`rfm models promote VERSION` rewrites it)")
        try:
            with open(path, "rb") as handle:
                data = handle.read(_CURRENT_MAX_BYTES + 1)
        except OSError as exc:
            raise ModelError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        try:
            text = data.decode("ascii").strip()
        except UnicodeDecodeError:
            text = None
        if text == "":
            return None
        if text is None or len(data) > _CURRENT_MAX_BYTES or not _VERSION_RE.match(text):
            raise ModelError(f"{path}: does not hold a model version name ({info.st_size:,} bytes); "
                             "`rfm models promote VERSION` rewrites it")
        return text

    def path(self, version: str) -> Path:
        """The directory of an existing version (one-line error for an unknown one)."""
        if not _VERSION_RE.match(version or ""):
            raise ModelError(f"{short_repr(version, 40)} is not a valid model version name")
        self._check_root()
        directory = self.root / version
        if not directory.is_dir():
            known = self.list_versions()
            hint = f"versions in {self.root}: {', '.join(known[-5:])}" if known else f"{self.root} has no models"
            raise ModelError(f"unknown model version {version!r} ({hint})")
        return directory

    def load(self, version: str | None = None) -> SegmentModel:
        """A saved version (None: the promoted one), verified as a whole (manifest, signature)."""
        return self._load(self._resolve(version))[0]

    def _resolve(self, version: str | None) -> str:
        if version is None:
            version = self.current_version()
            if version is None:
                raise ModelError(
                    f"no promoted model in {self.root} (train one with `rfm train --promote` "
                    "or promote one with `rfm models promote VERSION`)"
                )
        return version

    def _load(self, version: str) -> tuple[SegmentModel, dict[str, bytes]]:
        """The model and the verified bytes of its files."""
        directory = self.path(version)
        files = _read_version(directory, self._key)
        model = _model_from(directory, files)
        if model.version != version:
            raise ModelError(f"{directory / METADATA_FILE}: records version {model.version!r}")
        return model, files

    def load_verified(self, version: str) -> SegmentModel:
        """A saved version with its pipeline loaded now from model.skops, so it is known to match the
        predictor block (`load` defers that to the pipeline's first use, which scoring never needs)."""
        model = self.load(version)
        _ = model.pipeline
        return model

    def summaries(self) -> list[VersionSummary]:
        """One summary a version, oldest first (verified like a load, model.skops not parsed): for
        listings. A version that does not verify is listed with `error` set (one line)."""
        current = self.current_version()
        out = []
        for version in self.list_versions():
            directory = self.root / version
            try:
                meta = _parse_metadata(directory / METADATA_FILE,
                                       _read_version(directory, self._key)[METADATA_FILE])
            except ModelError as exc:
                out.append(VersionSummary(version=version, current=version == current, error=str(exc)))
                continue
            out.append(VersionSummary.of(meta, version=version, current=version == current))
        return out

    # --- writing (under the store's lock) -------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """The store's write lock (`models/.lock`): one writer at a time, across processes. Every write
        of the store happens under it. On entry, a swap interrupted by a crash (fallback path, see the
        module docstring) is repaired and the temporary folder (`.tmp`) emptied: what is in it belongs to
        a writer that no longer runs. A write the system refuses (an unwritable folder, a full disk) is a
        one-line ModelError."""
        from filelock import FileLock, Timeout

        self._check_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.root / LOCK_FILE), timeout=LOCK_TIMEOUT_SECONDS)
            lock.acquire()
        except Timeout:
            raise ModelError(f"{self.root / LOCK_FILE}: another rfm process has held the models lock for "
                             f"{LOCK_TIMEOUT_SECONDS:.0f} s; try again") from None
        except OSError as exc:
            raise _write_error(self.root, exc) from None
        try:
            self._recover()
            self._remove_leftovers()
            yield
        except OSError as exc:
            raise _write_error(self.root, exc) from None
        finally:
            lock.release()

    def _tmp_dir(self) -> Path:
        """The store's one folder of temporary files (made on first use)."""
        folder = self.root / TMP_DIR
        folder.mkdir(mode=0o755, exist_ok=True)
        return folder

    def _remove_leftovers(self) -> None:
        """Empty `.tmp` (and remove `.tmp-*` entries older versions of rfm left at the top): called under
        the lock, so no running writer owns any of them."""
        leftovers = [*self.root.glob(f"{_TMP_PREFIX}*")]
        folder = self.root / TMP_DIR
        if folder.is_dir():
            leftovers += list(folder.iterdir())
        for path in leftovers:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with suppress(OSError):
                    path.unlink()

    def save(self, model: SegmentModel, version: str | None = None) -> str:
        """Write a model as a new version (atomically, signed when a key is set); returns its name."""
        base = version or _new_version_name(model.k)
        if not _VERSION_RE.match(base):
            raise ModelError(f"{base!r} is not a valid model version name")
        model_bytes = artifact.dumps(model.pipeline)
        with self.locked():
            for attempt in range(1, 100):
                name = base if attempt == 1 else f"{base}-{attempt}"
                if (self.root / name).exists():
                    if version is not None:
                        raise ModelError(f"model version {version!r} already exists in {self.root}")
                    continue
                metadata = model.metadata.model_copy(update={"version": name, "sha256": None})
                tmp = self._write_tmp_version(metadata, model_bytes)
                try:
                    os.rename(tmp, self.root / name)
                except OSError:  # created concurrently by a writer that ignores the lock
                    shutil.rmtree(tmp, ignore_errors=True)
                    if version is not None:
                        raise
                    continue
                _fsync_dir(self.root)
                return name
            raise ModelError(f"cannot find a free version name for {base!r} in {self.root}")

    def promote(self, version: str) -> None:
        """Make a version the one CURRENT names (it must verify and its pipeline must load from
        model.skops and match the predictor block)."""
        self.load_verified(version)  # the slow part (imports scikit-learn) before taking the lock...
        with self.locked():
            self.load_verified(version)  # ...and again under it: the version as it is now
            _atomic_write_bytes(self.root / CURRENT_FILE, f"{version}\n".encode(), tmp_dir=self._tmp_dir())

    def rename_cluster(self, version: str, cluster_id: int, name: str) -> SegmentModel:
        """Give one cluster of a saved version a new business name (see `rename_clusters`)."""
        return self.rename_clusters(version, {cluster_id: name})

    def rename_clusters(self, version: str, changes: Mapping[int, str]) -> SegmentModel:
        """Rename clusters of a saved version (cluster id -> new name) in ONE atomic replacement of the
        version (metadata.json, manifest.json, manifest.sig together; model.skops byte for byte). Under
        the store's lock, from the version as it is once the lock is held (no lost update). The names are
        checked together first (`SegmentModel.renamed_many`: unique in the final set, so swaps work), so
        a bad one changes nothing on disk."""
        with self.locked():
            model, files = self._load(version)
            renamed = model.renamed_many(changes)
            self._replace_version(version, renamed.metadata, files[MODEL_FILE])
        return renamed

    def upgrade(self, version: str, warn: Callable[[str], None]) -> SegmentModel:
        """Convert an old-format version (model.joblib, no manifest) in place: `warn` is called first
        (this UNPICKLES model.joblib, which runs whatever code it holds), then the pipeline is unpickled,
        checked against the metadata's predictor block, saved as model.skops with a manifest (signed
        when a key is set), and the version directory replaced atomically. Names and metadata are kept
        (the old sha256 field is dropped)."""
        with self.locked():
            directory = self.path(version)
            if (directory / MANIFEST_FILE).exists():
                raise ModelError(f"{directory}: already in the current format ({MANIFEST_FILE}); nothing to upgrade")
            legacy = directory / LEGACY_MODEL_FILE
            if not legacy.is_file():
                raise ModelError(f"{legacy}: missing; {directory} is not an old-format model version")
            metadata = read_metadata(directory)
            if metadata.version != version:
                raise ModelError(f"{directory / METADATA_FILE}: records version {metadata.version!r}")
            warn(f"{legacy}: upgrading unpickles this file, which runs any code it contains; "
                 "do this only if you trust where it came from")
            pipeline = _unpickle_legacy(legacy, metadata.sha256)
            predictor = Predictor.from_pipeline(pipeline)
            if metadata.predictor is not None and metadata.predictor.to_predictor() != predictor:
                raise ModelError(f"{directory / METADATA_FILE}: the predictor block does not match "
                                 f"{LEGACY_MODEL_FILE} (scaler mean/scale or centres differ); not upgraded")
            try:
                model = SegmentModel(pipeline, metadata)  # the block comes from the pipeline when absent
            except ModelError as exc:
                raise ModelError(f"{directory / METADATA_FILE}: {exc}; not upgraded") from None
            model_bytes = artifact.dumps(pipeline)
            if Predictor.from_pipeline(artifact.loads(model_bytes, where=directory / MODEL_FILE)) != predictor:
                raise ModelError(f"{directory}: the converted model does not round-trip; not upgraded")
            self._replace_version(version, model.metadata.model_copy(update={"sha256": None}), model_bytes)
        return self.load_verified(version)

    def package(self, version: str, out: str | os.PathLike[str]) -> Path:
        """model.tar.gz for SageMaker: the version's files (model.skops, metadata.json, manifest.json,
        manifest.sig when present) at the archive root, so they unpack straight into /opt/ml/model. The
        version is verified first (pipeline loaded too) and the archive is written from the very bytes
        that were verified."""
        model, files = self._load(version)
        _ = model.pipeline
        out_path = Path(out)
        with _atomic_file(out_path) as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for name in (MODEL_FILE, METADATA_FILE, MANIFEST_FILE, SIGNATURE_FILE):
                if name in files:
                    info = _normalise_member(tarfile.TarInfo(name))
                    info.size = len(files[name])
                    info.mtime = int(datetime.now(UTC).timestamp())
                    tar.addfile(info, io.BytesIO(files[name]))
        return out_path

    # --- helpers --------------------------------------------------------------------------------
    def _write_tmp_version(self, metadata: ModelMetadata, model_bytes: bytes) -> Path:
        """A complete version (every file, fsynced) in a new hidden directory of the store."""
        text = json.dumps(metadata.to_json_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        files = version_files(text.encode("utf-8"), model_bytes, self._key)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self._tmp_dir()))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; a server may run as another user
            for name, data in files.items():
                with open(tmp / name, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp / name, 0o644)
            _fsync_dir(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp

    def _replace_version(self, version: str, metadata: ModelMetadata, model_bytes: bytes) -> None:
        """Replace a version directory by a new one holding these contents, atomically (the caller
        holds the lock; see the module docstring)."""
        target = self.root / version
        tmp = self._write_tmp_version(metadata, model_bytes)
        try:
            if _exchange(tmp, target):  # tmp now holds the old version
                _fsync_dir(self.root)
                return
            old = self.root / f"{_OLD_PREFIX}{version}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
            os.rename(tmp, target)
            _fsync_dir(self.root)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _recover(self) -> None:
        """Undo a fallback swap a crash interrupted: `.old-V` without `V` goes back to `V`."""
        with suppress(OSError):
            for old in self.root.glob(f"{_OLD_PREFIX}*"):
                target = self.root / old.name.removeprefix(_OLD_PREFIX)
                if not target.exists():
                    os.rename(old, target)
                else:
                    shutil.rmtree(old, ignore_errors=True)


def _unpickle_legacy(path: Path, sha256: str | None) -> Pipeline:
    """The pipeline in an old model.joblib. THIS RUNS THE PICKLE: only `ModelStore.upgrade` calls it,
    after its warning. The sha256 metadata.json records (if any) is checked first: it guards against
    corruption, not against tampering."""
    import joblib
    from sklearn.pipeline import Pipeline

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise ModelError(f"{path}: sha256 {actual[:12]}... does not match metadata.json ({sha256[:12]}...): "
                         "the file was modified or corrupted; not upgraded")
    try:
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as exc:  # an unreadable pickle: wrong library versions
        raise ModelError(f"{path}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
    if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != PIPELINE_STEPS:
        raise ModelError(f"{path}: not an rfm segmentation pipeline (log1p -> scale -> kmeans); not upgraded")
    return pipeline


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries atomically (Linux `renameat2(..., RENAME_EXCHANGE)`). False when the
    platform or the filesystem does not support it (nothing was changed then)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no libc symbol (glibc < 2.28, musl without it)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _version_order(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key: digit runs compare as numbers, so a save in the same second as nine others
    ("...-k4-10", the tenth) comes after "...-k4-9", not before "...-k4-2"."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name) if part)


def _new_version_name(k: int) -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-k{k}"


def _normalise_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Archive members owned by root with plain permissions, whoever built the package."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644
    return info


def _atomic_write_bytes(path: Path, payload: bytes, tmp_dir: Path | None = None) -> None:
    with _atomic_file(path, tmp_dir) as handle:
        handle.write(payload)


def _write_error(root: Path, exc: OSError) -> ModelError:
    where = exc.filename or root
    reason = exc.strerror or (exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else "") \
        or type(exc).__name__
    return ModelError(f"{where}: cannot write to the models folder {root} ({reason})")


@contextmanager
def _atomic_file(path: Path, tmp_dir: Path | None = None) -> Iterator[io.BufferedWriter]:
    """A file written in `tmp_dir` (default: next to `path`, same filesystem) and renamed over `path`
    only when the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=tmp_dir or path.parent)
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


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
