"""SQL checks of spec models with sqlglot: syntax, referenced datasets and columns, output columns."""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from platformgen.spec.suggest import did_you_mean

DIALECT = "postgres"


@dataclass(frozen=True)
class SqlProblem:
    """A problem at a 0-based character offset of the SQL text."""

    offset: int
    message: str


@dataclass
class SqlAnalysis:
    """What a model's SQL reads and produces."""

    tree: exp.Expression | None = None
    #: referenced datasets (source.table or model name) with the offset of their first mention
    references: dict[str, int] = field(default_factory=dict)
    output_columns: list[str] = field(default_factory=list)
    problems: list[SqlProblem] = field(default_factory=list)


def offset_of(node: exp.Expression) -> int:
    """Best-known character offset of a node in the text it was parsed from."""
    for candidate in (node, node.this if isinstance(node.this, exp.Expression) else None):
        if candidate is not None and "start" in candidate.meta:
            return int(candidate.meta["start"])
    for child in node.walk():
        if isinstance(child, exp.Expression) and "start" in child.meta:
            return int(child.meta["start"])
    return 0


def parse(sql: str) -> tuple[exp.Expression | None, SqlProblem | None]:
    """Parse one PostgreSQL statement; a syntax error comes back with its offset."""
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        line, col = int(err.get("line") or 1), int(err.get("col") or 1)
        highlight = str(err.get("highlight") or "")
        col = max(1, col - len(highlight) + 1)
        lines = sql.split("\n")
        offset = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
        description = str(err.get("description") or "syntax error").split("\n")[0]
        description = description.split(". Line")[0]
        if "<Token" in description:
            description = description.split(" but got")[0]
        return None, SqlProblem(offset, f"SQL syntax error: {description}")
    except SqlglotError as exc:
        return None, SqlProblem(0, f"SQL syntax error: {exc}")
    parsed: list[exp.Expression] = [s for s in statements if isinstance(s, exp.Expression)]
    if len(parsed) != 1:
        return None, SqlProblem(0, "write exactly one SELECT statement")
    return parsed[0], None


def parse_expression(text: str) -> tuple[exp.Expression | None, SqlProblem | None]:
    """Parse a SQL expression (a filter, a measure) by wrapping it in a SELECT."""
    prefix = "select "
    tree, problem = parse(prefix + text)
    if problem is not None:
        return None, SqlProblem(max(0, problem.offset - len(prefix)), problem.message)
    if (
        not isinstance(tree, exp.Select)
        or len(tree.expressions) != 1
        or tree.args.get("from_")
        or tree.args.get("from")
    ):
        return None, SqlProblem(0, "expected a single SQL expression")
    _shift(tree, -len(prefix))
    return tree.expressions[0], None


def _shift(tree: exp.Expression, delta: int) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Expression) and "start" in node.meta:
            node.meta["start"] = int(node.meta["start"]) + delta
            node.meta["end"] = int(node.meta.get("end", node.meta["start"])) + delta


def table_key(table: exp.Table) -> str:
    """source.table for a qualified name, the bare name for a model."""
    return f"{table.db}.{table.name}" if table.db else table.name


def analyze_select(
    sql: str,
    columns_of: Callable[[str], list[str] | None],
) -> SqlAnalysis:
    """Parse a model's SELECT and check its datasets and columns against `columns_of`.

    `columns_of(name)` returns the columns of a dataset, or None when no such dataset exists.
    """
    result = SqlAnalysis()
    tree, problem = parse(sql)
    if problem is not None:
        result.problems.append(problem)
        return result
    assert tree is not None
    result.tree = tree
    if not isinstance(tree, exp.Query):
        result.problems.append(SqlProblem(offset_of(tree), "a model must be a SELECT query"))
        return result
    for kind in (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Command):
        bad = tree.find(kind)
        if bad is not None:
            result.problems.append(SqlProblem(offset_of(bad), "a model must be a SELECT query"))
            return result
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not table.db and table.name in cte_names:
            continue
        key = table_key(table)
        if table.catalog or (table.db and "." in key.split(".", 1)[1]):
            result.problems.append(SqlProblem(offset_of(table), f"'{table.sql()}': name a model or source.table"))
            continue
        if columns_of(key) is None:
            result.problems.append(SqlProblem(offset_of(table), f"unknown dataset '{key}'"))
            continue
        result.references.setdefault(key, offset_of(table))
    if result.problems:
        return result
    try:
        scopes = traverse_scope(tree)
    except SqlglotError as exc:
        result.problems.append(SqlProblem(0, f"cannot analyse the query: {exc}"))
        return result
    for scope in scopes:
        _check_scope(scope, columns_of, result)
    if not result.problems:
        result.output_columns = _output_columns(tree, columns_of, result)
    return result


def _scope_columns(scope: Scope, columns_of: Callable[[str], list[str] | None]) -> dict[str, list[str] | None]:
    """alias -> columns (None when not knowable, e.g. a subquery with *)."""
    out: dict[str, list[str] | None] = {}
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table):
            cols = columns_of(table_key(source))
            out[alias] = None if cols == ["*"] else cols  # ["*"]: a dataset whose columns are unknown
        elif isinstance(source, Scope):
            selects = source.expression.named_selects if isinstance(source.expression, exp.Query) else []
            out[alias] = None if "*" in selects or not selects else list(selects)
        else:
            out[alias] = None
    return out


def _check_scope(scope: Scope, columns_of: Callable[[str], list[str] | None], result: SqlAnalysis) -> None:
    available = _scope_columns(scope, columns_of)
    projections = set(scope.expression.named_selects) if isinstance(scope.expression, exp.Select) else set()
    for column in scope.columns:
        name = column.name
        qualifier = column.table
        if qualifier:
            if qualifier not in available:
                if qualifier in _outer_aliases(scope):
                    continue
                result.problems.append(
                    SqlProblem(
                        offset_of(column), f"unknown table alias '{qualifier}'{did_you_mean(qualifier, available)}"
                    )
                )
                continue
            cols = available[qualifier]
            if cols is not None and name not in cols:
                result.problems.append(
                    SqlProblem(offset_of(column), f"unknown column '{qualifier}.{name}'{did_you_mean(name, cols)}")
                )
            continue
        if any(cols is None for cols in available.values()):
            continue
        known = [c for cols in available.values() if cols for c in cols]
        if name in known or name in projections or not available:
            continue
        if name in _outer_columns(scope, columns_of):
            continue
        result.problems.append(SqlProblem(offset_of(column), f"unknown column '{name}'{did_you_mean(name, known)}"))


def _outer_aliases(scope: Scope) -> set[str]:
    names: set[str] = set()
    parent = scope.parent
    while parent is not None:
        names.update(parent.sources)
        parent = parent.parent
    return names


def _outer_columns(scope: Scope, columns_of: Callable[[str], list[str] | None]) -> set[str]:
    names: set[str] = set()
    parent = scope.parent
    while parent is not None:
        for cols in _scope_columns(parent, columns_of).values():
            names.update(cols or [])
        parent = parent.parent
    return names


def _output_columns(
    tree: exp.Expression, columns_of: Callable[[str], list[str] | None], result: SqlAnalysis
) -> list[str]:
    """The model's output columns, with * expanded; unnamed expressions are problems."""
    query: exp.Expression = tree
    while isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.SetOperation):
        query = typing.cast(exp.Expression, query.left)
        while isinstance(query, exp.Subquery):
            query = query.this
    if not isinstance(query, exp.Select):
        return []
    scopes = traverse_scope(tree)
    root = next((s for s in scopes if s.expression is query), None)
    available = _scope_columns(root, columns_of) if root is not None else {}
    out: list[str] = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            qualifier = projection.table if isinstance(projection, exp.Column) else ""
            for alias, cols in available.items():
                if qualifier and alias != qualifier:
                    continue
                if cols is None:
                    result.problems.append(
                        SqlProblem(offset_of(projection), "cannot expand '*' here: list the columns explicitly")
                    )
                    return []
                out.extend(c for c in cols if c not in out)
            continue
        name = projection.alias_or_name
        if not name or (not isinstance(projection, exp.Alias | exp.Column)):
            result.problems.append(
                SqlProblem(
                    offset_of(projection),
                    f"output column '{projection.sql(dialect=DIALECT)}' needs a name: add 'as <name>'",
                )
            )
            continue
        if name in out:
            result.problems.append(SqlProblem(offset_of(projection), f"duplicate output column '{name}'"))
            continue
        out.append(name)
    return out


def check_expression(
    text: str, columns: list[str], what: str, *, aggregate: bool | None = None
) -> tuple[exp.Expression | None, list[SqlProblem]]:
    """Parse an expression over one dataset's columns; report unknown columns.

    aggregate=True requires an aggregate function (a measure); False forbids one (a filter).
    """
    node, problem = parse_expression(text)
    if problem is not None:
        return None, [problem]
    assert node is not None
    problems: list[SqlProblem] = []
    for column in node.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        if column.name not in columns:
            problems.append(
                SqlProblem(
                    offset_of(column), f"unknown column '{column.name}' in {what}{did_you_mean(column.name, columns)}"
                )
            )
    has_agg = node.find(exp.AggFunc) is not None
    if aggregate is True and not has_agg:
        problems.append(SqlProblem(0, f"{what} must be an aggregate such as sum(x), count(*) or avg(x)"))
    if aggregate is False and has_agg:
        problems.append(SqlProblem(0, f"{what} must not contain an aggregate function"))
    return node, problems


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always quoted."""
    return '"' + name.replace('"', '""') + '"'


def rewrite_references(tree: exp.Expression, rename: Mapping[str, str]) -> str:
    """Render SQL with dataset references replaced by the given SQL snippets (e.g. dbt ref())."""
    tree = tree.copy()
    for table in list(tree.find_all(exp.Table)):
        key = table_key(table)
        if key in rename:
            alias = table.alias or table.name
            replacement = exp.to_table("__PLACEHOLDER__" + key.replace(".", "__DOT__"))
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            table.replace(replacement)
    text = tree.sql(dialect=DIALECT, pretty=True)
    for key, snippet in rename.items():
        text = text.replace("__PLACEHOLDER__" + key.replace(".", "__DOT__"), snippet)
    return text
