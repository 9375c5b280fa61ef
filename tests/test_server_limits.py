"""The bounded server (issue 11): no answer over SageMaker's 6 MB response limit (413 saying how many
rows fit), bounded memory and a responsive /ping under four concurrent maximum-size batches, and a
timed-out request that stops its work. Over real HTTP against the server as the image starts it, plus
in-process checks of the busy (503) path and the OpenAPI description."""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from server_process import ServerProcess, concurrent_batches

from rfm.model import ModelStore
from rfm.server import app as app_module
from rfm.server.app import create_app
from rfm.server.settings import MAX_BODY_BYTES, MAX_RESPONSE_BYTES, ServerSettings

MAX_RSS_GROWTH = 400 * 1024 * 1024
MAX_PING_SECONDS = 2.0


@functools.cache
def csv_body(monetary_format: str = "{:.2f}", limit: int = MAX_BODY_BYTES - 1) -> bytes:
    """Realistic customers, as many whole rows as fit in `limit` bytes."""
    rng = np.random.default_rng(11)
    n = limit // 10 + 1
    rows = np.column_stack([rng.integers(0, 380, n), rng.integers(1, 60, n), rng.gamma(1.5, 800, n)])
    text = "".join(f"{int(r)},{int(f)},{monetary_format.format(m)}\n" for r, f, m in rows.tolist()).encode()
    return text[: text.rfind(b"\n", 0, limit) + 1]


def post(server: ServerProcess, body: bytes, accept: str, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv", "Accept": accept})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def ping_seconds(server: ServerProcess) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        started = time.perf_counter()
        conn.request("GET", "/ping")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        return time.perf_counter() - started
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rows_that_fit(detail: str, kind: str) -> int:
    match = re.search(rf"about ([\d,]+) rows fit in one {re.escape(kind)} answer", detail)
    assert match, detail
    return int(match.group(1).replace(",", ""))


def test_an_answer_over_6_mb_is_413_saying_how_many_rows_fit(server: ServerProcess) -> None:
    body = csv_body("{:.6f}")  # rows longer than their CSV answer lines
    assert MAX_BODY_BYTES - 30 < len(body) < MAX_BODY_BYTES
    status, headers, answer = post(server, body, "application/json")
    assert status == 413 and headers["content-type"] == "application/json"
    detail = json.loads(answer)["detail"]
    rows = body.count(b"\n")
    assert "\n" not in detail and f"{rows:,} rows" in detail and "6 MB response limit" in detail
    assert "text/csv answers are smaller" in detail and "batch transform" in detail
    fit = rows_that_fit(detail, "application/json")
    assert 20_000 < fit < 100_000

    # the estimate holds: 90% of that many rows are answered, under the limit
    part = b"".join(body.splitlines(keepends=True)[: fit * 9 // 10])
    status, _, answer = post(server, part, "application/json")
    assert status == 200 and len(answer) <= MAX_RESPONSE_BYTES
    assert len(json.loads(answer)["predictions"]) == fit * 9 // 10

    # the same rows as CSV fit
    status, headers, answer = post(server, body, "text/csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert len(answer) <= MAX_RESPONSE_BYTES and answer.count(b"\n") == rows


def test_a_csv_answer_over_6_mb_is_413_too(server: ServerProcess) -> None:
    body = b"15,12,540\n" * (MAX_BODY_BYTES // 10)  # 10-byte rows, ~18-byte answer lines
    status, _, answer = post(server, body, "text/csv")
    detail = json.loads(answer)["detail"]
    assert status == 413 and "batch transform" in detail
    assert 300_000 < rows_that_fit(detail, "text/csv") < body.count(b"\n")


def test_four_max_size_batches_stay_within_400_mb_and_ping_answers(server: ServerProcess) -> None:
    post(server, b"1,2,3\n" * 20_000, "application/json")  # warm up (thread pool, allocator arenas)
    started = time.monotonic()
    # the case: just-under-6MB CSV batches answered as JSON (refused: 413 after ~6 MB of answer)
    load = concurrent_batches(server.port, server.proc.pid, csv_body(), "application/json")
    assert load.statuses == [413] * 4
    assert load.rss_growth < MAX_RSS_GROWTH, f"RSS grew {load.rss_growth / 2**20:.0f} MB"
    assert load.slowest_ping < MAX_PING_SECONDS, f"/ping took {load.slowest_ping:.2f} s"
    # every row scored and answered: just-under-6MB CSV batches answered as CSV
    load = concurrent_batches(server.port, server.proc.pid, csv_body("{:.6f}"), "text/csv")
    assert load.statuses == [200] * 4
    assert load.rss_growth < MAX_RSS_GROWTH, f"RSS grew {load.rss_growth / 2**20:.0f} MB"
    assert load.slowest_ping < MAX_PING_SECONDS, f"/ping took {load.slowest_ping:.2f} s"
    assert time.monotonic() - started < 30


def test_a_timed_out_request_stops_its_work(model_dir: Path) -> None:
    proc = ServerProcess(model_dir, env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "0.05"})
    try:
        proc.wait_ready()
        body = csv_body("{:.6f}")
        started = time.perf_counter()
        status, _, answer = post(proc, body, "text/csv")
        elapsed = time.perf_counter() - started
        assert status == 504 and "longer than 0.05 s" in json.loads(answer)["detail"]
        assert elapsed < 2.0
        assert ping_seconds(proc) < 0.5
        time.sleep(0.5)  # the work stops at its next check (one chunk, a few ms)
        cpu_before = cpu_seconds(proc.proc.pid)
        time.sleep(1.0)
        assert cpu_seconds(proc.proc.pid) - cpu_before < 0.2  # idle: nothing is still scoring
    finally:
        output = proc.stop()
    stopped = r"timed-out request: stopped (after [\d,]+ of [\d,]+ (bytes parsed|rows scored)|before scoring)"
    assert re.search(stopped, output), output


def test_large_batches_beyond_the_slots_wait_then_get_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot, two large requests: the first times out (504) and holds its slot until its work
    stops; the second waits for the slot within the timeout, then gets 503 with Retry-After."""
    model = ModelStore("models").load()
    monkeypatch.setattr(app_module, "THREAD_THRESHOLD_BYTES", 10)
    original = model.predict
    calls: list[int] = []

    def slow_predict(values: np.ndarray) -> np.ndarray:
        calls.append(len(values))
        time.sleep(0.3)
        return original(values)

    monkeypatch.setattr(model, "predict", slow_predict)
    monkeypatch.setattr("rfm.server.codecs.CHUNK_ROWS", 2)
    app = create_app(model, ServerSettings(timeout=0.1, heavy_slots=1))
    body = b"1,2,3\n4,5,6\n" * 5  # 10 rows: 5 chunks of 2 if nothing stopped it

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = asyncio.create_task(client.post("/invocations", content=body,
                                                    headers={"Content-Type": "text/csv"}))
            await asyncio.sleep(0.02)
            second = asyncio.create_task(client.post("/invocations", content=body,
                                                     headers={"Content-Type": "text/csv"}))
            return list(await asyncio.gather(first, second))

    first, second = asyncio.run(both())
    assert first.status_code == 504
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    assert "busy" in second.json()["detail"]
    time.sleep(0.5)
    assert calls == [2]  # the timed-out work stopped after its first chunk


def test_openapi_documents_the_limits() -> None:
    doc = create_app(ModelStore("models").load()).openapi()
    responses = doc["paths"]["/invocations"]["post"]["responses"]
    assert "rows fit" in responses["413"]["description"] and "batch transform" in responses["413"]["description"]
    assert "Retry-After" in responses["503"]["headers"]
    assert "504" in responses


def test_the_fast_path_answers_exactly_as_the_fastapi_route(model_dir: Path) -> None:
    """`FastPath` (what the container serves) takes /ping and small /invocations before FastAPI; for every
    kind of request, good or bad, its status, type and body are the route's own."""
    from fastapi.testclient import TestClient

    from rfm.model import load_model_dir
    from rfm.server.app import FastPath, create_app

    app = create_app(load_model_dir(model_dir))
    fast, plain = TestClient(FastPath(app)), TestClient(app)
    requests = [
        ("application/json", None, b'{"recency": 15, "frequency": 12, "monetary": 540}'),
        ("application/json", "text/csv", b'{"instances": [{"recency": 1, "frequency": 2, "monetary": 3}]}'),
        ("text/csv", None, b"15,12,540\n3,1,-5\n"),
        ("text/csv", "application/json", b"15,12,540\nx,1,2\n"),
        ("application/jsonlines", None, b'{"recency": 1, "frequency": 1, "monetary": 1}\n'),
        ("application/json", None, b'{"recency": -1}'),
        ("application/json", None, b"not json"),
        ("text/plain", None, b"15,12,540"),
        ("application/json", "image/png", b'{"recency": 15, "frequency": 12, "monetary": 540}'),
        ("text/csv", None, b""),
    ]
    for content_type, accept, body in requests:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        a, b = fast.post("/invocations", content=body, headers=headers), plain.post("/invocations", content=body,
                                                                                     headers=headers)
        assert (a.status_code, a.headers.get("content-type"), a.content) == (
            b.status_code, b.headers.get("content-type"), b.content), (content_type, accept, body)
    assert fast.get("/ping").status_code == 200 and fast.get("/ping").content == b""
    assert fast.get("/model").json() == plain.get("/model").json()  # everything else: the FastAPI app
    large = b"15,12,540\n" * 8000  # over 64 KiB: the route's threaded path, through the fast path's app
    assert fast.post("/invocations", content=large, headers={"Content-Type": "text/csv"}).status_code == 200
