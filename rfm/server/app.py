"""The HTTP routes: GET /ping, POST /invocations, GET /model (SageMaker's inference contract).

`create_app(model)` builds the FastAPI app around a loaded, verified model, so a running app always
has a model and /ping can answer 200 at once. /invocations reads the raw body itself (its format
depends on Content-Type), so FastAPI does no per-request validation or JSON encoding on the hot
path: codecs parse, `SegmentModel.predict` scores in numpy, orjson writes. The OpenAPI document
still describes every content type with the typed models of rfm.serving.records and rfm.server.schemas.

Bounded by design: bodies over THREAD_THRESHOLD_BYTES ("large") are scored in a worker thread, at most
`settings.heavy_slots` (2) at once; a large request waits for a slot within the request timeout and
gets 503 with Retry-After when none frees up in time. Scoring runs in chunks (codecs.respond) that
check a cancellation flag, set when the request times out (504), so the thread stops within a chunk
and only then frees its slot. An answer over SageMaker's 6 MB response limit is refused (413) as soon
as the chunks written pass it, with how many rows fit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.types import Receive, Send

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
BUSY_RETRY_AFTER_SECONDS = 1


class PayloadTooLarge(RfmError):
    """The body exceeds SageMaker's 6 MB real-time payload limit (413)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_ERROR = {"application/json": {"schema": _ref("ErrorResponse")}}
_CSV_BODY = ("Customers as CSV, one a line (lines end with \\n or \\r\\n): recency,frequency,monetary as plain "
             "unquoted decimal numbers (ASCII digits, optional sign, point and exponent); an optional first line "
             "naming the three columns, in any order, which may be quoted. Anything else is a 400 naming the "
             "record, line and field.")
_JSONLINES_BODY = ("Customers as JSON Lines: one JSON object {recency, frequency, monetary} a line, numbers only; "
                   "blank lines are skipped. Anything else is a 400 naming the record and line.")
# OpenAPI fragments for FastAPI's `openapi_extra` and `responses` (dict[str, Any] there).
_INVOCATIONS_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [_ref("CustomerRecord"), _ref("BatchRequest")]},
                                 "example": {"recency": 15, "frequency": 12, "monetary": 540}},
            # The text bodies are lists of customers on the wire: described as such, so that a client (or
            # schemathesis, with a serializer) can generate valid ones; the description says how they are
            # written.
            "text/csv": {"schema": {"type": "array", "minItems": 1, "items": _ref("CustomerRecord"),
                                    "description": _CSV_BODY},
                         "example": "recency,frequency,monetary\n15,12,540\n200,1,35.5\n"},
            "application/jsonlines": {"schema": {"type": "array", "minItems": 1, "items": _ref("CustomerRecord"),
                                                 "description": _JSONLINES_BODY},
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
    413: {"description": "Body over 6 MB (SageMaker's real-time limit), or an answer that would be: the detail "
                         "says about how many rows fit in one answer of the asked type, that text/csv answers are "
                         "smaller, and that SageMaker batch transform is the tool for bulk scoring",
          "content": _ERROR},
    415: {"description": "Content-Type is not application/json, text/csv or application/jsonlines",
          "content": _ERROR},
    503: {"description": "Busy: the large batches the server scores at once (2) kept it longer than the timeout; "
                         "retry after the Retry-After seconds", "content": _ERROR,
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
    504: {"description": "Scoring took longer than the server timeout (the work stops)", "content": _ERROR},
}


def create_app(model: SegmentModel, settings: ServerSettings | None = None) -> FastAPI:
    """The server for one loaded model."""
    settings = settings or ServerSettings()
    version = model.version or "(unsaved)"
    names = [model.segment_name(i) for i in range(model.k)] + [NOT_SEGMENTED_NAME]  # index -1: not segmented
    answers = codecs.Answers(names, version)
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

    def predict(values: np.ndarray, start: int, stop: int) -> np.ndarray:
        return model.predict(values) if len(values) else np.zeros(0, dtype="int64")

    def score(body: bytes, kind: str, out_kind: str, cancel: threading.Event | None = None) -> bytes:
        batch = codecs.decode(body, kind, cancel)
        return codecs.respond(batch, predict, answers, out_kind, limit=settings.max_response_bytes, cancel=cancel)

    def answer_small(body: bytes, content_type: str | None, accept: str | None) -> tuple[int, str, bytes]:
        """The whole answer to a small /invocations request: (status, media type, body). The fast path
        and the route both use it, so a request is answered alike whichever of them takes it."""
        try:
            kind = codecs.request_type(content_type)
            out_kind = codecs.response_type(accept, kind)
            return 200, out_kind, score(body, kind, out_kind)
        except CLIENT_ERRORS as exc:
            return _error_parts(_status_of(exc), str(exc))

    app.state.answer_small = answer_small
    slots = _Slots(settings.heavy_slots)

    async def score_large(body: bytes, kind: str, out_kind: str) -> Response | bytes:
        """In a worker thread, holding one of the heavy slots until the thread really stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout
        semaphore = slots.on(loop)
        try:
            async with asyncio.timeout_at(deadline):
                await semaphore.acquire()
        except TimeoutError:
            return _error(503, f"busy: {settings.heavy_slots} large batches are being scored; retry in a moment "
                               "(or send smaller batches)",
                          headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
        job = _Job(lambda cancel: score(body, kind, out_kind, cancel),
                   lambda: loop.call_soon_threadsafe(semaphore.release))
        try:
            async with asyncio.timeout_at(deadline):
                return await anyio.to_thread.run_sync(job.run, abandon_on_cancel=True)
        except TimeoutError:
            job.abandon(semaphore.release)
            raise

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
            if len(body) <= THREAD_THRESHOLD_BYTES:  # on the event loop: microseconds (what FastPath answers)
                status, media_type, small = answer_small(body, request.headers.get("content-type"),
                                                         request.headers.get("accept"))
                return Response(small, status_code=status, media_type=media_type)
            payload: Response | bytes = await score_large(body, kind, out_kind)
        except CLIENT_ERRORS as exc:
            return _error(_status_of(exc), str(exc))
        except TimeoutError:
            return _error(504, f"scoring took longer than {settings.timeout:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT)")
        if isinstance(payload, Response):
            return payload
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


class _Slots:
    """The semaphore of large requests, made on the event loop that uses it (the server has one;
    test clients may start a new loop per client)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(size)

    def on(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        if loop is not self._loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.size)
        return self._semaphore


class _Job:
    """Work for a worker thread that can be abandoned: `abandon` (on timeout) sets the cancellation flag
    the work checks between chunks. `release` runs exactly once, when the work has really stopped: at
    its end, or at once if it had not started yet."""

    def __init__(self, work: Callable[[threading.Event], bytes], release: Callable[[], object]) -> None:
        self._work = work
        self._release = release
        self._lock = threading.Lock()
        self._started = False
        self._abandoned = False
        self.cancel = threading.Event()

    def run(self) -> bytes:
        with self._lock:
            if self._abandoned:  # said by `abandon` already
                return b""
            self._started = True
        try:
            return self._work(self.cancel)
        except codecs.Cancelled as exc:
            log.warning("timed-out request: %s", exc)
            return b""
        finally:
            self._release()

    def abandon(self, release_now: Callable[[], object]) -> None:
        """Called on the event loop: stop the work; free its slot now if it never started."""
        self.cancel.set()
        with self._lock:
            self._abandoned = True
            started = self._started
        if not started:
            # Said here, not in `run`: a thread that had not started may never be called at all.
            log.warning("timed-out request: stopped before scoring")
            release_now()


# What the client got wrong, and the status that says so (the first class that matches wins).
_CLIENT_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (DataError, 400),
    (codecs.UnsupportedContentType, 415),
    (codecs.NotAcceptable, 406),
    (PayloadTooLarge, 413),
    (codecs.ResponseTooLarge, 413),
)
CLIENT_ERRORS: tuple[type[Exception], ...] = tuple(cls for cls, _ in _CLIENT_STATUS)


def _status_of(exc: Exception) -> int:
    return next(status for cls, status in _CLIENT_STATUS if isinstance(exc, cls))


def _error_parts(status: int, detail: str) -> tuple[int, str, bytes]:
    if status >= 500:
        log.error("%d: %s", status, detail)
    return status, "application/json", codecs.dumps({"detail": detail})


SmallAnswer = Callable[[bytes, "str | None", "str | None"], tuple[int, str, bytes]]


class FastPath:
    """`GET /ping` and small `POST /invocations` (a Content-Length of at most 64 KiB) answered as plain
    ASGI, before FastAPI's routing and request objects, which cost several times the scoring itself
    (about 0.45 ms a request against about 0.1 ms here, on this project's 2-core machine). The answer
    is the route's own (`answer_small`); everything else (large or chunked bodies, /model, /docs,
    /openapi.json) goes to the FastAPI app unchanged."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.answer: SmallAnswer = app.state.answer_small
        self.state = app.state

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == "/ping" and method == "GET":
                await _send(send, 200, None, b"")
                return
            if path == "/invocations" and method == "POST":
                headers = dict(scope["headers"])
                length = headers.get(b"content-length", b"")
                if length.isdigit() and int(length) <= THREAD_THRESHOLD_BYTES and b"transfer-encoding" not in headers:
                    body = await _receive_body(receive, int(length))
                    if body is None:  # the client went away
                        return
                    try:
                        status, media_type, payload = self.answer(
                            body, _header(headers, b"content-type"), _header(headers, b"accept"))
                    except Exception as exc:  # never a traceback to the client, as the app's handler
                        log.exception("unexpected error on POST /invocations")
                        status, media_type, payload = _error_parts(500, f"internal error ({type(exc).__name__})")
                    await _send(send, status, media_type, payload)
                    return
        await self.app(scope, receive, send)


def _header(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def _receive_body(receive: Receive, length: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > length:  # more than announced: let the answer be computed on what was announced
            chunk = chunk[: len(chunk) - (size - length)]
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, status: int, media_type: str | None, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if media_type is not None:
        if media_type.startswith("text/") and "charset=" not in media_type:  # as Starlette's Response adds
            media_type += "; charset=utf-8"
        headers.append((b"content-type", media_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    if status >= 500:
        log.error("%d: %s", status, detail)
    return Response(codecs.dumps({"detail": detail}), status_code=status, media_type="application/json",
                    headers=headers)


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


def app_from_env() -> FastPath:
    """Factory for uvicorn worker processes (workers > 1): the model directory `serve` verified,
    passed through the environment (RFM_SERVER_MODEL_DIR, Settings.server_worker_model_dir), loaded
    (and verified again) in each worker; served behind the FastPath like a single worker."""
    from rfm.config import load_settings

    config = load_settings()
    settings = ServerSettings.from_settings(config)
    return FastPath(create_app(load_model_dir(config.server_worker_model_dir or settings.model_dir,
                                              signing_key=config.model_signing_key), settings))
