"""Superset target: a V1 import bundle (database, datasets, charts, dashboards) and the access roles.

Generated under ``superset/`` (only fields Superset 6.1's import schemas know: they reject unknown keys):

- ``metadata.yaml``, ``databases/warehouse.yaml``, ``datasets/warehouse/<model>.yaml``, ``charts/*.yaml``,
  ``dashboards/<name>.yaml``: the bundle. ``metadata.yaml`` has no ``type``, so the same bundle imports through
  ``/api/v1/dashboard/import/`` and ``/api/v1/assets/import/`` (the latter overwrites every object, see
  ``platformgen.deploy.superset``). Every object has a uuid5 of a fixed namespace and its names, so a re-import
  updates objects instead of duplicating them. ``platformgen.deploy.superset.build_bundle_zip`` zips these files
  under one top-level folder at ``up`` time.
- The database URI never holds a password: it is masked (``XXXXXXXXXX``) and the importer's ``passwords`` field
  supplies it. Superset does not expand environment variables, so the URI uses the spec's literal values and,
  for values that are ``env:VAR`` references: host ``postgres`` and port 5432 (the warehouse as Superset sees it
  inside the Compose network) and ``${VAR}`` for the database name and the user, which ``build_bundle_zip``
  fills in from the environment when it builds the zip. An Airflow ``conn_id`` cannot reach Superset: its field
  values are used.
- One dataset per gold model that a chart reads: columns typed with the types the dbt contracts use (see
  ``dbt_types``), the time column (``main_dttm_col``), metrics from the charts' metrics and, for aggregate models,
  one re-aggregation per measure (SUM of sums and counts, MIN, MAX, else AVG), plus ``count``. The dataset's
  ``catalog`` is the PostgreSQL database, as Superset 4.1+ records it for PostgreSQL, so that its schema
  permission is ``[<database>].[<catalog>].[<schema>]``, the one SQL Lab checks.
- ``roles.json``: custom roles in the format of ``superset fab import-roles -p roles.json`` (Flask-AppBuilder's
  role export): Analyst (explore and build charts and dashboards, SQL Lab when ``sql_lab``) and Viewer
  (dashboards only), each with ``schema_access`` on its schemas (the marts schema when it names none). The
  built-in Admin, Alpha and Gamma are left to ``superset init``; a spec role mapped to Alpha or Gamma gets a
  companion role ``<platform>_<role>`` with its schema access (and SQL Lab) to grant next to the built-in one.
- ``deploy.json``: what the deploy and sync steps need (bundle folder, password variable, datasets); not part
  of the bundle.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from platformgen.plan.build import ModelPlan, Plan
from platformgen.render import dump_json, dump_yaml
from platformgen.spec import sql as sqltools
from platformgen.spec.models import Chart, Dashboard
from platformgen.spec.types import ENV_REF_RE
from platformgen.targets.base import Files
from platformgen.targets.dbt_types import infer_model_types
from platformgen.targets.superset_charts import VIZ_TYPES, chart_params, grid_position, metric_name
from platformgen.targets.superset_roles import role_permissions

SUPERSET_DIR = "superset"
IMPORT_VERSION = "1.0.0"
PASSWORD_MASK = "XXXXXXXXXX"
#: uuid5 namespace of every Superset object platformgen generates; never change it (re-imports match by uuid)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "platformgen:superset")
#: the warehouse as Superset reaches it inside the Compose network, when the spec takes host/port from env
COMPOSE_HOST = "postgres"
COMPOSE_PORT = 5432
DATABASE_FILE = "databases/warehouse.yaml"
BUILTIN_ROLES = ("Admin", "Alpha", "Gamma")
_DTTM_TYPES = {"date", "timestamp", "timestamptz"}


def object_uuid(*parts: str) -> str:
    """The stable uuid5 of one Superset object."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def env_ref(value: Any) -> str | None:
    """The variable name of an env:VAR reference, else None."""
    match = ENV_REF_RE.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def database_name(plan: Plan) -> str:
    """The Superset database name (unique per Superset, hence the platform prefix)."""
    return f"{plan.name}_warehouse"


def warehouse_catalog(plan: Plan) -> str:
    """The PostgreSQL database Superset connects to: its default (and only) catalog."""
    database = plan.warehouse.connection.database
    var = env_ref(database)
    return f"${{{var}}}" if var else str(database)


def sqlalchemy_uri(plan: Plan) -> str:
    """The masked URI; see the module docstring for where each part comes from."""
    conn = plan.warehouse.connection
    user = env_ref(conn.user)
    host = COMPOSE_HOST if env_ref(conn.host) else conn.host
    port = COMPOSE_PORT if env_ref(conn.port) else conn.port
    return (
        f"postgresql+psycopg2://${{{user}}}:{PASSWORD_MASK}@{host}:{port}/{warehouse_catalog(plan)}"
        f"?sslmode={conn.sslmode}"
    )


@dataclass(frozen=True)
class Metric:
    """A saved metric of a dataset."""

    name: str
    expression: str
    verbose_name: str | None = None


def _rollup(measure: str) -> str:
    """How a pre-aggregated measure column re-aggregates: by its first aggregate function."""
    node, _ = sqltools.parse_expression(measure)
    first = next((n for n in node.walk() if isinstance(n, exp.AggFunc)), None) if node is not None else None
    if isinstance(first, exp.Count) and not isinstance(first.this, exp.Distinct):
        return "SUM"
    if isinstance(first, exp.Sum):
        return "SUM"
    if isinstance(first, exp.Min):
        return "MIN"
    if isinstance(first, exp.Max):
        return "MAX"
    if isinstance(first, exp.Count):  # count(distinct): summing is exact only across disjoint groups
        return "SUM"
    return "AVG"


def dataset_metrics(model: ModelPlan, charts: list[Chart]) -> list[Metric]:
    """The charts' metrics first, then one per measure of an aggregate model, then count; unique by name."""
    metrics: dict[str, Metric] = {}
    for chart in charts:
        if chart.metric:
            name = metric_name(chart.metric)
            metrics.setdefault(name, Metric(name, chart.metric.strip(), chart.metric.strip()))
    aggregate = model.spec.aggregate
    if aggregate is not None:
        for column, measure in aggregate.measures.items():
            func = _rollup(measure)
            name = f"{func.lower()}__{column}"
            metrics.setdefault(name, Metric(name, f"{func}({column})", f"{func}({column})"))
    metrics.setdefault("count", Metric("count", "COUNT(*)", "COUNT(*)"))
    return list(metrics.values())


def superset_type(pg_type: str | None) -> str | None:
    """The column type as Superset shows it for PostgreSQL."""
    if pg_type is None:
        return None
    return {"timestamptz": "TIMESTAMP WITH TIME ZONE", "timestamp": "TIMESTAMP WITHOUT TIME ZONE"}.get(
        pg_type, pg_type.upper()
    )


def _is_dttm(pg_type: str | None) -> bool:
    return pg_type is not None and pg_type.split("(", 1)[0] in _DTTM_TYPES


def time_column(model: ModelPlan, charts: list[Chart], types: dict[str, str | None]) -> str | None:
    """The dataset's main time column: a chart's x, else the aggregate's time dimension, else the first date."""
    for chart in charts:
        if chart.x:
            return chart.x
    aggregate = model.spec.aggregate
    if aggregate is not None and aggregate.time is not None:
        return aggregate.time.name or aggregate.time.grain
    return next((name for name, kind in types.items() if _is_dttm(kind)), None)


def gold_datasets(plan: Plan) -> list[ModelPlan]:
    """The models any chart reads, in plan (dependency) order."""
    used = {chart.model for dashboard in plan.dashboards for chart in dashboard.charts}
    return [m for m in plan.models if m.name in used]


def dataset_entries(plan: Plan) -> list[dict[str, str]]:
    """uuid, schema and table of every dataset: what the sync DAG refreshes."""
    return [
        {"uuid": object_uuid(plan.name, "dataset", m.schema, m.name), "schema": m.schema, "table_name": m.name}
        for m in gold_datasets(plan)
    ]


def dashboard_title(dashboard: Dashboard) -> str:
    """The spec's title, else the name in sentence case."""
    return dashboard.title or dashboard.name.replace("_", " ").capitalize()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "chart"


class SupersetTarget:
    """`superset/`: the V1 import bundle, roles.json and deploy.json."""

    name = "superset"
    description = "Superset import bundle and roles"

    def render(self, plan: Plan) -> Files:
        files: Files = {}
        db_uuid = object_uuid(plan.name, "database")
        files[f"{SUPERSET_DIR}/metadata.yaml"] = dump_yaml({"version": IMPORT_VERSION})
        files[f"{SUPERSET_DIR}/{DATABASE_FILE}"] = dump_yaml(self._database(plan, db_uuid))
        types = infer_model_types(plan) if plan.dashboards else {}
        charts_of: dict[str, list[Chart]] = {}
        for dashboard in plan.dashboards:
            for chart in dashboard.charts:
                charts_of.setdefault(chart.model, []).append(chart)
        for model in gold_datasets(plan):
            body = self._dataset(plan, model, charts_of[model.name], types[model.name].columns, db_uuid)
            files[f"{SUPERSET_DIR}/datasets/warehouse/{model.name}.yaml"] = dump_yaml(body)
        for dashboard in plan.dashboards:
            files.update(self._dashboard(plan, dashboard))
        files[f"{SUPERSET_DIR}/roles.json"] = dump_json(self._roles(plan))
        files[f"{SUPERSET_DIR}/deploy.json"] = dump_json(self._deploy(plan))
        return files

    def _database(self, plan: Plan, db_uuid: str) -> dict[str, Any]:
        return {
            "database_name": database_name(plan),
            "sqlalchemy_uri": sqlalchemy_uri(plan),
            "cache_timeout": None,
            "expose_in_sqllab": True,
            "allow_run_async": False,
            "allow_ctas": False,
            "allow_cvas": False,
            "allow_dml": False,
            "allow_csv_upload": False,
            "extra": {
                "allows_virtual_table_explore": True,
                "metadata_params": {},
                "engine_params": {},
                "schemas_allowed_for_csv_upload": [],
            },
            "uuid": db_uuid,
            "version": IMPORT_VERSION,
        }

    def _dataset(
        self, plan: Plan, model: ModelPlan, charts: list[Chart], types: dict[str, str | None], db_uuid: str
    ) -> dict[str, Any]:
        described = {c.name: c.description for c in model.columns}
        columns = [
            {
                "column_name": name,
                "verbose_name": None,
                "is_dttm": _is_dttm(kind),
                "is_active": True,
                "type": superset_type(kind),
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": described.get(name) or None,
                "python_date_format": None,
            }
            for name, kind in types.items()
        ]
        metrics: list[dict[str, Any]] = [
            {
                "metric_name": m.name,
                "verbose_name": m.verbose_name,
                "metric_type": None,
                "expression": m.expression,
                "description": None,
                "d3format": None,
                "extra": {},
                "warning_text": None,
            }
            for m in dataset_metrics(model, charts)
        ]
        certification = {"certified_by": model.owner, "details": f"Gold model of {plan.name}, built by platformgen"}
        return {
            "table_name": model.name,
            "main_dttm_col": time_column(model, charts, types),
            "description": model.spec.description or None,
            "default_endpoint": None,
            "offset": 0,
            "cache_timeout": None,
            "catalog": warehouse_catalog(plan),
            "schema": model.schema,
            "sql": None,
            "params": None,
            "template_params": None,
            "filter_select_enabled": True,
            "fetch_values_predicate": None,
            "extra": {"certification": certification},
            "normalize_columns": False,
            "always_filter_main_dttm": False,
            "uuid": object_uuid(plan.name, "dataset", model.schema, model.name),
            "metrics": metrics,
            "columns": columns,
            "version": IMPORT_VERSION,
            "database_uuid": db_uuid,
        }

    def _dashboard(self, plan: Plan, dashboard: Dashboard) -> Files:
        files: Files = {}
        title = dashboard_title(dashboard)
        seen: dict[str, int] = {}
        placed: list[tuple[Chart, str]] = []
        for chart in dashboard.charts:
            key = _slug(chart.title)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                key = f"{key}_{seen[key]}"
            chart_uuid = object_uuid(plan.name, "chart", dashboard.name, key)
            dataset_uuid = object_uuid(plan.name, "dataset", plan.model(chart.model).schema, chart.model)
            files[f"{SUPERSET_DIR}/charts/{dashboard.name}__{key}.yaml"] = dump_yaml(
                {
                    "slice_name": chart.title,
                    "description": None,
                    "certified_by": None,
                    "certification_details": None,
                    "viz_type": VIZ_TYPES[chart.type],
                    "params": chart_params(chart),
                    "query_context": None,
                    "cache_timeout": None,
                    "uuid": chart_uuid,
                    "version": IMPORT_VERSION,
                    "dataset_uuid": dataset_uuid,
                }
            )
            placed.append((chart, chart_uuid))
        position = grid_position(title, placed)
        files[f"{SUPERSET_DIR}/dashboards/{dashboard.name}.yaml"] = dump_yaml(
            {
                "dashboard_title": title,
                "description": dashboard.description or None,
                "css": "",
                "slug": f"{plan.name}-{dashboard.name}".replace("_", "-"),
                "certified_by": dashboard.owner or plan.platform.owner,
                "certification_details": f"Generated by platformgen from the {plan.name} spec",
                "published": True,
                "uuid": object_uuid(plan.name, "dashboard", dashboard.name),
                "position": position,
                "metadata": {
                    "color_scheme": "supersetColors",
                    "refresh_frequency": 0,
                    "expanded_slices": {},
                    "label_colors": {},
                    "shared_label_colors": [],
                    "color_scheme_domain": [],
                    "timed_refresh_immune_slices": [],
                    "cross_filters_enabled": True,
                    "native_filter_configuration": [],
                    "default_filters": "{}",
                },
                "version": IMPORT_VERSION,
            }
        )
        return files

    def _roles(self, plan: Plan) -> list[dict[str, Any]]:
        roles: list[dict[str, Any]] = []
        catalog = warehouse_catalog(plan)
        db_name = database_name(plan)
        for key, role in sorted(plan.governance.roles.items()):
            if role.superset == "Admin":
                continue
            schemas = role.schemas or [plan.warehouse.schemas.marts]
            access = [("schema_access", f"[{db_name}].[{catalog}].[{schema}]") for schema in schemas]
            name = role.superset if role.superset not in BUILTIN_ROLES else f"{plan.name}_{key}"
            pairs = role_permissions(role.superset, sql_lab=role.sql_lab) + access
            roles.append(
                {
                    "name": name,
                    "permissions": [{"permission": {"name": p}, "view_menu": {"name": v}} for p, v in pairs],
                }
            )
        return roles

    def _deploy(self, plan: Plan) -> dict[str, Any]:
        password_var = env_ref(plan.warehouse.connection.password)
        return {
            "bundle": f"{plan.name}_superset",
            "database": {"file": DATABASE_FILE, "name": database_name(plan), "password_env": password_var},
            "datasets": dataset_entries(plan),
            "dashboards": [
                {"uuid": object_uuid(plan.name, "dashboard", d.name), "title": dashboard_title(d)}
                for d in plan.dashboards
            ],
            "roles_file": "roles.json",
        }
