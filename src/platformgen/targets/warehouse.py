"""Warehouse target: the bootstrap SQL for schemas, data_platform tables and raw landing tables."""

from __future__ import annotations

from platformgen.plan.build import Plan
from platformgen.render import render_template
from platformgen.runtime.ddl import platform_tables_sql
from platformgen.targets.base import Files


class WarehouseTarget:
    """`warehouse/bootstrap.sql`: idempotent DDL run before the first ingestion."""

    name = "warehouse"
    description = "warehouse bootstrap SQL"

    def render(self, plan: Plan) -> Files:
        schemas = plan.warehouse.schemas
        text = render_template(
            "warehouse/bootstrap.sql.j2",
            plan=plan,
            schemas=[schemas.raw, schemas.staging, schemas.intermediate, schemas.marts, schemas.platform],
            ps=schemas.platform,
            raw=schemas.raw,
            platform_ddl=platform_tables_sql(schemas.platform),
        )
        return {"warehouse/bootstrap.sql": text}
