"""`platformgen up` / `down` on Docker Compose, without a Docker engine: dry run, Docker detection, `.env`.

A fake `docker` script on PATH stands in for the client where the commands must really run.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from platformgen.cli import app
from platformgen.compiler import compile_spec
from platformgen.deploy import compose as deploy
from platformgen.deploy.envfile import ensure_env_file, fernet_key, read_env
from platformgen.targets.compose_env import env_variables

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "up_dry_run.txt"
runner = CliRunner()
FAKE_DOCKER = """#!/bin/sh
echo "$@" >> "$FAKE_DOCKER_LOG"
if [ "$1" = info ] && [ -n "$FAKE_DOCKER_INFO_ERROR" ]; then
  echo "$FAKE_DOCKER_INFO_ERROR" >&2
  exit 1
fi
if [ "$1 $2" = "compose version" ] && [ -n "$FAKE_DOCKER_NO_COMPOSE" ]; then
  echo "docker: unknown command: docker compose" >&2
  exit 1
fi
exit 0
"""


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), f"traceback: {result.exception!r}"
    return result.exit_code, result.stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the repository's specs/, as the working directory; the runtime wheel source is `.`."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'platformgen'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(deploy, "platformgen_source", lambda: tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    return tmp_path


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` that logs its arguments and succeeds (`docker info` fails when FAKE_DOCKER_INFO_ERROR is set)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    log = tmp_path / "docker.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.delenv("FAKE_DOCKER_INFO_ERROR", raising=False)
    monkeypatch.delenv("FAKE_DOCKER_NO_COMPOSE", raising=False)
    return log


# --------------------------------------------------------------------------- dry run


def test_up_dry_run_matches_golden(project: Path, update_golden: bool) -> None:
    assert invoke("compile", "specs")[0] == 0
    code, out = invoke("up", "--dry-run")
    assert code == 0
    if update_golden:
        GOLDEN.write_text(out, encoding="utf-8")
    assert out == GOLDEN.read_text(encoding="utf-8"), "run pytest --update-golden and review the diff"
    assert str(project) not in out
    assert not (project / ".env").exists(), "a dry run wrote .env"


def test_up_dry_run_writes_nothing_and_shows_the_compile(project: Path) -> None:
    code, out = invoke("up", "specs", "-o", "out", "--dry-run")
    assert code == 0
    assert out.splitlines()[1] == "platformgen compile specs -o out"
    assert "docker compose -f out/docker-compose.yml up -d --wait --build --remove-orphans" in out
    assert "--wheel-dir out/dist ." in out
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml", "specs"]
    assert invoke("down", "-o", "out", "--volumes", "--dry-run") == (
        0,
        "docker compose -f out/docker-compose.yml down --remove-orphans --volumes\n",
    )


# --------------------------------------------------------------------------- no Docker


def test_up_without_docker_on_path(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = project / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out = invoke("up")
    assert code == 1
    assert out.count("\n") == 1, f"not one line: {out!r}"
    assert "`docker` was not found on PATH" in out
    assert "platformgen up --local" in out
    assert not (project / ".env").exists()
    assert not (project / "generated").exists()
    assert invoke("down")[0] == 1


def test_up_when_docker_info_fails(project: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_INFO_ERROR", "Cannot connect to the Docker daemon. Is the docker daemon running?")
    code, out = invoke("up")
    assert code == 1
    assert out == (
        "Docker is not available: the Docker engine is not reachable (`docker info` failed: Cannot connect to the "
        "Docker daemon. Is the docker daemon running?). To run without Docker: platformgen up --local\n"
    )
    assert fake_docker.read_text() == "info\n"


def test_up_without_the_compose_plugin(project: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_NO_COMPOSE", "1")
    code, out = invoke("up")
    assert code == 1
    assert out == (
        "Docker is not available: Docker Compose v2 is missing (`docker compose version` failed: docker: unknown "
        "command: docker compose). To run without Docker: platformgen up --local\n"
    )
    assert not (project / ".env").exists()


def _engine_absent() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return True


@pytest.mark.skipif(not _engine_absent(), reason="needs the real docker client without a reachable engine")
def test_up_with_the_real_client_and_no_engine(project: Path) -> None:
    code, out = invoke("up")
    assert code == 1
    assert out.count("\n") == 1
    assert out.startswith("Docker is not available: the Docker engine is not reachable")
    assert "platformgen up --local" in out
    assert not (project / ".env").exists()


# --------------------------------------------------------------------------- a full run against a fake client


def test_up_and_down_run_the_commands(project: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy, "platformgen_source", lambda: None)
    (project / "dist").mkdir()
    (project / "dist" / "platformgen-0.1.0-py3-none-any.whl").write_bytes(b"")
    code, out = invoke("up")
    assert code == 0, out
    calls = fake_docker.read_text().splitlines()
    assert calls[:2] == ["info", "compose version"]
    assert calls[2:] == [
        "compose -f docker-compose.yml up -d --wait --build --remove-orphans",
        "compose -f docker-compose.yml run --rm minio-init",
        "compose -f docker-compose.yml run --rm superset-import",
    ], "OpenMetadata ingestion runs only once OPENMETADATA_JWT_TOKEN is set"
    assert "skipped OpenMetadata ingestion: set OPENMETADATA_JWT_TOKEN" in out
    env_file = project / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = read_env(env_file)
    for secret in (v for k, v in values.items() if len(v) >= 32):
        assert secret not in out, "a secret was printed"
    assert "Airflow        http://localhost:8080" in out
    assert "credentials: .env" in out
    assert invoke("compile", "--check")[0] == 0, "up compiled the stale output"

    before = env_file.read_bytes()
    with env_file.open("a") as handle:
        handle.write("OPENMETADATA_JWT_TOKEN=token-from-the-ui\n")
    fake_docker.write_text("")
    assert invoke("up")[0] == 0
    assert env_file.read_bytes().startswith(before), ".env was rewritten"
    ingest = [c for c in fake_docker.read_text().splitlines() if "openmetadata-ingestion" in c]
    assert [c.rsplit("/", 1)[1] for c in ingest] == ["warehouse.yaml", "storage.yaml", "dbt.yaml", "airflow.yaml"]

    fake_docker.write_text("")
    assert invoke("down", "--volumes")[0] == 0
    assert fake_docker.read_text().splitlines()[-1] == "compose -f docker-compose.yml down --remove-orphans --volumes"


def test_up_fails_when_compose_or_bootstrap_fails(
    project: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "platformgen_source", lambda: None)
    monkeypatch.setattr(deploy, "run_command", lambda command: 17 if "up" in command else 0)
    (project / "dist").mkdir()
    (project / "dist" / "platformgen-0.1.0-py3-none-any.whl").write_bytes(b"")
    code, out = invoke("up")
    assert code == 17
    assert "docker compose up failed (exit 17): see docker compose -f docker-compose.yml logs" in out

    monkeypatch.setattr(deploy, "run_command", lambda command: 1 if "minio-init" in command else 0)
    code, out = invoke("up")
    assert code == 1
    assert out.splitlines()[-1] == (
        "the stack is up, but bootstrap failed: docker compose -f docker-compose.yml run --rm minio-init"
    )


# --------------------------------------------------------------------------- .env


def test_env_file_fresh_private_and_never_overwritten(tmp_path: Path) -> None:
    plan = compile_spec(REPO / "specs").plan
    variables = env_variables(plan)
    first, second = tmp_path / "a" / ".env", tmp_path / "b" / ".env"
    assert ensure_env_file(first, variables, plan.name).created
    ensure_env_file(second, variables, plan.name)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    a, b = read_env(first), read_env(second)
    assert list(a) == [v.name for v in variables]
    for var in variables:
        if var.kind == "external":
            assert a[var.name] == "", f"{var.name} is an external setting: left for the user"
        elif var.kind == "value":
            assert a[var.name] == var.value
        else:
            assert a[var.name], f"{var.name} is empty"
            assert a[var.name] != b[var.name], f"{var.name} is not fresh"
    assert a["WAREHOUSE_HOST"] == "postgres"
    assert a["WAREHOUSE_PORT"] == "5432"
    assert len(a["POSTGRES_PASSWORD"]) == 32
    assert a["POSTGRES_PASSWORD"].isalnum()
    for key in ("AIRFLOW_FERNET_KEY", "OPENMETADATA_FERNET_KEY"):
        assert len(base64.urlsafe_b64decode(a[key])) == 32
        from cryptography.fernet import Fernet

        assert Fernet(a[key].encode()).decrypt(Fernet(a[key].encode()).encrypt(b"x")) == b"x"

    text = first.read_text()
    result = ensure_env_file(first, variables, plan.name)
    assert not result.created
    assert result.added == []
    assert first.read_text() == text, "an existing .env was changed"

    # a new variable is appended; existing values stay as the user left them
    first.write_text(text.replace(f"POSTGRES_PASSWORD={a['POSTGRES_PASSWORD']}", "POSTGRES_PASSWORD=mine"))
    partial = "\n".join(ln for ln in first.read_text().splitlines() if not ln.startswith("SUPERSET_SECRET_KEY="))
    first.write_text(partial + "\n")
    result = ensure_env_file(first, variables, plan.name)
    assert result.added == ["SUPERSET_SECRET_KEY"]
    after = read_env(first)
    assert after["POSTGRES_PASSWORD"] == "mine"
    assert after["SUPERSET_SECRET_KEY"]
    assert first.read_text().startswith(partial)


def test_fernet_keys_are_valid_and_distinct() -> None:
    keys = {fernet_key() for _ in range(5)}
    assert len(keys) == 5
    assert all(len(base64.urlsafe_b64decode(k)) == 32 for k in keys)


def test_env_is_git_ignored() -> None:
    for path in (".env", "generated/.env", "examples/minimal_csv/out/.env"):
        proc = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, capture_output=True, check=False)
        assert proc.returncode == 0, f"{path} must be git-ignored"
