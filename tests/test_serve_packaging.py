"""deploy/push-image.sh with recording stand-ins for aws and docker; the CLI stays light to import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $1 $2" in
  "aws sts get-caller-identity") echo 123456789012 ;;
  "aws ecr describe-repositories") [[ -n "${REPO_EXISTS:-}" ]] || exit 254 ;;
  "aws ecr get-login-password") echo secret-token ;;
  "docker buildx version") exit 1 ;;
  "docker login --username") cat > /dev/null ;;  # reads the password from stdin, like docker
esac
"""


def run_push(tmp_path: Path, *args: str, repo_exists: bool) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("aws", "docker"):
        (bin_dir / tool).write_text(FAKE)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "AWS_REGION": "eu-west-1",
           "HOME": str(tmp_path)}
    if repo_exists:
        env["REPO_EXISTS"] = "1"
    done = subprocess.run(["bash", str(REPO / "deploy" / "push-image.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=30)
    return done, calls.read_text().splitlines()


def test_push_image_creates_the_repository_logs_in_builds_and_pushes(tmp_path: Path) -> None:
    done, calls = run_push(tmp_path, "rfm-segments", "v7", repo_exists=False)
    assert done.returncode == 0, done.stderr
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rfm-segments:v7"
    assert done.stdout.strip() == uri
    tools = [c.split()[:3] for c in calls]
    assert ["aws", "ecr", "create-repository"] in tools
    login = next(c for c in calls if c.startswith("docker login"))
    assert "--password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com" in login
    build = next(c for c in calls if c.startswith("docker build "))
    current = (REPO / "models" / "CURRENT").read_text().strip()
    assert f"-t {uri}" in build and f"MODEL_VERSION={current}" in build and "linux/amd64" in build
    order = [c.split()[1] for c in calls if c.startswith("docker") and c.split()[1] in ("login", "build", "push")]
    assert order == ["login", "build", "push"]


def test_push_image_reuses_an_existing_repository(tmp_path: Path) -> None:
    done, calls = run_push(tmp_path, repo_exists=True)
    assert done.returncode == 0, done.stderr
    current = (REPO / "models" / "CURRENT").read_text().strip()
    assert done.stdout.strip().endswith(f"/rfm-segments:{current}")
    assert not any("create-repository" in c for c in calls)


def test_cli_command_modules_import_no_heavy_library() -> None:
    code = ("import sys, rfm.cli.serve_commands, rfm.serving.clients\n"
            "heavy = [m for m in ('fastapi', 'uvicorn', 'boto3', 'sklearn', 'rfm.model', 'rfm.server.app') "
            "if m in sys.modules]\n"
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def model_stage_script() -> str:
    """The shell of the Dockerfile's first stage (`FROM ... AS model`): its RUN instruction."""
    lines = (REPO / "Dockerfile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("FROM ") and line.endswith(" AS model"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("FROM "))
    stage = "\n".join(lines[start:end]).replace("\\\n", " ")
    [run] = [line.removeprefix("RUN ").strip() for line in stage.splitlines() if line.startswith("RUN ")]
    return run


def run_model_stage(tmp_path: Path, models: Path, version: str = "") -> tuple[subprocess.CompletedProcess[str], Path]:
    """The model stage's RUN in bash, with /tmp/models and /opt/ml/model moved under tmp_path."""
    out = tmp_path / "opt" / "ml" / "model"
    script = model_stage_script().replace("/tmp/models", str(models)).replace("/opt/ml/model", str(out))
    done = subprocess.run(["bash", "-ec", script], env={**os.environ, "MODEL_VERSION": version},
                          capture_output=True, text=True, timeout=30)
    return done, out


def test_the_model_stage_copies_the_whole_version(tmp_path: Path) -> None:
    """The image gets the promoted version's files, and the server verifies them as a whole."""
    from rfm.model import ModelStore, load_model_dir

    done, out = run_model_stage(tmp_path, REPO / "models")
    assert done.returncode == 0, done.stderr
    current = (REPO / "models" / "CURRENT").read_text().strip()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "metadata.json", "model.skops"]
    assert load_model_dir(out).version == current == ModelStore(REPO / "models").load().version


def test_the_model_stage_ships_a_signature_and_refuses_an_old_format_version(tmp_path: Path) -> None:
    import shutil

    from rfm.model import ModelStore, load_model_dir

    current = (REPO / "models" / "CURRENT").read_text().strip()
    models = tmp_path / "models"
    signed = ModelStore(models, signing_key="image key")
    version = signed.save(ModelStore(REPO / "models").load())
    done, out = run_model_stage(tmp_path / "a", models, version)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "manifest.sig", "metadata.json", "model.skops"]
    assert load_model_dir(out, signing_key="image key").version == version
    old = models / "old"
    shutil.copytree(REPO / "models" / current, old)
    for name in ("manifest.json", "model.skops"):
        (old / name).unlink()
    (old / "model.joblib").write_bytes(b"not to be shipped")
    done, _ = run_model_stage(tmp_path / "b", models, "old")
    assert done.returncode != 0  # the build fails rather than ship a model the server would refuse
