"""The generated dbt projects run for real: sample data in raw, `dbt build` and `dbt source freshness` on PostgreSQL.

Each spec's sample data is loaded straight into its raw tables (tests/support/raw_loader.py, independent
of the runtime), then dbt builds every model and runs every test. The expected mart contents are computed
here from the sample files with plain Python, following the spec's rules, never copied from dbt's output.

Freshness: the loader stamps `_ingested_at` with now(), so freshness checks on the ingestion time and
`dbt source freshness` pass. A freshness check on a business timestamp of the 2024 sample data is stale
by construction: with severity warn it must warn; with severity error it would fail the build, so those
checks (only iot_sensors' `sensor_api.readings.measured_at`) are excluded from the build with --exclude.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from platformgen.compiler import Compiled, compile_spec
from platformgen.plan.build import Check
from platformgen.writer import write_files
from tests.support.raw_loader import load_raw
from tests.support.services import PgServer
from tests.test_dbt_target import write_unit_spec

REPO = Path(__file__).resolve().parents[1]
CENT = Decimal("0.01")

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- harness


@dataclass
class Outcome:
    """Status (and failure count) of every node of a dbt invocation, by node name."""

    success: bool
    status: dict[str, str]
    failures: dict[str, int]

    def failing(self) -> dict[str, str]:
        return {name: s for name, s in self.status.items() if s not in ("success", "pass")}


@dataclass
class Platform:
    """A compiled spec with sample data in a fresh warehouse, ready for dbt."""

    compiled: Compiled
    spec: Path
    project: Path
    work: Path
    url: str

    def dbt(self, *args: str) -> Any:
        from dbt.cli.main import dbtRunner

        project = str(self.project)
        return dbtRunner().invoke(
            [
                *args,
                "--project-dir",
                project,
                "--profiles-dir",
                project,
                "--target-path",
                str(self.work / "target"),
                "--log-path",
                str(self.work / "logs"),
            ]
        )

    def build(self, *args: str) -> Outcome:
        result = self.dbt("build", *args)
        assert result.result is not None, result.exception
        status = {r.node.name: str(r.status) for r in result.result.results}
        failures = {r.node.name: int(r.failures or 0) for r in result.result.results}
        return Outcome(bool(result.success), status, failures)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query).fetchall()

    def check(self, check_id: str) -> Check:
        return next(c for c in self.compiled.plan.checks if c.id == check_id)


@pytest.fixture
def platform_for(pg_server: PgServer, pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Compile a spec, load its sample data into a fresh database and point dbt's profile at it."""

    def make(spec: Path) -> Platform:
        compiled = compile_spec(spec)
        out = tmp_path / "out"
        write_files(out, compiled.files, compiled.plan.spec_label)
        with psycopg.connect(pg_database) as conn:
            counts = load_raw(conn, compiled.plan, spec, compiled.files["warehouse/bootstrap.sql"])
        assert all(counts.values()), f"a dataset without sample rows: {counts}"
        env = {
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PLATFORMGEN_WAREHOUSE_HOST": pg_server.host,
            "PLATFORMGEN_WAREHOUSE_PORT": str(pg_server.port),
            "PLATFORMGEN_WAREHOUSE_USER": pg_server.user,
            "PLATFORMGEN_WAREHOUSE_DBNAME": unquote(urlsplit(pg_database).path.lstrip("/")),
            "PLATFORMGEN_WAREHOUSE_SSLMODE": "prefer",
            "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD": pg_server.password,
            # a server whose default time zone is not the platform's (and is not a whole hour from UTC):
            # the models must still compute hours and days in UTC
            "PGTZ": "Asia/Kolkata",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return Platform(compiled, spec, out / "dbt", tmp_path, pg_database)

    return make


def stale_by_design(platform: Platform) -> tuple[set[str], set[str]]:
    """Freshness checks on a business timestamp of the (2024) sample data: (error severity, warn severity)."""
    stale = [c for c in platform.compiled.plan.checks if c.kind == "freshness" and c.param("column") is not None]
    return {c.id for c in stale if c.severity == "error"}, {c.id for c in stale if c.severity == "warn"}


def build_everything(platform: Platform, expected_warnings: Collection[str] = ()) -> Outcome:
    """`dbt build`: every model builds, every test passes except the expected warnings (and stale-by-design)."""
    excluded, stale_warnings = stale_by_design(platform)
    args = [a for name in sorted(excluded) for a in ("--exclude", name)]
    outcome = platform.build(*args)
    plan = platform.compiled.plan
    models = {t.staging_model for t in plan.tables} | {m.name for m in plan.models}
    assert {n: s for n, s in outcome.status.items() if n in models} == dict.fromkeys(models, "success")
    expected = dict.fromkeys({*expected_warnings, *stale_warnings}, "warn")
    assert outcome.failing() == expected
    assert outcome.success
    tests = {c.id for c in plan.checks} - excluded
    assert tests <= set(outcome.status), f"tests that did not run: {tests - set(outcome.status)}"
    return outcome


def assert_source_freshness_runs(platform: Platform) -> None:
    """`dbt source freshness` checks every raw table with an SLA; the loader just loaded them all."""
    result = platform.dbt("source", "freshness")
    assert result.success, result.exception
    checked = {r.node.name: str(r.status) for r in (result.result.results if result.result else [])}
    plan = platform.compiled.plan
    with_sla = {
        t.raw_table
        for t in plan.tables
        if (sla := plan.sla_for(t.key)) is not None and (sla.warn_after or sla.error_after)
    }
    assert set(checked) == with_sla
    assert set(checked.values()) <= {"pass", "warn"}


def snapshot(platform: Platform) -> dict[str, list[tuple[Any, ...]]]:
    """Every model's rows, sorted: to compare two builds."""
    plan = platform.compiled.plan
    schemas = plan.warehouse.schemas
    relations = [(schemas.staging, t.staging_model) for t in plan.tables] + [(m.schema, m.name) for m in plan.models]
    return {name: sorted(platform.rows(f'select * from "{schema}"."{name}"'), key=repr) for schema, name in relations}


def rebuild_is_idempotent(platform: Platform, expected_warnings: Collection[str] = ()) -> None:
    """A second build (incremental models take their incremental path) leaves every model as it was."""
    before = snapshot(platform)
    build_everything(platform, expected_warnings)
    assert snapshot(platform) == before


# --------------------------------------------------------------------------- sample data in plain Python


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def read_pages(folder: Path, records: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for page in sorted(folder.glob("page-*.json")):
        node: Any = json.loads(page.read_text(encoding="utf-8"))
        for part in records.split("."):
            node = node[part]
        rows.extend(node)
    return rows


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def money(value: Any) -> Decimal:
    return Decimal(str(value))


def latest(rows: list[dict[str, Any]], key: Any, order: Any) -> list[dict[str, Any]]:
    """One row per key: the one with the greatest `order` value (the silver dedup)."""
    best: dict[Any, dict[str, Any]] = {}
    for row in rows:
        k = key(row)
        if k not in best or order(row) > order(best[k]):
            best[k] = row
    return list(best.values())


# --------------------------------------------------------------------------- the specs


def test_acme_shop(platform_for: Any) -> None:
    platform: Platform = platform_for(REPO / "specs")
    build_everything(platform)
    assert_source_freshness_runs(platform)
    data = REPO / "specs" / "data"

    # daily_revenue: paid, shipped and delivered orders in EUR at the rate of the order date, per day
    rates = latest(
        read_pages(data / "fx_rates" / "daily_rates", "data.rates"),
        key=lambda r: (r["rate_date"], r["currency"].strip().upper()),
        order=lambda r: utc(r["published_at"]),
    )
    rate = {(r["rate_date"], r["currency"].strip().upper()): money(r["rate_to_eur"]) for r in rates}
    customers = {int(r["customer_id"]) for r in read_csv(data / "shop_db" / "customers.csv")}
    days: dict[dt.date, list[Decimal]] = defaultdict(list)
    revenue: dict[dt.date, Decimal] = defaultdict(Decimal)
    for order in read_csv(data / "shop_db" / "orders.csv"):
        day = utc(order["created_at"]).date()
        fx = rate.get((day.isoformat(), order["currency"].strip()))
        if order["is_test"] == "true" or fx is None or int(order["customer_id"]) not in customers:
            continue  # filtered in silver, or dropped by the inner joins of int_orders_enriched
        amount = (money(order["amount"]) * fx).quantize(CENT, ROUND_HALF_UP)
        days[day].append(amount)
        if order["status"].strip().lower() in ("paid", "shipped", "delivered"):
            revenue[day] += amount
    rows = platform.rows("select order_date, orders_placed, revenue_eur from marts.daily_revenue")
    assert len(rows) == len(days)
    assert {d: (n, r) for d, n, r in rows} == {d: (len(days[d]), revenue[d]) for d in days}
    assert sum(r for _, _, r in rows) == sum(revenue.values())

    # daily_web_funnel: distinct sessions per UTC day, after dropping events delivered twice
    events = [
        json.loads(line)
        for f in sorted((data / "events").glob("*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    first = latest(events, key=lambda e: e["event_id"], order=lambda e: -utc(e["occurred_at"]).timestamp())
    sessions: dict[dt.date, set[str]] = defaultdict(set)
    for event in first:
        sessions[utc(event["occurred_at"]).date()].add(event["session_id"])
    funnel = dict(platform.rows("select day, sessions from marts.daily_web_funnel"))
    assert funnel == {day: len(ids) for day, ids in sessions.items()}

    rebuild_is_idempotent(platform)


def test_acme_shop_incremental_staging_keeps_the_latest_version(platform_for: Any) -> None:
    """New versions of an order landing in raw replace the old one in the incremental staging model; late old ones do not."""
    platform: Platform = platform_for(REPO / "specs")
    build_everything(platform)
    orders = platform.rows("select count(*) from staging.stg_shop_db__orders")
    order_id, day, amount = platform.rows(
        "select order_id, order_date, amount_eur from intermediate.int_orders_enriched "
        "where status = 'delivered' order by order_id limit 1"
    )[0]
    revenue = platform.rows(f"select revenue_eur from marts.daily_revenue where order_date = '{day}'")[0][0]

    def land(status: str, shift: str, run_id: str) -> None:
        columns = "order_id, customer_id, status, channel, currency, amount, is_test, created_at, updated_at"
        with psycopg.connect(platform.url) as conn:
            conn.execute(
                f"insert into raw.shop_db__orders ({columns}, _run_id) select order_id, customer_id, %s, channel, "
                f"currency, amount, is_test, created_at, updated_at + interval '{shift}', %s "
                "from raw.shop_db__orders where order_id = %s and _run_id = 'sample'",
                (status, run_id, order_id),
            )

    def current() -> list[tuple[Any, ...]]:
        return platform.rows(f"select status from staging.stg_shop_db__orders where order_id = {order_id}")

    land("CANCELLED", "1 day", "second")
    land("placed", "-1 day", "late")  # an older version arriving late
    build_everything(platform)
    assert current() == [("cancelled",)]
    assert platform.rows(f"select revenue_eur from marts.daily_revenue where order_date = '{day}'") == [
        (revenue - amount,)
    ]
    land("Shipped", "2 days", "third")  # only this run's rows are new to the incremental model now
    build_everything(platform)
    assert current() == [("shipped",)]
    assert platform.rows("select count(*) from staging.stg_shop_db__orders") == orders
    assert platform.rows(f"select revenue_eur from marts.daily_revenue where order_date = '{day}'") == [(revenue,)]


def test_minimal_csv(platform_for: Any) -> None:
    spec = REPO / "examples" / "minimal_csv"
    platform: Platform = platform_for(spec)
    build_everything(platform)
    assert_source_freshness_runs(platform)
    receipts: dict[tuple[dt.date, str], list[Decimal]] = defaultdict(list)
    for row in read_csv(spec / "data" / "sales" / "sales_2024-03.csv"):
        receipts[(utc(row["sold_at"]).date(), row["store"].strip().lower())].append(money(row["amount"]))
    rows = platform.rows("select day, store, receipts, revenue from marts.daily_sales")
    assert {(d, s): (n, r) for d, s, n, r in rows} == {k: (len(v), sum(v)) for k, v in receipts.items()}
    assert sum(r for *_, r in rows) == sum(sum(v) for v in receipts.values())
    rebuild_is_idempotent(platform)


def test_saas_billing(platform_for: Any) -> None:
    spec = REPO / "examples" / "saas_billing"
    platform: Platform = platform_for(spec)
    build_everything(platform)
    assert_source_freshness_runs(platform)
    months: dict[dt.date, dict[str, Any]] = defaultdict(lambda: defaultdict(Decimal))
    for invoice in read_csv(spec / "data" / "billing_db" / "invoices.csv"):
        status = invoice["status"].strip()
        if status in ("draft", "void"):  # draft: silver filter; void: the aggregate's filter
            continue
        month = dt.date.fromisoformat(invoice["issued_on"]).replace(day=1)
        amount = money(invoice["amount_eur"])
        months[month]["invoices"] += 1
        months[month]["invoiced"] += amount
        months[month]["collected"] += amount if status == "paid" else 0
        months[month]["outstanding"] += amount if status == "open" else 0
    rows = platform.rows(
        "select month, invoices, invoiced_eur, collected_eur, outstanding_eur from marts.monthly_billing"
    )
    expected = {m: (v["invoices"], v["invoiced"], v["collected"], v["outstanding"]) for m, v in months.items()}
    assert {m: tuple(r) for m, *r in rows} == expected
    rebuild_is_idempotent(platform)


def test_iot_sensors(platform_for: Any) -> None:
    spec = REPO / "examples" / "iot_sensors"
    platform: Platform = platform_for(spec)
    # the sample data is designed to trip two warn-level checks: low batteries and a device offline for hours
    designed = {"sensor_api__readings__range__battery_pct_2", "device_uptime__range__uptime_pct_2"}
    assert {platform.check(c).severity for c in designed} == {"warn"}
    outcome = build_everything(platform, designed)
    excluded, _ = stale_by_design(platform)
    assert excluded == {"sensor_api__readings__freshness"}  # measured_at of 2024: stale, error severity
    assert_source_freshness_runs(platform)

    readings = latest(
        read_pages(spec / "data" / "sensor_api" / "readings", "items"),
        key=lambda r: r["reading_id"],
        order=lambda r: utc(r["measured_at"]),
    )
    assert outcome.failures["sensor_api__readings__range__battery_pct_2"] == sum(
        1 for r in readings if r["battery_pct"] is not None and r["battery_pct"] < 15
    )
    devices = {int(d["device_id"]): d for d in read_csv(spec / "data" / "fleet_db" / "devices.csv")}
    sites = {int(s["site_id"]): s for s in read_csv(spec / "data" / "fleet_db" / "sites.csv")}
    groups: dict[tuple[dt.datetime, int, str], list[Decimal]] = defaultdict(list)
    for reading in readings:
        device = devices.get(reading["device_id"])
        if device is None or int(device["site_id"]) not in sites:
            continue  # inner joins of int_readings_enriched
        hour = utc(reading["measured_at"]).replace(minute=0, second=0, microsecond=0)
        groups[(hour, int(device["site_id"]), device["device_type"].strip().lower())].append(
            money(reading["temperature_c"])
        )
    rows = platform.rows(
        "select hour, site_id, device_type, readings, avg_temperature_c from marts.hourly_sensor_averages"
    )
    assert len(rows) == len(groups)
    assert sum(r[3] for r in rows) == sum(len(v) for v in groups.values())
    expected = {k: (len(v), (sum(v) / len(v)).quantize(CENT, ROUND_HALF_UP)) for k, v in groups.items()}
    assert {(h.astimezone(dt.UTC), s, t): (n, a) for h, s, t, n, a in rows} == expected
    # the spec's own SQL truncates with the session's time zone: the models' sessions run in the platform's (UTC)
    alert_hours = [hour for (hour,) in platform.rows("select alert_hour from marts.temperature_alerts")]
    assert alert_hours
    assert all(hour.astimezone(dt.UTC).minute == 0 for hour in alert_hours)
    rebuild_is_idempotent(platform, designed)


def test_spec_literals_reach_the_warehouse_unrendered(platform_for: Any, tmp_path: Path) -> None:
    """Jinja-looking text in spec SQL, filters, measures and test values is data, not code, in the built models."""
    platform: Platform = platform_for(write_unit_spec(tmp_path / "unit_spec"))
    build_everything(platform)  # every test passes, '{{ bad }}' and "o'clock" among the accepted values
    assert platform.rows("select distinct injected, raw_tag from work.int_orders") == [
        ('{{ env_var("HOME") }}', "{% raw %}")
    ]
    # the filter `note <> '{{ secret }}'` dropped order 2 (and the test order 4) in silver
    assert [r[0] for r in platform.rows("select order_id from silver.stg_shop__orders order by 1")] == [1, 3, 5]
    assert platform.rows("select status, note from silver.stg_shop__orders where order_id = 3") == [("o'clock", "de")]
    assert platform.rows("select distinct label from gold.hourly_orders") == [("{{ x }}",)]
    assert platform.rows("select orders from gold.daily_orders order by day, region_code") == [(1,), (1,), (1,)]
    # the contract created `orders` with its declared type, not count(*)'s bigint
    assert platform.rows(
        "select data_type from information_schema.columns where table_schema = 'gold' "
        "and table_name = 'daily_orders' and column_name = 'orders'"
    ) == [("integer",)]


def test_bad_rows_in_raw_fail_exactly_their_tests(platform_for: Any) -> None:
    """A duplicate key is resolved by the silver dedup; a NULL key and an out-of-range value fail their tests."""
    platform: Platform = platform_for(REPO / "examples" / "minimal_csv")
    columns = "receipt_id, sold_at, store, product, quantity, amount, _run_id"
    with psycopg.connect(platform.url) as conn:
        [(first,)] = conn.execute("select min(receipt_id) from raw.sales__receipts").fetchall()
        conn.execute(
            f"insert into raw.sales__receipts ({columns}) "
            f"select {columns.replace('_run_id', quote_run('bad'))} from raw.sales__receipts where receipt_id = %s",
            (first,),
        )
        conn.execute(
            f"insert into raw.sales__receipts ({columns}) values "
            "(null, '2024-03-02T10:00:00+00:00', 'downtown', 'muffin', 1, 3.10, 'bad'), "
            "(999999, '2024-03-02T11:00:00+00:00', 'harbour', 'scone', 0, 2.50, 'bad')"
        )
    excluded, _ = stale_by_design(platform)
    outcome = platform.build(*[a for name in sorted(excluded) for a in ("--exclude", name)])
    checks = platform.compiled.plan.checks_for("sales.receipts")
    not_null = next(c.id for c in checks if c.kind == "not_null" and c.column == "receipt_id")
    in_range = next(c.id for c in checks if c.kind == "range" and c.column == "quantity")
    check_ids = {c.id for c in platform.compiled.plan.checks}
    failing_tests = {n: s for n, s in outcome.failing().items() if n in check_ids and s != "skipped"}
    assert failing_tests == {not_null: "fail", in_range: "fail"}
    # error-severity failures in staging stop the layers built on it: their tests are skipped, not failed
    skipped = {n for n, s in outcome.status.items() if s == "skipped" and n in check_ids}
    assert skipped == {c.id for c in platform.compiled.plan.checks if "." not in c.dataset}
    assert outcome.failures[not_null] == 1
    assert outcome.failures[in_range] == 1
    assert not outcome.success
    unique = next(c.id for c in checks if c.kind == "unique" and c.column == "receipt_id")
    assert outcome.status[unique] == "pass", "the duplicate key must be removed by the silver dedup"
    assert platform.rows(f"select count(*) from staging.stg_sales__receipts where receipt_id = {int(first)}") == [(1,)]


def quote_run(run_id: str) -> str:
    return "'" + run_id.replace("'", "''") + "'"
