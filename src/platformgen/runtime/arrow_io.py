"""Arrow, Parquet and S3 helpers shared by every extractor and the load: bronze schema, writes, reads.

Bronze files are Parquet, one schema per dataset: `arrow_schema(table)` maps the spec's column vocabulary to
Arrow types that the load can COPY into PostgreSQL as they are (binary COPY needs the Arrow type to match the
column type exactly). Writers hand batches to `write_bronze_parquet`, which conforms them to that schema, so
every extractor produces the same file shape. pyarrow and boto3 are imported inside the functions.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from platformgen.runtime.bronze import BronzeFile, bronze_key, safe_run_id

#: Parquet settings picked by measurement (benchmarks/ingest.py): zstd level 1 writes as fast as snappy and
#: gives half the bytes; dictionary encoding costs 2-3x on high-cardinality columns, so it is off.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1, "use_dictionary": False}
#: Rows per record batch when reading bronze back.
READ_BATCH_ROWS = 128 * 1024

_DECIMAL = re.compile(r"^(?:decimal|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_T = TypeVar("_T")
_ensured_buckets: set[tuple[str, str]] = set()
_ensure_lock = threading.Lock()
_clients: dict[Any, Any] = {}
_client_lock = threading.Lock()


class BronzeSchemaError(ValueError):
    """Data handed to bronze cannot be converted to the dataset's declared Arrow schema."""


# --------------------------------------------------------------------------- types


def arrow_type(type_name: str | None) -> Any:
    """The Arrow type of a column type of the vocabulary (None, an undeclared type, is kept as text).

    decimal(p,s) becomes decimal128 (decimal256 above 38 digits) so values round-trip exactly; a decimal without
    precision, or wider than 76 digits, is kept as its exact text. json is Arrow's canonical JSON extension type
    (text underneath), which the load writes into jsonb.
    """
    import pyarrow as pa

    name = (type_name or "string").strip().lower()
    simple = {
        "string": pa.string(),
        "text": pa.string(),
        "integer": pa.int32(),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "float": pa.float64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "json": pa.json_(),
    }
    if name in simple:
        return simple[name]
    match = _DECIMAL.match(name)
    if match is None:
        raise ValueError(f"unknown column type {type_name!r}")
    if match.group(1) is None:
        return pa.string()
    precision, scale = int(match.group(1)), int(match.group(2) or 0)
    if precision <= 38:
        return pa.decimal128(precision, scale)
    if precision <= 76:
        return pa.decimal256(precision, scale)
    return pa.string()


def arrow_schema(table: dict[str, Any]) -> Any:
    """The bronze Arrow schema of a dataset: its declared columns, in order, all nullable."""
    import pyarrow as pa

    return pa.schema([pa.field(str(c["name"]), arrow_type(c.get("type"))) for c in table["columns"]])


def conform(batch: Any, schema: Any) -> Any:
    """`batch` (a RecordBatch) as `schema`: columns selected by name, missing ones null, types cast safely.

    Extension types of the source (e.g. ADBC's opaque numeric, which is text) are unwrapped before the cast;
    a cast that would lose data (a decimal with too many digits, an out-of-range integer) raises.
    """
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        arrays.append(_cast(batch.column(index), field))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _cast(array: Any, field: Any) -> Any:
    import pyarrow as pa

    if array.type == field.type:
        return array
    if isinstance(array.type, pa.BaseExtensionType):
        return _cast(array.storage, field)
    if isinstance(field.type, pa.BaseExtensionType):
        storage = _cast(array, pa.field(field.name, field.type.storage_type))
        return pa.ExtensionArray.from_storage(field.type, storage)
    try:
        return array.cast(field.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BronzeSchemaError(f"column {field.name}: cannot convert {array.type} to {field.type}: {exc}") from None


# --------------------------------------------------------------------------- S3


def s3_client(platform: dict[str, Any]) -> Any:
    """A boto3 client for the platform's object store, made once per process and settings (creating one
    takes ~100 ms, more than a small upload; clients are thread-safe)."""
    from platformgen.runtime import settings

    params = settings.s3_params(platform)
    with _client_lock:
        if params not in _clients:
            _clients[params] = settings.s3_client(params)
        return _clients[params]


def bronze_bucket(platform: dict[str, Any]) -> str:
    """The bucket of the bronze layer."""
    return str(platform["storage"]["buckets"]["bronze"])


def ensure_bucket(client: Any, bucket: str) -> None:
    """Create `bucket` if it does not exist (once per process and endpoint)."""
    marker = (str(client.meta.endpoint_url), bucket)
    with _ensure_lock:
        if marker in _ensured_buckets:
            return
        try:
            client.head_bucket(Bucket=bucket)
        except Exception as exc:
            if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            try:
                client.create_bucket(Bucket=bucket)
            except Exception as create_exc:  # another task may have created it in between
                if _error_code(create_exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        _ensured_buckets.add(marker)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def run_prefix(table: dict[str, Any], run_id: str, ingest_date: str) -> str:
    """The folder of one run's bronze files: `<source>/<table>/ingest_date=.../run_id=.../`."""
    return f"{table['bronze_prefix']}ingest_date={ingest_date}/run_id={safe_run_id(run_id)}/"


def remove_stale_parts(client: Any, bucket: str, prefix: str, keep: Iterable[str]) -> list[str]:
    """Delete objects under `prefix` that are not in `keep` (parts left by an earlier, larger attempt of a run)."""
    wanted = set(keep)
    stale: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stale.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"] not in wanted)
    for start in range(0, len(stale), 1000):
        chunk = stale[start : start + 1000]
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
    return stale


# --------------------------------------------------------------------------- Parquet


def parquet_bytes(batches: Iterable[Any], schema: Any) -> tuple[Any, int]:
    """Write batches (conformed to `schema`) as one Parquet file in memory; returns (buffer, rows).

    Each batch becomes at least one row group, so a reader can stream the file batch by batch.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    rows = 0
    with pq.ParquetWriter(sink, schema, **PARQUET_OPTIONS) as writer:
        for batch in batches:
            conformed = conform(batch, schema)
            if conformed.num_rows:
                writer.write_batch(conformed)
                rows += conformed.num_rows
    return sink.getvalue(), rows


def write_bronze_parquet(
    platform: dict[str, Any],
    table: dict[str, Any],
    batches: Iterable[Any] | Any,
    *,
    run_id: str,
    ingest_date: str,
    part: int = 0,
    source_file: str | None = None,
    checksum: str | None = None,
) -> BronzeFile:
    """Write record batches (or a pyarrow Table) as one bronze Parquet part and return its BronzeFile.

    The key is `bronze_key(table, run_id, ingest_date, part)`, so re-running a run overwrites the same objects.
    Batches are conformed to `arrow_schema(table)`; an empty iterable writes a file with the schema and no rows.
    """
    import pyarrow as pa

    if isinstance(batches, pa.Table):
        batches = batches.to_batches()
    buffer, rows = parquet_bytes(batches, arrow_schema(table))
    client = s3_client(platform)
    bucket = bronze_bucket(platform)
    ensure_bucket(client, bucket)
    key = bronze_key(table, run_id, ingest_date, part)
    client.put_object(Bucket=bucket, Key=key, Body=buffer.to_pybytes(), ContentType="application/vnd.apache.parquet")
    return BronzeFile(key=key, rows=rows, bytes=buffer.size, source_file=source_file, checksum=checksum)


def open_bronze_parquet(client: Any, bucket: str, key: str) -> Any:
    """A pyarrow ParquetFile of a bronze object (downloaded into memory: parts are bounded in size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.ParquetFile(pa.BufferReader(body))


def iter_parquet_batches(parquet_file: Any, columns: list[str] | None = None) -> Iterator[Any]:
    """The record batches of a ParquetFile, READ_BATCH_ROWS at a time."""
    yield from parquet_file.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns)


# --------------------------------------------------------------------------- overlap


def prefetch(items: Iterable[_T], depth: int = 2) -> Iterator[_T]:
    """Iterate `items` in a background thread, up to `depth` items ahead of the consumer.

    Overlaps a producer and a consumer that both release the GIL (an ADBC read and a Parquet write, a Parquet
    decode and an ADBC COPY); the bounded queue keeps memory at `depth` items. The producer's exceptions are
    re-raised in the consumer; closing the iterator early stops the producer after its current item.
    """
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((False, item)):
                    return
            offer((True, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer((True, exc))

    thread = threading.Thread(target=produce, name="platformgen-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            done, value = slots.get()
            if done:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        thread.join()
