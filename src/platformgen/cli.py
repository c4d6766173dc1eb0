"""The command line: the only module that prints or exits."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from platformgen import __version__
from platformgen.errors import Diagnostic, PlatformgenError, SpecError, UsageError

app = typer.Typer(
    name="platformgen",
    help="Compile a declarative data-platform spec into Airflow DAGs, a dbt project, GX suites and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SpecArg = Annotated[Path, typer.Argument(help="Spec directory or file.", show_default=True)]


class OutputFormat(StrEnum):
    """How validate reports problems."""

    text = "text"
    json = "json"
    github = "github"


class SchemaFormat(StrEnum):
    """Output of the schema command."""

    json = "json"
    markdown = "markdown"


def _version(value: bool) -> None:
    if value:
        out.print(f"platformgen {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """platformgen: validate, compile and run a data platform described in YAML."""


def _github_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _report(diagnostics: list[Diagnostic], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        payload = {
            "valid": not diagnostics,
            "errors": [
                {"file": d.loc.file, "line": d.loc.line, "column": d.loc.col, "message": d.message} for d in diagnostics
            ],
        }
        print(json.dumps(payload, indent=2))
        return
    for d in diagnostics:
        if fmt is OutputFormat.github:
            prop = f"file={_github_escape(d.loc.file)},line={d.loc.line},col={d.loc.col}"
            print(f"::error {prop}::{_github_escape(d.message)}")
        else:
            print(str(d))
    if diagnostics and fmt is OutputFormat.text:
        files = len({d.loc.file for d in diagnostics})
        noun = "error" if len(diagnostics) == 1 else "errors"
        err.print(f"[red]{len(diagnostics)} {noun}[/red] in {files} file{'s' if files != 1 else ''}")


def _fail(exc: PlatformgenError, fmt: OutputFormat = OutputFormat.text) -> typer.Exit:
    if isinstance(exc, SpecError):
        _report(exc.diagnostics, fmt)
        return typer.Exit(1)
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2 if isinstance(exc, UsageError) else 1)


@app.command()
def validate(
    spec: SpecArg = Path("specs"),
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text, json or github (Actions annotations).")
    ] = OutputFormat.text,
) -> None:
    """Check a spec; exit 0 when valid, 1 when not, 2 on a usage error."""
    from platformgen.spec.validate import validate_path

    try:
        checked = validate_path(spec)
    except PlatformgenError as exc:
        raise _fail(exc, output_format) from None
    if output_format is OutputFormat.json:
        _report([], output_format)
    elif output_format is OutputFormat.text:
        s = checked.spec
        err.print(
            f"[green]valid[/green]: {spec} ({len(s.sources)} sources, "
            f"{sum(len(ds) for ds in [getattr(src, 'tables', None) or getattr(src, 'endpoints', []) for src in s.sources])} "
            f"datasets, {len(s.models)} models, {len(s.dashboards)} dashboards)"
        )


@app.command(name="compile")
def compile_command(
    spec: SpecArg = Path("specs"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")] = Path("generated"),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if output is stale.")] = False,
) -> None:
    """Validate the spec and generate the platform into the output folder."""
    from platformgen.compiler import compile_spec, write_compiled

    try:
        compiled = compile_spec(spec)
        reports = write_compiled(compiled, output, check=check)
    except PlatformgenError as exc:
        raise _fail(exc) from None
    report = reports[0][1]
    if check:
        if all(r.clean for _, r in reports):
            err.print(f"[green]up to date[/green]: {output} matches {spec}")
            return
        for folder, folder_report in reports:
            for label, paths in (
                ("stale", folder_report.stale),
                ("missing", folder_report.missing),
                ("extra", folder_report.extra),
            ):
                for path in paths:
                    print(f"{label}: {folder / path}")
        err.print(f"[red]{output} is out of date[/red]: run `platformgen compile {spec} -o {output}`")
        raise typer.Exit(1)
    table = Table(title=f"platformgen compile {spec} -> {output}")
    for column in ("target", "files", "written", "unchanged"):
        table.add_column(column, justify="left" if column == "target" else "right")
    written = set(report.written)
    for name, files in compiled.outputs.items():
        changed = sum(1 for p in files if p in written)
        table.add_row(name, str(len(files)), str(changed), str(len(files) - changed))
    out.print(table)
    if report.deleted:
        out.print(f"deleted {len(report.deleted)} file(s) no longer generated: " + ", ".join(report.deleted))
    for folder, root_report in reports[1:]:
        if root_report.written:
            out.print("also wrote " + ", ".join(str(folder / p) for p in root_report.written))


@app.command()
def schema(
    output_format: Annotated[
        SchemaFormat, typer.Option("--format", "-f", help="json or markdown.")
    ] = SchemaFormat.json,
) -> None:
    """Print the JSON Schema of the spec language (for editors), or its Markdown reference."""
    from platformgen.spec.reference import json_schema_text, markdown_reference

    sys.stdout.write(json_schema_text() if output_format is SchemaFormat.json else markdown_reference())


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the starter spec in.")],
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty folder.")] = False,
) -> None:
    """Scaffold a starter spec that validates and compiles."""
    from platformgen.scaffold import scaffold

    try:
        written = scaffold(directory, force=force)
    except PlatformgenError as exc:
        raise _fail(exc) from None
    for path in written:
        out.print(f"created {path}")
    out.print(f"\nnext: platformgen validate {directory} && platformgen compile {directory} -o {directory}/generated")


def run() -> None:
    """Console-script entry point."""
    app()


StateOpt = Annotated[Path, typer.Option("--state", help="State folder of the local mode.")]


@app.command()
def up(
    spec: SpecArg = Path("specs"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Compiled output folder.")] = Path("generated"),
    local: Annotated[bool, typer.Option("--local", help="Run on embedded services, without Docker.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the commands instead of running them.")] = False,
    state: StateOpt = Path(".platformgen"),
    warehouse_url: Annotated[
        str | None,
        typer.Option("--warehouse-url", help="Local mode: use this PostgreSQL server instead of an embedded one."),
    ] = None,
) -> None:
    """Compile when stale, then bring the platform up (Docker Compose, or --local without Docker)."""
    try:
        if local:
            from platformgen.deploy.local import up_local

            code = up_local(spec, output, state_dir=state, warehouse_url=warehouse_url, console=out)
        else:
            from platformgen.deploy.compose import up_compose

            code = up_compose(spec, output, dry_run=dry_run, console=out)
    except PlatformgenError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@app.command()
def down(
    spec: SpecArg = Path("specs"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Compiled output folder.")] = Path("generated"),
    local: Annotated[bool, typer.Option("--local", help="Stop the embedded services of the local mode.")] = False,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the Docker volumes (all data).")] = False,
    wipe: Annotated[bool, typer.Option("--wipe", help="Local mode: also delete the state folder (all data).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the commands instead of running them.")] = False,
    state: StateOpt = Path(".platformgen"),
) -> None:
    """Stop the platform (and with --volumes / --wipe, delete its data)."""
    try:
        if local:
            from platformgen.deploy.local import down_local

            code = down_local(state_dir=state, wipe=wipe, console=out)
        else:
            from platformgen.deploy.compose import down_compose

            code = down_compose(spec, output, volumes=volumes, dry_run=dry_run, console=out)
    except PlatformgenError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)
