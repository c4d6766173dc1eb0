"""Error types: user errors carry a source location; anything else is a bug."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Loc:
    """A position in a spec file: 1-based line and column."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a spec, at a location."""

    loc: Loc
    message: str
    severity: str = field(default="error", compare=False)

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


class PlatformgenError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback."""


class SpecError(PlatformgenError):
    """One or more problems in a spec, each with its location."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class UsageError(PlatformgenError):
    """The command line itself is wrong (exit code 2)."""
