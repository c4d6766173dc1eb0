"""SLA decisions (pure), their recording with per-day dedupe, and the monitor end to end on PostgreSQL and Airflow."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

import psycopg
import pytest

from platformgen.runtime import callbacks, tasks
from platformgen.runtime.sla import (
    Miss,
    SlaBreached,
    check_slas,
    deadline_miss,
    evaluate_sla,
    format_duration,
    freshness_miss,
    last_raw_load,
    parse_ready_by,
    record_misses,
    should_record,
)
from platformgen.runtime.warehouse import connect_warehouse, ensure_platform_schema

UTC = dt.UTC
NOW = dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
HOUR = 3600


@pytest.fixture(scope="session")
def airflow_home(airflow_db: str) -> str:
    """AIRFLOW_HOME with a migrated SQLite metadata DB.

    tests/conftest.py already points AIRFLOW_HOME, AIRFLOW__CORE__LOAD_EXAMPLES=False and a SQLite
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN at a temporary folder before anything imports airflow, and its
    `airflow_db` fixture runs `airflow db migrate` once per process; this name is what the runtime tests use.
    Airflow is imported inside the tests only, after that environment is in place.
    """
    return airflow_db


def sla(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "dataset": "shop_db.orders",
        "relation": "raw.shop_db__orders",
        "layer": "raw",
        "dag_id": "acme_shop__ingest__shop_db",
        "task_id": "orders.load",
        "warn_after_seconds": 3 * HOUR,
        "error_after_seconds": 6 * HOUR,
        "ready_by": None,
        "notify": [],
    }
    item.update(overrides)
    return item


# --------------------------------------------------------------------------- pure decisions


def test_fresh_data_is_no_miss() -> None:
    assert freshness_miss(sla(), NOW - dt.timedelta(hours=1), NOW) is None
    assert freshness_miss(sla(), NOW - dt.timedelta(hours=3), NOW) is None  # exactly warn_after: not older


def test_older_than_warn_after_is_a_warning() -> None:
    miss = freshness_miss(sla(), NOW - dt.timedelta(hours=4), NOW)
    assert miss is not None
    assert (miss.dataset, miss.kind, miss.severity) == ("shop_db.orders", "freshness", "warn")
    assert miss.expected == "updated within 3h (warn) / 6h (error)"
    assert miss.observed == "last updated 2024-05-01T05:30:00+00:00, 4h ago"


def test_older_than_error_after_is_an_error() -> None:
    miss = freshness_miss(sla(), NOW - dt.timedelta(hours=7, minutes=5), NOW)
    assert miss is not None
    assert miss.severity == "error"
    assert miss.observed.endswith("7h 5m ago")


def test_error_only_and_warn_only_slas() -> None:
    error_only = sla(warn_after_seconds=None)
    assert freshness_miss(error_only, NOW - dt.timedelta(hours=5), NOW) is None
    assert freshness_miss(error_only, NOW - dt.timedelta(hours=7), NOW).severity == "error"  # type: ignore[union-attr]
    warn_only = sla(error_after_seconds=None)
    assert freshness_miss(warn_only, NOW - dt.timedelta(days=30), NOW).severity == "warn"  # type: ignore[union-attr]


def test_never_updated_is_a_miss() -> None:
    assert freshness_miss(sla(), None, NOW) == Miss(
        "shop_db.orders", "freshness", "error", "updated within 3h (warn) / 6h (error)", "never updated"
    )
    assert freshness_miss(sla(error_after_seconds=None), None, NOW).severity == "warn"  # type: ignore[union-attr]
    # Without freshness thresholds there is no freshness check at all.
    assert (
        freshness_miss(sla(warn_after_seconds=None, error_after_seconds=None, ready_by="07:00 UTC"), None, NOW) is None
    )


def test_naive_timestamps_are_utc() -> None:
    naive_now = NOW.replace(tzinfo=None)
    assert freshness_miss(sla(), (NOW - dt.timedelta(hours=4)).replace(tzinfo=None), naive_now).severity == "warn"  # type: ignore[union-attr]


def test_deadline_not_yet_due() -> None:
    deadline = sla(warn_after_seconds=None, error_after_seconds=None, ready_by="10:00 UTC")
    assert deadline_miss(deadline, None, NOW) is None


def test_deadline_met_by_an_update_today() -> None:
    deadline = sla(warn_after_seconds=None, error_after_seconds=None, ready_by="07:00 UTC")
    assert deadline_miss(deadline, dt.datetime(2024, 5, 1, 0, 0, tzinfo=UTC), NOW) is None
    assert deadline_miss(deadline, dt.datetime(2024, 5, 1, 8, 59, tzinfo=UTC), NOW) is None  # late, but there


def test_deadline_missed() -> None:
    deadline = sla(warn_after_seconds=None, error_after_seconds=None, ready_by="07:00 UTC")
    yesterday = dt.datetime(2024, 4, 30, 23, 59, tzinfo=UTC)
    miss = deadline_miss(deadline, yesterday, NOW)
    assert miss == Miss(
        "shop_db.orders",
        "deadline",
        "error",
        "updated by 07:00 UTC on 2024-05-01",
        "last updated 2024-04-30T23:59:00+00:00, before today",
    )
    assert deadline_miss(deadline, None, dt.datetime(2024, 5, 1, 7, 0, tzinfo=UTC)).observed == "never updated"  # type: ignore[union-attr]
    # A deadline in another zone's local time is compared in UTC.
    assert deadline_miss(deadline, yesterday, NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))) is not None


def test_evaluate_sla_reports_freshness_and_deadline() -> None:
    both = sla(ready_by="06:00 UTC")
    kinds = [(m.kind, m.severity) for m in evaluate_sla(both, NOW - dt.timedelta(hours=12), NOW)]
    assert kinds == [("freshness", "error"), ("deadline", "error")]
    assert evaluate_sla(both, NOW - dt.timedelta(minutes=5), NOW) == []


def test_dedupe_decision() -> None:
    assert should_record(None, "warn")
    assert not should_record("warn", "warn")
    assert not should_record("error", "warn")
    assert not should_record("error", "error")
    assert should_record("warn", "error")  # an escalation is news


def test_helpers() -> None:
    assert parse_ready_by("07:00 UTC") == dt.time(7, 0, tzinfo=UTC)
    assert parse_ready_by("23:59") == dt.time(23, 59, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a deadline"):
        parse_ready_by("7am")
    assert [format_duration(s) for s in (5, 600, 3 * HOUR, 3 * HOUR + 300, 26 * HOUR, 48 * HOUR)] == [
        "5s",
        "10m",
        "3h",
        "3h 5m",
        "1d 2h",
        "2d",
    ]


# --------------------------------------------------------------------------- recording (PostgreSQL)


def make_platform() -> dict[str, Any]:
    return {
        "name": "acme_shop",
        "warehouse": {"conn_id": None, "host": "env:WAREHOUSE_HOST", "database": "warehouse", "user": "u"},
        "schemas": {"raw": "raw", "platform": "data_platform"},
        "alerting": {
            "email": {"to": ["data-oncall@acme.example"], "from": "airflow@acme.example"},
            "slack": {"channel": "#data-alerts", "webhook": "env:SLACK_WEBHOOK_URL"},
            "routes": [
                {"severity": "error", "owner": None, "notify": ["email", "slack"]},
                {"severity": "warn", "owner": None, "notify": ["slack"]},
            ],
        },
    }


@pytest.fixture
def platform(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A platform whose warehouse is the test database; no Slack or SMTP configured (delivery only warns)."""
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    for name in ("SLACK_WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return make_platform()


def rows(platform: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with connect_warehouse(platform) as conn:
        return list(conn.execute(sql).fetchall())


def add_load(
    platform: dict[str, Any],
    source: str,
    dataset: str,
    finished: dt.datetime,
    status: str = "success",
    stage: str = "load",
) -> None:
    with connect_warehouse(platform) as conn:
        ensure_platform_schema(conn, platform)
        conn.execute(
            "insert into data_platform.ingestion_log (run_id, source, dataset, stage, status, started_at, finished_at) "
            "values ('r', %s, %s, %s, %s, %s, %s)",
            (source, dataset, stage, status, finished - dt.timedelta(minutes=2), finished),
        )


def test_misses_are_recorded_once_per_dataset_kind_and_day(platform: dict[str, Any]) -> None:
    warn = Miss("shop_db.orders", "freshness", "warn", "within 3h", "4h ago", "run1")
    assert record_misses(platform, [warn], now=NOW) == [warn]
    assert record_misses(platform, [warn], now=NOW + dt.timedelta(minutes=15)) == []
    deadline = Miss("shop_db.orders", "deadline", "error", "by 07:00", "never", "run2")
    assert record_misses(platform, [deadline], now=NOW + dt.timedelta(minutes=30)) == [deadline]
    # Escalation the same day updates today's row instead of adding one.
    error = Miss("shop_db.orders", "freshness", "error", "within 3h / 6h", "7h ago", "run3")
    assert record_misses(platform, [error], now=NOW + dt.timedelta(hours=3)) == [error]
    assert record_misses(platform, [warn], now=NOW + dt.timedelta(hours=4)) == []
    # A new UTC day is a new row.
    assert record_misses(platform, [warn], now=NOW + dt.timedelta(days=1)) == [warn]
    got = rows(
        platform,
        "select dataset, kind, severity, observed, run_id, detected_at from data_platform.sla_misses order by id",
    )
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [
        ("freshness", "error", "7h ago", "run3"),
        ("deadline", "error", "never", "run2"),
        ("freshness", "warn", "4h ago", "run1"),
    ]
    assert got[0][5] == NOW  # first detection time is kept on escalation
    # Without dedupe (Airflow task SLA misses, which Airflow reports once each) every miss is a row.
    task_sla = Miss("shop_db.orders", "task_sla", "warn", "on time", "late")
    record_misses(platform, [task_sla, task_sla], now=NOW, dedupe=False)
    assert rows(platform, "select count(*) from data_platform.sla_misses where kind = 'task_sla'") == [(2,)]


def test_raw_freshness_reads_successful_loads_under_either_dataset_spelling(platform: dict[str, Any]) -> None:
    add_load(platform, "shop_db", "orders", NOW - dt.timedelta(hours=5))
    add_load(platform, "shop_db", "shop_db.orders", NOW - dt.timedelta(hours=4))
    add_load(platform, "shop_db", "orders", NOW - dt.timedelta(hours=1), status="failed")
    add_load(platform, "shop_db", "orders", NOW - dt.timedelta(minutes=30), stage="extract")
    add_load(platform, "other_db", "orders", NOW - dt.timedelta(minutes=10))
    with connect_warehouse(platform) as conn:
        assert last_raw_load(conn, platform, "shop_db.orders") == NOW - dt.timedelta(hours=4)
        assert last_raw_load(conn, platform, "shop_db.customers") is None


# --------------------------------------------------------------------------- the monitor end to end


def raw_slas() -> list[dict[str, Any]]:
    return [
        sla(dataset="shop_db.customers", task_id="customers.load", relation="raw.shop_db__customers"),
        sla(dataset="shop_db.orders", notify=["data-platform", "orders-team@acme.example"]),
        sla(
            dataset="fx_rates.daily_rates",
            relation="raw.fx_rates__daily_rates",
            dag_id="acme_shop__ingest__fx_rates",
            task_id="daily_rates.load",
            warn_after_seconds=26 * HOUR,
            error_after_seconds=50 * HOUR,
            ready_by="06:30 UTC",
            notify=["slack"],
        ),
    ]


def test_check_slas_records_alerts_and_fails_on_errors(
    platform: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="platformgen")
    add_load(platform, "shop_db", "customers", NOW - dt.timedelta(hours=1))  # fresh
    add_load(platform, "shop_db", "orders", NOW - dt.timedelta(hours=8))  # error (6h)
    add_load(platform, "shop_db", "orders", NOW - dt.timedelta(hours=1), status="failed")  # does not count
    add_load(platform, "fx_rates", "daily_rates", NOW - dt.timedelta(hours=20))  # fresh, but not today: deadline
    with pytest.raises(SlaBreached, match="2 SLA miss") as raised:
        check_slas(platform, raw_slas(), run_id="scheduled__1", now=NOW)
    assert raised.value.already_alerted is True
    assert "shop_db.orders freshness" in str(raised.value)
    misses = rows(
        platform, "select dataset, kind, severity, run_id from data_platform.sla_misses order by dataset, kind"
    )
    assert misses == [
        ("fx_rates.daily_rates", "deadline", "error", "scheduled__1"),
        ("shop_db.orders", "freshness", "error", "scheduled__1"),
    ]
    alerts = rows(
        platform,
        "select kind, severity, dataset, dag_id, task_id, run_id, channels, delivered, message "
        "from data_platform.alerts order by dataset",
    )
    assert [(a[0], a[1], a[2], a[3], a[4], a[5]) for a in alerts] == [
        (
            "sla_miss",
            "error",
            "fx_rates.daily_rates",
            "acme_shop__ingest__fx_rates",
            "daily_rates.load",
            "scheduled__1",
        ),
        ("sla_miss", "error", "shop_db.orders", "acme_shop__ingest__shop_db", "orders.load", "scheduled__1"),
    ]
    # Routes (error: email + slack) plus the SLA's own notify list; no channel reachable here, so undelivered.
    assert alerts[1][6] == [
        "slack:#data-alerts",
        "email:data-oncall@acme.example",
        "email:orders-team@acme.example",
    ]
    assert alerts[1][7] is False
    assert "shop_db.orders is stale (error)" in alerts[1][8]
    assert "raw.shop_db__orders" in alerts[1][8]
    assert "no address known for data-platform" in caplog.text

    # The next run a quarter of an hour later: still failing, but nothing new recorded or alerted.
    with pytest.raises(SlaBreached):
        check_slas(platform, raw_slas(), run_id="scheduled__2", now=NOW + dt.timedelta(minutes=15))
    assert rows(platform, "select count(*) from data_platform.sla_misses") == [(2,)]
    assert rows(platform, "select count(*) from data_platform.alerts") == [(2,)]


def test_check_slas_with_warnings_only_succeeds(platform: dict[str, Any]) -> None:
    add_load(platform, "shop_db", "customers", NOW - dt.timedelta(hours=1))
    add_load(platform, "shop_db", "orders", NOW - dt.timedelta(hours=4))  # warn
    result = check_slas(platform, raw_slas()[:2], run_id="r", now=NOW)
    assert result.checked == 2
    assert [(m.dataset, m.kind, m.severity) for m in result.misses] == [("shop_db.orders", "freshness", "warn")]
    assert result.alerted == result.misses
    assert rows(platform, "select kind, severity, channels from data_platform.alerts") == [
        ("sla_miss", "warn", ["slack:#data-alerts", "email:orders-team@acme.example"])
    ]


def test_lookup_errors_fail_the_monitor_after_checking_the_rest(platform: dict[str, Any]) -> None:
    def lookup(conn: Any, platform: dict[str, Any], item: dict[str, Any]) -> dt.datetime | None:
        if item["dataset"] == "shop_db.customers":
            raise ConnectionError("metadata DB at postgresql://af:s3cret@meta/airflow is down")
        return NOW - dt.timedelta(hours=4)

    with pytest.raises(RuntimeError, match=r"could not read the last update of: shop_db\.customers") as raised:
        check_slas(platform, raw_slas()[:2], now=NOW, lookup=lookup)
    assert "s3cret" not in str(raised.value)
    assert rows(platform, "select dataset, severity from data_platform.sla_misses") == [("shop_db.orders", "warn")]


def test_model_freshness_and_deadline_from_airflow_task_instances(airflow_home: str, platform: dict[str, Any]) -> None:
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType

    dag = DAG("sla_test__transform", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=UTC))
    build = EmptyOperator(task_id="marts.dbt_build", dag=dag)
    EmptyOperator(task_id="intermediate.dbt_build", dag=dag)
    with create_session() as session:
        for i, (state, ended) in enumerate(
            [
                (TaskInstanceState.SUCCESS, NOW - dt.timedelta(hours=14)),  # yesterday evening
                (TaskInstanceState.FAILED, NOW - dt.timedelta(hours=1)),  # failures do not count
            ]
        ):
            logical = ended - dt.timedelta(minutes=10)
            run = dag.create_dagrun(
                run_id=f"run_{i}",
                state=DagRunState.SUCCESS,
                execution_date=logical,
                data_interval=(logical, logical),
                run_type=DagRunType.MANUAL,
                session=session,
            )
            ti = run.get_task_instance(build.task_id, session=session)
            assert ti is not None
            ti.state = state
            ti.end_date = ended
            session.merge(ti)
    gold = sla(
        dataset="daily_revenue",
        relation="marts.daily_revenue",
        layer="gold",
        dag_id="sla_test__transform",
        task_id="marts.dbt_build",
        warn_after_seconds=6 * HOUR,
        error_after_seconds=None,
        ready_by="07:00 UTC",
        notify=["analytics@acme.example"],
    )
    never = {**gold, "dataset": "daily_web_funnel", "task_id": "intermediate.dbt_build", "warn_after_seconds": None}
    with pytest.raises(SlaBreached):
        check_slas(platform, [gold, never], run_id="m1", now=NOW)
    assert rows(platform, "select dataset, kind, severity, observed from data_platform.sla_misses order by id") == [
        ("daily_revenue", "freshness", "warn", "last updated 2024-04-30T19:30:00+00:00, 14h ago"),
        ("daily_revenue", "deadline", "error", "last updated 2024-04-30T19:30:00+00:00, before today"),
        ("daily_web_funnel", "deadline", "error", "never updated"),
    ]
    channels = rows(platform, "select channels from data_platform.alerts where dataset = 'daily_revenue' limit 1")
    assert "email:analytics@acme.example" in channels[0][0]


def test_sla_miss_callback_with_airflow_objects(airflow_home: str, platform: dict[str, Any]) -> None:
    from airflow import DAG
    from airflow.models.slamiss import SlaMiss
    from airflow.operators.python import PythonOperator

    table = {"name": "orders", "dataset": "shop_db.orders"}
    with DAG("sla_test__ingest", schedule="@hourly", start_date=dt.datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        PythonOperator(
            task_id="orders.load",
            python_callable=print,
            op_kwargs={"source": {"name": "shop_db", "owner": "data-platform"}, "table": table},
            sla=dt.timedelta(hours=3),
        )
    logical = dt.datetime(2024, 5, 1, 5, tzinfo=UTC)
    slas = [SlaMiss(task_id="orders.load", dag_id=dag.dag_id, execution_date=logical, timestamp=NOW)]
    callbacks.on_sla_miss(platform, dag, f"orders.load on {logical.isoformat()}", "orders.load on x", slas, [])
    assert rows(
        platform, "select dataset, kind, severity, expected, observed, run_id from data_platform.sla_misses"
    ) == [
        (
            "shop_db.orders",
            "task_sla",
            "warn",
            "orders.load done within 3:00:00 of the run's logical date",
            "not done at 2024-05-01T09:30:00+00:00",
            "2024-05-01T05:00:00+00:00",
        )
    ]
    [(kind, severity, dataset, dag_id, message)] = rows(
        platform, "select kind, severity, dataset, dag_id, message from data_platform.alerts"
    )
    assert (kind, severity, dataset, dag_id) == ("sla_miss", "warn", "shop_db.orders", "sla_test__ingest")
    assert "Blocking tasks" in message


def test_monitor_task_in_a_real_dag_run(airflow_home: str, platform: dict[str, Any]) -> None:
    """tasks.check_slas as the generated SLA DAG runs it: the error fails the task, alerted only once."""
    from airflow import DAG
    from airflow.operators.python import PythonOperator
    from airflow.utils.state import TaskInstanceState

    add_load(platform, "shop_db", "orders", dt.datetime.now(UTC) - dt.timedelta(hours=8))
    with DAG(
        "sla_test__sla_monitor",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=UTC),
        default_args={"retries": 0, "on_failure_callback": functools.partial(callbacks.on_task_failure, platform)},
    ) as dag:
        PythonOperator(
            task_id="check_slas",
            python_callable=tasks.check_slas,
            op_kwargs={"platform": platform, "slas": [sla()]},
        )
    run = dag.test()
    [ti] = run.get_task_instances()
    assert ti.state == TaskInstanceState.FAILED
    # One sla_miss alert; no second task_failure alert for the same news.
    assert rows(platform, "select kind, severity, dataset from data_platform.alerts") == [
        ("sla_miss", "error", "shop_db.orders")
    ]


def test_monitor_task_returns_a_summary(platform: dict[str, Any]) -> None:
    add_load(platform, "shop_db", "orders", dt.datetime.now(UTC) - dt.timedelta(minutes=5))
    result = tasks.check_slas(platform, [sla()], run_id="manual__x")
    assert result == {"checked": 1, "misses": [], "alerted": [], "lookup_errors": []}


def test_recorded_misses_are_committed(platform: dict[str, Any], pg_database: str) -> None:
    """The rows above are visible to any client: the runtime commits what it records."""
    record_misses(platform, [Miss("x", "freshness", "warn", "e", "o")], now=NOW)
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("select count(*) from data_platform.sla_misses").fetchone() == (1,)
