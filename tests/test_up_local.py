"""`platformgen up --local` runs each spec end to end on embedded services, and a second run changes nothing.

The end-to-end tests run the real command in a subprocess (Airflow reads its configuration when first
imported, so a fresh process is the faithful way), each with its own state and output folders, and check:

- the command exits 0 (failed checks that the sample data trips on purpose are reported, not fatal);
- every raw table holds exactly the sample records (counted by tests/support/raw_loader.py, independently of
  the runtime), and the marts have the row counts computed here from the sample files with plain Python,
  following the spec's rules (the same computations as tests/test_dbt_e2e.py);
- a second run exits 0 and leaves the row count of every raw table, staging model and model unchanged.

All four specs run by default (about 1.5 minutes each for the two runs on 2 cores);
PLATFORMGEN_TEST_UP_LOCAL_QUICK=1 keeps only specs/ and iot_sensors (the example whose sample data fails an
error-severity dbt test and GX check). The fast tests below check the sample API replay against the runtime's
own pager (one per pagination style), the deployed-project sync, and which failures make `up` exit 1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformgen.compiler import compile_spec
from platformgen.deploy.local import env_refs, sync_tree
from platformgen.deploy.local_sample import SAMPLE_HEADER, EndpointReplay, ReplayServer
from platformgen.plan.build import Plan
from platformgen.spec.models import ApiEndpoint
from tests.support.raw_loader import sample_files, sample_rows
from tests.test_dbt_e2e import latest, read_csv, read_pages, utc

REPO = Path(__file__).resolve().parents[1]
QUICK_FLAG = "PLATFORMGEN_TEST_UP_LOCAL_QUICK"
SPECS = {
    "specs": REPO / "specs",
    "iot_sensors": REPO / "examples" / "iot_sensors",
    "minimal_csv": REPO / "examples" / "minimal_csv",
    "saas_billing": REPO / "examples" / "saas_billing",
}
QUICK = {"specs", "iot_sensors"}


# --------------------------------------------------------------------------- expected mart rows, from the sample files


def _acme_shop(spec: Path) -> dict[str, int]:
    data = spec / "data"
    rates = latest(
        read_pages(data / "fx_rates" / "daily_rates", "data.rates"),
        key=lambda r: (r["rate_date"], r["currency"].strip().upper()),
        order=lambda r: utc(r["published_at"]),
    )
    rate = {(r["rate_date"], r["currency"].strip().upper()) for r in rates}
    customers = {int(r["customer_id"]) for r in read_csv(data / "shop_db" / "customers.csv")}
    days: set[dt.date] = set()
    revenue_customers: set[int] = set()
    for order in read_csv(data / "shop_db" / "orders.csv"):
        day = utc(order["created_at"]).date()
        if order["is_test"] == "true" or (day.isoformat(), order["currency"].strip()) not in rate:
            continue  # filtered in silver, or dropped by the join on the day's FX rate
        if int(order["customer_id"]) not in customers:
            continue  # dropped by the join on customers
        days.add(day)
        if order["status"].strip().lower() in ("paid", "shipped", "delivered"):
            revenue_customers.add(int(order["customer_id"]))
    events = [
        json.loads(line)
        for f in sorted((data / "events").glob("*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    first = latest(events, key=lambda e: e["event_id"], order=lambda e: -utc(e["occurred_at"]).timestamp())
    spend = {
        (row["day"], row["channel"].strip().lower())
        for f in sorted((data / "marketing").glob("spend_*.csv"))
        for row in read_csv(f)
    }
    return {
        "daily_revenue": len(days),
        "daily_web_funnel": len({utc(e["occurred_at"]).date() for e in first}),
        "customer_lifetime_value": len(revenue_customers),
        "marketing_roi": len(spend),
    }


def _iot_sensors(spec: Path) -> dict[str, int]:
    data = spec / "data"
    readings = latest(
        read_pages(data / "sensor_api" / "readings", "items"),
        key=lambda r: r["reading_id"],
        order=lambda r: utc(r["measured_at"]),
    )
    devices = {int(d["device_id"]): d for d in read_csv(data / "fleet_db" / "devices.csv")}
    sites = {int(s["site_id"]) for s in read_csv(data / "fleet_db" / "sites.csv")}
    groups = set()
    for reading in readings:
        device = devices.get(reading["device_id"])
        if device is None or int(device["site_id"]) not in sites:
            continue  # inner joins of int_readings_enriched
        hour = utc(reading["measured_at"]).replace(minute=0, second=0, microsecond=0)
        groups.add((hour, int(device["site_id"]), device["device_type"].strip().lower()))
    weeks = set()
    for file in sorted((data / "maintenance").glob("maintenance_*.json")):
        for log in json.loads(file.read_text()):
            day = utc(log["started_at"]).date()
            weeks.add((day - dt.timedelta(days=day.weekday()), log["action"]))
    return {"hourly_sensor_averages": len(groups), "maintenance_activity": len(weeks)}


def _minimal_csv(spec: Path) -> dict[str, int]:
    rows = read_csv(spec / "data" / "sales" / "sales_2024-03.csv")
    return {
        "daily_sales": len({(utc(r["sold_at"]).date(), r["store"].strip().lower()) for r in rows}),
        "product_ranking": len({r["product"] for r in rows}),
    }


def _saas_billing(spec: Path) -> dict[str, int]:
    months = {
        dt.date.fromisoformat(i["issued_on"]).replace(day=1)
        for i in read_csv(spec / "data" / "billing_db" / "invoices.csv")
        if i["status"].strip() not in ("draft", "void")  # draft: silver filter; void: the aggregate's filter
    }
    return {"monthly_billing": len(months)}


EXPECTED = {
    "specs": _acme_shop,
    "iot_sensors": _iot_sensors,
    "minimal_csv": _minimal_csv,
    "saas_billing": _saas_billing,
}


# --------------------------------------------------------------------------- harness


def up(spec: Path, work: Path, warehouse_url: str | None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "platformgen", "up", "--local", str(spec), "-o", "out", "--state", "state"]
    if warehouse_url:
        command += ["--warehouse-url", warehouse_url]
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=1200, check=False)


def down(work: Path, *, wipe: bool = False) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "platformgen",
        "down",
        "--local",
        "--state",
        "state",
        *(["--wipe"] if wipe else []),
    ]
    return subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=120, check=False)


def warehouse(work: Path) -> str:
    state = json.loads((work / "state" / "local.json").read_text())
    server = str(state["server_url"])
    head, _, query = server.partition("?")
    return head.rsplit("/", 1)[0] + "/" + str(state["warehouse_database"]) + ("?" + query if query else "")


def row_counts(url: str, plan: Plan) -> dict[str, int]:
    schemas = plan.warehouse.schemas
    relations = [(schemas.raw, t.raw_table) for t in plan.tables]
    relations += [(schemas.staging, t.staging_model) for t in plan.tables]
    relations += [(m.schema, m.name) for m in plan.models]
    with psycopg.connect(url) as conn:
        return {
            f"{schema}.{name}": conn.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]  # type: ignore[index]
            for schema, name in relations
        }


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-3000:]}"


@pytest.fixture
def external_warehouse() -> Iterator[str | None]:
    """With PLATFORMGEN_TEST_PG_URL, a fresh warehouse database on that server (else the embedded one)."""
    admin = os.environ.get("PLATFORMGEN_TEST_PG_URL")
    if not admin:
        yield None
        return
    from tests.support.services import PgServer

    server = PgServer(admin)
    name = server.create_database("wh_local")
    try:
        yield server.database_url(name)
    finally:
        server.drop_database(name)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SPECS))
def test_up_local_runs_every_pipeline_and_is_idempotent(
    name: str, tmp_path: Path, external_warehouse: str | None
) -> None:
    if name not in QUICK and os.environ.get(QUICK_FLAG):
        pytest.skip(f"{QUICK_FLAG} is set: up --local runs on {', '.join(sorted(QUICK))} only")
    spec = SPECS[name]
    plan = compile_spec(spec).plan
    first = up(spec, tmp_path, external_warehouse)
    try:
        assert first.returncode == 0, _tail(first)
        for text in ("Data by layer", "Models", "Checks", "Look at the marts", "psql"):
            assert text in first.stdout, _tail(first)
        url = external_warehouse or warehouse(tmp_path)
        counts = row_counts(url, plan)

        # raw holds every sample record once, silver and the marts what the spec's rules make of them
        root = spec if spec.is_dir() else spec.parent
        for source in plan.sources:
            for table in source.tables:
                expected = len(sample_rows(root, source, table))
                assert counts[f"{plan.warehouse.schemas.raw}.{table.raw_table}"] == expected, table.key
        for model, rows in EXPECTED[name](spec).items():
            assert counts[f"{plan.model(model).schema}.{model}"] == rows, model
        assert all(counts.values()), {k: v for k, v in counts.items() if not v}

        # the compiled output stays clean: run artifacts live in the state folder
        assert not (tmp_path / "out" / "dbt" / "target").exists()
        assert not list((tmp_path / "out" / "great_expectations" / "uncommitted").rglob("*.html"))

        second = up(spec, tmp_path, external_warehouse)
        assert second.returncode == 0, _tail(second)
        assert "is up to date" in second.stdout
        assert row_counts(url, plan) == counts
        file_sources = [s for s in plan.sources if s.kind == "file"]
        landing_files = sum(len(sample_files(root, s, t)) for s in file_sources for t in s.tables)
        with psycopg.connect(url) as conn:
            ingested = conn.execute(
                "select count(*) from data_platform.ingestion_log where stage = 'extract' and status = 'success' "
                "and file_name is not null and source = any(%s)",
                ([s.name for s in file_sources],),
            ).fetchone()
        assert ingested == (landing_files,), "each landing file is ingested exactly once"

        stopped = down(tmp_path, wipe=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not (tmp_path / "state").exists()
    finally:
        if (tmp_path / "state").exists():
            down(tmp_path)  # stop the embedded server, keep the state folder to look into


# --------------------------------------------------------------------------- fast: the sample API replay


def _endpoint(pagination: dict[str, Any] | None) -> ApiEndpoint:
    return ApiEndpoint.model_validate(
        {
            "name": "things",
            "path": "/things",
            "records": "data.items",
            "pagination": pagination,
            "columns": {"id": "bigint"},
        }
    )


def _pages(folder: Path, sizes: list[int]) -> list[int]:
    folder.mkdir(parents=True)
    ids = []
    start = 0
    for n, size in enumerate(sizes, 1):
        items = [{"id": start + i} for i in range(size)]
        ids += [item["id"] for item in items]
        start += size
        following = None if n == len(sizes) else f"token-{uuid.uuid4().hex[:6]}"
        document = {"data": {"items": items}, "meta": {"next": following}}
        (folder / f"page-{n:03d}.json").write_text(json.dumps(document))
    return ids


@pytest.mark.parametrize(
    ("pagination", "sizes"),
    [
        ({"type": "page_number", "param": "p", "start": 0, "size_param": "n", "size": 3}, [3, 3, 2]),
        ({"type": "offset", "param": "skip", "limit_param": "take", "limit": 3}, [3, 3, 3]),
        ({"type": "cursor", "cursor_path": "meta.next", "param": "after"}, [3, 3, 1]),
        ({"type": "link_header"}, [2, 2, 2]),
        (None, [2, 1]),
    ],
    ids=["page_number", "offset", "cursor", "link_header", "none"],
)
def test_replay_serves_the_recorded_pages_to_the_runtime_pager(
    tmp_path: Path, pagination: dict[str, Any] | None, sizes: list[int]
) -> None:
    from platformgen.runtime.extract_api import _Pager
    from platformgen.runtime.http import HttpClient

    expected = _pages(tmp_path / "things", sizes)
    endpoint = _endpoint(pagination)
    server = ReplayServer()
    server.start()
    try:
        route = "/api/v1/things"
        server.routes[route] = EndpointReplay("api", endpoint, tmp_path / "things", route)
        table = {
            "records": endpoint.records,
            "pagination": None if endpoint.pagination is None else endpoint.pagination.model_dump(),
        }
        with HttpClient() as client:
            pager = _Pager(client, server.url + route, {"since": "2024-01-01"}, table)
            got = [record["id"] for page in pager for record in page.records]
            sample = client.get(server.url + route)
        assert got == expected
        assert sample.headers[SAMPLE_HEADER].startswith("recorded sample response:")
    finally:
        server.stop()


def test_sync_tree_mirrors_the_output_and_keeps_run_artifacts(tmp_path: Path) -> None:
    source, target = tmp_path / "out", tmp_path / "project"
    (source / "models").mkdir(parents=True)
    (source / "models" / "a.sql").write_text("select 1")
    (source / "dbt_project.yml").write_text("name: x")
    (target / "models").mkdir(parents=True)
    (target / "models" / "gone.sql").write_text("select 2")
    (target / "target").mkdir()
    (target / "target" / "run_results.json").write_text("{}")
    assert sync_tree(source, target, keep=("target",)) == 2
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "dbt_project.yml",
        "models/a.sql",
        "target/run_results.json",
    ]
    assert sync_tree(source, target, keep=("target",)) == 0


def test_env_refs_finds_every_reference() -> None:
    data = {"a": "env:ONE", "b": {"token": "env:TWO", "x": ["env:THREE", {"key": "env:FOUR"}]}, "c": "plain"}
    assert sorted(env_refs(data)) == [("", "THREE"), ("a", "ONE"), ("key", "FOUR"), ("token", "TWO")]


# --------------------------------------------------------------------------- fast: how failures count


def _results(project: Path, nodes: list[tuple[str, str]]) -> None:
    """Write a dbt run_results.json with (unique_id, status) nodes."""
    target = project / "target"
    target.mkdir(parents=True, exist_ok=True)
    results = [{"unique_id": uid, "status": status, "message": None, "failures": None} for uid, status in nodes]
    (target / "run_results.json").write_text(json.dumps({"results": results}))


def test_a_layer_failing_on_tests_only_builds_the_blocked_models_and_lets_the_next_layer_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.exceptions import AirflowSkipException

    from platformgen.deploy import local_runner

    events: list[tuple[str, dict[str, Any]]] = []
    rebuilt: list[list[str]] = []

    def emit(event: str, **fields: Any) -> None:
        events.append((event, fields))

    def build_skipped(fn: Any, project: Path, models: list[str], results_file: Path) -> list[dict[str, Any]]:
        rebuilt.append(models)
        return [{"type": "model", "name": m, "status": "success"} for m in models]

    monkeypatch.setattr(local_runner, "_build_skipped", build_skipped)
    state = local_runner.TransformState()

    def tests_fail(**context: Any) -> None:
        _results(tmp_path, [("model.p.int_a", "success"), ("test.p.check_a.1", "fail"), ("model.p.int_b", "skipped")])
        raise RuntimeError("dbt build of layer 'intermediate' failed")

    layer = local_runner._dbt_layer_callable(emit, tests_fail, "intermediate", tmp_path, state)
    with pytest.raises(RuntimeError):
        layer()
    assert rebuilt == [["int_b"]]
    assert state.failed_layer is None
    assert events[-1][0] == "dbt_results"
    assert [n["name"] for n in events[-1][1]["rebuilt"]] == ["int_b"]

    def models_fail(**context: Any) -> None:
        _results(tmp_path, [("model.p.mart_a", "error"), ("model.p.mart_b", "skipped")])
        raise RuntimeError("dbt build of layer 'marts' failed")

    with pytest.raises(RuntimeError):
        local_runner._dbt_layer_callable(emit, models_fail, "marts", tmp_path, state)()
    assert state.failed_layer == "marts"
    later = local_runner._dbt_layer_callable(emit, lambda **c: None, "exports", tmp_path, state)
    with pytest.raises(AirflowSkipException):
        later()


def test_exit_code_counts_ingestion_and_models_not_checks() -> None:
    from platformgen.deploy.local_report import DagOutcome, RunOutcome

    def outcome(dbt_status: str, ingestion: str = "success") -> RunOutcome:
        run = RunOutcome(finished=True)
        run.dags = [
            DagOutcome("p__ingest__a", "ingestion", state=ingestion),
            DagOutcome(
                "p__transform",
                "transformation",
                state="success",
                tasks=[{"task_id": "staging.dbt_build", "state": "failed"}],
                errors={"staging.dbt_build": "DbtBuildError: ..."},
            ),
            DagOutcome(
                "p__quality", "quality", state="failed", tasks=[{"task_id": "silver.checkpoint", "state": "failed"}]
            ),
        ]
        run.dbt = {
            "staging": {
                "nodes": [
                    {"type": "model", "name": "stg_a", "status": dbt_status},
                    {"type": "test", "name": "a__freshness", "status": "fail"},
                ],
                "rebuilt": [],
            }
        }
        return run

    assert outcome("success").exit_code == 0  # failed tests and expectations are reported, not fatal
    assert outcome("error").exit_code == 1
    assert outcome("error").transformation_failed() == ["dbt model stg_a failed"]
    assert outcome("success", ingestion="failed").exit_code == 1
    assert RunOutcome(finished=False).exit_code == 1  # the runner stopped early
