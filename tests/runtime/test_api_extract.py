"""API extract against a real local HTTP server, real PostgreSQL (watermarks, ingestion_log) and moto S3 (bronze)."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformgen.runtime import warehouse
from platformgen.runtime.bronze import BronzeBatch, quarantine_key
from platformgen.runtime.extract_api import extract_endpoint, since_value
from platformgen.runtime.http import HttpError, RateLimiter, RetryPolicy, parse_link_header, parse_retry_after
from platformgen.runtime.load import load_batch
from tests.support.http_server import HttpTestServer, Reply, Request, http_server
from tests.support.services import PgServer, S3Server

TOKEN = "tok-Zq81-very-secret-bearer"
API_KEY = "key-5UPER-secret-api-key"
PASSWORD = "pw-Hunter2-secret-password"

ITEMS: list[dict[str, Any]] = [
    {
        "id": i,
        "name": f"item {i}",
        "amount": f"{i}.{i % 100:02d}",
        "updated_at": f"2024-03-{1 + i // 10:02d}T{i % 24:02d}:00:00Z",
        "extra_field": "ignored",
    }
    for i in range(1, 24)
]


@dataclass
class Env:
    platform: dict[str, Any]
    s3: S3Server
    bucket: str
    db_url: str
    server: HttpTestServer

    def source(self, **extra: Any) -> dict[str, Any]:
        return {
            "name": "shop_api",
            "kind": "api",
            "owner": "data-eng",
            "base_url": self.server.url + "/v1",
            "auth": None,
            "headers": {"Accept": "application/json"},
            "rate_limit": None,
            "timeout_seconds": 5,
            **extra,
        }

    def bronze_rows(self, table: dict[str, Any]) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        client = self.s3.client()
        listing = client.list_objects_v2(Bucket=self.bucket, Prefix=table["bronze_prefix"])
        rows: list[dict[str, Any]] = []
        for item in sorted(listing.get("Contents", []), key=lambda o: o["Key"]):
            body = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            rows.extend(pq.read_table(io.BytesIO(body)).to_pylist())
        return rows

    def quarantined(self, table: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
        key = quarantine_key(table, run_id, "2024-03-10", table["name"])
        body = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines()]

    def log_rows(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(
                "select stage, status, rows, error from data_platform.ingestion_log order by id"
            ).fetchall()


@pytest.fixture(scope="module")
def module_database(pg_server: PgServer) -> Iterator[str]:
    """One database for the module (creating one per test costs more than the tests); `env` empties it."""
    name = pg_server.create_database()
    try:
        yield pg_server.database_url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def pg_database(module_database: str) -> str:
    """The module's database, without the schemas earlier tests created."""
    with psycopg.connect(module_database, autocommit=True) as conn:
        conn.execute("drop schema if exists data_platform cascade")
        conn.execute("drop schema if exists raw cascade")
    return module_database


@pytest.fixture
def env(pg_database: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    monkeypatch.setenv("PLATFORMGEN_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("PLATFORMGEN_HTTP_BACKOFF_BASE", "0.01")
    monkeypatch.setenv("PLATFORMGEN_HTTP_BACKOFF_CAP", "0.05")
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    monkeypatch.setenv("SHOP_KEY", API_KEY)
    monkeypatch.setenv("SHOP_USER", "etl-user")
    monkeypatch.setenv("SHOP_PASSWORD", PASSWORD)
    bucket = f"bronze-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    platform = {
        "name": "test",
        "warehouse": {
            "conn_id": None,
            "host": "unused",
            "port": 5432,
            "database": "unused",
            "user": "",
            "password": "",
        },
        "schemas": {"raw": "raw", "staging": "staging", "intermediate": "intermediate", "marts": "marts"}
        | {"platform": "data_platform"},
        "storage": {
            "endpoint": s3.endpoint_url,
            "region": s3.region,
            "access_key": s3.access_key,
            "secret_key": s3.secret_key,
            "buckets": {"bronze": bucket, "silver": "staging", "gold": "curated"},
            "bronze_format": "parquet",
        },
        "alerting": {"email": None, "slack": None, "routes": []},
    }
    with http_server() as server:
        yield Env(platform, s3, bucket, pg_database, server)


def make_table(**extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "items",
        "dataset": "shop_api.items",
        "raw_table": "shop_api__items",
        "bronze_prefix": "shop_api/items/",
        "columns": [
            {"name": "id", "type": "bigint", "pg_type": "bigint"},
            {"name": "name", "type": "string", "pg_type": "text"},
            {"name": "amount", "type": "decimal(10,2)", "pg_type": "numeric(10,2)"},
            {"name": "updated_at", "type": "timestamptz", "pg_type": "timestamptz"},
        ],
        "primary_key": ["id"],
        "incremental": None,
        "schema_change": {"new_columns": "add", "removed_columns": "fail", "changed_types": "fail"},
        "path": "/items",
        "params": {"status": "active", "expand": True},
        "records": "data.items",
        "pagination": None,
    }
    table.update(extra)
    return table


def run(env: Env, table: dict[str, Any], source: dict[str, Any] | None = None, run_id: str = "r1") -> BronzeBatch:
    return extract_endpoint(env.platform, source or env.source(), table, run_id=run_id, ingest_date="2024-03-10")


def envelope(records: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {"data": {"items": records}, "meta": meta}


# --------------------------------------------------------------------------- servers for each pagination style


def page_number_api(request: Request) -> Reply:
    page, size = int(request.query["page"]), int(request.query["per_page"])
    return Reply(body=envelope(ITEMS[(page - 1) * size : page * size]))


def offset_api(request: Request) -> Reply:
    offset, limit = int(request.query["offset"]), int(request.query["limit"])
    return Reply(body=envelope(ITEMS[offset : offset + limit]))


def cursor_api(request: Request) -> Reply:
    start = int(request.query.get("after", "0"))
    following = start + 10 if start + 10 < len(ITEMS) else None
    return Reply(body=envelope(ITEMS[start : start + 10], next=None if following is None else str(following)))


def link_api(request: Request) -> Reply:
    page = int(request.query.get("page", "1"))
    headers = {}
    if page * 10 < len(ITEMS):
        # relative on odd pages, absolute on even ones; both must be followed
        target = f"/v1/items?page={page + 1}&status=active"
        headers["Link"] = f'<{target}>; rel="next", </v1/items?page=1>; rel="first"'
    return Reply(body=envelope(ITEMS[(page - 1) * 10 : page * 10]), headers=headers)


STYLES: dict[str, tuple[dict[str, Any], Callable[[Request], Reply], int]] = {
    "page_number": (
        {"type": "page_number", "param": "page", "start": 1, "size_param": "per_page", "size": 10},
        page_number_api,
        4,  # 10 + 10 + 3, then the empty page
    ),
    "offset": ({"type": "offset", "param": "offset", "limit_param": "limit", "limit": 10}, offset_api, 3),
    "cursor": ({"type": "cursor", "cursor_path": "meta.next", "param": "after"}, cursor_api, 3),
    "link_header": ({"type": "link_header"}, link_api, 3),
}


def expected_rows() -> list[dict[str, Any]]:
    import datetime as dt

    return [
        {
            "id": item["id"],
            "name": item["name"],
            "amount": Decimal(str(item["amount"])),
            "updated_at": dt.datetime.fromisoformat(str(item["updated_at"])),
        }
        for item in ITEMS
    ]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_pagination_style_reads_every_record_once(env: Env, style: str) -> None:
    pagination, handler, requests = STYLES[style]
    env.server.route("/v1/items", handler)
    table = make_table(pagination=pagination)

    batch = run(env, table)

    assert batch.rows == len(ITEMS)
    assert batch.quarantined_rows == 0
    assert sorted(env.bronze_rows(table), key=lambda r: r["id"]) == expected_rows()
    sent = env.server.requests_to("/v1/items")
    assert len(sent) == requests
    assert all(r.query.get("status") == "active" for r in sent)
    assert sent[0].query["expand"] == "true"
    if style == "page_number":
        assert [r.query["page"] for r in sent] == ["1", "2", "3", "4"]
    if style == "cursor":
        assert [r.query.get("after") for r in sent] == [None, "10", "20"]
    assert env.log_rows() == [("extract", "success", len(ITEMS), None)]


def test_records_at_the_top_level_and_a_missing_records_path(env: Env) -> None:
    env.server.route("/v1/items", lambda r: Reply(body=ITEMS[:5]))
    table = make_table(records=None)
    assert run(env, table).rows == 5

    env.server.route("/v1/items", lambda r: Reply(body={"result": ITEMS}))
    with pytest.raises(ValueError, match=r"records path 'data.items' is not in the response .*result"):
        run(env, make_table(), run_id="r2")
    assert env.log_rows()[-1][:2] == ("extract", "failed")


def test_429_500_and_a_dropped_connection_are_retried_and_every_record_arrives_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    calls = {"n": 0}

    def flaky(request: Request) -> Reply:
        calls["n"] += 1
        if calls["n"] == 2:
            return Reply(429, {"error": "slow down"}, {"Retry-After": "1"})
        if calls["n"] == 4:
            return Reply(500, {"error": "boom"})
        if calls["n"] == 5:
            return Reply(0)  # connection closed without an answer
        return offset_api(request)

    env.server.route("/v1/items", flaky)
    table = make_table(pagination=STYLES["offset"][0])
    caplog.set_level(logging.WARNING)
    started = time.monotonic()

    batch = run(env, table)

    assert time.monotonic() - started < 5  # Retry-After: 1 is capped by PLATFORMGEN_HTTP_BACKOFF_CAP
    assert batch.rows == len(ITEMS)
    rows = env.bronze_rows(table)
    assert sorted(r["id"] for r in rows) == [item["id"] for item in ITEMS]
    assert [r.query["offset"] for r in env.server.requests_to("/v1/items")] == ["0", "10", "10", "20", "20", "20"]
    text = caplog.text
    assert "answered 429" in text
    assert "Retry-After 1s" in text
    assert "answered 500" in text
    assert "ConnectionError" in text


def test_retries_are_bounded(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORMGEN_HTTP_MAX_ATTEMPTS", "3")
    env.server.route("/v1/items", lambda r: Reply(503, {"error": "down"}))
    with pytest.raises(HttpError, match="answered 503 Service Unavailable 3 time"):
        run(env, make_table())
    assert len(env.server.requests_to("/v1/items")) == 3


def test_a_4xx_is_not_retried(env: Env) -> None:
    env.server.route("/v1/items", lambda r: Reply(404, {"error": "no such endpoint"}))
    with pytest.raises(HttpError, match="answered 404"):
        run(env, make_table())
    assert len(env.server.requests_to("/v1/items")) == 1


@pytest.mark.parametrize(
    ("auth", "header", "expected"),
    [
        ({"type": "bearer", "token": "env:SHOP_TOKEN"}, "authorization", f"Bearer {TOKEN}"),
        (
            {"type": "basic", "username": "env:SHOP_USER", "password": "env:SHOP_PASSWORD"},
            "authorization",
            "Basic " + base64.b64encode(f"etl-user:{PASSWORD}".encode()).decode(),
        ),
        ({"type": "api_key", "header": "X-Shop-Key", "key": "env:SHOP_KEY"}, "x-shop-key", API_KEY),
    ],
)
def test_auth_headers_arrive_and_secrets_never_reach_logs_or_errors(
    env: Env, caplog: pytest.LogCaptureFixture, auth: dict[str, Any], header: str, expected: str
) -> None:
    secrets = [TOKEN, API_KEY, PASSWORD, base64.b64encode(f"etl-user:{PASSWORD}".encode()).decode()]
    caplog.set_level(logging.DEBUG)
    source = env.source(auth=auth, headers={"Accept": "application/json", "X-Client": "platformgen-tests"})

    def api(request: Request) -> Reply:
        page = int(request.query.get("page", "1"))
        # the next link echoes the key in its query string, as some APIs do
        link = {"Link": f'<{env.server.url}/v1/items?page=2&api_key={API_KEY}&token={TOKEN}>; rel="next"'}
        return Reply(body=envelope(ITEMS[:3] if page == 1 else ITEMS[3:5]), headers=link if page == 1 else {})

    env.server.route("/v1/items", api)
    batch = run(env, make_table(pagination={"type": "link_header"}), source)
    assert batch.rows == 5
    received = env.server.requests_to("/v1/items")[0]
    assert received.header(header) == expected
    assert received.header("x-client") == "platformgen-tests"

    # the API rejects the credentials and echoes them back: nothing secret in the error, the log or the table
    env.server.route("/v1/items", lambda r: Reply(401, {"error": f"bad credentials {r.header(header)}"}))
    with pytest.raises(HttpError) as failure:
        run(env, make_table(), source, run_id="r2")
    assert "401" in str(failure.value)
    assert "check the credentials" in str(failure.value)
    # a connection error with the key in the URL
    dead = env.source(auth=auth, base_url=f"http://127.0.0.1:9/v1?api_key={API_KEY}")
    with pytest.raises(HttpError) as unreachable:
        run(env, make_table(), dead, run_id="r3")
    logged = caplog.text + "".join(str(row) for row in env.log_rows())
    for secret in secrets:
        assert secret not in str(failure.value)
        assert secret not in str(unreachable.value)
        assert secret not in logged
    assert "GET" in caplog.text  # the request lines were logged, redacted


@pytest.mark.parametrize(
    "auth",
    [{"type": "api_key", "header": "X-Shop-Key", "key": "env:SHOP_KEY"}, {"type": "bearer", "token": "env:SHOP_TOKEN"}],
)
def test_credentials_are_not_sent_along_a_redirect_to_another_host(env: Env, auth: dict[str, Any]) -> None:
    elsewhere = env.server.url.replace("127.0.0.1", "localhost") + "/elsewhere/items"
    env.server.route("/v1/items", lambda r: Reply(302, b"", {"Location": elsewhere}))
    env.server.route("/elsewhere/items", lambda r: Reply(body=envelope(ITEMS[:2])))
    assert run(env, make_table(), env.source(auth=auth)).rows == 2
    first, redirected = env.server.requests
    assert first.header("x-shop-key") == API_KEY or first.header("authorization") == f"Bearer {TOKEN}"
    assert redirected.path == "/elsewhere/items"
    assert redirected.header("x-shop-key") is None
    assert redirected.header("authorization") is None


def test_incremental_parameter_from_the_watermark_and_the_new_watermark(env: Env) -> None:
    env.server.route("/v1/items", lambda r: Reply(body=envelope(ITEMS[10:])))
    inc = {"param": "updated_since", "cursor": "updated_at", "initial": "2024-01-01T00:00:00Z", "lag_seconds": 3600}
    table = make_table(incremental=inc)

    first = run(env, table)  # no watermark yet: the initial value, without lag
    assert env.server.requests[-1].query["updated_since"] == "2024-01-01T00:00:00Z"
    assert first.cursor == "updated_at"
    assert first.watermark == "2024-03-03T23:00:00+00:00"  # max updated_at of ITEMS[10:]

    with warehouse.connect_warehouse(env.platform, autocommit=True) as conn:
        warehouse.set_watermark(conn, env.platform, "shop_api", "shop_api.items", "updated_at", first.watermark, "r1")
    env.server.route("/v1/items", lambda r: Reply(body=envelope(ITEMS[20:])))
    second = run(env, table, run_id="r2")
    assert env.server.requests[-1].query["updated_since"] == "2024-03-03T22:00:00+00:00"  # one hour of lag
    assert second.watermark == "2024-03-03T23:00:00+00:00"

    # nothing new: the watermark stays where it was
    env.server.route("/v1/items", lambda r: Reply(body=envelope([])))
    assert run(env, table, run_id="r3").watermark == "2024-03-03T23:00:00+00:00"


def test_a_cleared_run_reads_again_everything_it_loaded(env: Env) -> None:
    env.server.route("/v1/items", lambda r: Reply(body=envelope(ITEMS[10:])))
    inc = {"param": "updated_since", "cursor": "updated_at", "initial": "2024-03-02T12:00:00Z", "lag_seconds": 3600}
    table = make_table(incremental=inc)
    source = env.source()
    first = run(env, table, source, run_id="r1")
    result = load_batch(env.platform, source, table, first)
    assert result["rows"] == len(ITEMS) - 10

    run(env, table, source, run_id="r2")  # another run starts at the committed watermark, minus the lag
    assert env.server.requests[-1].query["updated_since"] == "2024-03-03T22:00:00+00:00"
    run(env, table, source, run_id="r1")  # r1 again: its load replaces its rows, so it reads them all again
    assert env.server.requests[-1].query["updated_since"] == "2024-03-02T11:00:00+00:00"  # ITEMS[10] is id 11


def test_date_cursor_lag_in_days() -> None:
    assert since_value("2024-01-26", "date", 3 * 86400) == "2024-01-23"
    assert since_value("2024-01-26", "date", 3600) == "2024-01-25"
    assert since_value(1500, "bigint", 3600) == "1500"
    assert since_value("2024-05-01T00:00:00Z", "timestamptz", 3600) == "2024-04-30T23:00:00Z"


def test_bad_records_are_quarantined_with_page_and_index(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    bad: list[Any] = [dict(item) for item in ITEMS]
    bad[12]["amount"] = "twelve"  # page 2, index 2
    bad[15]["id"] = "x-15"  # page 2, index 5
    bad[21]["updated_at"] = "yesterday"  # page 3, index 1
    bad[5] = "not an object"  # page 1, index 5
    env.server.route(
        "/v1/items",
        lambda r: Reply(body=envelope(bad[int(r.query["offset"]) : int(r.query["offset"]) + 10])),
    )
    table = make_table(pagination=STYLES["offset"][0])
    caplog.set_level(logging.WARNING)

    batch = run(env, table)

    assert batch.quarantined_rows == 4
    assert batch.rows == len(ITEMS) - 4
    kept = env.quarantined(table, "r1")
    assert [(q["page"], q["index"]) for q in kept] == [(1, 5), (2, 2), (2, 5), (3, 1)]
    assert "column amount" in kept[1]["error"]
    assert kept[1]["record"]["amount"] == "twelve"
    assert "page 2 record 2" in caplog.text
    assert "page 3 record 1" in caplog.text
    assert "column updated_at" in caplog.text
    assert sorted(r["id"] for r in env.bronze_rows(table)) == sorted(
        item["id"] for i, item in enumerate(ITEMS) if i not in (5, 12, 15, 21)
    )
    assert env.log_rows() == [("extract", "success", len(ITEMS) - 4, "4 record(s) quarantined")]


def test_rate_limit_spaces_the_requests(env: Env) -> None:
    env.server.route("/v1/items", page_number_api)
    table = make_table(pagination=STYLES["page_number"][0])
    started = time.monotonic()
    run(env, table, env.source(rate_limit={"requests": 1, "per_seconds": 0.25}))
    elapsed = time.monotonic() - started
    assert elapsed >= 0.75  # 4 requests, at most 1 per 0.25 s


# --------------------------------------------------------------------------- helpers without a server


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1.5)
    policy = RetryPolicy(attempts=6, base=0.5, cap=10)
    assert policy.delay(1, retry_after=4) == 4
    assert policy.delay(1, retry_after=99) == 10
    assert 1.0 <= policy.delay(3) <= 2.0


def test_link_header_parsing() -> None:
    value = '<https://a.example/x?page=2>; rel="next", <https://a.example/x?page=9>; rel="last prev"'
    assert parse_link_header(value) == {
        "next": "https://a.example/x?page=2",
        "last": "https://a.example/x?page=9",
        "prev": "https://a.example/x?page=9",
    }
    assert parse_link_header('<https://a.example/y>; title="a, b"; rel=next') == {"next": "https://a.example/y"}
    assert parse_link_header(None) == {}


def test_rate_limiter_sliding_window() -> None:
    clock = {"t": 0.0}
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock["t"] += seconds

    limiter = RateLimiter(2, 1.0, clock=lambda: clock["t"], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert waits == [1.0, 1.0]


# --------------------------------------------------------------------------- the reference specs and their samples


SAMPLE_APIS = {
    # source: (spec folder, endpoint path, pagination style, auth header the server must see)
    "fx_rates": ("specs", "/rates/daily", "cursor", "authorization"),
    "sensor_api": ("examples/iot_sensors", "/readings", "offset", "x-api-key"),
    "payments_api": ("examples/saas_billing", "/charges", "link_header", "authorization"),
}


@pytest.mark.parametrize("name", sorted(SAMPLE_APIS))
def test_reference_spec_samples_through_tasks_extract_and_the_load(
    env: Env, repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    from platformgen.compiler import load_plan
    from platformgen.runtime import tasks
    from platformgen.targets.runtime_config import platform_config, source_config, table_config

    folder, path, style, auth_header = SAMPLE_APIS[name]
    for variable in ("FX_API_TOKEN", "SENSOR_API_KEY", "PAYMENTS_API_USER", "PAYMENTS_API_PASSWORD"):
        monkeypatch.setenv(variable, f"{variable.lower()}-{TOKEN}")
    plan = load_plan(repo / folder)
    spec_source = next(s for s in plan.sources if s.name == name)
    spec_table = next(t for t in plan.tables if t.source == name)
    source, table = source_config(spec_source), table_config(plan, spec_table)
    source["base_url"] = env.server.url + "/v1"
    platform = {**platform_config(plan), "storage": env.platform["storage"], "schemas": env.platform["schemas"]}
    sample = repo / folder / str(spec_source.spec.sample) / spec_table.name
    pages = [json.loads(p.read_text()) for p in sorted(sample.glob("page-*.json"))]
    cursors = {None: 0} | {
        p["meta"]["next_cursor"]: i + 1 for i, p in enumerate(pages) if style == "cursor" and p["meta"]["next_cursor"]
    }

    def api(request: Request) -> Reply:
        if style == "cursor":
            return Reply(body=pages[cursors[request.query.get("cursor")]])
        if style == "offset":
            return Reply(body=pages[int(request.query["offset"]) // int(request.query["limit"])])
        index = int(request.query.get("page", "1")) - 1
        more = index + 1 < len(pages)
        link = {"Link": f'<{env.server.url}/v1{path}?page={index + 2}&limit=50>; rel="next"'} if more else {}
        return Reply(body=pages[index], headers=link)

    env.server.route("/v1" + path, api)
    caplog.set_level(logging.DEBUG)

    manifest = tasks.extract(platform, source, table, run_id="scheduled__2024-03-01T06:00:00+00:00")
    batch = BronzeBatch.from_dict(manifest)
    result = load_batch(platform, source, table, batch)

    records = sum(len(_records(p, table["records"])) for p in pages)
    assert batch.rows == result["rows"] == records
    assert batch.quarantined_rows == 0
    assert len(env.server.requests) == len(pages)
    first = env.server.requests[0]
    assert first.query[table["incremental"]["param"]] == str(table["incremental"]["initial"])
    expected = {
        "fx_rates": f"Bearer fx_api_token-{TOKEN}",
        "sensor_api": f"sensor_api_key-{TOKEN}",
        "payments_api": "Basic "
        + base64.b64encode(f"payments_api_user-{TOKEN}:payments_api_password-{TOKEN}".encode()).decode(),
    }
    assert first.header(auth_header) == expected[name]
    assert TOKEN not in caplog.text
    with psycopg.connect(env.db_url) as conn:
        watermark = conn.execute("select value from data_platform.watermarks").fetchone()
    assert watermark == (batch.watermark,)


def _records(page: Any, path: str | None) -> list[Any]:
    for part in (path or "").split(".") if path else []:
        page = page[part]
    return list(page)


def test_record_coercion_is_exact_and_strict() -> None:
    import datetime as dt

    from platformgen.runtime.extract_api import CoercionError, RecordCoercer, parse_json

    columns = {"d": "decimal(38,18)", "i": "integer", "b": "boolean", "t": "timestamp", "j": "json", "s": "string"}
    coercer = RecordCoercer({"columns": [{"name": k, "type": v} for k, v in columns.items()]}, text=False)
    record = parse_json(
        '{"d": 0.123456789012345678, "i": 5.0, "b": "yes", "t": "2024-01-01T10:00:00+02:00", '
        '"j": {"x": 1.5, "y": [1, null]}, "s": 12, "extra": 1}'
    )
    assert coercer.from_mapping(record) == [
        Decimal("0.123456789012345678"),
        5,
        True,
        dt.datetime(2024, 1, 1, 8, 0),
        '{"x":1.5,"y":[1,null]}',
        "12",
    ]
    assert coercer.from_mapping({}) == [None] * 6
    assert coercer.from_mapping({"d": "", "i": " "}) == [None] * 6  # blank numbers are null
    for bad in ({"i": 2**31}, {"i": 1.5}, {"i": True}, {"b": "maybe"}, {"d": "1e30"}, {"t": "yesterday"}):
        with pytest.raises(CoercionError, match=f"column {next(iter(bad))}: "):
            coercer.from_mapping(bad)
