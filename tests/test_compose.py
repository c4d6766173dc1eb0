"""The compose target: schema-valid compose files, and what the schema cannot check (references, ports, secrets)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from platformgen.cli import app
from platformgen.compiler import Compiled, compile_spec, write_compiled
from platformgen.errors import PlatformgenError
from platformgen.targets.compose_env import env_variables

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (REPO / "examples").iterdir() if p.is_dir())
ARCHITECTURE = {  # service -> spec port name(s) it publishes
    "postgres": ("postgres",),
    "minio": ("minio_api", "minio_console"),
    "airflow-webserver": ("airflow",),
    "airflow-scheduler": (),
    "superset": ("superset",),
    "openmetadata-server": ("openmetadata",),
    "elasticsearch": ("elasticsearch",),
}
SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|^KEY$|WEBHOOK|FERNET", re.IGNORECASE)
REFERENCE_RE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*:?\?[^}]*\}$")
VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")

SMALL_SPEC = """\
platform:
  name: small_{executor}
  ports: {{airflow: 18080, superset: 18088, postgres: 15432}}
orchestration:
  executor: {executor}
  celery_workers: 4
  parallelism: 12
  max_active_runs: 2
  dag_scan_interval: 2m
  project_root: /srv/platform
  users:
    - {{username: ops, role: Op, email: ops@small.example, password: env:OPS_PASSWORD}}
warehouse:
  connection: {{conn_id: warehouse_default}}
sources:
  - name: drops
    kind: file
    location: landing/drops
    tables:
      - name: orders
        pattern: orders_*.csv
        primary_key: [order_id]
        columns: {{order_id: bigint, amount: "decimal(10,2)"}}
"""


def small_spec(tmp: Path, executor: str) -> Path:
    path = tmp / f"small_{executor}.yaml"
    path.write_text(SMALL_SPEC.format(executor=executor), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    """Every spec of the repository plus the small inline spec with each executor."""
    tmp = tmp_path_factory.mktemp("compose_specs")
    specs = {"specs": REPO / "specs", **{f"examples/{name}": REPO / "examples" / name for name in EXAMPLES}}
    specs.update({f"small/{ex}": small_spec(tmp, ex) for ex in ("local", "celery", "kubernetes")})
    return {label: compile_spec(path) for label, path in specs.items()}


CASE_IDS = ["specs", *(f"examples/{name}" for name in EXAMPLES), "small/local", "small/celery", "small/kubernetes"]


def load_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def compose_doc(compiled: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(compiled.files["docker-compose.yml"])
    return doc


def check_jsonschema() -> str:
    found = Path(sys.executable).parent / "check-jsonschema"
    path = str(found) if found.is_file() else shutil.which("check-jsonschema")
    if path is None:
        pytest.fail("check-jsonschema is not installed: .venv/bin/pip install check-jsonschema (see docs/deploy.md)")
    return path


def test_every_compose_file_validates_against_the_compose_spec(cases: dict[str, Compiled], tmp_path: Path) -> None:
    files = []
    for label, compiled in cases.items():
        path = tmp_path / (label.replace("/", "__") + ".yml")
        path.write_text(compiled.files["docker-compose.yml"], encoding="utf-8")
        files.append(str(path))
    root = tmp_path / "root__docker-compose.yml"  # the repository-root variant of specs/
    from platformgen.compiler import render_root_files

    root.write_text(render_root_files(cases["specs"], Path("generated"))["docker-compose.yml"], encoding="utf-8")
    files.append(str(root))
    proc = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _services(doc: dict[str, Any], *, active: bool = False) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = doc["services"]
    return {n: s for n, s in services.items() if not (active and s.get("profiles"))}


def _published(svc: dict[str, Any]) -> list[int]:
    return [int(p["published"]) for p in svc.get("ports", [])]


@pytest.mark.parametrize("label", CASE_IDS)
def test_references_resolve(cases: dict[str, Compiled], label: str) -> None:
    compiled = cases[label]
    doc = compose_doc(compiled)
    assert "version" not in doc, "the version key is obsolete"
    services = _services(doc)
    declared_volumes = set(doc.get("volumes", {}))
    used_volumes: set[str] = set()
    for name, svc in services.items():
        for dep, condition in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on undefined service {dep}"
            assert not services[dep].get("profiles") or svc.get("profiles"), f"{name} waits for profiled {dep}"
            assert condition["condition"] in {"service_healthy", "service_completed_successfully"}
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no health check"
        if "build" in svc:
            context = svc["build"]["context"].removeprefix("./").removeprefix(".")
            dockerfile = "/".join(p for p in (context, svc["build"]["dockerfile"]) if p)
            assert dockerfile in compiled.files, f"{name} builds from {dockerfile}, which compile does not generate"
        for network in svc["networks"]:
            assert network in doc["networks"], f"{name} joins undeclared network {network}"
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("./"):
                rel = source.removeprefix("./")
                assert rel in compiled.files or any(p.startswith(rel + "/") for p in compiled.files), (
                    f"{name} mounts {source}, which compile does not generate"
                )
            else:
                assert source in declared_volumes, f"{name} mounts undeclared volume {source}"
                used_volumes.add(source)
    assert used_volumes == declared_volumes, f"unused volumes: {declared_volumes - used_volumes}"
    assert doc["networks"] == {"data-platform": {"name": "data-platform"}}


@pytest.mark.parametrize("label", CASE_IDS)
def test_health_checks_and_one_shots(cases: dict[str, Compiled], label: str) -> None:
    """Long-running services have health checks; every one-shot is awaited, so `up --wait` can succeed."""
    services = _services(compose_doc(cases[label]), active=True)
    awaited = {
        dep
        for svc in services.values()
        if "healthcheck" in svc
        for dep, cond in svc.get("depends_on", {}).items()
        if cond["condition"] == "service_completed_successfully"
    }
    for name, svc in services.items():
        if svc.get("restart") == "unless-stopped":
            assert "healthcheck" in svc, f"long-running {name} has no health check"
        else:
            assert name in awaited, f"one-shot {name} is awaited by no long-running service"


@pytest.mark.parametrize("label", CASE_IDS)
def test_ports_from_the_spec_and_unique(cases: dict[str, Compiled], label: str) -> None:
    compiled = cases[label]
    plan = compiled.plan
    services = _services(compose_doc(compiled))
    ports = plan.platform.ports.model_dump()
    expected = dict(ARCHITECTURE)
    if plan.orchestration.executor == "kubernetes":
        expected = {k: v for k, v in expected.items() if not k.startswith("airflow")}
        assert not any(name.startswith("airflow") for name in services)
        assert "airflow/helm-values.yaml" in compiled.files
    for name, spec_ports in expected.items():
        assert name in services, f"{label}: the architecture's {name} is missing"
        assert sorted(_published(services[name])) == sorted(ports[p] for p in spec_ports), name
    published = [p for svc in services.values() for p in _published(svc)]
    assert len(published) == len(set(published)), f"a host port is published twice: {sorted(published)}"


def _environments(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (name, key, str(value))
        for name, svc in doc["services"].items()
        for key, value in (svc.get("environment") or {}).items()
    ]


@pytest.mark.parametrize("label", CASE_IDS)
def test_no_literal_secret(cases: dict[str, Compiled], label: str) -> None:
    compiled = cases[label]
    doc = compose_doc(compiled)
    for service, key, value in _environments(doc):
        if SECRET_KEY_RE.search(key):
            assert REFERENCE_RE.match(value), f"{service}.{key} is not a ${{VAR}} reference: {value!r}"
        for userinfo in re.findall(r"://([^/@\s]+)@", value):
            assert "${" in userinfo.partition(":")[2], f"{service}.{key} has a literal password in a URL"
    # every variable the file reads is one that .env.example lists and `platformgen up` writes
    listed = {v.name for v in env_variables(compiled.plan)}
    text = compiled.files["docker-compose.yml"]
    used = set(VARIABLE_RE.findall(text.replace("$${", "")))
    assert used <= listed, f"compose reads variables .env never gets: {sorted(used - listed)}"
    example = compiled.files[".env.example"]
    for line in example.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert value == "", f".env.example has a value for {name}"
    assert [ln.partition("=")[0] for ln in example.splitlines() if ln and not ln.startswith("#")] == [
        v.name for v in env_variables(compiled.plan)
    ]
    for path, body in compiled.outputs["compose"].items():
        assert "minioadmin" not in body, f"default credential in {path}"
        assert "password: admin" not in body.lower(), f"default credential in {path}"


def test_airflow_settings_follow_the_spec(cases: dict[str, Compiled]) -> None:
    local = _services(compose_doc(cases["specs"]))
    env = local["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert (env["AIRFLOW__CORE__PARALLELISM"], env["AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG"]) == ("32", "3")
    assert env["AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL"] == "60"
    assert env["PLATFORMGEN_PROJECT_ROOT"] == "/opt/airflow/platform"
    assert env["WAREHOUSE_PASSWORD"] == "${WAREHOUSE_PASSWORD:?set it in .env}"
    assert local["airflow-webserver"]["image"] == "platformgen/acme_shop-airflow:2.9.3"
    assert "./dbt:/opt/airflow/platform/dbt:ro" in local["airflow-scheduler"]["volumes"]
    init = local["airflow-init"]["environment"]
    assert init["AIRFLOW_ANALYST_PASSWORD"] == "${AIRFLOW_ANALYST_PASSWORD:?set it in .env}"
    script = cases["specs"].files["airflow/init.sh"]
    assert "--username admin --role Admin" in script
    assert '--password "${AIRFLOW_ANALYST_PASSWORD}"' in script

    celery = _services(compose_doc(cases["small/celery"]))
    env = celery["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert (env["AIRFLOW__CORE__PARALLELISM"], env["AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG"]) == ("12", "2")
    assert env["AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL"] == "120"
    assert celery["airflow-worker"]["deploy"] == {"replicas": 4}
    assert {"redis", "flower"} <= set(celery)
    assert env["AIRFLOW_CONN_WAREHOUSE_DEFAULT"].startswith("postgresql://${WAREHOUSE_USER:?")
    assert "landing-drops:/srv/platform/landing/drops" in celery["airflow-worker"]["volumes"]
    iot = _services(compose_doc(cases["examples/iot_sensors"]))
    assert iot["airflow-worker"]["deploy"] == {"replicas": 3}

    small = cases["small/local"]
    assert "--username ops --role Op" in small.files["airflow/init.sh"]
    assert "--username admin --role Admin" in small.files["airflow/init.sh"], "no Admin in the spec: the stack adds one"


def test_kubernetes_executor_gets_helm_values(cases: dict[str, Compiled]) -> None:
    compiled = cases["small/kubernetes"]
    values = load_yaml(compiled.files["airflow/helm-values.yaml"])
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"] == "2.9.3"
    assert values["config"]["core"]["parallelism"] == "12"
    assert values["config"]["scheduler"]["dag_dir_list_interval"] == "120"
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["PLATFORMGEN_PROJECT_ROOT"] == "/srv/platform"
    secrets = {s["envName"] for s in values["secret"]}
    assert {"OPS_PASSWORD", "AIRFLOW_CONN_WAREHOUSE_DEFAULT"} <= secrets
    assert secrets <= {v.name for v in env_variables(compiled.plan)}, "the Kubernetes secret is made from .env"
    assert all("${" not in e["value"] for e in values["env"]), "a secret reference leaked into plain env"
    dockerfile = compiled.files["airflow/Dockerfile"]
    assert "FROM runtime AS bundled" in dockerfile
    assert "COPY --chown=airflow:0 dbt /srv/platform/dbt" in dockerfile


def test_dockerfile(cases: dict[str, Compiled]) -> None:
    text = cases["specs"].files["airflow/Dockerfile"]
    assert "FROM apache/airflow:2.9.3-python3.11 AS runtime" in text
    assert '"dbt-core~=1.9.0" "dbt-postgres~=1.9.0"' in text
    assert '"great-expectations==0.18.22"' in text
    assert '"${wheel}[runtime]"' in text
    assert "PLATFORMGEN_DBT_EXECUTABLE=/opt/dbt-venv/bin/dbt" in text
    assert "PLATFORMGEN_PROJECT_ROOT=/opt/airflow/platform" in text


def test_conflicting_host_ports_are_an_error(tmp_path: Path) -> None:
    spec = tmp_path / "clash.yaml"
    spec.write_text("platform: {name: clash, ports: {airflow: 8088}}\n", encoding="utf-8")
    with pytest.raises(PlatformgenError, match="port 8088 is already used"):  # the spec validator's message
        compile_spec(spec)
    # Flower's port is not a spec port: the compose target checks it
    spec.write_text("platform: {name: clash, ports: {postgres: 5555}}\norchestration: {executor: celery}\n")
    with pytest.raises(PlatformgenError, match="postgres and flower both use host port 5555"):
        compile_spec(spec)


def test_project_root_must_be_mountable(tmp_path: Path) -> None:
    spec = tmp_path / "root.yaml"
    spec.write_text("platform: {name: rooted}\norchestration: {project_root: 'opt/my platform'}\n")
    with pytest.raises(PlatformgenError, match="project_root must be an absolute container path"):
        compile_spec(spec)


# --------------------------------------------------------------------------- the repository-root compose file

runner = CliRunner()


def test_root_compose_file_is_tracked_by_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "examples" / "minimal_csv", tmp_path / "spec")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["compile", "spec"]).exit_code == 0
    root = tmp_path / "docker-compose.yml"
    doc = load_yaml(root.read_text())
    assert doc["services"]["warehouse-init"]["volumes"] == ["./generated/warehouse:/platform/warehouse:ro"]
    assert doc["services"]["airflow-scheduler"]["build"]["context"] == "./generated"
    assert (tmp_path / ".env.example").is_file()
    assert (tmp_path / "generated" / "docker-compose.yml").is_file()
    assert runner.invoke(app, ["compile", "spec", "--check"]).exit_code == 0

    root.write_text(root.read_text() + "# edited\n")
    result = runner.invoke(app, ["compile", "spec", "--check"])
    assert result.exit_code == 1
    assert "stale: docker-compose.yml" in result.stdout
    root.unlink()
    result = runner.invoke(app, ["compile", "spec", "--check"])
    assert result.exit_code == 1
    assert "missing: docker-compose.yml" in result.stdout
    assert runner.invoke(app, ["compile", "spec"]).exit_code == 0
    assert runner.invoke(app, ["compile", "spec", "--check"]).exit_code == 0

    # with -o DIR only DIR gets a compose file; a foreign root file is never overwritten
    assert runner.invoke(app, ["compile", "spec", "-o", "elsewhere"]).exit_code == 0
    assert (tmp_path / "elsewhere" / "docker-compose.yml").is_file()
    root.write_text("services: {mine: {image: busybox}}\n")
    (tmp_path / ".platformgen-root-manifest.json").unlink()
    result = runner.invoke(app, ["compile", "spec"])
    assert result.exit_code == 1
    assert root.read_text() == "services: {mine: {image: busybox}}\n"


def test_committed_root_compose_is_fresh(in_repo: Path) -> None:
    compiled = compile_spec(Path("specs"))
    reports = write_compiled(compiled, Path("generated"), check=True)
    assert [folder for folder, _ in reports] == [Path("generated"), Path(".")]
    for folder, report in reports:
        assert report.clean, f"{folder} is stale: {report.stale} missing: {report.missing} extra: {report.extra}"
