"""SLA monitoring: freshness and ready-by deadlines of datasets, recorded in sla_misses and alerted once per day.

The decision logic is pure (timestamps and `now` in, misses out) and lives in `freshness_miss`,
`deadline_miss`, `evaluate_sla` and `should_record`; the rest reads the last successful update, records and
alerts.

Where the last successful update comes from:

- layer ``raw`` (dataset ``source.table``): the latest ``finished_at`` of a successful ``load`` in
  ``data_platform.ingestion_log`` with that ``source`` and ``dataset`` equal to the table name or to the full
  ``source.table`` key (both spellings are accepted, so the check does not depend on which one the load
  writes);
- every model layer: the latest ``end_date`` of a successful Airflow TaskInstance of the SLA's
  ``dag_id``/``task_id`` in Airflow's metadata database. No such update means "never": a miss.

Severity: freshness older than ``error_after_seconds`` is an error, older than ``warn_after_seconds`` a
warning; a dataset never updated is an error when the SLA has ``error_after_seconds``, else a warning. A
missed ready-by deadline (after today's ``ready_by`` UTC, no update since today 00:00 UTC) is an error.

Dedupe: at most one sla_misses row per dataset, kind and UTC day. A later check the same day that finds the
same or a lower severity records and alerts nothing; one that finds a higher severity (warn -> error)
updates that row and alerts again.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("platformgen.runtime.sla")

UTC = dt.UTC
DEADLINE_SEVERITY = "error"
_RANK = {"warn": 1, "error": 2}
_READY_BY = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)(?:\s*UTC)?\s*$")


class SlaBreached(RuntimeError):
    """At least one error-severity SLA miss; every miss has been recorded and alerted already."""

    #: Tells the failure callback that the alerts went out (see callbacks.on_task_failure).
    already_alerted = True


@dataclass(frozen=True)
class Miss:
    """One SLA miss, as stored in data_platform.sla_misses."""

    dataset: str
    kind: str  # freshness | deadline | task_sla
    severity: str  # warn | error
    expected: str
    observed: str
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- pure decisions


def format_duration(seconds: float) -> str:
    """A short human duration: `45s`, `12m`, `3h 5m`, `2d 4h`."""
    total = int(max(seconds, 0))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def parse_ready_by(value: str) -> dt.time:
    """`07:00 UTC` (or `07:00`) -> 07:00 UTC."""
    match = _READY_BY.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a deadline: expected HH:MM UTC")
    return dt.time(int(match.group(1)), int(match.group(2)), tzinfo=UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_start(now: dt.datetime) -> dt.datetime:
    """00:00 UTC of the day of `now`."""
    now = _utc(now)
    return dt.datetime(now.year, now.month, now.day, tzinfo=UTC)


def freshness_miss(sla: dict[str, Any], last_success: dt.datetime | None, now: dt.datetime) -> Miss | None:
    """A freshness miss when the data is older than warn_after/error_after (or was never updated), else None."""
    warn, error = sla.get("warn_after_seconds"), sla.get("error_after_seconds")
    if warn is None and error is None:
        return None
    parts = []
    if warn is not None:
        parts.append(f"{format_duration(warn)} (warn)")
    if error is not None:
        parts.append(f"{format_duration(error)} (error)")
    expected = "updated within " + " / ".join(parts)
    if last_success is None:
        severity = "error" if error is not None else "warn"
        return Miss(str(sla["dataset"]), "freshness", severity, expected, "never updated")
    age = (_utc(now) - _utc(last_success)).total_seconds()
    if error is not None and age > error:
        severity = "error"
    elif warn is not None and age > warn:
        severity = "warn"
    else:
        return None
    observed = f"last updated {_utc(last_success).isoformat(timespec='seconds')}, {format_duration(age)} ago"
    return Miss(str(sla["dataset"]), "freshness", severity, expected, observed)


def deadline_miss(sla: dict[str, Any], last_success: dt.datetime | None, now: dt.datetime) -> Miss | None:
    """A deadline miss when today's ready_by (UTC) has passed without an update since today 00:00 UTC."""
    ready_by = sla.get("ready_by")
    if not ready_by:
        return None
    now = _utc(now)
    start = day_start(now)
    deadline = dt.datetime.combine(start.date(), parse_ready_by(str(ready_by)))
    if now < deadline:
        return None
    if last_success is not None and _utc(last_success) >= start:
        return None
    expected = f"updated by {deadline.strftime('%H:%M')} UTC on {start.date().isoformat()}"
    if last_success is None:
        observed = "never updated"
    else:
        observed = f"last updated {_utc(last_success).isoformat(timespec='seconds')}, before today"
    return Miss(str(sla["dataset"]), "deadline", DEADLINE_SEVERITY, expected, observed)


def evaluate_sla(sla: dict[str, Any], last_success: dt.datetime | None, now: dt.datetime) -> list[Miss]:
    """Every miss of one SLA at `now`, given the time of the dataset's last successful update."""
    return [m for m in (freshness_miss(sla, last_success, now), deadline_miss(sla, last_success, now)) if m]


def should_record(recorded_severity: str | None, severity: str) -> bool:
    """Dedupe: record (and alert) unless today's row for the dataset and kind is at least as severe."""
    if recorded_severity is None:
        return True
    return _RANK.get(severity, 0) > _RANK.get(recorded_severity, 0)


# --------------------------------------------------------------------------- where the timestamps come from


def last_raw_load(conn: Any, platform: dict[str, Any], dataset: str) -> dt.datetime | None:
    """The end of the latest successful load of `source.table` into raw, from ingestion_log."""
    from platformgen.runtime.warehouse import quote_ident

    source, _, table = dataset.partition(".")
    schema = quote_ident(platform["schemas"]["platform"])
    with conn.cursor() as cur:
        cur.execute(
            f"select max(coalesce(finished_at, started_at)) from {schema}.ingestion_log "
            "where source = %s and dataset in (%s, %s) and stage = 'load' and status = 'success'",
            (source, table, dataset),
        )
        row = cur.fetchone()
    return None if row is None or row[0] is None else _utc(row[0])


def last_task_success(dag_id: str, task_id: str) -> dt.datetime | None:
    """The end of the latest successful run of an Airflow task, from Airflow's metadata database."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        value = (
            session.query(TaskInstance.end_date)
            .filter(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.SUCCESS,
                TaskInstance.end_date.isnot(None),
            )
            .order_by(TaskInstance.end_date.desc())
            .limit(1)
            .scalar()
        )
    return None if value is None else _utc(value)


def last_success(conn: Any, platform: dict[str, Any], sla: dict[str, Any]) -> dt.datetime | None:
    """The last successful update of an SLA's dataset: ingestion_log for raw, Airflow for models."""
    if sla.get("layer") == "raw":
        return last_raw_load(conn, platform, str(sla["dataset"]))
    return last_task_success(str(sla["dag_id"]), str(sla["task_id"]))


# --------------------------------------------------------------------------- recording and alerting


def record_misses(
    platform: dict[str, Any],
    misses: Sequence[Miss],
    *,
    now: dt.datetime | None = None,
    dedupe: bool = True,
    conn: Any = None,
) -> list[Miss]:
    """Insert misses into sla_misses; with dedupe, one row per dataset/kind/UTC day (escalations update it).

    Returns the misses that were recorded or escalated, i.e. the ones to alert on.
    """
    from platformgen.runtime.warehouse import connect_warehouse, ensure_platform_schema

    if not misses:
        return []
    now = _utc(now or dt.datetime.now(UTC))
    if conn is None:
        with connect_warehouse(platform, autocommit=True) as own:
            ensure_platform_schema(own, platform)
            return _record(own, platform, misses, now, dedupe)
    ensure_platform_schema(conn, platform)
    return _record(conn, platform, misses, now, dedupe)


def _record(conn: Any, platform: dict[str, Any], misses: Sequence[Miss], now: dt.datetime, dedupe: bool) -> list[Miss]:
    from platformgen.runtime.warehouse import quote_ident

    schema = quote_ident(platform["schemas"]["platform"])
    start = day_start(now)
    end = start + dt.timedelta(days=1)
    recorded: list[Miss] = []
    for miss in misses:
        with conn.transaction(), conn.cursor() as cur:
            existing: tuple[Any, ...] | None = None
            if dedupe:
                # Serialise concurrent monitors on this dataset/kind, then look at today's row.
                cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"sla_misses:{miss.dataset}:{miss.kind}",))
                cur.execute(
                    f"select id, severity from {schema}.sla_misses where dataset = %s and kind = %s "
                    "and detected_at >= %s and detected_at < %s "
                    "order by case severity when 'error' then 2 when 'warn' then 1 else 0 end desc, id limit 1",
                    (miss.dataset, miss.kind, start, end),
                )
                existing = cur.fetchone()
                if existing is not None and not should_record(str(existing[1]), miss.severity):
                    continue
            if existing is not None:
                cur.execute(
                    f"update {schema}.sla_misses set severity = %s, expected = %s, observed = %s, run_id = %s "
                    "where id = %s",
                    (miss.severity, miss.expected, miss.observed, miss.run_id, existing[0]),
                )
            else:
                cur.execute(
                    f"insert into {schema}.sla_misses (detected_at, dataset, kind, severity, expected, observed, "
                    "run_id) values (%s, %s, %s, %s, %s, %s, %s)",
                    (now, miss.dataset, miss.kind, miss.severity, miss.expected, miss.observed, miss.run_id),
                )
            recorded.append(miss)
    return recorded


def alert_message(sla: dict[str, Any], miss: Miss) -> str:
    """The text of an SLA-miss alert."""
    what = "is stale" if miss.kind == "freshness" else "missed its ready-by deadline"
    return (
        f"SLA miss: {miss.dataset} {what} ({miss.severity}).\n"
        f"Expected: {miss.expected}.\nObserved: {miss.observed}.\n"
        f"Relation {sla.get('relation')}, produced by task {sla.get('dag_id')}.{sla.get('task_id')}."
    )


@dataclass
class CheckResult:
    """What one run of the SLA monitor found."""

    checked: int
    misses: list[Miss]
    alerted: list[Miss]
    lookup_errors: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "misses": [m.to_dict() for m in self.misses],
            "alerted": [m.to_dict() for m in self.alerted],
            "lookup_errors": list(self.lookup_errors),
        }


def check_slas(
    platform: dict[str, Any],
    slas: Sequence[dict[str, Any]],
    *,
    run_id: str | None = None,
    now: dt.datetime | None = None,
    lookup: Callable[[Any, dict[str, Any], dict[str, Any]], dt.datetime | None] = last_success,
) -> CheckResult:
    """Evaluate every SLA, record new misses (deduplicated per day) and alert them; raise when any is an error.

    Raises SlaBreached (after recording and alerting everything) when a miss has severity error, and
    RuntimeError when the last update of some dataset could not be read.
    """
    from platformgen.runtime.alerts import raise_alert
    from platformgen.runtime.settings import scrub
    from platformgen.runtime.warehouse import connect_warehouse, ensure_platform_schema

    now = _utc(now or dt.datetime.now(UTC))
    misses: list[tuple[dict[str, Any], Miss]] = []
    errors: list[str] = []
    alerted: list[Miss] = []
    with connect_warehouse(platform, autocommit=True) as conn:
        ensure_platform_schema(conn, platform)
        for sla in slas:
            try:
                last = lookup(conn, platform, sla)
            except Exception as exc:
                errors.append(f"{sla.get('dataset')}: {scrub(f'{type(exc).__name__}: {exc}')}")
                log.warning("cannot read the last update of %s: %s", sla.get("dataset"), errors[-1])
                continue
            found = [Miss(**{**m.to_dict(), "run_id": run_id}) for m in evaluate_sla(sla, last, now)]
            log.info(
                "%s: last update %s -> %s",
                sla.get("dataset"),
                last.isoformat(timespec="seconds") if last else "never",
                ", ".join(f"{m.kind} {m.severity}" for m in found) or "ok",
            )
            misses.extend((sla, m) for m in found)
        new = record_misses(platform, [m for _, m in misses], now=now, conn=conn)
    for sla, miss in misses:
        if miss not in new:
            continue
        raise_alert(
            platform,
            kind="sla_miss",
            severity=miss.severity,
            message=alert_message(sla, miss),
            dataset=miss.dataset,
            dag_id=sla.get("dag_id"),
            task_id=sla.get("task_id"),
            run_id=run_id,
            owner=sla.get("owner"),
            notify=list(sla.get("notify") or []),
        )
        alerted.append(miss)
    result = CheckResult(len(slas), [m for _, m in misses], alerted, errors)
    failing = [m for m in result.misses if m.severity == "error"]
    if errors:
        raise RuntimeError(
            "SLA monitor could not read the last update of: "
            + "; ".join(errors)
            + (f" (and {len(failing)} error-severity SLA miss(es))" if failing else "")
        )
    if failing:
        raise SlaBreached(
            f"{len(failing)} SLA miss(es) of severity error: "
            + "; ".join(f"{m.dataset} {m.kind} ({m.observed})" for m in failing)
        )
    return result
