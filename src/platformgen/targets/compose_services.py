"""Docker Compose building blocks (service layout, references, health checks) and the PostgreSQL and MinIO services.

Each service function returns one service as a dict in a fixed key order. Host paths are relative to the compose
file (`Stack.base` is the output folder as seen from it); secrets appear only as `${VAR:?...}` references.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from platformgen.plan.build import Plan
from platformgen.spec.models import Ports, Versions
from platformgen.targets.compose_env import (
    AIRFLOW_DB_PASSWORD,
    OPENMETADATA_DB_PASSWORD,
    POSTGRES_HOST,
    POSTGRES_PASSWORD,
    POSTGRES_PORT,
    SUPERSET_DB_PASSWORD,
    env_name,
    warehouse_vars,
)

NETWORK = "data-platform"
MINIO_IMAGE = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
MC_IMAGE = "minio/mc:RELEASE.2025-08-13T08-35-41Z"
REDIS_IMAGE = "redis:7.2-bookworm"
BOOTSTRAP_PROFILE = "bootstrap"


def ref(name: str) -> str:
    """A required, non-empty variable of `.env`."""
    return "${" + name + ":?set it in .env}"


def setting(value: str | int) -> str:
    """A spec setting as compose sees it: `env:VAR` becomes a required `${VAR}`, anything else stays literal."""
    name = env_name(value)
    return ref(name) if name else str(value)


def healthcheck(test: list[str], *, interval: str = "10s", retries: int = 10, start: str = "10s") -> dict[str, Any]:
    """A health check; `test` is a CMD or CMD-SHELL list."""
    return {"test": test, "interval": interval, "timeout": "10s", "retries": retries, "start_period": start}


def port(published: int, target: int, host_ip: str | None = None) -> dict[str, Any]:
    """A published port in the long syntax, which no YAML reader can mistake for a number."""
    doc: dict[str, Any] = {"target": target, "published": published, "protocol": "tcp"}
    if host_ip is not None:
        doc["host_ip"] = host_ip
    return doc


def healthy(*services: str) -> dict[str, Any]:
    return {name: {"condition": "service_healthy"} for name in services}


def completed(*services: str) -> dict[str, Any]:
    return {name: {"condition": "service_completed_successfully"} for name in services}


def service(**keys: Any) -> dict[str, Any]:
    """A service with every key in one order, the ones left at None dropped, on the platform network."""
    order = (
        "image",
        "build",
        "profiles",
        "entrypoint",
        "command",
        "user",
        "environment",
        "env_file",
        "volumes",
        "ports",
        "depends_on",
        "healthcheck",
        "deploy",
        "restart",
    )
    unknown = set(keys) - set(order) - {"aliases"}
    if unknown:
        raise ValueError(f"unknown service keys: {sorted(unknown)}")
    doc = {key: keys[key] for key in order if keys.get(key) is not None}
    aliases = keys.get("aliases")
    doc["networks"] = {NETWORK: {"aliases": aliases}} if aliases else [NETWORK]
    return doc


@dataclass(frozen=True)
class Stack:
    """What every service builder needs: the plan and where the output folder is, relative to the compose file."""

    plan: Plan
    base: str  # "." or "./generated"

    def host(self, rel: str) -> str:
        """A host path of the output folder, relative to the compose file."""
        return f"{self.base}/{rel}"

    @property
    def project_root(self) -> str:
        return self.plan.orchestration.project_root.rstrip("/") or "/"

    @property
    def versions(self) -> Versions:
        return self.plan.platform.versions

    @property
    def ports(self) -> Ports:
        return self.plan.platform.ports


# --------------------------------------------------------------------------- PostgreSQL


def postgres(stack: Stack) -> dict[str, Any]:
    """PostgreSQL: Airflow, Superset and OpenMetadata databases, and the warehouse."""
    wh = warehouse_vars(stack.plan)
    return service(
        image=f"postgres:{stack.versions.postgres}",
        environment={
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": ref(POSTGRES_PASSWORD),
            "POSTGRES_DB": "postgres",
            "AIRFLOW_DB_PASSWORD": ref(AIRFLOW_DB_PASSWORD),
            "SUPERSET_DB_PASSWORD": ref(SUPERSET_DB_PASSWORD),
            "OPENMETADATA_DB_PASSWORD": ref(OPENMETADATA_DB_PASSWORD),
            "WAREHOUSE_DB": wh.database,
            "WAREHOUSE_USER": ref(wh.user_var),
            "WAREHOUSE_PASSWORD": ref(wh.password_var),
        },
        volumes=[
            "postgres-data:/var/lib/postgresql/data",
            f"{stack.host('compose/postgres/init-databases.sh')}:/docker-entrypoint-initdb.d/10-platformgen.sh:ro",
        ],
        ports=[port(stack.ports.postgres, POSTGRES_PORT)],
        healthcheck=healthcheck(["CMD-SHELL", "pg_isready -U postgres -d postgres"], interval="5s", start="5s"),
        restart="unless-stopped",
    )


def warehouse_init(stack: Stack) -> dict[str, Any]:
    """One-shot: apply the idempotent warehouse/bootstrap.sql (schemas, data_platform and raw tables) on every up."""
    conn = stack.plan.warehouse.connection
    wh = warehouse_vars(stack.plan)
    # with a conn_id the warehouse is the stack's own database; otherwise the spec says where it is
    via_conn_id = wh.conn_id is not None
    return service(
        image=f"postgres:{stack.versions.postgres}",
        command=["psql", "-v", "ON_ERROR_STOP=1", "--quiet", "-f", "/platform/warehouse/bootstrap.sql"],
        environment={
            "PGHOST": POSTGRES_HOST if via_conn_id else setting(conn.host),
            "PGPORT": str(POSTGRES_PORT) if via_conn_id else setting(conn.port),
            "PGDATABASE": wh.database,
            "PGUSER": ref(wh.user_var),
            "PGPASSWORD": ref(wh.password_var),
        },
        volumes=[f"{stack.host('warehouse')}:/platform/warehouse:ro"],
        depends_on=healthy("postgres"),
    )


# --------------------------------------------------------------------------- MinIO


def minio(stack: Stack) -> dict[str, Any]:
    """MinIO, the S3-compatible object store; its root user is the spec's storage access key."""
    storage = stack.plan.storage
    return service(
        image=MINIO_IMAGE,
        command=["server", "/data", "--console-address", ":9001"],
        environment={
            "MINIO_ROOT_USER": setting(storage.access_key),
            "MINIO_ROOT_PASSWORD": setting(storage.secret_key),
        },
        volumes=["minio-data:/data"],
        ports=[port(stack.ports.minio_api, 9000), port(stack.ports.minio_console, 9001)],
        healthcheck=healthcheck(["CMD", "mc", "ready", "local"], interval="5s", start="5s"),
        restart="unless-stopped",
    )


def minio_init(stack: Stack) -> dict[str, Any]:
    """One-shot (profile bootstrap): create the bronze, silver and gold buckets; safe to run again."""
    storage = stack.plan.storage
    buckets = storage.buckets
    steps = ['mc alias set platform http://minio:9000 "$$MINIO_ROOT_USER" "$$MINIO_ROOT_PASSWORD"']
    for bucket in dict.fromkeys((buckets.bronze, buckets.silver, buckets.gold)):
        steps.append(f"mc mb --ignore-existing {shlex.quote('platform/' + bucket)}")
    return service(
        image=MC_IMAGE,
        profiles=[BOOTSTRAP_PROFILE],
        entrypoint=["/bin/sh", "-c", " && ".join(steps)],
        environment={
            "MINIO_ROOT_USER": setting(storage.access_key),
            "MINIO_ROOT_PASSWORD": setting(storage.secret_key),
        },
        depends_on=healthy("minio"),
    )
