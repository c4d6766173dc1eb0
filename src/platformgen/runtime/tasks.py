"""Entry points that generated DAG tasks call. Cheap to import: heavy modules load inside the functions."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("platformgen.runtime")


def _ingest_date(context: dict[str, Any]) -> str:
    stamp = context.get("data_interval_end") or context.get("logical_date")
    return stamp.strftime("%Y-%m-%d") if stamp is not None else "1970-01-01"


def extract(platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Extract one dataset into bronze; returns the batch manifest (pushed to XCom for the load)."""
    run_id = str(context.get("run_id") or "manual")
    ingest_date = _ingest_date(context)
    kind = source["kind"]
    if kind == "postgres":
        from platformgen.runtime.extract_postgres import extract_table

        batch = extract_table(platform, source, table, run_id=run_id, ingest_date=ingest_date)
    elif kind == "api":
        from platformgen.runtime.extract_api import extract_endpoint

        batch = extract_endpoint(platform, source, table, run_id=run_id, ingest_date=ingest_date)
    elif kind == "file":
        from platformgen.runtime.extract_files import extract_files

        batch = extract_files(platform, source, table, run_id=run_id, ingest_date=ingest_date)
    else:  # pragma: no cover - the compiler only emits known kinds
        raise ValueError(f"unknown source kind {kind!r}")
    log.info(
        "extracted %s rows of %s.%s into %d bronze file(s)", batch.rows, source["name"], table["name"], len(batch.files)
    )
    return batch.to_dict()


def load(platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Load the bronze files of this run's extract into raw, in one transaction with the watermark."""
    from platformgen.runtime.bronze import BronzeBatch
    from platformgen.runtime.load import load_batch

    ti = context["ti"]
    group = ti.task_id.rsplit(".", 1)[0] if "." in ti.task_id else ""
    extract_id = f"{group}.extract" if group else "extract"
    manifest = ti.xcom_pull(task_ids=extract_id)
    if manifest is None:
        raise RuntimeError(f"no bronze manifest from task {extract_id}: run the extract first")
    result = load_batch(platform, source, table, BronzeBatch.from_dict(manifest))
    log.info("loaded %s rows into raw.%s", result.get("rows"), table["raw_table"])
    return result


def dbt_build(platform: dict[str, Any], dbt: dict[str, Any], layer: str, **context: Any) -> dict[str, Any]:
    """`dbt build` of one layer (models/<layer>) as a subprocess; dbt's output goes to the task log."""
    from platformgen.runtime.dbt_runner import dbt_build as run_dbt_build

    result = run_dbt_build(dbt, layer, platform=platform)
    return {"layer": layer, "returncode": result.returncode, "summary": result.summary}


def check_slas(platform: dict[str, Any], slas: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
    """Freshness and ready-by deadlines of every SLA; records and alerts misses, fails on error-severity ones."""
    from platformgen.runtime.sla import check_slas as run_check_slas

    run_id = str(context.get("run_id") or "manual")
    return run_check_slas(platform, slas, run_id=run_id).to_dict()


def run_quality(platform: dict[str, Any], quality: dict[str, Any], layer: str, **context: Any) -> dict[str, Any]:
    """Validate one layer (bronze, silver or gold) with the generated GX suites; see runtime/quality.py.

    Records every result in quality_results and alerts failures; raises QualityCheckFailed when an
    error-severity check failed (warn-severity failures only alert). Returns a summary for XCom.
    """
    from platformgen.runtime.quality import run_quality as run_layer

    ti = context.get("ti")
    has_date = context.get("data_interval_end") or context.get("logical_date")
    report = run_layer(
        platform,
        quality,
        layer,
        run_id=str(context.get("run_id") or "manual"),
        dag_id=getattr(ti, "dag_id", None),
        task_id=getattr(ti, "task_id", None),
        ingest_date=_ingest_date(context) if has_date else None,
    )
    return report.to_dict()
