"""Superset target: bundle contents, layout and roles; the deploy client's requests; the bundle imported by Superset 6.1.

The last test runs tests/support/superset_check.py with the Superset venv made by scripts/setup_tool_venvs.sh:
Superset's own import schemas validate every file, ImportDashboardsCommand and ImportAssetsCommand import the
zip into a throwaway SQLite metadata DB, and roles.json goes through Flask-AppBuilder's import_roles.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.compiler import compile_spec, load_plan
from platformgen.deploy.superset import (
    SupersetDeployError,
    build_bundle_zip,
    deploy_superset,
    import_bundle,
    refresh_datasets,
    rison,
)
from platformgen.targets.superset import PASSWORD_MASK, SupersetTarget, object_uuid
from platformgen.targets.superset_charts import chart_params, metric_name
from platformgen.writer import write_files
from tests.support.http_server import Reply
from tests.support.rest_server import BodyRequest, RestTestServer, rest_server

REPO = Path(__file__).resolve().parents[1]
SPECS = [REPO / "specs", *sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())]
VENV = Path(os.environ.get("TOOL_VENV_DIR", REPO)) / ".venv-superset"
ENV = {"WAREHOUSE_USER": "superset_reader", "WAREHOUSE_PASSWORD": "pw-from-env"}


def _bundle_yaml(files: dict[str, str], prefix: str) -> dict[str, dict[str, Any]]:
    return {path: yaml.safe_load(text) for path, text in files.items() if path.startswith(prefix)}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, str]]:
    return {spec.name: SupersetTarget().render(load_plan(spec)) for spec in SPECS}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each spec compiled into a folder; returns its superset/ folder."""
    folders = {}
    for spec in SPECS:
        out = tmp_path_factory.mktemp(f"superset-{spec.name}")
        result = compile_spec(spec)
        write_files(out, result.files, result.plan.spec_label)
        folders[spec.name] = out / "superset"
    return folders


def test_bundle_has_one_dashboard_file_per_dashboard_and_one_dataset_per_used_gold_model(
    rendered: dict[str, dict[str, str]],
) -> None:
    for spec in SPECS:
        plan, files = load_plan(spec), rendered[spec.name]
        assert {p for p in files if p.startswith("superset/dashboards/")} == {
            f"superset/dashboards/{d.name}.yaml" for d in plan.dashboards
        }
        used = {c.model for d in plan.dashboards for c in d.charts}
        datasets = _bundle_yaml(files, "superset/datasets/")
        assert {d["table_name"] for d in datasets.values()} == used
        assert all(plan.model(d["table_name"]).layer == "gold" for d in datasets.values())
        assert len(_bundle_yaml(files, "superset/charts/")) == sum(len(d.charts) for d in plan.dashboards)
        assert yaml.safe_load(files["superset/metadata.yaml"]) == {"version": "1.0.0"}


def test_uuids_are_stable_and_link_the_objects(rendered: dict[str, dict[str, str]]) -> None:
    files = rendered["specs"]
    assert SupersetTarget().render(load_plan(REPO / "specs")) == files
    database = yaml.safe_load(files["superset/databases/warehouse.yaml"])
    assert database["uuid"] == object_uuid("acme_shop", "database") == "75bbde99-2a5e-5887-9d8a-193568fe885b"
    datasets = {d["uuid"]: d for d in _bundle_yaml(files, "superset/datasets/").values()}
    assert {d["database_uuid"] for d in datasets.values()} == {database["uuid"]}
    charts = {c["uuid"]: c for c in _bundle_yaml(files, "superset/charts/").values()}
    assert {c["dataset_uuid"] for c in charts.values()} <= set(datasets)
    for dashboard in _bundle_yaml(files, "superset/dashboards/").values():
        positioned = [v["meta"]["uuid"] for v in dashboard["position"].values() if _chart(v)]
        assert positioned
        assert set(positioned) <= set(charts)


def _chart(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "CHART"


def test_dashboard_rows_fill_the_12_column_grid_in_spec_order(rendered: dict[str, dict[str, str]]) -> None:
    plan = load_plan(REPO / "specs")
    dashboard = yaml.safe_load(rendered["specs"]["superset/dashboards/revenue.yaml"])
    position = dashboard["position"]
    rows = [[position[c]["meta"]["width"] for c in position[r]["children"]] for r in position["GRID_ID"]["children"]]
    assert rows == [[8, 4], [6, 6], [4, 8], [12]]
    titles = [
        position[c]["meta"]["sliceName"] for r in position["GRID_ID"]["children"] for c in position[r]["children"]
    ]
    spec = next(d for d in plan.dashboards if d.name == "revenue")
    assert titles == [c.title for c in spec.charts]
    for row in position["GRID_ID"]["children"]:
        for chart in position[row]["children"]:
            assert position[chart]["parents"] == ["ROOT_ID", "GRID_ID", row]
            assert isinstance(position[chart]["meta"]["chartId"], int)
    # the marketing dashboard: 4+4+4, 6+6, 4+8, 12
    marketing = yaml.safe_load(rendered["specs"]["superset/dashboards/marketing.yaml"])["position"]
    widths = [
        [marketing[c]["meta"]["width"] for c in marketing[r]["children"]] for r in marketing["GRID_ID"]["children"]
    ]
    assert widths == [[4, 4, 4], [6, 6], [4, 8], [12]]


def test_every_chart_type_maps_to_its_viz_and_metrics_are_saved_on_the_dataset(
    rendered: dict[str, dict[str, str]],
) -> None:
    seen = set()
    for spec in SPECS:
        plan, files = load_plan(spec), rendered[spec.name]
        datasets = {d["uuid"]: d for d in _bundle_yaml(files, "superset/datasets/").values()}
        for chart in _bundle_yaml(files, "superset/charts/").values():
            seen.add(chart["viz_type"])
            assert chart["params"]["viz_type"] == chart["viz_type"]
            saved = {m["metric_name"] for m in datasets[chart["dataset_uuid"]]["metrics"]}
            params = chart["params"]
            for metric in [params.get("metric"), *params.get("metrics", [])]:
                if metric is not None:
                    assert metric in saved, (spec.name, chart["slice_name"], metric)
        for dataset in datasets.values():
            model = plan.model(dataset["table_name"])
            assert [c["column_name"] for c in dataset["columns"]] == [c.name for c in model.columns]
            if dataset["main_dttm_col"] is not None:
                column = next(c for c in dataset["columns"] if c["column_name"] == dataset["main_dttm_col"])
                assert column["is_dttm"] is True
    assert seen >= {
        "big_number_total",
        "echarts_timeseries_line",
        "echarts_timeseries_bar",
        "echarts_area",
        "table",
        "pie",
    }


def test_metric_names_and_measure_rollups(rendered: dict[str, dict[str, str]]) -> None:
    assert metric_name("sum(revenue_eur)") == "sum__revenue_eur"
    assert metric_name("count(*)") == "count"
    assert metric_name("AVG( uptime_pct )") == "avg__uptime_pct"
    odd = metric_name("sum(a) / nullif(sum(b), 0)")
    assert odd.startswith("sum_a_nullif_sum_b_0_")
    assert odd == metric_name("sum(a) / nullif(sum(b), 0)")
    files = rendered["specs"]
    funnel = yaml.safe_load(files["superset/datasets/warehouse/daily_web_funnel.yaml"])
    metrics = {m["metric_name"]: m["expression"] for m in funnel["metrics"]}
    # measures of an aggregate model re-aggregate: sums of counts and sums; the chart's own metric comes first
    assert metrics["sum__sessions"] == "sum(sessions)"
    assert metrics["sum__page_views"] == "SUM(page_views)"
    assert metrics["count"] == "COUNT(*)"
    product = yaml.safe_load(files["superset/datasets/warehouse/product_performance.yaml"])
    assert product["main_dttm_col"] == "week"
    iot = yaml.safe_load(rendered["iot_sensors"]["superset/datasets/warehouse/hourly_sensor_averages.yaml"])
    by_name = {m["metric_name"]: m["expression"] for m in iot["metrics"]}
    assert by_name["max__max_temperature_c"] == "MAX(max_temperature_c)"
    assert by_name["avg__avg_humidity_pct"] == "AVG(avg_humidity_pct)"
    assert next(c for c in iot["columns"] if c["column_name"] == "hour")["type"] == "TIMESTAMP WITH TIME ZONE"


def test_chart_params_per_type() -> None:
    from platformgen.spec.models import Chart

    line = chart_params(Chart(title="t", type="line", model="m", x="day", metric="sum(x)", time_grain="week"))
    assert line["x_axis"] == "day"
    assert line["time_grain_sqla"] == "P1W"
    assert line["metrics"] == ["sum__x"]
    assert line["adhoc_filters"][0]["operator"] == "TEMPORAL_RANGE"
    area = chart_params(Chart(title="t", type="area", model="m", x="day", dimension="c", metric="sum(x)"))
    assert area["groupby"] == ["c"]
    assert area["stack"] == "Stack"
    bar = chart_params(Chart(title="t", type="bar", model="m", dimension="c", metric="count(*)"))
    assert bar["x_axis"] == "c"
    assert bar["groupby"] == []
    assert bar["metrics"] == ["count"]
    table = chart_params(Chart(title="t", type="table", model="m", columns=["a", "b"], filters=["a > 0"], limit=5))
    assert table["query_mode"] == "raw"
    assert table["all_columns"] == ["a", "b"]
    assert table["row_limit"] == 5
    assert table["adhoc_filters"][0]["sqlExpression"] == "a > 0"
    pie = chart_params(Chart(title="t", type="pie", model="m", dimension="c", metric="sum(x)"))
    assert pie["groupby"] == ["c"]
    assert pie["metric"] == "sum__x"


def test_database_uri_is_masked_and_takes_compose_host_for_env_settings(rendered: dict[str, dict[str, str]]) -> None:
    uris = {
        name: yaml.safe_load(files["superset/databases/warehouse.yaml"])["sqlalchemy_uri"]
        for name, files in rendered.items()
    }
    assert uris["specs"] == (
        f"postgresql+psycopg2://${{WAREHOUSE_USER}}:{PASSWORD_MASK}@postgres:5432/warehouse?sslmode=prefer"
    )
    assert uris["iot_sensors"].endswith(f":{PASSWORD_MASK}@postgres:5432/telemetry?sslmode=prefer")
    for files in rendered.values():
        database = yaml.safe_load(files["superset/databases/warehouse.yaml"])
        assert "password" not in database
        deploy = json.loads(files["superset/deploy.json"])
        assert deploy["database"]["password_env"] == "WAREHOUSE_PASSWORD"


def test_roles_follow_the_governance_roles(rendered: dict[str, dict[str, str]]) -> None:
    roles = {r["name"]: r for r in json.loads(rendered["specs"]["superset/roles.json"])}
    assert set(roles) == {"Analyst", "Viewer"}  # Admin is Superset's own

    def pairs(role: str) -> set[tuple[str, str]]:
        return {(p["permission"]["name"], p["view_menu"]["name"]) for p in roles[role]["permissions"]}

    analyst, viewer = pairs("Analyst"), pairs("Viewer")
    assert ("can_execute_sql_query", "SQLLab") in analyst
    assert ("can_sqllab", "Superset") in analyst
    assert {("schema_access", "[acme_shop_warehouse].[warehouse].[intermediate]")} <= analyst
    assert ("schema_access", "[acme_shop_warehouse].[warehouse].[marts]") in analyst
    assert not {p for p in viewer if p[1] in ("SQLLab", "TabStateView") or p[0] == "can_sqllab"}
    assert ("can_read", "Dashboard") in viewer
    assert ("can_explore", "Superset") not in viewer
    assert ("schema_access", "[acme_shop_warehouse].[warehouse].[marts]") in viewer
    # built-in Alpha/Gamma get a companion role with the data access (saas_billing maps analyst->Alpha, viewer->Gamma)
    saas = {r["name"]: r for r in json.loads(rendered["saas_billing"]["superset/roles.json"])}
    assert set(saas) == {"saas_billing_analyst", "saas_billing_viewer"}
    assert [p["permission"]["name"] for p in saas["saas_billing_viewer"]["permissions"]] == ["schema_access"]


def test_bundle_zip_has_one_top_folder_expands_the_user_and_is_deterministic(compiled: dict[str, Path]) -> None:
    folder = compiled["specs"]
    data = build_bundle_zip(folder, ENV)
    assert data == build_bundle_zip(folder, ENV)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert {n.split("/", 1)[0] for n in names} == {"acme_shop_superset"}
        assert "acme_shop_superset/metadata.yaml" in names
        assert not any(n.endswith((".json", ".py")) for n in names)
        database = yaml.safe_load(archive.read("acme_shop_superset/databases/warehouse.yaml"))
    assert database["sqlalchemy_uri"].startswith(f"postgresql+psycopg2://superset_reader:{PASSWORD_MASK}@postgres")
    with pytest.raises(SupersetDeployError, match="WAREHOUSE_USER"):
        build_bundle_zip(folder, {})


def _superset_stub(server: RestTestServer, imported: list[BodyRequest]) -> None:
    def login(request: Any) -> Reply:
        body = request.json()
        if body != {"username": "admin", "password": "admin-pw", "provider": "db", "refresh": True}:
            return Reply(401, {"message": "bad credentials"})
        return Reply(200, {"access_token": "tok", "refresh_token": "r"}, {"Set-Cookie": "session=s1; Path=/"})

    def csrf(request: Any) -> Reply:
        assert request.header("authorization") == "Bearer tok"
        return Reply(200, {"result": "csrf-1"})

    def do_import(request: Any) -> Reply:
        imported.append(request)
        return Reply(200, {"message": "OK"})

    server.route("/api/v1/security/login", login)
    server.route("/api/v1/security/csrf_token/", csrf)
    server.route("/api/v1/assets/import/", do_import)
    server.route("/api/v1/dashboard/import/", do_import)


def test_import_logs_in_fetches_csrf_and_posts_the_bundle_with_the_password(compiled: dict[str, Path]) -> None:
    imported: list[BodyRequest] = []
    with rest_server() as server:
        _superset_stub(server, imported)
        env = {**ENV, "SUPERSET_ADMIN_USER": "admin", "SUPERSET_ADMIN_PASSWORD": "admin-pw"}
        result = deploy_superset(compiled["specs"], url=server.url, env=env)
        assert result == {"message": "OK"}
        bundle = build_bundle_zip(compiled["specs"], ENV)
        import_bundle(server.url, "admin", "admin-pw", bundle, {"databases/warehouse.yaml": "x"}, endpoint="dashboard")
        methods = [(r.method, r.path) for r in server.requests]
    assert methods == [
        ("POST", "/api/v1/security/login"),
        ("GET", "/api/v1/security/csrf_token/"),
        ("POST", "/api/v1/assets/import/"),
        ("POST", "/api/v1/security/login"),
        ("GET", "/api/v1/security/csrf_token/"),
        ("POST", "/api/v1/dashboard/import/"),
    ]
    assets, dashboard = imported
    for request in imported:
        assert request.header("authorization") == "Bearer tok"
        assert request.header("x-csrftoken") == "csrf-1"
        assert request.header("referer") == server.url
        assert "session=s1" in (request.header("cookie") or "")
    form = assets.form()
    assert json.loads(form["passwords"]) == {"databases/warehouse.yaml": "pw-from-env"}
    assert form["bundle"] == bundle
    form = dashboard.form()
    assert form["overwrite"] == b"true"
    assert form["formData"] == bundle


def test_import_reports_a_failed_login_and_a_missing_password_variable(compiled: dict[str, Path]) -> None:
    with rest_server() as server:
        _superset_stub(server, [])
        with pytest.raises(SupersetDeployError, match="login as 'admin' failed"):
            import_bundle(server.url, "admin", "wrong", b"zip", {})
    with pytest.raises(SupersetDeployError, match="WAREHOUSE_PASSWORD"):
        deploy_superset(compiled["specs"], url="http://127.0.0.1:9", env={"WAREHOUSE_USER": "u"})


def test_refresh_finds_datasets_by_table_and_uuid_and_puts_refresh() -> None:
    datasets = [
        {"uuid": "u-1", "schema": "marts", "table_name": "daily_revenue"},
        {"uuid": "u-2", "schema": "marts", "table_name": "gone"},
    ]
    with rest_server() as server:
        _superset_stub(server, [])

        def listing(request: Any) -> Reply:
            if "daily_revenue" in request.query["q"]:
                rows = [
                    {"id": 3, "uuid": "other", "schema": "staging", "table_name": "daily_revenue"},
                    {"id": 7, "uuid": "u-1", "schema": "marts", "table_name": "daily_revenue"},
                ]
                return Reply(200, {"result": rows})
            return Reply(200, {"result": []})

        server.route("/api/v1/dataset/", listing)
        server.route("/api/v1/dataset/7/refresh", lambda r: Reply(200, {"message": "OK"}))
        result = refresh_datasets(server.url, "admin", "admin-pw", datasets)
        puts = [r for r in server.requests if r.method == "PUT"]
        query = server.requests_to("/api/v1/dataset/")[0].query["q"]
    assert result == {"refreshed": ["marts.daily_revenue"], "missing": ["marts.gone"]}
    assert [r.path for r in puts] == ["/api/v1/dataset/7/refresh"]
    assert puts[0].header("x-csrftoken") == "csrf-1"
    assert (
        query
        == "(filters:!((col:table_name,opr:eq,value:daily_revenue)),columns:!(id,uuid,schema,table_name),page_size:100)"
    )
    assert rison({"a": "it's", "b": [True, None, 1]}) == "(a:'it!'s',b:!(!t,!n,1))"


@pytest.mark.slow
def test_superset_imports_every_bundle(compiled: dict[str, Path], tmp_path: Path) -> None:
    """Superset 6.1's import schemas and commands accept every generated bundle; roles.json imports and works."""
    python = VENV / "bin" / "python"
    if not python.exists():
        message = f"{VENV} is missing: run scripts/setup_tool_venvs.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    bundles = []
    for name, folder in compiled.items():
        zipped = tmp_path / f"{name}.zip"
        zipped.write_bytes(build_bundle_zip(folder, ENV))
        roles = tmp_path / f"{name}-roles.json"
        roles.write_text((folder / "roles.json").read_text(encoding="utf-8"), encoding="utf-8")
        deploy = json.loads((folder / "deploy.json").read_text(encoding="utf-8"))
        dashboards = {}
        for path in sorted((folder / "dashboards").glob("*.yaml")):
            dashboard = yaml.safe_load(path.read_text(encoding="utf-8"))
            dashboards[dashboard["uuid"]] = sorted(
                v["meta"]["uuid"] for v in dashboard["position"].values() if _chart(v)
            )
        database = yaml.safe_load((folder / "databases" / "warehouse.yaml").read_text(encoding="utf-8"))
        bundles.append(
            {
                "label": name,
                "folder": str(folder),
                "zip": str(zipped),
                "roles": str(roles),
                "passwords": {"databases/warehouse.yaml": ENV["WAREHOUSE_PASSWORD"]},
                "dashboards": dashboards,
                "datasets": deploy["datasets"],
                "database_uuid": database["uuid"],
            }
        )
    job, report_path = tmp_path / "job.json", tmp_path / "report.json"
    job.write_text(json.dumps({"bundles": bundles}), encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run(
        [str(python), str(REPO / "tests" / "support" / "superset_check.py"), str(job), str(report_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SUPERSET_", "PYTHON"))},
    )
    assert done.returncode == 0, done.stderr[-6000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["unknown_key"] == {"bogus_key": ["Unknown field."]}
    for bundle in bundles:
        entry = report["bundles"][bundle["label"]]
        validation = entry["validation"]
        assert validation["errors"] == {}, (bundle["label"], validation["errors"])
        assert validation["checked"] == len(list(Path(bundle["folder"]).rglob("*.yaml")))
        imported = entry["import"]
        assert "Must provide a password" in str(imported["without_password"])
        assert imported["database"]["password_set"] is True
        first, again, assets = imported["counts"]
        assert first == again == assets, "re-importing must update, not duplicate"
        for uuid, charts in bundle["dashboards"].items():
            assert imported["dashboards"][uuid]["charts"] == charts, bundle["label"]
            assert imported["dashboards"][uuid]["position_charts"] == charts
        for dataset in bundle["datasets"]:
            got = imported["datasets"][dataset["uuid"]]
            assert got["schema"] == dataset["schema"]
            assert got["table_name"] == dataset["table_name"]
            assert got["schema_perm"].endswith(f".[{dataset['schema']}]")
            granted = {
                (p["permission"]["name"], p["view_menu"]["name"])
                for role in json.loads(Path(bundle["roles"]).read_text(encoding="utf-8"))
                for p in role["permissions"]
            }
            assert ("schema_access", got["schema_perm"]) in granted, "roles must grant the perm Superset checks"
            assert got["columns"], dataset
        roles = entry["roles"]
        assert roles["unknown_pairs"] == []
        for name, probe in roles["probes"].items():
            assert probe["datasets"] is True, (bundle["label"], name)
            if name == "Viewer":
                assert probe == {**probe, "sql_lab": False, "dashboards": True, "explore": False}
            if name == "Analyst":
                assert probe == {**probe, "sql_lab": True, "dashboards": True, "explore": True}
    print(f"superset check: {time.monotonic() - started:.1f}s")


def test_superset_refresh_task_reads_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from platformgen.runtime import tasks

    sync = {"superset": {"datasets": [{"uuid": "u-1", "schema": "marts", "table_name": "t"}]}}
    monkeypatch.delenv("SUPERSET_ADMIN_USER", raising=False)
    with pytest.raises(RuntimeError, match="SUPERSET_ADMIN_USER"):
        tasks.superset_refresh({}, sync)
    with rest_server() as server:
        _superset_stub(server, [])
        server.route(
            "/api/v1/dataset/", lambda r: Reply(200, {"result": [{"id": 1, "uuid": "u-1", "schema": "marts"}]})
        )
        server.route("/api/v1/dataset/1/refresh", lambda r: Reply(200, {"message": "OK"}))
        for name, value in {
            "SUPERSET_URL": server.url,
            "SUPERSET_ADMIN_USER": "admin",
            "SUPERSET_ADMIN_PASSWORD": "admin-pw",
        }.items():
            monkeypatch.setenv(name, value)
        assert tasks.superset_refresh({}, sync) == {"refreshed": ["marts.t"], "missing": []}
        server.route("/api/v1/dataset/", lambda r: Reply(200, {"result": []}))
        with pytest.raises(RuntimeError, match="import the bundle first"):
            tasks.superset_refresh({}, sync)


def test_the_compiler_imports_neither_superset_nor_openmetadata_nor_requests() -> None:
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from platformgen.compiler import compile_spec\n"
        "import platformgen.deploy.superset, platformgen.deploy.openmetadata\n"
        f"compile_spec(Path({str(REPO / 'specs')!r}))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('superset', 'metadata', 'requests', 'flask'))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
