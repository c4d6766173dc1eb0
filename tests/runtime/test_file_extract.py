"""File extract against real landing files (local folder and moto S3), real PostgreSQL and the real load."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformgen.runtime import extract_files as files_module
from platformgen.runtime.bronze import BronzeBatch, quarantine_key
from platformgen.runtime.extract_files import extract_files, glob_regex
from platformgen.runtime.load import load_batch
from tests.support.services import PgServer, S3Server

SPEND_COLUMNS = [
    {"name": "day", "type": "date", "pg_type": "date"},
    {"name": "channel", "type": "string", "pg_type": "text"},
    {"name": "campaign", "type": "string", "pg_type": "text"},
    {"name": "spend_eur", "type": "decimal(12,2)", "pg_type": "numeric(12,2)"},
    {"name": "impressions", "type": "bigint", "pg_type": "bigint"},
    {"name": "clicks", "type": "bigint", "pg_type": "bigint"},
]
EVENT_COLUMNS = [
    {"name": "event_id", "type": "string", "pg_type": "text"},
    {"name": "event_type", "type": "string", "pg_type": "text"},
    {"name": "customer_id", "type": "bigint", "pg_type": "bigint"},
    {"name": "occurred_at", "type": "timestamptz", "pg_type": "timestamptz"},
    {"name": "properties", "type": "json", "pg_type": "jsonb"},
]


def make_table(name: str, pattern: str, columns: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "dataset": f"landing.{name}",
        "raw_table": f"landing__{name}",
        "bronze_prefix": f"landing/{name}/",
        "columns": columns,
        "primary_key": [],
        "incremental": None,
        "schema_change": {"new_columns": "add", "removed_columns": "fail", "changed_types": "fail"},
        "pattern": pattern,
        "format": None,
        "delimiter": None,
        "load_mode": "append",
        **extra,
    }


@dataclass
class Env:
    platform: dict[str, Any]
    s3: S3Server
    bucket: str
    db_url: str
    root: Path

    def source(self, location: str = "landing", **extra: Any) -> dict[str, Any]:
        return {
            "name": "landing",
            "kind": "file",
            "owner": "analytics",
            "location": location,
            "format": "csv",
            "delimiter": ",",
            "header": True,
            "encoding": "utf-8",
            **extra,
        }

    def write(self, relative: str, data: bytes | str, encoding: str = "utf-8") -> Path:
        path = self.root / "landing" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
        return path

    def bronze_rows(self, batch: BronzeBatch) -> dict[str, list[dict[str, Any]]]:
        """Rows of each bronze part, by landing file."""
        import pyarrow.parquet as pq

        client = self.s3.client()
        out: dict[str, list[dict[str, Any]]] = {}
        for file in batch.files:
            body = client.get_object(Bucket=self.bucket, Key=file.key)["Body"].read()
            out[str(file.source_file)] = pq.read_table(io.BytesIO(body)).to_pylist()
        return out

    def quarantined(self, table: dict[str, Any], run_id: str, source_file: str) -> list[dict[str, Any]]:
        key = quarantine_key(table, run_id, "2024-03-10", source_file)
        body = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines()]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(sql).fetchall()


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
def env(pg_database: str, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    monkeypatch.setenv("PLATFORMGEN_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("PLATFORMGEN_PROJECT_ROOT", str(tmp_path))
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
    return Env(platform, s3, bucket, pg_database, tmp_path)


def run(env: Env, source: dict[str, Any], table: dict[str, Any], run_id: str = "r1") -> BronzeBatch:
    return extract_files(env.platform, source, table, run_id=run_id, ingest_date="2024-03-10")


LATIN1_CSV = (
    "day;channel;campaign;spend_eur;impressions;clicks\n"  # line 1
    "2024-01-01;google_ads;Café crème;321.95;20458;644\n"  # 2
    '2024-01-01;meta_ads;"Müller; ""winter""\nsecond line";287.91;36563;489\n'  # 3-4: quoted ; and newline
    "2024-01-02;newsletter;extra field;1.00;10;1;oops\n"  # 5: 7 fields
    "\n"  # 6: blank
    "2024-01-02;affiliate;Zürich;12,x;100;5\n"  # 7: not a decimal
    "2024-01-03;affiliate;;0.5;;\n"  # 8: empty fields -> null
    "2024-13-01;affiliate;bad day;1;1;1\n"  # 9: not a date
)


def test_csv_with_semicolons_latin1_quarantines_malformed_rows_with_file_and_line(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    path = env.write("spend_2024-01.csv", LATIN1_CSV, encoding="latin-1")
    env.write("other.csv", "not,matched\n")
    source = env.source(delimiter=";", encoding="latin-1")
    table = make_table("spend", "spend_*.csv", SPEND_COLUMNS)
    caplog.set_level(logging.WARNING)

    batch = run(env, source, table)

    name = "landing/spend_2024-01.csv"
    assert [(f.source_file, f.checksum) for f in batch.files] == [(name, hashlib.sha256(path.read_bytes()).hexdigest())]
    rows = env.bronze_rows(batch)[name]
    assert rows == [
        {
            "day": dt.date(2024, 1, 1),
            "channel": "google_ads",
            "campaign": "Café crème",
            "spend_eur": Decimal("321.95"),
            "impressions": 20458,
            "clicks": 644,
        },
        {
            "day": dt.date(2024, 1, 1),
            "channel": "meta_ads",
            "campaign": 'Müller; "winter"\nsecond line',
            "spend_eur": Decimal("287.91"),
            "impressions": 36563,
            "clicks": 489,
        },
        {
            "day": dt.date(2024, 1, 3),
            "channel": "affiliate",
            "campaign": None,
            "spend_eur": Decimal("0.50"),
            "impressions": None,
            "clicks": None,
        },
    ]
    assert batch.quarantined_rows == 3
    bad = env.quarantined(table, "r1", name)
    assert [(q["file"], q["line"]) for q in bad] == [(name, 5), (name, 7), (name, 9)]
    assert bad[0]["raw"] == "2024-01-02;newsletter;extra field;1.00;10;1;oops"
    assert bad[0]["error"] == "expected 6 fields, found 7"
    assert "column spend_eur" in bad[1]["error"]
    assert bad[1]["raw"] == "2024-01-02;affiliate;Zürich;12,x;100;5"
    assert "column day" in bad[2]["error"]
    assert f"{name}:5" in caplog.text
    assert f"{name}:7" in caplog.text
    log_rows = env.query(
        "select stage, status, rows, file_name, file_checksum is not null, error from data_platform.ingestion_log "
        "order by id"
    )
    assert log_rows == [
        ("extract", "success", 3, name, True, f"3 row(s) quarantined in s3://{env.bucket}/{bad_key(table, name)}"),
        ("extract", "success", 3, None, False, None),
    ]


def bad_key(table: dict[str, Any], name: str) -> str:
    return quarantine_key(table, "r1", "2024-03-10", name)


def test_csv_without_header_and_a_utf8_bom(env: Env) -> None:
    env.write("a.csv", "\ufeff2024-01-01,x,c,1.5,1,2\n2024-01-02,y,,2,3,4\n")
    batch = run(env, env.source(header=False), make_table("spend", "*.csv", SPEND_COLUMNS))
    rows = env.bronze_rows(batch)["landing/a.csv"]
    assert [r["day"] for r in rows] == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    assert rows[1]["campaign"] is None
    assert batch.quarantined_rows == 0


def test_a_file_in_the_wrong_encoding_fails_with_a_clear_message(env: Env) -> None:
    env.write("spend_x.csv", LATIN1_CSV, encoding="latin-1")
    source = env.source(delimiter=";")  # declared utf-8
    with pytest.raises(ValueError, match=r"landing/spend_x.csv: the text after line \d+ is not utf-8"):
        run(env, source, make_table("spend", "spend_*.csv", SPEND_COLUMNS))
    assert env.query("select stage, status, file_name from data_platform.ingestion_log") == [
        ("extract", "failed", "landing/spend_x.csv")
    ]


EVENTS = [
    {
        "event_id": f"e{i}",
        "event_type": "page_view",
        "customer_id": None if i % 2 else i,
        "occurred_at": f"2024-01-01T0{i}:00:00+01:00",
        "properties": {"page": f"/p/{i}", "tags": ["a", "b"]},
        "ignored": True,
    }
    for i in range(1, 6)
]


def test_jsonl_quarantines_bad_lines_and_loads_the_rest(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "BATCH_ROWS", 2)  # several record batches in one part
    lines = [json.dumps(e) for e in EVENTS]
    lines.insert(2, '{"event_id": "broken", ')  # line 3
    lines.insert(4, "[1, 2]")  # line 5
    lines.insert(5, "")  # line 6: blank
    lines.append(json.dumps({**EVENTS[0], "event_id": "late", "customer_id": "n/a"}))  # line 9
    env.write("events/events_2024-01.jsonl", "\n".join(lines) + "\n")
    table = make_table("web_events", "events/events_*.jsonl", EVENT_COLUMNS)

    batch = run(env, env.source(format="jsonl"), table)

    name = "landing/events/events_2024-01.jsonl"
    rows = env.bronze_rows(batch)[name]
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3", "e4", "e5"]
    assert rows[0]["occurred_at"] == dt.datetime(2024, 1, 1, 0, 0, tzinfo=dt.UTC)
    assert json.loads(rows[0]["properties"]) == {"page": "/p/1", "tags": ["a", "b"]}
    assert rows[1]["customer_id"] == 2
    bad = env.quarantined(table, "r1", name)
    assert [(q["line"], q["error"].split(":")[0]) for q in bad] == [
        (3, "invalid JSON"),
        (5, "the record is a JSON list, not an object"),
        (9, "column customer_id"),
    ]
    assert bad[0]["raw"] == '{"event_id": "broken", '
    assert batch.quarantined_rows == 3


def test_json_documents_an_array_and_an_object_with_a_list(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "_CHUNK", 7)  # values cut across many reads
    env.write("array.json", json.dumps(EVENTS[:3], indent=2))
    env.write("object.json", json.dumps({"exported": "2024-01-02", "warnings": [], "items": EVENTS[3:]}, indent=2))
    env.write("empty.json", "[]")
    # table-level format overrides the source's csv
    table = make_table("web_events", "*.json", EVENT_COLUMNS, format="json")

    batch = run(env, env.source(), table)

    rows = env.bronze_rows(batch)
    assert [r["event_id"] for r in rows["landing/array.json"]] == ["e1", "e2", "e3"]
    assert [r["event_id"] for r in rows["landing/object.json"]] == ["e4", "e5"]
    assert rows["landing/empty.json"] == []
    assert rows["landing/array.json"][0]["customer_id"] is None
    assert batch.quarantined_rows == 0


def test_a_broken_json_document_keeps_the_records_before_the_error(env: Env) -> None:
    text = json.dumps(EVENTS[:2], indent=2)[:-2] + ',\n  {"event_id": "e3", oops}\n]'
    env.write("broken.json", text)
    table = make_table("web_events", "*.json", EVENT_COLUMNS)

    batch = run(env, env.source(format="json"), table)

    assert [r["event_id"] for r in env.bronze_rows(batch)["landing/broken.json"]] == ["e1", "e2"]
    (bad,) = env.quarantined(table, "r1", "landing/broken.json")
    assert bad["line"] == text[: text.index("oops")].count("\n") + 1
    assert bad["error"].startswith("invalid JSON: line")
    assert "oops" in bad["raw"]
    assert batch.quarantined_rows == 1


def test_loaded_files_are_skipped_and_changed_files_ingested_again(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.write("spend_2024-01.csv", "day,channel,campaign,spend_eur,impressions,clicks\n2024-01-01,a,x,1,1,1\n")
    env.write("spend_2024-02.csv", "day,channel,campaign,spend_eur,impressions,clicks\n2024-02-01,b,y,2,2,2\n")
    source = env.source()
    table = make_table("spend", "spend_*.csv", SPEND_COLUMNS)

    first = run(env, source, table, run_id="r1")
    assert [f.source_file for f in first.files] == ["landing/spend_2024-01.csv", "landing/spend_2024-02.csv"]
    load_batch(env.platform, source, table, first)

    # nothing new: both files are skipped
    caplog.set_level(logging.INFO)
    second = run(env, source, table, run_id="r2")
    assert second.files == []
    assert "already loaded" in caplog.text

    # an extract whose load never ran does not count: its files are extracted again by the next run
    env.write("spend_2024-03.csv", "day,channel,campaign,spend_eur,impressions,clicks\n2024-03-01,c,z,3,3,3\n")
    assert [f.source_file for f in run(env, source, table, run_id="r3").files] == ["landing/spend_2024-03.csv"]

    # February is corrected: a new checksum, so it is ingested again (with March, whose load has not run)
    env.write("spend_2024-02.csv", "day,channel,campaign,spend_eur,impressions,clicks\n2024-02-01,b,y,2.5,2,2\n")
    fourth = run(env, source, table, run_id="r4")
    assert [f.source_file for f in fourth.files] == ["landing/spend_2024-02.csv", "landing/spend_2024-03.csv"]
    load_batch(env.platform, source, table, fourth)
    assert run(env, source, table, run_id="r5").files == []

    # a cleared run that runs again re-extracts the files it loaded (its load replaces its own rows)
    again = run(env, source, table, run_id="r4")
    assert [f.source_file for f in again.files] == ["landing/spend_2024-02.csv", "landing/spend_2024-03.csv"]


def test_a_retried_run_leaves_no_stale_parts(env: Env) -> None:
    header = "day,channel,campaign,spend_eur,impressions,clicks\n"
    env.write("spend_1.csv", header + "2024-01-01,a,x,1,1,1\n")
    second = env.write("spend_2.csv", header + "2024-01-02,b,y,2,2,2\n")
    source, table = env.source(), make_table("spend", "spend_*.csv", SPEND_COLUMNS)
    assert len(run(env, source, table).files) == 2
    second.unlink()
    retried = run(env, source, table)
    listing = env.s3.client().list_objects_v2(Bucket=env.bucket, Prefix=table["bronze_prefix"])
    assert [o["Key"] for o in listing["Contents"]] == [f.key for f in retried.files]


def test_raw_keeps_the_rows_of_earlier_files(env: Env) -> None:
    env.write("spend_2024-01.csv", "day,channel,campaign,spend_eur,impressions,clicks\n2024-01-01,a,x,1,1,1\n")
    source = env.source()
    table = make_table("spend", "spend_*.csv", SPEND_COLUMNS)
    load_batch(env.platform, source, table, run(env, source, table, run_id="r1"))
    env.write("spend_2024-02.csv", "day,channel,campaign,spend_eur,impressions,clicks\n2024-02-01,b,y,2,2,2\n")
    load_batch(env.platform, source, table, run(env, source, table, run_id="r2"))
    assert env.query("select _source_file from raw.landing__spend order by 1") == [
        ("landing/spend_2024-01.csv",),
        ("landing/spend_2024-02.csv",),
    ]


def test_s3_prefix_location(env: Env) -> None:
    landing = f"landing-{uuid.uuid4().hex[:8]}"
    client = env.s3.client()
    client.create_bucket(Bucket=landing)
    header = "day,channel,campaign,spend_eur,impressions,clicks\n"
    objects = {
        "marketing/spend_2024-01.csv": header + "2024-01-01,a,x,1,1,1\n2024-01-02,a,x,1,1,1,1\n",
        "marketing/spend_2024-02.csv": header + "2024-02-01,b,y,2,2,2\n",
        "marketing/archive/spend_2023-12.csv": header + "2023-12-01,c,z,3,3,3\n",  # not matched: another folder
        "marketing/readme.txt": "not data",
        "other/spend_2024-01.csv": header + "2024-01-01,d,w,4,4,4\n",  # outside the prefix
    }
    for key, body in objects.items():
        client.put_object(Bucket=landing, Key=key, Body=body.encode())
    source = env.source(location=f"s3://{landing}/marketing")
    table = make_table("spend", "spend_*.csv", SPEND_COLUMNS)

    batch = run(env, source, table)

    names = [f"s3://{landing}/marketing/spend_2024-01.csv", f"s3://{landing}/marketing/spend_2024-02.csv"]
    assert [f.source_file for f in batch.files] == names
    first = objects["marketing/spend_2024-01.csv"].encode()
    assert batch.files[0].checksum == hashlib.sha256(first).hexdigest()
    rows = env.bronze_rows(batch)
    assert [r["channel"] for r in rows[names[0]]] == ["a"]
    assert [(q["file"], q["line"]) for q in env.quarantined(table, "r1", names[0])] == [(names[0], 3)]

    load_batch(env.platform, source, table, batch)
    assert run(env, source, table, run_id="r2").files == []
    recursive = make_table("spend", "**/spend_*.csv", SPEND_COLUMNS)
    assert [f.source_file for f in run(env, source, recursive, run_id="r3").files] == [
        f"s3://{landing}/marketing/archive/spend_2023-12.csv"
    ]


def test_missing_local_folder(env: Env) -> None:
    with pytest.raises(FileNotFoundError, match=r"landing folder .*nowhere does not exist"):
        run(env, env.source(location="nowhere"), make_table("spend", "*.csv", SPEND_COLUMNS))


def test_glob_patterns() -> None:
    assert glob_regex("spend_*.csv").match("spend_2024-01.csv")
    assert not glob_regex("spend_*.csv").match("sub/spend_2024-01.csv")
    assert glob_regex("**/spend_*.csv").match("spend_1.csv")
    assert glob_regex("**/spend_*.csv").match("a/b/spend_1.csv")
    assert glob_regex("events/202[34]-??.jsonl").match("events/2024-01.jsonl")
    assert not glob_regex("events/202[!34]-??.jsonl").match("events/2024-01.jsonl")
    assert not glob_regex("spend.csv").match("spendxcsv")


# --------------------------------------------------------------------------- the reference specs and their samples


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("specs", "marketing"),  # csv
        ("specs", "events"),  # jsonl with a json column
        ("examples/iot_sensors", "maintenance"),  # json arrays
        ("examples/saas_billing", "usage"),  # csv with a table-level ';' delimiter
    ],
)
def test_reference_spec_samples_through_tasks_extract_and_the_load(
    env: Env, repo: Path, folder: str, name: str
) -> None:
    from platformgen.compiler import load_plan
    from platformgen.runtime import tasks
    from platformgen.targets.runtime_config import platform_config, source_config, table_config

    plan = load_plan(repo / folder)
    spec_source = next(s for s in plan.sources if s.name == name)
    spec_table = next(t for t in plan.tables if t.source == name)
    source, table = source_config(spec_source), table_config(plan, spec_table)
    # the sample folder as a landing location, relative to PLATFORMGEN_PROJECT_ROOT
    env.root.joinpath("landing").symlink_to(repo / folder / str(spec_source.spec.sample))
    source["location"] = "landing"
    platform = {**platform_config(plan), "storage": env.platform["storage"], "schemas": env.platform["schemas"]}

    batch = BronzeBatch.from_dict(tasks.extract(platform, source, table, run_id="manual__2024-03-10"))
    result = load_batch(platform, source, table, batch)

    landing = sorted(p.name for p in (repo / folder / str(spec_source.spec.sample)).iterdir())
    assert [str(f.source_file).rsplit("/", 1)[-1] for f in batch.files] == landing
    assert batch.quarantined_rows == 0
    assert batch.rows == result["rows"] > 0
    assert run(env, source, table, run_id="manual__2024-03-11").files == []
