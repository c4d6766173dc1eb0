"""DAG parse benchmark: Airflow DagBag fill time of platformgen's generated DAGs against hand-written equivalents.

A synthetic spec of 200 PostgreSQL tables (20 sources x 10 tables, 10 columns each, every third table
incremental, every fifth with an SLA) is compiled with platformgen. Beside it the script writes hand-written
equivalents of the same DAGs: plain Airflow files with the same DAG ids, schedules, default_args, TaskGroups,
PythonOperators (calling a trivial function), Dataset outlets, task SLAs and dependencies, and no platformgen
import. It checks that both folders load into identical DAG structures, then times `DagBag(dag_folder=...,
include_examples=False)` on each.

How it measures (both variants the same way):

- warm Airflow, cold platformgen: every repetition runs in a fresh interpreter that first (untimed) imports
  airflow and the Airflow modules the DAG files use, like Airflow's DAG processor with
  `[scheduler] parsing_pre_import_modules`, and then fills a DagBag from a one-DAG warm-up file built from
  the same constructs (DAG, TaskGroup, PythonOperator, Dataset, DatasetAny). The warm-up matters: building
  the first DAG makes Airflow import jsonschema (with rfc3987_syntax, ~1 s here), its pydantic
  serialization models and flask_appbuilder, a cost that is the same whatever the DAG source and that would
  otherwise drown the difference being measured. Nothing of platformgen is imported before the timer starts.
- folder mode (the ratio that counts): the timed fill of the whole folder, so the generated side pays for
  importing `platformgen.runtime` once and for evaluating its config literals in every file. Measured twice:
  without a bytecode cache (every parse compiles the source, as with PYTHONDONTWRITEBYTECODE, which is set
  on this machine, or a read-only DAG folder; the goal applies to this one) and with `__pycache__` written
  by an untimed first fill, as a writable deployed DAG folder would have.
- per-file mode: like Airflow's DAG file processor, each file is parsed in a forked child of the warmed
  interpreter, so the generated side pays the `platformgen.runtime` import for every file. Reported as the
  median time per file.

Medians over --reps repetitions (default 7, at least 5). The goal is generated/hand-written <= 1.2 in folder
mode without bytecode cache. `python -X importtime` on one generated DAG file shows what platformgen adds to
the imports; above the goal, a cProfile of one fill of each folder shows where the time goes.

Run: .venv/bin/python benchmarks/dag_parse.py [--reps 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SOURCES = 20
TABLES_PER_SOURCE = 10
GOAL = 1.2
PRE_IMPORTS = (
    "import airflow, airflow.models.dagbag, airflow.operators.python, airflow.datasets, airflow.utils.task_group"
)
WARMUP_ENV = "PLATFORMGEN_BENCH_WARMUP_DAG"
WARMUP_DAG = '''\
"""Warm-up DAG: makes Airflow do its lazy first-DAG imports before the timer starts."""

import datetime as dt

from airflow import DAG
from airflow.datasets import Dataset, DatasetAny
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup

with DAG(
    dag_id="bench_warmup",
    schedule=DatasetAny(Dataset("bench://warmup/a"), Dataset("bench://warmup/b")),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=60), "on_failure_callback": print},
    sla_miss_callback=print,
):
    with TaskGroup(group_id="g"):
        first = PythonOperator(task_id="a", python_callable=print, op_kwargs={"x": {"y": [1]}})
        second = PythonOperator(
            task_id="b", python_callable=print, outlets=[Dataset("bench://warmup/c")], sla=dt.timedelta(hours=1)
        )
        first >> second
'''

COLUMNS: dict[str, Any] = {
    "id": {"type": "bigint", "nullable": False},
    "name": {"type": "string", "nullable": False},
    "status": {"type": "string", "accepted_values": ["new", "active", "closed"]},
    "amount": {"type": "decimal(12,2)", "range": {"min": 0}},
    "quantity": "integer",
    "score": "float",
    "is_active": "boolean",
    "created_at": {"type": "timestamptz", "nullable": False},
    "updated_at": {"type": "timestamptz", "nullable": False},
    "event_date": "date",
}


# --------------------------------------------------------------------------- the synthetic spec


def write_spec(root: Path) -> None:
    """platform.yaml plus one file per source (20 x 10 tables of 10 columns)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    documents: dict[str, dict[str, Any]] = {
        "platform.yaml": {
            "platform": {"name": "parse_bench", "owner": "data-platform"},
            "alerting": {
                "email": {"to": ["oncall@bench.example"], "from": "airflow@bench.example"},
                "slack": {"channel": "#alerts", "webhook": "env:SLACK_WEBHOOK_URL"},
            },
        }
    }
    for s in range(SOURCES):
        name = f"src{s:02d}"
        tables = []
        for t in range(TABLES_PER_SOURCE):
            table: dict[str, Any] = {"name": f"t{t:02d}", "primary_key": ["id"], "columns": dict(COLUMNS)}
            if t % 3 == 1:
                table["incremental"] = {"cursor": "updated_at", "initial": "2024-01-01T00:00:00+00:00", "lag": "1h"}
            if t % 5 == 0:
                table["sla"] = {"warn_after": "6h", "error_after": "12h", "notify": ["slack"]}
            tables.append(table)
        documents[f"sources/{name}.yaml"] = {
            "sources": [
                {
                    "name": name,
                    "kind": "postgres",
                    "schedule": "@hourly",
                    "connection": {
                        "host": f"env:{name.upper()}_HOST",
                        "database": name,
                        "user": f"env:{name.upper()}_USER",
                        "password": f"env:{name.upper()}_PASSWORD",
                    },
                    "tables": tables,
                }
            ]
        }
    for rel, document in documents.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            yaml.dump(document, handle)


def compile_generated(spec: Path, out: Path) -> Path:
    """Compile the spec's Airflow target with platformgen; returns the DAG folder."""
    from platformgen.compiler import compile_spec
    from platformgen.writer import write_files

    compiled = compile_spec(spec, ["airflow"])
    write_files(out, compiled.files, compiled.plan.spec_label)
    return out / "airflow" / "dags"


# --------------------------------------------------------------------------- the hand-written equivalents

HAND_HEADER = '''\
"""{dag_id}: hand-written equivalent of the generated DAG (benchmark baseline)."""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.datasets import Dataset, DatasetAny
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup


def run(**context):
    return None


def on_failure(context):
    return None


def on_sla_miss(dag, task_list, blocking_task_list, slas, blocking_tis):
    return None


'''


def hand_written(dag: dict[str, Any]) -> str:
    """Plain Airflow source with the same DAG, TaskGroups, operators, outlets, SLAs and edges as `dag`."""
    d = dag["default_args"]
    lines = [HAND_HEADER.format(dag_id=dag["dag_id"])]
    default_args = [f'    "owner": {d["owner"]!r},', f'    "retries": {d["retries"]},']
    if d.get("retry_delay") is not None:
        default_args.append(f'    "retry_delay": dt.timedelta(seconds={d["retry_delay"]}),')
    if d.get("retry_exponential_backoff") is not None:
        default_args.append(f'    "retry_exponential_backoff": {d["retry_exponential_backoff"]},')
    if d.get("execution_timeout") is not None:
        default_args.append(f'    "execution_timeout": dt.timedelta(seconds={d["execution_timeout"]}),')
    default_args.append('    "on_failure_callback": on_failure,')
    lines.append("default_args = {\n" + "\n".join(default_args) + "\n}\n\n")
    if dag["dataset_schedule"] is not None:
        schedule = "DatasetAny(" + ", ".join(f"Dataset({u!r})" for u in dag["dataset_schedule"]) + ")"
    else:
        schedule = repr(dag["schedule"])
    lines.append(
        "with DAG(\n"
        f"    dag_id={dag['dag_id']!r},\n"
        f"    description={dag['description']!r},\n"
        f"    schedule={schedule},\n"
        "    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),\n"
        "    catchup=False,\n"
        f"    max_active_runs={dag['max_active_runs']},\n"
        "    default_args=default_args,\n"
        f"    tags={dag['tags']!r},\n"
        "    doc_md=__doc__,\n"
        + ("    sla_miss_callback=on_sla_miss,\n" if dag["sla_miss_callback"] else "")
        + ") as dag:\n"
    )
    names: dict[str, str] = {}
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for task in dag["tasks"]:
        groups.setdefault(task["group"], []).append(task)
    for group, tasks in groups.items():
        indent = "    "
        if group is not None:
            lines.append(f"    with TaskGroup(group_id={group!r}):\n")
            indent = "        "
        for task in tasks:
            var = f"t{len(names)}"
            names[task["task_id"]] = var
            args = [f"task_id={task['local_id']!r}", "python_callable=run"]
            if task["outlets"]:
                args.append("outlets=[" + ", ".join(f"Dataset({u!r})" for u in task["outlets"]) + "]")
            if task["sla"] is not None:
                args.append(f"sla=dt.timedelta(seconds={task['sla']})")
            lines.append(f"{indent}{var} = PythonOperator({', '.join(args)})\n")
    for task in dag["tasks"]:
        for upstream in task["upstream"]:
            lines.append(f"    {names[upstream]} >> {names[task['task_id']]}\n")
    return "".join(lines)


# --------------------------------------------------------------------------- workers (run in fresh interpreters)


def worker_dump(folder: str) -> None:
    """Print the structure of every DAG in `folder` as JSON."""
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=folder, include_examples=False)
    if bag.import_errors:
        raise SystemExit(f"import errors in {folder}: {bag.import_errors}")
    dags = []
    for dag_id in sorted(bag.dag_ids):
        dag = bag.get_dag(dag_id)
        triggers = dag.dataset_triggers
        dataset_schedule = sorted(d.uri for d in triggers.objects) if triggers and triggers.objects else None

        def seconds(value: Any) -> float | None:
            return None if value is None else value.total_seconds()

        d = dag.default_args
        tasks = []
        for task in sorted(dag.tasks, key=lambda t: t.task_id):
            group = task.task_group.group_id if task.task_group and task.task_group.group_id else None
            tasks.append(
                {
                    "task_id": task.task_id,
                    "local_id": task.task_id.rsplit(".", 1)[-1] if group else task.task_id,
                    "group": group,
                    "operator": type(task).__name__,
                    "outlets": [o.uri for o in task.outlets],
                    "sla": seconds(task.sla),
                    "upstream": sorted(task.upstream_task_ids),
                    "has_failure_callback": task.on_failure_callback is not None,
                }
            )
        dags.append(
            {
                "dag_id": dag_id,
                "description": dag.description,
                "schedule": None if dataset_schedule else dag.schedule_interval,
                "dataset_schedule": dataset_schedule,
                "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup,
                "tags": sorted(dag.tags),
                "sla_miss_callback": dag.sla_miss_callback is not None,
                "default_args": {
                    "owner": d.get("owner"),
                    "retries": d.get("retries"),
                    "retry_delay": seconds(d.get("retry_delay")),
                    "retry_exponential_backoff": d.get("retry_exponential_backoff"),
                    "execution_timeout": seconds(d.get("execution_timeout")),
                },
                "tasks": tasks,
            }
        )
    print(json.dumps(dags))


def warm_airflow() -> None:
    """Import Airflow and build the warm-up DAG (untimed), so the timed fill measures the DAG files only."""
    exec(PRE_IMPORTS)
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ[WARMUP_ENV], include_examples=False)
    if bag.import_errors or "platformgen" in " ".join(sys.modules):
        raise SystemExit(f"warm-up failed: {bag.import_errors}")


def worker_time_folder(folder: str) -> None:
    """Warm Airflow up (untimed), then time one DagBag fill of `folder`; print JSON."""
    t0 = time.perf_counter()
    warm_airflow()
    t1 = time.perf_counter()
    from airflow.models.dagbag import DagBag

    start = time.perf_counter()
    bag = DagBag(dag_folder=folder, include_examples=False)
    fill = time.perf_counter() - start
    print(
        json.dumps(
            {"import_airflow": t1 - t0, "fill": fill, "dags": len(bag.dag_ids), "errors": len(bag.import_errors)}
        )
    )


def worker_time_files(folder: str) -> None:
    """Warm Airflow up, then parse each file in a forked child (like the DAG file processor); print JSON."""
    warm_airflow()
    from airflow.models.dagbag import DagBag

    times: dict[str, float] = {}
    for path in sorted(Path(folder).glob("*.py")):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: parse one file, report, exit without cleanup
            os.close(read)
            start = time.perf_counter()
            bag = DagBag(dag_folder=str(path), include_examples=False)
            elapsed = time.perf_counter() - start if not bag.import_errors else -1.0
            os.write(write, json.dumps(elapsed).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            times[path.stem] = json.loads(pipe.read())
        os.waitpid(pid, 0)
    if any(t < 0 for t in times.values()):
        raise SystemExit(f"import errors in {folder}")
    print(json.dumps({"files": times}))


# --------------------------------------------------------------------------- driver


def airflow_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONWARNINGS": "ignore",
            WARMUP_ENV: str(home / "warmup_dag.py"),
        }
    )
    return env


def run_worker(env: dict[str, str], mode: str, folder: Path) -> Any:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(folder)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {mode} {folder} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_profile(env: dict[str, str], dag_file: Path, top: int = 12) -> list[tuple[int, int, str]]:
    """`python -X importtime` of one DAG file after the Airflow warm-up: (self us, cumulative us, module)."""
    code = (
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nimport dag_parse\ndag_parse.warm_airflow()\n"
        f"print('--mark--', file=sys.stderr)\nexec(compile(open({str(dag_file)!r}).read(), 'dag', 'exec'))"
    )
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True)
    after = proc.stderr.split("--mark--", 1)[-1]
    rows = []
    for line in after.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
            rows.append((int(self_us), int(cumulative), name))
    return sorted(rows, key=lambda r: -r[1])[:top]


def worker_profile(folder: str) -> None:
    """Warm Airflow up, then cProfile one fill of `folder`; print the functions with the most own time."""
    import cProfile
    import pstats

    warm_airflow()
    from airflow.models.dagbag import DagBag

    profiler = cProfile.Profile()
    profiler.enable()
    DagBag(dag_folder=folder, include_examples=False)
    profiler.disable()
    stats: Any = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        where = filename.split("site-packages/")[-1] if "site-packages/" in filename else filename
        rows.append((tottime, cumtime, ncalls, f"{where}:{line}({function})"))
    rows.sort(reverse=True)
    print(json.dumps({"total": stats.total_tt, "top": rows[:10]}))


def clear_pycache(folders: dict[str, Path]) -> None:
    """Remove the DAG folders' bytecode, so the next parses compile the source."""
    import shutil

    for folder in folders.values():
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)


def what_if_partial(generated: Path, out: Path) -> Path:
    """A copy of the generated DAGs that passes the configs as functools.partial keywords instead of op_kwargs.

    Airflow walks every operator's op_kwargs (a templated field) for XComArgs when the operator is built, and
    renders it with Jinja when the task runs; configs bound to the callable are neither walked nor rendered.
    """
    import re

    out.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(r"python_callable=(tasks\.\w+),\n\s+op_kwargs=(\{[^\n]*\}),")
    for path in sorted(generated.glob("*.py")):
        text, count = pattern.subn(r"python_callable=functools.partial(\1, **\2),", path.read_text(encoding="utf-8"))
        if count == 0:
            raise SystemExit(f"what-if: no operator rewritten in {path.name}; the template changed")
        (out / path.name).write_text(text, encoding="utf-8")
    return out


def fill_times(env: dict[str, str], folders: dict[str, Path], reps: int, n_dags: int) -> dict[str, list[float]]:
    """Folder mode: one fresh interpreter per repetition and variant, interleaved so drift hits both alike."""
    for folder in folders.values():  # untimed: writes __pycache__ when bytecode caching is on
        run_worker(env, "folder", folder)
    fills: dict[str, list[float]] = {name: [] for name in folders}
    for _ in range(reps):
        for name, folder in folders.items():
            result = run_worker(env, "folder", folder)
            if result["dags"] != n_dags or result["errors"]:
                raise SystemExit(f"{name}: {result}")
            fills[name].append(result["fill"])
    return fills


def main(argv: list[str] | None = None) -> int:
    """Build both DAG folders, check they are equivalent, time them; 0 when the ratio meets the goal."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per variant (at least 5)")
    parser.add_argument("--keep", type=Path, help="write the spec and both DAG folders here instead of a temp dir")
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also time a copy of the generated DAGs that passes configs through functools.partial, not op_kwargs",
    )
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        mode, folder = args.worker
        workers = {
            "dump": worker_dump,
            "folder": worker_time_folder,
            "files": worker_time_files,
            "profile": worker_profile,
        }
        workers[mode](folder)
        return 0
    reps = max(5, args.reps)
    with tempfile.TemporaryDirectory(prefix="platformgen-dagparse-") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        spec, home = base / "spec", base / "airflow_home"
        write_spec(spec)
        start = time.perf_counter()
        generated = compile_generated(spec, base / "generated")
        compile_s = time.perf_counter() - start
        home.mkdir(exist_ok=True)
        (home / "warmup_dag.py").write_text(WARMUP_DAG, encoding="utf-8")
        env = airflow_env(home)
        airflow_cli = Path(sys.executable).parent / "airflow"
        subprocess.run([str(airflow_cli), "db", "migrate"], env=env, check=True, capture_output=True)

        structure = run_worker(env, "dump", generated)
        hand = base / "hand_written"
        hand.mkdir(exist_ok=True)
        for dag in structure:
            (hand / f"{dag['dag_id']}.py").write_text(hand_written(dag), encoding="utf-8")
        if run_worker(env, "dump", hand) != structure:
            print("the hand-written DAGs differ from the generated ones", file=sys.stderr)
            return 2
        n_dags = len(structure)
        n_tasks = sum(len(d["tasks"]) for d in structure)
        folders = {"generated": generated, "hand-written": hand}
        size = {name: sum(p.stat().st_size for p in folder.glob("*.py")) for name, folder in folders.items()}
        print(
            f"spec: {SOURCES * TABLES_PER_SOURCE} tables in {SOURCES} sources; compiled in {compile_s:.2f} s into "
            f"{n_dags} DAGs with {n_tasks} tasks (identical structure in both folders)"
        )
        print(
            f"DAG folder size: generated {size['generated'] / 1e3:.0f} kB, "
            f"hand-written {size['hand-written'] / 1e3:.0f} kB; {reps} timed repetitions per variant\n"
        )

        # Bytecode off: every parse compiles the source (PYTHONDONTWRITEBYTECODE, or a read-only DAG folder).
        no_pyc = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        with_pyc = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        print("folder mode: DagBag fill in a fresh interpreter per repetition, Airflow imported and warmed up first")
        print(f"{'variant':<14} {'bytecode':<9} {'fill median s':>14} {'ms per DAG':>11} {'min s':>7} {'max s':>7}")
        timed = dict(folders)
        if args.what_if:
            timed["what-if"] = what_if_partial(generated, base / "what_if_partial")
        ratios = {}
        for label, mode_env in (("off", no_pyc), ("cached", with_pyc)):
            clear_pycache(timed)
            fills = fill_times(mode_env, timed, reps, n_dags)
            medians = {name: statistics.median(values) for name, values in fills.items()}
            for name, values in fills.items():
                print(
                    f"{name:<14} {label:<9} {medians[name]:>14.3f} {medians[name] / n_dags * 1000:>11.2f} "
                    f"{min(values):>7.3f} {max(values):>7.3f}"
                )
            ratios[label] = medians["generated"] / medians["hand-written"]
            if args.what_if:
                ratios[f"what-if {label}"] = medians["what-if"] / medians["hand-written"]
        print(
            f"ratio generated/hand-written: {ratios['off']:.2f} without bytecode cache, "
            f"{ratios['cached']:.2f} with it (goal <= {GOAL})"
        )
        if args.what_if:
            print(
                "what-if (configs via functools.partial instead of op_kwargs)/hand-written: "
                f"{ratios['what-if off']:.2f} without bytecode cache, {ratios['what-if cached']:.2f} with it"
            )
        print()

        clear_pycache(folders)
        per_file: dict[str, dict[str, list[float]]] = {name: {} for name in folders}
        for _ in range(max(3, reps // 2)):
            for name, folder in folders.items():
                for dag_id, seconds in run_worker(no_pyc, "files", folder)["files"].items():
                    per_file[name].setdefault(dag_id, []).append(seconds)
        print("per-file mode: each file parsed in a forked child of the warmed interpreter (no bytecode cache)")
        print(f"{'DAG kind':<14} {'files':>5} {'generated ms':>13} {'hand-written ms':>16} {'ratio':>6}")
        kinds: dict[str, list[str]] = {}
        for dag_id in sorted(per_file["generated"]):
            kinds.setdefault(dag_id.split("__")[1], []).append(dag_id)
        kinds["all"] = sorted(per_file["generated"])
        file_ratio = 1.0
        for kind, dag_ids in kinds.items():
            gen = statistics.median(t for d in dag_ids for t in per_file["generated"][d])
            handw = statistics.median(t for d in dag_ids for t in per_file["hand-written"][d])
            print(f"{kind:<14} {len(dag_ids):>5} {gen * 1000:>13.2f} {handw * 1000:>16.2f} {gen / handw:>6.2f}")
            file_ratio = gen / handw
        print()

        ratio = ratios["off"]
        probe = generated / f"{structure[0]['dag_id']}.py"
        slow = ratio > GOAL or ratios["cached"] > GOAL or file_ratio > GOAL
        print(f"imports of {probe.name} after the Airflow warm-up (python -X importtime; cumulative, self us):")
        for self_us, cumulative, name in import_profile(no_pyc, probe):
            print(f"  {cumulative:>8} {self_us:>8}  {name}")
        if slow:
            for name, folder in folders.items():
                profile = run_worker(no_pyc, "profile", folder)
                print(f"\ncProfile of one {name} fill ({profile['total']:.3f} s under the profiler), most own time:")
                for tottime, cumtime, ncalls, where in profile["top"]:
                    print(f"  {tottime:>7.3f} s own {cumtime:>7.3f} s cum {ncalls:>7} calls  {where}")
        return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
