"""Property tests: mutated specs and random bytes never crash `platformgen validate`; errors are always located.

Valid specs (the minimal example, the merged specs/ directory and a few inline documents) are mutated at
random: keys deleted, values replaced by other types, references renamed, junk keys and junk subtrees
inserted, list items duplicated or swapped, strings truncated, SQL garbage injected. Each mutated document
is written as one YAML file and checked with the real CLI. Whatever the input, `validate` must exit 0 or 1,
raise nothing but SystemExit, and on exit 1 print only `<file>:<line>:<col>: <message>` lines.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import re
import tempfile
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString
from typer.testing import CliRunner, Result

from platformgen.cli import app
from platformgen.spec.loader import load_spec
from platformgen.spec.reference import json_schema

REPO = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
SPEC_NAME = "platform.yaml"
#: universal newlines: what a reader of the output in text mode sees as line breaks
NEWLINES = re.compile(r"\r\n|\r|\n")

Path_ = tuple[Any, ...]

# --------------------------------------------------------------------------- valid starting points

INLINE_MINIMAL: dict[str, Any] = {"platform": {"name": "tiny"}}

INLINE_RICH: dict[str, Any] = {
    "platform": {"name": "rich", "owner": "ops"},
    "orchestration": {
        "executor": "celery",
        "defaults": {"owner": "ops", "retries": 1, "retry_delay": "1m"},
        "users": [{"username": "admin", "role": "Admin", "email": "a@b.example", "password": "env:ADMIN_PW"}],
    },
    "warehouse": {"connection": {"conn_id": "warehouse"}},
    "alerting": {
        "email": {"to": ["oncall@b.example"]},
        "slack": {"channel": "#alerts", "webhook": "env:SLACK_HOOK"},
        "routes": [{"severity": "error", "notify": ["email", "slack"]}, {"severity": "warn", "notify": ["ops"]}],
    },
    "governance": {
        "teams": {"ops": {"email": "ops@b.example"}},
        "tags": {"core": "Core data."},
        "glossary": {"Revenue": {"description": "Money in.", "datasets": ["daily_totals"]}},
        "roles": {"analyst": {"superset": "Analyst", "schemas": ["marts"], "sql_lab": True}},
    },
    "sources": [
        {
            "name": "crm",
            "kind": "postgres",
            "schedule": "15 */2 * * mon-fri",
            "tags": ["core"],
            "connection": {"host": "env:CRM_HOST", "port": 5432, "database": "crm"},
            "tables": [
                {
                    "name": "accounts",
                    "primary_key": ["account_id"],
                    "incremental": {"cursor": "updated_at", "lag": "1h"},
                    "columns": {
                        "account_id": "bigint",
                        "name": {"type": "string", "nullable": False},
                        "tier": {"type": "string", "accepted_values": ["free", "pro"]},
                        "email": {"type": "string", "classification": "pii", "regex": "^[^@]+@[^@]+$"},
                        "balance": {"type": "decimal(12,2)", "range": {"min": 0, "max": 1000000}},
                        "updated_at": "timestamptz",
                    },
                    "silver": {
                        "rename": {"name": "account_name"},
                        "cast": {"balance": "float"},
                        "case": {"tier": "lower"},
                        "trim": ["name"],
                        "filter": "balance >= 0 and tier is not null",
                        "dedup": {"by": "updated_at", "keep": "latest"},
                        "materialized": "incremental",
                    },
                    "expectations": [{"column": "tier", "not_null": True, "severity": "warn"}],
                    "sla": {"warn_after": "2h", "error_after": "6h", "notify": ["ops", "email"]},
                },
                {
                    "name": "invoices",
                    "primary_key": ["invoice_id", "line"],
                    "columns": {
                        "invoice_id": "bigint",
                        "line": "integer",
                        "account_id": "bigint",
                        "amount": "decimal(12,2)",
                        "paid": "boolean",
                        "issued_on": "date",
                    },
                    "expectations": [
                        {"column": "account_id", "relationships": {"to": "crm.accounts"}},
                        {"columns": ["invoice_id", "line"], "unique": True},
                        {"row_count": {"min": 1}},
                    ],
                },
            ],
        },
        {
            "name": "billing_api",
            "kind": "api",
            "base_url": "https://api.example.com/v2",
            "auth": {"type": "api_key", "header": "X-Key", "key": "env:BILLING_KEY"},
            "rate_limit": {"requests": 10, "per": "1s"},
            "endpoints": [
                {
                    "name": "payments",
                    "path": "/payments",
                    "records": "data.items",
                    "pagination": {"type": "offset", "limit": 50},
                    "incremental": {"param": "since", "cursor": "paid_at", "initial": "2024-01-01"},
                    "primary_key": ["payment_id"],
                    "columns": {"payment_id": "string", "invoice_id": "bigint", "paid_at": "timestamp"},
                }
            ],
        },
    ],
    "models": [
        {
            "name": "int_invoices",
            "layer": "intermediate",
            "sql": (
                "select i.invoice_id, i.account_id, a.account_name, sum(i.amount) as total\n"
                "from crm.invoices i\n"
                "join crm.accounts a on a.account_id = i.account_id\n"
                "group by i.invoice_id, i.account_id, a.account_name\n"
            ),
            "columns": {"total": {"type": "decimal(14,2)", "range": {"min": 0}}},
        },
        {
            "name": "daily_totals",
            "owner": "ops",
            "materialized": "incremental",
            "unique_key": ["day"],
            "aggregate": {
                "from": "billing_api.payments",
                "time": {"column": "paid_at", "grain": "day"},
                "measures": {"payments": "count(*)", "invoices": "count(distinct invoice_id)"},
                "filter": "payment_id is not null",
            },
            "expectations": [{"column": "day", "unique": True}],
            "sla": {"ready_by": "07:30 UTC", "notify": ["slack"]},
        },
        {
            "name": "account_totals",
            "aggregate": {
                "from": "int_invoices",
                "dimensions": ["account_name", {"name": "big", "expr": "total > 1000"}],
                "measures": {"revenue": "sum(total)"},
            },
        },
    ],
    "expectations": [{"dataset": "account_totals", "sql": "revenue >= 0", "severity": "warn"}],
    "slas": [{"dataset": "crm.invoices", "warn_after": "1d"}],
    "dashboards": [
        {
            "name": "billing",
            "charts": [
                {"title": "Payments", "type": "line", "model": "daily_totals", "x": "day", "metric": "sum(payments)"},
                {"title": "Split", "type": "pie", "model": "account_totals", "dimension": "big", "metric": "count(*)"},
                {"title": "Top", "type": "table", "model": "account_totals", "columns": ["account_name", "revenue"]},
                {"title": "Total", "type": "big_number", "model": "account_totals", "metric": "sum(revenue)"},
            ],
        }
    ],
}


def _without_samples(data: Any) -> Any:
    """Drop `sample:` folders: the mutated file lives in a temporary directory without them."""
    for source in data.get("sources", []) if isinstance(data, dict) else []:
        if isinstance(source, dict):
            source.pop("sample", None)
    return data


@functools.cache
def base_documents() -> dict[str, dict[str, Any]]:
    """The valid documents mutations start from, by name."""
    return {
        "minimal_csv": _without_samples(load_spec(REPO / "examples" / "minimal_csv" / SPEC_NAME).data),
        "specs": _without_samples(load_spec(REPO / "specs").data),
        "inline_minimal": copy.deepcopy(INLINE_MINIMAL),
        "inline_rich": copy.deepcopy(INLINE_RICH),
    }


BASE_NAMES = ("minimal_csv", "specs", "inline_minimal", "inline_rich")


@functools.cache
def known_keys() -> tuple[str, ...]:
    """Every key of the spec language (from its JSON Schema), so junk keys are sometimes almost right."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                found.update(str(k) for k in properties)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(json_schema())
    return tuple(sorted(found))


# --------------------------------------------------------------------------- junk

SPECIAL_STRINGS = (
    "",
    " ",
    "\t",
    "\n",
    "~",
    "null",
    "true",
    "yes",
    "no",
    "on",
    "0",
    "-1",
    "1e400",
    "0x1F",
    "1_000",
    ".nan",
    ".inf",
    "<<",
    "=",
    "?",
    "- x",
    "&anchor",
    "*alias",
    "!!python/object:os.system",
    "%TAG",
    "---",
    "...",
    "#comment",
    "env:",
    "env:lower",
    "env:OK_VAR",
    "@daily",
    "@never",
    "* * * * *",
    "60 25 32 13 8",
    "1/x * * * *",
    "decimal(12,2)",
    "decimal(0,5)",
    "decimal(12",
    "numeric",
    "5m",
    "1h30m",
    "-5m",
    "07:00 UTC",
    "25:00",
    "a@b",
    "x@y.z",
    "s3://bucket/prefix",
    "ftp://u:p@host/x",
    "https://hooks.slack.com/services/T0/B0/x",
    "AKIAABCDEFGHIJKLMNOP",
    "../../etc",
    "/abs/path",
    "a" * 300,
    "é",
    "İ",
    "ß",
    "²",
    "٣",
    "\u2028",
    "\u0085",
    "\ufeff",
    "\x00",
    "\x1b[31mred",
    "%0A",
    "{{ x }}",
    "${X}",
    "'",
    '"',
    "\\",
    "(",
    "[a-",
    "a{4294967296}",
    "(?P<",
)

HUGE_INTS = st.sampled_from([2**31, 2**63, 2**64 + 1, -(2**63) - 1, 10**30, -(10**100), 10**300])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(SPECIAL_STRINGS),
)
KEYS = st.one_of(
    st.sampled_from(known_keys()),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_STRINGS),
    st.integers(min_value=-5, max_value=5),
    st.booleans(),
    st.none(),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(KEYS, inner, max_size=4),
    ),
    max_leaves=12,
)

SQL_GARBAGE = (
    "(",
    ")",
    "(((",
    ")))",
    "'",
    '"',
    "--",
    "/*",
    "*/",
    ";",
    "; drop table x",
    " union select 1",
    " union all select *",
    ",",
    ",,",
    "select",
    "select *",
    " from ",
    " where ",
    " join ",
    " natural join ",
    " cross join lateral ",
    " using (x)",
    "*",
    ".",
    "..",
    "a.b.c.d",
    "$$",
    "$1",
    "::",
    "::int",
    "\\",
    "\n",
    " as ",
    " as select",
    " group by ",
    " group by 1",
    " order by 1",
    " having count(*) > 1",
    " over ()",
    " over (partition by)",
    "with x as (select 1) ",
    "with recursive r as (select 1 union select * from r) ",
    "{{ ref('x') }}",
    "%",
    "@@",
    "#",
    "`",
    "[",
    "]",
    "null",
    " is ",
    " and ",
    " or not ",
    "(select",
    "(select 1)",
    "exists (select * from nowhere)",
    "values (1), (2)",
    "count(*)",
    "sum(",
    "sum(sum(x))",
    "case when",
    " end",
    "e'\\x'",
    "x'ff'",
    "1e999",
    "interval '1 day'",
    "array[1,2][1]",
    "row(1, 2)",
    "filter (where true)",
    "within group (order by 1)",
    "t.*",
    "*.*",
    "insert into t values (1)",
    "update t set a = 1",
    "delete from t",
    "create table t (a int)",
    "copy t from program 'sh'",
    "\x00",
    "é",
    "\u2028",
)

SQL_KEYS = frozenset({"sql", "filter", "metric", "expr", "filters", "measures", "dimensions"})

# --------------------------------------------------------------------------- mutations


def nodes(node: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every (path, value) of a document, depth first."""
    found: list[tuple[Path_, Any]] = [(path, node)]
    if isinstance(node, dict):
        for key, value in list(node.items()):
            found.extend(nodes(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(nodes(value, (*path, index)))
    return found


def get(root: Any, path: Path_) -> Any:
    """The value at `path`."""
    for part in path:
        root = root[part]
    return root


def put(root: Any, path: Path_, value: Any) -> None:
    """Replace the value at `path` (never the root)."""
    get(root, path[:-1])[path[-1]] = value


def rename_key(mapping: dict[Any, Any], old: Any, new: Any) -> dict[Any, Any]:
    """A copy of `mapping` with one key renamed in place (keeping the order; a clash overwrites)."""
    out: dict[Any, Any] = {}
    for key, value in mapping.items():
        out[new if key == old else key] = value
    return out


def typo(draw: st.DrawFn, word: str) -> str:
    """A near-miss of `word`: one character dropped, doubled or changed, a case or separator change."""
    if not word:
        return draw(st.sampled_from(["x", " ", "_"]))
    i = draw(st.integers(0, len(word) - 1))
    how = draw(st.sampled_from(["drop", "double", "change", "upper", "dash", "suffix", "prefix", "dot"]))
    if how == "drop":
        return word[:i] + word[i + 1 :]
    if how == "double":
        return word[:i] + word[i] + word[i:]
    if how == "change":
        return word[:i] + draw(st.sampled_from("aez_9.- É")) + word[i + 1 :]
    if how == "upper":
        return word.upper()
    if how == "dash":
        return word.replace("_", "-") if "_" in word else word + "-"
    if how == "suffix":
        return word + draw(st.sampled_from(["_x", "2", "s", "__x", " "]))
    if how == "prefix":
        return draw(st.sampled_from(["_", "x_", "9", "public."])) + word
    return word.replace(".", "__") if "." in word else word + ".x"


def _identifiers(holder: list[Any]) -> list[str]:
    """Names that other parts of a spec may refer to: keys and name-like values (source.table included)."""
    names: set[str] = set()
    pattern = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
    for path, value in nodes(holder):
        if path and isinstance(path[-1], str) and pattern.match(path[-1]):
            names.add(path[-1])
        if isinstance(value, str) and pattern.match(value):
            names.add(value)
    return sorted(names)


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")


def _rename_everywhere(node: Any, pattern: re.Pattern[str], new: str) -> Any:
    if isinstance(node, dict):
        return {
            (pattern.sub(new, k) if isinstance(k, str) else k): _rename_everywhere(v, pattern, new)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rename_everywhere(v, pattern, new) for v in node]
    if isinstance(node, str):
        return pattern.sub(lambda _: new, node)
    return node


def mutate_delete(draw: st.DrawFn, holder: list[Any]) -> None:
    """Delete a key or a list item."""
    paths = [p for p, _ in nodes(holder) if len(p) >= 2]
    if paths:
        path = draw(st.sampled_from(paths))
        del get(holder, path[:-1])[path[-1]]


def mutate_retype(draw: st.DrawFn, holder: list[Any]) -> None:
    """Replace a value by a value of another type (scalar or small container)."""
    paths = [p for p, _ in nodes(holder) if len(p) >= 1]
    path = draw(st.sampled_from(paths))
    put(holder, path, draw(st.one_of(SCALARS, st.just([]), st.just({}), st.lists(SCALARS, max_size=2))))


def mutate_rename_reference(draw: st.DrawFn, holder: list[Any]) -> None:
    """Rename a name (dataset, model, column, key) everywhere it appears, or at one place only."""
    names = _identifiers(holder)
    if not names:
        return
    old = draw(st.sampled_from(names))
    new = typo(draw, old) if draw(st.booleans()) else draw(st.sampled_from(names))
    pattern = _word(old)
    if draw(st.booleans()):
        holder[0] = _rename_everywhere(holder[0], pattern, new)
        return
    spots: list[Path_] = []
    for path, value in nodes(holder):
        if (path and isinstance(path[-1], str) and path[-1] == old) or (
            isinstance(value, str) and pattern.search(value)
        ):
            spots.append(path)
    if not spots:
        return
    path = draw(st.sampled_from(spots))
    parent = get(holder, path[:-1])
    if isinstance(parent, dict) and path[-1] == old:
        if len(path) > 1:
            put(holder, path[:-1], rename_key(parent, old, new))
        return
    value = get(holder, path)
    if isinstance(value, str):
        put(holder, path, pattern.sub(lambda _: new, value, count=1))


def mutate_junk_key(draw: st.DrawFn, holder: list[Any]) -> None:
    """Insert a key (known to the language, junk, or not a string at all) with a junk value into a mapping."""
    dicts = [p for p, v in nodes(holder) if isinstance(v, dict) and len(p) >= 1]
    if dicts:
        mapping = get(holder, draw(st.sampled_from(dicts)))
        mapping[draw(KEYS)] = draw(JUNK)


def mutate_rename_key(draw: st.DrawFn, holder: list[Any]) -> None:
    """Rename a key to a near-miss or to another key of the language (e.g. sql -> aggregate)."""
    keyed = [p for p, _ in nodes(holder) if len(p) >= 2 and isinstance(get(holder, p[:-1]), dict)]
    if not keyed:
        return
    path = draw(st.sampled_from(keyed))
    old = path[-1]
    new = draw(st.one_of(st.sampled_from(known_keys()), KEYS)) if draw(st.booleans()) else typo(draw, str(old))
    put(holder, path[:-1], rename_key(get(holder, path[:-1]), old, new))


def mutate_deep_junk(draw: st.DrawFn, holder: list[Any]) -> None:
    """Replace a node by a junk subtree, or bury it some levels deep inside junk."""
    paths = [p for p, _ in nodes(holder) if len(p) >= 1]
    path = draw(st.sampled_from(paths))
    if draw(st.booleans()):
        put(holder, path, draw(JUNK))
        return
    value = get(holder, path)
    for _ in range(draw(st.integers(1, 4))):
        value = {draw(KEYS): value} if draw(st.booleans()) else [value]
    put(holder, path, value)


def mutate_duplicate_item(draw: st.DrawFn, holder: list[Any]) -> None:
    """Duplicate a list item (a copy, or the same object, which the dumper writes as an anchor and alias)."""
    lists = [p for p, v in nodes(holder) if isinstance(v, list) and v and len(p) >= 1]
    if lists:
        items = get(holder, draw(st.sampled_from(lists)))
        item = items[draw(st.integers(0, len(items) - 1))]
        items.insert(draw(st.integers(0, len(items))), copy.deepcopy(item) if draw(st.booleans()) else item)


def mutate_swap_items(draw: st.DrawFn, holder: list[Any]) -> None:
    """Swap two list items (order matters for merges, topological order and first-definition-wins)."""
    lists = [p for p, v in nodes(holder) if isinstance(v, list) and len(v) >= 2]
    if lists:
        items = get(holder, draw(st.sampled_from(lists)))
        i, j = draw(st.integers(0, len(items) - 1)), draw(st.integers(0, len(items) - 1))
        items[i], items[j] = items[j], items[i]


def mutate_truncate(draw: st.DrawFn, holder: list[Any]) -> None:
    """Cut a string short (SQL in the middle of a token, a type inside its parentheses, ...)."""
    strings = [p for p, v in nodes(holder) if isinstance(v, str) and v and len(p) >= 1]
    if strings:
        path = draw(st.sampled_from(strings))
        value = get(holder, path)
        put(holder, path, value[: draw(st.integers(0, len(value) - 1))])


def mutate_sql_garbage(draw: st.DrawFn, holder: list[Any]) -> None:
    """Insert SQL fragments into a SQL-bearing string (or any string), sometimes deeply nested parentheses."""
    strings = [p for p, v in nodes(holder) if isinstance(v, str) and len(p) >= 1]
    if not strings:
        return
    sqlish = [p for p in strings if any(isinstance(part, str) and part in SQL_KEYS for part in p)]
    use_sqlish = bool(sqlish) and draw(st.integers(0, 3)) > 0  # mostly SQL-bearing values, sometimes any string
    path = draw(st.sampled_from(sqlish if use_sqlish else strings))
    value = get(holder, path)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(value)))
        if draw(st.integers(0, 9)) == 0:
            depth = draw(st.integers(1, 3000))
            garbage = "(" * depth + "1" + ")" * draw(st.integers(0, depth))
        else:
            garbage = draw(st.sampled_from(SQL_GARBAGE))
        value = value[:at] + garbage + value[at:]
    put(holder, path, value)


def mutate_move_subtree(draw: st.DrawFn, holder: list[Any]) -> None:
    """Copy one subtree over another (a source into models, a column into a chart, ...)."""
    paths = [p for p, _ in nodes(holder) if len(p) >= 2]
    if len(paths) >= 2:
        source = draw(st.sampled_from(paths))
        target = draw(st.sampled_from(paths))
        if target[: len(source)] != source:
            put(holder, target, copy.deepcopy(get(holder, source)))


MUTATIONS = (
    mutate_delete,
    mutate_retype,
    mutate_rename_reference,
    mutate_junk_key,
    mutate_rename_key,
    mutate_deep_junk,
    mutate_duplicate_item,
    mutate_swap_items,
    mutate_truncate,
    mutate_sql_garbage,
    mutate_move_subtree,
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """A valid base document after one to six random mutations."""
    name = draw(st.sampled_from(BASE_NAMES))
    holder: list[Any] = [copy.deepcopy(base_documents()[name])]
    for _ in range(draw(st.integers(1, 6))):
        draw(st.sampled_from(MUTATIONS))(draw, holder)
    return holder[0]


def _literal_blocks(node: Any) -> Any:
    """Multi-line strings as `|` block scalars, as people write SQL (ruamel falls back when it cannot)."""
    if isinstance(node, dict):
        return {k: _literal_blocks(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_literal_blocks(v) for v in node]
    if isinstance(node, str) and "\n" in node:
        return LiteralScalarString(node)
    return node


def dump_yaml(doc: Any, style: str) -> str:
    """The document as YAML text: block style, flow style, or block style with literal SQL blocks."""
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = style == "flow"
    yaml.allow_unicode = True
    yaml.width = 120
    buffer = io.StringIO()
    yaml.dump(_literal_blocks(doc) if style == "literal" else doc, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- the property


def run_validate(content: str | bytes, *, absolute: bool) -> tuple[Result, str]:
    """Write `content` as the spec file of a fresh directory and run `platformgen validate` on it.

    With absolute=False the argument is the bare file name (cwd is the spec directory); with absolute=True
    it is the absolute path, run from a sibling directory. Either way messages must name it as given.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        spec = root / SPEC_NAME
        if isinstance(content, bytes):
            spec.write_bytes(content)
        else:
            spec.write_text(content, encoding="utf-8")
        cwd = root / "elsewhere" if absolute else root
        cwd.mkdir(exist_ok=True)
        arg = spec.as_posix() if absolute else SPEC_NAME
        with contextlib.chdir(cwd):
            result = RUNNER.invoke(app, ["validate", arg])
    return result, arg


def assert_well_behaved(result: Result, file: str, shown: str) -> None:
    """Exit 0 or 1, no exception but SystemExit, and on exit 1 only `file:line:col: message` lines."""
    context = f"--- input ---\n{shown}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"validate raised {type(result.exception).__name__}\n{trace}\n{context}")
    assert result.exit_code in (0, 1), f"exit code {result.exit_code}\n{context}"
    if result.exit_code == 1:
        lines = NEWLINES.split(result.stdout.removesuffix("\n"))
        assert lines != [""], f"exit 1 without a located error\n{context}"
        located = re.compile(rf"^{re.escape(file)}:\d+:\d+: .+")
        bad = [line for line in lines if not located.match(line)]
        assert not bad, f"output lines not of the form {file}:LINE:COL: message: {bad!r}\n{context}"


def check_content(content: str | bytes, *, absolute: bool) -> None:
    """Run validate on `content` and check the outcome."""
    result, arg = run_validate(content, absolute=absolute)
    shown = content if isinstance(content, str) else repr(content)
    assert_well_behaved(result, arg, shown[:4000])


@pytest.mark.slow
def test_base_documents_are_valid() -> None:
    """The unmutated starting points validate, so mutations explore beyond the first error."""
    for name in BASE_NAMES:
        result, _ = run_validate(dump_yaml(base_documents()[name], "literal"), absolute=False)
        assert result.exit_code == 0, f"{name}: {result.stdout}{result.stderr}"


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(doc=mutated_documents(), style=st.sampled_from(["block", "flow", "literal"]), absolute=st.booleans())
@example(
    # a model whose SQL names a column its input lacks, and a chart on a model that is not there
    doc={
        "platform": {"name": "p"},
        "sources": [
            {
                "name": "s",
                "kind": "file",
                "location": "in",
                "tables": [{"name": "t", "pattern": "*.csv", "columns": {"a": "int"}}],
            }
        ],
        "models": [{"name": "m", "sql": "select a,\n       b as c\nfrom s.t\n"}],
        "dashboards": [{"name": "d", "charts": [{"title": "x", "type": "table", "model": "n", "columns": ["a"]}]}],
    },
    style="literal",
    absolute=False,
)
@example(doc={"platform": {"name": 7, "bogus": None}, "sources": {"kind": "api"}, 3: [1]}, style="flow", absolute=True)
def test_mutated_spec_never_crashes_validate(doc: Any, style: str, absolute: bool) -> None:
    """Any mutation of a valid spec gives exit 0 or 1 and only located error lines."""
    check_content(dump_yaml(doc, style), absolute=absolute)


YAML_TOKENS = (
    "platform:",
    "  name: x",
    "sources:",
    "models:",
    "- ",
    "  ",
    "\n",
    "name: ",
    "kind: file",
    "kind: postgres",
    "kind: api",
    "tables:",
    "columns: {a: int}",
    "sql: |",
    "    select 1 as a",
    "sql: select * from s.t",
    "&a ",
    "*a",
    "<<: ",
    "<<: *a",
    "!!python/object:os.system ",
    "!custom ",
    "!!binary ",
    "? ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "---",
    "...",
    "%YAML 1.1",
    "%TAG ! tag:x,2024:",
    "|",
    ">-",
    '"',
    "'",
    "\t",
    "#",
    "~",
    "\\",
    "\ufeff",
    "\x00",
    "é",
    "123",
    "1e400",
    "0o17",
    "2024-01-01",
    "2024-01-01T00:00:00",
)


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    content=st.one_of(
        st.text(),
        st.binary(),
        st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join),
        st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map(lambda tokens: "\n".join(tokens).encode("utf-16")),
    ),
    absolute=st.booleans(),
)
@example(content=b"\xff\xfe\x00garbage", absolute=False)
@example(content="platform: &a\n  name: x\n  self: *a\n", absolute=True)
@example(content="a: &a [*a]\n", absolute=False)
@example(content="platform: {name: x}\nplatform: {name: y}\n", absolute=False)
@example(content="platform:\n\tname: x\n", absolute=False)
@example(content="[" * 5000, absolute=False)
def test_random_bytes_never_crash_validate(content: str | bytes, absolute: bool) -> None:
    """Arbitrary text or bytes as the spec file give exit 0 or 1 and no traceback."""
    check_content(content, absolute=absolute)


def _one_table(columns: dict[str, Any], **table: Any) -> dict[str, Any]:
    """A spec with one file source holding one table with these columns (and other table keys)."""
    return {
        "platform": {"name": "p"},
        "sources": [
            {
                "name": "s",
                "kind": "file",
                "location": "in",
                "tables": [{"name": "t", "pattern": "*.csv", "columns": columns, **table}],
            }
        ],
    }


#: Inputs the properties above once failed on (name -> spec file text), checked on every run.
REGRESSIONS = {
    # a value with a line break, echoed in a message, split one error over two output lines
    "newline_in_echoed_value": dump_yaml({"platform": {"name": "a\nb"}}, "block"),
    # re.compile raises OverflowError (not re.error) for a repeat count above 2**32 - 1
    "regex_repeat_overflow_in_column": dump_yaml(
        _one_table({"a": {"type": "string", "regex": "a{4294967296}"}}), "block"
    ),
    "regex_repeat_overflow_in_expectation": dump_yaml(
        _one_table({"a": "string"}, expectations=[{"column": "a", "regex": "a{4294967296}"}]), "block"
    ),
    # re.compile raises RecursionError on deeply nested groups
    "regex_deep_groups_in_column": dump_yaml(
        _one_table({"a": {"type": "string", "regex": "(" * 1000 + ")" * 1000}}), "block"
    ),
    "regex_deep_groups_in_expectation": dump_yaml(
        _one_table({"a": "string"}, expectations=[{"column": "a", "regex": "(" * 1000 + ")" * 1000}]), "block"
    ),
    # sqlglot's recursive-descent parser overflows the stack on deeply nested parentheses
    "deep_parentheses_in_model_sql": dump_yaml(
        {
            "platform": {"name": "p"},
            "models": [{"name": "m", "sql": "select " + "(" * 3000 + "1" + ")" * 3000 + " as a"}],
        },
        "block",
    ),
    "deep_parentheses_in_silver_filter": dump_yaml(
        _one_table({"a": "int"}, silver={"filter": "(" * 3000 + "a > 1" + ")" * 3000}), "block"
    ),
    # a YAML merge key (<<) gives keys without a recorded position
    "yaml_merge_key": "base: &b {name: x}\nplatform:\n  <<: *b\n",
    "yaml_merge_key_list": "a: &a {name: x}\nb: &b {owner: y}\nplatform:\n  <<: [*a, *b]\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regression(name: str) -> None:
    """Each input a property once failed on stays well behaved."""
    check_content(REGRESSIONS[name], absolute=False)
