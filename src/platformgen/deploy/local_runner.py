"""The Airflow half of `platformgen up --local`: runs the compiled DAGs with `dag.test()`, in its own process.

Airflow reads its configuration (AIRFLOW_HOME, the metadata DB) when it is first imported, so `up_local`
prepares the environment and starts ``python -m platformgen.deploy.local_runner <job.json>``. This process:

1. keeps its stdout for progress events (one JSON object per line) and sends everything else that it, Airflow,
   dbt and GX print to the log file of the run (its stderr);
2. migrates the SQLite metadata DB in AIRFLOW_HOME once per Airflow version;
3. parses the DAG folder with a DagBag and runs the DAGs of each stage (ingestion, transformation, quality,
   sla) with ``dag.test()``, in the order the job lists them, each with the current time as logical date;
4. after the SLA monitor, evaluates every SLA with the monitor's own logic and reports its status.

Two in-memory adjustments make a local run report failures instead of stalling on them; the DAG files are
not changed:

- ``retries = 0`` on every task: a failure is reported at once, not after `retry_delay`;
- the transformation's later layers run when an earlier layer failed only because dbt *tests* failed
  (``trigger_rule = all_done``); when dbt *models* of a layer failed, the later layers are skipped. When a
  failed test made dbt skip models of its own layer, those models are built with ``dbt run`` afterwards so the
  marts still appear; the task stays failed and the tests are reported.

Each task's callable is wrapped to emit ``task_start`` / ``task_end`` events (with the error, and dbt's
per-node results for transformation tasks).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

Emit = Callable[..., None]
MAX_ERROR_CHARS = 4000


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " ..."


def _events(fd: int) -> IO[str]:
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def dbt_results(path: Path) -> list[dict[str, Any]]:
    """The nodes of a dbt run_results.json: name, resource type, status, message, failures."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    nodes: list[dict[str, Any]] = []
    for result in data.get("results", []):
        unique_id = str(result.get("unique_id", ""))
        parts = unique_id.split(".")
        nodes.append(
            {
                "unique_id": unique_id,
                "type": parts[0] if parts else "",
                "name": parts[2] if len(parts) > 2 else unique_id,
                "status": str(result.get("status")),
                "message": None if result.get("message") is None else str(result.get("message")),
                "failures": result.get("failures"),
            }
        )
    return nodes


_MODEL_TYPES = ("model", "seed", "snapshot")


class TransformState:
    """What the transformation's layers tell each other during one run."""

    def __init__(self) -> None:
        self.failed_layer: str | None = None


def _dbt_layer_callable(emit: Emit, fn: Any, layer: str, project: Path, state: TransformState) -> Callable[..., Any]:
    """dbt build of one layer, with its per-node results reported and test-only failures told apart."""
    from airflow.exceptions import AirflowSkipException  # noqa: TID251 - local mode runs Airflow

    results_file = project / "target" / "run_results.json"

    def run(*args: Any, **context: Any) -> Any:
        if state.failed_layer is not None:
            raise AirflowSkipException(f"not run: dbt models of layer {state.failed_layer} failed")
        started = time.time()

        def fresh() -> list[dict[str, Any]]:
            if not results_file.is_file() or results_file.stat().st_mtime < started:
                return []
            return dbt_results(results_file)

        try:
            result = fn(*args, **context)
        except Exception:
            nodes = fresh()
            models_failed = [n for n in nodes if n["type"] in _MODEL_TYPES and n["status"] == "error"]
            skipped = [n["name"] for n in nodes if n["type"] == "model" and n["status"] == "skipped"]
            rebuilt: list[dict[str, Any]] = []
            if not nodes or models_failed:
                state.failed_layer = layer
            elif skipped:
                try:
                    rebuilt = _build_skipped(fn, project, skipped, results_file)
                except Exception:
                    print(traceback.format_exc(), flush=True)
                if any(n["status"] == "error" for n in rebuilt) or len(rebuilt) < len(skipped):
                    state.failed_layer = layer
            emit("dbt_results", layer=layer, nodes=nodes, rebuilt=rebuilt)
            raise
        emit("dbt_results", layer=layer, nodes=fresh(), rebuilt=[])
        return result

    return run


def _build_skipped(fn: Any, project: Path, models: list[str], results_file: Path) -> list[dict[str, Any]]:
    """`dbt run` of models that dbt skipped because a test upstream of them failed."""
    from platformgen.runtime.dbt_runner import dbt_environment, resolve_executable, run_dbt

    keywords = getattr(fn, "keywords", {}) or {}
    platform, dbt = keywords.get("platform"), keywords.get("dbt") or {}
    command = [
        resolve_executable(dbt),
        "run",
        "--select",
        *models,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    ]
    print(f"local mode: building the models a failed test blocked: {' '.join(models)}", flush=True)
    started = time.time()
    run_dbt(command, env=dbt_environment(platform), cwd=project, echo=lambda line: print(line, flush=True))
    if not results_file.is_file() or results_file.stat().st_mtime < started:
        return []
    return dbt_results(results_file)


def _tracked(emit: Emit, dag_id: str, task_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The task callable, emitting task_start and task_end."""

    def run(*args: Any, **context: Any) -> Any:
        from airflow.exceptions import AirflowSkipException  # noqa: TID251 - local mode runs Airflow

        emit("task_start", dag_id=dag_id, task_id=task_id)
        started = time.monotonic()
        try:
            result = fn(*args, **context)
        except AirflowSkipException as exc:
            emit("task_end", dag_id=dag_id, task_id=task_id, state="skipped", seconds=0.0, error=str(exc))
            raise
        except BaseException as exc:
            seconds = round(time.monotonic() - started, 2)
            emit("task_end", dag_id=dag_id, task_id=task_id, state="failed", seconds=seconds, error=_error_text(exc))
            raise
        emit("task_end", dag_id=dag_id, task_id=task_id, state="success", seconds=round(time.monotonic() - started, 2))
        return result

    return run


def prepare_dag(dag: Any, stage: str, emit: Emit, project: Path) -> None:
    """The in-memory adjustments of local mode (see the module docstring)."""
    from airflow.utils.trigger_rule import TriggerRule  # noqa: TID251 - local mode runs Airflow

    state = TransformState()
    for task in dag.tasks:
        task.retries = 0
        fn = getattr(task, "python_callable", None)
        if fn is None:
            continue
        keywords = getattr(fn, "keywords", {}) or {}
        if stage == "transformation" and "layer" in keywords and "dbt" in keywords:
            fn = _dbt_layer_callable(emit, fn, str(keywords["layer"]), project, state)
            if task.upstream_task_ids:
                task.trigger_rule = TriggerRule.ALL_DONE
        task.python_callable = _tracked(emit, dag.dag_id, task.task_id, fn)


def sla_configs(dag: Any) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(platform, slas) of each SLA-monitor task, read from the task's callable before it is wrapped."""
    found = []
    for task in dag.tasks:
        keywords = getattr(getattr(task, "python_callable", None), "keywords", None) or {}
        if "slas" in keywords and "platform" in keywords:
            found.append((keywords["platform"], list(keywords["slas"])))
    return found


def sla_status(configs: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Every SLA, evaluated now with the monitor's own logic (nothing recorded or alerted)."""
    from platformgen.runtime import sla as sla_logic
    from platformgen.runtime.warehouse import connect_warehouse

    status: list[dict[str, Any]] = []
    now = dt.datetime.now(dt.UTC)
    for platform, slas in configs:
        with connect_warehouse(platform, autocommit=True) as conn:
            for sla in slas:
                entry: dict[str, Any] = {
                    "dataset": sla.get("dataset"),
                    "layer": sla.get("layer"),
                    "warn_after_seconds": sla.get("warn_after_seconds"),
                    "error_after_seconds": sla.get("error_after_seconds"),
                    "ready_by": sla.get("ready_by"),
                    "last_update": None,
                    "misses": [],
                }
                try:
                    last = sla_logic.last_success(conn, platform, sla)
                except Exception as exc:
                    entry["error"] = _error_text(exc)
                    status.append(entry)
                    continue
                entry["last_update"] = None if last is None else last.isoformat(timespec="seconds")
                entry["misses"] = [m.to_dict() for m in sla_logic.evaluate_sla(sla, last, now)]
                status.append(entry)
    return status


def _task_states(run: Any) -> list[dict[str, Any]]:
    states = []
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.start_date is None, t.start_date, t.task_id)):
        seconds = None
        if ti.start_date is not None and ti.end_date is not None:
            seconds = round((ti.end_date - ti.start_date).total_seconds(), 2)
        states.append({"task_id": ti.task_id, "state": str(ti.state), "seconds": seconds})
    return states


def run_job(job: dict[str, Any], emit: Emit) -> None:
    """Migrate, parse the DAGs and run every stage."""
    started = time.monotonic()
    _migrate(Path(job["airflow_home"]))
    emit("migrated", seconds=round(time.monotonic() - started, 2))

    # A failed task makes Airflow 2.9 load DagRunNote, whose foreign key needs FAB's user table mapped.
    import airflow.providers.fab.auth_manager.models  # noqa: F401, TID251
    from airflow.models.dagbag import DagBag  # noqa: TID251 - local mode runs Airflow

    bag = DagBag(dag_folder=job["dags_folder"], include_examples=False, safe_mode=False)
    if bag.import_errors:
        emit("import_errors", errors={str(k): str(v) for k, v in bag.import_errors.items()})
    project = Path(job["project_root"]) / "dbt"
    for stage, dag_ids in job["stages"]:
        if not dag_ids:
            continue
        emit("stage", stage=stage)
        for dag_id in dag_ids:
            dag = bag.get_dag(dag_id)
            if dag is None:
                emit("dag_end", dag_id=dag_id, stage=stage, state="missing", seconds=0.0, tasks=[], run_id=None)
                continue
            slas = sla_configs(dag) if stage == "sla" else []
            prepare_dag(dag, stage, emit, project)
            emit("dag_start", dag_id=dag_id, stage=stage, tasks=[t.task_id for t in dag.tasks])
            began = time.monotonic()
            try:
                run = dag.test(execution_date=dt.datetime.now(dt.UTC))
            except Exception as exc:
                print(traceback.format_exc(), flush=True)
                emit(
                    "dag_end",
                    dag_id=dag_id,
                    stage=stage,
                    state="failed",
                    seconds=round(time.monotonic() - began, 2),
                    tasks=[],
                    run_id=None,
                    error=_error_text(exc),
                )
                continue
            emit(
                "dag_end",
                dag_id=dag_id,
                stage=stage,
                state=str(run.state),
                seconds=round(time.monotonic() - began, 2),
                tasks=_task_states(run),
                run_id=run.run_id,
            )
            if stage == "sla":
                emit("sla_status", dag_id=dag_id, slas=sla_status(slas))


def _migrate(home: Path) -> None:
    """`airflow db migrate` of the SQLite metadata DB, once per Airflow version."""
    from airflow import __version__  # noqa: TID251 - local mode runs Airflow

    marker = home / ".platformgen-migrated"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == __version__:
        return
    from airflow.utils.db import upgradedb  # noqa: TID251 - local mode runs Airflow

    upgradedb()
    marker.write_text(__version__ + "\n", encoding="utf-8")
    # Alembic's migration environment reconfigures logging (fileConfig): restore Airflow's.
    from airflow.logging_config import configure_logging  # noqa: TID251 - local mode runs Airflow

    configure_logging()  # type: ignore[no-untyped-call]


def main(argv: list[str]) -> int:
    """Entry point: `python -m platformgen.deploy.local_runner <job.json>`."""
    if len(argv) != 1:
        print("usage: python -m platformgen.deploy.local_runner <job.json>", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.stdout.flush()
    events = _events(os.dup(1))
    os.dup2(2, 1)  # everything else printed goes to the log file (stderr)

    def emit(event: str, **fields: Any) -> None:
        events.write(json.dumps({"event": event, **fields}, default=str) + "\n")

    try:
        run_job(job, emit)
    except BaseException as exc:
        print(traceback.format_exc(), flush=True)
        emit("crashed", error=_error_text(exc))
        return 1
    finally:
        emit("done")
        events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
