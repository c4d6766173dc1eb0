"""SQL checks of spec models with sqlglot: syntax, referenced datasets and columns, output columns."""

from __future__ import annotations

import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
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


#: clauses named in syntax errors ("incomplete WHERE clause"); any other node is an expression
_CLAUSES = {"Where": "WHERE clause", "Group": "GROUP BY", "Order": "ORDER BY", "Having": "HAVING clause"}


def _syntax_message(description: str, highlight: str) -> str:
    """sqlglot's parser message in the words of a SQL author."""
    description = description.split("\n")[0].split(". Line")[0]
    near = f" near '{highlight}'" if highlight else ""
    if description.startswith("Required keyword:") and "<class '" in description:
        node = description.split("<class '")[1].rstrip("'>").rsplit(".", 1)[-1]
        return f"incomplete {_CLAUSES.get(node, 'expression')}{near}"
    if description.startswith("Invalid expression / Unexpected token"):
        return f"unexpected '{highlight}'" if highlight else "unexpected token"
    if description.startswith("Expecting "):
        return f"expected {description[len('Expecting ') :]}{near}"
    if "<Token" in description:
        description = description.split(" but got")[0]
    return description + near


def _open_quote(sql: str) -> int | None:
    """The offset of a quote that is never closed, if any."""
    opened: int | None = None
    for index, char in enumerate(sql):
        if char in "'\"" and (opened is None or sql[opened] == char):
            opened = index if opened is None else None
    return opened


def _second_statement(sql: str) -> int:
    """The offset where the second statement of `sql` starts (after the first ';')."""
    try:
        tokens = sqlglot.tokenize(sql, read=DIALECT)
    except SqlglotError:
        return 0
    for index, token in enumerate(tokens):
        if token.token_type.name == "SEMICOLON" and index + 1 < len(tokens):
            return int(tokens[index + 1].start)
    return 0


#: deeper nesting of parentheses is refused before parsing (sqlglot's parser would exhaust the stack)
MAX_NESTING = 100


def _too_deep(sql: str) -> int | None:
    """The offset of the first '(' nested deeper than MAX_NESTING, if any (quotes are skipped)."""
    depth = 0
    quote: str | None = None
    for index, char in enumerate(sql):
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
            if depth > MAX_NESTING:
                return index
        elif char == ")":
            depth -= 1
    return None


def parse(sql: str) -> tuple[exp.Expression | None, SqlProblem | None]:
    """Parse one PostgreSQL statement; a syntax error comes back with its offset."""
    deep = _too_deep(sql)
    if deep is not None:
        return None, SqlProblem(deep, f"SQL nested more than {MAX_NESTING} parentheses deep: simplify it")
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        line, col = int(err.get("line") or 1), int(err.get("col") or 1)
        highlight = str(err.get("highlight") or "")
        col = max(1, col - len(highlight) + 1)
        lines = sql.split("\n")
        offset = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
        description = str(err.get("description") or "syntax error")
        return None, SqlProblem(offset, f"SQL syntax error: {_syntax_message(description, highlight)}")
    except TokenError:
        quote = _open_quote(sql)
        if quote is not None:
            return None, SqlProblem(quote, f"SQL syntax error: the quote {sql[quote]} is never closed")
        return None, SqlProblem(0, "SQL syntax error: cannot read the SQL text")
    except SqlglotError as exc:
        return None, SqlProblem(0, f"SQL syntax error: {exc}")
    except RecursionError:
        return None, SqlProblem(0, "SQL too deeply nested to analyse: simplify it")
    parsed: list[exp.Expression] = [s for s in statements if isinstance(s, exp.Expression)]
    if len(parsed) > 1:
        return None, SqlProblem(
            _second_statement(sql), "a second SQL statement: write exactly one SELECT (remove the ';' and what follows)"
        )
    if not parsed:
        return None, SqlProblem(0, "no SQL statement: write one SELECT")
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
    datasets: Collection[str] = (),
) -> SqlAnalysis:
    """Parse a model's SELECT and check its datasets and columns against `columns_of`.

    `columns_of(name)` returns the columns of a dataset, or None when no such dataset exists;
    `datasets` are the names suggested for a misspelt one.
    """
    result = SqlAnalysis()
    tree, problem = parse(sql)
    if problem is not None:
        result.problems.append(problem)
        return result
    assert tree is not None
    result.tree = tree
    if not isinstance(tree, exp.Query):
        start = len(sql) - len(sql.lstrip())
        keyword = sql[start:].split(None, 1)[0].upper() if sql.strip() else "empty"
        result.problems.append(SqlProblem(start, f"a model must be a SELECT query, not {keyword}"))
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
        parts = [table.args.get(part) for part in ("catalog", "db", "this")]
        starts = [int(p.meta["start"]) for p in parts if isinstance(p, exp.Expression) and "start" in p.meta]
        start = min(starts, default=offset_of(table))
        if table.catalog or (table.db and "." in key.split(".", 1)[1]):
            result.problems.append(SqlProblem(start, f"'{table.sql()}': name a model or source.table"))
            continue
        if columns_of(key) is None:
            result.problems.append(SqlProblem(start, f"unknown dataset '{key}'{did_you_mean(key, datasets)}"))
            continue
        result.references.setdefault(key, start)
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
        if name in known or not available or (name in projections and _names_output(column, scope)):
            continue
        if name in _outer_columns(scope, columns_of):
            continue
        result.problems.append(SqlProblem(offset_of(column), f"unknown column '{name}'{did_you_mean(name, known)}"))


def _names_output(column: exp.Column, scope: Scope) -> bool:
    """Whether `column` is in the GROUP BY or ORDER BY of its SELECT, where it may name an output column."""
    clause = column.find_ancestor(exp.Group, exp.Order, exp.Select)
    return isinstance(clause, exp.Group | exp.Order) and clause.parent is scope.expression


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
                    f"output column '{projection.sql(dialect=DIALECT, normalize_functions='lower')}' needs a name: "
                    "add 'as <name>'",
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


# --------------------------------------------------------------------------- model queries (for targets)


def _bare(node: exp.Expr) -> exp.Expr:
    """An expression without a stray alias (`sum(x) as y` written as a measure)."""
    return node.this if isinstance(node, exp.Alias) else node


def aggregate_select(
    source: str,
    *,
    time: tuple[str, str, str] | None,
    dimensions: list[tuple[str, str]],
    measures: Mapping[str, str],
    condition: str | None,
    zone: str | None = None,
) -> exp.Select:
    """The SELECT of a declarative aggregate over `source` (source.table or a model name).

    `time` is (column, grain, output name): `cast(date_trunc(grain, column) as date)` for a day or
    coarser grain, `date_trunc('hour', column)` for hours. With a `zone` (for a timestamptz column)
    the column is truncated in that time zone, whatever the session's: `column at time zone 'UTC'`,
    and an hour is turned back into a timestamptz. Dimensions are (name, expression); the query
    groups by the ordinal positions of the time and dimension columns.
    """
    projections: list[exp.Expr] = []
    if time is not None:
        column, grain, name = time
        local = quote_ident(column) + ("" if zone is None else f" at time zone '{zone}'")
        truncated = f"date_trunc('{grain}', {local})"
        if grain != "hour":
            text = f"cast({truncated} as date)"
        else:
            text = truncated if zone is None else f"{truncated} at time zone '{zone}'"
        node, _ = parse_expression(text)
        assert node is not None
        projections.append(exp.alias_(node, name, quoted=True))
    for name, text in dimensions:
        node, problem = parse_expression(text)
        if node is None:
            raise ValueError(f"dimension {name!r}: {problem.message if problem else 'cannot parse'}")
        projections.append(exp.alias_(_bare(node), name, quoted=True))
    keys = len(projections)
    for name, text in measures.items():
        node, problem = parse_expression(text)
        if node is None:
            raise ValueError(f"measure {name!r}: {problem.message if problem else 'cannot parse'}")
        projections.append(exp.alias_(_bare(node), name, quoted=True))
    select = exp.select(*projections).from_(exp.to_table(source))
    if condition is not None:
        node, problem = parse_expression(condition)
        if node is None:
            raise ValueError(f"filter: {problem.message if problem else 'cannot parse'}")
        select = select.where(_bare(node))
    if keys:
        select = select.group_by(*(exp.Literal.number(i) for i in range(1, keys + 1)))
    return select


def flat_name(dataset: str) -> str:
    """A dataset as one identifier: source.table -> source__table (names never contain '__'); models as they are."""
    return dataset.replace(".", "__")


def with_flat_tables(tree: exp.Expr) -> exp.Expr:
    """A copy of `tree` whose dataset references are single identifiers (see `flat_name`), aliases kept.

    sqlglot schemas need every table at the same depth; silver tables are source.table and models
    bare names, so analysis (types, lineage) runs on this flattened copy.
    """
    tree = tree.copy()
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not table.db and table.name in cte_names:
            continue
        alias = table.alias or table.name
        replacement = exp.to_table(flat_name(table_key(table)))
        replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        table.replace(replacement)
    return tree
