"""Shared fixtures: the repository root, the --update-golden option."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import PgServer, S3Server, postgres_server, s3_server

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its configuration when first imported: give every test process its own throwaway
# AIRFLOW_HOME with a SQLite metadata DB before any test imports airflow.
# Keyed by process: pytest-xdist workers inherit the controller's environment, and two workers sharing
# one SQLite metadata DB would migrate it at the same time.
if os.environ.get("PLATFORMGEN_TEST_AIRFLOW_PID") != str(os.getpid()):
    _home = tempfile.mkdtemp(prefix="platformgen-airflow-")
    os.environ["PLATFORMGEN_TEST_AIRFLOW_PID"] = str(os.getpid())
    os.environ["PLATFORMGEN_TEST_AIRFLOW_HOME"] = _home
    os.environ["AIRFLOW_HOME"] = _home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = f"{_home}/dags"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files (tests/golden, tests/bad/*.expected) from the current output; review the diff.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run with the repository root as working directory, so messages show repo-relative paths."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the test session (embedded pgserver unless PLATFORMGEN_TEST_PG_URL is set)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session server; yields its URL and drops it afterwards."""
    name = pg_server.create_database()
    try:
        yield pg_server.database_url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's S3 server for the test session."""
    with s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Airflow's metadata DB (SQLite) migrated once per test process; returns AIRFLOW_HOME."""
    home = os.environ["AIRFLOW_HOME"]
    if not Path(home, ".migrated").exists():
        airflow = Path(sys.executable).parent / "airflow"
        proc = subprocess.run(
            [str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy(), check=False
        )
        if proc.returncode != 0:
            pytest.fail(f"airflow db migrate failed in {home}:\n{proc.stderr[-3000:]}")
        Path(home, ".migrated").write_text("ok\n")
    return home
