"""The boto3 paths against a local moto server on 127.0.0.1: deployment (S3, SageMaker) and the
SageMaker scoring client (sagemaker-runtime, results preset through moto's API)."""

from __future__ import annotations

import json
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from server_process import free_port

from rfm.cli import main
from rfm.errors import RfmError, ScoringError
from rfm.model import ModelStore, sha256_file
from rfm.serving.clients import LocalClient, SageMakerClient, make_client
from rfm.serving.deploy import deploy_model, resource_name
from tests.conftest import point_aws_at_moto

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/rfm-sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/rfm-segments:test"


@pytest.fixture()
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Fake credentials and every AWS client pointed at moto (a fresh account state per test)."""
    point_aws_at_moto(moto_url, monkeypatch, tmp_path, REGION)
    return moto_url


def preset_runtime_results(moto_url: str, bodies: list[str]) -> None:
    """Queue invoke_endpoint answers in moto (POST /moto-api/static/sagemaker/endpoint-results)."""
    payload = {"region": REGION, "results": [
        {"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic",
         "CustomAttributes": ""} for body in bodies]}
    request = urllib.request.Request(f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
                                     data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def test_deploy_creates_model_config_and_endpoint(aws: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="rfm-artifacts")
    version = ModelStore("models").current_version()
    messages: list[str] = []
    result = deploy_model(version=version, endpoint="rfm-test", image_uri=IMAGE, role_arn=ROLE,
                          bucket="rfm-artifacts", poll_seconds=0.01, progress=messages.append)
    assert (result.action, result.status) == ("created", "InService")
    assert result.model_data_url == f"s3://rfm-artifacts/rfm-models/{version}/model.tar.gz"

    # the uploaded archive unpacks to the version's files (what SageMaker puts in /opt/ml/model)
    s3.download_file("rfm-artifacts", f"rfm-models/{version}/model.tar.gz", str(tmp_path / "m.tar.gz"))
    with tarfile.open(tmp_path / "m.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "metadata.json", "model.skops"]
        tar.extractall(tmp_path / "x", filter="data")
    for name in ("manifest.json", "metadata.json", "model.skops"):
        assert sha256_file(tmp_path / "x" / name) == sha256_file(Path("models") / version / name)

    sm = boto3.client("sagemaker", region_name=REGION)
    model = sm.describe_model(ModelName=result.model_name)
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == result.model_data_url
    assert model["ExecutionRoleArn"] == ROLE
    variant = sm.describe_endpoint_config(EndpointConfigName=result.endpoint_config)["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        result.model_name, "ml.t2.medium", 1)
    endpoint = sm.describe_endpoint(EndpointName="rfm-test")
    assert endpoint["EndpointConfigName"] == result.endpoint_config
    assert any("InService" in m for m in messages) and any("uploading" in m for m in messages)


class _UpdateRecorder:
    """The sagemaker client from moto, with UpdateEndpoint (which moto does not implement) recorded."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.updates: list[dict[str, str]] = []

    def update_endpoint(self, **kwargs: str) -> dict[str, str]:
        self.updates.append(kwargs)
        return {"EndpointArn": "arn"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_redeploy_updates_the_endpoint_with_a_new_config(aws: str) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="rfm-artifacts")
    version = ModelStore("models").current_version()
    first = deploy_model(version=version, endpoint="rfm-test", image_uri=IMAGE, role_arn=ROLE,
                         bucket="rfm-artifacts", poll_seconds=0.01)
    recorder = _UpdateRecorder(boto3.client("sagemaker", region_name=REGION))
    import time

    time.sleep(1.1)  # names carry a per-second timestamp
    second = deploy_model(version=version, endpoint="rfm-test", image_uri=IMAGE, role_arn=ROLE,
                          bucket="rfm-artifacts", poll_seconds=0.01, sagemaker_client=recorder,
                          s3_client=boto3.client("s3", region_name=REGION), instance_type="ml.m5.large")
    assert second.action == "updated"
    assert recorder.updates == [{"EndpointName": "rfm-test", "EndpointConfigName": second.endpoint_config}]
    assert second.endpoint_config != first.endpoint_config
    sm = boto3.client("sagemaker", region_name=REGION)
    names = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert {first.endpoint_config, second.endpoint_config} <= names  # the old config is kept for rollback


def test_deploy_errors_are_one_line(aws: str) -> None:
    version = ModelStore("models").current_version()
    with pytest.raises(RfmError, match=r"s3 PutObject failed: .*NoSuchBucket"):
        deploy_model(version=version, endpoint="rfm-test", image_uri=IMAGE, role_arn=ROLE, bucket="missing")
    with pytest.raises(RfmError, match="not a valid SageMaker endpoint name"):
        deploy_model(version=version, endpoint="bad_name!", image_uri=IMAGE, role_arn=ROLE, bucket="b")
    with pytest.raises(RfmError, match="unknown model version"):
        deploy_model(version="nope", endpoint="rfm-test", image_uri=IMAGE, role_arn=ROLE, bucket="b")


def test_deploy_cli(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="rfm-artifacts")
    version = ModelStore("models").current_version()
    code = main(["deploy", "--model", version, "--endpoint", "rfm-cli", "--image-uri", IMAGE, "--role-arn", ROLE,
                 "--bucket", "rfm-artifacts", "--poll-seconds", "0.01"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("endpoint rfm-cli created: InService")
    assert "rfm deploy: creating endpoint rfm-cli" in err
    assert main(["deploy", "--model", version, "--endpoint", "rfm-cli", "--image-uri", IMAGE, "--role-arn", ROLE,
                 "--bucket", "no-such-bucket"]) == 2
    assert "rfm deploy: error: s3 PutObject failed" in capsys.readouterr().err


def test_resource_names_are_valid() -> None:
    name = resource_name("rfm-prod", "2026_11.27-k4" * 6, stamp="20261127-101010")
    assert len(name) <= 63 and name.endswith("-20261127-101010")
    assert all(c.isalnum() or c == "-" for c in name) and "--" not in name


def test_sagemaker_client_parses_the_endpoint_answer(aws: str) -> None:
    local = LocalClient("models")
    single = local.score(15, 12, 540).as_dict()
    batch = [r.as_dict() for r in local.score_batch([{"recency": 15, "frequency": 12, "monetary": 540},
                                                     {"recency": 300, "frequency": 1, "monetary": 10}])]
    preset_runtime_results(aws, [json.dumps(single), json.dumps({"predictions": batch})])
    client = make_client("sagemaker:rfm-test")
    assert isinstance(client, SageMakerClient)
    assert client.describe() == f"SageMaker endpoint rfm-test ({REGION})"
    assert client.score(15, 12, 540).as_dict() == single
    got = client.score_batch([{"recency": 15, "frequency": 12, "monetary": 540},
                              {"recency": 300, "frequency": 1, "monetary": 10}])
    assert [r.as_dict() for r in got] == batch


def test_sagemaker_client_rejects_answers_that_are_not_scores(aws: str) -> None:
    preset_runtime_results(aws, ['{"detail": "boom"}', "not json"])
    client = SageMakerClient("rfm-test", REGION)
    with pytest.raises(ScoringError, match="SageMaker endpoint rfm-test answered something that is not a score"):
        client.score(1, 2, 3)
    with pytest.raises(ScoringError, match="not JSON"):
        client.score(4, 5, 6)


def test_sagemaker_client_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    down = SageMakerClient("rfm-test", REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(ScoringError, match=r"SageMaker endpoint rfm-test \(us-east-1\): cannot connect"):
        down.score(1, 2, 3)


def test_score_cli_with_each_backend(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    local = LocalClient("models").score(15, 12, 540).as_dict()
    assert main(["score", "--recency", "15", "--frequency", "12", "--monetary", "540"]) == 0
    assert json.loads(capsys.readouterr().out) == local
    preset_runtime_results(aws, [json.dumps(local)])
    assert main(["score", "--recency", "15", "--frequency", "12", "--monetary", "540",
                 "--endpoint", "sagemaker:rfm-test"]) == 0
    assert json.loads(capsys.readouterr().out) == local
    assert main(["score", "--recency", "15", "--frequency", "12", "--monetary", "540",
                 "--endpoint", f"http://127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rfm score: error: cannot reach model server") and "\n" not in err


def test_a_signed_version_is_deployed_with_its_key_so_the_endpoint_verifies_it(aws: str, tmp_path: Path) -> None:
    """With a signing key, the archive carries manifest.sig and the container's environment carries
    the key, so the endpoint's server checks the signature at start; without one, neither."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="rfm-artifacts")
    key = "a signing key for the endpoint"
    signed = ModelStore(tmp_path / "models", signing_key=key)
    version = signed.save(ModelStore("models").load())
    result = deploy_model(version=version, endpoint="rfm-signed", image_uri=IMAGE, role_arn=ROLE,
                          bucket="rfm-artifacts", poll_seconds=0.01, models_dir=str(signed.root),
                          signing_key=key, environment={"RFM_MODEL_SIGNING_KEY": "stale", "OTHER": "1"})
    sm = boto3.client("sagemaker", region_name=REGION)
    environment = sm.describe_model(ModelName=result.model_name)["PrimaryContainer"]["Environment"]
    assert environment == {"RFM_MODEL_SIGNING_KEY": key, "OTHER": "1"}
    archive = tmp_path / "m.tar.gz"
    boto3.client("s3", region_name=REGION).download_file("rfm-artifacts", f"rfm-models/{version}/model.tar.gz",
                                                          str(archive))
    with tarfile.open(archive) as tar:
        assert "manifest.sig" in tar.getnames()

    unsigned = deploy_model(version=ModelStore("models").current_version(), endpoint="rfm-plain", image_uri=IMAGE,
                            role_arn=ROLE, bucket="rfm-artifacts", poll_seconds=0.01)
    assert "RFM_MODEL_SIGNING_KEY" not in sm.describe_model(
        ModelName=unsigned.model_name)["PrimaryContainer"].get("Environment", {})
    with pytest.raises(RfmError, match="signature"):  # the key is checked before anything is uploaded
        deploy_model(version=version, endpoint="rfm-wrong", image_uri=IMAGE, role_arn=ROLE, bucket="rfm-artifacts",
                     poll_seconds=0.01, models_dir=str(signed.root), signing_key="another key")
