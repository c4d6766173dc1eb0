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


def _project_root(sync: dict[str, Any]) -> str:
    """PLATFORMGEN_PROJECT_ROOT, else the spec's orchestration.project_root."""
    import os

    root = os.environ.get("PLATFORMGEN_PROJECT_ROOT") or str(sync.get("project_root") or "")
    if not root:
        raise RuntimeError("no project root: set PLATFORMGEN_PROJECT_ROOT or orchestration.project_root in the spec")
    return root


def openmetadata_ingest(
    platform: dict[str, Any], sync: dict[str, Any], workflow: str, **context: Any
) -> dict[str, Any]:
    """`metadata ingest -c <project root>/openmetadata/workflows/<workflow>.yaml` as a subprocess.

    The executable is PLATFORMGEN_OM_EXECUTABLE, else sync["openmetadata"]["executable"] (`metadata`). The
    process gets PLATFORMGEN_PROJECT_ROOT and the resolved warehouse connection (PLATFORMGEN_WAREHOUSE_* and
    DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD, as dbt does), which the workflow files reference as ${VAR};
    its output goes to the task log and a non-zero exit fails the task.
    """
    import os
    import shutil
    from pathlib import Path

    from platformgen.runtime.dbt_runner import run_dbt, warehouse_env

    config = sync["openmetadata"]
    name = os.environ.get("PLATFORMGEN_OM_EXECUTABLE") or str(config.get("executable") or "metadata")
    executable = shutil.which(name)
    if executable is None:
        raise RuntimeError(
            f"OpenMetadata's '{name}' command was not found: install openmetadata-ingestion (its own virtualenv is "
            "best) and set PLATFORMGEN_OM_EXECUTABLE to its bin/metadata"
        )
    root = _project_root(sync)
    path = Path(root) / config["workflows"][workflow]
    if not path.is_file():
        raise RuntimeError(f"no OpenMetadata workflow at {path}: deploy the compiled openmetadata/ folder there")
    env = dict(os.environ)
    env.setdefault("PLATFORMGEN_PROJECT_ROOT", root)
    for key, value in warehouse_env(platform).items():
        env.setdefault(key, value)
    command = [executable, "ingest", "-c", str(path)]
    log.info("running %s", " ".join(command))
    result = run_dbt(command, env=env, cwd=Path(root))
    if result.returncode != 0:
        tail = "\n".join(result.lines[-30:])
        raise RuntimeError(f"OpenMetadata workflow '{workflow}' failed (exit code {result.returncode}):\n{tail}")
    return {"workflow": workflow, "returncode": result.returncode}


def openmetadata_governance(platform: dict[str, Any], sync: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Apply openmetadata/governance.json (owners, tags, glossary) after the ingestion; see deploy/openmetadata.py.

    Server and token from OPENMETADATA_URL (default http://openmetadata-server:8585/api) and OPENMETADATA_JWT_TOKEN.
    """
    import os
    from pathlib import Path

    from platformgen.deploy.openmetadata import apply_governance_file
    from platformgen.runtime.dbt_runner import warehouse_env

    env = {**warehouse_env(platform), **os.environ}
    path = Path(_project_root(sync)) / sync["openmetadata"]["governance"]
    report = apply_governance_file(path, env=env).to_dict()
    log.info("OpenMetadata governance: %s", {k: len(v) for k, v in report.items()})
    if report["pending"]:
        log.warning("tables not in OpenMetadata yet (ingest them first): %s", ", ".join(report["pending"]))
    return report


def superset_refresh(platform: dict[str, Any], sync: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Refresh the columns of the platform's Superset datasets (PUT /api/v1/dataset/<id>/refresh).

    Credentials from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD, the URL from SUPERSET_URL (default
    http://superset:8088). A dataset Superset does not have (the bundle was never imported) fails the task.
    """
    import os

    from platformgen.deploy.superset import DEFAULT_URL, refresh_datasets

    user, password = os.environ.get("SUPERSET_ADMIN_USER"), os.environ.get("SUPERSET_ADMIN_PASSWORD")
    if not user or not password:
        raise RuntimeError("set SUPERSET_ADMIN_USER and SUPERSET_ADMIN_PASSWORD for the Superset refresh")
    url = os.environ.get("SUPERSET_URL") or DEFAULT_URL
    result = refresh_datasets(url, user, password, sync["superset"]["datasets"])
    log.info("refreshed %d Superset dataset(s)", len(result["refreshed"]))
    if result["missing"]:
        raise RuntimeError(
            f"Superset has no dataset {', '.join(result['missing'])}: import the bundle first (platformgen up)"
        )
    return result
