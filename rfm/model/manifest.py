"""manifest.json and manifest.sig: a model version verified as a whole.

A version directory holds exactly:

    model.skops      the pipeline (skops, see rfm.model.artifact); used only when the pipeline is asked for
    metadata.json    names, centroids, provenance and the predictor arrays scoring uses
    manifest.json    {"format", "kind", "model_format", "files": {name: {"sha256", "bytes"}}} for the two above
    manifest.sig     optional: hex HMAC-SHA256 of manifest.json's bytes (written when a signing key is set)

`read_verified` is the only way a version's files are read for loading: it refuses an old-format
directory (model.joblib, no manifest), checks the signature when a key is configured (missing or
wrong: refused), then checks that the directory holds exactly the listed files, each of the listed
size and sha256, and returns their bytes, so what is parsed afterwards is exactly what was hashed.
Every refusal is one line naming the file.

This module imports the standard library (and pydantic's SecretStr type) only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias

from pydantic import SecretStr

from rfm.errors import ModelError
from rfm.model.artifact import MODEL_FILE

METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
LEGACY_MODEL_FILE = "model.joblib"
MANIFEST_FORMAT = 1
MANIFEST_KIND = "rfm-model-version"
LISTED_FILES = (METADATA_FILE, MODEL_FILE)  # what a manifest lists: every file of a version but itself and its sig
_MAX_FILE_BYTES = 256 << 20
_MAX_MANIFEST_BYTES = 64 << 10
_MAX_SIGNATURE_BYTES = 1024

SigningKey: TypeAlias = SecretStr | str | bytes | None


def key_bytes(key: SigningKey) -> bytes | None:
    """The HMAC key as bytes (None: no key configured). An empty key is refused: it would sign nothing."""
    if key is None:
        return None
    if isinstance(key, SecretStr):
        key = key.get_secret_value()
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw:
        raise ModelError("RFM_MODEL_SIGNING_KEY is set but empty; set a real key or unset it")
    return raw


def signature(manifest: bytes, key: bytes) -> str:
    """manifest.sig's content: the hex HMAC-SHA256 of manifest.json's exact bytes."""
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def build(files: Mapping[str, bytes]) -> bytes:
    """manifest.json's bytes for a version made of `files` (name -> content)."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "kind": MANIFEST_KIND,
        "model_format": "skops",
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in sorted(files.items())},
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def version_files(metadata: bytes, model: bytes, key: bytes | None) -> dict[str, bytes]:
    """Every file of a version, manifest (and signature, with a key) included: what gets written."""
    files = {METADATA_FILE: metadata, MODEL_FILE: model}
    manifest = build(files)
    files[MANIFEST_FILE] = manifest
    if key is not None:
        files[SIGNATURE_FILE] = (signature(manifest, key) + "\n").encode("ascii")
    return files


def old_format_message(directory: Path) -> str:
    return (f"{directory}: old model format ({LEGACY_MODEL_FILE}); run `rfm models upgrade {directory.name}` "
            "if you trust this file")


def read_verified(directory: Path, key: bytes | None) -> dict[str, bytes]:
    """The bytes of every file of a version directory, after checking the whole version (see the
    module docstring). Keys: metadata.json, model.skops, manifest.json (and manifest.sig when present)."""
    try:
        names = set(os.listdir(directory))
    except FileNotFoundError:
        raise ModelError(f"{directory / METADATA_FILE}: missing (not a model directory?)") from None
    except NotADirectoryError:
        raise ModelError(f"{directory}: not a directory (a model directory holds {METADATA_FILE}, "
                         f"{MODEL_FILE} and {MANIFEST_FILE})") from None
    except OSError as exc:
        raise ModelError(f"{directory}: cannot be read ({exc.strerror or exc})") from None
    if MANIFEST_FILE not in names:
        if LEGACY_MODEL_FILE in names:
            raise ModelError(old_format_message(directory))
        if METADATA_FILE not in names:
            raise ModelError(f"{directory / METADATA_FILE}: missing (not a model directory?)")
        raise ModelError(f"{directory / MANIFEST_FILE}: missing (a model version holds {MODEL_FILE}, "
                         f"{METADATA_FILE} and {MANIFEST_FILE}); refusing to load it")
    manifest_bytes = _read(directory / MANIFEST_FILE, _MAX_MANIFEST_BYTES)
    if len(manifest_bytes) > _MAX_MANIFEST_BYTES:
        raise ModelError(f"{directory / MANIFEST_FILE}: implausibly large; refusing to load the model")
    out = {MANIFEST_FILE: manifest_bytes}
    if key is not None:
        if SIGNATURE_FILE not in names:
            raise ModelError(f"{directory}: manifest signature is missing; refusing to load "
                             "(RFM_MODEL_SIGNING_KEY is set)")
        sig = _read(directory / SIGNATURE_FILE, _MAX_SIGNATURE_BYTES)
        given = sig.decode("ascii", errors="replace").strip()
        if not hmac.compare_digest(given.encode("ascii", errors="replace"),
                                   signature(manifest_bytes, key).encode("ascii")):
            raise ModelError(f"{directory}: manifest signature is wrong; refusing to load "
                             "(RFM_MODEL_SIGNING_KEY is set)")
        out[SIGNATURE_FILE] = sig
    listed = _parse(directory / MANIFEST_FILE, manifest_bytes)
    for name in sorted(names - set(listed) - {MANIFEST_FILE, SIGNATURE_FILE}):
        raise ModelError(f"{directory / name}: not listed in {MANIFEST_FILE} (a version holds exactly the files "
                         "its manifest lists with their sha256); refusing to load the model")
    for name, (sha256, size) in listed.items():
        path = directory / name
        if name not in names:
            raise ModelError(f"{path}: missing (listed in {MANIFEST_FILE}); refusing to load the model")
        data = _read(path, size)
        if len(data) != size:
            raise ModelError(f"{path}: sha256 and size do not match {MANIFEST_FILE} ({size} bytes listed, "
                             f"{'more' if len(data) > size else len(data)} found): the file was modified or "
                             "corrupted; refusing to load the model")
        actual = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(actual, sha256):
            raise ModelError(f"{path}: sha256 {actual[:12]}... does not match {MANIFEST_FILE} ({sha256[:12]}...): "
                             "the file was modified or corrupted; refusing to load the model")
        out[name] = data
    if SIGNATURE_FILE in names and SIGNATURE_FILE not in out:
        out[SIGNATURE_FILE] = _read(directory / SIGNATURE_FILE, _MAX_SIGNATURE_BYTES)
    return out


def _parse(path: Path, data: bytes) -> dict[str, tuple[str, int]]:
    """name -> (sha256, size) of a manifest, which must list exactly LISTED_FILES."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        raise ModelError(f"{path}: not an rfm model manifest")
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("model_format") != "skops":
        raise ModelError(f"{path}: manifest format {manifest.get('format')!r} / model format "
                         f"{manifest.get('model_format')!r} is not one this rfm reads (1 / 'skops')")
    files = manifest.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(LISTED_FILES):
        listed = sorted(files) if isinstance(files, dict) else files
        raise ModelError(f"{path}: must list exactly {', '.join(LISTED_FILES)} (lists {listed!r})")
    out: dict[str, tuple[str, int]] = {}
    for name, entry in files.items():
        sha256 = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if (not isinstance(sha256, str) or len(sha256) != 64 or not isinstance(size, int)
                or isinstance(size, bool) or not 0 <= size <= _MAX_FILE_BYTES):
            raise ModelError(f"{path}: files.{name}: expected {{\"sha256\": 64 hex digits, \"bytes\": size}}")
        out[name] = (sha256.lower(), size)
    return out


def _read(path: Path, limit: int) -> bytes:
    """A file's bytes, at most `limit` + 1 of them (never an unbounded read: a longer file is refused by
    the caller, which sees more bytes than it allows)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; refusing to load the model") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: a directory, not a file; refusing to load the model") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc})") from None
