"""Scoring customers: one interface, three backends chosen by configuration.

- `LocalClient`: the model file, in this process (no server needed; the dashboard's default).
- `HttpClient`: a running model server (`rfm serve`, or the container) at `http://host:port`.
- `SageMakerClient`: a SageMaker real-time endpoint through boto3 `sagemaker-runtime`.

`make_client(endpoint)` picks one from a string (None/"local", "http(s)://...", "sagemaker:NAME"),
so a command-line flag or a setting is all a caller needs. Every backend validates input with the
same rules as the server (`rfm.serving.records`) and returns the same `ScoreResult`, whose `as_dict()` is the
published response format. Failures are `RfmError`s with one clear line: `DataError` for bad input,
`ModelError` for a missing or tampered model, `ScoringError` for an unreachable or failing backend.

Heavy libraries (rfm.model with numpy and pandas, boto3) are imported only by the backend that needs
them; none of them imports scikit-learn (a saved model scores without unpickling its pipeline).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from rfm.errors import RfmError, ScoringError
from rfm.serving.records import FIELDS, CustomerRecord, records_from_mappings, validate_record

if TYPE_CHECKING:
    from rfm.model import SegmentModel
    from rfm.model.manifest import SigningKey

DEFAULT_TIMEOUT = 10.0


class ScoreDict(TypedDict):
    """`ScoreResult.as_dict()`: the published response format of one score."""

    cluster: int
    segment: str
    input_data: dict[str, int | float]
    model_version: str


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The segment of one customer, as every backend returns it."""

    cluster: int
    segment: str
    input_data: dict[str, int | float] = field(hash=False)
    model_version: str

    def as_dict(self) -> ScoreDict:
        """Exactly the published format: cluster, segment, input_data, model_version."""
        return {"cluster": self.cluster, "segment": self.segment, "input_data": dict(self.input_data),
                "model_version": self.model_version}

    @classmethod
    def from_dict(cls, data: object, *, source: str = "the server") -> ScoreResult:
        """Parse a response object; a ScoringError when it is not in the published format."""
        answer: Any = data  # parsed JSON of any shape: indexed as a score, a wrong shape raises below
        try:
            cluster, segment, version = answer["cluster"], answer["segment"], answer["model_version"]
            input_data = {name: answer["input_data"][name] for name in FIELDS}
        except (KeyError, TypeError):
            raise ScoringError(f"{source} answered something that is not a score: {_short(data)}") from None
        if isinstance(cluster, bool) or not isinstance(cluster, int) or not isinstance(segment, str):
            raise ScoringError(f"{source} answered something that is not a score: {_short(data)}")
        return cls(cluster, segment, input_data, str(version))


@runtime_checkable
class ScoringClient(Protocol):
    """What the dashboard and `rfm score` use, whatever the backend."""

    def score(self, recency: float, frequency: float, monetary: float) -> ScoreResult: ...

    def score_batch(self, records: Sequence[Mapping[str, float]]) -> list[ScoreResult]: ...

    def describe(self) -> str: ...


def score_records(model: SegmentModel, records: Sequence[CustomerRecord]) -> list[ScoreResult]:
    """Validated records scored with a loaded model (the in-process path, also used by the server)."""
    import numpy as np

    if not records:
        return []
    values = np.array([r.row() for r in records], dtype="float64")
    ids = model.predict(values)
    version = model.version or "(unsaved)"
    return [
        ScoreResult(int(i), model.segment_name(int(i)), r.model_dump(), version)
        for i, r in zip(ids.tolist(), records, strict=True)
    ]


def _record(recency: float, frequency: float, monetary: float) -> CustomerRecord:
    return validate_record({"recency": recency, "frequency": frequency, "monetary": monetary})


class LocalClient:
    """Scores with a model loaded in this process: a version of a models directory (None: the
    promoted one), a model directory (e.g. /opt/ml/model), or an already loaded model."""

    def __init__(self, models_dir: str = "models", version: str | None = None, *,
                 model_dir: str | None = None, model: SegmentModel | None = None,
                 signing_key: SigningKey = None) -> None:
        if model is None:
            from rfm.model import ModelStore, load_model_dir

            model = (load_model_dir(model_dir, signing_key=signing_key) if model_dir
                     else ModelStore(models_dir, signing_key=signing_key).load(version))
        self.model = model
        self._where = model_dir or models_dir

    def score(self, recency: float, frequency: float, monetary: float) -> ScoreResult:
        return score_records(self.model, [_record(recency, frequency, monetary)])[0]

    def score_batch(self, records: Sequence[Mapping[str, float]]) -> list[ScoreResult]:
        return score_records(self.model, records_from_mappings(records))

    def describe(self) -> str:
        return f"in-process model {self.model.version} (from {self._where})"


class _Readable(Protocol):
    def read(self) -> bytes: ...


class _ClientMeta(Protocol):
    @property
    def region_name(self) -> str: ...


class InvokeEndpointOutput(TypedDict):
    """The part of `invoke_endpoint`'s response a client reads."""

    Body: _Readable


class SageMakerRuntime(Protocol):
    """What `SageMakerClient` uses of a boto3 `sagemaker-runtime` client (boto3 ships no types)."""

    @property
    def meta(self) -> _ClientMeta: ...

    def invoke_endpoint(self, *, EndpointName: str, ContentType: str, Accept: str,
                        Body: bytes) -> InvokeEndpointOutput: ...


class _RemoteClient:
    """Scoring over the wire: one customer as a JSON record, a batch as {"instances": [...]}; subclasses
    only say how a JSON payload is sent (`_send`) and how the backend is named in messages (`_source`)."""

    @property
    def _source(self) -> str:
        raise NotImplementedError

    def _send(self, payload: dict[str, object]) -> object:
        """POST `payload` as JSON; the parsed JSON answer."""
        raise NotImplementedError

    def score(self, recency: float, frequency: float, monetary: float) -> ScoreResult:
        record = _record(recency, frequency, monetary)
        return ScoreResult.from_dict(self._send(record.model_dump()), source=self._source)

    def score_batch(self, records: Sequence[Mapping[str, float]]) -> list[ScoreResult]:
        valid = records_from_mappings(records)
        if not valid:
            return []
        answer = self._send({"instances": [r.model_dump() for r in valid]})
        return _predictions(answer, len(valid), self._source)


class HttpClient(_RemoteClient):
    """Scores through a running model server's POST /invocations (JSON in, JSON out)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = float(timeout)

    @property
    def _source(self) -> str:
        return self.url

    def describe(self) -> str:
        return f"model server {self.url}"

    def model_info(self) -> object:
        """GET /model: version, k, segments, centroids (the parsed JSON answer, as the server sent it)."""
        return self._request(urllib.request.Request(f"{self.url}/model", headers={"Accept": "application/json"}))

    def _send(self, payload: dict[str, object]) -> object:
        body = json.dumps(payload, allow_nan=False).encode()
        request = urllib.request.Request(
            f"{self.url}/invocations", data=body, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        return self._request(request)

    def _request(self, request: urllib.request.Request) -> object:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read())
            raise ScoringError(f"model server {self.url} refused the request ({exc.code}): {detail}") from None
        except TimeoutError:
            raise ScoringError(f"model server {self.url} did not answer within {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise ScoringError(f"model server {self.url} did not answer within {self.timeout:g} s") from None
            text = getattr(reason, "strerror", None) or str(reason)
            raise ScoringError(f"cannot reach model server {self.url}: {text}") from None
        except (OSError, ValueError) as exc:  # connection reset, malformed URL
            raise ScoringError(f"cannot reach model server {self.url}: {exc}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ScoringError(f"model server {self.url} answered something that is not JSON: "
                               f"{_short(raw)}") from None


class SageMakerClient(_RemoteClient):
    """Scores through a SageMaker real-time endpoint (boto3 `sagemaker-runtime` `invoke_endpoint`).

    Credentials and region come from the AWS chain; `endpoint_url` (or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)
    points it elsewhere, e.g. at a local moto server in the tests."""

    def __init__(self, endpoint_name: str, region: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 endpoint_url: str | None = None, client: SageMakerRuntime | None = None) -> None:
        if not endpoint_name:
            raise ScoringError("a SageMaker endpoint name is required (sagemaker:NAME)")
        self.endpoint_name = endpoint_name
        self.timeout = float(timeout)
        if client is None:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError

            config = Config(connect_timeout=self.timeout, read_timeout=self.timeout,
                            retries={"max_attempts": 2, "mode": "standard"})
            try:
                client = boto3.client("sagemaker-runtime", region_name=region, endpoint_url=endpoint_url,
                                      config=config)
            except BotoCoreError as exc:
                raise ScoringError(f"SageMaker endpoint {endpoint_name}: {_aws_message(exc)}") from None
        self._client = client
        self.region = client.meta.region_name

    def describe(self) -> str:
        return f"SageMaker endpoint {self.endpoint_name} ({self.region})"

    @property
    def _source(self) -> str:
        return f"SageMaker endpoint {self.endpoint_name}"

    def _send(self, payload: dict[str, object]) -> object:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, ContentType="application/json", Accept="application/json",
                Body=json.dumps(payload, allow_nan=False).encode(),
            )
            raw = response["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", str(exc))
            raise ScoringError(f"{self._source} ({self.region}): {code}: {message}") from None
        except BotoCoreError as exc:
            raise ScoringError(f"{self._source} ({self.region}): {_aws_message(exc)}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ScoringError(f"{self._source} answered something that is not JSON: {_short(raw)}") from None


def make_client(endpoint: str | None = None, *, models_dir: str = "models", version: str | None = None,
                timeout: float = DEFAULT_TIMEOUT, signing_key: SigningKey = None) -> ScoringClient:
    """The backend an endpoint string names: None or "local" = in-process model, "http(s)://host:port"
    = model server, "sagemaker:NAME" (or "sagemaker:REGION/NAME") = SageMaker endpoint."""
    text = (endpoint or "").strip()
    if text in ("", "local"):
        return LocalClient(models_dir, version, signing_key=signing_key)
    if text.startswith(("http://", "https://")):
        return HttpClient(text, timeout=timeout)
    if text.startswith("sagemaker:"):
        name = text.removeprefix("sagemaker:").strip()
        region = None
        if "/" in name:
            region, name = name.split("/", 1)
        return SageMakerClient(name, region or None, timeout=timeout)
    raise ScoringError(f"unknown endpoint {endpoint!r}: use 'local', http://host:port or sagemaker:NAME")


def _predictions(answer: object, expected: int, source: str) -> list[ScoreResult]:
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != expected:
        raise ScoringError(f"{source} answered something that is not {expected} scores: {_short(answer)}")
    return [ScoreResult.from_dict(p, source=source) for p in predictions]


def _error_detail(raw: bytes) -> str:
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else _short(raw)


def _aws_message(exc: Exception) -> str:
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use a role)"
    if isinstance(exc, NoRegionError):
        return "no AWS region (pass sagemaker:REGION/NAME or set AWS_REGION)"
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return f"no answer in time ({exc})"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect ({exc})"
    return str(exc)


def _short(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


__all__ = [
    "DEFAULT_TIMEOUT",
    "HttpClient",
    "LocalClient",
    "RfmError",
    "SageMakerClient",
    "ScoreResult",
    "ScoringClient",
    "ScoringError",
    "make_client",
    "score_records",
]
