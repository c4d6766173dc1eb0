"""The bad-spec corpus: every spec under tests/bad is broken in its own way, and `platformgen validate` says so.

Each case is `tests/bad/<case>.yaml` (one file) or `tests/bad/<case>/` (a spec directory), next to
`tests/bad/<case>.expected`: the exact lines `platformgen validate tests/bad/<case>` prints, run from the
repository root. `pytest --update-golden` rewrites the .expected files from the current output; review the diff.
Cases that cannot be committed (a 50 MB file, NUL bytes, invalid UTF-8) are generated into tmp_path below.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from platformgen.cli import app

BAD = Path(__file__).resolve().parent / "bad"
RUNNER = CliRunner()
LINE_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def _cases() -> list[str]:
    names = []
    for entry in BAD.iterdir():
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir() or entry.suffix == ".yaml":
            names.append(entry.stem if entry.is_file() else entry.name)
    return sorted(names)


CASES = _cases()


def _target(case: str) -> str:
    """The path of a case as given on the command line (relative to the repository root)."""
    return f"tests/bad/{case}" if (BAD / case).is_dir() else f"tests/bad/{case}.yaml"


def _validate(*args: str) -> Result:
    result = RUNNER.invoke(app, ["validate", *args])
    assert isinstance(result.exception, SystemExit), f"traceback instead of a clean exit: {result.exception!r}"
    return result


@pytest.mark.parametrize("case", CASES)
def test_bad_spec(case: str, in_repo: Path, update_golden: bool) -> None:
    result = _validate(_target(case))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines, "no diagnostics printed"
    for line in lines:
        assert LINE_RE.match(line), f"not a file:line:col: message line: {line!r}"
    assert "Traceback" not in result.output
    expected_file = BAD / f"{case}.expected"
    if update_golden:
        expected_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return
    assert expected_file.is_file(), f"missing {expected_file.relative_to(in_repo)}: run pytest --update-golden"
    assert lines == expected_file.read_text(encoding="utf-8").splitlines()


def test_corpus_size_and_pairs() -> None:
    assert len(CASES) >= 45, f"only {len(CASES)} bad specs"
    expected = sorted(p.stem for p in BAD.glob("*.expected"))
    assert expected == CASES, "every case needs a .expected file, and every .expected file a case"


def test_machine_formats_carry_the_same_positions(in_repo: Path) -> None:
    target = _target("many_errors")
    text = [LINE_RE.match(line) for line in _validate(target).stdout.splitlines()]
    positions = [(m["file"], int(m["line"]), int(m["col"]), m["message"]) for m in text if m]
    assert len(positions) >= 5

    result = _validate("--format", "json", target)
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    assert [(e["file"], e["line"], e["column"], e["message"]) for e in payload["errors"]] == positions

    result = _validate("--format", "github", target)
    assert result.exit_code == 1
    github = re.compile(r"^::error file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+)::(?P<message>.+)$")
    annotations = [github.match(line) for line in result.stdout.splitlines()]
    assert all(annotations), result.stdout
    assert [(m["file"], int(m["line"]), int(m["col"]), m["message"]) for m in annotations if m] == positions


def test_unreadable_files_are_refused_cleanly(tmp_path: Path) -> None:
    """Files too big, binary or not UTF-8: one located message each, never a traceback."""
    huge = tmp_path / "huge.yaml"
    with huge.open("w", encoding="utf-8") as out:
        out.write("platform:\n  name: huge\nsources:\n")
        item = "  - {name: s, kind: file, location: data, tables: [{name: t, pattern: a, columns: {a: bigint}}]}\n"
        out.write(item * (50 * 1024 * 1024 // len(item) + 1))
    result = _validate(str(huge))
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{huge}:1:1: ")
    assert "MB" in line
    assert "split it into several files" in line

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"platform:\n  name: shop\n  description: a\x00b\n")
    result = _validate(str(binary))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{binary}:3:17: not a text file (NUL byte): a spec must be UTF-8 YAML",
    ]

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("platform:\n  name: cafe\n  description: Café\n".encode("latin-1"))
    result = _validate(str(latin1))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{latin1}:3:19: not valid UTF-8 text: save the spec file as UTF-8",
    ]


def test_reference_to_a_dataset_in_another_file_is_valid(tmp_path: Path) -> None:
    """Datasets are known across files, whichever file comes first: no error for a correct cross-file reference."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "platform.yaml").write_text(
        "platform:\n  name: shop\n"
        "expectations:\n"
        "  - {dataset: shop.orders, column: customer_id, relationships: {to: crm.customers}}\n",
        encoding="utf-8",
    )
    (tmp_path / "sources" / "crm.yaml").write_text(
        "sources:\n"
        "  - name: crm\n    kind: file\n    location: data/crm\n    tables:\n"
        "      - name: customers\n        pattern: customers_*.csv\n"
        "        columns: {customer_id: bigint, country: string}\n"
        "        expectations:\n"
        "          - {column: customer_id, relationships: {to: shop.orders}}\n",
        encoding="utf-8",
    )
    (tmp_path / "sources" / "shop.yaml").write_text(
        "sources:\n"
        "  - name: shop\n    kind: file\n    location: data/landing\n    tables:\n"
        "      - name: orders\n        pattern: orders_*.csv\n"
        "        columns: {order_id: bigint, customer_id: bigint}\n"
        "        expectations:\n"
        "          - {column: customer_id, relationships: {to: crm.customers}}\n",
        encoding="utf-8",
    )
    result = RUNNER.invoke(app, ["validate", str(tmp_path)])
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0, result.stdout
    assert result.stdout == ""
