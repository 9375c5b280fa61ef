"""model.skops: the fitted scikit-learn pipeline saved with skops, which stores objects as data (a
JSON schema plus .npy arrays in a zip), never as pickle, so loading one cannot run code.

Loading is refused unless every type the file names is in TRUSTED_TYPES, an explicit list of exact
type names: the types a log1p -> StandardScaler -> KMeans pipeline is made of (computed once with
`skops.io.get_untrusted_types` and by reading the file's schema, then written down here). The check is
done twice: first by this module on the file's schema.json (skops itself trusts every scikit-learn
estimator by default; this list does not), then by `skops.io.loads(..., trusted=TRUSTED_TYPES)`.
`numpy.log1p` / `numpy.expm1` are ufuncs skops saves by name (a FunctionNode), so the
FunctionTransformer step loads without trusting any arbitrary callable.

Scoring never uses this file (it scores from the predictor arrays in metadata.json); the pipeline is
loaded only when something asks for `SegmentModel.pipeline`. skops (and with it scikit-learn) is
imported by the functions below only, never at import time: the model server does not need skops.
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from rfm.errors import ModelError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.skops"
PIPELINE_STEPS = ["log1p", "scale", "kmeans"]

# Every type a saved segmentation pipeline contains, and nothing else (exact names, as skops writes
# them: "<module>.<class>"). A file naming any other type is refused before skops reads it.
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.expm1",
    "numpy.float64",
    "numpy.log1p",
    "numpy.ndarray",
    "sklearn.cluster._kmeans.KMeans",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
)
_MAX_SCHEMA_BYTES = 16 << 20  # a pipeline's schema is a few tens of KB


def dumps(pipeline: Pipeline) -> bytes:
    """The pipeline as model.skops bytes (deflated zip). Refuses to write a pipeline that would not
    load back under TRUSTED_TYPES (so a saved model always loads)."""
    data = _skops_io().dumps(pipeline, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    untrusted = sorted(set(schema_types(data, where=Path(MODEL_FILE))) - set(TRUSTED_TYPES))
    if untrusted:
        raise ModelError(f"the pipeline holds types a saved model may not: {', '.join(untrusted)}")
    return data


def loads(data: bytes, *, where: Path) -> Pipeline:
    """The pipeline in model.skops bytes (already checked against the manifest by the caller). One-line
    ModelError naming `where` for a type outside TRUSTED_TYPES, an unreadable file, or an object that
    is not a log1p -> scale -> kmeans Pipeline."""
    untrusted = sorted(set(schema_types(data, where=where)) - set(TRUSTED_TYPES))
    if untrusted:
        raise ModelError(f"{where}: holds types outside the trusted list ({', '.join(untrusted)}); "
                         "refusing to load it")
    from sklearn.pipeline import Pipeline

    try:
        pipeline = _skops_io().loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # skops' UntrustedTypesFoundException, a broken zip, library versions
        message = " ".join(str(exc).split())
        raise ModelError(f"{where}: cannot be loaded ({type(exc).__name__}: {message[:300]})") from None
    if not isinstance(pipeline, Pipeline) or [name for name, _ in pipeline.steps] != PIPELINE_STEPS:
        raise ModelError(f"{where}: not an rfm segmentation pipeline (log1p -> scale -> kmeans)")
    return pipeline


def _skops_io() -> ModuleType:
    """skops.io, imported on first use (it imports scikit-learn; skops ships no type information)."""
    return importlib.import_module("skops.io")


def schema_types(data: bytes, *, where: Path) -> list[str]:
    """Every "<module>.<class>" named in a skops file's schema.json (without loading anything)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > _MAX_SCHEMA_BYTES:
                raise ModelError(f"{where}: schema.json is implausibly large ({info.file_size} bytes)")
            schema = json.loads(archive.read(info))
    except ModelError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{where}: not a skops model file ({type(exc).__name__}: {exc})") from None
    return sorted(set(_types(schema)))


def _types(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if "__class__" in node or "__module__" in node:
            yield f"{node.get('__module__')}.{node.get('__class__')}"
        for value in node.values():
            yield from _types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _types(value)
