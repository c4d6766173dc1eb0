"""The bronze layer: where extracted files go, and the manifest an extract hands to its load."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def safe_run_id(run_id: str) -> str:
    """An Airflow run id made safe for object keys (':' and '+' become '_')."""
    return _UNSAFE.sub("_", run_id).strip("_") or "run"


def bronze_key(table: dict[str, Any], run_id: str, ingest_date: str, part: int = 0, ext: str = "parquet") -> str:
    """`<source>/<table>/ingest_date=YYYY-MM-DD/run_id=<run>/part-00000.<ext>` (table["bronze_prefix"] is `<source>/<table>/`)."""
    return f"{table['bronze_prefix']}ingest_date={ingest_date}/run_id={safe_run_id(run_id)}/part-{part:05d}.{ext}"


def quarantine_key(table: dict[str, Any], run_id: str, ingest_date: str, source_file: str) -> str:
    """Where malformed rows of a source file are kept: `_quarantine/<source>/<table>/ingest_date=.../run_id=.../<file>.jsonl`."""
    name = _UNSAFE.sub("_", source_file.rsplit("/", 1)[-1])
    return f"_quarantine/{table['bronze_prefix']}ingest_date={ingest_date}/run_id={safe_run_id(run_id)}/{name}.jsonl"


@dataclass
class BronzeFile:
    """One file written to bronze."""

    key: str
    rows: int
    bytes: int
    source_file: str | None = None  # the landing file it came from (file sources)
    checksum: str | None = None  # sha256 of the landing file (file sources)


@dataclass
class BronzeBatch:
    """What one extract wrote; passed to the load task through XCom (plain JSON)."""

    source: str
    dataset: str
    run_id: str
    bucket: str
    files: list[BronzeFile] = field(default_factory=list)
    cursor: str | None = None  # incremental cursor column
    watermark: str | None = None  # the new watermark, committed by the load
    quarantined_rows: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BronzeBatch:
        files = [BronzeFile(**f) for f in data.get("files", [])]
        return cls(**{**data, "files": files})
