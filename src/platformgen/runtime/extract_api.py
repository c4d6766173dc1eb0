"""Extract one REST API endpoint into bronze: pagination, retries, rate limit, incremental reads, quarantine.

The records of every page are coerced to the declared columns (extra fields are ignored, missing ones become
null); a record with a value that cannot be converted to its column's type is not dropped: it is written, with
its page and index and the reason, as a JSON line to the bronze quarantine object of the run, counted in
`BronzeBatch.quarantined_rows` and named in a warning. The good records go to bronze Parquet through
`arrow_io.write_bronze_parquet`, one part per `PART_ROWS` records.

The requests go to the source's `base_url`, unless `PLATFORMGEN_API_<SOURCE>_BASE_URL` is set (`base_url_env`):
`platformgen up --local` points it at a local server that replays the spec's recorded sample responses.

The column coercion (`RecordCoercer`, `ColumnBuffer`) and the quarantine writer (`Quarantine`) are shared with
`extract_files`. Only the standard library is imported at module level.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin

from platformgen.runtime.bronze import BronzeBatch, BronzeFile, quarantine_key

log = logging.getLogger("platformgen.runtime.extract_api")

#: Good records per bronze Parquet part (bounds the memory of a long extract).
PART_ROWS = 100_000
#: Bad records logged one by one; the rest are only counted (all of them are in the quarantine object).
MAX_LOGGED_BAD_RECORDS = 20

Converter = Callable[[Any], Any]


def base_url_env(source: str) -> str:
    """The variable that overrides an API source's base_url (local mode's sample replay, tests)."""
    return f"PLATFORMGEN_API_{source.upper()}_BASE_URL"


# --------------------------------------------------------------------------- coercion (shared with extract_files)


class CoercionError(ValueError):
    """A value does not fit its column's type; the message names the column when raised by RecordCoercer."""


_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_TYPE = re.compile(r"^(?:decimal|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})
_WIDE = Context(prec=2000)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(bits: int, signed: bool = True) -> Converter:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    name = {32: "integer", 64: "bigint"}.get(bits, f"int{bits}") if signed else f"uint{bits}"

    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise CoercionError(f"{_show(value)} is a boolean, not an {name}")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not value.is_integer():
                raise CoercionError(f"{_show(value)} is not a whole number")
            number = int(value)
        elif isinstance(value, Decimal):
            if not value.is_finite() or value != value.to_integral_value():
                raise CoercionError(f"{_show(value)} is not a whole number")
            number = int(value)
        elif isinstance(value, str):
            text = value.strip()
            if _INT_RE.match(text):
                number = int(text)
            else:
                try:
                    parsed = Decimal(text)
                except InvalidOperation:
                    raise CoercionError(f"{_show(value)} is not an {name}") from None
                if not parsed.is_finite() or parsed != parsed.to_integral_value():
                    raise CoercionError(f"{_show(value)} is not a whole number")
                number = int(parsed)
        else:
            raise CoercionError(f"{_show(value)} is not an {name}")
        if not low <= number <= high:
            raise CoercionError(f"{number} is out of range for {name}")
        return number

    return convert


def _decimal(precision: int | None, scale: int | None) -> Converter:
    quantum = None if scale is None else Decimal(1).scaleb(-scale)
    max_int_digits = None if precision is None else precision - (scale or 0)
    label = "decimal" if precision is None else f"decimal({precision},{scale or 0})"

    def convert(value: Any) -> Decimal:
        if isinstance(value, bool):
            raise CoercionError(f"{_show(value)} is a boolean, not a {label}")
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise CoercionError(f"{_show(value)} is not a finite number")
            number = Decimal(repr(value))
        elif isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise CoercionError(f"{_show(value)} is not a {label}") from None
        else:
            raise CoercionError(f"{_show(value)} is not a {label}")
        if not number.is_finite():
            raise CoercionError(f"{_show(value)} is not a finite number")
        if quantum is not None:
            number = number.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE)
        if max_int_digits is not None and number != 0 and number.adjusted() + 1 > max_int_digits:
            raise CoercionError(f"{_show(value)} is out of range for {label}")
        return number

    return convert


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError(f"{_show(value)} is a boolean, not a float")
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise CoercionError(f"{_show(value)} is not a float") from None
    raise CoercionError(f"{_show(value)} is not a float")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise CoercionError(f"{_show(value)} is not a boolean")


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise CoercionError(f"{_show(value)} is not a date (YYYY-MM-DD)") from None
    raise CoercionError(f"{_show(value)} is not a date")


def _parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise CoercionError(f"{_show(value)} is not a timestamp")
        if abs(seconds) >= 1e11:  # epoch milliseconds (1e11 seconds is the year 5138)
            seconds /= 1000.0
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise CoercionError(f"{_show(value)} is out of range for a timestamp") from None
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise CoercionError(f"{_show(value)} is not an ISO 8601 timestamp") from None
    raise CoercionError(f"{_show(value)} is not a timestamp")


def _timestamptz(value: Any) -> dt.datetime:
    """An aware UTC datetime; a value without offset is taken as UTC."""
    stamp = _parse_datetime(value)
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def _timestamp(value: Any) -> dt.datetime:
    """A naive datetime; a value with an offset is converted to UTC first."""
    stamp = _parse_datetime(value)
    if stamp.tzinfo is not None:
        return stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp


def parse_json(text: str | bytes) -> Any:
    """JSON with exact decimals: numbers with a fraction or exponent become Decimal, not float."""
    return json.loads(text, parse_float=Decimal)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "E" not in str(value) else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_text(value: Any) -> str:
    """A value as text: JSON for objects and arrays, ISO 8601 for dates, true/false for booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return str(value)


def _json_native(value: Any) -> str:
    """A JSON value (from a JSON document) as JSON text."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise CoercionError(f"{_show(value)} is not JSON: {exc}") from None


def _json_text(value: Any) -> str:
    """JSON text (from a CSV field): validated and normalised."""
    if not isinstance(value, str):
        return _json_native(value)
    try:
        parsed = parse_json(value)
    except ValueError as exc:
        raise CoercionError(f"{_show(value)} is not valid JSON: {exc}") from None
    return _json_native(parsed)


def vocabulary_converter(type_name: str | None, *, text: bool) -> Converter:
    """The converter of a column type of the spec vocabulary; `text` when values come as text (CSV fields)."""
    name = (type_name or "string").strip().lower()
    if name in ("string", "text"):
        return to_text
    if name in ("integer", "int"):
        return _integer(32)
    if name == "bigint":
        return _integer(64)
    if name in ("float", "double"):
        return _float
    if name in ("boolean", "bool"):
        return _boolean
    if name == "date":
        return _date
    if name == "timestamp":
        return _timestamp
    if name == "timestamptz":
        return _timestamptz
    if name == "json":
        return _json_text if text else _json_native
    match = _DECIMAL_TYPE.match(name)
    if match:
        precision = None if match.group(1) is None else int(match.group(1))
        scale = None if precision is None else int(match.group(2) or 0)
        return _decimal(precision, scale)
    raise ValueError(f"unknown column type {type_name!r}")


def _arrow_adapter(arrow_type: Any) -> Converter | None:
    """Fit a converted value to the Arrow type of its bronze column (None when it fits as it is)."""
    import pyarrow as pa

    t = arrow_type.storage_type if isinstance(arrow_type, pa.BaseExtensionType) else arrow_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return to_text
    if pa.types.is_decimal(t):
        return _decimal(t.precision, t.scale)
    if pa.types.is_timestamp(t):
        return _timestamptz if t.tz else _timestamp
    if pa.types.is_date(t):
        return _date
    if pa.types.is_integer(t):
        return _integer(t.bit_width, signed=pa.types.is_signed_integer(t))
    if pa.types.is_floating(t):
        return _float
    if pa.types.is_boolean(t):
        return _boolean
    return None


def _compose(first: Converter, second: Converter | None) -> Converter:
    if second is None or second is first:
        return first
    return lambda value: second(first(value))


class RecordCoercer:
    """Turns records (mappings) or rows (sequences in column order) into values fitting the bronze Arrow schema."""

    def __init__(self, table: Mapping[str, Any], *, text: bool) -> None:
        from platformgen.runtime.arrow_io import arrow_schema

        self.schema: Any = arrow_schema(dict(table))
        declared = {str(c["name"]): c.get("type") for c in table["columns"]}
        self.names: list[str] = list(self.schema.names)
        self.converters: list[Converter] = []
        for column in self.schema:
            base = vocabulary_converter(declared.get(column.name), text=text)
            self.converters.append(_compose(base, _arrow_adapter(column.type)))
        self.text = text

    def index(self, column: str) -> int:
        return self.names.index(column)

    def _convert(self, column: int, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip() and (self.text or self._non_text(column))):
            return None
        try:
            return self.converters[column](value)
        except CoercionError as exc:
            raise CoercionError(f"column {self.names[column]}: {exc}") from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise CoercionError(f"column {self.names[column]}: {_show(value)}: {exc}") from None

    def _non_text(self, column: int) -> bool:
        return self.converters[column] is not to_text

    def from_mapping(self, record: Mapping[str, Any]) -> list[Any]:
        """Values in schema order; fields not declared are ignored, declared fields missing are null."""
        get = record.get
        return [self._convert(i, get(name)) for i, name in enumerate(self.names)]

    def from_values(self, values: Sequence[Any]) -> list[Any]:
        """Values in schema order from a row in the same order."""
        return [self._convert(i, v) for i, v in enumerate(values)]


class ColumnBuffer:
    """Converted rows collected column by column, taken out as Arrow record batches."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.columns: list[list[Any]] = [[] for _ in schema.names]
        self.rows = 0

    def append(self, values: Sequence[Any]) -> None:
        for column, value in zip(self.columns, values, strict=True):
            column.append(value)
        self.rows += 1

    def take(self) -> Any:
        """A RecordBatch of the collected rows (possibly empty); the buffer is emptied."""
        import pyarrow as pa

        arrays = []
        for column, values in zip(self.schema, self.columns, strict=True):
            extension = isinstance(column.type, pa.BaseExtensionType)  # e.g. json: text underneath
            try:
                array = pa.array(values, type=column.type.storage_type if extension else column.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise CoercionError(f"column {column.name}: cannot build the Arrow column: {exc}") from None
            arrays.append(pa.ExtensionArray.from_storage(column.type, array) if extension else array)
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self.columns = [[] for _ in self.schema.names]
        self.rows = 0
        return batch


class Quarantine:
    """Bad records of one source (an endpoint, a landing file) as JSON lines, uploaded to bronze when any."""

    def __init__(
        self, platform: Mapping[str, Any], table: Mapping[str, Any], *, run_id: str, ingest_date: str, source_file: str
    ) -> None:
        self.bucket = str(platform["storage"]["buckets"]["bronze"])
        self.key = quarantine_key(dict(table), run_id, ingest_date, source_file)
        self.count = 0
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")  # noqa: SIM115

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def add(self, entry: Mapping[str, Any], message: str) -> None:
        """Keep one bad record and log `message` (the first MAX_LOGGED_BAD_RECORDS only)."""
        self._spool.write((json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
        self.count += 1
        if self.count <= MAX_LOGGED_BAD_RECORDS:
            log.warning("quarantined %s (kept in %s)", message, self.uri)

    def upload(self, s3: Any) -> str | None:
        """Write the quarantine object (when there is something in it); returns its URI."""
        try:
            if self.count == 0:
                return None
            if self.count > MAX_LOGGED_BAD_RECORDS:
                log.warning(
                    "%d more bad record(s) not logged one by one; all %d are in %s",
                    self.count - MAX_LOGGED_BAD_RECORDS,
                    self.count,
                    self.uri,
                )
            from platformgen.runtime.arrow_io import ensure_bucket

            ensure_bucket(s3, self.bucket)
            self._spool.seek(0)
            s3.upload_fileobj(self._spool, self.bucket, self.key, ExtraArgs={"ContentType": "application/x-ndjson"})
            return self.uri
        finally:
            self._spool.close()

    def discard(self) -> None:
        self._spool.close()


def format_cursor(value: Any) -> str:
    """A cursor value as it is stored in data_platform.watermarks (ISO 8601 for dates and timestamps)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return to_text(value)


def cursor_type(table: Mapping[str, Any], cursor: str) -> str | None:
    for column in table["columns"]:
        if column["name"] == cursor:
            return None if column.get("type") is None else str(column["type"]).lower()
    return None


def since_value(value: str | int, type_name: str | None, lag_seconds: int) -> str:
    """The incremental parameter: the watermark (or initial value) moved back by the lag for dates and timestamps."""
    text = str(value)
    if not lag_seconds or type_name not in ("date", "timestamp", "timestamptz"):
        return text
    lag = dt.timedelta(seconds=lag_seconds)
    if type_name == "date":
        return (dt.datetime.combine(_date(text), dt.time()) - lag).date().isoformat()
    stamp = _parse_datetime(text) - lag
    formatted = stamp.isoformat()
    if text.endswith("Z") and formatted.endswith("+00:00"):
        formatted = formatted[: -len("+00:00")] + "Z"
    return formatted


def earlier_cursor(since: str, rerun_from: str, type_name: str | None) -> str:
    """The earlier of the parameter value and the lowest cursor a re-run run loaded (formatted like `since`)."""
    try:
        if type_name in ("timestamp", "timestamptz"):
            low, current = _timestamptz(rerun_from), _timestamptz(since)
            if low >= current:
                return since
            formatted = (low if type_name == "timestamptz" else low.replace(tzinfo=None)).isoformat()
            return (
                formatted[: -len("+00:00")] + "Z" if since.endswith("Z") and formatted.endswith("+00:00") else formatted
            )
        convert = vocabulary_converter(type_name, text=True)
        return rerun_from if convert(rerun_from) < convert(since) else since
    except (CoercionError, TypeError, ValueError):
        return min(since, rerun_from)


def later_cursor(current: str | None, candidate: str | None, type_name: str | None) -> str | None:
    """The larger of two stored cursor values (compared by type, so the watermark never moves back)."""
    if current is None:
        return candidate
    if candidate is None:
        return current
    try:
        convert = vocabulary_converter(type_name, text=True)
        if type_name == "timestamptz" or type_name == "timestamp":
            convert = _timestamptz
        return candidate if convert(candidate) > convert(current) else current
    except (CoercionError, TypeError, ValueError):
        return max(current, candidate)


# --------------------------------------------------------------------------- the API extract


@dataclass
class _Auth:
    headers: dict[str, str]
    basic: tuple[str, str] | None
    secrets: list[str]
    sensitive: list[str] = field(default_factory=list)  # headers dropped on a redirect to another host


def _auth(source: Mapping[str, Any]) -> _Auth:
    """Headers and secrets of the source's authentication (env:VAR references resolved here)."""
    from platformgen.runtime.settings import resolve

    name = source["name"]
    auth = source.get("auth") or None
    headers: dict[str, str] = {}
    secrets: list[str] = []
    sensitive: list[str] = []
    for header, value in (source.get("headers") or {}).items():
        resolved = str(resolve(value, f"source {name} header {header}"))
        if resolved != value:
            secrets.append(resolved)
            sensitive.append(str(header))
        headers[str(header)] = resolved
    if auth is None:
        return _Auth(headers, None, secrets, sensitive)
    kind = auth.get("type")
    if kind == "bearer":
        token = str(resolve(auth["token"], f"source {name} bearer token"))
        headers["Authorization"] = f"Bearer {token}"
        return _Auth(headers, None, [*secrets, token], [*sensitive, "Authorization"])
    if kind == "basic":
        user = str(resolve(auth["username"], f"source {name} basic-auth username"))
        password = str(resolve(auth["password"], f"source {name} basic-auth password"))
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return _Auth(headers, (user, password), [*secrets, password, encoded], sensitive)
    if kind == "api_key":
        key = str(resolve(auth["key"], f"source {name} API key"))
        header_name = str(auth.get("header") or "X-API-Key")
        headers[header_name] = key
        return _Auth(headers, None, [*secrets, key], [*sensitive, header_name])
    raise ValueError(f"source {name}: unknown auth type {kind!r}")


def _dig(document: Any, path: str | None) -> tuple[bool, Any]:
    """(found, value) at a dotted path; list items by index."""
    if not path:
        return True, document
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@dataclass
class _Page:
    number: int  # 1-based, in the order fetched
    url: str  # redacted
    records: list[Any]


class _Pager:
    """Walks the pages of one endpoint in the pagination style of the spec."""

    def __init__(self, client: Any, url: str, params: dict[str, Any], table: Mapping[str, Any]) -> None:
        self.client = client
        self.url = url
        self.params = params
        self.records_path: str | None = table.get("records")
        self.pagination: Mapping[str, Any] | None = table.get("pagination")
        self.pages = 0

    def _fetch(self, url: str, params: Mapping[str, Any] | None) -> tuple[Any, Any, list[Any]]:
        response = self.client.get(url, params)
        self.pages += 1
        shown = self.client.redact(response.url)
        try:
            body = parse_json(response.content)
        except ValueError as exc:
            snippet = self.client.redact(response.content[:200].decode("utf-8", "replace"))
            raise ValueError(f"GET {shown} did not return JSON ({exc}): {snippet!r}") from None
        found, records = _dig(body, self.records_path)
        if not found:
            if self.pages == 1:
                keys = sorted(body) if isinstance(body, Mapping) else type(body).__name__
                raise ValueError(
                    f"GET {shown}: the records path {self.records_path!r} is not in the response (it has: {keys})"
                )
            records = []
        if records is None:
            records = []
        if isinstance(records, Mapping):
            records = [records]
        if not isinstance(records, list):
            raise ValueError(
                f"GET {shown}: {self.records_path or 'the response'} is a {type(records).__name__}, not a list"
            )
        return response, body, records

    def __iter__(self) -> Iterator[_Page]:
        style = None if self.pagination is None else self.pagination.get("type")
        if style is None:
            yield from self._single()
        elif style == "page_number":
            yield from self._page_number()
        elif style == "offset":
            yield from self._offset()
        elif style == "cursor":
            yield from self._cursor()
        elif style == "link_header":
            yield from self._link_header()
        else:
            raise ValueError(f"unknown pagination type {style!r}")

    def _page(self, response: Any, records: list[Any]) -> _Page:
        return _Page(self.pages, self.client.redact(response.url), records)

    def _single(self) -> Iterator[_Page]:
        response, _, records = self._fetch(self.url, self.params)
        yield self._page(response, records)

    def _page_number(self) -> Iterator[_Page]:
        assert self.pagination is not None
        param = str(self.pagination.get("param") or "page")
        page = int(self.pagination.get("start", 1))
        params = dict(self.params)
        if self.pagination.get("size_param") and self.pagination.get("size"):
            params[str(self.pagination["size_param"])] = int(self.pagination["size"])
        previous: str | None = None
        while True:
            params[param] = page
            response, _, records = self._fetch(self.url, params)
            if not records:
                return
            previous = self._check_progress(previous, response, param)
            yield self._page(response, records)
            page += 1

    def _offset(self) -> Iterator[_Page]:
        assert self.pagination is not None
        param = str(self.pagination.get("param") or "offset")
        limit = int(self.pagination.get("limit") or 100)
        params = dict(self.params)
        params[str(self.pagination.get("limit_param") or "limit")] = limit
        offset = 0
        previous: str | None = None
        while True:
            params[param] = offset
            response, _, records = self._fetch(self.url, params)
            if records:
                previous = self._check_progress(previous, response, param)
                yield self._page(response, records)
            if len(records) < limit:
                return
            offset += len(records)

    def _cursor(self) -> Iterator[_Page]:
        assert self.pagination is not None
        param = str(self.pagination.get("param") or "cursor")
        path = str(self.pagination["cursor_path"])
        params = dict(self.params)
        seen: set[str] = set()
        while True:
            response, body, records = self._fetch(self.url, params)
            yield self._page(response, records)
            _, following = _dig(body, path)
            if following is None or following == "":
                return
            token = to_text(following)
            if token in seen:
                raise ValueError(f"the API returned the cursor at {path!r} twice: stopping instead of looping")
            seen.add(token)
            params[param] = token

    def _link_header(self) -> Iterator[_Page]:
        url: str = self.url
        params: dict[str, Any] | None = dict(self.params)
        seen: set[str] = set()
        while True:
            response, _, records = self._fetch(url, params)
            yield self._page(response, records)
            following = _link_next(response.headers)
            if not following:
                return
            url = urljoin(response.url, following)
            if url in seen:
                raise ValueError(
                    f"the Link header points back to {self.client.redact(url)}: stopping instead of looping"
                )
            seen.add(url)
            params = None  # the next link carries its own query string

    def _check_progress(self, previous: str | None, response: Any, param: str) -> str:
        digest = hashlib.sha256(response.content).hexdigest()
        if digest == previous:
            raise ValueError(
                f"two consecutive pages are identical: does the API honour the {param!r} parameter? "
                "(stopping instead of reading the same page forever)"
            )
        return digest


def _link_next(headers: Mapping[str, str]) -> str | None:
    from platformgen.runtime.http import parse_link_header

    value = next((v for k, v in headers.items() if k.lower() == "link"), None)
    return parse_link_header(value).get("next")


def extract_endpoint(
    platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], *, run_id: str, ingest_date: str
) -> BronzeBatch:
    """Read every page of the endpoint into bronze Parquet; log the extract in data_platform.ingestion_log."""
    from platformgen.runtime.http import redact

    started = dt.datetime.now(dt.UTC)
    secrets: list[str] = []
    try:
        auth = _auth(source)
        secrets = auth.secrets
        batch, received = _extract(platform, source, table, auth, run_id=run_id, ingest_date=ingest_date)
    except Exception as exc:
        message = redact(f"{type(exc).__name__}: {exc}", secrets)
        _log_extract(platform, source, table, run_id=run_id, status="failed", started=started, error=message)
        if any(s and s in str(exc) for s in secrets):
            raise RuntimeError(message) from None
        raise
    note = None
    if batch.quarantined_rows:
        note = f"{batch.quarantined_rows} record(s) quarantined"
    _log_extract(
        platform,
        source,
        table,
        run_id=run_id,
        status="success",
        started=started,
        rows=batch.rows,
        nbytes=received,
        error=note,
    )
    return batch


def _log_extract(
    platform: Mapping[str, Any],
    source: Mapping[str, Any],
    table: Mapping[str, Any],
    *,
    run_id: str,
    status: str,
    started: dt.datetime,
    rows: int | None = None,
    nbytes: int | None = None,
    error: str | None = None,
) -> None:
    """Append the extract row to ingestion_log; a failure to log only warns (it must not hide the real error)."""
    from platformgen.runtime import warehouse

    try:
        with warehouse.connect_warehouse(dict(platform), autocommit=True) as conn:
            warehouse.ensure_platform_schema(conn, dict(platform))
            warehouse.log_ingestion(
                conn,
                dict(platform),
                run_id=run_id,
                source=source["name"],
                dataset=table["dataset"],
                stage="extract",
                status=status,
                rows=rows,
                nbytes=nbytes,
                started_at=started,
                error=error,
            )
    except Exception as exc:
        if status == "success":
            raise
        log.warning("could not record the failed extract in ingestion_log: %s", type(exc).__name__)


def _extract(
    platform: dict[str, Any],
    source: dict[str, Any],
    table: dict[str, Any],
    auth: _Auth,
    *,
    run_id: str,
    ingest_date: str,
) -> tuple[BronzeBatch, int]:
    from platformgen.runtime import arrow_io, warehouse
    from platformgen.runtime.http import HttpClient, RateLimiter

    name, dataset = source["name"], table["dataset"]
    inc: Mapping[str, Any] | None = table.get("incremental")
    params = {str(k): _query_value(v) for k, v in (table.get("params") or {}).items()}
    cursor_column: str | None = None
    ctype: str | None = None
    previous: str | None = None
    if inc:
        cursor_column = str(inc["cursor"])
        ctype = cursor_type(table, cursor_column)
        from platformgen.runtime.extract_postgres import earliest_cursor_of_run

        with warehouse.connect_warehouse(platform, autocommit=True) as conn:
            warehouse.ensure_platform_schema(conn, platform)
            previous = warehouse.get_watermark(conn, platform, name, dataset)
            # a cleared run of this run id runs again: the load replaces its rows, so read them all again
            rerun_from = earliest_cursor_of_run(conn, platform, table, run_id)
        start = previous if previous is not None else inc.get("initial")
        if start is not None:
            lag = int(inc.get("lag_seconds") or 0) if previous is not None else 0  # the lag re-reads after a run
            since = since_value(start, ctype, lag)
            if rerun_from is not None:
                since = earlier_cursor(since, rerun_from, ctype)
            params[str(inc["param"])] = since
            log.info(
                "%s.%s: incremental from %s=%s (%s)",
                name,
                table["name"],
                inc["param"],
                since,
                "watermark" if previous is not None else "initial value",
            )

    coercer = RecordCoercer(table, text=False)
    cursor_index = None if cursor_column is None else coercer.index(cursor_column)
    buffer = ColumnBuffer(coercer.schema)
    quarantine = Quarantine(platform, table, run_id=run_id, ingest_date=ingest_date, source_file=table["name"])
    files: list[BronzeFile] = []
    newest: Any = None

    def flush() -> None:
        files.append(
            arrow_io.write_bronze_parquet(
                platform, table, [buffer.take()], run_id=run_id, ingest_date=ingest_date, part=len(files)
            )
        )

    rate = source.get("rate_limit") or None
    limiter = None if not rate else RateLimiter(int(rate["requests"]), float(rate["per_seconds"]))
    headers = {"Accept": "application/json", "User-Agent": "platformgen", **auth.headers}
    base_url = os.environ.get(base_url_env(name)) or str(source["base_url"])
    url = base_url.rstrip("/") + "/" + str(table["path"]).lstrip("/")
    try:
        with HttpClient(
            headers=headers,
            basic_auth=auth.basic,
            timeout=float(source.get("timeout_seconds") or 30),
            rate_limiter=limiter,
            secrets=auth.secrets,
            sensitive_headers=auth.sensitive,
        ) as client:
            pager = _Pager(client, url, params, table)
            for page in pager:
                log.info("page %d: %d record(s) from %s", page.number, len(page.records), page.url)
                for index, record in enumerate(page.records):
                    try:
                        if not isinstance(record, Mapping):
                            raise CoercionError(f"the record is a {type(record).__name__}, not an object")
                        values = coercer.from_mapping(record)
                    except CoercionError as exc:
                        quarantine.add(
                            {"page": page.number, "index": index, "url": page.url, "error": str(exc), "record": record},
                            f"page {page.number} record {index} of {name}.{table['name']}: {client.redact(str(exc))}",
                        )
                        continue
                    buffer.append(values)
                    if cursor_index is not None:
                        value = values[cursor_index]
                        if value is not None and (newest is None or value > newest):
                            newest = value
                    if buffer.rows >= PART_ROWS:
                        flush()
            received = client.bytes_received
        if buffer.rows or not files:
            flush()
        s3 = arrow_io.s3_client(platform)
        # parts of an earlier, longer attempt of this run would otherwise linger next to this attempt's
        arrow_io.remove_stale_parts(
            s3,
            arrow_io.bronze_bucket(platform),
            arrow_io.run_prefix(table, run_id, ingest_date),
            [f.key for f in files],
        )
        quarantined = quarantine.upload(s3)
    except BaseException:
        quarantine.discard()
        raise
    watermark = None
    if cursor_column is not None:
        watermark = later_cursor(previous, None if newest is None else format_cursor(newest), ctype)
    batch = BronzeBatch(
        source=name,
        dataset=dataset,
        run_id=run_id,
        bucket=str(platform["storage"]["buckets"]["bronze"]),
        files=files,
        cursor=cursor_column,
        watermark=watermark,
        quarantined_rows=quarantine.count,
    )
    log.info(
        "%s.%s: %d record(s) in %d page(s) -> %d bronze file(s)%s",
        name,
        table["name"],
        batch.rows,
        pager.pages,
        len(files),
        f"; {quarantine.count} quarantined in {quarantined}" if quarantined else "",
    )
    return batch, received
