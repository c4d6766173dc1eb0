"""Generated DAGs load in Airflow 2.9.3's DagBag with the expected DAGs, tasks and dependencies, and parse cheaply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from platformgen.compiler import compile_spec, load_plan
from platformgen.targets.great_expectations import quality_config
from platformgen.writer import write_files

REPO = Path(__file__).resolve().parents[1]
SPECS = [REPO / "specs", *sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())]
HEAVY = (
    "boto3",
    "botocore",
    "pandas",
    "pyarrow",
    "dbt",
    "great_expectations",
    "yaml",
    "ruamel",
    "psycopg",
    "requests",
    "sqlglot",
    "pydantic",
    "platformgen.spec",
    "platformgen.compiler",
)


def _dagbag(folder: Path) -> Any:
    from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(folder), include_examples=False, safe_mode=False)


@pytest.fixture(scope="module")
def compiled_dags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for spec in SPECS:
        out = tmp_path_factory.mktemp(spec.name)
        compiled = compile_spec(spec)
        write_files(out, compiled.files, compiled.plan.spec_label)
        folders[spec.name] = out / "airflow" / "dags"
    return folders


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_dags_load_with_expected_tasks(spec: Path, compiled_dags: dict[str, Path], airflow_db: str) -> None:
    bag = _dagbag(compiled_dags[spec.name])
    assert bag.import_errors == {}
    plan = load_plan(spec)
    expected = {f"{plan.name}__ingest__{s.name}" for s in plan.sources} | {
        f"{plan.name}__transform",
        f"{plan.name}__sync",
    }
    if plan.slas:
        expected.add(f"{plan.name}__sla_monitor")
    quality = quality_config(plan)
    if any(quality["layers"].values()):
        expected.add(f"{plan.name}__quality")
    assert set(bag.dag_ids) == expected
    for source in plan.sources:
        dag = bag.get_dag(f"{plan.name}__ingest__{source.name}")
        assert dag.schedule_interval == source.schedule
        assert dag.max_active_runs == plan.orchestration.max_active_runs
        assert dag.catchup is False
        assert dag.default_args["retries"] == plan.orchestration.defaults.retries
        assert {t.task_id for t in dag.tasks} == {
            f"{t.name}.{step}" for t in source.tables for step in ("extract", "load")
        }
        for table in source.tables:
            load = dag.get_task(f"{table.name}.load")
            assert load.upstream_task_ids == {f"{table.name}.extract"}
            assert [o.uri for o in load.outlets] == [f"platformgen://{plan.name}/raw/{table.raw_table}"]
            assert load.on_failure_callback is not None
            sla = plan.sla_for(table.key)
            if sla is not None:
                assert load.sla is not None
                assert load.sla.total_seconds() == (sla.warn_after or sla.error_after)
    transform = bag.get_dag(f"{plan.name}__transform")
    layers = ["staging"]
    if any(m.layer == "intermediate" for m in plan.models):
        layers.append("intermediate")
    if any(m.layer == "gold" for m in plan.models):
        layers.append("marts")
    assert [t.task_id for t in transform.topological_sort()] == [f"{layer}.dbt_build" for layer in layers]
    raw_uris = {f"platformgen://{plan.name}/raw/{t.raw_table}" for t in plan.tables}
    assert {d.uri for d in transform.dataset_triggers.objects} == raw_uris
    last = transform.get_task(f"{layers[-1]}.dbt_build")
    assert f"platformgen://{plan.name}/_platform/transformed" in {o.uri for o in last.outlets}
    if f"{plan.name}__quality" in expected:
        quality_dag = bag.get_dag(f"{plan.name}__quality")
        assert {d.uri for d in quality_dag.dataset_triggers.objects} == {
            f"platformgen://{plan.name}/_platform/transformed"
        }
        assert {t.task_id for t in quality_dag.tasks} == {
            f"{layer}.checkpoint" for layer, entries in quality["layers"].items() if entries
        }


HAND_WRITTEN = """
import datetime as dt
from airflow import DAG
from airflow.datasets import Dataset
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup

def noop(**context):
    return None

with DAG(dag_id="hand_written", schedule="@daily", start_date=dt.datetime(2024, 1, 1), catchup=False) as dag:
    with TaskGroup(group_id="g"):
        PythonOperator(task_id="t", python_callable=noop, outlets=[Dataset("x://y")])
"""


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_dag_files_import_nothing_heavy_at_parse_time(
    spec: Path, compiled_dags: dict[str, Path], airflow_db: str, tmp_path: Path
) -> None:
    """Beyond what a hand-written DAG loads, generated DAGs may load only platformgen.runtime and the stdlib."""
    hand = tmp_path / "hand_written.py"
    hand.write_text(HAND_WRITTEN)
    files = sorted(str(p) for p in compiled_dags[spec.name].glob("*.py"))
    probe = (
        "import importlib.util, json, sys\n"
        "def load(i, path):\n"
        "    spec = importlib.util.spec_from_file_location(f'dag_{i}', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        f"load('hand', {str(hand)!r})\n"
        "base = set(sys.modules)\n"
        f"for i, path in enumerate({files!r}):\n"
        "    load(i, path)\n"
        "print(json.dumps(sorted(set(sys.modules) - base)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    extra = [
        m
        for m in loaded
        if not m.startswith("dag_")
        and m.split(".")[0] not in sys.stdlib_module_names
        and m not in ("platformgen", "platformgen.runtime")
        and not m.startswith("platformgen.runtime.")
    ]
    assert extra == [], f"DAG files import more than Airflow and the runtime at parse time: {extra}"
    runtime = sorted(m for m in loaded if m.startswith("platformgen.runtime."))
    assert set(runtime) <= {"platformgen.runtime.callbacks", "platformgen.runtime.tasks"}, runtime


def test_generated_dags_contain_no_secret_values(compiled_dags: dict[str, Path]) -> None:
    for folder in compiled_dags.values():
        for path in folder.glob("*.py"):
            for line in path.read_text().splitlines():
                if any(k in line for k in ("'password'", "'token'", "'webhook'", "'secret_key'", "'key'")):
                    assert "env:" in line or "None" in line, f"{path.name}: {line.strip()}"
