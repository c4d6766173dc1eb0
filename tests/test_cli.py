"""The command line: exit codes, output formats, compile --check, pruning, init, schema, version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from platformgen import __version__
from platformgen.cli import app
from platformgen.spec.reference import json_schema_text, markdown_reference

runner = CliRunner()
MINIMAL = Path(__file__).resolve().parents[1] / "examples" / "minimal_csv"


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), f"traceback: {result.exception!r}"
    return result.exit_code, result.stdout


def test_version_and_module_entry_point() -> None:
    code, out = invoke("--version")
    assert code == 0
    assert out.strip() == f"platformgen {__version__}"
    proc = subprocess.run(
        [sys.executable, "-m", "platformgen", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"platformgen {__version__}"


def test_validate_exit_codes(tmp_path: Path) -> None:
    assert invoke("validate", str(MINIMAL))[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("platform: {name: x, colour: red}\n")
    code, out = invoke("validate", str(bad))
    assert code == 1
    assert out.strip().endswith(
        "1:21: unknown key 'colour'; allowed here: name, description, owner, timezone, versions, ports"
    )
    assert invoke("validate", "--format", "xml", str(bad))[0] == 2
    assert invoke("validate", "--no-such-option")[0] == 2


def test_validate_machine_formats(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("platform:\n  name: Shop\n")
    code, out = invoke("validate", "--format", "json", str(bad))
    assert code == 1
    payload = json.loads(out)
    assert payload["valid"] is False
    [error] = payload["errors"]
    assert (error["line"], error["column"]) == (2, 9)
    assert "'Shop' is not a valid name" in error["message"]
    code, out = invoke("validate", "--format", "github", str(bad))
    assert code == 1
    assert out.startswith(f"::error file={bad},line=2,col=9::'Shop' is not a valid name")
    code, out = invoke("validate", "--format", "json", str(MINIMAL))
    assert code == 0
    assert json.loads(out) == {"valid": True, "errors": []}


def test_compile_check_prune_and_foreign_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    assert invoke("compile", str(MINIMAL), "-o", str(out_dir))[0] == 0
    assert invoke("compile", str(MINIMAL), "-o", str(out_dir), "--check")[0] == 0
    sql = out_dir / "warehouse" / "bootstrap.sql"
    before = sql.stat().st_mtime_ns
    assert invoke("compile", str(MINIMAL), "-o", str(out_dir))[0] == 0
    assert sql.stat().st_mtime_ns == before, "an unchanged file was rewritten"

    sql.write_text(sql.read_text() + "-- edited\n")
    (out_dir / "lineage.json").unlink()
    manifest = json.loads((out_dir / ".platformgen-manifest.json").read_text())
    manifest["files"]["old/removed.sql"] = "0"
    (out_dir / ".platformgen-manifest.json").write_text(json.dumps(manifest))
    (out_dir / "old").mkdir()
    (out_dir / "old" / "removed.sql").write_text("-- written by an earlier compile\n")
    (out_dir / "notes.txt").write_text("mine\n")
    code, out = invoke("compile", str(MINIMAL), "-o", str(out_dir), "--check")
    assert code == 1
    assert f"stale: {sql}" in out
    assert f"missing: {out_dir / 'lineage.json'}" in out
    assert f"extra: {out_dir / 'old' / 'removed.sql'}" in out
    assert sql.read_text().endswith("-- edited\n"), "--check must not write"

    assert invoke("compile", str(MINIMAL), "-o", str(out_dir))[0] == 0
    assert not (out_dir / "old").exists(), "a file from an earlier compile was not pruned"
    assert (out_dir / "notes.txt").read_text() == "mine\n", "a file platformgen did not write was touched"
    assert invoke("compile", str(MINIMAL), "-o", str(out_dir), "--check")[0] == 0


def test_compile_refuses_to_overwrite_a_foreign_file(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    (out_dir / "warehouse").mkdir(parents=True)
    (out_dir / "warehouse" / "bootstrap.sql").write_text("-- hand written\n")
    code, _ = invoke("compile", str(MINIMAL), "-o", str(out_dir))
    assert code == 1
    assert (out_dir / "warehouse" / "bootstrap.sql").read_text() == "-- hand written\n"


def test_compile_reports_spec_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("platform: {name: ok}\nmodels: [{name: m, sql: select nope from other}]\n")
    code, out = invoke("compile", str(bad), "-o", str(tmp_path / "out"))
    assert code == 1
    assert "2:42: unknown dataset 'other'" in out
    assert not (tmp_path / "out").exists()


def test_generated_files_carry_a_header_and_no_timestamp(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    invoke("compile", str(MINIMAL), "-o", str(out_dir))
    sql = (out_dir / "warehouse" / "bootstrap.sql").read_text()
    assert sql.startswith("-- Generated by platformgen from spec 'minimal_csv'. Do not edit")
    assert "content-hash: " in sql.splitlines()[1]


def test_init_scaffolds_a_spec_that_validates_and_compiles(tmp_path: Path) -> None:
    target = tmp_path / "my-platform"
    code, _ = invoke("init", str(target))
    assert code == 0
    assert invoke("validate", str(target))[0] == 0
    assert invoke("compile", str(target), "-o", str(tmp_path / "gen"))[0] == 0
    assert (tmp_path / "gen" / "warehouse" / "bootstrap.sql").is_file()
    assert invoke("init", str(target))[0] == 1, "init must refuse a non-empty folder"


def test_schema_command_matches_committed_schema(repo: Path) -> None:
    code, out = invoke("schema")
    assert code == 0
    assert out == json_schema_text()
    committed = (repo / "schema" / "platformgen.schema.json").read_text()
    assert committed == out, (
        "schema/platformgen.schema.json is stale: platformgen schema > schema/platformgen.schema.json"
    )
    schema = json.loads(out)
    assert "sources" in schema["properties"]


def test_spec_reference_doc_is_in_sync(repo: Path) -> None:
    committed = (repo / "docs" / "spec-reference.md").read_text()
    assert committed == markdown_reference(), (
        "docs/spec-reference.md is stale: platformgen schema --format markdown > docs/spec-reference.md"
    )


def test_example_specs_carry_the_schema_modeline(repo: Path) -> None:
    for path in sorted([*repo.glob("specs/**/*.yaml"), *repo.glob("examples/*/**/*.yaml")]):
        if "data" in path.relative_to(repo).parts[:3]:
            continue
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == (repo / "schema" / "platformgen.schema.json").resolve(), path


def test_compiler_core_imports_only_its_own_dependencies(repo: Path, tmp_path: Path) -> None:
    probe = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from platformgen.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['compile', {str(repo / 'specs')!r}, '-o', {str(tmp_path / 'out')!r}])\n"
        "assert r.exit_code == 0, r.stdout\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    top = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    forbidden = {
        "airflow",
        "dbt",
        "great_expectations",
        "boto3",
        "botocore",
        "psycopg",
        "psycopg2",
        "pyarrow",
        "pandas",
        "requests",
        "sqlalchemy",
    }
    assert top & forbidden == set()
