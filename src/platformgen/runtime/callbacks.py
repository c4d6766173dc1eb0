"""Airflow callbacks of the generated DAGs: task failures and Airflow task SLA misses become platform alerts.

Both callbacks swallow their own errors with a WARNING: an exception in a failure callback would replace
the real failure in the log, and Airflow's SLA handler cannot even report an error of a functools.partial
callback (it reads `callback.__name__`). Everything heavy is imported inside the functions, so a DAG file
importing this module stays cheap to parse.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("platformgen.runtime.callbacks")

#: How much of an exception goes into an alert: the first lines, capped.
MAX_EXCEPTION_LINES = 12
MAX_EXCEPTION_CHARS = 1500


def exception_summary(exc: object, *secrets: str) -> str:
    """`Type: message`, first lines only, with secrets and URL passwords removed."""
    from platformgen.runtime.settings import scrub

    if exc is None:
        return "no exception recorded"
    text = str(exc).strip()
    head = f"{type(exc).__name__}: {text}" if isinstance(exc, BaseException) else text
    lines = head.splitlines()
    summary = "\n".join(lines[:MAX_EXCEPTION_LINES])
    if len(lines) > MAX_EXCEPTION_LINES:
        summary += f"\n... ({len(lines) - MAX_EXCEPTION_LINES} more lines in the task log)"
    if len(summary) > MAX_EXCEPTION_CHARS:
        summary = summary[:MAX_EXCEPTION_CHARS] + " ..."
    return scrub(summary, *secrets)


def _task_kwargs(task: Any) -> dict[str, Any]:
    """The config a task was given: its op_kwargs, plus the keywords of a functools.partial python_callable."""
    import functools

    found: dict[str, Any] = {}
    callable_ = getattr(task, "python_callable", None)
    if isinstance(callable_, functools.partial) and isinstance(callable_.keywords, dict):
        found.update(callable_.keywords)
    op_kwargs = getattr(task, "op_kwargs", None)
    if isinstance(op_kwargs, dict):
        found.update(op_kwargs)
    return found


def _task_owner(task: Any) -> str | None:
    """The owner for routing: the source's owner for ingestion tasks, else the task's (default_args) owner."""
    source = _task_kwargs(task).get("source")
    if isinstance(source, dict) and source.get("owner"):
        return str(source["owner"])
    owner = getattr(task, "owner", None)
    return str(owner) if owner else None


def _task_dataset(task: Any) -> str | None:
    """The dataset an ingestion task works on (`source.table`), if any."""
    table = _task_kwargs(task).get("table")
    if isinstance(table, dict) and table.get("dataset"):
        return str(table["dataset"])
    return None


def on_task_failure(platform: dict[str, Any], context: dict[str, Any]) -> None:
    """on_failure_callback: alert `task_failure` (error) with DAG, task, run, the exception and the log URL."""
    try:
        _on_task_failure(platform, context)
    except Exception as exc:
        from platformgen.runtime.settings import scrub

        log.warning("task failure callback failed: %s", scrub(f"{type(exc).__name__}: {exc}"))


def _on_task_failure(platform: dict[str, Any], context: dict[str, Any]) -> None:
    from platformgen.runtime.alerts import known_secrets, raise_alert

    ti = context.get("task_instance") or context.get("ti")
    task = context.get("task") or getattr(ti, "task", None)
    exc = context.get("exception")
    if getattr(exc, "already_alerted", False):
        # check_slas raises after it has recorded and alerted every miss itself: do not alert twice.
        log.info("task failed with alerts already raised (%s): no task_failure alert", type(exc).__name__)
        return
    dag_id = str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "") or "") or None
    task_id = str(getattr(ti, "task_id", None) or getattr(task, "task_id", "") or "") or None
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    try_number = getattr(ti, "try_number", None)
    try:
        log_url: str | None = str(ti.log_url) if ti is not None else None
    except Exception:  # no [webserver] base_url, or a TI without a run
        log_url = None
    summary = exception_summary(exc, *known_secrets(platform))
    attempt = f", try {try_number}" if try_number else ""
    message = f"Task {dag_id}.{task_id} failed (run {run_id}{attempt}).\n{summary}"
    if log_url:
        message += f"\nLog: {log_url}"
    raise_alert(
        platform,
        kind="task_failure",
        severity="error",
        message=message,
        dataset=_task_dataset(task),
        dag_id=dag_id,
        task_id=task_id,
        run_id=str(run_id) if run_id else None,
        owner=_task_owner(task),
    )


def on_sla_miss(
    platform: dict[str, Any],
    dag: Any,
    task_list: str,
    blocking_task_list: str,
    slas: list[Any],
    blocking_tis: list[Any],
) -> None:
    """sla_miss_callback: one `task_sla` row per missed task SLA in sla_misses, and one `sla_miss` alert (warn)."""
    try:
        _on_sla_miss(platform, dag, task_list, blocking_task_list, slas, blocking_tis)
    except Exception as exc:
        from platformgen.runtime.settings import scrub

        log.warning("SLA miss callback failed: %s", scrub(f"{type(exc).__name__}: {exc}"))


def _on_sla_miss(
    platform: dict[str, Any],
    dag: Any,
    task_list: str,
    blocking_task_list: str,
    slas: list[Any],
    blocking_tis: list[Any],
) -> None:
    from platformgen.runtime.alerts import raise_alert
    from platformgen.runtime.sla import Miss, record_misses

    dag_id = str(getattr(dag, "dag_id", "") or "") or None
    records: list[Miss] = []
    owners: set[str] = set()
    datasets: set[str] = set()
    for miss in slas:
        task_id = str(getattr(miss, "task_id", ""))
        task = None
        try:
            task = dag.get_task(task_id) if dag is not None else None
        except Exception:  # the task was removed from the DAG since
            task = None
        dataset = _task_dataset(task) or f"{dag_id}.{task_id}"
        datasets.add(dataset)
        owner = _task_owner(task)
        if owner:
            owners.add(owner)
        sla = getattr(task, "sla", None)
        logical = getattr(miss, "execution_date", None)
        detected = getattr(miss, "timestamp", None)
        records.append(
            Miss(
                dataset=dataset,
                kind="task_sla",
                severity="warn",
                expected=f"{task_id} done within {sla} of the run's logical date" if sla else f"{task_id} on time",
                observed=f"not done at {detected.isoformat() if detected else 'check time'}",
                run_id=logical.isoformat() if logical is not None else None,
            )
        )
    if records:
        record_misses(platform, records, dedupe=False)
    message = f"Task SLA missed in DAG {dag_id}:\n{task_list or '(no tasks listed)'}"
    if blocking_task_list:
        message += f"\nBlocking tasks (not yet successful):\n{blocking_task_list}"
    raise_alert(
        platform,
        kind="sla_miss",
        severity="warn",
        message=message,
        dataset=next(iter(datasets)) if len(datasets) == 1 else None,
        dag_id=dag_id,
        owner=next(iter(owners)) if len(owners) == 1 else None,
    )
