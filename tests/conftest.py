"""Shared fixtures: the real public datasets in ../shared/data and small generated logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
    from rfm.demo import write_demo

    path = tmp_path_factory.mktemp("demo") / "demo.parquet"
    write_demo(path, rows=60_000, seed=11)
    return path
