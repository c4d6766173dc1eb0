"""PostgreSQL type inference of model columns with sqlglot, for dbt model contracts.

sqlglot's generic type rules differ from PostgreSQL's where it matters for a contract: `sum(bigint)` is
numeric, `avg(integer)` and `round(x, n)` are numeric, `100.0` is a numeric literal, `extract()` is
numeric and `date_trunc()` keeps timestamptz. The annotators here implement PostgreSQL 16's rules on
top of sqlglot's, and the result is reduced to the type *family* dbt compares (`numeric`, never
`numeric(p,s)`: an inferred precision could silently round values when the contract creates the table).
A type that cannot be inferred is None; the contract of such a model is not enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import TypeAnnotator, annotate_types
from sqlglot.optimizer.qualify import qualify

from platformgen.plan.build import ModelPlan, Plan
from platformgen.plan.column_lineage import Schema, flat_schema, model_query, reads
from platformgen.spec import sql as sqltools

D = exp.DType
#: numeric families in PostgreSQL's promotion order
_NUMERIC = (D.SMALLINT, D.INT, D.BIGINT, D.DECIMAL, D.FLOAT, D.DOUBLE)
_FAMILY = {
    D.TINYINT: D.SMALLINT,
    D.SMALLINT: D.SMALLINT,
    D.INT: D.INT,
    D.MEDIUMINT: D.INT,
    D.BIGINT: D.BIGINT,
    D.DECIMAL: D.DECIMAL,
    D.BIGDECIMAL: D.DECIMAL,
    D.MONEY: D.DECIMAL,
    D.FLOAT: D.FLOAT,
    D.DOUBLE: D.DOUBLE,
    D.TEXT: D.TEXT,
    D.VARCHAR: D.TEXT,
    D.CHAR: D.TEXT,
    D.NVARCHAR: D.TEXT,
    D.NCHAR: D.TEXT,
    D.NAME: D.TEXT,
    D.BOOLEAN: D.BOOLEAN,
    D.DATE: D.DATE,
    D.TIMESTAMP: D.TIMESTAMP,
    D.DATETIME: D.TIMESTAMP,
    D.TIMESTAMPTZ: D.TIMESTAMPTZ,
    D.TIMESTAMPLTZ: D.TIMESTAMPTZ,
    D.INTERVAL: D.INTERVAL,
    D.JSON: D.JSON,
    D.JSONB: D.JSONB,
    D.UUID: D.UUID,
    D.TIME: D.TIME,
}
#: PostgreSQL spelling of each family
POSTGRES_NAMES = {
    D.SMALLINT: "smallint",
    D.INT: "integer",
    D.BIGINT: "bigint",
    D.DECIMAL: "numeric",
    D.FLOAT: "real",
    D.DOUBLE: "double precision",
    D.TEXT: "text",
    D.BOOLEAN: "boolean",
    D.DATE: "date",
    D.TIMESTAMP: "timestamp",
    D.TIMESTAMPTZ: "timestamptz",
    D.INTERVAL: "interval",
    D.JSON: "json",
    D.JSONB: "jsonb",
    D.UUID: "uuid",
    D.TIME: "time",
}
#: (left, right) -> result of + and - on dates and times
_TEMPORAL_ADD = {
    (D.DATE, D.INT): D.DATE,
    (D.DATE, D.SMALLINT): D.DATE,
    (D.INT, D.DATE): D.DATE,
    (D.DATE, D.INTERVAL): D.TIMESTAMP,
    (D.INTERVAL, D.DATE): D.TIMESTAMP,
    (D.DATE, D.TIME): D.TIMESTAMP,
    (D.TIMESTAMP, D.INTERVAL): D.TIMESTAMP,
    (D.INTERVAL, D.TIMESTAMP): D.TIMESTAMP,
    (D.TIMESTAMPTZ, D.INTERVAL): D.TIMESTAMPTZ,
    (D.INTERVAL, D.TIMESTAMPTZ): D.TIMESTAMPTZ,
    (D.INTERVAL, D.INTERVAL): D.INTERVAL,
}
_TEMPORAL_SUB = {
    (D.DATE, D.INT): D.DATE,
    (D.DATE, D.SMALLINT): D.DATE,
    (D.DATE, D.DATE): D.INT,
    (D.DATE, D.INTERVAL): D.TIMESTAMP,
    (D.TIMESTAMP, D.INTERVAL): D.TIMESTAMP,
    (D.TIMESTAMPTZ, D.INTERVAL): D.TIMESTAMPTZ,
    (D.TIMESTAMP, D.TIMESTAMP): D.INTERVAL,
    (D.TIMESTAMPTZ, D.TIMESTAMPTZ): D.INTERVAL,
    (D.TIMESTAMP, D.TIMESTAMPTZ): D.INTERVAL,
    (D.TIMESTAMPTZ, D.TIMESTAMP): D.INTERVAL,
    (D.DATE, D.TIMESTAMP): D.INTERVAL,
    (D.TIMESTAMP, D.DATE): D.INTERVAL,
    (D.DATE, D.TIMESTAMPTZ): D.INTERVAL,
    (D.TIMESTAMPTZ, D.DATE): D.INTERVAL,
    (D.INTERVAL, D.INTERVAL): D.INTERVAL,
}


def family(node: exp.Expr | None) -> Any:
    """The PostgreSQL type family (a DType) of an annotated node; UNKNOWN when not known."""
    if node is None or node.type is None:
        return D.UNKNOWN
    return _FAMILY.get(node.type.this, D.UNKNOWN)


def _is_untyped_literal(node: exp.Expr) -> bool:
    """A string literal or NULL: PostgreSQL's 'unknown' type, which takes the type of its context."""
    return isinstance(node, exp.Null) or (isinstance(node, exp.Literal) and node.is_string)


def _numeric_max(types: list[Any]) -> Any:
    return max(types, key=_NUMERIC.index)


def unify(nodes: list[exp.Expr]) -> Any:
    """PostgreSQL's UNION/CASE/COALESCE type resolution, by family."""
    typed = [family(n) for n in nodes if not _is_untyped_literal(n)]
    if not typed:
        return D.TEXT if any(isinstance(n, exp.Literal) for n in nodes) else D.UNKNOWN
    if D.UNKNOWN in typed:
        return D.UNKNOWN
    kinds = set(typed)
    if len(kinds) == 1:
        return typed[0]
    if kinds <= set(_NUMERIC):
        return _numeric_max(typed)
    if kinds <= {D.DATE, D.TIMESTAMP, D.TIMESTAMPTZ}:
        return D.TIMESTAMPTZ if D.TIMESTAMPTZ in kinds else D.TIMESTAMP
    return D.UNKNOWN


Annotator = Callable[[TypeAnnotator, Any], Any]


def _setter(compute: Callable[[Any], Any]) -> dict[str, Annotator]:
    def annotate(self: TypeAnnotator, node: Any) -> Any:
        return self._set_type(node, compute(node))

    return {"annotator": annotate}


def _literal(node: exp.Literal) -> Any:
    if node.is_string:
        return D.TEXT
    text = node.name
    if node.is_int:
        return D.INT if abs(int(text)) < 2**31 else D.BIGINT if abs(int(text)) < 2**63 else D.DECIMAL
    return D.DECIMAL  # a constant with a point or an exponent is numeric in PostgreSQL


def _sum(node: exp.Expr) -> Any:
    arg = family(node.this)
    return {D.SMALLINT: D.BIGINT, D.INT: D.BIGINT, D.BIGINT: D.DECIMAL}.get(
        arg, arg if arg in (D.DECIMAL, D.FLOAT, D.DOUBLE, D.INTERVAL) else D.UNKNOWN
    )


def _avg(node: exp.Expr) -> Any:
    arg = family(node.this)
    if arg in (D.SMALLINT, D.INT, D.BIGINT, D.DECIMAL):
        return D.DECIMAL
    return D.DOUBLE if arg in (D.FLOAT, D.DOUBLE) else D.INTERVAL if arg == D.INTERVAL else D.UNKNOWN


def _statistic(node: exp.Expr) -> Any:
    arg = family(node.this)
    if arg in (D.SMALLINT, D.INT, D.BIGINT, D.DECIMAL):
        return D.DECIMAL
    return D.DOUBLE if arg in (D.FLOAT, D.DOUBLE) else D.UNKNOWN


def _round(node: exp.Expr) -> Any:
    arg = family(node.this)
    if node.args.get("decimals") is not None:
        return D.DECIMAL if arg in _NUMERIC else D.UNKNOWN  # only round(numeric, int) exists
    if arg == D.DECIMAL:
        return D.DECIMAL
    return D.DOUBLE if arg in _NUMERIC else D.UNKNOWN


def _same_as_argument(node: exp.Expr) -> Any:
    return family(node.this)


def _arithmetic(node: exp.Binary) -> Any:
    left, right = node.left, node.right
    if _is_untyped_literal(left) and not _is_untyped_literal(right):
        return family(right)
    if _is_untyped_literal(right) and not _is_untyped_literal(left):
        return family(left)
    lt, rt = family(left), family(right)
    if lt in _NUMERIC and rt in _NUMERIC:
        return _numeric_max([lt, rt])
    if isinstance(node, exp.Add):
        return _TEMPORAL_ADD.get((lt, rt), D.UNKNOWN)
    if isinstance(node, exp.Sub):
        return _TEMPORAL_SUB.get((lt, rt), D.UNKNOWN)
    if isinstance(node, exp.Mul | exp.Div) and D.INTERVAL in (lt, rt) and ({lt, rt} - {D.INTERVAL}) <= set(_NUMERIC):
        return D.INTERVAL
    return D.UNKNOWN


def _case(node: exp.Case) -> Any:
    branches = [branch.args["true"] for branch in node.args.get("ifs") or []]
    default = node.args.get("default")
    return unify([*branches, default] if default is not None else branches)


def _if(node: exp.If) -> Any:
    false = node.args.get("false")
    return unify([node.args["true"], false] if false is not None else [node.args["true"]])


def _variadic(node: exp.Expr) -> Any:
    return unify([node.this, *node.expressions])


def _trunc(node: exp.Expr) -> Any:
    arg = family(node.this)
    if arg in (D.TIMESTAMPTZ, D.DATE):  # a date is promoted to timestamptz, the preferred datetime type
        return D.TIMESTAMPTZ
    return arg if arg in (D.TIMESTAMP, D.INTERVAL) else D.UNKNOWN


def _at_time_zone(node: exp.Expr) -> Any:
    arg = family(node.this)
    return D.TIMESTAMPTZ if arg == D.TIMESTAMP else D.TIMESTAMP if arg in (D.TIMESTAMPTZ, D.DATE) else D.UNKNOWN


def _json_extract(node: exp.Expr) -> Any:
    arg = family(node.this)
    return arg if arg in (D.JSON, D.JSONB) else D.UNKNOWN


def _window(node: exp.Expr) -> Any:
    return family(node.this)


def _metadata() -> dict[type[exp.Expr], dict[str, Any]]:
    base: dict[type[exp.Expr], dict[str, Any]] = dict(Dialect.get_or_raise(sqltools.DIALECT).EXPRESSION_METADATA)
    overrides: dict[type[exp.Expr], dict[str, Any]] = {
        exp.Literal: _setter(_literal),
        exp.Sum: _setter(_sum),
        exp.Avg: _setter(_avg),
        exp.Round: _setter(_round),
        exp.Abs: _setter(_same_as_argument),
        exp.Min: _setter(_same_as_argument),
        exp.Max: _setter(_same_as_argument),
        exp.Nullif: _setter(_same_as_argument),
        exp.Paren: _setter(_same_as_argument),
        exp.Neg: _setter(_same_as_argument),
        exp.Window: _setter(_window),
        exp.Case: _setter(_case),
        exp.If: _setter(_if),
        exp.Coalesce: _setter(_variadic),
        exp.Greatest: _setter(_variadic),
        exp.Least: _setter(_variadic),
        exp.TimestampTrunc: _setter(_trunc),
        exp.DateTrunc: _setter(_trunc),
        exp.AtTimeZone: _setter(_at_time_zone),
        exp.Extract: {"returns": D.DECIMAL},  # numeric since PostgreSQL 14
        exp.CurrentDate: {"returns": D.DATE},
        exp.CurrentTimestamp: {"returns": D.TIMESTAMPTZ},
        exp.DPipe: {"returns": D.TEXT},
        exp.Concat: {"returns": D.TEXT},
        exp.JSONExtractScalar: {"returns": D.TEXT},
        exp.JSONExtract: _setter(_json_extract),
        exp.Length: {"returns": D.INT},
        exp.Count: {"returns": D.BIGINT},
    }
    arithmetic: tuple[type[exp.Expr], ...] = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
    statistics: tuple[type[exp.Expr], ...] = (exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop)
    overrides.update(dict.fromkeys(arithmetic, _setter(_arithmetic)))
    overrides.update(dict.fromkeys(statistics, _setter(_statistic)))
    return {**base, **overrides}


_METADATA = _metadata()


def query_types(tree: exp.Expr, schema: Schema) -> dict[str, str | None]:
    """Output column -> PostgreSQL type (family spelling) of a query over flat dataset names; None when unknown."""
    try:
        qualified = qualify(tree.copy(), schema=schema, dialect=sqltools.DIALECT, validate_qualify_columns=False)
        annotated = annotate_types(qualified, schema=schema, expression_metadata=_METADATA, dialect=sqltools.DIALECT)
    except SqlglotError:
        return {}
    query: exp.Expr = annotated
    while isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.SetOperation):
        branches = _branches(query)
        names = branches[0].named_selects
        return {
            name: POSTGRES_NAMES.get(unify([b.selects[i] for b in branches if i < len(b.selects)]))
            for i, name in enumerate(names)
        }
    if not isinstance(query, exp.Select):
        return {}
    return {select.alias_or_name: POSTGRES_NAMES.get(family(select)) for select in query.selects}


def _branches(node: exp.Expr) -> list[exp.Select]:
    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, exp.SetOperation):
        return _branches(node.left) + _branches(node.right)
    return [node] if isinstance(node, exp.Select) else []


def same_family(declared: str, inferred: str | None) -> bool:
    """Whether a declared PostgreSQL type and an inferred family are the same type for dbt's contract check."""
    if inferred is None:
        return False
    base = declared.split("(", 1)[0].strip()
    return base == inferred


@dataclass(frozen=True)
class ModelTypes:
    """The column types of one model: what the contract declares and what needs a cast to get there."""

    #: the model's query (spec dataset names) whose types were inferred
    query: exp.Query
    #: column -> PostgreSQL type (the declared one where the spec gives it); None when unknown
    columns: dict[str, str | None]
    #: columns whose declared type differs from (or cannot be checked against) the query's: column -> declared type
    casts: dict[str, str] = field(default_factory=dict)

    @property
    def unknown(self) -> list[str]:
        return [name for name, kind in self.columns.items() if kind is None]


def infer_model_types(plan: Plan) -> dict[str, ModelTypes]:
    """Types of every model, in dependency order so each model sees the final types of what it reads."""
    schema = flat_schema(plan)
    result: dict[str, ModelTypes] = {}
    for model in plan.models:
        types = _model_types(model, reads(schema, model), plan.platform.timezone)
        schema[model.name] = {name: kind or "unknown" for name, kind in types.columns.items()}
        result[model.name] = types
    return result


def _model_types(model: ModelPlan, schema: Schema, time_zone: str) -> ModelTypes:
    query = model_query(model, schema, time_zone)
    inferred = query_types(sqltools.with_flat_tables(query), schema)
    columns: dict[str, str | None] = {}
    casts: dict[str, str] = {}
    for column in model.columns:
        guess = inferred.get(column.name)
        declared = column.postgres_type
        if declared is None:
            columns[column.name] = guess
            continue
        columns[column.name] = declared
        if not same_family(declared, guess):
            casts[column.name] = declared
    return ModelTypes(query, columns, casts)
