"""The container's server over real HTTP: started with the Dockerfile's ENTRYPOINT + `serve`, the model
unpacked from model.tar.gz as SageMaker does, SAGEMAKER_* variables, a free loopback port."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from server_process import REPO, ServerProcess, dockerfile_command, free_port

from rfm.errors import DataError, ScoringError
from rfm.model import load_model_dir
from rfm.serving.clients import HttpClient, LocalClient, make_client


def call(server: ServerProcess, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def post(server: ServerProcess, body: bytes, content_type: str | None = "application/json",
         accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if accept:
        headers["Accept"] = accept
    return call(server, "POST", "/invocations", body, headers)


def test_dockerfile_follows_the_sagemaker_contract() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in text
    assert dockerfile_command()[-2:] == ["rfm.server", "serve"]
    assert "/opt/ml/model" in text and "models/CURRENT" in text
    assert "pip install --no-cache-dir -r requirements-serve.txt" in text and "-r requirements-dev.txt" not in text


def test_ping_is_200_with_empty_body(server: ServerProcess) -> None:
    status, _, body = call(server, "GET", "/ping")
    assert (status, body) == (200, b"")


def test_published_single_customer_format(server: ServerProcess, model_dir: Path) -> None:
    status, headers, body = post(server, b'{"recency": 15, "frequency": 12, "monetary": 540}')
    assert status == 200 and headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    model = load_model_dir(model_dir)
    cluster = int(model.pipeline.predict(np.array([[15.0, 12.0, 540.0]]))[0])
    assert answer == {"cluster": cluster, "segment": model.segment_name(cluster),
                      "input_data": {"recency": 15, "frequency": 12, "monetary": 540}, "model_version": model.version}


def test_batch_csv_and_jsonlines_agree_with_the_model(server: ServerProcess, model_dir: Path) -> None:
    rng = np.random.default_rng(5)
    rows = np.column_stack([rng.integers(0, 380, 200), rng.integers(1, 60, 200), rng.gamma(1.5, 800, 200).round(2)])
    rows[:3, 2] = [0.0, -12.5, 0.0]
    expected = load_model_dir(model_dir).predict(rows).tolist()
    records = [{"recency": int(r), "frequency": int(f), "monetary": float(m)} for r, f, m in rows]

    status, _, body = post(server, json.dumps({"instances": records}).encode())
    assert status == 200
    assert [p["cluster"] for p in json.loads(body)["predictions"]] == expected

    csv_body = "recency,frequency,monetary\n" + "".join(f"{int(r)},{int(f)},{float(m)!r}\n" for r, f, m in rows)
    status, headers, body = post(server, csv_body.encode(), "text/csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    lines = body.decode().splitlines()
    assert [int(x.split(",")[0]) for x in lines] == expected
    assert lines[0].endswith(",No Net Revenue")

    status, _, body = post(server, csv_body.encode(), "text/csv", accept="application/jsonlines")
    assert status == 200
    assert [json.loads(x)["cluster"] for x in body.decode().splitlines()] == expected

    jsonl = "".join(json.dumps(r) + "\n" for r in records).encode()
    status, headers, body = post(server, jsonl, "application/jsonlines", accept="application/json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert [p["cluster"] for p in json.loads(body)["predictions"]] == expected


@pytest.mark.parametrize(("body", "content_type", "accept", "status", "fragment"), [
    (b'{"recency": 15, "frequency": 12}', "application/json", None, 400, "'monetary' is missing"),
    (b'{"recency": 15, "frequency": 12, "monetary": 1, "age": 3}', "application/json", None, 400, "'age'"),
    (b'{"recency": "15", "frequency": 12, "monetary": 1}', "application/json", None, 400, "'recency' must be a number"),
    (b'{"recency": 15, "frequency": 12, "monetary": NaN}', "application/json", None, 400, "malformed JSON"),
    (b'{"recency": 15, "frequency": 12, "monetary": Infinity}', "application/json", None, 400, "malformed JSON"),
    (b'{"recency": 15, "frequency": -12, "monetary": 1}', "application/json", None, 400, "cannot be negative"),
    (b"", "application/json", None, 400, "empty request body"),
    (b'{"recency": 15,', "application/json", None, 400, "malformed JSON"),
    (b"1,2,3\n4,5\n", "text/csv", None, 400, "record 1 (line 2): expected 3 values"),
    (b"1,2,3\n4,abc,6\n", "text/csv", None, 400, "record 1 (line 2): field 'frequency'"),
    (b'{"instances": [{"recency": 1, "frequency": 1, "monetary": 1}, {}]}', "application/json", None, 400,
     "record 1: field 'recency' is missing"),
    (b"1,2,3", "text/plain", None, 415, "unsupported content type"),
    (b"1,2,3", None, None, 415, "unsupported content type"),
    (b"1,2,3", "text/csv", "text/html", 406, "cannot answer"),
])
def test_bad_requests_are_4xx_with_a_clear_message(server: ServerProcess, body: bytes, content_type: str | None,
                                                   accept: str | None, status: int, fragment: str) -> None:
    got, headers, answer = post(server, body, content_type, accept)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert fragment in json.loads(answer)["detail"]


def test_body_over_6_mb_is_413(server: ServerProcess) -> None:
    row = b"15,12,540\n"
    body = row * (6 * 1024 * 1024 // len(row) + 1)
    status, _, answer = post(server, body, "text/csv")
    assert status == 413 and "limit" in json.loads(answer)["detail"]
    row = b"15,12,540.000000001\n"  # longer than its CSV answer line, so the answer fits in 6 MB too
    just_under = row * (6 * 1024 * 1024 // len(row))
    status, _, answer = post(server, just_under, "text/csv")
    assert status == 200 and answer.count(b"\n") == len(just_under) // len(row)


def test_model_description(server: ServerProcess, model_dir: Path) -> None:
    status, _, body = call(server, "GET", "/model")
    info = json.loads(body)
    model = load_model_dir(model_dir)
    assert status == 200
    assert (info["version"], info["k"]) == (model.version, model.k)
    assert info["segments"] == [c.name for c in model.clusters]
    assert info["clusters"] == [c.as_dict() for c in model.clusters]
    status, _, body = call(server, "GET", "/openapi.json")
    assert status == 200 and "/invocations" in json.loads(body)["paths"]


def test_http_client_equals_local_client(server: ServerProcess) -> None:
    client = make_client(server.url)
    local = LocalClient("models")
    assert client.score(15, 12, 540) == local.score(15, 12, 540)
    records = [{"recency": r, "frequency": f, "monetary": m} for r, f, m in [(3, 40, 9000.5), (300, 1, 20), (9, 2, -1)]]
    assert client.score_batch(records) == local.score_batch(records)
    assert client.describe() == f"model server {server.url}"
    with pytest.raises(DataError, match="frequency"):  # validated before sending
        client.score(1, -1, 1)


def test_http_client_errors_are_one_line() -> None:
    down = HttpClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ScoringError, match=r"cannot reach model server http://127.0.0.1:\d+: .*refused"):
        down.score(1, 2, 3)


def test_http_client_reports_server_4xx(server: ServerProcess) -> None:
    client = HttpClient(server.url)
    client_url = client.url
    client.url = f"{client_url}/nope"  # a path the server does not have
    with pytest.raises(ScoringError, match=r"refused the request \(404\): Not Found"):
        client.score(1, 2, 3)


def test_http_client_timeout() -> None:
    import socket

    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        client = HttpClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        with pytest.raises(ScoringError, match=r"did not answer within 0.5 s"):
            client.score(1, 2, 3)


def test_refuses_to_start_with_a_tampered_model(model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    with open(bad / "model.skops", "ab") as handle:
        handle.write(b"\0")
    proc = ServerProcess(bad)
    proc.proc.wait(timeout=30)
    output = proc.stop()
    assert proc.proc.returncode == 2
    assert "refusing to start: no valid model in" in output and "sha256" in output


def test_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "missing")
    proc.proc.wait(timeout=30)
    output = proc.stop()
    assert proc.proc.returncode == 2 and "refusing to start" in output and "metadata.json" in output


def test_several_workers_and_sagemaker_prefixed_variables(model_dir: Path) -> None:
    proc = ServerProcess(model_dir, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "MODEL_SERVER_WORKERS": "7",
                                         "SAGEMAKER_MODEL_SERVER_TIMEOUT": "5"})
    try:
        proc.wait_ready(timeout=60)
        status, _, body = post(proc, b"1,2,3\n", "text/csv")
        assert status == 200 and body.count(b"\n") == 1
    finally:
        output = proc.stop()
    assert "2 worker(s), timeout 5 s" in output
