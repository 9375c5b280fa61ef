"""The HTTP routes: GET /ping, POST /invocations, GET /model (SageMaker's inference contract).

`create_app(model)` builds the FastAPI app around a loaded, verified model, so a running app always
has a model and /ping can answer 200 at once. /invocations reads the raw body itself (its format
depends on Content-Type), so FastAPI does no per-request validation or JSON encoding on the hot
path: codecs parse, `SegmentModel.predict` scores in numpy, orjson writes. The OpenAPI document
still describes every content type with the typed models of rfm.serving.records and rfm.server.schemas.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from rfm import __version__
from rfm.errors import DataError, RfmError
from rfm.model import NOT_SEGMENTED, NOT_SEGMENTED_NAME, SegmentModel, load_model_dir
from rfm.model.pipeline import FEATURES
from rfm.server import codecs
from rfm.server.schemas import COMPONENTS
from rfm.server.settings import ServerSettings

log = logging.getLogger("rfm.server")

# Bodies above this size are scored in a worker thread under the request timeout, so a huge batch
# cannot hold the event loop (and /ping) beyond SAGEMAKER_MODEL_SERVER_TIMEOUT.
THREAD_THRESHOLD_BYTES = 64 * 1024


class PayloadTooLarge(RfmError):
    """The body exceeds SageMaker's 6 MB real-time payload limit (413)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_ERROR = {"application/json": {"schema": _ref("ErrorResponse")}}
# OpenAPI fragments for FastAPI's `openapi_extra` and `responses` (dict[str, Any] there).
_INVOCATIONS_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [_ref("CustomerRecord"), _ref("BatchRequest")]},
                                 "example": {"recency": 15, "frequency": 12, "monetary": 540}},
            "text/csv": {"schema": {"type": "string"},
                         "example": "recency,frequency,monetary\n15,12,540\n200,1,35.5\n"},
            "application/jsonlines": {"schema": {"type": "string"},
                                      "example": '{"recency": 15, "frequency": 12, "monetary": 540}\n'},
        },
    },
}
_INVOCATIONS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Segments, in the type Accept asks for (default: the request's type). CSV lines are "
                       "`cluster,segment`, one per input row, no header.",
        "content": {
            "application/json": {"schema": {"anyOf": [_ref("ScoreResponse"), _ref("BatchResponse")]}},
            "text/csv": {"schema": {"type": "string"}},
            "application/jsonlines": {"schema": {"type": "string"}},
        },
    },
    400: {"description": "Invalid input: names the record and the field", "content": _ERROR},
    406: {"description": "Accept names no type the server writes", "content": _ERROR},
    413: {"description": "Body over 6 MB (SageMaker's real-time limit)", "content": _ERROR},
    415: {"description": "Content-Type is not application/json, text/csv or application/jsonlines",
          "content": _ERROR},
    504: {"description": "Scoring took longer than the server timeout", "content": _ERROR},
}


def create_app(model: SegmentModel, settings: ServerSettings | None = None) -> FastAPI:
    """The server for one loaded model."""
    settings = settings or ServerSettings()
    version = model.version or "(unsaved)"
    names = [model.segment_name(i) for i in range(model.k)] + [NOT_SEGMENTED_NAME]  # index -1: not segmented
    model_info = codecs.dumps({
        "version": version,
        "k": model.k,
        "features": list(FEATURES),
        "segments": [c.name for c in model.clusters],
        "clusters": [c.as_dict() for c in model.clusters],
        "not_segmented": {"id": NOT_SEGMENTED, "name": NOT_SEGMENTED_NAME},
    })

    app = FastAPI(
        title="RFM segment model server",
        version=__version__,
        description="SageMaker-compatible inference server for the RFM customer segmentation model "
                    f"(loaded version {version}).",
        docs_url="/docs", redoc_url=None,
    )
    app.state.model = model
    app.state.settings = settings

    def score(body: bytes, kind: str, out_kind: str) -> bytes:
        batch = codecs.decode(body, kind)
        ids = model.predict(batch.values) if len(batch.values) else batch.values[:, 0].astype("int64")
        return codecs.encode(batch, ids, names, version, out_kind)

    @app.get("/ping", response_class=Response, responses={200: {"description": "The model is loaded; empty body"}})
    async def ping() -> Response:
        """Health check SageMaker calls: 200 once the model is loaded (it is before the app exists)."""
        return Response(status_code=200)

    @app.post("/invocations", response_class=Response, openapi_extra=_INVOCATIONS_DOC, responses=_INVOCATIONS_RESPONSES)
    async def invocations(request: Request) -> Response:
        """Score one customer, a batch (`instances`), CSV rows or JSON Lines."""
        try:
            kind = codecs.request_type(request.headers.get("content-type"))
            out_kind = codecs.response_type(request.headers.get("accept"), kind)
            body = await _read_body(request, settings.max_body_bytes)
            if len(body) <= THREAD_THRESHOLD_BYTES:
                payload = score(body, kind, out_kind)
            else:
                async with asyncio.timeout(settings.timeout):
                    payload = await anyio.to_thread.run_sync(score, body, kind, out_kind)
        except DataError as exc:
            return _error(400, str(exc))
        except codecs.UnsupportedContentType as exc:
            return _error(415, str(exc))
        except codecs.NotAcceptable as exc:
            return _error(406, str(exc))
        except PayloadTooLarge as exc:
            return _error(413, str(exc))
        except TimeoutError:
            return _error(504, f"scoring took longer than {settings.timeout:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT)")
        return Response(payload, media_type=out_kind)

    @app.get("/model", response_class=Response, responses={200: {"description": "The loaded model",
                                        "content": {"application/json": {"schema": _ref("ModelInfo")}}}})
    async def describe_model() -> Response:
        """Version, k, segment names and centroids of the loaded model."""
        return Response(model_info, media_type="application/json")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:  # never a traceback to the client
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__})")

    # FastAPI's documented way to extend the schema is to replace the method on the instance.
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"request body of {int(length):,} bytes is over the {limit:,}-byte limit; "
                              "split the batch (or use SageMaker batch transform)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit:,}-byte limit; split the batch "
                                  "(or use SageMaker batch transform)")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, detail: str) -> Response:
    if status >= 500:
        log.error("%d: %s", status, detail)
    return Response(codecs.dumps({"detail": detail}), status_code=status, media_type="application/json")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the typed request/response models the raw-body routes refer to
    (the return type of `FastAPI.openapi`, which this replaces)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    from rfm.serving.records import BatchRequest

    documented: tuple[type[BaseModel], ...] = (*COMPONENTS, BatchRequest)
    _, defs = models_json_schema([(m, "validation") for m in documented],
                                 ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
    app.openapi_schema = schema
    return schema


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes (workers > 1): the model directory `serve` verified,
    passed through the environment (RFM_SERVER_MODEL_DIR, Settings.server_worker_model_dir), loaded
    (and verified again) in each worker."""
    from rfm.config import load_settings

    config = load_settings()
    settings = ServerSettings.from_settings(config)
    return create_app(load_model_dir(config.server_worker_model_dir or settings.model_dir), settings)
