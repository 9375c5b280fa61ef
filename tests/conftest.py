"""Shared fixtures: the real public datasets in ../shared/data and small generated logs."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import free_port

if TYPE_CHECKING:
    import pandas as pd

    from rfm.data.table import RfmResult
    from tests.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RFM_SHARED_DATA", REPO.parent / "shared" / "data"))
ONLINE_RETAIL_DIR = SHARED_DATA / "online_retail"
ONLINE_RETAIL_II_DIR = SHARED_DATA / "online_retail_ii"


def require_shared(path: Path) -> Path:
    """The real data: skipped on a user's fresh clone, a failure under CI=true (always present there)."""
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing: CI always has ../shared/data")
        pytest.skip(f"{path} not present (real datasets live in ../shared/data)")
    return path


@pytest.fixture(scope="session")
def online_retail_parquet() -> Path:
    return require_shared(ONLINE_RETAIL_DIR / "online_retail.parquet")


@pytest.fixture(scope="session")
def online_retail_csv() -> Path:
    return require_shared(ONLINE_RETAIL_DIR / "online_retail.csv.gz")


@pytest.fixture(scope="session")
def online_retail_ii_parquet() -> Path:
    return require_shared(ONLINE_RETAIL_II_DIR / "online_retail_ii_year_2009_2010.parquet")


@pytest.fixture(scope="session")
def demo_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small deterministic demo log (generated, so it exists on every machine)."""
    from rfm.data.demo import write_demo

    path = tmp_path_factory.mktemp("demo") / "demo.parquet"
    write_demo(path, rows=60_000, seed=11)
    return path


@pytest.fixture(scope="session")
def demo_table(demo_parquet: Path) -> pd.DataFrame:
    """The demo log's RFM table, computed once for the run: tests read it and never change it."""
    from rfm.data.table import compute_rfm

    return compute_rfm([demo_parquet]).table


@pytest.fixture(scope="session")
def retail(online_retail_parquet: Path) -> RfmResult:
    """The real Online Retail log's RFM result, computed once for the run (read-only, as above)."""
    from rfm.data.table import compute_rfm

    return compute_rfm([online_retail_parquet])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One local moto server (S3, Athena, SageMaker, sagemaker-runtime) on 127.0.0.1 for the run."""
    from moto import server as moto_server

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


AWS_ENV_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
                   "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ATHENA_S3_STAGING_DIR", "AWS_ATHENA_WORK_GROUP",
                   "RFM_ENDPOINT")


def point_aws_at_moto(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, region: str) -> None:
    """Fake credentials, no AWS config files, every boto3 client (also pyathena's) pointed at moto,
    and a fresh moto state: no test can reach a real AWS account."""
    for name in AWS_ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).read()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/ml/model as SageMaker lays it out: the promoted version, packaged and unpacked."""
    from tests.server_process import sagemaker_model_dir

    return sagemaker_model_dir(tmp_path_factory.mktemp("sm"))


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerProcess]:
    """The model server as the container starts it, serving `model_dir` (one per test module)."""
    from tests.server_process import ServerProcess

    proc = ServerProcess(model_dir)
    proc.wait_ready()
    yield proc
    proc.stop()
