"""Docker Compose services of the stack's applications: Superset, and OpenMetadata with Elasticsearch."""

from __future__ import annotations

from typing import Any

from platformgen.targets.compose_env import (
    AIRFLOW_ADMIN_PASSWORD,
    OPENMETADATA_DB_PASSWORD,
    OPENMETADATA_FERNET_KEY,
    POSTGRES_HOST,
    POSTGRES_PORT,
    SUPERSET_ADMIN_PASSWORD,
    SUPERSET_DB_PASSWORD,
    SUPERSET_SECRET_KEY,
    airflow_admin_needed,
    warehouse_vars,
)
from platformgen.targets.compose_services import (
    BOOTSTRAP_PROFILE,
    Stack,
    completed,
    healthcheck,
    healthy,
    port,
    ref,
    service,
    setting,
)

SUPERSET_DIR = "/app/platformgen"  # the generated Superset config and scripts, inside the Superset containers
SUPERSET_BUNDLE_DIR = "/app/platform/superset"  # the generated superset/ folder (bundle, roles.json)
OM_ADMIN_PORT = 8586


# --------------------------------------------------------------------------- Superset


def _superset_env(stack: Stack) -> dict[str, str]:
    owner = stack.plan.platform.owner
    return {
        "SUPERSET_CONFIG_PATH": f"{SUPERSET_DIR}/superset_config.py",
        "SUPERSET_SECRET_KEY": ref(SUPERSET_SECRET_KEY),
        "SUPERSET_DB_PASSWORD": ref(SUPERSET_DB_PASSWORD),
        "SUPERSET_ADMIN_USER": "admin",
        "SUPERSET_ADMIN_PASSWORD": ref(SUPERSET_ADMIN_PASSWORD),
        "SUPERSET_ADMIN_EMAIL": owner if "@" in owner else "admin@example.invalid",
    }


def superset_image(stack: Stack) -> str:
    """The Superset image the stack builds: the official one plus the PostgreSQL driver."""
    return f"platformgen/{stack.plan.name}-superset:{stack.versions.superset}"


def _superset_build(stack: Stack) -> dict[str, str]:
    return {"context": stack.host("compose/superset"), "dockerfile": "Dockerfile"}


def _superset_mounts(stack: Stack, *, bundle: bool) -> list[str]:
    mounts = [f"{stack.host('compose/superset')}:{SUPERSET_DIR}:ro"]
    if bundle:
        mounts.append(f"{stack.host('superset')}:{SUPERSET_BUNDLE_DIR}:ro")
    return [*mounts, "superset-home:/app/superset_home"]


def superset_init(stack: Stack) -> dict[str, Any]:
    """One-shot: migrations, the admin user, built-in roles and the platform's roles (superset/roles.json).

    The ${VAR} references of roles.json are filled in from .env, so the container gets all of it.
    """
    return service(
        image=superset_image(stack),
        build=_superset_build(stack),
        command=["bash", f"{SUPERSET_DIR}/superset-init.sh"],
        environment=_superset_env(stack),
        env_file=[".env"],
        volumes=_superset_mounts(stack, bundle=True),
        depends_on=healthy("postgres"),
    )


def superset(stack: Stack) -> dict[str, Any]:
    """The Superset web server."""
    return service(
        image=superset_image(stack),
        build=_superset_build(stack),
        environment=_superset_env(stack),
        volumes=_superset_mounts(stack, bundle=False),
        ports=[port(stack.ports.superset, 8088)],
        depends_on={**healthy("postgres"), **completed("superset-init", "warehouse-init")},
        healthcheck=healthcheck(["CMD-SHELL", "curl -fsS http://localhost:8088/health"], interval="15s", start="30s"),
        restart="unless-stopped",
    )


def superset_import(stack: Stack) -> dict[str, Any]:
    """One-shot (profile bootstrap): import the generated dashboard bundle (superset/) with its warehouse password."""
    return service(
        image=superset_image(stack),
        build=_superset_build(stack),
        profiles=[BOOTSTRAP_PROFILE],
        command=["python", f"{SUPERSET_DIR}/superset_bootstrap.py", "import", SUPERSET_BUNDLE_DIR],
        environment=_superset_env(stack),
        env_file=[".env"],
        volumes=_superset_mounts(stack, bundle=True),
        depends_on=healthy("superset"),
    )


# --------------------------------------------------------------------------- OpenMetadata


def elasticsearch(stack: Stack) -> dict[str, Any]:
    """Elasticsearch 8 for OpenMetadata's search; without authentication, so published on 127.0.0.1 only."""
    return service(
        image=f"docker.elastic.co/elasticsearch/elasticsearch:{stack.versions.elasticsearch}",
        environment={
            "discovery.type": "single-node",
            "xpack.security.enabled": "false",
            "ES_JAVA_OPTS": "-Xms1024m -Xmx1024m",
        },
        volumes=["es-data:/usr/share/elasticsearch/data"],
        ports=[port(stack.ports.elasticsearch, 9200, "127.0.0.1")],
        healthcheck=healthcheck(
            ["CMD-SHELL", "curl -fsS 'http://localhost:9200/_cluster/health?wait_for_status=yellow&timeout=5s'"],
            interval="15s",
            start="30s",
        ),
        restart="unless-stopped",
    )


def _openmetadata_env(stack: Stack) -> dict[str, str]:
    return {
        "OPENMETADATA_CLUSTER_NAME": stack.plan.name,
        "SERVER_PORT": "8585",
        "SERVER_ADMIN_PORT": str(OM_ADMIN_PORT),
        "SERVER_HOST_API_URL": "http://openmetadata-server:8585/api",
        "DB_DRIVER_CLASS": "org.postgresql.Driver",
        "DB_SCHEME": "postgresql",
        "DB_PARAMS": "allowPublicKeyRetrieval=true&useSSL=false&serverTimezone=UTC",
        "DB_HOST": POSTGRES_HOST,
        "DB_PORT": str(POSTGRES_PORT),
        "DB_USER": "openmetadata",
        "DB_USER_PASSWORD": ref(OPENMETADATA_DB_PASSWORD),
        "OM_DATABASE": "openmetadata",
        "ELASTICSEARCH_HOST": "elasticsearch",
        "ELASTICSEARCH_PORT": "9200",
        "ELASTICSEARCH_SCHEME": "http",
        "SEARCH_TYPE": "elasticsearch",
        "FERNET_KEY": ref(OPENMETADATA_FERNET_KEY),
        "AUTHENTICATION_PROVIDER": "basic",
        "AUTHORIZER_ADMIN_PRINCIPALS": "[admin]",
        "AUTHORIZER_PRINCIPAL_DOMAIN": "open-metadata.org",
        "PIPELINE_SERVICE_CLIENT_ENABLED": "false",
        "OPENMETADATA_HEAP_OPTS": "-Xmx1G -Xms1G",
    }


def openmetadata_image(stack: Stack, kind: str = "server") -> str:
    return f"docker.getcollate.io/openmetadata/{kind}:{stack.versions.openmetadata}"


def openmetadata_migrate(stack: Stack) -> dict[str, Any]:
    """One-shot: OpenMetadata's database migrations, before the server starts."""
    return service(
        image=openmetadata_image(stack),
        command=["./bootstrap/openmetadata-ops.sh", "migrate"],
        environment=_openmetadata_env(stack),
        depends_on=healthy("postgres", "elasticsearch"),
    )


def openmetadata_server(stack: Stack) -> dict[str, Any]:
    """The OpenMetadata server (also reachable as `openmetadata` on the network)."""
    return service(
        image=openmetadata_image(stack),
        environment=_openmetadata_env(stack),
        ports=[port(stack.ports.openmetadata, 8585)],
        depends_on={**healthy("postgres", "elasticsearch"), **completed("openmetadata-migrate")},
        healthcheck=healthcheck(
            ["CMD", "wget", "-q", "--spider", f"http://localhost:{OM_ADMIN_PORT}/healthcheck"],
            interval="15s",
            retries=20,
            start="60s",
        ),
        restart="unless-stopped",
        aliases=["openmetadata"],
    )


def openmetadata_ingestion(stack: Stack) -> dict[str, Any]:
    """One-shot (profile bootstrap): `metadata ingest -c <workflow>` for the workflows under openmetadata/.

    The workflows read ${VAR}s: the warehouse as PLATFORMGEN_WAREHOUSE_* (set here, as the runtime does for dbt),
    the dbt artefacts under PLATFORMGEN_PROJECT_ROOT, and the rest (JWT token, storage keys) from .env.
    """
    root = stack.project_root
    conn = stack.plan.warehouse.connection
    wh = warehouse_vars(stack.plan)
    via_conn_id = wh.conn_id is not None
    environment = {
        "PLATFORMGEN_PROJECT_ROOT": root,
        "PLATFORMGEN_WAREHOUSE_HOST": POSTGRES_HOST if via_conn_id else setting(conn.host),
        "PLATFORMGEN_WAREHOUSE_PORT": str(POSTGRES_PORT) if via_conn_id else setting(conn.port),
        "PLATFORMGEN_WAREHOUSE_USER": ref(wh.user_var),
        "PLATFORMGEN_WAREHOUSE_DBNAME": wh.database,
        "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD": ref(wh.password_var),
    }
    if airflow_admin_needed(stack.plan):
        environment.update({"AIRFLOW_API_USER": "admin", "AIRFLOW_API_PASSWORD": ref(AIRFLOW_ADMIN_PASSWORD)})
    return service(
        image=openmetadata_image(stack, "ingestion"),
        profiles=[BOOTSTRAP_PROFILE],
        entrypoint=["metadata"],
        command=["--help"],
        environment=environment,
        env_file=[".env"],
        volumes=[f"{stack.host('openmetadata')}:{root}/openmetadata:ro", f"dbt-target:{root}/dbt/target:ro"],
        depends_on=healthy("openmetadata-server"),
    )
