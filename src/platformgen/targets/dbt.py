"""dbt target: a dbt-core 1.9 project for PostgreSQL under `dbt/`: staging, intermediate and mart models, tests, docs.

Connection (`dbt/profiles.yml`): every value comes from an environment variable of a fixed name, so the
same project serves a spec with `env:` references and one with an Airflow `conn_id`. The runtime's dbt
task (`platformgen.runtime.dbt_runner`) resolves the warehouse connection like every other task and
exports PLATFORMGEN_WAREHOUSE_HOST, _PORT, _USER, _DBNAME, _SSLMODE and
DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD (dbt scrubs DBT_ENV_SECRET_* values from its logs).
Literal values of the spec (e.g. `database: warehouse`) are the defaults; values the spec takes from
`env:` have no default and must be set. The profile holds no secret.
"""

from __future__ import annotations

from typing import Any

from platformgen.plan.build import Plan
from platformgen.render import dump_yaml, environment
from platformgen.targets.base import Files
from platformgen.targets.dbt_models import dataset_refs, render_model, render_staging
from platformgen.targets.dbt_schema import exposures_file, layer_file, model_entry, sources_file, staging_entry
from platformgen.targets.dbt_types import infer_model_types

#: profile field -> environment variable the runtime sets
PROFILE_ENV = {
    "host": "PLATFORMGEN_WAREHOUSE_HOST",
    "port": "PLATFORMGEN_WAREHOUSE_PORT",
    "user": "PLATFORMGEN_WAREHOUSE_USER",
    "password": "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD",
    "dbname": "PLATFORMGEN_WAREHOUSE_DBNAME",
    "sslmode": "PLATFORMGEN_WAREHOUSE_SSLMODE",
}
LAYER_FOLDERS = {"intermediate": "intermediate", "gold": "marts"}


def _env(field: str, default: Any = None) -> str:
    """`{{ env_var('NAME') }}`, with the spec's literal value as the default when it has one."""
    name = PROFILE_ENV[field]
    if default is None or (isinstance(default, str) and default.startswith("env:")):
        return "{{ env_var('" + name + "') }}"
    literal = str(default).replace("\\", "\\\\").replace("'", "\\'")
    return "{{ env_var('" + name + "', '" + literal + "') }}"


def profiles(plan: Plan) -> dict[str, Any]:
    """`profiles.yml`: one postgres output whose connection values all come from the environment."""
    conn = plan.warehouse.connection
    literal = conn.conn_id is None  # with an Airflow connection, no field of the spec applies
    output = {
        "type": "postgres",
        "host": _env("host", conn.host if literal else None),
        "port": _env("port", conn.port if literal else None).replace(" }}", " | as_number }}"),
        "user": _env("user"),
        "password": _env("password"),
        "dbname": _env("dbname", conn.database if literal else None),
        "schema": "public",
        "sslmode": _env("sslmode", conn.sslmode if literal else "prefer"),
        "threads": 4,
        "connect_timeout": 10,
    }
    return {plan.name: {"target": "prod", "outputs": {"prod": output}}}


def project(plan: Plan) -> dict[str, Any]:
    """`dbt_project.yml`: folder configs with the spec's exact schema names."""
    schemas = plan.warehouse.schemas
    layers = {m.layer for m in plan.models}
    # models compute in the platform's time zone whatever the server's default: date_trunc() and ::date
    # of a timestamptz depend on the session's TimeZone
    folders: dict[str, Any] = {
        "+pre-hook": [f"set time zone '{plan.platform.timezone}'"],
        "staging": {"+schema": schemas.staging, "+materialized": "view"},
    }
    # only folders that hold models: dbt warns about configuration paths that match nothing
    if "intermediate" in layers:
        folders["intermediate"] = {"+schema": schemas.intermediate, "+materialized": "view"}
    if "gold" in layers:
        folders["marts"] = {"+schema": schemas.marts, "+materialized": "table"}
    return {
        "name": plan.name,
        "version": "1.0.0",
        "config-version": 2,
        "profile": plan.name,
        "model-paths": ["models"],
        "macro-paths": ["macros"],
        "test-paths": ["tests"],
        "target-path": "target",
        "clean-targets": ["target", "dbt_packages", "logs"],
        "flags": {"send_anonymous_usage_stats": False},
        "models": {plan.name: folders},
    }


class DbtTarget:
    """`dbt/`: project, profile, macros, one model per silver table and per model, schema files and exposures."""

    name = "dbt"
    description = "dbt project"

    def render(self, plan: Plan) -> Files:
        env = environment()
        files: Files = {
            "dbt/dbt_project.yml": dump_yaml(project(plan)),
            "dbt/profiles.yml": dump_yaml(profiles(plan)),
            "dbt/macros/generate_schema_name.sql": env.get_template("dbt/generate_schema_name.sql.j2").render(),
            "dbt/macros/platformgen_tests.sql": env.get_template("dbt/generic_tests.sql.j2").render(),
            "dbt/models/sources.yml": dump_yaml(sources_file(plan)),
        }
        staging = []
        for table in plan.tables:
            files[f"dbt/models/staging/{table.staging_model}.sql"] = render_staging(plan, table)
            staging.append(staging_entry(plan, table))
        files["dbt/models/staging/_staging.yml"] = dump_yaml(layer_file(staging))
        types = infer_model_types(plan)
        refs = dataset_refs(plan)
        entries: dict[str, list[dict[str, Any]]] = {"intermediate": [], "marts": []}
        for model in plan.models:
            folder = LAYER_FOLDERS[model.layer]
            files[f"dbt/models/{folder}/{model.name}.sql"] = render_model(plan, model, types[model.name], refs)
            entries[folder].append(model_entry(plan, model, types[model.name]))
        for folder, items in entries.items():
            if items:
                files[f"dbt/models/{folder}/_{folder}.yml"] = dump_yaml(layer_file(items))
        if plan.dashboards:
            files["dbt/models/marts/_exposures.yml"] = dump_yaml(exposures_file(plan))
        return files
