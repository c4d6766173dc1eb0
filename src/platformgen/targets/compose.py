"""Compose target: docker-compose.yml of the whole stack, `.env.example`, the Airflow image and the init scripts.

The stack follows the reference architecture: PostgreSQL, MinIO, Airflow (LocalExecutor, or CeleryExecutor with
Redis, workers and Flower; with KubernetesExecutor Helm values replace the Airflow services), Superset, and
OpenMetadata with Elasticsearch, all on the network `data-platform`. Paths in docker-compose.yml are relative to
it; `root_files` renders the same stack for a compose file one folder above the output (see compiler.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from typing import Any

from platformgen.errors import PlatformgenError
from platformgen.plan.build import Plan
from platformgen.render import dump_yaml, render_template, templates_dir
from platformgen.targets.base import Files
from platformgen.targets.compose_airflow import (
    DBT_TARGET_DIR,
    DBT_VENV,
    FLOWER_PORT,
    MOUNTED_DIRS,
    airflow_services,
    helm_values,
    landing_dirs,
)
from platformgen.targets.compose_apps import (
    elasticsearch,
    openmetadata_ingestion,
    openmetadata_migrate,
    openmetadata_server,
    superset,
    superset_import,
    superset_init,
)
from platformgen.targets.compose_env import (
    AIRFLOW_ADMIN_PASSWORD,
    EnvVar,
    airflow_admin_needed,
    env_name,
    env_variables,
)
from platformgen.targets.compose_services import NETWORK, Stack, minio, minio_init, postgres, warehouse_init

COMPOSE_FILE = "docker-compose.yml"
ENV_EXAMPLE = ".env.example"
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")  # paths that land unquoted in volume specs and the Dockerfile
GX_PIN = {"0.18": "0.18.22"}  # the release the test suite runs the generated suites with
SUPERSET_PG_DRIVER = "psycopg2-binary==2.9.10"  # the lean Superset image has no database driver since 4.1
_KIND_NOTE = {
    "password": "platformgen up: random password",
    "fernet": "platformgen up: random Fernet key",
    "secret_key": "platformgen up: random secret key",
    "external": "external system: set it yourself; may stay empty until then",
}


def check_stack(plan: Plan) -> None:
    """What the compose file needs beyond the spec's own validation: mountable paths, distinct host ports."""
    root = plan.orchestration.project_root
    if not (PurePosixPath(root).is_absolute() and _SAFE_PATH.match(root)):
        raise PlatformgenError(
            f"orchestration.project_root must be an absolute container path of letters, digits and ._-/, not '{root}'"
        )
    for _, path in landing_dirs(plan):
        if not _SAFE_PATH.match(path):
            raise PlatformgenError(
                f"the landing folder {path} of a file source cannot be mounted: use letters, digits and ._-/"
            )
    used: dict[int, str] = {}
    for name, port in host_ports(plan).items():
        if port in used:
            raise PlatformgenError(f"platform.ports: {used[port]} and {name} both use host port {port}")
        used[port] = name


def host_ports(plan: Plan) -> dict[str, int]:
    """The host port of each published service, by spec name."""
    ports = plan.platform.ports.model_dump()
    if plan.orchestration.executor == "kubernetes":
        ports.pop("airflow")
    if plan.orchestration.executor == "celery":
        ports["flower"] = FLOWER_PORT
    return dict(ports)


def compose_document(plan: Plan, base: str = ".") -> dict[str, Any]:
    """The compose file as a dict; `base` is the output folder relative to the compose file."""
    stack = Stack(plan, base)
    services: dict[str, dict[str, Any]] = {
        "postgres": postgres(stack),
        "warehouse-init": warehouse_init(stack),
        "minio": minio(stack),
        "minio-init": minio_init(stack),
    }
    if plan.orchestration.executor != "kubernetes":
        services.update(airflow_services(stack))
    services.update(
        {
            "superset-init": superset_init(stack),
            "superset": superset(stack),
            "superset-import": superset_import(stack),
            "elasticsearch": elasticsearch(stack),
            "openmetadata-migrate": openmetadata_migrate(stack),
            "openmetadata-server": openmetadata_server(stack),
            "openmetadata-ingestion": openmetadata_ingestion(stack),
        }
    )
    return {
        "name": plan.name,
        "services": services,
        "volumes": {name: {} for name in named_volumes(services)},
        "networks": {NETWORK: {"name": NETWORK}},
    }


def named_volumes(services: dict[str, dict[str, Any]]) -> list[str]:
    """The named volumes the services mount (bind mounts start with . or /)."""
    names = {
        mount.split(":", 1)[0]
        for svc in services.values()
        for mount in svc.get("volumes", [])
        if not mount.startswith((".", "/"))
    }
    return sorted(names)


def env_example(plan: Plan) -> str:
    """`.env.example`: every variable with an empty value and a comment; never a value of a secret."""
    lines = [
        f"# Variables of the {plan.name} stack, read by docker-compose.yml as ${{VAR:?...}}.",
        "# `platformgen up` creates .env next to docker-compose.yml with fresh random secrets and never",
        "# overwrites it. Keep .env out of version control (it is git-ignored).",
    ]
    for var in env_variables(plan):
        lines += ["", f"# {var.description} [{_note(var)}]", f"{var.name}="]
    return "\n".join(lines) + "\n"


def _note(var: EnvVar) -> str:
    return _KIND_NOTE.get(var.kind, f"platformgen up: {var.value}")


def dockerfile(plan: Plan) -> str:
    """`airflow/Dockerfile`: Airflow, the runtime wheel, GX and dbt (own virtualenv); targets runtime and bundled."""
    versions = plan.platform.versions
    root = plan.orchestration.project_root.rstrip("/")
    writable = [f"{root}/great_expectations/uncommitted", DBT_TARGET_DIR, *(path for _, path in landing_dirs(plan))]
    return render_template(
        "compose/Dockerfile.j2",
        platform=plan.name,
        airflow_version=versions.airflow,
        dbt_minor=versions.dbt,
        gx_pin=GX_PIN[versions.great_expectations],
        dbt_venv=DBT_VENV,
        dbt_target=DBT_TARGET_DIR,
        project_root=root,
        writable=[shlex.quote(p) for p in writable],
        bundled=MOUNTED_DIRS,
    )


def airflow_init(plan: Plan) -> str:
    """`airflow/init.sh`: `airflow db migrate` and the RBAC users, passwords from the environment."""
    users: list[dict[str, str]] = []
    if airflow_admin_needed(plan):
        users.append(_user("admin", "Admin", "admin@example.invalid", "Airflow", "Admin", AIRFLOW_ADMIN_PASSWORD))
    for user in plan.orchestration.users:
        password = env_name(user.password) or ""
        first, last = user.first_name or user.username, user.last_name or user.role
        users.append(_user(user.username, user.role, user.email, first, last, password))
    return render_template("compose/airflow-init.sh.j2", platform=plan.name, users=users)


def _user(username: str, role: str, email: str, first: str, last: str, password_var: str) -> dict[str, str]:
    quoted = {k: shlex.quote(v) for k, v in (("username", username), ("role", role), ("email", email))}
    quoted.update(first_name=shlex.quote(first), last_name=shlex.quote(last))
    quoted["password"] = "${" + password_var + "}"
    return quoted


def _static(name: str) -> str:
    return (templates_dir() / "compose" / name).read_text(encoding="utf-8")


def root_files(plan: Plan, output: str) -> Files:
    """The compose file and `.env.example` for the folder above the output folder (`output` is its name there)."""
    check_stack(plan)
    return {COMPOSE_FILE: dump_yaml(compose_document(plan, f"./{output}")), ENV_EXAMPLE: env_example(plan)}


class ComposeTarget:
    """docker-compose.yml and everything it mounts or builds; `airflow/helm-values.yaml` for the Kubernetes executor."""

    name = "compose"
    description = "Docker Compose stack"

    def render(self, plan: Plan) -> Files:
        check_stack(plan)
        files: Files = {
            COMPOSE_FILE: dump_yaml(compose_document(plan)),
            ENV_EXAMPLE: env_example(plan),
            "airflow/Dockerfile": dockerfile(plan),
            "airflow/init.sh": airflow_init(plan),
            "compose/postgres/init-databases.sh": _static("init-databases.sh"),
            "compose/superset/Dockerfile": render_template(
                "compose/superset.Dockerfile.j2", version=plan.platform.versions.superset, driver=SUPERSET_PG_DRIVER
            ),
            "compose/superset/superset-init.sh": _static("superset-init.sh"),
            "compose/superset/superset_config.py": _static("superset_config.py"),
            "compose/superset/superset_bootstrap.py": _static("superset_bootstrap.py"),
        }
        if plan.orchestration.executor == "kubernetes":
            files["airflow/helm-values.yaml"] = dump_yaml(helm_values(plan))
        return files
