"""Resolve a validated spec into the frozen Plan that every target reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from platformgen.plan.graph import topo_order
from platformgen.spec.models import (
    Alerting,
    ApiSource,
    ColumnSpec,
    Dashboard,
    DatasetBase,
    Expectation,
    FileSource,
    Governance,
    Model,
    Orchestration,
    Platform,
    PostgresSource,
    Route,
    Sla,
    Storage,
    Warehouse,
)
from platformgen.spec.types import column_type
from platformgen.spec.validate import CheckedSpec, source_datasets

AnySource = PostgresSource | ApiSource | FileSource


@dataclass(frozen=True)
class PlanColumn:
    """A resolved column."""

    name: str
    type: str | None  # canonical vocabulary type; None when not declared or inferable
    nullable: bool = True
    description: str = ""
    classification: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def postgres_type(self) -> str | None:
        return None if self.type is None else column_type(self.type).postgres


@dataclass(frozen=True)
class Check:
    """One data-quality check on one dataset."""

    id: str
    dataset: str  # source.table or model name
    kind: str  # not_null | unique | accepted_values | range | regex | row_count | freshness | relationships | sql
    column: str | None = None
    columns: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    severity: str = "error"
    description: str = ""

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class SlaPlan:
    """Freshness and deadline of one dataset."""

    dataset: str
    warn_after: int | None
    error_after: int | None
    ready_by: str | None
    notify: tuple[str, ...]


@dataclass(frozen=True)
class SourceTablePlan:
    """A source dataset through its layers: bronze files, raw table, silver model."""

    source: str
    name: str
    kind: str
    spec: DatasetBase
    columns: tuple[PlanColumn, ...]  # as extracted from the source
    silver_columns: tuple[PlanColumn, ...]  # after renames and casts
    primary_key: tuple[str, ...]
    owner: str
    description: str

    @property
    def key(self) -> str:
        return f"{self.source}.{self.name}"

    @property
    def slug(self) -> str:
        return f"{self.source}__{self.name}"

    @property
    def raw_table(self) -> str:
        return self.slug

    @property
    def staging_model(self) -> str:
        return f"stg_{self.slug}"

    @property
    def bronze_prefix(self) -> str:
        return f"{self.source}/{self.name}/"


@dataclass(frozen=True)
class SourcePlan:
    """A source and its datasets."""

    name: str
    kind: str
    spec: AnySource
    owner: str
    schedule: str | None
    tables: tuple[SourceTablePlan, ...]


@dataclass(frozen=True)
class ModelPlan:
    """An intermediate or gold model."""

    name: str
    layer: str  # intermediate | gold
    schema: str
    materialized: str
    spec: Model
    deps: tuple[str, ...]
    columns: tuple[PlanColumn, ...]
    owner: str


@dataclass(frozen=True)
class Edge:
    """A lineage edge between two plan nodes."""

    source: str
    target: str


@dataclass(frozen=True)
class Plan:
    """Everything the targets need, resolved, ordered and immutable."""

    name: str
    spec_label: str  # e.g. "specs" or "examples/minimal_csv/platform.yaml"
    spec_files: tuple[str, ...]  # relative to the spec root
    platform: Platform
    orchestration: Orchestration
    storage: Storage
    warehouse: Warehouse
    alerting: Alerting
    routes: tuple[Route, ...]
    governance: Governance
    sources: tuple[SourcePlan, ...]
    models: tuple[ModelPlan, ...]  # dependency order
    checks: tuple[Check, ...]
    slas: tuple[SlaPlan, ...]
    dashboards: tuple[Dashboard, ...]
    edges: tuple[Edge, ...] = field(default=())

    # Lookups are computed once per plan: targets call them per dataset, and a scan per call would make
    # compiling quadratic in the number of datasets.

    @cached_property
    def tables(self) -> tuple[SourceTablePlan, ...]:
        return tuple(t for s in self.sources for t in s.tables)

    @cached_property
    def _checks_by_dataset(self) -> dict[str, tuple[Check, ...]]:
        grouped: dict[str, list[Check]] = {}
        for check in self.checks:
            grouped.setdefault(check.dataset, []).append(check)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def _models_by_name(self) -> dict[str, ModelPlan]:
        return {m.name: m for m in self.models}

    @cached_property
    def _slas_by_dataset(self) -> dict[str, SlaPlan]:
        return {s.dataset: s for s in self.slas}

    @cached_property
    def tables_by_key(self) -> dict[str, SourceTablePlan]:
        """Source datasets by `source.table`."""
        return {t.key: t for t in self.tables}

    @cached_property
    def relations(self) -> dict[str, tuple[str, str]]:
        """Dataset (source.table or model) -> (schema, relation) of its silver model or model in the warehouse."""
        staging = self.warehouse.schemas.staging
        found = {t.key: (staging, t.staging_model) for t in self.tables}
        found.update({m.name: (m.schema, m.name) for m in self.models})
        return found

    def checks_for(self, dataset: str) -> tuple[Check, ...]:
        return self._checks_by_dataset.get(dataset, ())

    def sla_for(self, dataset: str) -> SlaPlan | None:
        return self._slas_by_dataset.get(dataset)

    def model(self, name: str) -> ModelPlan:
        return self._models_by_name[name]


def _plan_column(name: str, column: ColumnSpec, type_override: str | None = None) -> PlanColumn:
    return PlanColumn(
        name=name,
        type=type_override or column.type,
        nullable=column.nullable,
        description=column.description,
        classification=column.classification,
        tags=tuple(column.tags),
    )


class _CheckCollector:
    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.ids: set[str] = set()
        self.index: dict[tuple[Any, ...], int] = {}

    def add(
        self,
        dataset: str,
        kind: str,
        *,
        column: str | None = None,
        columns: tuple[str, ...] = (),
        params: dict[str, Any] | None = None,
        severity: str = "error",
        name: str | None = None,
        description: str = "",
    ) -> None:
        frozen = tuple(sorted((k, _freeze(v)) for k, v in (params or {}).items() if v is not None))
        identity = (dataset, kind, column, columns, frozen)
        if name is None and identity in self.index:
            # the same check declared twice (e.g. a primary key column also marked nullable: false) runs once
            position = self.index[identity]
            existing = self.checks[position]
            if severity == "error" and existing.severity != "error":
                self.checks[position] = Check(
                    existing.id, dataset, kind, column, columns, frozen, "error", existing.description
                )
            return
        base = name or "__".join(p for p in (dataset.replace(".", "__"), kind, column or "_".join(columns)) if p)
        check_id, n = base, 2
        while check_id in self.ids:
            check_id, n = f"{base}_{n}", n + 1
        self.ids.add(check_id)
        self.index.setdefault(identity, len(self.checks))
        self.checks.append(Check(check_id, dataset, kind, column, columns, frozen, severity, description))

    def from_column(self, dataset: str, name: str, column: ColumnSpec) -> None:
        sev = column.severity
        if not column.nullable:
            self.add(dataset, "not_null", column=name, severity=sev)
        if column.unique:
            self.add(dataset, "unique", column=name, severity=sev)
        if column.accepted_values is not None:
            self.add(dataset, "accepted_values", column=name, params={"values": column.accepted_values}, severity=sev)
        if column.range is not None:
            self.add(dataset, "range", column=name, params=_range(column.range), severity=sev)
        if column.regex is not None:
            self.add(dataset, "regex", column=name, params={"pattern": column.regex}, severity=sev)

    def from_expectation(self, dataset: str, exp: Expectation) -> None:
        common: dict[str, Any] = {"severity": exp.severity, "description": exp.description}
        checks: list[tuple[str, dict[str, Any]]] = []
        if exp.not_null:
            checks.append(("not_null", {}))
        if exp.unique:
            checks.append(("unique", {}))
        if exp.accepted_values is not None:
            checks.append(("accepted_values", {"values": exp.accepted_values}))
        if exp.range is not None:
            checks.append(("range", _range(exp.range)))
        if exp.regex is not None:
            checks.append(("regex", {"pattern": exp.regex}))
        if exp.row_count is not None:
            checks.append(("row_count", {"min": exp.row_count.min, "max": exp.row_count.max}))
        if exp.freshness is not None:
            f = exp.freshness
            checks.append(("freshness", {"column": f.column, "warn_after": f.warn_after, "error_after": f.error_after}))
        if exp.relationships is not None:
            rel = exp.relationships
            checks.append(("relationships", {"to": rel.to, "field": rel.column or exp.column}))
        if exp.sql is not None:
            checks.append(("sql", {"condition": exp.sql.strip()}))
        for index, (kind, params) in enumerate(checks):
            name = exp.name if exp.name and len(checks) == 1 else (f"{exp.name}_{index + 1}" if exp.name else None)
            columns = tuple(exp.columns or ())
            self.add(dataset, kind, column=exp.column, columns=columns, params=params, name=name, **common)


def _range(rng: Any) -> dict[str, Any]:
    return {"min": rng.min, "max": rng.max, "strict": rng.strict or None}


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _sla(dataset: str, sla: Sla) -> SlaPlan:
    return SlaPlan(dataset, sla.warn_after, sla.error_after, sla.ready_by, tuple(sla.notify))


def default_routes(alerting: Alerting) -> tuple[Route, ...]:
    """The routes of the spec, or: errors to every channel, warnings to slack (else e-mail)."""
    if alerting.routes:
        return tuple(alerting.routes)
    channels = [c for c in ("email", "slack") if getattr(alerting, c) is not None]
    if not channels:
        return ()
    warn = ["slack"] if "slack" in channels else channels
    return (Route(severity="error", notify=channels), Route(severity="warn", notify=warn))


def build_plan(checked: CheckedSpec) -> Plan:
    """The Plan of a validated spec: sources, models in dependency order, checks, SLAs, lineage."""
    spec, doc = checked.spec, checked.document
    default_owner = spec.platform.owner
    collector = _CheckCollector()
    slas: list[SlaPlan] = []
    sources: list[SourcePlan] = []
    edges: list[Edge] = []
    for source in spec.sources:
        owner = source.owner or default_owner
        _, datasets = source_datasets(source)
        tables: list[SourceTablePlan] = []
        for dataset in datasets:
            key = f"{source.name}.{dataset.name}"
            rename = dataset.silver.rename
            columns = tuple(_plan_column(n, c) for n, c in dataset.columns.items())
            silver = tuple(
                _plan_column(rename.get(n, n), c, dataset.silver.cast.get(n)) for n, c in dataset.columns.items()
            )
            pk = tuple(rename.get(c, c) for c in dataset.primary_key)
            table = SourceTablePlan(
                source.name,
                dataset.name,
                source.kind,
                dataset,
                columns,
                silver,
                pk,
                dataset.owner or owner,
                dataset.description,
            )
            tables.append(table)
            for col in pk:
                collector.add(key, "not_null", column=col)
            if len(pk) == 1:
                collector.add(key, "unique", column=pk[0])
            elif pk:
                collector.add(key, "unique", columns=pk)
            for name, column in dataset.columns.items():
                collector.from_column(key, rename.get(name, name), column)
            for exp in dataset.expectations:
                collector.from_expectation(key, exp)
            if dataset.sla is not None:
                slas.append(_sla(key, dataset.sla))
            edges.extend(
                [
                    Edge(f"source.{source.name}", f"bronze.{table.key}"),
                    Edge(f"bronze.{table.key}", f"raw.{table.raw_table}"),
                    Edge(f"raw.{table.raw_table}", f"silver.{table.key}"),
                ]
            )
        sources.append(SourcePlan(source.name, source.kind, source, owner, source.schedule, tuple(tables)))
    by_name = {m.name: m for m in spec.models}
    order = topo_order({m.name: [d for d in checked.datasets[m.name].deps if d in by_name] for m in spec.models})
    models: list[ModelPlan] = []
    schemas = spec.warehouse.schemas
    for name in order:
        model = by_name[name]
        info = checked.datasets[name]
        declared = model.columns
        columns = tuple(
            _plan_column(col, declared[col]) if col in declared else PlanColumn(col, None) for col in info.columns
        )
        layer = model.layer
        materialized = model.materialized or ("view" if layer == "intermediate" else "table")
        models.append(
            ModelPlan(
                name,
                layer,
                schemas.intermediate if layer == "intermediate" else schemas.marts,
                materialized,
                model,
                tuple(info.deps),
                columns,
                model.owner or default_owner,
            )
        )
        for col, column in declared.items():
            collector.from_column(name, col, column)
        for exp in model.expectations:
            collector.from_expectation(name, exp)
        if model.sla is not None:
            slas.append(_sla(name, model.sla))
        for dep in info.deps:
            prefix = "silver" if "." in dep else "model"
            edges.append(Edge(f"{prefix}.{dep}", f"model.{name}"))
    for item in spec.expectations:
        collector.from_expectation(item.dataset, item)
    for sla in spec.slas:
        slas.append(_sla(sla.dataset, sla))
    for dashboard in spec.dashboards:
        for chart_model in sorted({c.model for c in dashboard.charts}):
            edges.append(Edge(f"model.{chart_model}", f"dashboard.{dashboard.name}"))
    root = doc.root if doc.root.is_dir() else doc.root.parent
    rel_files = tuple(sorted(_relative(f, doc.root) for f in doc.files))
    label = doc.root.name if doc.root.is_dir() else f"{root.name}/{doc.root.name}"
    return Plan(
        name=spec.platform.name,
        spec_label=label,
        spec_files=rel_files,
        platform=spec.platform,
        orchestration=spec.orchestration,
        storage=spec.storage,
        warehouse=spec.warehouse,
        alerting=spec.alerting,
        routes=default_routes(spec.alerting),
        governance=spec.governance,
        sources=tuple(sources),
        models=tuple(models),
        checks=tuple(collector.checks),
        slas=tuple(_merge_slas(slas)),
        dashboards=tuple(spec.dashboards),
        edges=tuple(sorted(set(edges), key=lambda e: (e.source, e.target))),
    )


def _merge_slas(slas: list[SlaPlan]) -> list[SlaPlan]:
    """One SLA per dataset: later definitions fill in what earlier ones left out."""
    merged: dict[str, SlaPlan] = {}
    for sla in slas:
        old = merged.get(sla.dataset)
        if old is None:
            merged[sla.dataset] = sla
            continue
        merged[sla.dataset] = SlaPlan(
            sla.dataset,
            old.warn_after if old.warn_after is not None else sla.warn_after,
            old.error_after if old.error_after is not None else sla.error_after,
            old.ready_by or sla.ready_by,
            tuple(dict.fromkeys(old.notify + sla.notify)),
        )
    return [merged[k] for k in sorted(merged)]


def _relative(file: str, root: Any) -> str:
    from pathlib import Path

    path, base = Path(file), Path(root)
    for candidate in (base if base.is_dir() else base.parent,):
        try:
            return path.resolve().relative_to(candidate.resolve()).as_posix()
        except ValueError:
            pass
    return path.name
