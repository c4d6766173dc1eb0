"""Property files of the dbt project: model schema.yml per layer (docs, meta, data tests, contracts), sources and exposures.

Written for dbt 1.9: generic-test arguments at the top level of each test, source freshness and
`loaded_at_field` at the top level of the source and table entries.
"""

from __future__ import annotations

from typing import Any

from platformgen.plan.build import Check, ModelPlan, Plan, PlanColumn, SlaPlan, SourceTablePlan
from platformgen.targets.dbt_models import escape_jinja, expression_text, jinja_argument
from platformgen.targets.dbt_types import ModelTypes

#: PostgreSQL keywords that cannot be a column name without quotes
# fmt: off
RESERVED = frozenset((
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary",
    "both", "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint", "create",
    "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike", "in",
    "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left", "like",
    "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only", "or",
    "order", "outer", "overlaps", "placing", "primary", "references", "returning", "right", "select",
    "session_user", "similar", "some", "symmetric", "system_user", "table", "tablesample", "then", "to", "trailing",
    "true", "union", "unique", "user", "using", "variadic", "verbose", "when", "where", "window", "with",
))
# fmt: on
INGESTED_AT = "_ingested_at"
#: checks placed on a column (dbt passes it as column_name); the others are model-level tests
_COLUMN_TESTS = {"not_null", "unique", "accepted_values", "range", "regex", "relationships"}


def sql_name(column: str) -> str:
    """A column name as dbt should write it into test SQL: quoted only when it is a reserved word."""
    return f'"{column}"' if column in RESERVED else column


def text(value: str) -> str:
    """A spec string in a dbt YAML file that dbt renders with Jinja (descriptions, meta)."""
    return escape_jinja(value)


def duration(seconds: int) -> dict[str, Any]:
    """A dbt freshness period: whole hours when possible, else minutes (rounded up)."""
    if seconds % 3600 == 0:
        return {"count": seconds // 3600, "period": "hour"}
    return {"count": -(-seconds // 60), "period": "minute"}


def freshness(sla: SlaPlan | None) -> dict[str, Any] | None:
    """A source table's freshness block from the dataset's SLA."""
    if sla is None or (sla.warn_after is None and sla.error_after is None):
        return None
    block: dict[str, Any] = {}
    if sla.warn_after is not None:
        block["warn_after"] = duration(sla.warn_after)
    if sla.error_after is not None:
        block["error_after"] = duration(sla.error_after)
    return block


# --------------------------------------------------------------------------- tests


def _accepted(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return jinja_argument(value.replace("'", "''"))  # dbt writes each value as '<value>'
    return value


def _relation(plan: Plan, dataset: str) -> str:
    table = plan.tables_by_key.get(dataset)
    return f"ref('{table.staging_model if table else dataset}')"


def test_entry(plan: Plan, check: Check) -> tuple[str | None, dict[str, Any]]:
    """(column or None for a model-level test, the dbt test entry) of a plan check."""
    config: dict[str, Any] = {"severity": check.severity}
    args: dict[str, Any] = {}
    column = check.column if check.kind in _COLUMN_TESTS and not check.columns else None
    if check.kind in ("not_null", "unique") and column is not None:
        name = check.kind
    elif check.kind == "unique":
        name, args = "unique_combination_of_columns", {"combination_of_columns": [sql_name(c) for c in check.columns]}
    elif check.kind == "accepted_values":
        name, args = "accepted_values", {"values": [_accepted(v) for v in check.param("values", ())]}
    elif check.kind == "range":
        name = "in_range"
        for key in ("min", "max"):
            value = check.param(key)
            if value is not None:
                args[f"{key}_value"] = jinja_argument(value) if isinstance(value, str) else value
        if check.param("strict"):
            args["strict"] = True
    elif check.kind == "regex":
        name, args = "matches_regex", {"pattern": jinja_argument(check.param("pattern"))}
    elif check.kind == "row_count":
        name = "row_count_between"
        args = {f"{k}_value": check.param(k) for k in ("min", "max") if check.param(k) is not None}
    elif check.kind == "relationships":
        name = "relationships"
        args = {"to": _relation(plan, check.param("to")), "field": sql_name(check.param("field") or column or "")}
    elif check.kind == "freshness":
        name = "fresh_within"
        warn, error = check.param("warn_after"), check.param("error_after")
        args = {"column": sql_name(check.param("column") or INGESTED_AT)}
        if warn is not None:
            args["warn_after_seconds"] = warn
        if error is not None:
            args["error_after_seconds"] = error
        # the test returns one row per limit exceeded; the number of rows picks the severity
        if error is not None and check.severity == "error":
            config.update(warn_if=">=1", error_if=f">={2 if warn is not None else 1}")
        else:
            config = {"severity": "warn"}
    elif check.kind == "sql":
        name, args = "expression_is_true", {"expression": jinja_argument(expression_text(check.param("condition")))}
    else:  # pragma: no cover - the plan has no other kinds
        raise ValueError(f"unknown check kind {check.kind!r}")
    if check.description:
        config["meta"] = {"description": text(check.description)}
    return column, {name: {"name": check.id, **args, "config": config}}


def _tests(plan: Plan, dataset: str, columns: list[str]) -> tuple[dict[str, list[Any]], list[Any]]:
    """Column tests by column, and model-level tests, of a dataset."""
    by_column: dict[str, list[Any]] = {c: [] for c in columns}
    model_level: list[Any] = []
    for check in plan.checks_for(dataset):
        if check.kind == "freshness" and check.param("column") is None and INGESTED_AT not in columns:
            continue  # a model has no ingestion time; the SLA monitor watches it instead
        column, entry = test_entry(plan, check)
        if column is not None and column in by_column:
            by_column[column].append(entry)
        else:
            model_level.append(entry)
    return by_column, model_level


# --------------------------------------------------------------------------- models


def _column(column: PlanColumn, data_type: str | None, tests: list[Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": column.name}
    if column.name in RESERVED:
        entry["quote"] = True
    if column.description:
        entry["description"] = text(column.description)
    if data_type is not None:
        entry["data_type"] = data_type
    meta: dict[str, Any] = {}
    if column.classification:
        meta["classification"] = column.classification
    if column.tags:
        meta["tags"] = list(column.tags)
    if meta:
        entry["meta"] = meta
    if tests:
        entry["data_tests"] = tests
    return entry


def _model_entry(
    name: str,
    description: str,
    meta: dict[str, Any],
    tags: list[str],
    config: dict[str, Any],
    columns: list[Any],
    tests: list[Any],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if description:
        entry["description"] = text(description)
    entry["meta"] = meta
    cfg = dict(config)
    if tags:
        cfg["tags"] = tags
    if cfg:
        entry["config"] = cfg
    if tests:
        entry["data_tests"] = tests
    entry["columns"] = columns
    return entry


def staging_entry(plan: Plan, table: SourceTablePlan) -> dict[str, Any]:
    """The schema.yml entry of a staging model: silver columns and the dataset's checks."""
    names = [c.name for c in table.silver_columns] + [INGESTED_AT]
    by_column, model_level = _tests(plan, table.key, names)
    columns = [_column(c, c.postgres_type, by_column[c.name]) for c in table.silver_columns]
    loaded = PlanColumn(INGESTED_AT, "timestamptz", description="When the row was loaded into the raw table.")
    columns.append(_column(loaded, "timestamptz", by_column[INGESTED_AT]))
    meta: dict[str, Any] = {
        "owner": text(table.owner),
        "dataset": table.key,
        "layer": "silver",
        "primary_key": list(table.primary_key),
    }
    if table.spec.tags:
        meta["tags"] = list(table.spec.tags)
    description = table.description or f"Silver model of {table.key}."
    return _model_entry(table.staging_model, description, meta, list(table.spec.tags), {}, columns, model_level)


def model_entry(plan: Plan, model: ModelPlan, types: ModelTypes) -> dict[str, Any]:
    """The schema.yml entry of an intermediate or mart model; marts enforce a contract when every type is known."""
    by_column, model_level = _tests(plan, model.name, [c.name for c in model.columns])
    meta: dict[str, Any] = {"owner": text(model.owner), "layer": model.layer}
    if model.spec.tags:
        meta["tags"] = list(model.spec.tags)
    config: dict[str, Any] = {}
    if model.layer == "gold":
        if types.unknown:
            meta["contract"] = (
                f"not enforced: the type of {', '.join(types.unknown)} cannot be inferred; declare it in the spec"
            )
        else:
            config["contract"] = {"enforced": True}
    columns = [_column(c, types.columns.get(c.name), by_column[c.name]) for c in model.columns]
    description = model.spec.description or f"Model {model.name}."
    return _model_entry(model.name, description, meta, list(model.spec.tags), config, columns, model_level)


def layer_file(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A schema.yml document."""
    return {"version": 2, "models": entries}


# --------------------------------------------------------------------------- sources and exposures


def sources_file(plan: Plan) -> dict[str, Any]:
    """`models/sources.yml`: the raw landing tables, with column docs and freshness from the SLAs."""
    tables = []
    for table in plan.tables:
        entry: dict[str, Any] = {
            "name": table.raw_table,
            "description": text(table.description or f"Raw rows of {table.key}, as loaded from bronze."),
            "meta": {"owner": text(table.owner), "dataset": table.key, "source_kind": table.kind},
        }
        block = freshness(plan.sla_for(table.key))
        if block is not None:
            entry["freshness"] = block
        columns = [_column(c, c.postgres_type, []) for c in table.columns]
        for name, kind, doc in (
            (INGESTED_AT, "timestamptz", "When the row was loaded."),
            ("_run_id", "text", "Ingestion run that loaded the row."),
            ("_source_file", "text", "Bronze file the row came from."),
        ):
            columns.append({"name": name, "description": doc, "data_type": kind})
        entry["columns"] = columns
        tables.append(entry)
    source = {
        "name": "raw",
        "description": "Raw landing tables, loaded from bronze by the ingestion DAGs.",
        "schema": plan.warehouse.schemas.raw,
        "loaded_at_field": INGESTED_AT,
        "tables": tables,
    }
    return {"version": 2, "sources": [source]}


def _owner(plan: Plan, owner: str) -> dict[str, str]:
    if "@" in owner:
        return {"name": text(owner), "email": text(owner)}
    team = plan.governance.teams.get(owner)
    if team is not None and team.email:
        return {"name": owner, "email": text(team.email)}
    return {"name": owner}


def exposures_file(plan: Plan) -> dict[str, Any]:
    """`models/marts/_exposures.yml`: one exposure per dashboard, depending on the models its charts read."""
    exposures = []
    for dashboard in plan.dashboards:
        entry: dict[str, Any] = {
            "name": dashboard.name,
            "label": text(dashboard.title or dashboard.name.replace("_", " ").title()),
            "type": "dashboard",
        }
        if dashboard.description:
            entry["description"] = text(dashboard.description)
        entry["owner"] = _owner(plan, dashboard.owner or plan.platform.owner)
        entry["depends_on"] = [f"ref('{name}')" for name in sorted({c.model for c in dashboard.charts})]
        entry["meta"] = {"charts": len(dashboard.charts)}
        exposures.append(entry)
    return {"version": 2, "exposures": exposures}
