"""Column-level lineage of models: which input columns (dataset.column) each output column derives from."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify

from platformgen.plan.build import ModelPlan, Plan
from platformgen.spec import sql as sqltools

#: {model: {output column: ["dataset.column", ...]}}
ColumnLineage = dict[str, dict[str, list[str]]]
#: a sqlglot schema: flat dataset name -> {column: type}
Schema = dict[str, object]


def model_query(model: ModelPlan, schema: Schema | None = None, time_zone: str = "UTC") -> exp.Query:
    """The SELECT of a model with the spec's dataset names (source.table, model names): its SQL or its aggregate.

    With a `schema` (see `flat_schema`), an aggregate over a timestamptz column truncates it in `time_zone`.
    """
    spec = model.spec
    if spec.sql is not None:
        tree, problem = sqltools.parse(spec.sql)
        if tree is None or not isinstance(tree, exp.Query):  # validation rejects this before planning
            raise ValueError(f"model {model.name}: {problem.message if problem else 'not a query'}")
        return tree
    agg = spec.aggregate
    assert agg is not None
    time = None if agg.time is None else (agg.time.column, agg.time.grain, agg.time.name or agg.time.grain)
    columns = (schema or {}).get(sqltools.flat_name(agg.from_))
    kind = columns.get(agg.time.column) if isinstance(columns, dict) and agg.time is not None else None
    return sqltools.aggregate_select(
        agg.from_,
        time=time,
        dimensions=[(d.name, d.expr) for d in agg.dimensions],
        measures=agg.measures,
        condition=agg.filter,
        zone=time_zone if kind in ("timestamptz", "timestamp with time zone") else None,
    )


def flat_schema(plan: Plan) -> Schema:
    """A sqlglot schema of every dataset under its flat name: silver tables and models, column -> type.

    Model columns have their declared type, 'unknown' otherwise.
    """
    schema: Schema = {}
    for table in plan.tables:
        schema[sqltools.flat_name(table.key)] = {c.name: c.postgres_type or "unknown" for c in table.silver_columns}
    for model in plan.models:
        schema[model.name] = {c.name: c.postgres_type or "unknown" for c in model.columns}
    return schema


def reads(schema: Schema, model: ModelPlan) -> Schema:
    """The part of `schema` a model reads: sqlglot normalises the whole schema on every use, so keep it small."""
    names = (sqltools.flat_name(dep) for dep in model.deps)
    return {name: schema[name] for name in names if name in schema}


def _sources(node: Node, datasets: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for child in node.walk():
        if isinstance(child.expression, exp.Table):
            dataset = datasets.get(child.expression.name)
            if dataset is not None:
                found.add(f"{dataset}.{child.name.split('.')[-1].strip(chr(34))}")
    return found


def model_column_lineage(model: ModelPlan, plan: Plan, schema: Schema | None = None) -> dict[str, list[str]]:
    """{output column: sorted input columns} of one model; columns whose lineage cannot be traced get []."""
    schema = reads(schema if schema is not None else flat_schema(plan), model)
    datasets = {sqltools.flat_name(dep): dep for dep in model.deps}
    out: dict[str, list[str]] = {c.name: [] for c in model.columns}
    try:
        tree = qualify(
            sqltools.with_flat_tables(model_query(model)),
            schema=schema,
            dialect=sqltools.DIALECT,
            validate_qualify_columns=False,
        )
        nodes = lineage(None, tree, schema=schema, dialect=sqltools.DIALECT, copy=False)
    except SqlglotError:
        return out
    for name, node in nodes.items():
        if name in out:
            out[name] = sorted(_sources(node, datasets))
    return out


def column_lineage(plan: Plan) -> ColumnLineage:
    """Column lineage of every model of the plan, in plan order."""
    schema = flat_schema(plan)
    return {model.name: model_column_lineage(model, plan, schema) for model in plan.models}
