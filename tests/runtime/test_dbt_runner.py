"""`dbt build` per layer as a subprocess: a tiny real dbt project against the real PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformgen.runtime import tasks
from platformgen.runtime.dbt_runner import (
    DbtBuildError,
    DbtError,
    build_command,
    clean_line,
    dbt_build,
    dbt_environment,
    error_excerpt,
)

DBT = Path(sys.executable).parent / "dbt"

PROFILES = """\
tiny:
  target: test
  outputs:
    test:
      type: postgres
      host: "{{ env_var('PLATFORMGEN_WAREHOUSE_HOST') }}"
      port: "{{ env_var('PLATFORMGEN_WAREHOUSE_PORT') | as_number }}"
      user: "{{ env_var('PLATFORMGEN_WAREHOUSE_USER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD', '') }}"
      dbname: "{{ env_var('PLATFORMGEN_WAREHOUSE_DBNAME') }}"
      schema: public
      threads: 1
"""

PROJECT = """\
name: tiny
version: "1.0"
config-version: 2
profile: tiny
model-paths: ["models"]
models:
  tiny:
    +materialized: table
"""


@pytest.fixture
def project(tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`<tmp>/dbt` with models/staging (passes), models/broken (bad SQL), models/checked (failing test)."""
    root = tmp_path / "platform"
    dbt_dir = root / "dbt"
    (dbt_dir / "models" / "staging").mkdir(parents=True)
    (dbt_dir / "models" / "broken").mkdir()
    (dbt_dir / "models" / "checked").mkdir()
    (dbt_dir / "dbt_project.yml").write_text(PROJECT)
    (dbt_dir / "profiles.yml").write_text(PROFILES)
    (dbt_dir / "models" / "staging" / "stg_one.sql").write_text("select 1 as x\n")
    (dbt_dir / "models" / "broken" / "bad_model.sql").write_text("select x from table_that_does_not_exist\n")
    (dbt_dir / "models" / "checked" / "two.sql").write_text("select 2 as x\n")
    (dbt_dir / "models" / "checked" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: two\n    columns:\n      - name: x\n"
        "        data_tests:\n          - accepted_values:\n              values: [1]\n              quote: false\n"
    )
    for name in (
        "PLATFORMGEN_DBT_EXECUTABLE",
        "PLATFORMGEN_PROJECT_ROOT",
        "PLATFORMGEN_WAREHOUSE_HOST",
        "PLATFORMGEN_WAREHOUSE_PORT",
        "PLATFORMGEN_WAREHOUSE_USER",
        "PLATFORMGEN_WAREHOUSE_DBNAME",
        "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    return {
        "url": pg_database,
        "root": root,
        "dbt": {"executable": str(DBT), "project_root": str(root), "project_subdir": "dbt"},
        "platform": {"name": "tiny", "warehouse": {"host": "env:WAREHOUSE_HOST"}, "schemas": {"platform": "dp"}},
    }


def test_build_of_a_layer_creates_its_models(project: dict[str, Any]) -> None:
    echoed: list[str] = []
    result = dbt_build(project["dbt"], "staging", platform=project["platform"], echo=echoed.append)
    assert result.returncode == 0
    assert result.command[1:4] == ["build", "--select", "path:models/staging"]
    assert result.summary.startswith("Done. PASS=1")
    assert any("Running with dbt=" in line for line in echoed)  # streamed as it ran
    assert echoed == result.lines
    with psycopg.connect(project["url"]) as conn:
        assert conn.execute("select x from public.stg_one").fetchall() == [(1,)]
        # Only the selected layer was built.
        assert conn.execute("select to_regclass('public.two')").fetchone() == (None,)


def test_failing_model_raises_with_dbts_own_error(project: dict[str, Any]) -> None:
    with pytest.raises(DbtBuildError) as raised:
        dbt_build(project["dbt"], "broken", platform=project["platform"])
    message = str(raised.value)
    assert message.startswith("dbt build of layer 'broken' failed (exit code 1):")
    assert "Database Error in model bad_model" in message
    assert 'relation "table_that_does_not_exist" does not exist' in message
    assert "ERROR=1" in message
    assert raised.value.returncode == 1


def test_failing_test_raises_with_the_failure_and_summary(project: dict[str, Any]) -> None:
    with pytest.raises(DbtBuildError) as raised:
        tasks.dbt_build(project["platform"], project["dbt"], "checked", run_id="manual__1")
    message = str(raised.value)
    assert "FAIL 1 accepted_values_two_x__False__1" in message
    assert "Failure in test accepted_values_two_x__False__1" in message
    assert "ERROR=1" in message or "FAIL=1" in message


def test_task_entry_point_and_env_overrides(
    project: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORMGEN_PROJECT_ROOT", str(project["root"]))
    monkeypatch.setenv("PLATFORMGEN_DBT_EXECUTABLE", str(DBT))
    dbt = {"executable": "no-such-dbt", "project_root": str(tmp_path / "elsewhere"), "project_subdir": "dbt"}
    assert tasks.dbt_build(project["platform"], dbt, "staging", run_id="manual__1")["returncode"] == 0


def test_missing_executable_names_the_setting(project: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        DbtError, match=r"'/opt/nowhere/dbt' \(from orchestration.dbt_executable\).*PLATFORMGEN_DBT_EXECUTABLE"
    ):
        dbt_build({**project["dbt"], "executable": "/opt/nowhere/dbt"}, "staging")
    monkeypatch.setenv("PLATFORMGEN_DBT_EXECUTABLE", "dbt-not-installed")
    with pytest.raises(DbtError, match=r"'dbt-not-installed' \(from PLATFORMGEN_DBT_EXECUTABLE\)"):
        dbt_build(project["dbt"], "staging")


def test_missing_project_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLATFORMGEN_PROJECT_ROOT", raising=False)
    dbt = {"executable": str(DBT), "project_root": str(tmp_path), "project_subdir": "dbt"}
    with pytest.raises(DbtError, match=r"no dbt project at .*PLATFORMGEN_PROJECT_ROOT"):
        dbt_build(dbt, "staging")
    with pytest.raises(ValueError, match="invalid layer"):
        dbt_build(dbt, "staging --full-refresh")


def test_environment_passes_warehouse_and_disables_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", "postgresql://etl:pw@wh.example:6543/warehouse?sslmode=require")
    env = dbt_environment({"warehouse": {}}, base={"PATH": "/usr/bin", "PLATFORMGEN_WAREHOUSE_USER": "kept"})
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert env["PLATFORMGEN_WAREHOUSE_HOST"] == "wh.example"
    assert env["PLATFORMGEN_WAREHOUSE_PORT"] == "6543"
    assert env["PLATFORMGEN_WAREHOUSE_DBNAME"] == "warehouse"
    assert env["PLATFORMGEN_WAREHOUSE_SSLMODE"] == "require"
    assert env["DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD"] == "pw"
    assert env["PLATFORMGEN_WAREHOUSE_USER"] == "kept"  # the deployment's own setting wins
    assert build_command("/x/dbt", Path("/p/dbt"), "marts") == [
        "/x/dbt",
        "build",
        "--select",
        "path:models/marts",
        "--project-dir",
        "/p/dbt",
        "--profiles-dir",
        "/p/dbt",
    ]


def test_error_excerpt_keeps_errors_and_summary_block() -> None:
    output = [
        "Running with dbt=1.9.1",
        "Found 2 models, 1 test",
        "1 of 2 OK created sql table model public.a ..... [SELECT 1 in 0.05s]",
        "2 of 2 ERROR creating sql table model public.b ..... [ERROR in 0.02s]",
        "Finished running 2 table models in 0 hours 0 minutes and 0.20 seconds (0.20s).",
        "",
        "Completed with 1 error, 0 partial successes, and 0 warnings:",
        "",
        "  Database Error in model b (models/marts/b.sql)",
        '  relation "nope" does not exist',
        "  LINE 1: select * from nope",
        "",
        "Done. PASS=1 WARN=0 ERROR=1 SKIP=0 TOTAL=2",
    ]
    assert error_excerpt(output) == [
        "2 of 2 ERROR creating sql table model public.b ..... [ERROR in 0.02s]",
        "Completed with 1 error, 0 partial successes, and 0 warnings:",
        "  Database Error in model b (models/marts/b.sql)",
        '  relation "nope" does not exist',
        "  LINE 1: select * from nope",
        "Done. PASS=1 WARN=0 ERROR=1 SKIP=0 TOTAL=2",
    ]
    # Without a summary (dbt stopped early), the error lines, else the tail.
    assert error_excerpt(["Running", "Encountered an error:", "Compilation Error in model x"]) == [
        "Encountered an error:",
        "Compilation Error in model x",
    ]
    assert error_excerpt(["a", "b"]) == ["a", "b"]
    assert clean_line("\x1b[0m12:01:02  \x1b[31mERROR\x1b[0m creating\n") == "ERROR creating"
