"""Extract landing files (CSV, JSON, JSON lines) from a local directory or an S3 prefix into bronze, each file once.

Every file matching the table's pattern is hashed (sha256); a file whose (name, checksum) already has a
successful `load` row in data_platform.ingestion_log is skipped, so a file is ingested once and a changed file
(new checksum) again. Each new file becomes one bronze Parquet part carrying its name and checksum, which the
load writes to `_source_file` and to ingestion_log.

Files are read as streams, in batches of `BATCH_ROWS` rows. A malformed row (a CSV row with the wrong number
of fields, a value that does not fit its column's type, an invalid JSON line, an array element that is not an
object) is not dropped: it goes, with the file, line, raw text and error, to the bronze quarantine object of
the file, is counted in `BronzeBatch.quarantined_rows` and named in a warning; the good rows of the file still
load. Only the standard library is imported at module level.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from platformgen.runtime.bronze import BronzeBatch, BronzeFile
from platformgen.runtime.extract_api import CoercionError, ColumnBuffer, Quarantine, RecordCoercer, parse_json

log = logging.getLogger("platformgen.runtime.extract_files")

#: Where relative local locations are resolved (else the current directory).
PROJECT_ROOT_ENV = "PLATFORMGEN_PROJECT_ROOT"
#: Rows per Arrow record batch handed to the Parquet writer.
BATCH_ROWS = 50_000
#: Raw text kept of the unparsed rest of a broken JSON document.
MAX_RAW_REMAINDER = 1024 * 1024
_CHUNK = 1024 * 1024


# --------------------------------------------------------------------------- landing locations


@dataclass(frozen=True)
class LandingFile:
    """A file in the landing location: `name` is what ingestion_log and `_source_file` record."""

    name: str  # <location as written in the spec>/<path below it>, e.g. s3://landing/marketing/spend_2024-01.csv
    relative: str  # path below the location
    size: int | None = None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob below a location as a regex: `*` and `?` stay within one folder, `**` crosses folders."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


class _LocalLanding:
    def __init__(self, location: str) -> None:
        self.location = location
        path = Path(location).expanduser()
        if not path.is_absolute():
            path = Path(os.environ.get(PROJECT_ROOT_ENV) or os.getcwd()) / path
        self.root = path

    def list(self, pattern: str) -> list[LandingFile]:
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"landing folder {self.root} does not exist (location {self.location!r}"
                + (f", resolved against {PROJECT_ROOT_ENV}" if os.environ.get(PROJECT_ROOT_ENV) else "")
                + ")"
            )
        regex = glob_regex(pattern)
        found: list[LandingFile] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for filename in filenames:
                full = Path(dirpath) / filename
                relative = full.relative_to(self.root).as_posix()
                if regex.match(relative):
                    found.append(LandingFile(_join(self.location, relative), relative, full.stat().st_size))
        return sorted(found, key=lambda f: f.relative)

    @contextlib.contextmanager
    def fetch(self, file: LandingFile) -> Iterator[tuple[Path, str, int]]:
        path = self.root / file.relative
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
        yield path, digest.hexdigest(), size


class _S3Landing:
    def __init__(self, location: str, s3: Any) -> None:
        self.location = location
        rest = location[len("s3://") :]
        self.bucket, _, prefix = rest.partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.s3 = s3

    def list(self, pattern: str) -> list[LandingFile]:
        regex = glob_regex(pattern)
        found: list[LandingFile] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if key.endswith("/"):
                    continue
                relative = key[len(self.prefix) :]
                if regex.match(relative):
                    found.append(LandingFile(_join(self.location, relative), relative, int(item.get("Size", 0))))
        return sorted(found, key=lambda f: f.relative)

    @contextlib.contextmanager
    def fetch(self, file: LandingFile) -> Iterator[tuple[Path, str, int]]:
        """Download to a temporary file, hashing on the way (the object is read once)."""
        digest = hashlib.sha256()
        size = 0
        with tempfile.TemporaryDirectory(prefix="platformgen-landing-") as folder:
            path = Path(folder) / "file"
            body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + file.relative)["Body"]
            try:
                with path.open("wb") as out:
                    for chunk in body.iter_chunks(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            finally:
                body.close()
            yield path, digest.hexdigest(), size


def _join(location: str, relative: str) -> str:
    return location.rstrip("/") + "/" + relative


def _landing(platform: Mapping[str, Any], location: str) -> _LocalLanding | _S3Landing:
    if location.startswith("s3://"):
        from platformgen.runtime import settings

        return _S3Landing(location, settings.s3_client(settings.s3_params(dict(platform))))
    if "://" in location:
        raise ValueError(f"unsupported landing location {location!r}: use a local folder or s3://bucket/prefix")
    return _LocalLanding(location)


# --------------------------------------------------------------------------- readers


class _Rows:
    """Turns the rows of one file into Arrow record batches; bad rows go to the quarantine."""

    def __init__(self, coercer: RecordCoercer, quarantine: Quarantine, file: LandingFile) -> None:
        self.coercer = coercer
        self.quarantine = quarantine
        self.file = file
        self.buffer = ColumnBuffer(coercer.schema)
        self.rows = 0
        self.line = 0  # the last line read, for error messages

    def bad(self, line: int, raw: str, error: str) -> None:
        self.quarantine.add(
            {"file": self.file.name, "line": line, "raw": raw, "error": error},
            f"{self.file.name}:{line}: {error}",
        )

    def good(self, values: list[Any]) -> Any | None:
        """Add a converted row; returns a full record batch when one is ready."""
        self.buffer.append(values)
        self.rows += 1
        if self.buffer.rows >= BATCH_ROWS:
            return self.buffer.take()
        return None

    def mapping(self, line: int, raw: str, record: Any) -> Any | None:
        if not isinstance(record, dict):
            self.bad(line, raw, f"the record is a JSON {type(record).__name__}, not an object")
            return None
        try:
            values = self.coercer.from_mapping(record)
        except CoercionError as exc:
            self.bad(line, raw, str(exc))
            return None
        return self.good(values)


def _text_encoding(encoding: str) -> str:
    """The codec to read with: UTF-8 files may start with a byte-order mark."""
    name = codecs.lookup(encoding).name
    return "utf-8-sig" if name == "utf-8" else encoding


class _LineTap:
    """The lines of a text file as csv.reader reads them, remembering the lines of the current record."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.lines: list[str] = []
        self.line_no = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = self.handle.readline()
        if not line:
            raise StopIteration
        self.lines.append(line)
        self.line_no += 1
        return line


def _csv_batches(handle: IO[str], rows: _Rows, *, delimiter: str, header: bool) -> Iterator[Any]:
    tap = _LineTap(handle)
    reader = csv.reader(tap, delimiter=delimiter)
    names = rows.coercer.names
    width = len(names)
    positions: list[int | None] = list(range(width))
    while True:
        tap.lines = []
        start = rows.line = tap.line_no + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.bad(start, "".join(tap.lines), f"CSV syntax error: {exc}")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip() and not "".join(tap.lines).strip()):
            continue  # a blank line holds no row
        if header:
            header = False
            positions, width = _header_positions(fields, names, rows.file.name)
            continue
        if len(fields) != width:
            rows.bad(start, "".join(tap.lines).rstrip("\r\n"), f"expected {width} fields, found {len(fields)}")
            continue
        try:
            values = rows.coercer.from_values([None if p is None else fields[p] for p in positions])
        except CoercionError as exc:
            rows.bad(start, "".join(tap.lines).rstrip("\r\n"), str(exc))
            continue
        batch = rows.good(values)
        if batch is not None:
            yield batch


def _header_positions(fields: Sequence[str], names: Sequence[str], file_name: str) -> tuple[list[int | None], int]:
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for index, field in enumerate(fields):
        exact.setdefault(field.strip(), index)
        folded.setdefault(field.strip().lower(), index)
    positions: list[int | None] = []
    missing = []
    for name in names:
        position = exact.get(name, folded.get(name.lower()))
        if position is None:
            missing.append(name)
        positions.append(position)
    if missing:
        log.warning("%s: column(s) %s not in the header; they load as null", file_name, ", ".join(missing))
    return positions, len(fields)


def _jsonl_batches(handle: IO[str], rows: _Rows) -> Iterator[Any]:
    for line_no, line in enumerate(handle, 1):
        rows.line = line_no
        text = line.strip()
        if not text:
            continue
        try:
            record = parse_json(text)
        except ValueError as exc:
            rows.bad(line_no, line.rstrip("\r\n"), f"invalid JSON: {exc}")
            continue
        batch = rows.mapping(line_no, line.rstrip("\r\n"), record)
        if batch is not None:
            yield batch


class JsonSyntaxError(ValueError):
    """A JSON document is broken at `line`."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class _JsonStream:
    """Reads a JSON document value by value from a text stream (an array of a billion objects fits in memory)."""

    MAX_VALUE = 256 * 1024 * 1024

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.buf = ""
        self.pos = 0
        self.line = 1  # line number at self.pos
        self.eof = False
        self.decoder = json.JSONDecoder(parse_float=Decimal)  # exact decimals

    def _more(self, size: int | None = None) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(size or _CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def _advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str | None:
        """The next character that is not whitespace (not consumed); None at the end."""
        while True:
            buf, p, n = self.buf, self.pos, len(self.buf)
            while p < n and buf[p] in " \t\r\n":
                p += 1
            self._advance(p)
            if p < n:
                return buf[p]
            if not self._more():
                return None

    def take(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise JsonSyntaxError(f"expected {char!r}, found {found or 'the end of the file'!r}", self.line)
        self._advance(self.pos + 1)

    def value(self) -> tuple[Any, int, str]:
        """The next value, its line and its raw text."""
        self.peek()
        want = _CHUNK
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof or len(self.buf) - self.pos > self.MAX_VALUE or not self._more(want):
                    line = self.line + self.buf.count("\n", self.pos, exc.pos)
                    raise JsonSyntaxError(exc.msg, line) from None
                want *= 2
                continue
            if end >= len(self.buf) and self._more(want):  # a number may go on in the next chunk
                continue
            line, raw = self.line, self.buf[self.pos : end]
            self._advance(end)
            return value, line, raw

    def remainder(self, limit: int) -> tuple[str, bool]:
        """The unread text from the current position, at most `limit` characters; (text, truncated)."""
        text = self.buf[self.pos :]
        while len(text) <= limit and not self.eof:
            chunk = self.handle.read(_CHUNK)
            if not chunk:
                self.eof = True
                break
            text += chunk
        if len(text) > limit:
            return text[:limit], True
        return text, False


def _json_items(stream: _JsonStream, first: tuple[Any, int, str] | None = None) -> Iterator[tuple[Any, int, str]]:
    """The elements of an array whose '[' is consumed (and whose first element, when given, is read)."""
    if first is None:
        if stream.peek() == "]":
            stream.take("]")
            return
        first = stream.value()
    yield first
    while True:
        char = stream.peek()
        if char == "]":
            stream.take("]")
            return
        stream.take(",")
        yield stream.value()


def _json_records(stream: _JsonStream, file_name: str) -> Iterator[tuple[Any, int, str]]:
    """The records of a JSON document: a top-level array, or the first array of objects in a top-level object."""
    char = stream.peek()
    if char is None:
        return
    if char == "[":
        stream.take("[")
        yield from _json_items(stream)
    elif char == "{":
        yield from _json_object_records(stream, file_name)
    else:
        raise ValueError(f"{file_name}: a JSON file holds an array of objects or an object with a list of them")
    if stream.peek() is not None:
        raise JsonSyntaxError("extra data after the JSON document", stream.line)


def _json_object_records(stream: _JsonStream, file_name: str) -> Iterator[tuple[Any, int, str]]:
    stream.take("{")
    chosen: str | None = None
    saw_list = False
    if stream.peek() == "}":
        stream.take("}")
    else:
        while True:
            key, line, _ = stream.value()
            if not isinstance(key, str):
                raise JsonSyntaxError("expected a key", line)
            stream.take(":")
            if stream.peek() == "[" and chosen is None:
                saw_list = True
                stream.take("[")
                if stream.peek() == "]":
                    stream.take("]")
                else:
                    first = stream.value()
                    if isinstance(first[0], dict):
                        chosen = key
                        log.info("%s: records are the list at key %r", file_name, key)
                        yield from _json_items(stream, first)
                    else:
                        for _ in _json_items(stream, first):
                            pass
            else:
                value, line, _ = stream.value()
                if isinstance(value, list):
                    saw_list = True
                    if value and chosen is not None and isinstance(value[0], dict):
                        log.warning("%s: ignoring the list at key %r (records come from %r)", file_name, key, chosen)
            char = stream.peek()
            if char == "}":
                stream.take("}")
                break
            stream.take(",")
    if chosen is None and not saw_list:
        raise ValueError(f"{file_name}: the JSON object holds no list of records")


def _json_batches(handle: IO[str], rows: _Rows) -> Iterator[Any]:
    stream = _JsonStream(handle)
    try:
        for record, line, raw in _json_records(stream, rows.file.name):
            rows.line = line
            batch = rows.mapping(line, raw, record)
            if batch is not None:
                yield batch
    except JsonSyntaxError as exc:
        rest, truncated = stream.remainder(MAX_RAW_REMAINDER)
        error = f"invalid JSON: {exc}; the rest of the file from here was not read"
        if truncated:
            error += f" (raw text cut at {MAX_RAW_REMAINDER} characters)"
        rows.bad(exc.line, rest, error)


def _file_batches(path: Path, rows: _Rows, options: _Options) -> Iterator[Any]:
    """Record batches of one landing file; always at least one (possibly empty) batch."""
    newline = "" if options.format == "csv" else None
    with path.open("r", encoding=_text_encoding(options.encoding), newline=newline) as handle:
        try:
            if options.format == "csv":
                yield from _csv_batches(handle, rows, delimiter=options.delimiter, header=options.header)
            elif options.format == "jsonl":
                yield from _jsonl_batches(handle, rows)
            elif options.format == "json":
                yield from _json_batches(handle, rows)
            else:
                raise ValueError(f"unknown file format {options.format!r}")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{rows.file.name}: the text after line {rows.line} is not {options.encoding} "
                f"({exc.reason}: {exc.object[exc.start : exc.end]!r}); set the source's `encoding`"
            ) from None
    yield rows.buffer.take()


@dataclass(frozen=True)
class _Options:
    format: str
    delimiter: str
    header: bool
    encoding: str


def _options(source: Mapping[str, Any], table: Mapping[str, Any]) -> _Options:
    return _Options(
        format=str(table.get("format") or source.get("format") or "csv"),
        delimiter=str(table.get("delimiter") or source.get("delimiter") or ","),
        header=bool(source.get("header", True)),
        encoding=str(source.get("encoding") or "utf-8"),
    )


# --------------------------------------------------------------------------- the extract


def loaded_files(
    conn: Any, platform: Mapping[str, Any], source: str, dataset: str, *, run_id: str
) -> set[tuple[str, str]]:
    """(file_name, file_checksum) of the landing files another run has loaded into raw.

    A file counts as loaded when a successful `load` row names it, or when its run extracted it (an `extract`
    row with its name and checksum) and that run's load succeeded afterwards (a load that logs one row per
    batch). Files loaded by `run_id` itself are left out: when a cleared run runs again, its load replaces the
    rows it loaded before, so its files must be extracted again.
    """
    from platformgen.runtime.warehouse import quote_ident

    log_table = quote_ident(platform["schemas"]["platform"]) + ".ingestion_log"
    with conn.cursor() as cur:
        cur.execute(
            f"select distinct e.file_name, e.file_checksum from {log_table} e "
            "where e.source = %s and e.dataset = %s and e.run_id <> %s and e.status = 'success' "
            "and e.file_name is not null and e.file_checksum is not null and (e.stage = 'load' or "
            f"(e.stage = 'extract' and exists (select 1 from {log_table} l where l.source = e.source "
            "and l.dataset = e.dataset and l.run_id = e.run_id and l.stage = 'load' and l.status = 'success' "
            "and l.started_at >= e.started_at)))",
            (source, dataset, run_id),
        )
        return {(str(name), str(checksum)) for name, checksum in cur.fetchall()}


def extract_files(
    platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], *, run_id: str, ingest_date: str
) -> BronzeBatch:
    """Ingest the new and changed landing files of one table into bronze, one Parquet part per file."""
    from platformgen.runtime import arrow_io, warehouse

    started = dt.datetime.now(dt.UTC)
    name, dataset = source["name"], table["dataset"]
    options = _options(source, table)
    landing = _landing(platform, str(source["location"]))
    coercer = RecordCoercer(table, text=options.format == "csv")
    batch = BronzeBatch(
        source=name, dataset=dataset, run_id=run_id, bucket=str(platform["storage"]["buckets"]["bronze"])
    )
    s3_bronze: Any = None
    skipped = 0
    read_bytes = 0
    with warehouse.connect_warehouse(platform, autocommit=True) as conn:
        warehouse.ensure_platform_schema(conn, platform)

        def record(status: str, **fields: Any) -> None:
            try:
                warehouse.log_ingestion(
                    conn,
                    platform,
                    run_id=run_id,
                    source=name,
                    dataset=dataset,
                    stage="extract",
                    status=status,
                    **fields,
                )
            except Exception as exc:
                if status != "failed":
                    raise
                # recording a failure must not hide the failure itself
                log.warning("could not record the failed extract in ingestion_log: %s", type(exc).__name__)

        try:
            candidates = landing.list(str(table["pattern"]))
            done = loaded_files(conn, platform, name, dataset, run_id=run_id)
        except Exception as exc:
            record("failed", started_at=started, error=f"{type(exc).__name__}: {exc}")
            raise
        if not candidates:
            log.warning("%s.%s: no file in %s matches %r", name, table["name"], source["location"], table["pattern"])
        for file in candidates:
            file_started = dt.datetime.now(dt.UTC)
            checksum: str | None = None
            try:
                with landing.fetch(file) as (path, checksum, size):
                    if (file.name, checksum) in done:
                        skipped += 1
                        log.info("%s: already loaded (sha256 %s), skipped", file.name, checksum[:12])
                        continue
                    quarantine = Quarantine(
                        platform, table, run_id=run_id, ingest_date=ingest_date, source_file=file.name
                    )
                    try:
                        rows = _Rows(coercer, quarantine, file)
                        written: BronzeFile = arrow_io.write_bronze_parquet(
                            platform,
                            table,
                            _file_batches(path, rows, options),
                            run_id=run_id,
                            ingest_date=ingest_date,
                            part=len(batch.files),
                            source_file=file.name,
                            checksum=checksum,
                        )
                        if quarantine.count and s3_bronze is None:
                            s3_bronze = arrow_io.s3_client(platform)
                        kept = quarantine.upload(s3_bronze)
                    except BaseException:
                        quarantine.discard()
                        raise
            except Exception as exc:
                record(
                    "failed",
                    started_at=file_started,
                    file_name=file.name,
                    file_checksum=checksum,
                    error=f"{type(exc).__name__}: {exc}",
                )
                raise
            batch.files.append(written)
            read_bytes += size
            batch.quarantined_rows += quarantine.count
            note = None if not quarantine.count else f"{quarantine.count} row(s) quarantined in {kept}"
            record(
                "success",
                rows=written.rows,
                nbytes=size,
                started_at=file_started,
                file_name=file.name,
                file_checksum=checksum,
                error=note,
            )
            log.info(
                "%s: %d row(s) -> %s%s",
                file.name,
                written.rows,
                written.key,
                f" ({quarantine.count} quarantined in {kept})" if quarantine.count else "",
            )
        # parts of an earlier attempt of this run that this attempt did not write again
        s3_bronze = s3_bronze or arrow_io.s3_client(platform)
        arrow_io.ensure_bucket(s3_bronze, arrow_io.bronze_bucket(platform))
        arrow_io.remove_stale_parts(
            s3_bronze,
            arrow_io.bronze_bucket(platform),
            arrow_io.run_prefix(table, run_id, ingest_date),
            [f.key for f in batch.files],
        )
        record(
            "success" if batch.files else "skipped",
            rows=batch.rows,
            nbytes=read_bytes,
            started_at=started,
        )
    log.info(
        "%s.%s: %d new or changed file(s), %d already loaded, %d row(s), %d quarantined",
        name,
        table["name"],
        len(batch.files),
        skipped,
        batch.rows,
        batch.quarantined_rows,
    )
    return batch
