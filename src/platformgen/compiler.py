"""The compile pipeline: load and validate the spec, build the plan, render every target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from platformgen.errors import PlatformgenError
from platformgen.plan.build import Plan, build_plan
from platformgen.spec.validate import validate_path
from platformgen.targets import get_target, target_names
from platformgen.writer import with_header


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
