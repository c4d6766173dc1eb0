"""Scaling benchmark: validate and compile synthetic specs of 10, 100 and 1,000 source tables; exit 1 on superlinear growth.

Each spec spreads its tables over sources of 10 tables each (PostgreSQL and file sources alternating, one YAML
file per source). Every table has 20 columns of mixed types, a primary key and column checks; every third
PostgreSQL table is incremental. Per table there is one intermediate SQL model joining it to its source's
dimension table (the source's first table); per source there is one gold model aggregating its intermediate
models, with expectations, an SLA and a dashboard.

Run: .venv/bin/python benchmarks/compile_scale.py [--sizes 10,100,1000] [--profile]

Prints a table of median times, then time(1000)/time(100) for validate and compile. Linear growth gives a
ratio near 10; the check fails (exit 1) above 12. A baseline measured in the same run, the time ruamel.yaml
alone takes to parse the same files, shows how much of the time is platformgen's own.

To bound the run time, a measurement of the largest size is stopped once it has taken 12 times as long as the
same measurement at 100 tables: the growth goal is missed at that point, and the ratio is reported as "> 12".
`--profile N` prints a cProfile of compiling a spec of N tables (the platformgen functions by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from platformgen.compiler import compile_spec
from platformgen.errors import SpecError
from platformgen.spec.validate import validate_path
from platformgen.writer import write_files

TABLES_PER_SOURCE = 10
MAX_GROWTH = 12.0
DEFAULT_SIZES = (10, 100, 1000)

#: The 20 columns of every table: name -> column spec (a type, or a mapping with checks).
COLUMNS: dict[str, Any] = {
    "id": {"type": "bigint", "nullable": False},
    "dim_id": {"type": "bigint", "nullable": False},
    "name": {"type": "string", "nullable": False},
    "code": {"type": "string", "accepted_values": ["a", "b", "c", "d"]},
    "status": {"type": "string", "nullable": False, "accepted_values": ["new", "active", "closed"]},
    "amount": {"type": "decimal(12,2)", "range": {"min": 0, "max": 1000000}},
    "price": {"type": "decimal(10,4)", "range": {"min": 0}},
    "quantity": {"type": "integer", "range": {"min": 0, "max": 1000}},
    "score": "float",
    "is_active": "boolean",
    "is_deleted": {"type": "boolean", "nullable": False},
    "created_at": {"type": "timestamptz", "nullable": False},
    "updated_at": {"type": "timestamptz", "nullable": False},
    "event_date": "date",
    "note": {"type": "string", "description": "Free text."},
    "email": {"type": "string", "classification": "pii", "regex": "^[^@]+@[^@]+$"},
    "country": {"type": "string", "nullable": False},
    "ref_code": "string",
    "weight": {"type": "decimal(8,3)", "range": {"min": 0, "strict": True}},
    "counter": "bigint",
}


def source_name(index: int) -> str:
    """Name of the index-th source."""
    return f"src{index:03d}"


def table_name(index: int) -> str:
    """Name of the index-th table of a source (table 0 is the source's dimension table)."""
    return f"t{index:02d}"


def table_spec(source: int, table: int, kind: str) -> dict[str, Any]:
    """One source table: 20 columns, primary key, silver rules, inline expectations."""
    spec: dict[str, Any] = {
        "name": table_name(table),
        "description": f"Synthetic table {table} of source {source}.",
        "primary_key": ["id"],
        "columns": dict(COLUMNS),
        "silver": {"rename": {"ref_code": "reference"}, "case": {"status": "lower", "country": "upper"}},
        "expectations": [
            {"row_count": {"min": 1}},
            {"name": "amount_matches_price", "sql": "amount >= 0 or price is null", "severity": "warn"},
            {"column": "dim_id", "relationships": {"to": f"{source_name(source)}.{table_name(0)}", "column": "id"}},
        ],
    }
    if kind == "postgres":
        spec["schema"] = "public"
        if table % 3 == 1:
            spec["incremental"] = {"cursor": "updated_at", "initial": "2024-01-01T00:00:00+00:00", "lag": "1h"}
            spec["silver"].update({"dedup": {"by": "updated_at"}, "materialized": "incremental"})
    else:
        spec["pattern"] = f"{table_name(table)}_*.csv"
    return spec


def source_file(source: int, tables: int) -> dict[str, Any]:
    """A source with its tables, the intermediate and gold models on them, expectations and a dashboard."""
    name = source_name(source)
    kind = "postgres" if source % 2 == 0 else "file"
    spec: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "description": f"Synthetic source {source}.",
        "owner": "data-platform",
        "schedule": "@hourly" if kind == "postgres" else "30 5 * * *",
        "tables": [table_spec(source, t, kind) for t in range(tables)],
    }
    if kind == "postgres":
        spec["connection"] = {
            "host": f"env:{name.upper()}_HOST",
            "database": name,
            "user": f"env:{name.upper()}_USER",
            "password": f"env:{name.upper()}_PASSWORD",
        }
    else:
        spec.update({"location": f"s3://landing/{name}", "format": "csv"})
    models: list[dict[str, Any]] = []
    for t in range(tables):
        models.append(
            {
                "name": f"int_{name}_{table_name(t)}",
                "layer": "intermediate",
                "sql": (
                    "select f.id,\n"
                    "       f.dim_id,\n"
                    "       d.name as dim_name,\n"
                    "       f.status,\n"
                    "       f.amount,\n"
                    "       f.quantity,\n"
                    "       f.price * f.quantity as gross,\n"
                    "       f.created_at\n"
                    f"from {name}.{table_name(t)} f\n"
                    f"join {name}.{table_name(0)} d\n"
                    "  on d.id = f.dim_id\n"
                    "where not f.is_deleted\n"
                ),
                "columns": {"id": {"type": "bigint", "nullable": False}},
            }
        )
    union = "\n    union all\n".join(
        f"    select dim_name, status, amount, gross, created_at from int_{name}_{table_name(t)}" for t in range(tables)
    )
    gold = f"gold_{name}"
    models.append(
        {
            "name": gold,
            "layer": "gold",
            "owner": "analytics",
            "sql": (
                f"with unioned as (\n{union}\n)\n"
                "select dim_name,\n"
                "       status,\n"
                "       count(*) as row_count,\n"
                "       sum(amount) as amount,\n"
                "       sum(gross) as gross,\n"
                "       max(created_at) as last_created_at\n"
                "from unioned\n"
                "group by dim_name, status\n"
            ),
            "columns": {"amount": {"type": "decimal(14,2)", "range": {"min": 0}}},
            "expectations": [{"columns": ["dim_name", "status"], "unique": True}, {"row_count": {"min": 1}}],
            "sla": {"warn_after": "6h", "ready_by": "07:00 UTC", "notify": ["analytics"]},
        }
    )
    return {
        "sources": [spec],
        "models": models,
        "expectations": [
            {"dataset": f"{name}.{table_name(t)}", "column": "quantity", "not_null": True, "severity": "warn"}
            for t in range(tables)
        ],
        "dashboards": [
            {
                "name": f"dash_{name}",
                "charts": [
                    {"title": "Amount", "type": "bar", "model": gold, "dimension": "status", "metric": "sum(amount)"},
                    {"title": "Rows", "type": "table", "model": gold, "columns": ["dim_name", "status", "row_count"]},
                ],
            }
        ],
    }


def platform_file() -> dict[str, Any]:
    """The platform, its teams and defaults."""
    return {
        "platform": {"name": "scale_bench", "owner": "data-platform"},
        "governance": {
            "teams": {
                "data-platform": {"email": "data-platform@bench.example"},
                "analytics": {"email": "analytics@bench.example"},
            }
        },
    }


def write_spec(root: Path, tables: int) -> list[Path]:
    """Write a spec of `tables` source tables under `root`; return its files."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    files = [root / "platform.yaml"]
    documents: list[dict[str, Any]] = [platform_file()]
    for source in range((tables + TABLES_PER_SOURCE - 1) // TABLES_PER_SOURCE):
        count = min(TABLES_PER_SOURCE, tables - source * TABLES_PER_SOURCE)
        files.append(root / "sources" / f"{source_name(source)}.yaml")
        documents.append(source_file(source, count))
    for path, document in zip(files, documents, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            yaml.dump(document, handle)
    return files


class OverBudget(BaseException):  # not Exception: libraries must not catch and wrap it
    """A measurement ran past its time limit."""


def _alarm(signum: int, frame: object) -> None:
    raise OverBudget


def median_time(action: Callable[[], object], repetitions: int, limit: float | None = None) -> float | None:
    """Median wall time of `action` over `repetitions` runs, in seconds; None when one run exceeds `limit` seconds."""
    times: list[float] = []
    can_stop = limit is not None and hasattr(signal, "setitimer")
    for _ in range(repetitions):
        if can_stop and limit is not None:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        start = time.perf_counter()
        try:
            action()
        except OverBudget:
            return None
        finally:
            if can_stop:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_only(files: list[Path]) -> None:
    """The baseline: parse every file with ruamel.yaml's round-trip loader, as the spec loader does."""
    for path in files:
        yaml = YAML(typ="rt", pure=True)
        yaml.load(path.read_text(encoding="utf-8"))


def compile_into(spec: Path, out: Path) -> None:
    """Validate, plan, render and write the generated files into `out` (a fresh folder)."""
    compiled = compile_spec(spec)
    write_files(out, compiled.files, compiled.plan.spec_label)


class FreshCompile:
    """Compiles a spec into a new output folder on every call, so each repetition writes every file."""

    def __init__(self, spec: Path, out: Path) -> None:
        self.spec = spec
        self.out = out
        self.runs = 0

    def __call__(self) -> None:
        self.runs += 1
        compile_into(self.spec, self.out / f"run{self.runs}")


def repetitions_for(tables: int) -> int:
    """Fewer repetitions for the large specs, to keep the run within a few minutes."""
    return 5 if tables <= 10 else 3 if tables <= 100 else 1


def profile(spec: Path, out: Path, top: int = 25) -> str:
    """cProfile of one compile: the platformgen functions with the most cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    compile_into(spec, out)
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("cumulative").print_stats("platformgen", top)
    return buffer.getvalue()


def _seconds(value: float | None, limit: float | None, width: int) -> str:
    if value is not None:
        return f"{value:>{width}.3f}"
    return f"> {limit:.1f}".rjust(width)


def _per_table(value: float | None, tables: int, width: int) -> str:
    return f"{value / tables * 1000:>{width}.2f}" if value is not None else "-".rjust(width)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when growth from 100 to 1,000 tables is at most MAX_GROWTH, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated table counts")
    parser.add_argument("--profile", type=int, metavar="N", help="also print a cProfile of compiling N tables")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    #: tables -> (validate s, compile s, yaml parse s); None: stopped at the limit
    results: dict[int, tuple[float | None, float | None, float]] = {}
    limits: dict[int, tuple[float | None, float | None]] = {}
    header = (
        f"{'tables':>7} {'files':>6} {'MB':>6} {'validate s':>11} {'compile s':>10} "
        f"{'validate ms/table':>18} {'compile ms/table':>17} {'yaml parse s':>13} {'compile/parse':>14}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="platformgen-bench-") as tmp:
        for tables in sizes:
            root = Path(tmp) / f"spec_{tables}"
            files = write_spec(root, tables)
            megabytes = sum(f.stat().st_size for f in files) / 1e6
            reps = repetitions_for(tables)
            base = results.get(100) if tables == 1000 else None
            validate_limit = MAX_GROWTH * base[0] if base is not None and base[0] is not None else None
            compile_limit = MAX_GROWTH * base[1] if base is not None and base[1] is not None else None
            limits[tables] = (validate_limit, compile_limit)
            baseline = median_time(functools.partial(parse_only, files), reps)
            assert baseline is not None
            try:
                validate_s = median_time(functools.partial(validate_path, root), reps, validate_limit)
                compile_s = median_time(FreshCompile(root, Path(tmp) / f"out_{tables}"), reps, compile_limit)
            except SpecError as exc:
                print(f"the synthetic spec of {tables} tables is invalid:\n{exc}", file=sys.stderr)
                return 2
            results[tables] = (validate_s, compile_s, baseline)
            over_parse = f"{compile_s / baseline:>14.2f}" if compile_s is not None else "-".rjust(14)
            print(
                f"{tables:>7} {len(files):>6} {megabytes:>6.2f} {_seconds(validate_s, validate_limit, 11)} "
                f"{_seconds(compile_s, compile_limit, 10)} {_per_table(validate_s, tables, 18)} "
                f"{_per_table(compile_s, tables, 17)} {baseline:>13.3f} {over_parse}",
                flush=True,
            )
        if args.profile:
            spec = Path(tmp) / f"profile_{args.profile}"
            write_spec(spec, args.profile)
            print(f"\ncProfile of one compile of {args.profile} tables (platformgen functions, cumulative):")
            print(profile(spec, Path(tmp) / "out_profile"))
    status = 0
    if 100 in results and 1000 in results:
        print(f"\ngrowth from 100 to 1,000 tables (goal: at most {MAX_GROWTH:g}, linear growth):")
        for label, index in (("validate", 0), ("compile", 1), ("yaml parse baseline", 2)):
            small, large = results[100][index], results[1000][index]
            if index == 2 and small is not None and large is not None:
                print(f"  {label:<20} {large / small:7.2f}  (reference)")
                continue
            if small is None or large is None:
                print(
                    f"  {label:<20} {'> ' + format(MAX_GROWTH, 'g'):>7}  FAIL: stopped after {limits[1000][index]:.1f} s"
                )
                status = 1
                continue
            ratio = large / small
            verdict = "ok" if ratio <= MAX_GROWTH else "FAIL: worse than linear"
            print(f"  {label:<20} {ratio:7.2f}  {verdict}")
            if ratio > MAX_GROWTH:
                status = 1
    else:
        print("\n(growth check skipped: it needs the sizes 100 and 1000)")
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s; exit code {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
