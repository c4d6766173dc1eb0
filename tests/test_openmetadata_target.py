"""OpenMetadata target: workflows and governance payloads; the governance client against a stateful stand-in; the
workflows parsed by openmetadata-ingestion 1.13's own models (in the venv of scripts/setup_tool_venvs.sh)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from platformgen.compiler import compile_spec, load_plan
from platformgen.deploy.openmetadata import (
    OpenMetadataError,
    apply_governance,
    apply_governance_file,
    load_governance,
    plan_requests,
    table_patch,
)
from platformgen.targets.openmetadata import OpenMetadataTarget, governance
from platformgen.writer import write_files
from tests.support.http_server import Reply
from tests.support.rest_server import RestTestServer, rest_server

REPO = Path(__file__).resolve().parents[1]
SPECS = [REPO / "specs", *sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())]
VENV = Path(os.environ.get("TOOL_VENV_DIR", REPO)) / ".venv-openmetadata"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, str]]:
    return {spec.name: OpenMetadataTarget().render(load_plan(spec)) for spec in SPECS}


def _workflow(files: dict[str, str], name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(files[f"openmetadata/workflows/{name}.yaml"])
    return data


def test_four_workflows_per_spec_with_every_credential_a_variable(rendered: dict[str, dict[str, str]]) -> None:
    for name, files in rendered.items():
        assert sorted(files) == [
            "openmetadata/governance.json",
            "openmetadata/workflows/airflow.yaml",
            "openmetadata/workflows/dbt.yaml",
            "openmetadata/workflows/storage.yaml",
            "openmetadata/workflows/warehouse.yaml",
        ]
        for workflow in ("warehouse", "dbt", "storage", "airflow"):
            config = _workflow(files, workflow)
            server = config["workflowConfig"]["openMetadataServerConfig"]
            assert server["securityConfig"] == {"jwtToken": "${OPENMETADATA_JWT_TOKEN}"}
            assert config["sink"] == {"type": "metadata-rest", "config": {}}
        warehouse = _workflow(files, "warehouse")["source"]["serviceConnection"]["config"]
        assert warehouse["authType"] == {"password": "${DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD}"}
        assert warehouse["username"] == "${PLATFORMGEN_WAREHOUSE_USER}"
        aws = _workflow(files, "storage")["source"]["serviceConnection"]["config"]["awsConfig"]
        assert aws["awsAccessKeyId"].startswith("${")
        assert aws["awsSecretAccessKey"].startswith("${")
        auth = _workflow(files, "airflow")["source"]["serviceConnection"]["config"]["connection"]["authConfig"]
        assert _VAR.fullmatch(auth["password"]), name


def test_warehouse_dbt_storage_and_airflow_sources(rendered: dict[str, dict[str, str]]) -> None:
    files = rendered["specs"]
    source = _workflow(files, "warehouse")["source"]
    assert source["serviceName"] == "acme_shop_warehouse"
    assert source["sourceConfig"]["config"]["schemaFilterPattern"] == {
        "includes": ["^raw$", "^staging$", "^intermediate$", "^marts$"]
    }
    dbt = _workflow(files, "dbt")["source"]
    assert dbt["serviceName"] == source["serviceName"]
    local = dbt["sourceConfig"]["config"]["dbtConfigSource"]
    assert local["dbtManifestFilePath"] == "${PLATFORMGEN_PROJECT_ROOT}/dbt/target/manifest.json"
    assert local["dbtCatalogFilePath"].endswith("/dbt/target/catalog.json")
    assert local["dbtRunResultsFilePath"].endswith("/dbt/target/run_results.json")
    storage = _workflow(files, "storage")["source"]["serviceConnection"]["config"]
    assert storage["bucketNames"] == ["raw", "staging", "curated"]
    assert storage["awsConfig"]["endPointURL"] == "http://minio:9000"
    assert storage["awsConfig"]["awsAccessKeyId"] == "${MINIO_ROOT_USER}"
    airflow = _workflow(files, "airflow")["source"]["serviceConnection"]["config"]
    assert airflow["type"] == "Airflow"
    assert airflow["connection"]["authConfig"] == {"username": "admin", "password": "${AIRFLOW_ADMIN_PASSWORD}"}
    # without Airflow users in the spec, the REST credentials come from AIRFLOW_API_USER / AIRFLOW_API_PASSWORD
    minimal = _workflow(rendered["minimal_csv"], "airflow")["source"]["serviceConnection"]["config"]
    assert minimal["connection"]["authConfig"] == {
        "username": "${AIRFLOW_API_USER}",
        "password": "${AIRFLOW_API_PASSWORD}",
    }


def test_governance_payloads_from_the_spec(rendered: dict[str, dict[str, str]]) -> None:
    gov = json.loads(rendered["specs"]["openmetadata/governance.json"])
    assert [t["name"] for t in gov["teams"]] == ["analytics", "data-platform"]
    analytics = gov["teams"][0]
    assert analytics["users"] == ["bob", "dave"]
    assert analytics["teamType"] == "Group"
    assert {u["email"] for u in gov["users"]} >= {"alice@acme.example", "erin@acme.example"}
    assert {c["name"]: c["mutuallyExclusive"] for c in gov["classifications"]} == {
        "DataClassification": True,
        "acme_shop": False,
    }
    assert {k: v for k, v in next(t for t in gov["tags"] if t["name"] == "pii").items() if k != "description"} == {
        "classification": "DataClassification",
        "name": "pii",
    }
    assert [g["name"] for g in gov["glossaries"]] == ["acme_shop_glossary"]
    revenue = next(t for t in gov["glossaryTerms"] if t["name"] == "Revenue")
    assert revenue["synonyms"] == ["Net sales", "Turnover"]
    assert revenue["glossary"] == "acme_shop_glossary"
    tables = {t["fqn"]: t for t in gov["tables"]}
    customers = tables["acme_shop_warehouse.warehouse.raw.shop_db__customers"]
    assert customers["columns"]["email"] == ["DataClassification.pii"]
    assert customers["owners"] == [{"type": "team", "name": "data-platform"}]
    revenue_table = tables["acme_shop_warehouse.warehouse.marts.daily_revenue"]
    assert revenue_table["glossaryTerms"] == ["acme_shop_glossary.Revenue"]
    assert revenue_table["owners"] == [{"type": "team", "name": "analytics"}]
    steps = plan_requests(gov)
    order = [s.path for s in steps]
    assert order == sorted(
        order,
        key=["/v1/users", "/v1/teams", "/v1/classifications", "/v1/tags", "/v1/glossaries", "/v1/glossaryTerms"].index,
    )
    assert all(s.method == "PUT" for s in steps)


class FakeOpenMetadata:
    """Enough of OpenMetadata's API: create-or-update by name, tables by FQN, JSON Patch of owners and tags."""

    def __init__(self, server: RestTestServer, tables: dict[str, list[str]]) -> None:
        self.entities: dict[str, dict[str, dict[str, Any]]] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        for fqn, columns in tables.items():
            table_id = str(uuid.uuid5(uuid.NAMESPACE_URL, fqn))
            self.tables[table_id] = {
                "id": table_id,
                "fullyQualifiedName": fqn,
                "owners": [],
                "tags": [],
                "columns": [{"name": c, "tags": []} for c in columns],
            }
            server.route(f"/api/v1/tables/name/{quote(fqn, safe='')}", self._get_table)
            server.route(f"/api/v1/tables/{table_id}", self._patch_table)
        for kind in ("users", "teams", "classifications", "tags", "glossaries", "glossaryTerms"):
            server.route(f"/api/v1/{kind}", self._upsert)
        for name in ("analytics", "data-platform", "field-ops", "revops", "customer-success", "data-eng"):
            server.route(f"/api/v1/teams/name/{name}", self._by_name)

    def _upsert(self, request: Any) -> Reply:
        assert request.method == "PUT"
        assert request.header("authorization") == "Bearer jwt"
        kind = request.path.rsplit("/", 1)[1]
        body = request.json()
        store = self.entities.setdefault(kind, {})
        entity = store.setdefault(body["name"], {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, kind + body["name"]))})
        entity.update(body)
        return Reply(200, entity)

    def _by_name(self, request: Any) -> Reply:
        name = request.path.rsplit("/", 1)[1]
        entity = self.entities.get("teams", {}).get(name)
        return Reply(200, entity) if entity else Reply(404, {"message": "not found"})

    def _get_table(self, request: Any) -> Reply:
        fqn = request.path.split("/tables/name/", 1)[1]
        table = next(t for t in self.tables.values() if quote(t["fullyQualifiedName"], safe="") == fqn)
        assert request.query == {"fields": "owners,tags,columns"}
        return Reply(200, table)

    def _patch_table(self, request: Any) -> Reply:
        assert request.method == "PATCH"
        assert request.header("content-type") == "application/json-patch+json"
        table = self.tables[request.path.rsplit("/", 1)[1]]
        for op in request.json():
            assert op["op"] == "add"
            parts = op["path"].strip("/").split("/")
            target: Any = table
            for part in parts[:-1]:
                target = target[int(part)] if isinstance(target, list) else target[part]
            last = parts[-1]
            if last == "-":
                target.append(op["value"])
            else:
                target[last] = op["value"]
        return Reply(200, table)


def test_apply_governance_plans_upserts_then_patches_and_is_idempotent() -> None:
    gov = governance(load_plan(REPO / "specs"))
    known = {
        "acme_shop_warehouse.warehouse.raw.shop_db__customers": ["customer_id", "email", "first_name", "last_name"],
        "acme_shop_warehouse.warehouse.marts.daily_revenue": ["order_date", "revenue_eur"],
    }
    with rest_server() as server:
        fake = FakeOpenMetadata(server, known)
        first = apply_governance(gov, url=f"{server.url}/api", token="jwt")
        first_requests = [(r.method, r.path) for r in server.requests]
        server.requests.clear()
        second = apply_governance(gov, url=f"{server.url}/api", token="jwt")
        second_methods = {r.method for r in server.requests}
    assert sorted(first.patched) == sorted(known)
    assert len(first.pending) == len(gov["tables"]) - len(known)
    assert second.patched == []
    assert sorted(second.unchanged) == sorted(known)
    assert "PATCH" not in second_methods
    # users before teams (members by id), then classifications, tags, glossary, terms, then tables
    puts = [path for method, path in first_requests if method == "PUT"]
    assert puts == [f"/api{s.path}" for s in plan_requests(gov)]
    team = fake.entities["teams"]["analytics"]
    assert team["users"] == [fake.entities["users"]["bob"]["id"], fake.entities["users"]["dave"]["id"]]
    customers = next(t for t in fake.tables.values() if t["fullyQualifiedName"].endswith("shop_db__customers"))
    assert customers["owners"] == [{"id": fake.entities["teams"]["data-platform"]["id"], "type": "team"}]
    tags = {c["name"]: [t["tagFQN"] for t in c["tags"]] for c in customers["columns"]}
    assert tags == {
        "customer_id": [],
        "email": ["DataClassification.pii"],
        "first_name": ["DataClassification.pii"],
        "last_name": ["DataClassification.pii"],
    }
    revenue = next(t for t in fake.tables.values() if t["fullyQualifiedName"].endswith("marts.daily_revenue"))
    labels = {(t["tagFQN"], t["source"]) for t in revenue["tags"]}
    assert labels == {
        ("acme_shop.sales", "Classification"),
        ("acme_shop.finance", "Classification"),
        ("acme_shop_glossary.Revenue", "Glossary"),
    }


def test_table_patch_adds_only_what_is_missing() -> None:
    table = {
        "owners": [{"id": "t1", "type": "team"}],
        "tags": [{"tagFQN": "p.sales"}],
        "columns": [{"name": "email"}, {"name": "id", "tags": []}],
    }
    wanted = {"tags": ["p.sales", "p.finance"], "glossaryTerms": [], "columns": {"email": ["DataClassification.pii"]}}
    ops = table_patch(table, wanted, [{"id": "t1", "type": "team"}])
    assert [op["path"] for op in ops] == ["/tags/-", "/columns/0/tags", "/columns/0/tags/-"]
    assert table_patch(table, {}, []) == []


def test_governance_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "governance.json"
    path.write_text(json.dumps({"tables": [{"fqn": "s.${DB_NAME}.marts.t"}]}), encoding="utf-8")
    with pytest.raises(OpenMetadataError, match="DB_NAME"):
        load_governance(path, {})
    assert load_governance(path, {"DB_NAME": "wh"})["tables"][0]["fqn"] == "s.wh.marts.t"
    with pytest.raises(OpenMetadataError, match="OPENMETADATA_JWT_TOKEN"):
        apply_governance_file(path, env={})
    with rest_server() as server:
        server.route("/api/v1/users", lambda r: Reply(401, {"message": "token expired"}))
        with pytest.raises(OpenMetadataError, match=r"401: .*token expired"):
            apply_governance({"users": [{"name": "a", "email": "a@x.example"}]}, url=f"{server.url}/api", token="t")


@pytest.mark.slow
def test_openmetadata_ingestion_models_accept_every_workflow(tmp_path: Path) -> None:
    python = VENV / "bin" / "python"
    if not python.exists():
        message = f"{VENV} is missing: run scripts/setup_tool_venvs.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    files: list[str] = []
    governance_files: list[str] = []
    for spec in SPECS:
        compiled = compile_spec(spec)
        out = tmp_path / spec.name
        write_files(out, compiled.files, compiled.plan.spec_label)
        files += sorted(str(p) for p in (out / "openmetadata" / "workflows").glob("*.yaml"))
        governance_files.append(str(out / "openmetadata" / "governance.json"))
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(python),
            str(REPO / "tests" / "support" / "openmetadata_check.py"),
            str(report_path),
            *files,
            *governance_files,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    expected = {
        "warehouse": ("postgres", "DatabaseServiceMetadataPipeline", "PostgresConnection"),
        "dbt": ("dbt", "DbtPipeline", None),
        "storage": ("s3", "StorageServiceMetadataPipeline", "S3Connection"),
        "airflow": ("airflow", "PipelineServiceMetadataPipeline", "AirflowConnection"),
    }
    assert len(report["workflows"]) == len(files) == 4 * len(SPECS)
    for name, result in report["workflows"].items():
        assert result["errors"] == [], (name, result["errors"])
        kind = Path(name).stem
        parsed = result["parsed"]
        assert (parsed["source_type"], parsed["config_type"], parsed["connection_type"]) == expected[kind], name
    top = report["unknown_key"]["top"]
    assert [(e["loc"], e["type"]) for e in top] == [(["bogusKey"], "extra_forbidden")]
    assert report["unknown_key"]["connection"], "an unknown key inside a connection must be rejected"
    assert sorted(report["governance"]) == sorted(governance_files)
    for name, result in report["governance"].items():
        assert result["errors"] == {}, (name, result["errors"])
        payloads = json.loads(Path(name).read_text(encoding="utf-8"))
        assert result["checked"] == sum(len(items) for items in payloads.values()), name


FAKE_METADATA = """#!/usr/bin/env python3
import json, os, sys
keys = ["PLATFORMGEN_PROJECT_ROOT", "PLATFORMGEN_WAREHOUSE_HOST", "PLATFORMGEN_WAREHOUSE_PORT",
        "PLATFORMGEN_WAREHOUSE_DBNAME", "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD"]
with open(os.environ["FAKE_METADATA_OUT"], "w") as out:
    json.dump({"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in keys}}, out)
print("Workflow finished")
sys.exit(int(os.environ.get("FAKE_METADATA_EXIT", "0")))
"""


def _platform() -> dict[str, Any]:
    return {
        "name": "p",
        "warehouse": {
            "conn_id": None,
            "host": "env:WAREHOUSE_HOST",
            "port": 5432,
            "database": "warehouse",
            "user": "env:WAREHOUSE_USER",
            "password": "env:WAREHOUSE_PASSWORD",
            "sslmode": "prefer",
        },
    }


def test_openmetadata_ingest_runs_the_workflow_with_the_resolved_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformgen.runtime import tasks

    fake = tmp_path / "bin" / "metadata"
    fake.parent.mkdir()
    fake.write_text(FAKE_METADATA, encoding="utf-8")
    fake.chmod(0o755)
    root = tmp_path / "platform"
    (root / "openmetadata" / "workflows").mkdir(parents=True)
    (root / "openmetadata" / "workflows" / "warehouse.yaml").write_text("source: {}\n", encoding="utf-8")
    out = tmp_path / "out.json"
    for name, value in {
        "PLATFORMGEN_OM_EXECUTABLE": str(fake),
        "FAKE_METADATA_OUT": str(out),
        "WAREHOUSE_HOST": "wh.internal",
        "WAREHOUSE_USER": "u",
        "WAREHOUSE_PASSWORD": "pw",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PLATFORMGEN_PROJECT_ROOT", raising=False)
    monkeypatch.delenv("PLATFORMGEN_WAREHOUSE_URL", raising=False)
    sync = {
        "project_root": str(root),
        "openmetadata": {"executable": "metadata", "workflows": {"warehouse": "openmetadata/workflows/warehouse.yaml"}},
    }
    assert tasks.openmetadata_ingest(_platform(), sync, "warehouse") == {"workflow": "warehouse", "returncode": 0}
    seen = json.loads(out.read_text(encoding="utf-8"))
    assert seen["argv"] == ["ingest", "-c", str(root / "openmetadata" / "workflows" / "warehouse.yaml")]
    assert seen["env"] == {
        "PLATFORMGEN_PROJECT_ROOT": str(root),
        "PLATFORMGEN_WAREHOUSE_HOST": "wh.internal",
        "PLATFORMGEN_WAREHOUSE_PORT": "5432",
        "PLATFORMGEN_WAREHOUSE_DBNAME": "warehouse",
        "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD": "pw",
    }
    monkeypatch.setenv("FAKE_METADATA_EXIT", "1")
    with pytest.raises(RuntimeError, match=r"(?s)workflow 'warehouse' failed .*Workflow finished"):
        tasks.openmetadata_ingest(_platform(), sync, "warehouse")
    monkeypatch.setenv("PLATFORMGEN_OM_EXECUTABLE", str(tmp_path / "nowhere" / "metadata"))
    with pytest.raises(RuntimeError, match="PLATFORMGEN_OM_EXECUTABLE"):
        tasks.openmetadata_ingest(_platform(), sync, "warehouse")


@pytest.mark.parametrize("spec", [REPO / "specs", REPO / "examples" / "minimal_csv"], ids=["specs", "minimal_csv"])
def test_sync_dag_runs_the_workflows_then_governance_and_refreshes_superset(
    spec: Path, tmp_path: Path, airflow_db: str
) -> None:
    from airflow.models.dagbag import DagBag

    compiled = compile_spec(spec)
    plan = compiled.plan
    dags = tmp_path / "dags"
    dags.mkdir()
    name = f"{plan.name}__sync"
    (dags / f"{name}.py").write_text(compiled.files[f"airflow/dags/{name}.py"], encoding="utf-8")
    bag = DagBag(dag_folder=str(dags), include_examples=False, safe_mode=False)
    assert bag.import_errors == {}
    dag = bag.get_dag(name)
    assert {d.uri for d in dag.dataset_triggers.objects} == {f"platformgen://{plan.name}/_platform/transformed"}
    ingest = [f"openmetadata.{w}" for w in ("warehouse", "dbt", "storage", "airflow")]
    assert {t.task_id for t in dag.tasks} == {*ingest, "openmetadata.governance", "superset.refresh_datasets"}
    assert dag.get_task("openmetadata.dbt").upstream_task_ids == {"openmetadata.warehouse"}
    assert dag.get_task("openmetadata.governance").upstream_task_ids == {"openmetadata.dbt"}
    refresh = dag.get_task("superset.refresh_datasets").python_callable
    assert refresh.func.__name__ == "superset_refresh"
    used = {c.model for d in plan.dashboards for c in d.charts}
    assert {d["table_name"] for d in refresh.keywords["sync"]["superset"]["datasets"]} == used
    warehouse = dag.get_task("openmetadata.warehouse").python_callable
    assert warehouse.func.__name__ == "openmetadata_ingest"
    assert warehouse.keywords["workflow"] == "warehouse"
    assert (
        warehouse.keywords["sync"]["openmetadata"]["workflows"]["warehouse"] == "openmetadata/workflows/warehouse.yaml"
    )
