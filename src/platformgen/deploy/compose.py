"""`platformgen up` / `down` on Docker Compose: compile when stale, `.env`, `docker compose up -d --wait`, bootstrap.

The compose file used is the one compile writes for the output folder: `./docker-compose.yml` for the default
output `generated`, else `<output>/docker-compose.yml`; `.env` and the runtime wheel (`dist/`) sit next to it.
Only this module (and the local mode) runs processes; every command goes through `run_command`, and `--dry-run`
prints the same command lines instead of running them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from rich.console import Console

from platformgen.compiler import Compiled, compile_spec, root_folder, write_compiled
from platformgen.errors import PlatformgenError
from platformgen.plan.build import Plan
from platformgen.targets.compose import COMPOSE_FILE
from platformgen.targets.compose_env import (
    AIRFLOW_ADMIN_PASSWORD,
    OPENMETADATA_JWT_TOKEN,
    POSTGRES_PASSWORD,
    SUPERSET_ADMIN_PASSWORD,
    airflow_admin_needed,
    env_name,
    env_variables,
    warehouse_vars,
)

DOCKER_TIMEOUT = 30  # seconds for `docker info` / `docker compose version`
WORKFLOW_ORDER = ("warehouse", "storage", "dbt", "airflow")  # services before what refers to them


@dataclass(frozen=True)
class Layout:
    """Where the stack's files are: the compose file, `.env` and `dist/` next to it, and the compiled output."""

    output: Path
    compose_dir: Path

    @property
    def compose_file(self) -> Path:
        return self.compose_dir / COMPOSE_FILE

    @property
    def env_file(self) -> Path:
        return self.compose_dir / ".env"

    @property
    def wheel_dir(self) -> Path:
        return self.compose_dir / "dist"


def layout(output: Path) -> Layout:
    """The layout for a compiled output folder (see the module docstring)."""
    root = root_folder(output)
    return Layout(output, root if root is not None else output)


def display(path: Path) -> str:
    """A path as printed: relative to the working directory, so the output does not depend on the machine."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive
        return str(Path(path).resolve())


def docker_problem() -> str | None:
    """Why Docker cannot be used (no client, no reachable engine, no compose plugin), or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "`docker` was not found on PATH"
    checks = (
        (["info"], "the Docker engine is not reachable"),
        (["compose", "version"], "Docker Compose v2 is missing"),
    )
    for args, what in checks:
        try:
            proc = subprocess.run([docker, *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what} (`docker {' '.join(args)}`: {type(exc).__name__})"
        if proc.returncode != 0:
            lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            detail = lines[-1] if lines else f"exit code {proc.returncode}"
            return f"{what} (`docker {' '.join(args)}` failed: {detail})"
    return None


def run_command(command: Sequence[str]) -> int:
    """Run a command with the terminal attached; its exit code."""
    try:
        return subprocess.run(list(command), check=False).returncode
    except OSError as exc:
        raise PlatformgenError(f"cannot run {command[0]}: {exc}") from exc


def compose_command(lay: Layout, *args: str) -> list[str]:
    return ["docker", "compose", "-f", display(lay.compose_file), *args]


def platformgen_source() -> Path | None:
    """The source checkout platformgen runs from (an editable or local-folder install), else None."""
    try:
        text = metadata.distribution("platformgen").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    url = str(json.loads(text).get("url", "")) if text else ""
    if not url.startswith("file://"):
        return None
    path = Path(unquote(urlparse(url).path))
    return path if (path / "pyproject.toml").is_file() else None


def wheel_command(lay: Layout) -> list[str] | None:
    """Build the runtime wheel into dist/ from the source checkout; None when platformgen was not installed from one."""
    source = platformgen_source()
    if source is None:
        return None
    pip = [display(Path(sys.executable)), "-m", "pip", "wheel", "--no-deps", "--quiet"]
    return [*pip, "--wheel-dir", display(lay.wheel_dir), display(source)]


def workflows(compiled: Compiled) -> list[str]:
    """Container paths of the compiled OpenMetadata workflows (openmetadata/**.yaml), services before their users."""
    found = sorted(p.removeprefix("openmetadata/") for p in compiled.files if p.startswith("openmetadata/"))
    found = [rel for rel in found if rel.endswith((".yaml", ".yml"))]
    rank = {name: i for i, name in enumerate(WORKFLOW_ORDER)}
    found.sort(key=lambda rel: (rank.get(Path(rel).stem, len(rank)), rel))
    root = compiled.plan.orchestration.project_root.rstrip("/")
    return [f"{root}/openmetadata/{rel}" for rel in found]


def _stale(spec: Path, output: Path) -> tuple[Compiled, bool]:
    compiled = compile_spec(spec)
    return compiled, not all(report.clean for _, report in write_compiled(compiled, output, check=True))


def _line(console: Console, text: str) -> None:
    console.out(text, highlight=False)


@dataclass(frozen=True)
class UpSteps:
    """What `up` does, decided before anything runs (so that --dry-run prints exactly the commands)."""

    compiled: Compiled
    stale: bool
    builds_airflow: bool  # false with the Kubernetes executor: Airflow then runs from the Helm chart
    wheel: list[str] | None
    up: list[str]
    bootstrap: list[list[str]]  # must succeed
    ingest: list[list[str]]  # OpenMetadata workflows: best effort, need the ingestion-bot token


def plan_up(spec: Path, lay: Layout) -> UpSteps:
    """The steps of `up` for a spec and a layout."""
    compiled, stale = _stale(spec, lay.output)
    compose = partial(compose_command, lay)
    builds_airflow = compiled.plan.orchestration.executor != "kubernetes"
    # what to bootstrap follows the compiled files, which is what the output folder holds once up has compiled
    bootstrap = [compose("run", "--rm", "minio-init")]
    if "superset/metadata.yaml" in compiled.files:
        bootstrap.append(compose("run", "--rm", "superset-import"))
    return UpSteps(
        compiled=compiled,
        stale=stale,
        builds_airflow=builds_airflow,
        wheel=wheel_command(lay) if builds_airflow else None,
        up=compose("up", "-d", "--wait", "--build", "--remove-orphans"),
        bootstrap=bootstrap,
        ingest=[compose("run", "--rm", "openmetadata-ingestion", "ingest", "-c", w) for w in workflows(compiled)],
    )


def up_compose(spec: Path, output: Path, *, dry_run: bool = False, console: Console) -> int:
    """Bring the stack up (or, with dry_run, print the commands); the exit code."""
    lay = layout(output)
    if not dry_run and (problem := docker_problem()) is not None:
        _line(console, f"Docker is not available: {problem}. To run without Docker: platformgen up --local")
        return 1
    steps = plan_up(spec, lay)
    if not dry_run:
        return _run_up(console, spec, lay, steps)
    _print_dry_run(console, spec, lay, steps)
    print_services(console, steps.compiled.plan, lay)
    return 0


def _print_dry_run(console: Console, spec: Path, lay: Layout, steps: UpSteps) -> None:
    _line(console, f"# platformgen up {display(spec)} (dry run: nothing is written, no command runs)")
    if steps.stale:
        _line(console, shlex.join(["platformgen", "compile", display(spec), "-o", display(lay.output)]))
    else:
        _line(console, f"# {display(lay.output)} is up to date")
    env_note = "exists: kept as it is" if lay.env_file.exists() else "missing: created with fresh random values"
    _line(console, f"# {display(lay.env_file)} {env_note} (mode 0600)")
    if steps.wheel:
        _line(console, shlex.join(steps.wheel))
    elif steps.builds_airflow:
        _line(console, f"# using the platformgen wheel in {display(lay.wheel_dir)}")
    for command in [steps.up, *steps.bootstrap]:
        _line(console, shlex.join(command))
    if steps.ingest:
        _line(console, f"# OpenMetadata ingestion (needs {OPENMETADATA_JWT_TOKEN} in {display(lay.env_file)}):")
    for command in steps.ingest:
        _line(console, shlex.join(command))


def _run_up(console: Console, spec: Path, lay: Layout, steps: UpSteps) -> int:
    from platformgen.deploy.envfile import ensure_env_file, read_env

    plan = steps.compiled.plan
    if steps.stale:
        write_compiled(steps.compiled, lay.output)
        _line(console, f"compiled {display(spec)} -> {display(lay.output)}")
    env = ensure_env_file(lay.env_file, env_variables(plan), plan.name)
    if env.created:
        _line(console, f"created {display(lay.env_file)} with fresh random values (mode 0600)")
    elif env.added:
        _line(console, f"added to {display(lay.env_file)}: {', '.join(env.added)}")
    if steps.wheel is not None:
        lay.wheel_dir.mkdir(parents=True, exist_ok=True)
        if run_command(steps.wheel) != 0:
            raise PlatformgenError(f"building the platformgen wheel into {display(lay.wheel_dir)} failed")
    elif steps.builds_airflow and not any(lay.wheel_dir.glob("platformgen-*.whl")):
        raise PlatformgenError(
            f"no platformgen wheel in {display(lay.wheel_dir)}: put one there "
            f"(pip download --no-deps platformgen -d {display(lay.wheel_dir)}, or pip wheel of a checkout)"
        )
    if (code := run_command(steps.up)) != 0:
        _line(console, f"docker compose up failed (exit {code}): see {shlex.join(compose_command(lay, 'logs'))}")
        return code
    failed = [shlex.join(command) for command in steps.bootstrap if run_command(command) != 0]
    if steps.ingest and not read_env(lay.env_file).get(OPENMETADATA_JWT_TOKEN):
        _line(console, f"skipped OpenMetadata ingestion: set {OPENMETADATA_JWT_TOKEN} in .env, then run platformgen up")
    else:
        for command in steps.ingest:
            if run_command(command) != 0:
                _line(console, f"warning: OpenMetadata ingestion failed: {shlex.join(command)}")
    print_services(console, plan, lay)
    if failed:
        _line(console, "the stack is up, but bootstrap failed: " + "; ".join(failed))
        return 1
    return 0


def print_services(console: Console, plan: Plan, lay: Layout) -> None:
    """The table of service URLs and logins; credentials are named by their .env variable, never shown."""
    ports = plan.platform.ports
    env = display(lay.env_file)
    admin = AIRFLOW_ADMIN_PASSWORD if airflow_admin_needed(plan) else None
    if admin is None:
        user = next(u for u in plan.orchestration.users if u.role == "Admin")
        airflow_login = f"{user.username} / {env_name(user.password)}"
    else:
        airflow_login = f"admin / {admin}"
    rows = [
        (
            "PostgreSQL",
            f"postgresql://localhost:{ports.postgres}",
            f"postgres / {POSTGRES_PASSWORD}; {_warehouse_login(plan)}",
        ),
        ("MinIO console", f"http://localhost:{ports.minio_console}", _minio_login(plan)),
        ("MinIO S3 API", f"http://localhost:{ports.minio_api}", "same as the console"),
    ]
    if plan.orchestration.executor != "kubernetes":
        rows.append(("Airflow", f"http://localhost:{ports.airflow}", airflow_login))
    if plan.orchestration.executor == "celery":
        rows.append(("Flower", "http://localhost:5555", "admin / FLOWER_PASSWORD"))
    rows += [
        ("Superset", f"http://localhost:{ports.superset}", f"admin / {SUPERSET_ADMIN_PASSWORD}"),
        (
            "OpenMetadata",
            f"http://localhost:{ports.openmetadata}",
            "admin: OpenMetadata's initial login, change it first",
        ),
        ("Elasticsearch", f"http://127.0.0.1:{ports.elasticsearch}", "no login (bound to 127.0.0.1)"),
    ]
    header = ("service", "URL", "login (password: the variable in .env)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    _line(console, "")
    for row in [header, *rows]:
        _line(console, f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}")
    _line(console, f"credentials: {env} (never printed; keep it private)")
    if plan.orchestration.executor == "kubernetes":
        values = display(lay.output / "airflow" / "helm-values.yaml")
        _line(console, f"Airflow runs on Kubernetes: helm install with {values} (see docs/deploy.md)")


def _warehouse_login(plan: Plan) -> str:
    wh = warehouse_vars(plan)
    return f"warehouse: {wh.user_var} / {wh.password_var}"


def _minio_login(plan: Plan) -> str:
    user = env_name(plan.storage.access_key) or plan.storage.access_key
    password = env_name(plan.storage.secret_key) or "storage.secret_key"
    return f"{user} / {password} (both in .env)"


def down_compose(spec: Path, output: Path, *, volumes: bool = False, dry_run: bool = False, console: Console) -> int:
    """Stop the stack (with volumes=True also delete its data); the exit code. `spec` is unused: the compose file
    already names the project."""
    del spec
    lay = layout(output)
    command = compose_command(lay, "down", "--remove-orphans", *(["--volumes"] if volumes else []))
    if dry_run:
        _line(console, shlex.join(command))
        return 0
    if (problem := docker_problem()) is not None:
        _line(console, f"Docker is not available: {problem}. The local mode stops with: platformgen down --local")
        return 1
    if not lay.compose_file.is_file():
        raise PlatformgenError(f"no {display(lay.compose_file)}: nothing to stop (compile and `platformgen up` first)")
    if not lay.env_file.is_file():
        raise PlatformgenError(f"no {display(lay.env_file)}: the stack was not started by `platformgen up`")
    if volumes:
        _line(console, "deleting the stack's volumes: all its data")
    return run_command(command)
