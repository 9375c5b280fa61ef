"""Deploying a model version to a SageMaker real-time endpoint (boto3).

Steps: package the version as model.tar.gz (verified), upload it to S3, create a SageMaker Model
(this repo's container image + the archive) and a NEW EndpointConfig, then create the endpoint or
update it to the new config. SageMaker keeps the old config serving until the new one is InService,
so an update never interrupts scoring; a failed update rolls back to the old config. Each deploy
has its own timestamped Model and EndpointConfig names, so earlier ones stay available to roll back to.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict, TypeVar, overload

from rfm.errors import RfmError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

    from rfm.model.manifest import SigningKey

_T = TypeVar("_T")

DEFAULT_INSTANCE_TYPE = "ml.t2.medium"
DEFAULT_PREFIX = "rfm-models"
TERMINAL = frozenset({"InService", "Failed", "OutOfService", "Deleting", "RollingBack"})
_NAME_MAX = 63


@dataclass(frozen=True)
class DeployResult:
    endpoint: str
    model_name: str
    endpoint_config: str
    model_data_url: str
    action: str  # "created" or "updated"
    status: str
    failure_reason: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return dict(self.__dict__)


# What a deploy uses of boto3's clients (boto3 ships no types; any object with these methods will do).
class S3Uploader(Protocol):
    """An `s3` client: the archive is uploaded with the transfer manager."""

    def upload_file(self, filename: str, bucket: str, key: str, /) -> None: ...


class DescribeEndpointOutput(TypedDict, total=False):
    """The part of `describe_endpoint`'s response a deploy reads."""

    EndpointStatus: str
    FailureReason: str


class SageMakerApi(Protocol):
    """A `sagemaker` client: the calls that create a model, an endpoint config and the endpoint."""

    def create_model(self, *, ModelName: str, PrimaryContainer: Mapping[str, object], ExecutionRoleArn: str,
                     Tags: Sequence[Mapping[str, str]]) -> object: ...

    def create_endpoint_config(self, *, EndpointConfigName: str,
                               ProductionVariants: Sequence[Mapping[str, object]]) -> object: ...

    def create_endpoint(self, *, EndpointName: str, EndpointConfigName: str) -> object: ...

    def update_endpoint(self, *, EndpointName: str, EndpointConfigName: str) -> object: ...

    def describe_endpoint(self, *, EndpointName: str) -> DescribeEndpointOutput: ...


def resource_name(*parts: str, stamp: str) -> str:
    """A SageMaker resource name (letters, digits, hyphens; at most 63) ending with a timestamp."""
    base = re.sub(r"[^A-Za-z0-9-]+", "-", "-".join(parts)).strip("-")
    base = re.sub(r"-{2,}", "-", base)[: _NAME_MAX - len(stamp) - 1].rstrip("-")
    return f"{base}-{stamp}"


def container_environment(environment: Mapping[str, str] | None, signing_key: SigningKey) -> dict[str, str]:
    """The endpoint container's environment: `environment`, plus the signing key when there is one
    (a key given here wins over one in `environment`, so the endpoint checks what was verified)."""
    from rfm.model.manifest import key_bytes

    env = dict(environment or {})
    key = key_bytes(signing_key)
    if key is not None:
        try:
            env["RFM_MODEL_SIGNING_KEY"] = key.decode("utf-8")
        except UnicodeDecodeError:
            raise RfmError("the model signing key is not UTF-8 text, so it cannot be passed to the endpoint "
                           "as RFM_MODEL_SIGNING_KEY") from None
    return env


def deploy_model(
    *, version: str, endpoint: str, image_uri: str, role_arn: str, bucket: str,
    prefix: str = DEFAULT_PREFIX, instance_type: str = DEFAULT_INSTANCE_TYPE, instance_count: int = 1,
    models_dir: str = "models", region: str | None = None, wait: bool = True, poll_seconds: float = 15.0,
    timeout_seconds: float = 3600.0, progress: Callable[[str], None] = lambda _: None,
    s3_client: S3Uploader | None = None, sagemaker_client: SageMakerApi | None = None,
    environment: dict[str, str] | None = None, signing_key: SigningKey = None,
) -> DeployResult:
    """Package, upload, create Model + EndpointConfig, create or update the endpoint, wait. With a
    `signing_key` the version's signature is verified before it is packaged, and the key goes into
    the container's environment (RFM_MODEL_SIGNING_KEY), so the endpoint's server verifies it too and
    refuses to start on an archive whose signature does not match."""
    from botocore.exceptions import BotoCoreError, ClientError

    from rfm.model import ModelStore

    if not re.fullmatch(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}", endpoint or ""):
        raise RfmError(f"{endpoint!r} is not a valid SageMaker endpoint name (letters, digits, hyphens; 63 max)")
    store = ModelStore(models_dir, signing_key=signing_key)
    try:
        if s3_client is None or sagemaker_client is None:
            import boto3

            session = boto3.Session(region_name=region)
            s3_client = s3_client or session.client("s3")
            sagemaker_client = sagemaker_client or session.client("sagemaker")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        key = f"{prefix.strip('/')}/{version}/model.tar.gz" if prefix.strip("/") else f"{version}/model.tar.gz"
        model_data_url = f"s3://{bucket}/{key}"
        with tempfile.TemporaryDirectory(prefix="rfm-deploy-") as tmp:
            archive = store.package(version, Path(tmp) / "model.tar.gz")
            progress(f"packaged {version} ({archive.stat().st_size:,} bytes); uploading to {model_data_url}")
            _aws("s3 PutObject", lambda: s3_client.upload_file(str(archive), bucket, key))

        model_name = resource_name(endpoint, version, stamp=stamp)
        config_name = resource_name(endpoint, "config", stamp=stamp)
        container: dict[str, object] = {"Image": image_uri, "ModelDataUrl": model_data_url,
                                        "Environment": container_environment(environment, signing_key)}
        progress(f"creating model {model_name}")
        _aws("sagemaker CreateModel", lambda: sagemaker_client.create_model(
            ModelName=model_name, PrimaryContainer=container, ExecutionRoleArn=role_arn,
            Tags=[{"Key": "rfm-model-version", "Value": version}]))
        progress(f"creating endpoint config {config_name} ({instance_count} x {instance_type})")
        _aws("sagemaker CreateEndpointConfig", lambda: sagemaker_client.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model_name,
                                 "InitialInstanceCount": int(instance_count), "InstanceType": instance_type,
                                 "InitialVariantWeight": 1.0}]))

        current = _endpoint_status(sagemaker_client, endpoint)
        if current is None:
            progress(f"creating endpoint {endpoint}")
            _aws("sagemaker CreateEndpoint", lambda: sagemaker_client.create_endpoint(
                EndpointName=endpoint, EndpointConfigName=config_name))
            action = "created"
        else:
            if current in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"):
                raise RfmError(f"endpoint {endpoint} is {current}; wait until it is InService (or Failed) and retry")
            progress(f"updating endpoint {endpoint} (was {current}); the old config serves until the new one is up")
            _aws("sagemaker UpdateEndpoint", lambda: sagemaker_client.update_endpoint(
                EndpointName=endpoint, EndpointConfigName=config_name))
            action = "updated"

        status, reason = _endpoint_status(sagemaker_client, endpoint, detail=True) or ("Unknown", None)
        if wait:
            status, reason = _wait(sagemaker_client, endpoint, poll_seconds, timeout_seconds, progress)
    except (BotoCoreError, ClientError) as exc:  # not raised inside _aws (e.g. while building clients)
        raise RfmError(f"AWS: {exc}") from None
    result = DeployResult(endpoint, model_name, config_name, model_data_url, action, status, reason)
    if status == "Failed":
        raise RfmError(f"endpoint {endpoint} failed: {reason or 'no reason given'} (model {model_name})")
    return result


def _aws(operation: str, call: Callable[[], _T]) -> _T:
    """One AWS call; its error as one line naming the operation (and the permission, when denied)."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return call()
    except ClientError as exc:
        raise _client_error(operation, exc) from None
    except NoCredentialsError:
        raise RfmError(f"{operation}: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or use a role)") \
            from None
    except (BotoCoreError, S3UploadFailedError) as exc:
        raise RfmError(f"{operation} failed: {exc}") from None


def _client_error(operation: str, exc: ClientError) -> RfmError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Error"), error.get("Message", "")
    hint = ""
    if "AccessDenied" in code or "Unauthorized" in code:
        hint = f" (the caller needs {_PERMISSION.get(operation, 'the matching IAM permission')})"
    return RfmError(f"{operation} failed: {code}: {message}{hint}")


_PERMISSION = {
    "s3 PutObject": "s3:PutObject on the bucket",
    "sagemaker CreateModel": "sagemaker:CreateModel and iam:PassRole on the execution role",
    "sagemaker CreateEndpointConfig": "sagemaker:CreateEndpointConfig",
    "sagemaker CreateEndpoint": "sagemaker:CreateEndpoint",
    "sagemaker UpdateEndpoint": "sagemaker:UpdateEndpoint",
    "sagemaker DescribeEndpoint": "sagemaker:DescribeEndpoint",
}


@overload
def _endpoint_status(client: SageMakerApi, endpoint: str) -> str | None: ...


@overload
def _endpoint_status(client: SageMakerApi, endpoint: str, *,
                     detail: Literal[True]) -> tuple[str, str | None] | None: ...


def _endpoint_status(client: SageMakerApi, endpoint: str, *,
                     detail: bool = False) -> str | tuple[str, str | None] | None:
    """The endpoint's status (None when it does not exist); with detail, (status, failure reason)."""
    from botocore.exceptions import ClientError

    try:
        described = client.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationException" and "Could not find" in error.get("Message", ""):
            return None
        raise _client_error("sagemaker DescribeEndpoint", exc) from None
    status = described.get("EndpointStatus", "Unknown")
    return (status, described.get("FailureReason")) if detail else status


def _wait(client: SageMakerApi, endpoint: str, poll: float, timeout: float,
          progress: Callable[[str], None]) -> tuple[str, str | None]:
    started = time.monotonic()
    last = None
    while True:
        status, reason = _endpoint_status(client, endpoint, detail=True) or ("Missing", None)
        elapsed = time.monotonic() - started
        if status != last or elapsed >= timeout:
            progress(f"endpoint {endpoint}: {status} ({int(elapsed) // 60}m{int(elapsed) % 60:02d}s)")
            last = status
        if status in TERMINAL or status == "Missing":
            return status, reason
        if elapsed >= timeout:
            raise RfmError(f"endpoint {endpoint} still {status} after {timeout:g} s; "
                           "check it with `aws sagemaker describe-endpoint`")
        time.sleep(poll)
