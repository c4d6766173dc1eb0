"""Lineage target: `lineage.json`, the plan's graph of nodes, edges and columns for catalogs and docs."""

from __future__ import annotations

from typing import Any

from platformgen.plan.build import Plan, PlanColumn
from platformgen.plan.column_lineage import column_lineage
from platformgen.render import dump_json
from platformgen.targets.base import Files


def _columns(columns: tuple[PlanColumn, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "type": c.type,
            "nullable": c.nullable,
            **({"description": c.description} if c.description else {}),
            **({"classification": c.classification} if c.classification else {}),
            **({"tags": list(c.tags)} if c.tags else {}),
        }
        for c in columns
    ]


class LineageTarget:
    """`lineage.json`: sources -> bronze -> raw -> silver -> intermediate -> gold -> dashboards."""

    name = "lineage"
    description = "lineage manifest"

    def render(self, plan: Plan) -> Files:
        schemas = plan.warehouse.schemas
        nodes: list[dict[str, Any]] = []
        for source in plan.sources:
            nodes.append(
                {
                    "id": f"source.{source.name}",
                    "kind": "source",
                    "source_kind": source.kind,
                    "owner": source.owner,
                    "schedule": source.schedule,
                }
            )
            for table in source.tables:
                nodes.append(
                    {
                        "id": f"bronze.{table.key}",
                        "kind": "bronze",
                        "location": f"s3://{plan.storage.buckets.bronze}/{table.bronze_prefix}",
                    }
                )
                nodes.append(
                    {
                        "id": f"raw.{table.raw_table}",
                        "kind": "raw",
                        "relation": f"{schemas.raw}.{table.raw_table}",
                        "columns": _columns(table.columns),
                    }
                )
                nodes.append(
                    {
                        "id": f"silver.{table.key}",
                        "kind": "silver",
                        "owner": table.owner,
                        "relation": f"{schemas.staging}.{table.staging_model}",
                        "primary_key": list(table.primary_key),
                        "columns": _columns(table.silver_columns),
                    }
                )
        lineage = column_lineage(plan)
        for model in plan.models:
            nodes.append(
                {
                    "id": f"model.{model.name}",
                    "kind": model.layer,
                    "owner": model.owner,
                    "relation": f"{model.schema}.{model.name}",
                    "materialized": model.materialized,
                    "columns": _columns(model.columns),
                    "column_lineage": lineage[model.name],
                }
            )
        for dashboard in plan.dashboards:
            nodes.append(
                {
                    "id": f"dashboard.{dashboard.name}",
                    "kind": "dashboard",
                    "title": dashboard.title or dashboard.name.replace("_", " ").title(),
                }
            )
        document = {
            "generated_by": {"tool": "platformgen", "spec": plan.spec_label, "note": "generated file: do not edit"},
            "platform": plan.name,
            "nodes": nodes,
            "edges": [{"from": e.source, "to": e.target} for e in plan.edges],
            "checks": [
                {
                    "id": c.id,
                    "dataset": c.dataset,
                    "kind": c.kind,
                    "severity": c.severity,
                    **({"column": c.column} if c.column else {}),
                    **({"columns": list(c.columns)} if c.columns else {}),
                }
                for c in plan.checks
            ],
        }
        return {"lineage.json": dump_json(document)}
