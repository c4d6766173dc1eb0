"""The embedded services of `platformgen up --local`, and the state folder that keeps them between runs.

State folder layout (``.platformgen/`` by default, ``--state``)::

    local.json        which platform the folder belongs to, where its spec and output are
    pg/               PostgreSQL 16 data directory (pgserver); its unix socket lives here too
    s3/<bucket>/...   the object store on disk: every object of the run, restored into the S3 endpoint
                      at the start of the next run (bronze is append-only: earlier runs' files stay)
    project/          the deployed platform: airflow/, dbt/, great_expectations/, warehouse/ synced from
                      the compiled output, plus local landing folders; PLATFORMGEN_PROJECT_ROOT points here,
                      so dbt's target/ and GX's Data Docs never land in the compiled output
    airflow/          AIRFLOW_HOME: airflow.cfg, the SQLite metadata DB, task logs
    logs/             one log file per `up`: everything Airflow, dbt and GX printed

- **PostgreSQL**: pgserver runs ``postgres`` as a daemon on a unix socket in ``pg/``; it keeps running after
  `up` returns (so you can query the marts) and a later `up` reuses it. `down` stops it. With
  ``--warehouse-url`` an existing server is used instead and nothing is started.
- **S3**: moto's ThreadedMotoServer on 127.0.0.1, alive only while `up` runs. moto keeps objects in memory,
  so `up` restores ``s3/`` into it first and writes every object back to ``s3/`` at the end
  (`restore_objects`, `save_objects`). Correctness never depends on it: raw tables, watermarks and the
  ingestion log live in PostgreSQL.

No heavy import at module level: pgserver, moto and boto3 load inside the functions.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

from platformgen.errors import PlatformgenError
from platformgen.runtime.settings import PgParams, S3Params

STATE_FILE = "local.json"
#: moto accepts any key pair; these are what local mode hands to the runtime.
LOCAL_ACCESS_KEY = "platformgen-local"
LOCAL_SECRET_KEY = "platformgen-local-secret"
_STOP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class StateLayout:
    """Paths inside the state folder."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def pg_data(self) -> Path:
        return self.root / "pg"

    @property
    def s3_objects(self) -> Path:
        return self.root / "s3"

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def create(self) -> None:
        for folder in (self.root, self.s3_objects, self.project, self.airflow_home, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    def read_state(self) -> dict[str, Any]:
        """The contents of local.json ({} when missing or unreadable)."""
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.state_file)


# --------------------------------------------------------------------------- PostgreSQL


def pg_params(url: str) -> PgParams:
    """libpq parameters of a postgresql:// URL (a unix-socket directory may come as ?host=/dir)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise PlatformgenError(f"not a PostgreSQL URL (postgresql://...): {parts.scheme}://...")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return PgParams(
        host=unquote(query.get("host") or parts.hostname or "localhost"),
        port=int(query.get("port") or parts.port or 5432),
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        sslmode=query.get("sslmode", "prefer"),
    )


def with_database(url: str, database: str) -> str:
    """The same server URL with another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database, safe=""), parts.query, ""))


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg connection (through the runtime, so no error message carries the password)."""
    from platformgen.runtime.warehouse import connect as runtime_connect

    try:
        return runtime_connect(pg_params(url), autocommit=autocommit)
    except ConnectionError as exc:
        raise PlatformgenError(str(exc)) from None


@dataclass(frozen=True)
class PgService:
    """A PostgreSQL server local mode works on: embedded (pgserver) or given with --warehouse-url."""

    url: str  # the server, on its maintenance database (or the --warehouse-url database)
    embedded: bool
    warehouse_database: str

    @property
    def warehouse_url(self) -> str:
        return with_database(self.url, self.warehouse_database)

    def database_url(self, database: str) -> str:
        return with_database(self.url, database)

    def database_exists(self, database: str) -> bool:
        with connect(self.url) as conn, conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (database,))
            return cur.fetchone() is not None

    def ensure_database(self, database: str, comment: str | None = None) -> bool:
        """Create the database unless it exists; True when it was created."""
        from platformgen.runtime.warehouse import quote_ident

        if self.database_exists(database):
            return False
        with connect(self.url) as conn:
            try:
                conn.execute(f"create database {quote_ident(database)}")
            except Exception as exc:
                raise PlatformgenError(
                    f"cannot create database {database!r} on {self.describe()}: {type(exc).__name__}: {exc}"
                ) from None
            if comment:
                conn.execute(f"comment on database {quote_ident(database)} is {sql_literal(comment)}")
        return True

    def database_comment(self, database: str) -> str | None:
        with connect(self.url) as conn, conn.cursor() as cur:
            cur.execute("select shobj_description(oid, 'pg_database') from pg_database where datname = %s", (database,))
            row = cur.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def describe(self) -> str:
        params = pg_params(self.url)
        where = params.host if params.host.startswith("/") else f"{params.host}:{params.port}"
        return f"{'embedded PostgreSQL' if self.embedded else 'PostgreSQL'} at {where}"

    def psql_command(self, database: str | None = None) -> str:
        """A psql command line for a database of this server, without the password."""
        params = pg_params(self.url)
        db = quote(database or self.warehouse_database, safe="")
        user = quote(params.user, safe="")
        if params.host.startswith("/"):
            port = f"&port={params.port}" if params.port != 5432 else ""
            return f'psql "postgresql://{user}@/{db}?host={quote(params.host)}{port}"'
        return f'psql "postgresql://{user}@{params.host}:{params.port}/{db}"'


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def start_postgres(layout: StateLayout, warehouse_database: str, warehouse_url: str | None) -> PgService:
    """The embedded server of the state folder (started, or reused when it runs), or the given server."""
    if warehouse_url:
        database = pg_params(warehouse_url).dbname
        try:
            with connect(warehouse_url):
                pass
            admin = warehouse_url
        except PlatformgenError as first:  # the database may not exist yet: create it from the maintenance one
            admin = with_database(warehouse_url, "postgres")
            try:
                with connect(admin):
                    pass
            except PlatformgenError:
                raise first from None
        return PgService(url=admin, embedded=False, warehouse_database=database)
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is not set
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server
    except ImportError:
        raise PlatformgenError(
            "local mode needs pgserver for its embedded PostgreSQL: pip install pgserver "
            "(or pass --warehouse-url postgresql://user:password@host:5432/warehouse)"
        ) from None
    layout.pg_data.parent.mkdir(parents=True, exist_ok=True)
    try:
        server: Any = get_server(layout.pg_data.resolve(), cleanup_mode=None)
        url = str(server.get_uri())
    except Exception as exc:
        log = layout.pg_data / "log"
        raise PlatformgenError(
            f"the embedded PostgreSQL in {layout.pg_data} did not start: {type(exc).__name__}: {exc}"
            + (f" (see {log})" if log.exists() else "")
        ) from None
    return PgService(url=with_database(url, "postgres"), embedded=True, warehouse_database=warehouse_database)


def postmaster_pid(pg_data: Path) -> int | None:
    """The pid of the postmaster of a data directory when it is running."""
    try:
        first = (pg_data / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0]
        pid = int(first.strip())
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # running under another user (pgserver's, when we are root): still running
        return pid
    return pid


def stop_postgres(layout: StateLayout) -> bool:
    """Stop the embedded server (fast shutdown: SIGINT to the postmaster); False when it was not running."""
    pid = postmaster_pid(layout.pg_data)
    if pid is None:
        return False
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if postmaster_pid(layout.pg_data) is None:
            return True
        time.sleep(0.2)
    raise PlatformgenError(f"PostgreSQL (pid {pid}) did not stop within {_STOP_TIMEOUT_SECONDS:.0f}s")


# --------------------------------------------------------------------------- S3


@dataclass
class S3Service:
    """moto's S3-compatible server on 127.0.0.1, for the duration of one `up`."""

    server: Any
    endpoint_url: str
    region: str = "us-east-1"

    @property
    def params(self) -> S3Params:
        return S3Params(
            endpoint_url=self.endpoint_url, region=self.region, access_key=LOCAL_ACCESS_KEY, secret_key=LOCAL_SECRET_KEY
        )

    def client(self) -> Any:
        from platformgen.runtime.settings import s3_client

        return s3_client(self.params)

    def ensure_bucket(self, bucket: str) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)

    def stop(self) -> None:
        self.server.stop()


def start_s3(region: str) -> S3Service:
    """Start moto's server on a free port."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise PlatformgenError("local mode needs moto for its S3 endpoint: pip install 'moto[server]'") from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines on the console
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Service(server=server, endpoint_url=f"http://{host}:{port}", region=region)


def restore_objects(s3: S3Service, folder: Path) -> int:
    """Upload `folder/<bucket>/<key>` into the endpoint, oldest first; returns the number of objects."""
    if not folder.is_dir():
        return 0
    client = s3.client()
    files: list[tuple[float, str, str, Path]] = []
    for bucket_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        s3.ensure_bucket(bucket_dir.name)
        for path in bucket_dir.rglob("*"):
            if path.is_file():
                files.append((path.stat().st_mtime, bucket_dir.name, path.relative_to(bucket_dir).as_posix(), path))
    for _, bucket, key, path in sorted(files):
        client.upload_file(str(path), bucket, key)
    return len(files)


def save_objects(s3: S3Service, folder: Path) -> int:
    """Write every object of the endpoint to `folder/<bucket>/<key>` (new or changed ones); returns how many."""
    client = s3.client()
    written = 0
    for bucket in sorted(b["Name"] for b in client.list_buckets().get("Buckets", [])):
        (folder / bucket).mkdir(parents=True, exist_ok=True)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                target = _object_path(folder / bucket, key)
                if target is None:
                    continue
                if target.is_file() and target.stat().st_size == int(item.get("Size", -1)):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(target))
                written += 1
    return written


def _object_path(bucket_dir: Path, key: str) -> Path | None:
    """Where an object key is kept on disk; None for keys that cannot be a safe relative path."""
    parts = [p for p in key.split("/") if p]
    if not parts or key.endswith("/") or any(p in (".", "..") for p in parts):
        return None
    return bucket_dir.joinpath(*parts)
