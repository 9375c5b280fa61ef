"""The scoring interface in process: results equal scikit-learn's, one validation for every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rfm.errors import DataError, RfmError, ScoringError
from rfm.model import NOT_SEGMENTED_NAME, ModelStore
from rfm.serving.clients import HttpClient, LocalClient, ScoreResult, ScoringClient, make_client


@pytest.fixture(scope="module")
def client() -> LocalClient:
    return LocalClient("models")


def test_seed_format_and_published_example(client: LocalClient) -> None:
    result = client.score(15, 12, 540)
    assert isinstance(client, ScoringClient)
    assert list(result.as_dict()) == ["cluster", "segment", "input_data", "model_version"]
    assert result.input_data == {"recency": 15, "frequency": 12, "monetary": 540}
    assert result.model_version == ModelStore("models").current_version()
    # the cluster is the one the fitted scikit-learn pipeline predicts, the name the model's
    expected = int(client.model.pipeline.predict(np.array([[15.0, 12.0, 540.0]]))[0])
    assert result.cluster == expected
    assert result.segment == client.model.segment_name(expected)


def test_batch_matches_pipeline_and_keeps_order(client: LocalClient) -> None:
    rng = np.random.default_rng(3)
    rows = np.column_stack([rng.integers(0, 400, 300), rng.integers(1, 80, 300), rng.gamma(2.0, 900.0, 300)])
    records = [{"recency": int(r), "frequency": int(f), "monetary": float(m)} for r, f, m in rows]
    results = client.score_batch(records)
    expected = client.model.pipeline.predict(rows.astype(float))
    assert [r.cluster for r in results] == expected.tolist()
    assert [r.input_data for r in results] == records
    assert len({r.cluster for r in results}) > 1


def test_non_positive_monetary_is_not_segmented(client: LocalClient) -> None:
    for monetary in (0, -25.5):
        result = client.score(10, 3, monetary)
        assert (result.cluster, result.segment) == (-1, NOT_SEGMENTED_NAME)


@pytest.mark.parametrize(("args", "message"), [
    ((15, -1, 540), "field 'frequency' cannot be negative"),
    ((-3, 1, 540), "field 'recency' cannot be negative"),
    ((15, 12, math.nan), "field 'monetary' must be a finite number"),
    ((15, math.inf, 5), "field 'frequency' must be a finite number"),
    (("15", 12, 540), "field 'recency' must be a number"),
    ((True, 12, 540), "field 'recency' must be a number"),
])
def test_invalid_single_input(client: LocalClient, args: tuple, message: str) -> None:
    with pytest.raises(DataError, match=message):
        client.score(*args)


def test_invalid_batch_names_the_record(client: LocalClient) -> None:
    good = {"recency": 1, "frequency": 2, "monetary": 3}
    with pytest.raises(DataError, match=r"record 2: field 'monetary' is missing"):
        client.score_batch([good, good, {"recency": 1, "frequency": 2}])
    with pytest.raises(DataError, match=r"record 1: unexpected field 'country'"):
        client.score_batch([good, {**good, "country": "UK"}])
    assert client.score_batch([]) == []


def test_make_client_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_client(None), LocalClient)
    assert isinstance(make_client("local"), LocalClient)
    http = make_client("http://127.0.0.1:9/", timeout=2)
    assert isinstance(http, HttpClient) and http.url == "http://127.0.0.1:9" and http.timeout == 2
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sm = make_client("sagemaker:eu-west-1/rfm-prod")
    assert sm.describe() == "SageMaker endpoint rfm-prod (eu-west-1)"
    with pytest.raises(ScoringError, match="unknown endpoint"):
        make_client("ftp://x")


def test_local_client_unknown_version() -> None:
    with pytest.raises(RfmError, match="unknown model version"):
        LocalClient("models", "nope")


def test_score_result_from_dict_rejects_other_shapes() -> None:
    good = {"cluster": 1, "segment": "A", "input_data": {"recency": 1, "frequency": 2, "monetary": 3},
            "model_version": "v"}
    assert ScoreResult.from_dict(good).as_dict() == good
    for bad in ({"detail": "x"}, [1], {**good, "cluster": "1"}, {**good, "input_data": {"recency": 1}}):
        with pytest.raises(ScoringError, match="not a score"):
            ScoreResult.from_dict(bad)
