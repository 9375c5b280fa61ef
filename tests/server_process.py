"""Starting the server exactly as the container's ENTRYPOINT does, on a free loopback port."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]


def dockerfile_command() -> list[str]:
    """ENTRYPOINT + the `serve` argument SageMaker appends, from the Dockerfile (exec form only)."""
    entrypoint = None
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT"):
            entrypoint = json.loads(line.removeprefix("ENTRYPOINT").strip())
    assert isinstance(entrypoint, list), "ENTRYPOINT must be in exec form (a JSON array)"
    if entrypoint[0] == "python":
        entrypoint = [sys.executable, *entrypoint[1:]]
    return [*entrypoint, "serve"]


def image_program_dir(root: Path) -> Path:
    """/opt/program as the Dockerfile builds it: exactly the files its `COPY rfm...` lines copy, so a
    server started from here proves the image holds everything serving imports (and nothing else)."""
    import shutil

    program = root / "opt" / "program"
    for line in (REPO / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] != "COPY" or not parts[1].startswith("rfm"):
            continue
        *sources, target = parts[1:]
        destination = program / target.removeprefix("./")
        for source in sources:
            path = REPO / source
            if path.is_dir():
                shutil.copytree(path, destination, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination / path.name)
    assert (program / "rfm" / "server" / "__main__.py").is_file(), "the Dockerfile does not copy rfm/server"
    return program


def sagemaker_model_dir(root: Path, models_dir: Path = REPO / "models") -> Path:
    """/opt/ml/model as SageMaker lays it out: model.tar.gz (from `ModelStore.package`) unpacked."""
    from rfm.model import ModelStore

    store = ModelStore(models_dir)
    archive = store.package(store.current_version(), root / "model.tar.gz")
    target = root / "opt" / "ml" / "model"
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


class ServerProcess:
    def __init__(self, model_dir: Path, env: Mapping[str, str] | None = None, args: list[str] | None = None) -> None:
        """The server as the image runs it: the Dockerfile's ENTRYPOINT, with only the code the image copies
        (staged next to `model_dir`) on the path."""
        self.port = free_port()
        program = image_program_dir(Path(model_dir).parent / f"image-{self.port}")
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MODEL_SERVER_", "SM_"))}
        full_env.update({"SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(self.port),
                         "MODEL_SERVER_WORKERS": "1", "RFM_SERVER_HOST": "127.0.0.1",
                         "PYTHONPATH": str(program)})
        full_env.update(env or {})
        self.proc = subprocess.Popen([*dockerfile_command(), *(args or [])], cwd="/", env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.proc.stdout.read()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not answer /ping in time")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stdout.read() if self.proc.stdout else ""


def rss_bytes(pid: int) -> int:
    """A process's resident memory, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class BatchLoad:
    """What `concurrent_batches` saw: the answers' statuses (sorted), the server's peak RSS growth, the
    slowest /ping and the wall time."""

    statuses: list[int]
    rss_growth: int
    slowest_ping: float
    wall: float


def concurrent_batches(port: int, pid: int, body: bytes, accept: str, batches: int = 4) -> BatchLoad:
    """`batches` CSV POSTs of `body` at once to the server on `port` (process `pid`), while its RSS is
    sampled and /ping is called (every ping must answer 200): the server-limits test and
    benchmarks/serve.py measure the same thing with it."""
    baseline = peak = rss_bytes(pid)
    pings: list[float] = []
    statuses: list[int] = []
    bad_pings: list[int] = []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.005)

    def pinger() -> None:
        while not done.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            conn.request("GET", "/ping")
            response = conn.getresponse()
            response.read()
            pings.append(time.perf_counter() - started)
            if response.status != 200:
                bad_pings.append(response.status)
            conn.close()
            time.sleep(0.05)

    def batch() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv", "Accept": accept})
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
        conn.close()

    watchers = [threading.Thread(target=sample), threading.Thread(target=pinger)]
    posts = [threading.Thread(target=batch) for _ in range(batches)]
    started = time.perf_counter()
    for thread in watchers + posts:
        thread.start()
    for thread in posts:
        thread.join()
    wall = time.perf_counter() - started
    done.set()
    for thread in watchers:
        thread.join()
    assert pings and not bad_pings, f"/ping answered {bad_pings}"
    return BatchLoad(sorted(statuses), peak - baseline, max(pings), wall)
