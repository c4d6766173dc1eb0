"""Run `dbt build` for one layer as a subprocess, streaming dbt's output into the task log.

dbt runs as its own process (it may live in its own virtualenv, and dbt's in-process runner is not safe to
call concurrently), with:

- the executable from ``dbt["executable"]``, overridden by PLATFORMGEN_DBT_EXECUTABLE;
- the project in ``<project_root>/<project_subdir>``, the root overridden by PLATFORMGEN_PROJECT_ROOT;
- ``build --select path:models/<layer> --project-dir <project> --profiles-dir <project>``;
- DBT_SEND_ANONYMOUS_USAGE_STATS=false and DBT_USE_COLORS=false;
- the warehouse connection the platform config resolves to (fields, Airflow connection or
  PLATFORMGEN_WAREHOUSE_URL) exported as PLATFORMGEN_WAREHOUSE_HOST, _PORT, _USER, _DBNAME, _SSLMODE and
  DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD (the DBT_ENV_SECRET_ prefix makes dbt scrub it from its logs),
  for profiles.yml to read with env_var(); variables already set in the environment win.

A non-zero exit raises DbtBuildError whose message carries dbt's own error lines and summary.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("platformgen.runtime.dbt")

EXECUTABLE_ENV = "PLATFORMGEN_DBT_EXECUTABLE"
PROJECT_ROOT_ENV = "PLATFORMGEN_PROJECT_ROOT"
#: Environment variables handed to dbt with the resolved warehouse connection.
WAREHOUSE_ENV = {
    "host": "PLATFORMGEN_WAREHOUSE_HOST",
    "port": "PLATFORMGEN_WAREHOUSE_PORT",
    "user": "PLATFORMGEN_WAREHOUSE_USER",
    "dbname": "PLATFORMGEN_WAREHOUSE_DBNAME",
    "sslmode": "PLATFORMGEN_WAREHOUSE_SSLMODE",
    "password": "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD",
}
MAX_ERROR_LINES = 40
MAX_ERROR_CHARS = 6000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:\s{1,2}|$)")
_ERRORISH = re.compile(r"ERROR|FAIL|Compilation Error|Database Error|Runtime Error|Parsing Error|Encountered an error")
_SUMMARY = re.compile(r"^(Completed with \d+ error|Done\. PASS=)")
_TERMINATE_GRACE_SECONDS = 15


class DbtError(RuntimeError):
    """dbt could not be started: the message says which setting to change."""


class DbtBuildError(RuntimeError):
    """dbt ran and failed; the message holds dbt's error lines and summary."""

    def __init__(self, message: str, returncode: int, lines: list[str]) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.lines = lines


@dataclass
class DbtResult:
    """A finished dbt invocation."""

    command: list[str]
    returncode: int
    lines: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """dbt's `Done. PASS=...` line, if it printed one."""
        return next((line for line in reversed(self.lines) if line.startswith("Done.")), "")


def project_dir(dbt: Mapping[str, Any]) -> Path:
    """The dbt project folder: PLATFORMGEN_PROJECT_ROOT (or dbt["project_root"]) / dbt["project_subdir"]."""
    root = os.environ.get(PROJECT_ROOT_ENV) or str(dbt.get("project_root") or "")
    if not root:
        raise DbtError(f"no project root: set {PROJECT_ROOT_ENV} or orchestration.project_root in the spec")
    return Path(root) / str(dbt.get("project_subdir") or "dbt")


def resolve_executable(dbt: Mapping[str, Any]) -> str:
    """The full path of the dbt executable, or DbtError naming the setting to change."""
    name = os.environ.get(EXECUTABLE_ENV) or str(dbt.get("executable") or "dbt")
    source = EXECUTABLE_ENV if os.environ.get(EXECUTABLE_ENV) else "orchestration.dbt_executable"
    found = shutil.which(name)
    if found is None:
        raise DbtError(
            f"dbt executable '{name}' (from {source}) was not found or is not executable: install dbt-postgres "
            f"there, or set {EXECUTABLE_ENV} (or orchestration.dbt_executable in the spec) to the dbt of its "
            "virtualenv, e.g. /opt/dbt-venv/bin/dbt"
        )
    return found


def build_command(executable: str, project: Path, layer: str) -> list[str]:
    """`dbt build` of the models under models/<layer>."""
    return [
        executable,
        "build",
        "--select",
        f"path:models/{layer}",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    ]


def warehouse_env(platform: Mapping[str, Any] | None) -> dict[str, str]:
    """The resolved warehouse connection as the variables profiles.yml reads; {} when it cannot be resolved."""
    if not platform or "warehouse" not in platform:
        return {}
    from platformgen.runtime.settings import ConfigError, warehouse_params

    try:
        params = warehouse_params(dict(platform))
    except ConfigError as exc:
        log.warning("warehouse settings not passed to dbt (%s); profiles.yml must find them itself", exc)
        return {}
    values = {
        "host": params.host,
        "port": str(params.port),
        "user": params.user,
        "dbname": params.dbname,
        "sslmode": params.sslmode,
        "password": params.password,
    }
    return {WAREHOUSE_ENV[key]: value for key, value in values.items()}


def dbt_environment(platform: Mapping[str, Any] | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the dbt process."""
    env = dict(os.environ if base is None else base)
    for name, value in warehouse_env(platform).items():
        env.setdefault(name, value)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.setdefault("DBT_USE_COLORS", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def clean_line(raw: str) -> str:
    """A dbt output line without colour codes, trailing whitespace and the leading HH:MM:SS timestamp."""
    return _TIMESTAMP.sub("", _ANSI.sub("", raw).rstrip())


def error_excerpt(lines: list[str]) -> list[str]:
    """dbt's own account of a failure: the error lines, the `Completed with N errors` block and the summary."""
    picked: list[str] = []
    summary_start = next((i for i, line in enumerate(lines) if _SUMMARY.match(line.strip())), None)
    for i, line in enumerate(lines):
        if summary_start is not None and i >= summary_start:
            break
        if _ERRORISH.search(line):
            picked.append(line)
    if summary_start is not None:
        # The block after "Completed with ..." names each failing node with dbt's message below it.
        picked.extend(line for line in lines[summary_start:] if line.strip())
    elif not picked:
        picked = [line for line in lines[-15:] if line.strip()]
    if len(picked) > MAX_ERROR_LINES:
        picked = [*picked[: MAX_ERROR_LINES - 1], f"... ({len(picked) - MAX_ERROR_LINES + 1} more lines in the log)"]
    return picked


def run_dbt(
    command: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> DbtResult:
    """Run dbt, sending each output line to `echo` (the task log) as it arrives; terminate it if interrupted."""
    echo = echo or log.info
    lines: list[str] = []
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=str(cwd) if cwd else None,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )
    try:
        stream = process.stdout
        if stream is None:  # pragma: no cover - stdout=PIPE always gives a stream
            raise DbtError("dbt's output could not be captured")
        for raw in stream:
            line = clean_line(raw)
            lines.append(line)
            echo(line)
        returncode = process.wait()
    finally:
        # An Airflow timeout or kill arrives as an exception here: do not leave dbt running.
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_TERMINATE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return DbtResult(command, returncode, lines)


def dbt_build(
    dbt: Mapping[str, Any],
    layer: str,
    *,
    platform: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
) -> DbtResult:
    """`dbt build` of one layer; raises DbtError when dbt cannot start, DbtBuildError when it fails."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", layer):
        raise ValueError(f"invalid layer name {layer!r}")
    project = project_dir(dbt)
    if not (project / "dbt_project.yml").is_file():
        raise DbtError(
            f"no dbt project at {project} (dbt_project.yml missing): deploy the compiled dbt/ folder there, "
            f"or set {PROJECT_ROOT_ENV} (or orchestration.project_root in the spec) to the folder that contains it"
        )
    executable = resolve_executable(dbt)
    command = build_command(executable, project, layer)
    log.info("running %s", " ".join(command))
    try:
        result = run_dbt(command, env=dbt_environment(platform), cwd=project, echo=echo)
    except OSError as exc:
        raise DbtError(
            f"cannot start dbt '{executable}': {exc}; set {EXECUTABLE_ENV} or orchestration.dbt_executable"
        ) from exc
    if result.returncode != 0:
        excerpt = error_excerpt(result.lines)
        message = f"dbt build of layer '{layer}' failed (exit code {result.returncode}):\n" + "\n".join(excerpt)
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS] + "\n... (see the task log)"
        raise DbtBuildError(message, result.returncode, result.lines)
    log.info("dbt build of layer '%s' succeeded: %s", layer, result.summary or "done")
    return result
