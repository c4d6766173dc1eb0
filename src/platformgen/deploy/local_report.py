"""What a `platformgen up --local` run did: the outcome of every DAG, and the report printed at the end.

`RunOutcome` collects the runner's events (see `local_runner`). `print_report` then reads the warehouse and
prints rich tables:

- **data by layer**: per source dataset, the bronze files kept in the state folder, rows extracted and loaded
  by this run (``data_platform.ingestion_log``), rows in raw and in the silver (staging) model;
- **models**: rows of every intermediate and gold model;
- **checks**: dbt tests per layer (from dbt's run results) and Great Expectations expectations per layer
  (``data_platform.quality_results`` of this run's quality DAG run), then every failed check with the reason;
- **SLAs**: each SLA evaluated with the monitor's logic after the run;
- **alerts** raised during the run (``data_platform.alerts``): local mode has no SMTP server or Slack
  webhook, so they are recorded and logged, not delivered;
- where to look next: the psql command for the marts, the Data Docs, the log file.

Exit code (`RunOutcome.exit_code`): 1 when an ingestion DAG or a dbt model failed, else 0. Failed tests,
failed expectations and SLA misses are reported, not fatal: some sample data trips checks on purpose, and
freshness checks on business timestamps of the (2024) sample data are stale by construction.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from platformgen.plan.build import Check, Plan

STAGES = ("ingestion", "transformation", "quality", "sla")
_MODEL_TYPES = ("model", "seed", "snapshot")
_OK_TEST = ("pass", "success")
_MAX_REASON = 220


@dataclass
class DagOutcome:
    """One DAG run."""

    dag_id: str
    stage: str
    state: str = "running"
    run_id: str | None = None
    seconds: float = 0.0
    tasks: list[dict[str, Any]] = field(default_factory=list)  # task_id, state, seconds
    errors: dict[str, str] = field(default_factory=dict)  # task_id -> error
    error: str | None = None  # the run itself could not be started

    @property
    def ok(self) -> bool:
        """The run succeeded and no task failed (with local mode's trigger rules a run can succeed past one)."""
        return self.state == "success" and not self.failed_tasks() and not self.errors

    def failed_tasks(self) -> list[str]:
        return [t["task_id"] for t in self.tasks if t.get("state") in ("failed", "upstream_failed")]


@dataclass
class RunOutcome:
    """Everything the runner reported."""

    dags: list[DagOutcome] = field(default_factory=list)
    dbt: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # layer -> nodes / rebuilt
    slas: list[dict[str, Any]] = field(default_factory=list)
    import_errors: dict[str, str] = field(default_factory=dict)
    crashed: str | None = None
    finished: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)
    skipped_sources: list[str] = field(default_factory=list)

    def stage(self, name: str) -> list[DagOutcome]:
        return [d for d in self.dags if d.stage == name]

    def run_ids(self, stage: str) -> list[str]:
        return [d.run_id for d in self.stage(stage) if d.run_id]

    def dbt_nodes(self, types: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
        """(layer, node) of every dbt node of the given resource types; a rebuilt model replaces its skip."""
        wanted = set(types)
        out: list[tuple[str, dict[str, Any]]] = []
        for layer, found in self.dbt.items():
            rebuilt = {n["name"]: n for n in found.get("rebuilt", [])}
            for node in found.get("nodes", []):
                if node["type"] in wanted:
                    out.append((layer, rebuilt.get(node["name"], node) if node["status"] == "skipped" else node))
        return out

    def models_failed(self) -> list[str]:
        """dbt models that errored (or stayed skipped) in this run."""
        return sorted(
            n["name"] for _, n in self.dbt_nodes(_MODEL_TYPES) if n["status"] not in ("success", "pass", "ok")
        )

    def ingestion_failed(self) -> list[str]:
        """Ingestion DAGs that failed (or could not be loaded: a DAG file with an import error is missing)."""
        return [d.dag_id for d in self.stage("ingestion") if not d.ok]

    def transformation_failed(self) -> list[str]:
        """Why the transformation counts as failed: dbt models, or a layer whose dbt did not run at all."""
        reasons = [f"dbt model {name} failed" for name in self.models_failed()]
        for dag in self.stage("transformation"):
            if dag.error:
                reasons.append(f"{dag.dag_id}: {dag.error}")
            for task in dag.tasks:
                layer = task["task_id"].split(".", 1)[0]
                if task.get("state") in ("failed", "upstream_failed") and not self.dbt.get(layer, {}).get("nodes"):
                    reasons.append(f"{dag.dag_id}.{task['task_id']} {task['state']}")
            if dag.state == "missing":
                reasons.append(f"{dag.dag_id} is not in the DAG folder")
        return reasons

    @property
    def exit_code(self) -> int:
        if self.crashed or not self.finished or self.ingestion_failed() or self.transformation_failed():
            return 1
        return 0


# --------------------------------------------------------------------------- warehouse queries


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _count(cur: Any, schema: str, relation: str) -> int | None:
    cur.execute("select to_regclass(%s)", (f"{_q(schema)}.{_q(relation)}",))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    cur.execute(f"select count(*) from {_q(schema)}.{_q(relation)}")
    found = cur.fetchone()
    return None if found is None else int(found[0])


def _fmt(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def bronze_files(bucket_dir: Path, prefix: str) -> int:
    """Files kept for a dataset's bronze prefix (every run), quarantine excluded."""
    folder = bucket_dir.joinpath(*[p for p in prefix.split("/") if p])
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _reason(text: str | None) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def stale_by_design(check: Check | None) -> bool:
    """A freshness check on a business timestamp: the (2024) sample data is stale by construction."""
    return check is not None and check.kind == "freshness" and check.param("column") is not None


def _check_note(check: Check | None) -> str:
    if stale_by_design(check):
        return " [dim](expected: the sample data is from 2024, this freshness check compares it with today)[/dim]"
    return ""


# --------------------------------------------------------------------------- the report


@dataclass
class ReportContext:
    """Where things are, for the report."""

    plan: Plan
    conn: Any  # psycopg connection to the warehouse
    s3_objects: Path
    started_at: dt.datetime
    psql: str
    data_docs: Path
    log_file: Path
    psql_binary: str | None = None


def print_report(console: Console, outcome: RunOutcome, ctx: ReportContext) -> None:
    """Print the tables described in the module docstring."""
    plan = ctx.plan
    checks = {c.id: c for c in plan.checks}
    with ctx.conn.cursor() as cur:
        _data_table(console, outcome, ctx, cur)
        _models_table(console, ctx, cur)
        _checks_tables(console, outcome, ctx, cur, checks)
    _sla_table(console, outcome)
    with ctx.conn.cursor() as cur:
        _alerts_table(console, ctx, cur)
    _footer(console, outcome, ctx)


def _data_table(console: Console, outcome: RunOutcome, ctx: ReportContext, cur: Any) -> None:
    plan = ctx.plan
    schemas = plan.warehouse.schemas
    runs = outcome.run_ids("ingestion")
    logged: dict[tuple[str, str], int] = {}
    if runs:
        # file sources log one extract row per landing file plus a total (file_name null); postgres logs one
        # row per bronze part (with its key), APIs one total: per-file rows win, else the totals
        cur.execute(
            f"select dataset, stage, file_name is null, sum(rows) from {_q(schemas.platform)}.ingestion_log "
            "where run_id = any(%s) and status in ('success', 'skipped') group by 1, 2, 3",
            (runs,),
        )
        sums = {(str(d), str(s), bool(total)): int(n or 0) for d, s, total, n in cur.fetchall()}
        for (dataset, stage, total), rows in sums.items():
            if not total:
                logged[(dataset, stage)] = rows
        for (dataset, stage, total), rows in sums.items():
            if total:
                logged.setdefault((dataset, stage), rows)
    table = Table(title="Data by layer", title_justify="left")
    table.add_column("dataset", overflow="fold")
    for column in ("bronze files", "extracted", "loaded", "raw", "silver"):
        table.add_column(column, justify="right")
    bucket = ctx.s3_objects / plan.storage.buckets.bronze
    for t in plan.tables:
        if t.source in outcome.skipped_sources:
            table.add_row(t.key, "-", "no sample", "-", "-", "-")
            continue
        table.add_row(
            t.key,
            str(bronze_files(bucket, t.bronze_prefix)),
            _fmt(logged.get((t.key, "extract"))),
            _fmt(logged.get((t.key, "load"))),
            _fmt(_count(cur, schemas.raw, t.raw_table)),
            _fmt(_count(cur, schemas.staging, t.staging_model)),
        )
    table.caption = (
        f"bronze files: in s3://{plan.storage.buckets.bronze}, all runs; extracted, loaded: rows of this run "
        f"(ingestion_log); raw: rows of {schemas.raw}.*; silver: rows of {schemas.staging}.stg_*"
    )
    console.print(table)


def _models_table(console: Console, ctx: ReportContext, cur: Any) -> None:
    if not ctx.plan.models:
        return
    table = Table(title="Models", title_justify="left")
    for column in ("model", "layer", "relation", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for model in ctx.plan.models:
        table.add_row(
            model.name, model.layer, f"{model.schema}.{model.name}", _fmt(_count(cur, model.schema, model.name))
        )
    console.print(table)


def _checks_tables(
    console: Console, outcome: RunOutcome, ctx: ReportContext, cur: Any, checks: dict[str, Check]
) -> None:
    summary = Table(title="Checks", title_justify="left")
    for column in ("tool", "layer", "passed", "warned", "failed", "not run"):
        summary.add_column(column, justify="left" if column in ("tool", "layer") else "right")
    failures: list[tuple[str, str, str, str, str]] = []  # tool/layer, check, dataset, severity, why
    for layer, found in outcome.dbt.items():
        counts: Counter[str] = Counter()
        for node in found.get("nodes", []):
            if node["type"] not in ("test", "unit_test"):
                continue
            status = node["status"]
            counts["passed" if status in _OK_TEST else status if status in ("warn", "skipped") else "failed"] += 1
            if status not in _OK_TEST and status != "skipped":
                check = checks.get(node["name"])
                severity = "warn" if status == "warn" else (check.severity if check else "error")
                why = _reason(node.get("message")) + _check_note(check)
                failures.append((f"dbt {layer}", node["name"], check.dataset if check else "", severity, why))
        summary.add_row(
            "dbt tests",
            layer,
            str(counts["passed"]),
            str(counts["warn"]),
            str(counts["failed"]),
            str(counts["skipped"]),
        )
    runs = outcome.run_ids("quality")
    if runs:
        schema = _q(ctx.plan.warehouse.schemas.platform)
        cur.execute(
            f"select layer, severity, success, count(*) from {schema}.quality_results where run_id = any(%s) "
            "group by layer, severity, success",
            (runs,),
        )
        per_layer: dict[str, Counter[str]] = {}
        for layer, severity, success, n in cur.fetchall():
            key = "passed" if success else ("warned" if severity == "warn" else "failed")
            per_layer.setdefault(str(layer), Counter())[key] += int(n)
        for layer in ("bronze", "silver", "gold"):
            if layer in per_layer:
                c = per_layer[layer]
                summary.add_row("expectations (GX)", layer, str(c["passed"]), str(c["warned"]), str(c["failed"]), "0")
        cur.execute(
            f"select layer, dataset, check_id, severity, observed_value, unexpected, details->>'error' "
            f"from {schema}.quality_results where run_id = any(%s) and not success order by layer, dataset, check_id",
            (runs,),
        )
        for layer, dataset, check_id, severity, observed, unexpected, error in cur.fetchall():
            check = checks.get(str(check_id))
            parts = []
            if unexpected:
                parts.append(f"{unexpected} unexpected value(s)")
            if observed:
                parts.append(f"observed {observed}")
            if error:
                parts.append(str(error))
            why = _reason("; ".join(parts) or "failed") + _check_note(check)
            failures.append((f"GX {layer}", str(check_id), str(dataset), str(severity), why))
    for dag in outcome.stage("quality"):
        for task_id, error in dag.errors.items():
            if "QualityCheckFailed" not in error:
                failures.append((f"GX {task_id.split('.', 1)[0]}", task_id, "", "error", _reason(error)))
    console.print(summary)
    if failures:
        console.print("[bold]Failed checks[/bold]")
        seen: set[tuple[str, str, str, str, str]] = set()
        for failure in failures:
            if failure in seen:
                continue
            seen.add(failure)
            where, name, dataset, severity, why = failure
            style = "red" if severity == "error" else "yellow"
            on = f" on {dataset}" if dataset else ""
            console.print(f"  [{style}]{severity}[/{style}] {where}: {name}{on} — {why}")


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    from platformgen.runtime.sla import format_duration

    return format_duration(float(seconds))


def _when(stamp: Any) -> str:
    if not stamp:
        return "never"
    try:
        return dt.datetime.fromisoformat(str(stamp)).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(stamp)


def _sla_table(console: Console, outcome: RunOutcome) -> None:
    if not outcome.slas:
        return
    table = Table(title="SLAs (evaluated after the run)", title_justify="left")
    for column in ("dataset", "layer", "target", "last update (UTC)", "status"):
        table.add_column(column, overflow="fold")
    for sla in outcome.slas:
        target = []
        if sla.get("warn_after_seconds"):
            target.append(f"warn after {_duration(sla['warn_after_seconds'])}")
        if sla.get("error_after_seconds"):
            target.append(f"error after {_duration(sla['error_after_seconds'])}")
        if sla.get("ready_by"):
            target.append(f"ready by {sla['ready_by']}")
        if sla.get("error"):
            status = f"[red]cannot tell: {_reason(sla['error'])}[/red]"
        elif sla.get("misses"):
            status = "; ".join(
                f"[{'red' if m['severity'] == 'error' else 'yellow'}]{m['kind']} {m['severity']}[/]: {m['observed']}"
                for m in sla["misses"]
            )
        else:
            status = "[green]ok[/green]"
        table.add_row(
            str(sla.get("dataset")),
            str(sla.get("layer")),
            ", ".join(target) or "-",
            _when(sla.get("last_update")),
            status,
        )
    console.print(table)


def _alert_text(kind: str, lines: list[str]) -> str:
    """The informative part of an alert message: the error of a task failure, else the first line (and its list)."""
    if kind == "task_failure" and len(lines) > 1:
        return lines[1]
    if len(lines) > 1 and lines[0].endswith(":"):
        return " ".join(lines[:2])
    return lines[0] if lines else ""


def _alerts_table(console: Console, ctx: ReportContext, cur: Any) -> None:
    schema = _q(ctx.plan.warehouse.schemas.platform)
    cur.execute(
        f"select kind, severity, coalesce(dataset, dag_id || coalesce('.' || task_id, '')), message, channels "
        f"from {schema}.alerts where raised_at >= %s order by id",
        (ctx.started_at,),
    )
    rows = cur.fetchall()
    if not rows:
        console.print("[green]No alerts raised.[/green]")
        return
    table = Table(title=f"Alerts raised ({len(rows)}; recorded in data_platform.alerts)", title_justify="left")
    for column in ("kind", "severity", "where", "message", "routed to"):
        table.add_column(column, overflow="fold")
    for kind, severity, where, message, channels in rows:
        style = "red" if severity == "error" else "yellow"
        lines = [line.strip() for line in str(message).splitlines() if line.strip()]
        table.add_row(
            str(kind),
            f"[{style}]{severity}[/{style}]",
            str(where or ""),
            _reason(_alert_text(str(kind), lines)),
            ", ".join(channels or []),
        )
    table.caption = "local mode sets no SMTP server or Slack webhook: alerts are recorded and logged, not delivered"
    console.print(table)


def _footer(console: Console, outcome: RunOutcome, ctx: ReportContext) -> None:
    failed_ingestion = outcome.ingestion_failed()
    failed_transformation = outcome.transformation_failed()
    if outcome.crashed:
        console.print(f"[red]The local run stopped:[/red] {_reason(outcome.crashed)}")
    for dag in outcome.dags:
        for task_id, error in dag.errors.items():
            layer = task_id.split(".", 1)[0]
            if dag.stage == "ingestion" or (dag.stage == "transformation" and failed_transformation):
                console.print(f"[red]{dag.dag_id}.{task_id} failed:[/red] {_reason(error)}")
            elif dag.stage == "transformation" and outcome.dbt.get(layer, {}).get("nodes"):
                console.print(
                    f"[yellow]{dag.dag_id}.{task_id} failed on dbt tests only[/yellow] (listed above): "
                    "its models were built"
                )
    if failed_ingestion:
        console.print(f"[red]ingestion failed:[/red] {', '.join(failed_ingestion)}")
    if failed_transformation:
        console.print(f"[red]transformation failed:[/red] {'; '.join(failed_transformation)}")
    timings = ", ".join(f"{stage} {seconds:.0f}s" for stage, seconds in outcome.stage_seconds.items())
    if timings:
        console.print(f"[dim]timings: {timings}[/dim]")
    console.print()
    console.print("Look at the marts:")
    console.print(f"  {ctx.psql}")
    if ctx.psql_binary:
        console.print(f"  [dim](no psql on PATH? the embedded server ships one: {ctx.psql_binary})[/dim]")
    index = ctx.data_docs / "index.html"
    if index.is_file():
        console.print(f"Data Docs (Great Expectations): {index}")
    console.print(f"Full log of this run: {ctx.log_file}")
