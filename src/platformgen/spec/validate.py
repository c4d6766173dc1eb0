"""Semantic validation: names, cross-references, cycles, SQL and secrets, every problem at its file:line:col."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformgen.errors import Diagnostic, Loc, SpecError
from platformgen.plan.graph import find_cycle
from platformgen.spec import sql as sqlcheck
from platformgen.spec.loader import Path_, SpecDocument, display_path, load_spec
from platformgen.spec.models import (
    ApiSource,
    ColumnSpec,
    DatasetBase,
    Expectation,
    FileSource,
    Model,
    PostgresSource,
    Sla,
    Spec,
)
from platformgen.spec.structure import check_structure
from platformgen.spec.suggest import did_you_mean
from platformgen.spec.types import column_type, regex_problem

SECRET_PATTERNS = (
    (re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.-]*)?://[^/\s:@]+:[^/\s@]+@"), "a URL with an embedded password"),
    (re.compile(r"(?:https?://)?hooks\.slack\.com/services/"), "a Slack webhook URL"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), "a Slack token"),
    (re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"), "a GitHub token"),
    (re.compile(r"\bsk_(live|test)_[0-9A-Za-z]{16,}"), "a Stripe key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}"), "a JWT"),
)
SECRET_HEADER_RE = re.compile(r"(auth|token|secret|key|password|cookie)", re.IGNORECASE)
CHANNELS = ("email", "slack")


@dataclass
class DatasetInfo:
    """A dataset the models and checks can name: a silver table (source.table) or a model."""

    key: str
    layer: str  # silver | intermediate | gold
    columns: dict[str, str | None]  # name -> canonical type (None when unknown)
    path: Path_
    deps: list[str] = field(default_factory=list)
    analysis: sqlcheck.SqlAnalysis | None = None
    #: its definition has errors: its columns are unknown, so checks against them are skipped
    broken: bool = False


@dataclass
class CheckedSpec:
    """A spec that passed every check, with what validation learned about its datasets."""

    spec: Spec
    document: SpecDocument
    datasets: dict[str, DatasetInfo]


def source_datasets(source: PostgresSource | ApiSource | FileSource) -> tuple[str, list[DatasetBase]]:
    """The field holding a source's datasets and the datasets themselves."""
    if isinstance(source, ApiSource):
        return "endpoints", list(source.endpoints)
    return "tables", list(source.tables)


def silver_columns(dataset: DatasetBase) -> dict[str, str | None]:
    """Columns of a silver model: source columns after renames, with casts applied."""
    out: dict[str, str | None] = {}
    for name, column in dataset.columns.items():
        out[dataset.silver.rename.get(name, name)] = dataset.silver.cast.get(name, column.type)
    return out


def scan_scalar(lines: list[str], line: int, col: int, text: str, offset: int, quote: str) -> tuple[int, int] | None:
    """The 0-based file position of character `offset` of a YAML scalar whose text starts at (line, col).

    The value is matched against the file, a run of whitespace in one against a run in the other, so
    folded lines of plain, quoted and '>' scalars are followed; None when they differ (e.g. an escape).
    """
    source = "\n".join(lines[line:])
    i, j = 0, col
    while i < offset:
        if j >= len(source):
            return None
        if text[i].isspace() and source[j].isspace():
            while i < offset and text[i].isspace():
                i += 1
            while j < len(source) and source[j].isspace():
                j += 1
            continue
        if quote == "'" and text[i] == "'" and source.startswith("''", j):
            i, j = i + 1, j + 2
            continue
        if quote == '"' and source[j] == "\\" and j + 1 < len(source):
            escape = source[j + 1]
            if escape == "\n":  # an escaped line break: no character of the value
                j += 2
                while j < len(source) and source[j] in " \t":
                    j += 1
                continue
            i, j = i + 1, j + 2 + {"x": 2, "u": 4, "U": 8}.get(escape, 0)
            continue
        if text[i] != source[j]:
            return None
        i, j = i + 1, j + 1
    while quote == '"' and source.startswith("\\\n", j):  # escaped line breaks before the character
        j += 2
        while j < len(source) and source[j] in " \t":
            j += 1
    before = source[:j]
    return line + before.count("\n"), j - (before.rfind("\n") + 1)


def value_loc(document: SpecDocument, path: Path_, text: str, offset: int) -> Loc:
    """The file position of character `offset` of the string value `text` at `path` (block or flow scalar)."""
    base = document.source_map.value(path)
    lines = document.texts.get(base.file, "").split("\n")
    offset = max(0, min(offset, len(text)))
    sql_line = text.count("\n", 0, offset)
    sql_col = offset - (text.rfind("\n", 0, offset) + 1)
    if not 0 < base.line <= len(lines):
        return base
    first = lines[base.line - 1][base.col - 1 : base.col]
    if first in ("|", ">"):
        start = base.line  # 0-based index of the first content line
        indent = 0
        for candidate in lines[start:]:
            if candidate.strip():
                indent = len(candidate) - len(candidate.lstrip(" "))
                break
        if first == "|":
            return Loc(base.file, start + 1 + sql_line, indent + sql_col + 1)
        found = scan_scalar(lines, start, indent, text, offset, "")
        return Loc(base.file, found[0] + 1, found[1] + 1) if found else Loc(base.file, start + 1, indent + 1)
    quoted = 1 if first in ("'", '"') else 0
    found = scan_scalar(lines, base.line - 1, base.col - 1 + quoted, text, offset, first if quoted else "")
    if found is not None:
        return Loc(base.file, found[0] + 1, found[1] + 1)
    if sql_line:
        return base
    return Loc(base.file, base.line, base.col + quoted + sql_col)


class Validator:
    """Collects every semantic problem of a structurally valid spec."""

    def __init__(self, spec: Spec, document: SpecDocument) -> None:
        self.spec = spec
        self.doc = document
        self.diagnostics: list[Diagnostic] = []
        self.datasets: dict[str, DatasetInfo] = {}
        self.teams = set(spec.governance.teams)
        #: inline expectations, checked once every dataset is known (they may name later ones)
        self.pending: list[tuple[DatasetInfo, list[Expectation], Path_]] = []

    # ------------------------------------------------------------------ helpers

    def error(self, path: Path_, message: str, *, key: bool = False) -> None:
        loc = self.doc.source_map.key(path) if key else self.doc.source_map.value(path)
        self.diagnostics.append(Diagnostic(loc, message))

    def where(self, path: Path_) -> str:
        """file:line:col of a value, for messages that point at a second place."""
        return str(self.doc.source_map.value(path))

    def sql_error(self, path: Path_, text: str, problem: sqlcheck.SqlProblem, prefix: str = "") -> None:
        self.diagnostics.append(Diagnostic(self.sql_loc(path, text, problem.offset), prefix + problem.message))

    def sql_loc(self, path: Path_, text: str, offset: int) -> Loc:
        """The file position of a character of a SQL string written in YAML (block or flow scalar)."""
        return value_loc(self.doc, path, text, offset)

    def check_owner(self, owner: str | None, path: Path_) -> None:
        if owner is None:
            return
        if "@" in owner:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", owner):
                self.error(path, f"'{owner}' is not an e-mail address")
            return
        if self.teams and owner not in self.teams:
            self.error(
                path,
                f"unknown team '{owner}'{did_you_mean(owner, self.teams)}: declare it in governance.teams or use an e-mail address",
            )

    def check_tags(self, tags: Iterable[str], path: Path_) -> None:
        allowed = self.spec.governance.tags
        if not allowed:
            return
        for index, tag in enumerate(tags):
            if tag not in allowed:
                self.error(
                    (*path, index), f"unknown tag '{tag}'{did_you_mean(tag, allowed)}: declare it in governance.tags"
                )

    def dataset_ref(self, name: str, path: Path_, what: str = "dataset") -> DatasetInfo | None:
        info = self.datasets.get(name)
        if info is None:
            self.error(path, f"unknown {what} '{name}'{did_you_mean(name, self.datasets)}")
        return info

    def column_ref(self, info: DatasetInfo, column: str, path: Path_) -> bool:
        if column in info.columns or info.broken:
            return True
        hint = did_you_mean(column, info.columns)
        if not hint and info.columns:
            names = list(info.columns)
            hint = f"; its columns are {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}"
        self.error(path, f"unknown column '{column}' in {info.key}{hint}")
        return False

    # ------------------------------------------------------------------ checks

    def run(self) -> CheckedSpec:
        self.check_platform()
        self.check_sources()
        self.check_models()
        self.check_pending_expectations()
        self.check_expectations()
        self.check_slas()
        self.check_alerting()
        self.check_dashboards()
        self.check_governance()
        if self.diagnostics:
            raise SpecError(self.diagnostics)
        return CheckedSpec(self.spec, self.doc, self.datasets)

    def check_platform(self) -> None:
        ports = self.spec.platform.ports.model_dump()
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                self.error(("platform", "ports", name), f"port {port} is already used by {seen[port]}")
            seen[port] = name
        owner = self.spec.platform.owner
        if "owner" in self.spec.platform.model_fields_set:
            self.check_owner(owner, ("platform", "owner"))
        elif self.teams and "@" not in owner and owner not in self.teams:
            self.error(
                ("governance", "teams"),
                f"platform.owner defaults to '{owner}', which is not a team here: set platform.owner "
                f"to a team or an e-mail address, or declare the team '{owner}'",
                key=True,
            )
        if "owner" in self.spec.orchestration.defaults.model_fields_set:  # the default is only Airflow's label
            self.check_owner(self.spec.orchestration.defaults.owner, ("orchestration", "defaults", "owner"))
        names: set[str] = set()
        for index, user in enumerate(self.spec.orchestration.users):
            if user.username in names:
                self.error(("orchestration", "users", index, "username"), f"duplicate user '{user.username}'")
            names.add(user.username)

    def check_sources(self) -> None:
        seen: dict[str, int] = {}
        for index, source in enumerate(self.spec.sources):
            path: Path_ = ("sources", index)
            if source.name in seen:
                first = self.where(("sources", seen[source.name], "name"))
                self.error((*path, "name"), f"duplicate source name '{source.name}' (first defined at {first})")
                continue
            seen[source.name] = index
            self.check_owner(source.owner, (*path, "owner"))
            self.check_tags(source.tags, (*path, "tags"))
            if source.sample is not None:
                self.check_sample(source.sample, (*path, "sample"))
            if isinstance(source, ApiSource):
                for header in source.headers:
                    if SECRET_HEADER_RE.search(header):
                        self.error(
                            (*path, "headers", header),
                            f"header '{header}' looks like a credential: use auth: (bearer, basic or api_key) with env:VAR",
                            key=True,
                        )
            if isinstance(source, FileSource) and not source.location.startswith("s3://") and "://" in source.location:
                self.error((*path, "location"), "location must be a local directory or s3://bucket/prefix")
            field_name, datasets = source_datasets(source)
            names: dict[str, int] = {}
            for position, dataset in enumerate(datasets):
                dpath: Path_ = (*path, field_name, position)
                if dataset.name in names:
                    first = self.where((*path, field_name, names[dataset.name], "name"))
                    self.error(
                        (*dpath, "name"),
                        f"duplicate name '{dataset.name}' in source '{source.name}' (first defined at {first})",
                    )
                    continue
                names[dataset.name] = position
                self.check_source_dataset(source.name, dataset, dpath)

    def check_sample(self, sample: str, path: Path_) -> None:
        root = self.doc.root if self.doc.root.is_dir() else self.doc.root.parent
        target = Path(sample)
        if target.is_absolute() or ".." in target.parts:
            self.error(path, "sample must be a folder inside the spec directory (a relative path without '..')")
        elif not (root / target).is_dir():
            self.error(path, f"sample folder '{sample}' not found: no directory {display_path(root / target)}")

    def check_source_dataset(self, source: str, dataset: DatasetBase, path: Path_) -> None:
        key = f"{source}.{dataset.name}"
        columns = dataset.columns
        self.check_owner(dataset.owner, (*path, "owner"))
        self.check_tags(dataset.tags, (*path, "tags"))
        for name, column in columns.items():
            self.check_column(column, (*path, "columns", name), need_type=True)
        for i, pk in enumerate(dataset.primary_key):
            if pk not in columns:
                self.error(
                    (*path, "primary_key", i), f"unknown column '{pk}' in primary_key{did_you_mean(pk, columns)}"
                )
        incremental = getattr(dataset, "incremental", None)
        if incremental is not None and incremental.cursor not in columns:
            self.error(
                (*path, "incremental", "cursor"),
                f"unknown column '{incremental.cursor}' as incremental cursor{did_you_mean(incremental.cursor, columns)}",
            )
        silver = dataset.silver
        spath: Path_ = (*path, "silver")
        for label, keys in (("rename", silver.rename), ("cast", silver.cast), ("case", silver.case)):
            for name in keys:
                if name not in columns:
                    self.error(
                        (*spath, label, name),
                        f"unknown column '{name}' in silver {label}{did_you_mean(name, columns)}",
                        key=True,
                    )
        for name, how in silver.case.items():
            if name in columns and columns[name].type not in ("string", None):
                self.error(
                    (*spath, "case", name),
                    f"case: {how} needs a string column, '{name}' is {columns[name].type}",
                    key=True,
                )
        if isinstance(silver.trim, list):
            for i, name in enumerate(silver.trim):
                if name not in columns:
                    self.error(
                        (*spath, "trim", i), f"unknown column '{name}' in silver trim{did_you_mean(name, columns)}"
                    )
        targets = [silver.rename.get(c, c) for c in columns]
        for new in silver.rename.values():
            if targets.count(new) > 1:
                self.error((*spath, "rename"), f"rename gives two columns the name '{new}'")
                break
        if silver.dedup is not None and silver.dedup.by not in columns:
            self.error(
                (*spath, "dedup", "by"),
                f"unknown column '{silver.dedup.by}' in dedup{did_you_mean(silver.dedup.by, columns)}",
            )
        if silver.dedup is not None and not dataset.primary_key:
            self.error((*spath, "dedup"), "dedup needs a primary_key on the table")
        if silver.materialized == "incremental" and not dataset.primary_key:
            self.error((*spath, "materialized"), "an incremental silver model needs a primary_key on the table")
        if silver.filter is not None:
            _, problems = sqlcheck.check_expression(silver.filter, list(columns), "the silver filter", aggregate=False)
            for problem in problems:
                self.sql_error((*spath, "filter"), silver.filter, problem)
        info = DatasetInfo(key=key, layer="silver", columns=silver_columns(dataset), path=path)
        self.datasets[key] = info
        self.check_inline_expectations(info, dataset.expectations, (*path, "expectations"))
        if dataset.sla is not None:
            self.check_sla(dataset.sla, (*path, "sla"))

    def check_column(self, column: ColumnSpec, path: Path_, *, need_type: bool) -> None:
        if need_type and column.type is None:
            self.error(path, "missing required key 'type'")
        if column.classification is not None and column.classification not in self.spec.governance.classifications:
            known = self.spec.governance.classifications
            self.error(
                (*path, "classification"),
                f"unknown classification '{column.classification}'{did_you_mean(column.classification, known)}: "
                f"use one of {', '.join(known)} or declare it in governance.classifications",
            )
        self.check_tags(column.tags, (*path, "tags"))
        problem = regex_problem(column.regex) if column.regex is not None else None
        if problem is not None:
            self.error((*path, "regex"), problem)
        if column.range is not None and column.type is not None:
            kind = column_type(column.type).name
            if kind in ("string", "boolean", "json"):
                self.error((*path, "range"), f"range needs a numeric, date or timestamp column, not {kind}")

    def check_models(self) -> None:
        seen: dict[str, int] = {}
        models: list[tuple[int, Model]] = []
        for index, model in enumerate(self.spec.models):
            path: Path_ = ("models", index)
            if model.name in seen:
                first = self.where(("models", seen[model.name], "name"))
                self.error((*path, "name"), f"duplicate model name '{model.name}' (first defined at {first})")
                continue
            seen[model.name] = index
            self.check_owner(model.owner, (*path, "owner"))
            self.check_tags(model.tags, (*path, "tags"))
            models.append((index, model))
            # placeholder so models can reference each other before analysis
            self.datasets[model.name] = DatasetInfo(
                model.name, "intermediate" if model.layer == "intermediate" else "gold", {}, path
            )
        edges = {m.name: self.model_dependencies(m) for _, m in models}
        while cycle := find_cycle(edges):
            index = next(i for i, m in models if m.name == cycle[0])
            self.error(("models", index, "name"), f"dependency cycle: {' -> '.join(cycle)} (each model reads the next)")
            for name in cycle:  # the other models are still checked; these have unknown columns
                self.datasets[name].broken = True
                edges.pop(name, None)
        from platformgen.plan.graph import topo_order

        by_name = {m.name: (i, m) for i, m in models}
        for name in topo_order(edges):
            index, model = by_name[name]
            self.analyse_model(model, ("models", index))

    def model_dependencies(self, model: Model) -> list[str]:
        if model.aggregate is not None:
            return [model.aggregate.from_]
        assert model.sql is not None
        tree, _ = sqlcheck.parse(model.sql)
        if tree is None:
            return []
        from sqlglot import exp

        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        return sorted({sqlcheck.table_key(t) for t in tree.find_all(exp.Table) if t.db or t.name not in ctes})

    def columns_of(self, key: str) -> list[str] | None:
        info = self.datasets.get(key)
        if info is None:
            return None
        return ["*"] if info.broken else list(info.columns)

    def analyse_model(self, model: Model, path: Path_) -> None:
        info = self.datasets[model.name]
        before = len(self.diagnostics)
        if model.sql is not None:
            analysis = sqlcheck.analyze_select(model.sql, self.columns_of, list(self.datasets))
            reads_broken = any(self.datasets[d].broken for d in analysis.references if d in self.datasets)
            for problem in analysis.problems:
                if reads_broken and problem.message.startswith("cannot expand '*'"):
                    continue  # the columns of what it reads are unknown: that dataset's errors say why
                self.sql_error((*path, "sql"), model.sql, problem)
            info.analysis = analysis
            info.deps = sorted(analysis.references)
            output = analysis.output_columns
        else:
            assert model.aggregate is not None
            output = self.analyse_aggregate(model, path)
            info.deps = [model.aggregate.from_] if model.aggregate.from_ in self.datasets else []
        for dep in info.deps:
            target = self.datasets.get(dep)
            if target is not None and model.layer == "intermediate" and target.layer == "gold":
                message = (
                    f"intermediate model '{model.name}' cannot read gold model '{dep}': make it gold or move the logic"
                )
                if model.sql is not None and info.analysis is not None and dep in info.analysis.references:
                    where = self.sql_loc((*path, "sql"), model.sql, info.analysis.references[dep])
                    self.diagnostics.append(Diagnostic(where, message))
                else:
                    self.error((*path, "aggregate", "from"), message)
        info.columns = dict.fromkeys(output)
        info.broken = len(self.diagnostics) > before or any(self.datasets[d].broken for d in info.deps)
        for name, column in model.columns.items():
            if output and name not in output:
                self.error(
                    (*path, "columns", name),
                    f"column '{name}' is not produced by model '{model.name}'{did_you_mean(name, output)}",
                    key=True,
                )
            else:
                info.columns[name] = column.type
            self.check_column(column, (*path, "columns", name), need_type=False)
        for i, key in enumerate(model.unique_key):
            if output and key not in output:
                self.error((*path, "unique_key", i), f"unknown column '{key}' in unique_key{did_you_mean(key, output)}")
        self.check_inline_expectations(info, model.expectations, (*path, "expectations"))
        if model.sla is not None:
            self.check_sla(model.sla, (*path, "sla"))

    def analyse_aggregate(self, model: Model, path: Path_) -> list[str]:
        agg = model.aggregate
        assert agg is not None
        apath: Path_ = (*path, "aggregate")
        source = self.dataset_ref(agg.from_, (*apath, "from"))
        if source is None:
            return []
        if source.broken:  # its errors are reported already; its columns are unknown
            return [
                *([agg.time.name or agg.time.grain] if agg.time else []),
                *(d.name for d in agg.dimensions),
                *agg.measures,
            ]
        cols = list(source.columns)
        output: list[str] = []
        if agg.time is not None:
            if agg.time.column not in source.columns:
                self.error(
                    (*apath, "time", "column"),
                    f"unknown column '{agg.time.column}' in {source.key}{did_you_mean(agg.time.column, cols)}",
                )
            output.append(agg.time.name or agg.time.grain)
        for i, dim in enumerate(agg.dimensions):
            _, problems = sqlcheck.check_expression(dim.expr, cols, "the dimension", aggregate=False)
            # a dimension is a plain string or a mapping with name and expr
            where: Path_ = (*apath, "dimensions", i)
            if (*where, "expr") in self.doc.source_map.values:
                where = (*where, "expr")
            for problem in problems:
                self.sql_error(where, dim.expr, problem)
            output.append(dim.name)
        for name, expr in agg.measures.items():
            _, problems = sqlcheck.check_expression(expr, cols, f"measure '{name}'", aggregate=True)
            for problem in problems:
                self.sql_error((*apath, "measures", name), expr, problem)
            output.append(name)
        if agg.filter is not None:
            _, problems = sqlcheck.check_expression(agg.filter, cols, "the filter", aggregate=False)
            for problem in problems:
                self.sql_error((*apath, "filter"), agg.filter, problem)
        for name in sorted({n for n in output if output.count(n) > 1}):
            self.error(apath, f"aggregate produces the column '{name}' twice")
        return output

    def check_inline_expectations(self, info: DatasetInfo, expectations: list[Expectation], path: Path_) -> None:
        self.pending.append((info, expectations, path))

    def check_pending_expectations(self) -> None:
        for info, expectations, path in self.pending:
            for index, expectation in enumerate(expectations):
                self.check_expectation(info, expectation, (*path, index))

    def check_expectation(self, info: DatasetInfo, expectation: Expectation, path: Path_) -> None:
        if expectation.column is not None:
            self.column_ref(info, expectation.column, (*path, "column"))
        for i, column in enumerate(expectation.columns or []):
            self.column_ref(info, column, (*path, "columns", i))
        if expectation.freshness is not None and expectation.freshness.column is not None:
            self.column_ref(info, expectation.freshness.column, (*path, "freshness", "column"))
        if expectation.relationships is not None:
            rel = expectation.relationships
            target = self.dataset_ref(rel.to, (*path, "relationships", "to"))
            if target is not None:
                column = rel.column or expectation.column or ""
                if column not in target.columns and not target.broken:
                    default = "" if rel.column else "; relationships.column defaults to the checked column, set it"
                    self.error(
                        (*path, "relationships", "column") if rel.column else (*path, "relationships"),
                        f"unknown column '{column}' in {target.key}{did_you_mean(column, target.columns)}{default}",
                    )
        if expectation.sql is not None:
            _, problems = sqlcheck.check_expression(
                expectation.sql, list(info.columns), "the condition", aggregate=False
            )
            problems = [] if info.broken else problems
            for problem in problems:
                self.sql_error((*path, "sql"), expectation.sql, problem)

    def check_expectations(self) -> None:
        for index, item in enumerate(self.spec.expectations):
            path: Path_ = ("expectations", index)
            info = self.dataset_ref(item.dataset, (*path, "dataset"))
            if info is not None:
                self.check_expectation(info, item, path)

    def check_sla(self, sla: Sla, path: Path_) -> None:
        for i, target in enumerate(sla.notify):
            self.check_recipient(target, (*path, "notify", i))

    def check_recipient(self, target: str, path: Path_) -> None:
        if target in CHANNELS:
            if getattr(self.spec.alerting, target) is None:
                self.error(path, f"channel '{target}' is not configured: add alerting.{target}")
            return
        if "@" in target:
            self.check_owner(target, path)
            return
        if target in self.teams:
            return
        self.error(
            path,
            f"unknown recipient '{target}'{did_you_mean(target, [*CHANNELS, *self.teams])}: use email, slack, a team or an e-mail address",
        )

    def check_slas(self) -> None:
        for index, item in enumerate(self.spec.slas):
            path: Path_ = ("slas", index)
            self.dataset_ref(item.dataset, (*path, "dataset"))
            self.check_sla(item, path)

    def check_alerting(self) -> None:
        for index, route in enumerate(self.spec.alerting.routes):
            path: Path_ = ("alerting", "routes", index)
            self.check_owner(route.owner, (*path, "owner"))
            for i, target in enumerate(route.notify):
                self.check_recipient(target, (*path, "notify", i))

    def check_dashboards(self) -> None:
        seen: dict[str, int] = {}
        for index, dashboard in enumerate(self.spec.dashboards):
            path: Path_ = ("dashboards", index)
            if dashboard.name in seen:
                first = self.where(("dashboards", seen[dashboard.name], "name"))
                self.error((*path, "name"), f"duplicate dashboard name '{dashboard.name}' (first defined at {first})")
            seen.setdefault(dashboard.name, index)
            self.check_owner(dashboard.owner, (*path, "owner"))
            for c, chart in enumerate(dashboard.charts):
                cpath: Path_ = (*path, "charts", c)
                info = self.datasets.get(chart.model)
                if info is None or info.layer == "silver":
                    gold = [k for k, v in self.datasets.items() if v.layer != "silver"]
                    self.error((*cpath, "model"), f"unknown model '{chart.model}'{did_you_mean(chart.model, gold)}")
                    continue
                cols = list(info.columns)
                if info.broken:
                    continue
                if chart.metric is not None:
                    _, problems = sqlcheck.check_expression(chart.metric, cols, "the metric", aggregate=True)
                    for problem in problems:
                        self.sql_error((*cpath, "metric"), chart.metric, problem)
                for key in ("x", "dimension"):
                    value = getattr(chart, key)
                    if value is not None:
                        self.column_ref(info, value, (*cpath, key))
                for i, column in enumerate(chart.columns):
                    self.column_ref(info, column, (*cpath, "columns", i))
                for i, condition in enumerate(chart.filters):
                    _, problems = sqlcheck.check_expression(condition, cols, "the filter", aggregate=False)
                    for problem in problems:
                        self.sql_error((*cpath, "filters", i), condition, problem)

    def check_governance(self) -> None:
        gov = self.spec.governance
        for term, definition in gov.glossary.items():
            for i, name in enumerate(definition.datasets):
                self.dataset_ref(name, ("governance", "glossary", term, "datasets", i))
        schemas = set(self.spec.warehouse.schemas.model_dump().values())
        for role_name, role in gov.roles.items():
            for i, schema in enumerate(role.schemas):
                if schema not in schemas:
                    self.error(
                        ("governance", "roles", role_name, "schemas", i),
                        f"unknown schema '{schema}'{did_you_mean(schema, schemas)}",
                    )


def scan_secrets(document: SpecDocument) -> list[tuple[Path_, Diagnostic]]:
    """Values anywhere in the spec that look like credentials (URLs with passwords, tokens, keys), by path."""
    found: list[tuple[Path_, Diagnostic]] = []

    def walk(node: Any, path: Path_) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))
        elif isinstance(node, str):
            for pattern, what in SECRET_PATTERNS:
                match = pattern.search(node)
                if match:
                    message = f"this looks like {what}: never write a secret in the spec; use env:VAR"
                    found.append((path, Diagnostic(value_loc(document, path, node, match.start()), message)))
                    break

    walk(document.data, ())
    return found


def _with_secrets(
    document: SpecDocument, diagnostics: list[Diagnostic], secrets: list[tuple[Path_, Diagnostic]]
) -> list[Diagnostic]:
    """Both lists; a value that looks like a secret is reported once, as a secret (which says why)."""
    flagged = {document.source_map.value(path) for path, _ in secrets} | {d.loc for _, d in secrets}
    return [d for d in diagnostics if d.loc not in flagged] + [d for _, d in secrets]


def validate_document(document: SpecDocument) -> CheckedSpec:
    """Structural then semantic validation of a loaded spec."""
    secrets = scan_secrets(document)
    try:
        spec = check_structure(document)
    except SpecError as exc:
        raise SpecError(_with_secrets(document, exc.diagnostics, secrets)) from None
    try:
        checked = Validator(spec, document).run()
    except SpecError as exc:
        raise SpecError(_with_secrets(document, exc.diagnostics, secrets)) from None
    if secrets:
        raise SpecError([d for _, d in secrets])
    return checked


def _one_line(diagnostic: Diagnostic) -> Diagnostic:
    """A diagnostic whose message (which may echo a value) fits on one output line."""
    message = diagnostic.message.replace("\r", "\\r").replace("\n", "\\n")
    return diagnostic if message == diagnostic.message else Diagnostic(diagnostic.loc, message, diagnostic.severity)


def validate_path(root: Path) -> CheckedSpec:
    """Load and validate the spec at `root` (a directory or a single file)."""
    try:
        return validate_document(load_spec(root))
    except SpecError as exc:
        raise SpecError([_one_line(d) for d in exc.diagnostics]) from None
