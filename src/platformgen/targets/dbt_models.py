"""SQL of the dbt project: staging models (silver rules), intermediate and mart models, and Jinja escaping.

Spec SQL never reaches a model file as Jinja: every `{` that would open a Jinja tag (`{{`, `{%`, `{#`)
is replaced by `{{ '{' }}`, which prints the brace, so model files, filters, measures and test
conditions render to exactly the SQL of the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from platformgen.plan.build import ModelPlan, Plan, SourceTablePlan
from platformgen.render import environment, quote_ident
from platformgen.spec import sql as sqltools
from platformgen.spec.types import column_type
from platformgen.targets.dbt_types import ModelTypes

_JINJA_OPEN = re.compile(r"\{(?=[{%#])")
#: a test argument that dbt would evaluate as a call (dbt.clients.jinja.add_rendered_test_kwargs)
_DBT_CALL = re.compile(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$", re.DOTALL)


def escape_jinja(text: str) -> str:
    """`text` as Jinja source that renders to `text` itself: each `{` opening a tag becomes `{{ '{' }}`."""
    return _JINJA_OPEN.sub("{{ '{' }}", text)


def jinja_argument(text: str) -> str:
    """A dbt generic-test argument that renders to `text` itself, even when it looks like a ref()/env_var() call."""
    if _DBT_CALL.match(text):
        return "{{ '' }}" + escape_jinja(text)  # two output nodes: dbt keeps the text instead of calling it
    return escape_jinja(text)


def jinja_call(name: str, *args: str, **kwargs: Any) -> str:
    """`{{ name(args, key=value) }}` for plain values (validated names, numbers, lists of names)."""
    parts = [repr(a) for a in args] + [f"{k}={_jinja_value(v)}" for k, v in kwargs.items()]
    return "{{ " + f"{name}({', '.join(parts)})" + " }}"


def _jinja_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_jinja_value(v) for v in value) + "]"
    return repr(value)


def sql_text(node: exp.Expr) -> str:
    """PostgreSQL text of a parsed spec expression, Jinja-escaped for a dbt file."""
    return escape_jinja(node.sql(dialect=sqltools.DIALECT))


def expression_text(text: str) -> str:
    """A spec SQL expression (filter, condition) as normalised PostgreSQL, not yet Jinja-escaped."""
    node, problem = sqltools.parse_expression(text)
    if node is None:  # validation parsed it already
        raise ValueError(problem.message if problem else f"cannot parse {text!r}")
    return node.sql(dialect=sqltools.DIALECT)


# --------------------------------------------------------------------------- staging


@dataclass(frozen=True)
class StagingColumn:
    """One output column of a staging model."""

    name: str
    expression: str


def _dedup_column(table: SourceTablePlan) -> tuple[str, bool]:
    """(silver column or _ingested_at, keep latest) that orders duplicates of a primary key."""
    rename = table.spec.silver.rename
    dedup = table.spec.silver.dedup
    if dedup is not None:
        return rename.get(dedup.by, dedup.by), dedup.keep == "latest"
    incremental = getattr(table.spec, "incremental", None)
    if incremental is not None:
        return rename.get(incremental.cursor, incremental.cursor), True
    return "_ingested_at", True


def staging_columns(table: SourceTablePlan) -> list[StagingColumn]:
    """Cast, trim and case expressions of the silver columns, from the raw (source) columns."""
    silver = table.spec.silver
    trim = silver.trim
    out: list[StagingColumn] = []
    for source, target in zip(table.columns, table.silver_columns, strict=True):
        kind = target.postgres_type or "text"
        expression = f"cast({quote_ident(source.name)} as {kind})"
        is_string = target.type is not None and column_type(target.type).name == "string"
        if is_string and (trim is True or (isinstance(trim, list) and source.name in trim)):
            expression = f"trim({expression})"
        case = silver.case.get(source.name)
        if case is not None:
            expression = f"{case}({expression})"
        out.append(StagingColumn(target.name, expression))
    return out


def staging_summary(table: SourceTablePlan) -> str:
    """One line naming the silver rules a staging model applies."""
    silver = table.spec.silver
    rules = []
    if silver.filter:
        rules.append("filter")
    if silver.rename:
        rules.append("renames")
    rules.append("casts")
    if silver.trim:
        rules.append("trim")
    if silver.case:
        rules.append("case")
    if table.primary_key:
        column, latest = _dedup_column(table)
        rules.append(f"one row per key, the {'latest' if latest else 'earliest'} by {column}")
    return ", ".join(rules) + "."


def staging_config(table: SourceTablePlan) -> str:
    """The config() call of a staging model."""
    silver = table.spec.silver
    kwargs: dict[str, Any] = {"materialized": silver.materialized}
    if silver.materialized == "incremental":
        key = list(table.primary_key)
        policy = {"add": "append_new_columns", "ignore": "ignore", "fail": "fail"}
        kwargs.update(
            unique_key=key[0] if len(key) == 1 else key,
            incremental_strategy="delete+insert",
            on_schema_change=policy[silver.schema_change.new_columns],
        )
    return jinja_call("config", **kwargs)


def render_staging(plan: Plan, table: SourceTablePlan) -> str:
    """`models/staging/stg_<source>__<table>.sql`: raw -> silver with the dataset's rules."""
    silver = table.spec.silver
    columns = staging_columns(table)
    output = [quote_ident(c.name) for c in columns] + ['"_ingested_at"']
    dedup = None
    if table.primary_key:
        column, latest = _dedup_column(table)
        direction = "desc" if latest else "asc"
        order = f"{quote_ident(column)} {direction} nulls last"
        if column != "_ingested_at":
            order += ', "_ingested_at" desc'
        dedup = {"key": [quote_ident(k) for k in table.primary_key], "order": order}
    return (
        environment()
        .get_template("dbt/staging_model.sql.j2")
        .render(
            config_call=staging_config(table),
            key=table.key,
            summary=staging_summary(table),
            source_call=jinja_call("source", "raw", table.raw_table),
            this_call="{{ this }}",
            jinja_open="{% ",
            jinja_close=" %}",
            condition=escape_jinja(expression_text(silver.filter)) if silver.filter else None,
            incremental=silver.materialized == "incremental",
            columns=columns,
            output=output,
            dedup=dedup,
        )
    )


# --------------------------------------------------------------------------- intermediate and marts


def model_config(model: ModelPlan) -> str:
    """The config() call of an intermediate or mart model."""
    kwargs: dict[str, Any] = {"materialized": model.materialized}
    if model.materialized == "incremental":
        key = list(model.spec.unique_key)
        kwargs.update(
            unique_key=key[0] if len(key) == 1 else key,
            incremental_strategy="delete+insert",
            on_schema_change="append_new_columns",
        )
    return jinja_call("config", **kwargs)


def _with_casts(model: ModelPlan, tree: exp.Query, casts: dict[str, str]) -> exp.Query:
    """The query with columns cast to their declared types where the inferred type differs.

    An aggregate's projections are cast in place; a SQL model is wrapped, so its own grouping and
    ordering stay exactly as written.
    """
    if not casts:
        return tree
    if model.spec.aggregate is not None and isinstance(tree, exp.Select):
        for projection in tree.expressions:
            name = projection.alias_or_name
            if name in casts and isinstance(projection, exp.Alias):
                projection.set("this", exp.cast(projection.this, exp.DataType.build(casts[name], dialect="postgres")))
        return tree
    columns = []
    for column in model.columns:
        ref = exp.column(column.name, quoted=True)
        if column.name in casts:
            columns.append(
                exp.alias_(
                    exp.cast(ref, exp.DataType.build(casts[column.name], dialect="postgres")), column.name, quoted=True
                )
            )
        else:
            columns.append(ref)
    return exp.select(*columns).from_(tree.subquery("model", copy=False))


def render_query(tree: exp.Expr, refs: dict[str, str]) -> str:
    """PostgreSQL text of a model query with dataset references replaced by dbt ref() calls.

    The SQL is generated with placeholder table names, Jinja-escaped, and only then are the
    placeholders replaced, so the ref() calls are the only live Jinja in the result.
    """
    tree = tree.copy()
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    original = tree.sql(dialect=sqltools.DIALECT)
    salt = 0
    while f"pgref{salt}_" in original:
        salt += 1
    placeholders: dict[str, str] = {}
    for table in list(tree.find_all(exp.Table)):
        key = sqltools.table_key(table)
        if (not table.db and table.name in cte_names) or key not in refs:
            continue
        token = placeholders.setdefault(key, f"pgref{salt}_{len(placeholders)}")
        alias = table.alias or table.name
        replacement = exp.to_table(token)
        replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        table.replace(replacement)
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None and f"{column.db}.{column.table}" in placeholders:
            column.set("db", None)  # shop_db.orders.id -> orders.id: the table keeps its name as alias
    text = escape_jinja(tree.sql(dialect=sqltools.DIALECT, pretty=True))
    for key, token in placeholders.items():
        text = re.sub(rf"\b{token}\b", refs[key].replace("\\", "\\\\"), text)
    return text


def dataset_refs(plan: Plan) -> dict[str, str]:
    """Dataset name (source.table or model) -> its dbt ref() call."""
    refs = {t.key: "{{ " + f"ref({t.staging_model!r})" + " }}" for t in plan.tables}
    refs.update({m.name: "{{ " + f"ref({m.name!r})" + " }}" for m in plan.models})
    return refs


def render_model(plan: Plan, model: ModelPlan, types: ModelTypes, refs: dict[str, str] | None = None) -> str:
    """`models/<intermediate|marts>/<model>.sql`: the model's SELECT with ref()s, in PostgreSQL."""
    tree = _with_casts(model, types.query.copy(), types.casts)
    if model.spec.aggregate is not None:
        agg = model.spec.aggregate
        summary = f"Aggregate of {agg.from_}" + (f" per {agg.time.grain}" if agg.time else "") + "."
    else:
        summary = f"SQL model over {', '.join(model.deps) or 'no datasets'}."
    if types.casts:
        summary += f" Cast to the declared type: {', '.join(sorted(types.casts))}."
    return (
        environment()
        .get_template("dbt/model.sql.j2")
        .render(
            config_call=model_config(model),
            summary=summary,
            body=render_query(tree, refs if refs is not None else dataset_refs(plan)),
        )
    )
