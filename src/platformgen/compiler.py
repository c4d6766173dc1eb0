"""The compile pipeline: load and validate the spec, build the plan, render every target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from platformgen.errors import PlatformgenError
from platformgen.plan.build import Plan, build_plan
from platformgen.spec.validate import validate_path
from platformgen.targets import get_target, target_names
from platformgen.writer import WriteReport, with_header, write_files

#: `platformgen compile` writes here by default; only then does it also write the repository-root compose files
DEFAULT_OUTPUT = Path("generated")
#: the manifest of the files written next to the default output folder (kept apart from a compile `-o .`)
ROOT_MANIFEST = ".platformgen-root-manifest.json"


@dataclass
class Compiled:
    """The plan and the full text of every generated file, grouped by target."""

    plan: Plan
    outputs: dict[str, dict[str, str]]  # target -> {relative path: text with header}

    @property
    def files(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for files in self.outputs.values():
            merged.update(files)
        return merged


def load_plan(spec_path: Path) -> Plan:
    """Validate the spec at `spec_path` and resolve it into a Plan (raises SpecError)."""
    return build_plan(validate_path(spec_path))


def render_plan(plan: Plan, targets: list[str] | None = None) -> Compiled:
    """Render the plan with the given targets (all by default)."""
    outputs: dict[str, dict[str, str]] = {}
    owners: dict[str, str] = {}
    for name in targets or target_names():
        files = get_target(name).render(plan)
        for path in files:
            if path in owners:
                raise PlatformgenError(f"targets '{owners[path]}' and '{name}' both generate {path}")
            owners[path] = name
        outputs[name] = {path: with_header(path, text, plan.spec_label) for path, text in sorted(files.items())}
    return Compiled(plan, outputs)


def compile_spec(spec_path: Path, targets: list[str] | None = None) -> Compiled:
    """Validate, plan and render."""
    return render_plan(load_plan(spec_path), targets)


def root_folder(output: Path) -> Path | None:
    """Where `docker-compose.yml` and `.env.example` also go: the parent of the default output folder, else nowhere."""
    return output.parent if output == DEFAULT_OUTPUT else None


def render_root_files(compiled: Compiled, output: Path) -> dict[str, str]:
    """The root compose files (paths into `output`), headers included; empty without the compose target."""
    if "compose" not in compiled.outputs:
        return {}
    from platformgen.targets.compose import root_files

    plan = compiled.plan
    return {
        path: with_header(path, text, plan.spec_label) for path, text in sorted(root_files(plan, output.name).items())
    }


def write_compiled(compiled: Compiled, output: Path, *, check: bool = False) -> list[tuple[Path, WriteReport]]:
    """Write (or with check=True, compare) the output folder and, for the default output, the root compose files.

    Returns one (folder, report) per folder; the root files keep their own manifest, so the writer's rules
    (no foreign file overwritten, stale files pruned, --check) hold for them too.
    """
    label = compiled.plan.spec_label
    reports = [(output, write_files(output, compiled.files, label, check=check))]
    root = root_folder(output)
    root_files = render_root_files(compiled, output) if root is not None else {}
    if root is not None and root_files:
        reports.append((root, write_files(root, root_files, label, check=check, manifest=ROOT_MANIFEST)))
    return reports
