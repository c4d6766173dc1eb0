"""The Target interface: a pure function from the Plan to generated files."""

from __future__ import annotations

from typing import Protocol

from platformgen.plan.build import Plan

#: relative path (POSIX) -> file content without the generated-file header
Files = dict[str, str]


class Target(Protocol):
    """A generator: `render` turns the plan into files; it does no I/O of its own."""

    name: str
    description: str

    def render(self, plan: Plan) -> Files:
        """Every file this target produces for the plan, keyed by path relative to the output folder."""
        ...
