"""Great Expectations target: GX 0.18 suites and checkpoints per layer, a file-backed project, the runtime config.

Generated under ``great_expectations/`` (the GX project folder, next to ``dbt/`` in the project root):

- ``expectations/<layer>/<dataset>.json``: one suite per dataset and layer, named ``<layer>.<dataset>`` (GX 0.18
  maps the dots of a suite name to folders). ``bronze`` and ``silver`` have one suite per source dataset
  (``<source>__<table>``), ``gold`` one per model of the intermediate and gold layers (``<model>``);
- ``checkpoints/<layer>.yml``: a GX 0.18 Checkpoint validating every suite of the layer;
- ``great_expectations.yml``: a file-backed project (stores, Data Docs site, the ``warehouse`` SQL datasource
  reading ``${PLATFORMGEN_WAREHOUSE_URL}``), so ``gx.get_context(context_root_dir=...)`` can run the silver and
  gold checkpoints without platformgen (GX's own ``now()`` is local time: run it with TZ and PGTZ at UTC).
  ``config_variables.yml``, ``expectations/.ge_store_backend_id`` and the ``uncommitted/*/.gitkeep`` files make
  GX 0.18 see a complete project, so opening it writes nothing but results and docs under ``uncommitted/``
  (which ``.gitignore`` keeps out of git).

``quality_config(plan)`` is the plain-data config the quality DAG hands to ``runtime.tasks.run_quality``.

How plan checks become expectations (each expectation's ``meta`` carries ``check_id``, ``check_kind`` and
``severity``; a check maps to exactly one expectation, except freshness, see below):

- bronze (this run's files, validated with pandas): ``expect_column_to_exist`` for every declared source column,
  severity ``error`` unless the dataset's schema-change policy keeps removed columns (then ``warn``). No row
  count: an incremental run may rightly bring no rows; the spec's row_count bounds apply to silver.
- not_null, unique (compound: ``expect_compound_columns_to_be_unique``), accepted_values, range (``strict`` sets
  ``strict_min``/``strict_max``), regex, row_count: the matching core expectations.
- freshness: ``expect_column_max_to_be_between`` on the column (``_ingested_at`` when the spec names none) with
  ``min_value: {"$PARAMETER": "now() - timedelta(seconds=N)"}``: one expectation for ``warn_after`` (severity
  warn) and one for ``error_after`` (the check's severity), both with the check's id and ``meta.threshold``.
  The runtime pins ``now()`` to UTC (see runtime/quality.py).
- relationships and sql: GX 0.18 core has no expectation against another table and no "SQL condition holds"
  expectation, so both use the core ``unexpected_rows_expectation`` with a query that returns the offending
  rows (at most SAMPLE_ROWS, each carrying the total as ``_unexpected_count``). relationships is an anti-join
  (``not exists`` in the parent relation; NULLs pass, as in dbt), so the database does the work and no value
  list is copied into the suite or the docs; sql selects the rows where the condition is false (NULL passes).
  The sample shows the primary key and the referenced columns, never columns classified ``pii``. The queries
  name relations with their schema: GX 0.18 substitutes ``{batch}`` without the schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from platformgen.plan.build import Check, ModelPlan, Plan, PlanColumn, SourceTablePlan
from platformgen.render import dump_json, dump_yaml, quote_ident
from platformgen.targets.base import Files

GX_DIR = "great_expectations"
LAYERS = ("bronze", "silver", "gold")
WAREHOUSE_DATASOURCE = "warehouse"
BRONZE_DATASOURCE = "bronze"
#: The variable the file-backed project reads the warehouse URL from (the runtime's override variable).
WAREHOUSE_URL_VARIABLE = "PLATFORMGEN_WAREHOUSE_URL"
#: The load timestamp every raw table (and so every staging model) carries; freshness without a column uses it.
INGESTED_AT = "_ingested_at"
#: Offending rows kept as a sample by relationships and sql checks.
SAMPLE_ROWS = 20
UNEXPECTED_COUNT = "_unexpected_count"


@dataclass(frozen=True)
class Suite:
    """One dataset's suite in one layer, with where its batch comes from."""

    layer: str
    dataset: str
    slug: str
    owner: str
    relation: str  # schema.relation for silver/gold, the bronze prefix for bronze
    expectations: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.slug}"

    @property
    def file(self) -> str:
        """Path relative to the GX project folder."""
        return f"expectations/{self.layer}/{self.slug}.json"

    @property
    def asset(self) -> str:
        return self.slug if self.layer == "bronze" else self.relation


def _expectation(kind: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    return {"expectation_type": kind, "kwargs": kwargs, "meta": meta}


def _meta(check: Check, severity: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"check_id": check.id, "check_kind": check.kind, "severity": severity or check.severity}
    meta.update({k: v for k, v in extra.items() if v is not None})
    if check.description:
        meta["notes"] = {"format": "markdown", "content": [check.description]}
    return meta


class _Relations:
    """Qualified warehouse relations of the plan's datasets."""

    def __init__(self, plan: Plan) -> None:
        self.by_dataset = plan.relations

    def sql(self, dataset: str) -> str:
        schema, name = self.by_dataset[dataset]
        return f"{quote_ident(schema)}.{quote_ident(name)}"

    def name(self, dataset: str) -> str:
        schema, name = self.by_dataset[dataset]
        return f"{schema}.{name}"


def _referenced_columns(condition: str) -> list[str]:
    """Column names a SQL condition mentions, in order of appearance (empty when it does not parse)."""
    from sqlglot import exp

    from platformgen.spec.sql import parse_expression

    node, problem = parse_expression(condition)
    if node is None or problem is not None:
        return []
    return list(dict.fromkeys(c.name for c in node.find_all(exp.Column) if not isinstance(c.this, exp.Star)))


def _sample_columns(wanted: list[str], columns: tuple[PlanColumn, ...]) -> list[str]:
    known = {c.name: c for c in columns}
    return [name for name in dict.fromkeys(wanted) if name in known and known[name].classification != "pii"]


def _rows_query(relation: str, alias: str, where: str, sample: list[str]) -> str:
    if sample:
        select = ", ".join(f"{alias}.{quote_ident(c)}" for c in sample)
        select += f", count(*) over () as {UNEXPECTED_COUNT}"
        limit = SAMPLE_ROWS
    else:
        select, limit = f"count(*) over () as {UNEXPECTED_COUNT}", 1
    return f"select {select} from {relation} as {alias} where {where} limit {limit}"


def check_expectations(
    plan: Plan, check: Check, columns: tuple[PlanColumn, ...], key: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The GX 0.18 expectation configurations of one silver or gold check (see the module docstring)."""
    column = check.column
    pii = any(c.name == column and c.classification == "pii" for c in columns) or None
    meta = _meta(check, pii=pii)
    kind = check.kind
    if kind == "not_null":
        return [_expectation("expect_column_values_to_not_be_null", {"column": column}, meta)]
    if kind == "unique":
        if check.columns:
            kwargs: dict[str, Any] = {"column_list": list(check.columns)}
            return [_expectation("expect_compound_columns_to_be_unique", kwargs, meta)]
        return [_expectation("expect_column_values_to_be_unique", {"column": column}, meta)]
    if kind == "accepted_values":
        values = list(check.param("values", ()))
        return [_expectation("expect_column_values_to_be_in_set", {"column": column, "value_set": values}, meta)]
    if kind == "range":
        kwargs = {"column": column}
        low, high, strict = check.param("min"), check.param("max"), bool(check.param("strict"))
        if low is not None:
            kwargs["min_value"] = low
        if high is not None:
            kwargs["max_value"] = high
        if strict and low is not None:
            kwargs["strict_min"] = True
        if strict and high is not None:
            kwargs["strict_max"] = True
        return [_expectation("expect_column_values_to_be_between", kwargs, meta)]
    if kind == "regex":
        kwargs = {"column": column, "regex": check.param("pattern")}
        return [_expectation("expect_column_values_to_match_regex", kwargs, meta)]
    if kind == "row_count":
        kwargs = {}
        if check.param("min") is not None:
            kwargs["min_value"] = check.param("min")
        if check.param("max") is not None:
            kwargs["max_value"] = check.param("max")
        return [_expectation("expect_table_row_count_to_be_between", kwargs, meta)]
    if kind == "freshness":
        target = check.param("column") or column or INGESTED_AT
        out = []
        for threshold, severity in (("warn_after", "warn"), ("error_after", check.severity)):
            seconds = check.param(threshold)
            if seconds is None:
                continue
            kwargs = {"column": target, "min_value": {"$PARAMETER": f"now() - timedelta(seconds={int(seconds)})"}}
            out.append(
                _expectation("expect_column_max_to_be_between", kwargs, _meta(check, severity, threshold=threshold))
            )
        return out
    relations = _Relations(plan)
    if kind == "relationships":
        parent, field_name = str(check.param("to")), str(check.param("field") or column)
        child_col = f"child.{quote_ident(str(column))}"
        where = (
            f"{child_col} is not null and not exists (select 1 from {relations.sql(parent)} as parent "
            f"where parent.{quote_ident(field_name)} = {child_col})"
        )
        query = _rows_query(relations.sql(check.dataset), "child", where, _sample_columns([*key, str(column)], columns))
        extra = {"column": column, "to": relations.name(parent), "field": field_name}
        return [_expectation("unexpected_rows_expectation", {"unexpected_rows_query": query}, _meta(check, **extra))]
    if kind == "sql":
        condition = str(check.param("condition"))
        sample = _sample_columns([*key, *_referenced_columns(condition)], columns)
        query = _rows_query(relations.sql(check.dataset), "t", f"({condition}) is false", sample)
        meta = _meta(check, condition=condition)
        return [_expectation("unexpected_rows_expectation", {"unexpected_rows_query": query}, meta)]
    raise ValueError(f"check {check.id}: no Great Expectations mapping for kind {kind!r}")


def _generated_note(plan: Plan) -> str:
    return f"Generated by platformgen from spec '{plan.spec_label}'. Do not edit: change the spec and run `platformgen compile`."


def bronze_suite(plan: Plan, table: SourceTablePlan) -> Suite:
    """Required columns of one source dataset's bronze files."""
    removed = table.spec.silver.schema_change.removed_columns
    severity = "warn" if removed == "keep_null" else "error"
    expectations = tuple(
        _expectation(
            "expect_column_to_exist",
            {"column": c.name},
            {"check_id": f"{table.slug}__column_exists__{c.name}", "check_kind": "column_exists", "severity": severity},
        )
        for c in table.columns
    )
    bucket = plan.storage.buckets.bronze
    notes = (
        _generated_note(plan),
        f"Bronze files of `{table.key}` (`s3://{bucket}/{table.bronze_prefix}`, one run at a time): every declared column is present.",
    )
    return Suite("bronze", table.key, table.slug, table.owner, table.bronze_prefix, expectations, notes)


def silver_suite(plan: Plan, table: SourceTablePlan) -> Suite:
    """The checks of one source dataset, run against its staging model."""
    schema = plan.warehouse.schemas.staging
    relation = f"{schema}.{table.staging_model}"
    expectations = tuple(
        e
        for c in plan.checks_for(table.key)
        for e in check_expectations(plan, c, table.silver_columns, table.primary_key)
    )
    notes = (_generated_note(plan), f"Silver checks of `{table.key}` on `{relation}`.")
    return Suite("silver", table.key, table.slug, table.owner, relation, expectations, notes, {"model_layer": "silver"})


def gold_suite(plan: Plan, model: ModelPlan) -> Suite:
    """The checks of one intermediate or gold model."""
    relation = f"{model.schema}.{model.name}"
    key = tuple(model.spec.unique_key)
    expectations = tuple(
        e for c in plan.checks_for(model.name) for e in check_expectations(plan, c, model.columns, key)
    )
    notes = (_generated_note(plan), f"Checks of the {model.layer} model `{model.name}` on `{relation}`.")
    return Suite(
        "gold", model.name, model.name, model.owner, relation, expectations, notes, {"model_layer": model.layer}
    )


def suites(plan: Plan) -> dict[str, list[Suite]]:
    """Every suite per quality layer, in plan order; datasets without checks get no silver or gold suite."""
    out: dict[str, list[Suite]] = {layer: [] for layer in LAYERS}
    for table in plan.tables:
        out["bronze"].append(bronze_suite(plan, table))
        silver = silver_suite(plan, table)
        if silver.expectations:
            out["silver"].append(silver)
    for model in plan.models:
        gold = gold_suite(plan, model)
        if gold.expectations:
            out["gold"].append(gold)
    return out


def suite_document(suite: Suite) -> dict[str, Any]:
    """The suite as GX 0.18 `ExpectationSuite` JSON."""
    return {
        "expectation_suite_name": suite.name,
        "ge_cloud_id": None,
        "data_asset_type": None,
        "expectations": list(suite.expectations),
        "meta": {
            "notes": {"format": "markdown", "content": list(suite.notes)},
            "platformgen": {
                "dataset": suite.dataset,
                "layer": suite.layer,
                ("bronze_prefix" if suite.layer == "bronze" else "relation"): suite.relation,
                "owner": suite.owner,
                **suite.extra,
            },
        },
    }


def _batch_request(suite: Suite) -> dict[str, Any]:
    source = BRONZE_DATASOURCE if suite.layer == "bronze" else WAREHOUSE_DATASOURCE
    return {"datasource_name": source, "data_asset_name": suite.asset, "options": {}}


def checkpoint_document(layer: str, layer_suites: list[Suite]) -> dict[str, Any]:
    """A GX 0.18 Checkpoint (SimpleCheckpoint-free, explicit actions) validating every suite of a layer."""
    return {
        "name": layer,
        "config_version": 1.0,
        "class_name": "Checkpoint",
        "module_name": "great_expectations.checkpoint",
        "run_name_template": f"%Y%m%dT%H%M%SZ-{layer}",
        "action_list": [
            {"name": "store_validation_result", "action": {"class_name": "StoreValidationResultAction"}},
            {"name": "store_evaluation_params", "action": {"class_name": "StoreEvaluationParametersAction"}},
            {"name": "update_data_docs", "action": {"class_name": "UpdateDataDocsAction"}},
        ],
        "evaluation_parameters": {},
        "runtime_configuration": {},
        "validations": [{"batch_request": _batch_request(s), "expectation_suite_name": s.name} for s in layer_suites],
    }


def _filesystem(base: str) -> dict[str, Any]:
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": base, "suppress_store_backend_id": True}


def context_id(plan: Plan) -> str:
    """The GX data context id: derived from the platform name, so it is stable across compiles."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"platformgen://{plan.name}/great_expectations"))


def project_document(plan: Plan, all_suites: dict[str, list[Suite]]) -> dict[str, Any]:
    """great_expectations.yml: a file-backed GX 0.18 project over the generated folders."""
    tables = sorted({s.relation for layer in ("silver", "gold") for s in all_suites[layer]})
    assets = {
        relation: {"type": "table", "table_name": relation.split(".", 1)[1], "schema_name": relation.split(".", 1)[0]}
        for relation in tables
    }
    bronze_assets = {s.slug: {"type": "dataframe"} for s in all_suites["bronze"]}
    return {
        "config_version": 3.0,
        "config_variables_file_path": "config_variables.yml",
        "expectations_store_name": "expectations_store",
        "validations_store_name": "validations_store",
        "evaluation_parameter_store_name": "evaluation_parameter_store",
        "checkpoint_store_name": "checkpoint_store",
        "stores": {
            # Not suppressed: GX takes the context id from this store's backend id (expectations/.ge_store_backend_id).
            "expectations_store": {
                "class_name": "ExpectationsStore",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "expectations/"},
            },
            "validations_store": {
                "class_name": "ValidationsStore",
                "store_backend": _filesystem("uncommitted/validations/"),
            },
            "evaluation_parameter_store": {"class_name": "EvaluationParameterStore"},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": _filesystem("checkpoints/")},
        },
        "data_docs_sites": {
            "local_site": {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": _filesystem("uncommitted/data_docs/local_site/"),
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        "anonymous_usage_statistics": {"enabled": False, "data_context_id": context_id(plan)},
        "include_rendered_content": {
            "globally": False,
            "expectation_suite": False,
            "expectation_validation_result": False,
        },
        "fluent_datasources": {
            WAREHOUSE_DATASOURCE: {
                "type": "sql",
                "connection_string": "${" + WAREHOUSE_URL_VARIABLE + "}",
                "create_temp_table": False,
                "assets": assets,
            },
            BRONZE_DATASOURCE: {"type": "pandas", "assets": bronze_assets},
        },
    }


def _check_summary(suite: Suite) -> list[dict[str, Any]]:
    out = []
    for e in suite.expectations:
        kwargs, meta = e["kwargs"], e["meta"]
        column = kwargs.get("column") or meta.get("column")
        if "column_list" in kwargs:
            column = ", ".join(kwargs["column_list"])
        out.append({"id": meta["check_id"], "kind": meta["check_kind"], "column": column, "severity": meta["severity"]})
    return out


def quality_config(plan: Plan) -> dict[str, Any]:
    """The plain-data config the quality DAG passes to `platformgen.runtime.tasks.run_quality` (QUALITY).

    ``{"project_root": <orchestration.project_root; env PLATFORMGEN_PROJECT_ROOT wins at run time>,
    "gx_dir": "great_expectations", "layers": {"bronze": [...], "silver": [...], "gold": [...]}}``; each layer
    lists one entry per suite: ``dataset``, ``suite`` (name), ``suite_file`` (relative to gx_dir),
    ``checkpoint`` (the layer), ``owner``, ``asset`` and, for bronze, ``bronze_prefix`` (in the bronze bucket of
    the platform config), else ``schema``, ``relation`` and ``model_layer`` (silver, intermediate or gold), and
    ``checks``: ``[{id, kind, column, severity}]``, one per expectation in suite order. A layer without
    checks has an empty list.
    """
    layers: dict[str, list[dict[str, Any]]] = {}
    for layer, layer_suites in suites(plan).items():
        entries = []
        for suite in layer_suites:
            entry: dict[str, Any] = {
                "dataset": suite.dataset,
                "suite": suite.name,
                "suite_file": suite.file,
                "checkpoint": layer,
                "owner": suite.owner,
                "asset": suite.asset,
            }
            if layer == "bronze":
                entry["bronze_prefix"] = suite.relation
            else:
                schema, _, relation = suite.relation.partition(".")
                entry.update({"schema": schema, "relation": relation, "model_layer": suite.extra["model_layer"]})
            entry["checks"] = _check_summary(suite)
            entries.append(entry)
        layers[layer] = entries
    return {"project_root": plan.orchestration.project_root, "gx_dir": GX_DIR, "layers": layers}


_GITIGNORE = """\
# Generated by platformgen: validation results and Data Docs are written at run time; the .gitkeep files
# keep the folders GX 0.18 requires (without them, opening the project scaffolds a second one in ../gx).
uncommitted/**
!uncommitted/**/
!uncommitted/**/.gitkeep
"""


class GreatExpectationsTarget:
    """`great_expectations/`: GX 0.18 suites and checkpoints for bronze, silver and gold, plus the project file."""

    name = "great_expectations"
    description = "Great Expectations suites and checkpoints"

    def render(self, plan: Plan) -> Files:
        all_suites = suites(plan)
        files: Files = {
            f"{GX_DIR}/great_expectations.yml": dump_yaml(project_document(plan, all_suites)),
            f"{GX_DIR}/.gitignore": _GITIGNORE,
            f"{GX_DIR}/config_variables.yml": "{}\n",
            f"{GX_DIR}/uncommitted/data_docs/.gitkeep": "",
            f"{GX_DIR}/uncommitted/validations/.gitkeep": "",
            # Shipped so that opening the project does not write a random id into the generated folder.
            f"{GX_DIR}/expectations/.ge_store_backend_id": f"store_backend_id = {context_id(plan)}\n",
        }
        for layer, layer_suites in all_suites.items():
            for suite in layer_suites:
                files[f"{GX_DIR}/{suite.file}"] = dump_json(suite_document(suite))
            if layer_suites:
                files[f"{GX_DIR}/checkpoints/{layer}.yml"] = dump_yaml(checkpoint_document(layer, layer_suites))
        return files
