"""The layers the folders show hold: who may import whom, and what the inference image carries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RFM = REPO / "rfm"

# Package -> the rfm packages it may import (besides itself, rfm.errors, rfm.config and rfm.__init__).
ALLOWED: dict[str, set[str]] = {
    "data": set(),
    "cloud": {"data"},
    "model": {"data"},  # train_model reads an RfmResult
    "serving": {"model"},
    "server": {"model", "serving"},
    "service": {"data", "cloud", "model", "serving"},
    "cli": {"service", "data", "cloud", "model", "server", "serving"},
    "dashboard": {"service", "data", "cloud", "model", "serving"},
}
# The faces reach the data, models and scoring through rfm.service; from a lower layer they import only
# types, constants and parsing helpers (and the server, which `rfm serve` starts), never a job.
FACE_IMPORTS_BELOW_SERVICE: set[str] = {
    "rfm.data.columns", "rfm.data.query", "rfm.data.sources", "rfm.cloud.athena", "rfm.model",
    "rfm.model.store", "rfm.model.sweep", "rfm.server.__main__", "rfm.server.settings", "rfm.serving.clients",
}
# ...and of those modules, only these names (types, constants, parsers; athena_config builds a config).
FACE_NAMES_BELOW_SERVICE: set[str] = {
    "parse_map_args", "CANONICAL_COLUMNS", "RETURNS_POLICIES", "ReturnsPolicy", "SourceOptions", "expand_paths",
    "athena_config", "ModelStore", "SegmentModel", "RevenueConcentration", "NOT_SEGMENTED_NAME", "VersionSummary",
    "SweepResult", "ScoringClient", "configure_logging", "serve", "DEFAULT_MODEL_DIR", "ServerSettings",
}


def _imported_names(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every `from rfm.x import name` in a file."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rfm."):
            found.update((node.module, alias.name) for alias in node.names)
    return found


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "rfm")
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "rfm" else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package: str) -> None:
    allowed = ALLOWED[package] | {package, "errors", "config", "segments", "__version__"}
    for path in (RFM / package).rglob("*.py"):
        for module in _imports(path):
            target = _package(module)
            assert target is None or target in allowed, f"{path.relative_to(REPO)} imports {module}"


def test_faces_do_their_jobs_through_the_service() -> None:
    faces = [*(RFM / "cli").rglob("*.py"), *(RFM / "dashboard").rglob("*.py"), *(REPO / "pages").glob("*.py"),
             REPO / "streamlit_app.py"]
    for path in faces:
        for module in _imports(path):
            if _package(module) in {"data", "cloud", "model", "server", "serving"}:
                assert module in FACE_IMPORTS_BELOW_SERVICE, f"{path.relative_to(REPO)} imports {module}"
        for module, name in _imported_names(path):
            if _package(module) in {"data", "cloud", "model", "server", "serving"}:
                assert name in FACE_NAMES_BELOW_SERVICE, f"{path.relative_to(REPO)} imports {name} from {module}"


def test_only_the_dashboard_imports_streamlit() -> None:
    for path in RFM.rglob("*.py"):
        if "dashboard" not in path.relative_to(RFM).parts:
            assert not any(m.split(".")[0] == "streamlit" for m in _imports(path)), path


def test_the_server_imports_no_data_engine_dashboard_or_cli() -> None:
    """What `python -m rfm.server serve` loads: the image installs only requirements-serve.txt."""
    code = (
        "import sys\n"
        "import rfm.server.__main__, rfm.server.app\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'altair', 'plotly', 'duckdb', "
        "'sqlglot', 'pyathena', 'boto3') or m.startswith(('rfm.data', 'rfm.cloud', 'rfm.dashboard', 'rfm.service', "
        "'rfm.cli')))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
