"""Real services for tests: an embedded PostgreSQL 16 (pgserver) or PLATFORMGEN_TEST_PG_URL, and moto's S3 server."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit


@dataclass(frozen=True)
class PgServer:
    """A running PostgreSQL server: its admin URL, and helpers to make throwaway databases."""

    url: str  # postgresql://user:pw@host:port/db or postgresql://postgres:@/postgres?host=/socket/dir

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(name), parts.query, ""))

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        return parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return int(parse_qs(parts.query).get("port", [parts.port or 5432])[0])

    @property
    def user(self) -> str:
        return urlsplit(self.url).username or "postgres"

    @property
    def password(self) -> str:
        return urlsplit(self.url).password or ""

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextlib.contextmanager
def postgres_server() -> Iterator[PgServer]:
    """PLATFORMGEN_TEST_PG_URL when set, else a pgserver instance in a temporary folder."""
    url = os.environ.get("PLATFORMGEN_TEST_PG_URL")
    if url:
        yield PgServer(url)
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="platformgen-pg-") as folder:
        server: Any = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            yield PgServer(server.get_uri())
        finally:
            server.cleanup()


@dataclass(frozen=True)
class S3Server:
    """moto's S3-compatible server on localhost."""

    endpoint_url: str
    access_key: str = "testing-access-key"
    secret_key: str = "testing-secret-key"  # moto accepts any key pair
    region: str = "us-east-1"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 with a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
