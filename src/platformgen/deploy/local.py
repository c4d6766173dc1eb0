"""`platformgen up --local` and `platformgen down --local`: the compiled platform on embedded services, no Docker.

`up_local(spec, output, state_dir=..., warehouse_url=..., console=...)`:

1. compiles the spec and writes `output` when it is stale (as `platformgen compile` would, after the same
   check as `platformgen compile --check`);
2. syncs the compiled files into ``<state>/project`` (the deployed copy: dbt's target/ and GX's Data Docs are
   written there, never into the compiled output) and starts the services (`local_services`): the embedded
   PostgreSQL 16 (reused when it already runs) or the server of ``--warehouse-url``, and an S3 endpoint
   holding the objects of earlier runs;
3. creates the warehouse database, runs ``warehouse/bootstrap.sql`` (idempotent), and makes the sample data
   reachable (`local_sample`): source databases, the API replay server, landing files;
4. runs the DAGs with Airflow's ``dag.test()`` in a child process (`local_runner`) whose environment holds
   every setting the runtime reads: AIRFLOW_HOME and a SQLite metadata DB in the state folder,
   PLATFORMGEN_WAREHOUSE_URL, PLATFORMGEN_S3_ENDPOINT_URL, PLATFORMGEN_SOURCE_<NAME>_URL,
   PLATFORMGEN_API_<SOURCE>_BASE_URL, PLATFORMGEN_PROJECT_ROOT, PLATFORMGEN_DBT_EXECUTABLE (the dbt next to
   this Python), DBT_SEND_ANONYMOUS_USAGE_STATS=false, and a local value for every ``env:VAR`` the spec's
   storage, warehouse and sources reference (the real server's values for connection fields, dummy keys and
   tokens otherwise). SMTP_* and the Slack webhook variables are removed, so alerts are recorded and logged,
   never sent. Order: every ingestion DAG (sources in spec order), the transformation, the quality checks, the
   SLA monitor. Progress is shown with rich as the runner reports it;
5. writes the S3 objects back to the state folder, stops the S3 endpoint and the replay server, and prints the
   report (`local_report`). PostgreSQL keeps running for psql.

Returns 0 when every ingestion DAG and every dbt model succeeded (failed tests, expectations and SLA misses
are reported but expected with sample data), 1 otherwise.

Running it again is incremental and idempotent: the sample source databases are created once, landing files
are ingested once (ingestion_log), incremental tables and API re-reads skip the rows raw already has, and the
watermarks live in the warehouse.

`down_local(state_dir=..., wipe=..., console=...)` stops the embedded PostgreSQL; with ``wipe`` it also deletes
the state folder.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from platformgen.compiler import Compiled, compile_spec
from platformgen.deploy.local_report import DagOutcome, ReportContext, RunOutcome, print_report
from platformgen.deploy.local_sample import SampleSetup, prepare_samples, shown
from platformgen.deploy.local_services import (
    LOCAL_ACCESS_KEY,
    LOCAL_SECRET_KEY,
    PgService,
    S3Service,
    StateLayout,
    connect,
    pg_params,
    restore_objects,
    save_objects,
    start_postgres,
    start_s3,
    stop_postgres,
)
from platformgen.errors import PlatformgenError
from platformgen.plan.build import Plan
from platformgen.spec.models import PostgresSource

_ENV_REF = re.compile(r"^env:([A-Z_][A-Z0-9_]*)$")
#: The value local mode gives to env:VAR references that are not connection fields (API tokens, ...).
DUMMY_SECRET = "platformgen-local-sample"
#: Folders of the deployed project that runs write into; a sync keeps them.
RUNTIME_FOLDERS = ("dbt/target", "dbt/logs", "dbt/dbt_packages", "great_expectations/uncommitted")
#: The CLI's default --state folder.
DEFAULT_STATE = Path(".platformgen")
#: Compiled folders copied into the deployed project.
DEPLOYED = ("airflow", "dbt", "great_expectations", "warehouse")


# --------------------------------------------------------------------------- compile and deploy


def write_if_stale(compiled: Compiled, spec: Path, output: Path, console: Console) -> None:
    """Write the compiled files as `platformgen compile` does, only when `compile --check` would call them stale."""
    from platformgen.compiler import write_compiled

    if all(report.clean for _, report in write_compiled(compiled, output, check=True)):
        console.print(f"[green]✓[/green] {shown(output)} is up to date with {spec}")
        return
    written = sum(len(report.written) for _, report in write_compiled(compiled, output))
    console.print(f"[green]✓[/green] compiled {spec} -> {shown(output)} ({written} file(s) written)")


def sync_tree(source: Path, target: Path, keep: tuple[str, ...]) -> int:
    """Make `target` hold the files of `source` (changed ones copied, vanished ones deleted; `keep` untouched)."""
    wanted: set[str] = set()
    copied = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(source).as_posix()
        wanted.add(rel)
        dest = target / rel
        if dest.is_file() and dest.read_bytes() == path.read_bytes():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        copied += 1
    if target.is_dir():
        for path in sorted(target.rglob("*"), reverse=True):
            rel = path.relative_to(target).as_posix()
            if any(rel == k or rel.startswith(k + "/") for k in keep) or "__pycache__" in path.parts:
                continue
            if path.is_file() and rel not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return copied


def deploy_project(output: Path, project: Path, landing: list[str]) -> None:
    """Sync the compiled folders into the deployed project, keeping run artifacts and landing folders."""
    for name in DEPLOYED:
        if (output / name).is_dir():
            keep = tuple(k[len(name) + 1 :] for k in (*RUNTIME_FOLDERS, *landing) if k.startswith(name + "/"))
            sync_tree(output / name, project / name, keep)


# --------------------------------------------------------------------------- environment


def env_refs(value: Any) -> Iterator[tuple[str, str]]:
    """(field name, VAR) of every env:VAR string in nested data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (m := _ENV_REF.match(item)):
                yield str(key), m.group(1)
            else:
                yield from env_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, str) and (m := _ENV_REF.match(item)):
                yield "", m.group(1)
            else:
                yield from env_refs(item)


def _connection_values(url: str) -> dict[str, str]:
    params = pg_params(url)
    return {
        "host": params.host,
        "port": str(params.port),
        "database": params.dbname,
        "user": params.user,
        "password": params.password,
    }


def spec_env(plan: Plan, pg: PgService, s3: S3Service, samples: SampleSetup) -> tuple[dict[str, str], set[str]]:
    """Local values of the env:VAR references the DAGs resolve, and the variables to unset (Slack webhooks)."""
    from platformgen.runtime.settings import source_url_env

    values: dict[str, str] = {}

    def assign(data: Any, by_field: dict[str, str]) -> None:
        for field_name, var in env_refs(data):
            values.setdefault(var, by_field.get(field_name, DUMMY_SECRET))

    assign(plan.warehouse.connection.model_dump(), _connection_values(pg.warehouse_url))
    storage = {"endpoint": s3.endpoint_url, "access_key": LOCAL_ACCESS_KEY, "secret_key": LOCAL_SECRET_KEY}
    assign(plan.storage.model_dump(), storage)
    for source in plan.sources:
        by_field: dict[str, str] = {}
        url = samples.env.get(source_url_env(source.name))
        if isinstance(source.spec, PostgresSource) and url:
            by_field = _connection_values(url)
        assign(source.spec.model_dump(by_alias=True), by_field)
    unset: set[str] = set()
    if plan.alerting.slack is not None:
        unset |= {var for _, var in env_refs({"webhook": plan.alerting.slack.webhook})}
    for var in unset:
        values.pop(var, None)
    return values, unset


def runtime_env(
    plan: Plan, layout: StateLayout, pg: PgService, s3: S3Service, samples: SampleSetup, dbt: str
) -> dict[str, str]:
    """The environment of the runner process (see the module docstring)."""
    refs, unset = spec_env(plan, pg, s3, samples)
    env = {k: v for k, v in os.environ.items() if _inherited(k) and k not in unset}
    home = layout.airflow_home.resolve()
    env.update(refs)
    env.update(samples.env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str((layout.project / "airflow" / "dags").resolve()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "PLATFORMGEN_WAREHOUSE_URL": pg.warehouse_url,
            "PLATFORMGEN_S3_ENDPOINT_URL": s3.endpoint_url,
            "PLATFORMGEN_PROJECT_ROOT": str(layout.project.resolve()),
            "PLATFORMGEN_DBT_EXECUTABLE": dbt,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONUNBUFFERED": "1",
            # GX looks for a file project in the working directory and 3 parents (and fails to make the
            # runtime's ephemeral context when it finds one): point its search at a folder without one.
            "GX_HOME": str(home),
        }
    )
    return env


def _inherited(name: str) -> bool:
    """Variables of the caller's environment the runner keeps: not Airflow's, SMTP's or platformgen's settings."""
    if name == "AIRFLOW_HOME" or name.startswith(("AIRFLOW__", "SMTP_")):
        return False
    return not name.startswith("PLATFORMGEN_") or name.startswith("PLATFORMGEN_HTTP_")


def dbt_executable() -> str:
    """The dbt installed next to this Python (else the one on PATH)."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise PlatformgenError("local mode needs dbt: pip install 'platformgen[tools]' (dbt-postgres 1.9)")
    return found


def _require(module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise PlatformgenError(f"local mode needs {module}: {install}")


# --------------------------------------------------------------------------- the Airflow run


def dag_plan(plan: Plan, dags_folder: Path, sources: list[str]) -> list[tuple[str, list[str]]]:
    """(stage, DAG ids) in run order, for the DAG files that were compiled."""
    from platformgen.targets.airflow import dag_id

    def present(ids: list[str]) -> list[str]:
        return [i for i in ids if (dags_folder / f"{i}.py").is_file()]

    return [
        ("ingestion", present([dag_id(plan, f"ingest__{s.name}") for s in plan.sources if s.name in sources])),
        ("transformation", present([dag_id(plan, "transform")])),
        ("quality", present([dag_id(plan, "quality")])),
        ("sla", present([dag_id(plan, "sla_monitor")])),
    ]


class _Display:
    """Turns runner events into progress bars and a RunOutcome."""

    def __init__(self, console: Console, progress: Progress, outcome: RunOutcome) -> None:
        self.console = console
        self.progress = progress
        self.outcome = outcome
        self.bars: dict[str, Any] = {}
        self.current: dict[str, DagOutcome] = {}
        self.stage: str | None = None
        self.stage_started = time.monotonic()

    def _end_stage(self) -> None:
        if self.stage is not None:
            self.outcome.stage_seconds[self.stage] = time.monotonic() - self.stage_started

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "migrated" and float(event.get("seconds", 0)) > 2:
            self.console.print(f"[green]✓[/green] Airflow metadata DB migrated ({event['seconds']:.0f}s, once)")
        elif kind == "import_errors":
            self.outcome.import_errors.update(event.get("errors", {}))
            for path, error in event.get("errors", {}).items():
                self.console.print(f"[red]✗ DAG import error[/red] {path}: {error.splitlines()[-1] if error else ''}")
        elif kind == "stage":
            self._end_stage()
            self.stage = str(event["stage"])
            self.stage_started = time.monotonic()
            self.console.rule(f"[bold]{self.stage}", align="left")
        elif kind == "dag_start":
            dag_id = str(event["dag_id"])
            self.current[dag_id] = DagOutcome(dag_id, str(event["stage"]))
            self.bars[dag_id] = self.progress.add_task(dag_id, total=max(1, len(event.get("tasks", []))))
        elif kind == "task_start":
            bar = self.bars.get(str(event["dag_id"]))
            if bar is not None:
                self.progress.update(bar, description=f"{event['dag_id']} › {event['task_id']}")
        elif kind == "task_end":
            dag_id = str(event["dag_id"])
            if event.get("state") == "failed" and dag_id in self.current:
                self.current[dag_id].errors[str(event["task_id"])] = str(event.get("error") or "")
            bar = self.bars.get(dag_id)
            if bar is not None:
                self.progress.advance(bar)
        elif kind == "dbt_results":
            self.outcome.dbt[str(event["layer"])] = {
                "nodes": event.get("nodes", []),
                "rebuilt": event.get("rebuilt", []),
            }
        elif kind == "dag_end":
            self._dag_end(event)
        elif kind == "sla_status":
            self.outcome.slas.extend(event.get("slas", []))
        elif kind == "crashed":
            self.outcome.crashed = str(event.get("error"))
        elif kind == "done":
            self._end_stage()
            self.outcome.finished = True

    def _dag_end(self, event: dict[str, Any]) -> None:
        dag_id = str(event["dag_id"])
        dag = self.current.pop(dag_id, None) or DagOutcome(dag_id, str(event.get("stage")))
        dag.state = str(event.get("state"))
        dag.run_id = event.get("run_id")
        dag.seconds = float(event.get("seconds") or 0)
        dag.tasks = list(event.get("tasks") or [])
        dag.error = event.get("error")
        self.outcome.dags.append(dag)
        bar = self.bars.pop(dag_id, None)
        if bar is not None:
            self.progress.remove_task(bar)
        counts = f"{len(dag.tasks)} task(s), {dag.seconds:.1f}s"
        if dag.ok:
            self.console.print(f"[green]✓[/green] {dag_id} ({counts})")
            return
        tests_only = dag.stage == "transformation" and not self.outcome.transformation_failed()
        expected = dag.stage in ("quality", "sla") or tests_only
        mark = "[yellow]![/yellow]" if expected else "[red]✗[/red]"
        failed = ", ".join(dag.failed_tasks()) or dag.error or dag.state
        note = " [dim](dbt tests failed, models built; reported below)[/dim]" if tests_only else ""
        if expected and not tests_only:
            note = " [dim](reported below)[/dim]"
        self.console.print(f"{mark} {dag_id}: {failed} failed ({counts}){note}")


def run_dags(
    job: dict[str, Any], env: dict[str, str], layout: StateLayout, log_file: Path, console: Console
) -> RunOutcome:
    """Run the runner process, show its progress and collect its outcome."""
    outcome = RunOutcome()
    job_file = layout.root / "job.json"
    job_file.write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "platformgen.deploy.local_runner", str(job_file)]
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with log_file.open("a", encoding="utf-8") as log, progress:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(layout.airflow_home),
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        display = _Display(console, progress, outcome)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    display.handle(event)
            code = process.wait()
        except BaseException:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
    if code != 0 and outcome.crashed is None:
        outcome.crashed = f"the Airflow runner exited with code {code} (see {log_file})"
    return outcome


# --------------------------------------------------------------------------- up / down


def _warehouse_database(plan: Plan) -> str:
    database = str(plan.warehouse.connection.database)
    return "warehouse" if database.startswith("env:") else database


def _claim(layout: StateLayout, plan: Plan, spec: Path, output: Path) -> dict[str, Any]:
    state = layout.read_state()
    owner = state.get("platform")
    if owner and owner != plan.name:
        raise PlatformgenError(
            f"the state folder {layout.root} holds the local platform '{owner}', not '{plan.name}': pass another "
            f"--state folder, or delete it with `platformgen down --local --wipe --state {layout.root}`"
        )
    state.update({"platform": plan.name, "spec": str(spec.resolve()), "output": str(output.resolve())})
    return state


def _bypass_proxies_for_localhost() -> None:
    """The local services listen on 127.0.0.1: never send their requests through an HTTP proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        current = [p for p in os.environ.get(name, "").split(",") if p]
        os.environ[name] = ",".join([*current, *(h for h in ("127.0.0.1", "localhost") if h not in current)])


def up_local(spec: Path, output: Path, *, state_dir: Path, warehouse_url: str | None, console: Console) -> int:
    """Compile when stale, start the embedded services, load the sample data, run every DAG, report."""
    started_at = dt.datetime.now(dt.UTC)
    began = time.monotonic()
    _bypass_proxies_for_localhost()
    _require("airflow", "pip install 'platformgen[tools]' (Apache Airflow 2.9)")
    dbt = dbt_executable()
    compiled = compile_spec(spec)
    plan = compiled.plan
    layout = StateLayout(state_dir.resolve())
    state = _claim(layout, plan, spec, output)
    write_if_stale(compiled, spec, output, console)
    layout.create()
    landing = [str(f) for f in state.get("landing_folders", [])]
    deploy_project(output, layout.project, landing)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    log_file = (layout.logs / f"up-{stamp}.log").resolve()

    pg = start_postgres(layout, _warehouse_database(plan), warehouse_url)
    state.update({"embedded_postgres": pg.embedded, "server_url": pg.url, "warehouse_database": pg.warehouse_database})
    layout.write_state(state)
    created = pg.ensure_database(pg.warehouse_database)
    with connect(pg.warehouse_url) as conn:
        conn.execute(compiled.files["warehouse/bootstrap.sql"])
    what = "started" if created else "ready"
    console.print(f"[green]✓[/green] warehouse {pg.warehouse_database} {what} on {pg.describe()}")

    s3 = start_s3(plan.storage.region)
    try:
        restored = restore_objects(s3, layout.s3_objects)
        for bucket in (plan.storage.buckets.bronze, plan.storage.buckets.silver, plan.storage.buckets.gold):
            s3.ensure_bucket(bucket)
        kept = f", {restored} object(s) of earlier runs restored" if restored else ""
        console.print(f"[green]✓[/green] S3 endpoint {s3.endpoint_url}{kept}")
        samples = prepare_samples(
            plan, spec, pg=pg, s3=s3, project_root=layout.project, echo=lambda line: console.print(f"  {line}")
        )
        state["landing_folders"] = sorted(set(landing) | set(samples.landing_folders))
        layout.write_state(state)
        try:
            env = runtime_env(plan, layout, pg, s3, samples, dbt)
            dags_folder = layout.project / "airflow" / "dags"
            job = {
                "airflow_home": str(layout.airflow_home.resolve()),
                "dags_folder": str(dags_folder.resolve()),
                "project_root": str(layout.project.resolve()),
                "stages": dag_plan(plan, dags_folder, samples.sources),
            }
            console.print(f"[dim]setup {time.monotonic() - began:.0f}s; full log: {shown(log_file)}[/dim]")
            try:
                outcome: RunOutcome | None = run_dags(job, env, layout, log_file, console)
            except KeyboardInterrupt:
                outcome = None
        finally:
            samples.stop()
        save_objects(s3, layout.s3_objects)
    finally:
        s3.stop()
    stop_hint = "platformgen down --local" + ("" if state_dir == DEFAULT_STATE else f" --state {state_dir}")
    if outcome is None:
        console.print(f"[yellow]interrupted[/yellow]: the warehouse keeps what was loaded; stop it with `{stop_hint}`")
        return 130
    outcome.skipped_sources = list(samples.without_sample)

    console.rule("[bold]report", align="left")
    psql_binary = _bundled_psql() if pg.embedded and shutil.which("psql") is None else None
    with connect(pg.warehouse_url) as conn:
        print_report(
            console,
            outcome,
            ReportContext(
                plan=plan,
                conn=conn,
                s3_objects=layout.s3_objects,
                started_at=started_at,
                psql=pg.psql_command(),
                data_docs=layout.project / "great_expectations" / "uncommitted" / "data_docs" / "local_site",
                log_file=log_file,
                psql_binary=psql_binary,
            ),
        )
    code = outcome.exit_code
    total = time.monotonic() - began
    if code == 0:
        console.print(f"[green]✓ local platform {plan.name} ran in {total:.0f}s[/green]; stop it with `{stop_hint}`")
    else:
        console.print(
            f"[red]✗ local platform {plan.name}: a pipeline failed ({total:.0f}s)[/red]; see {shown(log_file)}"
        )
    return code


def _bundled_psql() -> str | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "pginstall" / "bin" / "psql"
    return str(candidate) if candidate.is_file() else None


def down_local(*, state_dir: Path, wipe: bool, console: Console) -> int:
    """Stop the embedded PostgreSQL of the state folder; with `wipe`, delete the folder too."""
    layout = StateLayout(state_dir)
    if not layout.root.exists():
        console.print(f"nothing to do: {state_dir} does not exist")
        return 0
    state = layout.read_state()
    if not state and not layout.pg_data.exists() and any(layout.root.iterdir()):
        raise PlatformgenError(
            f"{state_dir} is not a platformgen state folder (no {layout.state_file.name}): left alone"
        )
    if stop_postgres(layout):
        console.print(f"[green]✓[/green] stopped the embedded PostgreSQL of {state_dir}")
    elif state.get("embedded_postgres") is False:
        console.print("the warehouse is an external server (--warehouse-url): not stopped")
    else:
        console.print("the embedded PostgreSQL was not running")
    if wipe:
        shutil.rmtree(layout.root)
        console.print(f"[green]✓[/green] deleted {state_dir}")
    return 0
