"""Alert routing and delivery against a real local Slack-webhook stand-in, a real SMTP sink and PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import functools
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from platformgen.runtime import callbacks
from platformgen.runtime.alerts import raise_alert, resolve_recipients, route_names

WEBHOOK_SECRET = "T0000/B0000/XXXXsecretTOKEN"
SMTP_PASSWORD = "smtp-pa55word-never-logged"

# --------------------------------------------------------------------------- a Slack incoming webhook stand-in


@dataclass
class SlackStub:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    status: int = 200


@contextlib.contextmanager
def slack_stub() -> Iterator[SlackStub]:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> that records JSON POSTs like Slack's webhook."""
    stub = SlackStub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            stub.paths.append(self.path)
            stub.posts.append(json.loads(body))
            self.send_response(stub.status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if stub.status == 200 else b"invalid_payload")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/services/{WEBHOOK_SECRET}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- an SMTP sink (standard library only)


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)

    def parsed(self, index: int = -1) -> EmailMessage:
        message = email.message_from_bytes(self.messages[index]["data"], policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Enough ESMTP for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT (no STARTTLS)."""

    sink: SmtpSink

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 sink.test ESMTP ready")
        envelope: dict[str, Any] = {"rcpt": [], "auth": None}
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink.test\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 sink.test")
            elif verb == "AUTH":
                parts = line.split()
                token = base64.b64decode(parts[2]).split(b"\0") if len(parts) > 2 else []
                envelope["auth"] = (token[1].decode(), token[2].decode()) if len(token) == 3 else None
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                envelope["from"] = line.split(":", 1)[1].split()[0].strip("<>")
                self.reply("250 OK")
            elif verb == "RCPT":
                envelope["rcpt"].append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks: list[bytes] = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b""):
                        break
                    chunks.append(data[1:] if data.startswith(b"..") else data)
                self.sink.messages.append({**envelope, "rcpt": list(envelope["rcpt"]), "data": b"".join(chunks)})
                envelope["rcpt"] = []
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


@contextlib.contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    """A threaded SMTP server on 127.0.0.1:<free port> that keeps every message it receives."""
    sink = SmtpSink("127.0.0.1", 0)

    class Handler(_SmtpHandler):
        pass

    Handler.sink = sink
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- fixtures


def make_platform(routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The platform dict the generated DAGs embed (shape of targets/runtime_config.py)."""
    return {
        "name": "acme_shop",
        "warehouse": {
            "conn_id": None,
            "host": "env:WAREHOUSE_HOST",
            "port": 5432,
            "database": "warehouse",
            "user": "env:WAREHOUSE_USER",
            "password": "env:WAREHOUSE_PASSWORD",
            "sslmode": "prefer",
        },
        "schemas": {
            "raw": "raw",
            "staging": "staging",
            "intermediate": "intermediate",
            "marts": "marts",
            "platform": "data_platform",
        },
        "storage": {
            "endpoint": "http://minio:9000",
            "region": "us-east-1",
            "access_key": "env:MINIO_ROOT_USER",
            "secret_key": "env:MINIO_ROOT_PASSWORD",
            "buckets": {"bronze": "raw", "silver": "staging", "gold": "curated"},
            "bronze_format": "parquet",
        },
        "alerting": {
            "email": {"to": ["data-oncall@acme.example"], "from": "airflow@acme.example"},
            "slack": {"channel": "#data-alerts", "webhook": "env:SLACK_WEBHOOK_URL"},
            "routes": routes
            if routes is not None
            else [
                {"severity": "error", "owner": None, "notify": ["email", "slack"]},
                {"severity": "warn", "owner": None, "notify": ["slack"]},
                {"severity": "any", "owner": "analytics", "notify": ["analytics@acme.example"]},
            ],
        },
    }


@pytest.fixture
def warehouse(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The runtime's warehouse is the test database (through the PLATFORMGEN_WAREHOUSE_URL override)."""
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    return pg_database


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStub]:
    with slack_stub() as stub:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", stub.url)
        yield stub


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        monkeypatch.setenv("SMTP_HOST", sink.host)
        monkeypatch.setenv("SMTP_PORT", str(sink.port))
        monkeypatch.setenv("SMTP_STARTTLS", "false")
        monkeypatch.setenv("SMTP_USER", "alerts")
        monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
        monkeypatch.delenv("SMTP_FROM", raising=False)
        yield sink


def alert_rows(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select kind, severity, dataset, dag_id, task_id, run_id, message, channels, delivered "
            "from data_platform.alerts order by id"
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --------------------------------------------------------------------------- routing (pure)


def test_routes_match_severity_any_and_owner() -> None:
    routes = make_platform()["alerting"]["routes"]
    assert route_names(routes, "error", None) == ["email", "slack"]
    assert route_names(routes, "warn", None) == ["slack"]
    assert route_names(routes, "warn", "analytics") == ["slack", "analytics@acme.example"]
    assert route_names(routes, "error", "data-platform") == ["email", "slack"]


def test_recipients_resolve_channels_addresses_and_teams() -> None:
    platform = make_platform()
    got = resolve_recipients(platform, ["email", "slack", "bob@acme.example", "data-oncall@acme.example", "analytics"])
    assert got.emails == ["data-oncall@acme.example", "bob@acme.example"]
    assert got.slack is True
    assert got.unresolved == ["analytics"]
    assert got.channels(platform) == ["slack:#data-alerts", "email:data-oncall@acme.example", "email:bob@acme.example"]
    # A config that carries team addresses resolves them.
    platform["teams"] = {"analytics": {"email": "analytics@acme.example"}}
    assert resolve_recipients(platform, ["analytics"]).emails == ["analytics@acme.example"]
    # Channels the platform does not configure do not resolve.
    platform["alerting"]["slack"] = None
    platform["alerting"]["email"] = None
    none = resolve_recipients(platform, ["email", "slack"])
    assert (none.emails, none.slack, none.unresolved) == ([], False, ["email", "slack"])


# --------------------------------------------------------------------------- delivery


def test_error_alert_goes_to_slack_and_email_and_is_recorded(
    warehouse: str, slack: SlackStub, smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="platformgen")
    channels = raise_alert(
        make_platform(),
        kind="task_failure",
        severity="error",
        message="Task acme_shop__ingest__shop_db.orders.load failed: boom",
        dataset="shop_db.orders",
        dag_id="acme_shop__ingest__shop_db",
        task_id="orders.load",
        run_id="scheduled__2024-05-01T00:00:00+00:00",
        owner="data-platform",
    )
    assert channels == ["slack:#data-alerts", "email:data-oncall@acme.example"]
    assert len(slack.posts) == 1
    assert set(slack.posts[0]) == {"text"}
    text = slack.posts[0]["text"]
    assert "acme_shop__ingest__shop_db.orders.load" in text
    assert "ERROR task_failure" in text
    assert "boom" in text
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["rcpt"] == ["data-oncall@acme.example"]
    assert smtp.messages[0]["from"] == "airflow@acme.example"
    assert smtp.messages[0]["auth"] == ("alerts", SMTP_PASSWORD)
    message = smtp.parsed()
    assert message["Subject"] == (
        "[acme_shop] ERROR task_failure: shop_db.orders (acme_shop__ingest__shop_db.orders.load)"
    )
    assert message["To"] == "data-oncall@acme.example"
    body = message.get_content()
    assert "boom" in body
    assert "run: scheduled__2024-05-01T00:00:00+00:00" in body
    [row] = alert_rows(warehouse)
    assert row["kind"] == "task_failure"
    assert row["severity"] == "error"
    assert row["dataset"] == "shop_db.orders"
    assert (row["dag_id"], row["task_id"]) == ("acme_shop__ingest__shop_db", "orders.load")
    assert row["channels"] == ["slack:#data-alerts", "email:data-oncall@acme.example"]
    assert row["delivered"] is True
    assert WEBHOOK_SECRET not in caplog.text
    assert SMTP_PASSWORD not in caplog.text


def test_owner_route_and_extra_notify_add_recipients(warehouse: str, slack: SlackStub, smtp: SmtpSink) -> None:
    channels = raise_alert(
        make_platform(),
        kind="sla_miss",
        severity="warn",
        message="marts.daily_revenue is stale",
        dataset="daily_revenue",
        owner="analytics",
        notify=["email", "cfo@acme.example"],
    )
    assert channels == [
        "slack:#data-alerts",
        "email:analytics@acme.example",
        "email:data-oncall@acme.example",
        "email:cfo@acme.example",
    ]
    assert len(slack.posts) == 1
    assert smtp.messages[0]["rcpt"] == ["analytics@acme.example", "data-oncall@acme.example", "cfo@acme.example"]
    assert smtp.parsed()["Subject"] == "[acme_shop] WARN sla_miss: daily_revenue"


def test_missing_webhook_variable_is_a_warning_and_recorded_undelivered(
    warehouse: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    caplog.set_level(logging.WARNING, logger="platformgen")
    channels = raise_alert(make_platform(), kind="sla_miss", severity="warn", message="stale", dataset="shop_db.orders")
    assert channels == []
    assert "SLACK_WEBHOOK_URL is not set" in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    [row] = alert_rows(warehouse)
    assert row["channels"] == ["slack:#data-alerts"]
    assert row["delivered"] is False


def test_slack_error_and_unreachable_smtp_are_warnings_without_secrets(
    warehouse: str, slack: SlackStub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    slack.status = 500
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(_free_port()))  # nobody listens there
    monkeypatch.setenv("SMTP_USER", "alerts")
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    caplog.set_level(logging.DEBUG, logger="platformgen")
    channels = raise_alert(make_platform(), kind="task_failure", severity="error", message="boom", dag_id="d")
    assert channels == []
    assert len(slack.posts) == 1  # Slack was reached but answered 500
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Slack delivery failed" in w and "500" in w for w in warnings)
    assert any("e-mail to data-oncall@acme.example failed" in w for w in warnings)
    assert WEBHOOK_SECRET not in caplog.text
    assert SMTP_PASSWORD not in caplog.text
    [row] = alert_rows(warehouse)
    assert row["delivered"] is False


def test_starttls_is_required_by_default(
    warehouse: str, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server without STARTTLS gets no credentials unless SMTP_STARTTLS=false says plain text is fine."""
    monkeypatch.delenv("SMTP_STARTTLS")
    caplog.set_level(logging.WARNING, logger="platformgen")
    channels = raise_alert(
        make_platform(routes=[{"severity": "any", "notify": ["email"]}]), kind="k", severity="warn", message="m"
    )
    assert channels == []
    assert smtp.messages == []
    assert "STARTTLS" in caplog.text


def test_unreachable_warehouse_still_delivers_and_only_warns(
    slack: SlackStub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", f"postgresql://etl:hunter22@127.0.0.1:{_free_port()}/warehouse")
    caplog.set_level(logging.WARNING, logger="platformgen")
    channels = raise_alert(make_platform(), kind="sla_miss", severity="warn", message="stale")
    assert channels == ["slack:#data-alerts"]
    assert "could not be recorded in the warehouse" in caplog.text
    assert "hunter22" not in caplog.text


def test_missing_warehouse_variables_only_warn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("PLATFORMGEN_WAREHOUSE_URL", "WAREHOUSE_HOST", "SLACK_WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.WARNING, logger="platformgen")
    assert raise_alert(make_platform(), kind="task_failure", severity="error", message="boom") == []
    assert "WAREHOUSE_HOST is not set" in caplog.text
    assert "SMTP_HOST is not set" in caplog.text


# --------------------------------------------------------------------------- callbacks


def _context(exception: BaseException, **extra: Any) -> dict[str, Any]:
    """The parts of an Airflow task context that on_task_failure reads (a real TI is used in test_sla.py)."""
    ti = SimpleNamespace(
        dag_id="acme_shop__ingest__shop_db",
        task_id="orders.load",
        run_id="manual__2024-05-01",
        try_number=3,
        log_url="http://airflow:8080/dags/acme_shop__ingest__shop_db/grid?task_id=orders.load&tab=logs",
    )
    task = SimpleNamespace(
        task_id="orders.load",
        owner="data-platform",
        op_kwargs={"source": {"owner": "analytics"}, "table": {"dataset": "shop_db.orders"}},
    )
    return {"task_instance": ti, "ti": ti, "task": task, "run_id": ti.run_id, "exception": exception, **extra}


def test_task_failure_callback_alerts_with_scrubbed_exception_and_log_url(
    warehouse: str, slack: SlackStub, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "wh-secret-42")
    error = RuntimeError(
        "cannot connect to postgresql://etl:hunter22@db:5432/shop\npassword wh-secret-42 rejected\n"
        + "\n".join(f"detail {i}" for i in range(40))
    )
    callbacks.on_task_failure(make_platform(), _context(error))
    [row] = alert_rows(warehouse)
    assert row["kind"] == "task_failure"
    assert row["severity"] == "error"
    assert row["dataset"] == "shop_db.orders"
    assert row["run_id"] == "manual__2024-05-01"
    message = row["message"]
    assert "Task acme_shop__ingest__shop_db.orders.load failed (run manual__2024-05-01, try 3)" in message
    assert "RuntimeError: cannot connect to postgresql://etl:***@db:5432/shop" in message
    assert "hunter22" not in message
    assert "wh-secret-42" not in message
    assert "detail 39" not in message  # first lines only
    assert "Log: http://airflow:8080/dags/acme_shop__ingest__shop_db/grid" in message
    # The source's owner routes: analytics gets it as well.
    assert "email:analytics@acme.example" in row["channels"]
    assert smtp.parsed()["Subject"] == (
        "[acme_shop] ERROR task_failure: shop_db.orders (acme_shop__ingest__shop_db.orders.load)"
    )
    assert "hunter22" not in slack.posts[0]["text"]


def test_task_failure_callback_reads_config_from_a_partial_callable(
    warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configs passed as functools.partial keywords instead of op_kwargs still give dataset and owner."""
    for name in ("SLACK_WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    context = _context(RuntimeError("boom"))
    context["task"] = SimpleNamespace(
        task_id="orders.load",
        owner="data-platform",
        op_kwargs={},
        python_callable=functools.partial(print, source={"owner": "analytics"}, table={"dataset": "shop_db.orders"}),
    )
    callbacks.on_task_failure(make_platform(), context)
    [row] = alert_rows(warehouse)
    assert row["dataset"] == "shop_db.orders"
    assert "email:analytics@acme.example" in row["channels"]


def test_task_failure_callback_skips_failures_already_alerted(warehouse: str, slack: SlackStub) -> None:
    from platformgen.runtime.sla import SlaBreached

    callbacks.on_task_failure(make_platform(), _context(SlaBreached("1 SLA miss(es) of severity error")))
    assert slack.posts == []
    with psycopg.connect(warehouse) as conn:
        assert conn.execute("select to_regclass('data_platform.alerts')").fetchone() == (None,)


def test_callbacks_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="platformgen")
    broken: dict[str, Any] = {}
    callbacks.on_task_failure(broken, {"task_instance": object()})
    callbacks.on_sla_miss(broken, None, "t on 2024", "", [SimpleNamespace(task_id="t")], [])
    assert "callback failed" in caplog.text


def test_task_failure_callback_in_a_real_airflow_run(
    airflow_db: str, warehouse: str, slack: SlackStub, smtp: SmtpSink
) -> None:
    """dag.test() runs a failing task; Airflow calls the partial exactly as the generated DAGs wire it."""
    import datetime as dt

    from airflow import DAG
    from airflow.operators.python import PythonOperator

    platform = make_platform()

    def fail() -> None:
        raise ValueError("upstream API returned 503")

    with DAG(
        dag_id="alerts_test_failing",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        default_args={"retries": 0, "on_failure_callback": functools.partial(callbacks.on_task_failure, platform)},
    ) as dag:
        PythonOperator(task_id="fails", python_callable=fail)
    dag.test()
    [row] = alert_rows(warehouse)
    assert (row["kind"], row["dag_id"], row["task_id"]) == ("task_failure", "alerts_test_failing", "fails")
    assert "ValueError: upstream API returned 503" in row["message"]
    assert "Log: http" in row["message"]
    assert row["delivered"] is True
    assert smtp.parsed()["Subject"] == "[acme_shop] ERROR task_failure: alerts_test_failing.fails"
    assert "alerts_test_failing.fails" in slack.posts[0]["text"]
