"""Data quality at run time: validate one layer with the generated GX 0.18 suites, record, alert, fail on errors.

`run_quality(platform, quality, layer, run_id=...)` (called by `tasks.run_quality` from the quality DAG):

1. Finds the GX project: ``$PLATFORMGEN_PROJECT_ROOT`` (else ``quality["project_root"]``) / ``great_expectations``.
2. Builds an ephemeral GX 0.18 context and adds every generated suite (all layers, so the Data Docs index
   lists them all) and the layer's checkpoint (``checkpoints/<layer>.yml``).
3. Batches:

   - silver and gold: table assets of the ``warehouse`` SQL datasource on the platform's warehouse
     (psycopg2 URL; a unix-socket host goes into the query string, as GX rejects a socket URL's empty host).
     The session time zone is UTC. A relation that does not exist fails every check of its suite.
   - bronze: the files of one ingestion run per dataset, read from S3 with pandas into a dataframe asset of
     the ``bronze`` pandas datasource. The run is this Airflow run's folder
     (``<prefix>ingest_date=<date of this run>/run_id=<run>/``) when it exists, which is the case when the
     check runs in the ingesting DAG run; otherwise the most recently written ``run_id=`` folder of the newest
     ``ingest_date=`` partition. A dataset without bronze files is skipped (logged), not failed: an
     incremental run may write nothing.

4. Freshness: GX 0.18 compares a SQL column's max as an ISO string and evaluates ``now()`` in the worker's
   local time zone. The runtime therefore supplies the value of each ``now() - timedelta(seconds=N)``
   parameter itself (GX's ``$PARAMETER.<expression>`` runtime value) as a UTC ``YYYY-MM-DDTHH:MM:SS`` string,
   which orders correctly against timestamptz (UTC session), timestamp (taken as UTC) and date values.
5. Writes one ``quality_results`` row per expectation result, raises one ``quality`` alert per dataset with
   failures (severity: the highest failing one), builds Data Docs into ``$PLATFORMGEN_DATA_DOCS_DIR`` (else
   ``great_expectations/uncommitted/data_docs/local_site``; validation results are kept next to it so the
   index shows the history) and logs where ``index.html`` is.
6. Raises QualityCheckFailed when an error-severity check failed; warn-severity failures only alert.

Sample values of columns classified ``pii`` are left out of ``quality_results.details``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from platformgen.runtime.settings import PgParams

log = logging.getLogger("platformgen.runtime.quality")

PROJECT_ROOT_ENV = "PLATFORMGEN_PROJECT_ROOT"
DATA_DOCS_ENV = "PLATFORMGEN_DATA_DOCS_DIR"
LAYERS = ("bronze", "silver", "gold")
SITE_NAME = "local_site"
#: Items of a list (sample values, unexpected rows) kept in quality_results.details.
MAX_DETAIL_ITEMS = 20
MAX_MESSAGE_CHARS = 2000
UNEXPECTED_COUNT = "_unexpected_count"
_NOW_MINUS = re.compile(r"^\s*now\(\)\s*-\s*timedelta\(\s*seconds\s*=\s*(\d+)\s*\)\s*$")
_RANK = {"warn": 1, "error": 2}
_SAMPLE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list")


class QualityConfigError(RuntimeError):
    """The quality config or the GX project folder is missing or wrong; the message says what to set."""


class QualityCheckFailed(RuntimeError):
    """At least one error-severity check failed; every result is recorded and alerted already."""

    #: Tells the failure callback that the alerts went out (see callbacks.on_task_failure).
    already_alerted = True


@dataclass(frozen=True)
class CheckOutcome:
    """One expectation result, as stored in data_platform.quality_results."""

    dataset: str
    layer: str
    check_id: str
    check_kind: str
    column: str | None
    severity: str
    success: bool
    observed_value: str | None
    unexpected: int | None
    details: dict[str, Any]

    def label(self) -> str:
        """`dataset: check_id (observed)` for messages."""
        observed = f" ({self.observed_value})" if self.observed_value else ""
        if not observed and self.details.get("error"):
            observed = f" ({str(self.details['error'])[:200]})"
        return f"{self.dataset}: {self.check_id}{observed}"


@dataclass
class QualityReport:
    """What one layer's run found."""

    layer: str
    run_id: str
    outcomes: list[CheckOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def error_failures(self) -> list[CheckOutcome]:
        return [o for o in self.failures if o.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        """A small JSON summary (the task's XCom)."""
        return {
            "layer": self.layer,
            "run_id": self.run_id,
            "checks": len(self.outcomes),
            "failed": sorted({o.check_id for o in self.failures}),
            "failed_error": sorted({o.check_id for o in self.error_failures}),
            "skipped": list(self.skipped),
            "data_docs": self.data_docs,
        }


# --------------------------------------------------------------------------- locations and connection


def project_dir(quality: dict[str, Any]) -> Path:
    """The GX project folder: $PLATFORMGEN_PROJECT_ROOT (or quality["project_root"]) / quality["gx_dir"]."""
    root = os.environ.get(PROJECT_ROOT_ENV) or str(quality.get("project_root") or "")
    if not root:
        raise QualityConfigError(f"no project root: set {PROJECT_ROOT_ENV} or orchestration.project_root in the spec")
    path = Path(root) / str(quality.get("gx_dir") or "great_expectations")
    if not path.is_dir():
        raise QualityConfigError(
            f"no Great Expectations project at {path}: copy the compiled output there or set {PROJECT_ROOT_ENV} "
            "to the folder that contains great_expectations/"
        )
    return path


def artifact_dirs(gx_dir: Path) -> tuple[Path, Path]:
    """(Data Docs site folder, validation results folder)."""
    custom = os.environ.get(DATA_DOCS_ENV)
    if custom:
        docs = Path(custom)
        return docs, docs / ".validation_results"
    uncommitted = gx_dir / "uncommitted"
    return uncommitted / "data_docs" / SITE_NAME, uncommitted / "validations"


def sqlalchemy_url(params: PgParams) -> str:
    """A SQLAlchemy psycopg2 URL with a UTC session (contains the password: never log it).

    A unix-socket host goes into the query string behind a placeholder host, which GX accepts.
    """
    auth = quote(params.user, safe="") + (":" + quote(params.password, safe="") if params.password else "")
    query: dict[str, str] = {}
    if params.host.startswith("/"):
        netloc = f"{auth}@localhost"
        query.update({"host": params.host, "port": str(params.port)})
    else:
        netloc = f"{auth}@{params.host}:{params.port}"
        query["sslmode"] = params.sslmode
    query["options"] = "-c timezone=UTC"
    return f"postgresql+psycopg2://{netloc}/{quote(params.dbname, safe='')}?{urlencode(query, quote_via=quote)}"


# --------------------------------------------------------------------------- pure helpers


def freshness_cutoffs(suite: dict[str, Any], now: dt.datetime) -> int:
    """Give every `now() - timedelta(seconds=N)` parameter of the suite its UTC value; returns how many.

    GX uses a `$PARAMETER.<expression>` entry next to `$PARAMETER` as the parameter's value for this run.
    """
    utc_now = now.astimezone(dt.UTC) if now.tzinfo else now.replace(tzinfo=dt.UTC)
    count = 0
    for expectation in suite.get("expectations", []):
        for value in expectation.get("kwargs", {}).values():
            if not isinstance(value, dict) or not isinstance(value.get("$PARAMETER"), str):
                continue
            match = _NOW_MINUS.match(value["$PARAMETER"])
            if match is None:
                continue
            cutoff = utc_now - dt.timedelta(seconds=int(match.group(1)))
            value[f"$PARAMETER.{value['$PARAMETER']}"] = cutoff.strftime("%Y-%m-%dT%H:%M:%S")
            count += 1
    return count


def latest_bronze_run(objects: Iterable[tuple[str, dt.datetime]], suffix: str) -> list[str]:
    """The keys of the most recently written `run_id=` folder among (key, last_modified), sorted."""
    runs: dict[str, list[tuple[str, dt.datetime]]] = {}
    for key, modified in objects:
        if not key.endswith(suffix) or "/run_id=" not in key:
            continue
        folder = key.rsplit("/", 1)[0]
        runs.setdefault(folder, []).append((key, modified))
    if not runs:
        return []
    newest = max(runs, key=lambda f: (max(m for _, m in runs[f]), f))
    return sorted(k for k, _ in runs[newest])


def _truncate(value: Any) -> Any:
    if isinstance(value, list):
        return value[:MAX_DETAIL_ITEMS]
    return value


def outcome_from_result(
    entry: dict[str, Any], layer: str, result: dict[str, Any], extra: dict[str, Any] | None = None
) -> CheckOutcome:
    """A CheckOutcome from one GX ExpectationValidationResult (as its JSON dict) of the entry's suite."""
    from platformgen.runtime.settings import scrub

    config = result.get("expectation_config") or {}
    meta = config.get("meta") or {}
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    body = result.get("result") or {}
    exception = result.get("exception_info") or {}
    pii = bool(meta.get("pii"))
    details: dict[str, Any] = {
        "suite": entry["suite"],
        "expectation_type": config.get("expectation_type"),
        "kwargs": kwargs,
        **(extra or {}),
    }
    for key in ("threshold", "to", "field", "condition"):
        if key in meta:
            details[key] = meta[key]
    unexpected: int | None = None
    observed: str | None = None
    if config.get("expectation_type") == "unexpected_rows_expectation":
        rows = ((body.get("details") or {}).get("unexpected_rows")) or []
        unexpected = int(rows[0].get(UNEXPECTED_COUNT) or 0) if rows else 0
        observed = f"{unexpected} unexpected row{'s' if unexpected != 1 else ''}"
        details["unexpected_rows"] = [
            {k: v for k, v in row.items() if k != UNEXPECTED_COUNT} for row in rows[:MAX_DETAIL_ITEMS]
        ]
    else:
        if "unexpected_count" in body:
            unexpected = int(body["unexpected_count"] or 0)
            observed = f"{unexpected} unexpected of {body.get('element_count')} rows"
        if "observed_value" in body:
            value = body["observed_value"]
            observed = value if isinstance(value, str) else json.dumps(value, default=str)
        details["result"] = {
            k: _truncate(v) for k, v in body.items() if not (pii and k in _SAMPLE_KEYS) and k != "details"
        }
    message = exception_message(exception)
    if message:
        # The expectation could not be evaluated (bad column, SQL error): there is no observation.
        details["error"] = scrub(str(message))[:MAX_MESSAGE_CHARS]
        observed, unexpected = None, None
    column = kwargs.get("column") or meta.get("column")
    if column is None and "column_list" in kwargs:
        column = ", ".join(str(c) for c in kwargs["column_list"])
    return CheckOutcome(
        dataset=entry["dataset"],
        layer=layer,
        check_id=str(meta.get("check_id") or config.get("expectation_type")),
        check_kind=str(meta.get("check_kind") or config.get("expectation_type")),
        column=None if column is None else str(column),
        severity=str(meta.get("severity") or "error"),
        success=bool(result.get("success")),
        observed_value=None if observed is None else str(observed)[:MAX_MESSAGE_CHARS],
        unexpected=unexpected,
        details=details,
    )


def exception_message(info: dict[str, Any]) -> str | None:
    """The error of a result's exception_info: flat, or keyed by the metric that failed (GX 0.18 does both)."""
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        return str(info.get("exception_message") or "") or "the expectation raised an error"
    messages = [
        str(v.get("exception_message") or "")
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(m for m in messages if m)) or None


def failed_outcomes(entry: dict[str, Any], layer: str, suite: dict[str, Any], error: str) -> list[CheckOutcome]:
    """Every expectation of a suite as failed, when its batch cannot be read at all."""
    out = []
    for expectation in suite.get("expectations", []):
        result = {
            "success": False,
            "expectation_config": expectation,
            "result": {},
            "exception_info": {"raised_exception": True, "exception_message": error},
        }
        out.append(outcome_from_result(entry, layer, result))
    return out


def alert_message(layer: str, dataset: str, outcomes: list[CheckOutcome]) -> str:
    """The alert text of one dataset's failures."""
    failed = [o for o in outcomes if not o.success]
    lines = [f"{len(failed)} of {len(outcomes)} {layer} quality checks failed on {dataset}:"]
    lines += [f"- [{o.severity}] {o.label().split(': ', 1)[1]}" for o in failed]
    return "\n".join(lines)


# --------------------------------------------------------------------------- GX


@contextlib.contextmanager
def _gx_quiet() -> Iterator[None]:
    """GX logs every step at INFO and warns about its own dependencies: keep the task log to what matters."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    if level == logging.NOTSET or level < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """GX prints notices (e.g. about queries without {batch}) to stdout: send them to the debug log."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            log.debug("great_expectations: %s", line)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def build_context(docs_dir: Path, validations_dir: Path) -> Any:
    """An ephemeral GX 0.18 context: suites and checkpoints in memory, validation results and Data Docs on disk."""
    from great_expectations.data_context.data_context.context_factory import get_context

    in_memory = {"class_name": "InMemoryStoreBackend"}
    if _writable(validations_dir):
        validations: dict[str, Any] = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(validations_dir),
        }
    else:
        log.warning("validation results folder %s is not writable: results are kept in memory only", validations_dir)
        validations = in_memory
    config = {
        "config_version": 3.0,
        "expectations_store_name": "expectations_store",
        "validations_store_name": "validations_store",
        "evaluation_parameter_store_name": "evaluation_parameter_store",
        "checkpoint_store_name": "checkpoint_store",
        "stores": {
            "expectations_store": {"class_name": "ExpectationsStore", "store_backend": in_memory},
            "validations_store": {"class_name": "ValidationsStore", "store_backend": validations},
            "evaluation_parameter_store": {"class_name": "EvaluationParameterStore"},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": in_memory},
        },
        "data_docs_sites": {
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "validation_results_limit": 500},
            }
        },
        "anonymous_usage_statistics": {"enabled": False},
        "progress_bars": {"globally": False, "profilers": False, "metric_calculations": False},
    }
    return get_context(project_config=config, mode="ephemeral")


def _load_yaml(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QualityConfigError(f"cannot read checkpoint {path}: {exc.strerror or exc}: compile again") from exc
    if not isinstance(data, dict):
        raise QualityConfigError(f"{path} is not a GX checkpoint (expected a mapping)")
    return data


def _load_suite(gx_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    path = gx_dir / str(entry["suite_file"])
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QualityConfigError(f"cannot read suite {entry['suite']} from {path}: {exc}") from exc
    if not isinstance(suite, dict):
        raise QualityConfigError(f"{path} is not a GX suite")
    return suite


def missing_relations(platform: dict[str, Any], relations: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (schema, relation) pairs that are neither a table nor a view in the warehouse."""
    from platformgen.runtime.warehouse import connect_warehouse, quote_ident

    missing = set()
    with connect_warehouse(platform, autocommit=True) as conn, conn.cursor() as cur:
        for schema, relation in relations:
            cur.execute("select to_regclass(%s)", (f"{quote_ident(schema)}.{quote_ident(relation)}",))
            row = cur.fetchone()
            if row is None or row[0] is None:
                missing.add((schema, relation))
    return missing


def _read_bronze(
    platform: dict[str, Any], entry: dict[str, Any], run_id: str, ingest_date: str | None
) -> tuple[Any, list[str]]:
    """(dataframe, keys) of the bronze run to validate; (None, []) when the dataset has no files."""
    import pandas as pd

    from platformgen.runtime.bronze import safe_run_id
    from platformgen.runtime.settings import s3_client, s3_params

    storage = platform["storage"]
    bucket = str(storage["buckets"]["bronze"])
    suffix = ".jsonl" if storage.get("bronze_format") == "jsonl" else ".parquet"
    prefix = str(entry["bronze_prefix"])
    client = s3_client(s3_params(platform))
    keys: list[str] = []
    if ingest_date:
        own = f"{prefix}ingest_date={ingest_date}/run_id={safe_run_id(run_id)}/"
        keys = sorted(k for k, _ in _list_objects(client, bucket, own) if k.endswith(suffix))
    if not keys:
        partitions = sorted(_list_folders(client, bucket, prefix, "ingest_date="))
        if partitions:
            keys = latest_bronze_run(_list_objects(client, bucket, partitions[-1]), suffix)
    if not keys:
        return None, []
    frames = []
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if suffix == ".parquet":
            frames.append(pd.read_parquet(io.BytesIO(body)))
        else:
            frames.append(pd.read_json(io.BytesIO(body), lines=True))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame, [f"s3://{bucket}/{k}" for k in keys]


def _list_objects(client: Any, bucket: str, prefix: str) -> list[tuple[str, dt.datetime]]:
    out: list[tuple[str, dt.datetime]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend((obj["Key"], obj["LastModified"]) for obj in page.get("Contents", []))
    return out


def _list_folders(client: Any, bucket: str, prefix: str, start: str) -> list[str]:
    out: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []) if p["Prefix"][len(prefix) :].startswith(start))
    return out


@dataclass
class _Prepared:
    """A suite ready to validate, or the failures that replace its validation."""

    entry: dict[str, Any]
    suite: dict[str, Any]
    batch_request: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    failed: list[CheckOutcome] = field(default_factory=list)


def _prepare_sql(context: Any, platform: dict[str, Any], layer: str, prepared: list[_Prepared]) -> None:
    from platformgen.runtime.settings import warehouse_params

    params = warehouse_params(platform)
    datasource = context.sources.add_sql(
        name="warehouse", connection_string=sqlalchemy_url(params), create_temp_table=False
    )
    missing = missing_relations(platform, [(str(p.entry["schema"]), str(p.entry["relation"])) for p in prepared])
    for item in prepared:
        schema, relation = str(item.entry["schema"]), str(item.entry["relation"])
        item.extra = {"relation": f"{schema}.{relation}", "model_layer": item.entry.get("model_layer")}
        if (schema, relation) in missing:
            error = f"relation {schema}.{relation} does not exist (has dbt built it?)"
            log.error("%s: %s", item.entry["dataset"], error)
            item.failed = failed_outcomes(item.entry, layer, item.suite, error)
            continue
        datasource.add_table_asset(name=str(item.entry["asset"]), table_name=relation, schema_name=schema)


def _prepare_bronze(
    context: Any, platform: dict[str, Any], prepared: list[_Prepared], run_id: str, ingest_date: str | None
) -> list[str]:
    from platformgen.runtime.settings import scrub

    datasource = context.sources.add_pandas(name="bronze")
    skipped = []
    for item in prepared:
        try:
            frame, files = _read_bronze(platform, item.entry, run_id, ingest_date)
        except Exception as exc:
            error = scrub(f"cannot read the bronze files: {type(exc).__name__}: {exc}")
            log.error("%s: %s", item.entry["dataset"], error)
            item.failed = failed_outcomes(item.entry, "bronze", item.suite, error)
            continue
        if frame is None:
            log.info("%s: no bronze files under %s: skipped", item.entry["dataset"], item.entry["bronze_prefix"])
            skipped.append(str(item.entry["dataset"]))
            continue
        log.info("%s: validating %d row(s) of %s", item.entry["dataset"], len(frame), ", ".join(files))
        item.extra = {"bronze_files": files, "rows": len(frame)}
        asset = datasource.add_dataframe_asset(name=str(item.entry["asset"]))
        item.batch_request = asset.build_batch_request(dataframe=frame)
    return skipped


def _run_checkpoint(
    context: Any, gx_dir: Path, layer: str, prepared: list[_Prepared], run_id: str, now: dt.datetime
) -> tuple[list[CheckOutcome], list[Any]]:
    """Run the layer's checkpoint over the prepared suites; returns outcomes and validation result ids."""
    from great_expectations.core.run_identifier import RunIdentifier

    from platformgen.runtime.bronze import safe_run_id

    ready = [p for p in prepared if not p.failed and (p.batch_request is not None or layer != "bronze")]
    if not ready:
        return [], []
    checkpoint = _load_yaml(gx_dir / "checkpoints" / f"{layer}.yml")
    by_suite = {v["expectation_suite_name"]: v for v in checkpoint.get("validations", [])}
    validations = []
    for item in ready:
        suite_name = item.entry["suite"]
        if suite_name not in by_suite:
            raise QualityConfigError(f"checkpoint {layer} has no validation of suite {suite_name}: compile again")
        validation = dict(by_suite[suite_name])
        if item.batch_request is not None:
            validation["batch_request"] = item.batch_request
        validations.append(validation)
    # Data Docs are built after the run, where a failure to write them only warns.
    checkpoint["action_list"] = [
        a for a in checkpoint.get("action_list", []) if a["action"]["class_name"] != "UpdateDataDocsAction"
    ]
    checkpoint["validations"] = validations
    with _quiet():
        added = context.add_or_update_checkpoint(**checkpoint)
        result = added.run(run_id=RunIdentifier(run_name=safe_run_id(run_id), run_time=now))
    entries = {p.entry["suite"]: p for p in ready}
    outcomes: list[CheckOutcome] = []
    ids = []
    for identifier, run_result in result.run_results.items():
        ids.append(identifier)
        validation = run_result["validation_result"]
        item = entries[validation.meta["expectation_suite_name"]]
        for expectation_result in validation.results:
            outcomes.append(outcome_from_result(item.entry, layer, expectation_result.to_json_dict(), item.extra))
    return outcomes, ids


def _build_docs(context: Any, docs_dir: Path, ids: list[Any]) -> str | None:
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    suites = [ExpectationSuiteIdentifier(name) for name in context.list_expectation_suite_names()]
    try:
        with _quiet():
            context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[*suites, *ids])
    except Exception as exc:
        log.warning("Data Docs could not be built in %s: %s: %s", docs_dir, type(exc).__name__, exc)
        return None
    index = docs_dir / "index.html"
    log.info("Data Docs: %s", index)
    return str(index)


# --------------------------------------------------------------------------- recording and alerting


def record_outcomes(platform: dict[str, Any], run_id: str, outcomes: list[CheckOutcome]) -> None:
    """Insert one quality_results row per outcome, in one transaction."""
    from platformgen.runtime.warehouse import connect_warehouse, ensure_platform_schema, quote_ident

    if not outcomes:
        return
    schema = quote_ident(platform["schemas"]["platform"])
    rows = [
        (
            run_id,
            o.dataset,
            o.layer,
            o.check_id,
            o.check_kind,
            o.column,
            o.severity,
            o.success,
            o.observed_value,
            o.unexpected,
            json.dumps(o.details, default=str, ensure_ascii=False),
        )
        for o in outcomes
    ]
    with connect_warehouse(platform) as conn:
        ensure_platform_schema(conn, platform)
        with conn.cursor() as cur:
            cur.executemany(
                f"insert into {schema}.quality_results (run_id, dataset, layer, check_id, check_kind, column_name, "
                "severity, success, observed_value, unexpected, details) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                rows,
            )


def alert_failures(
    platform: dict[str, Any],
    report: QualityReport,
    entries: list[dict[str, Any]],
    *,
    dag_id: str | None,
    task_id: str | None,
) -> int:
    """One `quality` alert per dataset with failed checks; returns how many were raised."""
    from platformgen.runtime.alerts import raise_alert

    owners = {str(e["dataset"]): e.get("owner") for e in entries}
    by_dataset: dict[str, list[CheckOutcome]] = {}
    for outcome in report.outcomes:
        by_dataset.setdefault(outcome.dataset, []).append(outcome)
    raised = 0
    for dataset, outcomes in by_dataset.items():
        failed = [o for o in outcomes if not o.success]
        if not failed:
            continue
        severity = max((o.severity for o in failed), key=lambda s: _RANK.get(s, 2))
        raise_alert(
            platform,
            kind="quality",
            severity=severity,
            message=alert_message(report.layer, dataset, outcomes),
            dataset=dataset,
            dag_id=dag_id,
            task_id=task_id,
            run_id=report.run_id,
            owner=owners.get(dataset),
        )
        raised += 1
    return raised


# --------------------------------------------------------------------------- entry point


def _validate(
    report: QualityReport,
    platform: dict[str, Any],
    quality: dict[str, Any],
    gx_dir: Path,
    ingest_date: str | None,
    now: dt.datetime,
) -> None:
    """Validate the report's layer with GX; fills in outcomes, skipped datasets and the Data Docs path."""
    from great_expectations.core import ExpectationSuite

    layer = report.layer
    docs_dir, validations_dir = artifact_dirs(gx_dir)
    context = build_context(docs_dir, validations_dir)
    prepared: list[_Prepared] = []
    with _quiet():
        for other_layer, other_entries in (quality.get("layers") or {}).items():
            for entry in other_entries or []:
                suite = _load_suite(gx_dir, entry)
                if other_layer == layer:
                    freshness_cutoffs(suite, now)
                    prepared.append(_Prepared(entry, suite))
                context.add_or_update_expectation_suite(expectation_suite=ExpectationSuite(**suite))
    if layer == "bronze":
        report.skipped = _prepare_bronze(context, platform, prepared, report.run_id, ingest_date)
    else:
        _prepare_sql(context, platform, layer, prepared)
    outcomes, ids = _run_checkpoint(context, gx_dir, layer, prepared, report.run_id, now)
    report.outcomes = [o for p in prepared for o in p.failed] + outcomes
    report.data_docs = _build_docs(context, docs_dir, ids)


def run_quality(
    platform: dict[str, Any],
    quality: dict[str, Any],
    layer: str,
    *,
    run_id: str,
    dag_id: str | None = None,
    task_id: str | None = None,
    ingest_date: str | None = None,
    now: dt.datetime | None = None,
) -> QualityReport:
    """Validate every suite of `layer`, record and alert the results; raise QualityCheckFailed on error failures."""
    if layer not in LAYERS:
        raise QualityConfigError(f"unknown quality layer {layer!r}: expected one of {', '.join(LAYERS)}")
    entries: list[dict[str, Any]] = list((quality.get("layers") or {}).get(layer) or [])
    report = QualityReport(layer, run_id)
    if not entries:
        log.info("no %s quality checks in this platform", layer)
        return report
    now = now or dt.datetime.now(dt.UTC)
    gx_dir = project_dir(quality)
    with _gx_quiet():
        _validate(report, platform, quality, gx_dir, ingest_date, now)
    record_outcomes(platform, run_id, report.outcomes)
    alert_failures(platform, report, entries, dag_id=dag_id, task_id=task_id)
    passed = len(report.outcomes) - len(report.failures)
    log.info(
        "%s quality: %d check(s) passed, %d failed (%d error), %d dataset(s) skipped",
        layer,
        passed,
        len(report.failures),
        len(report.error_failures),
        len(report.skipped),
    )
    for outcome in report.failures:
        log.warning("failed [%s] %s", outcome.severity, outcome.label())
    if report.error_failures:
        lines = [f"- {o.label()}" for o in report.error_failures]
        raise QualityCheckFailed(
            f"{len(report.error_failures)} error-severity {layer} quality check(s) failed:\n" + "\n".join(lines)
        )
    return report
