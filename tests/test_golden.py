"""Golden tests: every spec compiles to its committed output, byte for byte, and compiling is deterministic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platformgen.compiler import compile_spec
from platformgen.writer import MANIFEST, manifest_text, write_files

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (REPO / "examples").iterdir() if p.is_dir())
CASES = [("specs", REPO / "specs", REPO / "generated")] + [
    (f"examples/{name}", REPO / "examples" / name, REPO / "tests" / "golden" / name) for name in EXAMPLES
]


def _expected_files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


@pytest.mark.parametrize(("label", "spec", "golden"), CASES, ids=[c[0] for c in CASES])
def test_compiles_to_golden_output(label: str, spec: Path, golden: Path, in_repo: Path, update_golden: bool) -> None:
    compiled = compile_spec(spec.relative_to(in_repo))
    if update_golden:
        write_files(golden.relative_to(in_repo), compiled.files, compiled.plan.spec_label)
    expected = _expected_files(golden)
    assert sorted(compiled.files) == sorted(expected), f"{label}: generated file set differs from {golden}"
    for path, text in compiled.files.items():
        assert text == expected[path], f"{label}: {path} differs from the golden copy (run `make golden`)"
    manifest = (golden / MANIFEST).read_text(encoding="utf-8")
    assert manifest == manifest_text(compiled.plan.spec_label, compiled.files)


@pytest.mark.parametrize(("label", "spec", "golden"), CASES, ids=[c[0] for c in CASES])
def test_compiling_twice_is_byte_identical(label: str, spec: Path, golden: Path, tmp_path: Path) -> None:
    first = compile_spec(spec).files
    second = compile_spec(spec).files
    assert first == second
    # also through the writer and from another working directory and absolute path
    copy = tmp_path / spec.name
    shutil.copytree(spec, copy)
    third = compile_spec(copy).files
    assert third == first, f"{label}: output depends on where the spec lives"
    for text in first.values():
        assert str(REPO) not in text, "absolute path leaked into output"
        assert str(tmp_path) not in text, "absolute path leaked into output"


def test_committed_generated_is_fresh(in_repo: Path) -> None:
    compiled = compile_spec(Path("specs"))
    report = write_files(Path("generated"), compiled.files, compiled.plan.spec_label, check=True)
    assert report.clean, f"generated/ is stale: {report.stale} missing: {report.missing} extra: {report.extra}"
