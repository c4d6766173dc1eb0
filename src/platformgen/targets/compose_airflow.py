"""Airflow in the stack: the compose services (LocalExecutor or CeleryExecutor) and Helm values (KubernetesExecutor).

Every Airflow container runs the image built from `airflow/Dockerfile` and sees the compiled output read-only at
`orchestration.project_root`; dbt artefacts, GX results and logs live in named volumes.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from platformgen.plan.build import Plan
from platformgen.spec.models import FileSource
from platformgen.targets.compose_env import (
    AIRFLOW_ADMIN_PASSWORD,
    AIRFLOW_DB_PASSWORD,
    AIRFLOW_FERNET_KEY,
    AIRFLOW_SECRET_KEY,
    FLOWER_PASSWORD,
    POSTGRES_HOST,
    POSTGRES_PORT,
    WAREHOUSE_PASSWORD,
    WAREHOUSE_USER,
    airflow_admin_needed,
    airflow_conn_var,
    env_name,
    env_variables,
    runtime_variables,
    warehouse_vars,
)
from platformgen.targets.compose_services import REDIS_IMAGE, Stack, completed, healthcheck, healthy, port, ref, service

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor", "kubernetes": "KubernetesExecutor"}
DBT_VENV = "/opt/dbt-venv"
DBT_TARGET_DIR = "/opt/airflow/dbt-target"
MOUNTED_DIRS = ("airflow", "dbt", "great_expectations")  # output folders the Airflow containers mount
SCHEDULER_HEALTH_PORT = 8974
FLOWER_PORT = 5555


def image_name(plan: Plan) -> str:
    """Tag of the platform's Airflow image."""
    return f"platformgen/{plan.name}-airflow:{plan.platform.versions.airflow}"


def landing_dirs(plan: Plan) -> list[tuple[str, str]]:
    """(volume name, container path) of every local landing folder of a file source."""
    root = plan.orchestration.project_root.rstrip("/")
    found: dict[str, str] = {}
    for source in plan.sources:
        spec = source.spec
        if isinstance(spec, FileSource) and "://" not in spec.location:
            location = PurePosixPath(spec.location)
            path = str(location) if location.is_absolute() else f"{root}/{location}"
            found.setdefault(path, f"landing-{source.name.replace('_', '-')}")
    return [(volume, path) for path, volume in sorted(found.items())]


def airflow_environment(plan: Plan) -> dict[str, str]:
    """The environment of every Airflow container: settings from the spec, secrets as ${VAR} from .env."""
    orch = plan.orchestration
    root = orch.project_root.rstrip("/")
    db = f"postgresql+psycopg2://airflow:{ref(AIRFLOW_DB_PASSWORD)}@{POSTGRES_HOST}:{POSTGRES_PORT}/airflow"
    env = {
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[orch.executor],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__CORE__FERNET_KEY": ref(AIRFLOW_FERNET_KEY),
        "AIRFLOW__WEBSERVER__SECRET_KEY": ref(AIRFLOW_SECRET_KEY),
        "AIRFLOW__CORE__DAGS_FOLDER": f"{root}/airflow/dags",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "utc",
        "AIRFLOW__CORE__PARALLELISM": str(orch.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": str(orch.max_active_runs),
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": str(orch.dag_scan_interval),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
        "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
        "AIRFLOW__WEBSERVER__EXPOSE_CONFIG": "false",
    }
    if orch.executor == "celery":
        env["AIRFLOW__CELERY__BROKER_URL"] = "redis://redis:6379/0"
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + db.replace("+psycopg2", "")
        env["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] = f"admin:{ref(FLOWER_PASSWORD)}"
    env.update(
        {
            "PLATFORMGEN_PROJECT_ROOT": root,
            "DBT_TARGET_PATH": DBT_TARGET_DIR,
            "DBT_LOG_PATH": "/opt/airflow/logs/dbt",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    wh = warehouse_vars(plan)
    if wh.conn_id is not None:
        user, password = ref(WAREHOUSE_USER), ref(WAREHOUSE_PASSWORD)
        uri = f"postgresql://{user}:{password}@{POSTGRES_HOST}:{POSTGRES_PORT}/{wh.database}"
        env[airflow_conn_var(wh.conn_id)] = uri
    references = {v.name: v for v in env_variables(plan)}
    for name in runtime_variables(plan):
        env[name] = references[name].reference
    return env


def _volumes(stack: Stack) -> list[str]:
    root = stack.project_root
    mounts = [f"{stack.host(folder)}:{root}/{folder}:ro" for folder in MOUNTED_DIRS]
    mounts += [
        f"gx-uncommitted:{root}/great_expectations/uncommitted",
        f"dbt-target:{DBT_TARGET_DIR}",
        "airflow-logs:/opt/airflow/logs",
    ]
    mounts += [f"{volume}:{path}" for volume, path in landing_dirs(stack.plan)]
    return mounts


def _build(stack: Stack) -> dict[str, Any]:
    return {
        "context": stack.base,
        "dockerfile": "airflow/Dockerfile",
        "target": "runtime",
        "additional_contexts": {"wheels": "./dist"},
    }


def _airflow(stack: Stack, *, command: list[str], depends: dict[str, Any], **keys: Any) -> dict[str, Any]:
    environment = airflow_environment(stack.plan)
    environment.update(keys.pop("extra_env", {}))
    return service(
        image=image_name(stack.plan),
        build=_build(stack),
        command=command,
        environment=environment,
        volumes=_volumes(stack),
        depends_on=depends,
        **keys,
    )


def user_password_vars(plan: Plan) -> list[str]:
    """The password variables of the RBAC users that airflow-init creates."""
    names = [env_name(u.password) or "" for u in plan.orchestration.users]
    if airflow_admin_needed(plan):
        names.insert(0, AIRFLOW_ADMIN_PASSWORD)
    return list(dict.fromkeys(n for n in names if n))


def airflow_services(stack: Stack) -> dict[str, dict[str, Any]]:
    """airflow-init, -webserver, -scheduler; with CeleryExecutor also redis, airflow-worker and flower."""
    plan = stack.plan
    celery = plan.orchestration.executor == "celery"
    base = {**healthy("postgres"), **completed("airflow-init")}
    if celery:
        base.update(healthy("redis"))
    runs_tasks = {**base, **healthy("minio"), **completed("warehouse-init")}
    curl = "curl --fail --silent --show-error"
    services: dict[str, dict[str, Any]] = {}
    if celery:
        services["redis"] = service(
            image=REDIS_IMAGE,
            healthcheck=healthcheck(["CMD", "redis-cli", "ping"], interval="5s", start="5s"),
            restart="unless-stopped",
        )
    services["airflow-init"] = _airflow(
        stack,
        command=["bash", f"{stack.project_root}/airflow/init.sh"],
        depends=healthy("postgres"),
        extra_env={name: ref(name) for name in user_password_vars(plan)},
    )
    services["airflow-webserver"] = _airflow(
        stack,
        command=["webserver"],
        depends=base,
        ports=[port(plan.platform.ports.airflow, 8080)],
        healthcheck=healthcheck(["CMD-SHELL", f"{curl} http://localhost:8080/health"], interval="30s", start="30s"),
        restart="unless-stopped",
    )
    services["airflow-scheduler"] = _airflow(
        stack,
        command=["scheduler"],
        depends=runs_tasks,
        healthcheck=healthcheck(
            ["CMD-SHELL", f"{curl} http://localhost:{SCHEDULER_HEALTH_PORT}/health"], interval="30s", start="30s"
        ),
        restart="unless-stopped",
    )
    if celery:
        ping = (
            'celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d "celery@$${HOSTNAME}"'
        )
        services["airflow-worker"] = _airflow(
            stack,
            command=["celery", "worker"],
            depends=runs_tasks,
            healthcheck=healthcheck(["CMD-SHELL", ping], interval="30s", start="30s"),
            deploy={"replicas": plan.orchestration.celery_workers},
            restart="unless-stopped",
        )
        services["flower"] = _airflow(
            stack,
            command=["celery", "flower"],
            depends=base,
            extra_env={FLOWER_PASSWORD: ref(FLOWER_PASSWORD)},
            ports=[port(FLOWER_PORT, 5555)],
            healthcheck=healthcheck(
                ["CMD-SHELL", f'{curl} -u "admin:$${{FLOWER_PASSWORD}}" http://localhost:5555/healthcheck'],
                interval="30s",
                start="30s",
            ),
            restart="unless-stopped",
        )
    return services


# --------------------------------------------------------------------------- KubernetesExecutor: Helm values


def helm_values(plan: Plan) -> dict[str, Any]:
    """Values for the official apache-airflow Helm chart: the platform image (target `bundled`) and settings.

    Secrets come from one Kubernetes Secret made from .env (see docs/deploy.md); nothing secret is written here.
    """
    orch = plan.orchestration
    root = orch.project_root.rstrip("/")
    secret = f"{plan.name.replace('_', '-')}-env"
    repository, _, tag = image_name(plan).rpartition(":")
    env = airflow_environment(plan)
    # the chart sets the AIRFLOW__ settings itself (config, the three secrets below); the rest is plain or secret
    plain = {k: v for k, v in env.items() if "${" not in v and not k.startswith("AIRFLOW__")}
    secret_vars = [k for k, v in env.items() if "${" in v and not k.startswith("AIRFLOW__")]
    from_secret = list(dict.fromkeys(secret_vars + user_password_vars(plan)))
    return {
        "airflowVersion": plan.platform.versions.airflow,
        "defaultAirflowRepository": repository,
        "defaultAirflowTag": tag,
        "images": {"airflow": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}},
        "executor": EXECUTORS[orch.executor],
        "fernetKeySecretName": f"{secret}-airflow",
        "webserverSecretKeySecretName": f"{secret}-airflow",
        "data": {"metadataSecretName": f"{secret}-airflow"},
        "postgresql": {"enabled": False},
        "redis": {"enabled": False},
        "webserver": {"defaultUser": {"enabled": False}},
        "ports": {"airflowUI": plan.platform.ports.airflow},
        "config": {
            "core": {
                "dags_folder": f"{root}/airflow/dags",
                "load_examples": "False",
                "dags_are_paused_at_creation": "True",
                "default_timezone": "utc",
                "parallelism": str(orch.parallelism),
                "max_active_runs_per_dag": str(orch.max_active_runs),
            },
            "scheduler": {"dag_dir_list_interval": str(orch.dag_scan_interval)},
            "webserver": {"expose_config": "False"},
        },
        "env": [{"name": name, "value": value} for name, value in plain.items()],
        "secret": [{"envName": name, "secretName": secret, "secretKey": name} for name in from_secret],
        "dags": {"persistence": {"enabled": False}, "gitSync": {"enabled": False}},
        "logs": {"persistence": {"enabled": False}},
    }
