"""Target registry.

Adding a target:
1. Write `targets/<name>.py` with a class that has `name`, `description` and `render(plan) -> Files`
   (pure: it reads only the Plan and returns {relative path: text}; the writer does all file I/O).
2. Build structured files (YAML, JSON) as dicts and dump them with `platformgen.render.dump_yaml/dump_json`;
   use Jinja templates under `templates/<name>/` only for code (Python, SQL).
3. Register it in `_REGISTRY` below (a lazy import path, so heavy modules load only when used).
4. Add golden output: `pytest --update-golden`, review the diff, commit it.
5. Document the generated files in docs/architecture.md.
"""

from __future__ import annotations

import importlib

from platformgen.targets.base import Files, Target

_REGISTRY: dict[str, str] = {
    "warehouse": "platformgen.targets.warehouse:WarehouseTarget",
    "lineage": "platformgen.targets.lineage:LineageTarget",
    "airflow": "platformgen.targets.airflow:AirflowTarget",
    "dbt": "platformgen.targets.dbt:DbtTarget",
    "great_expectations": "platformgen.targets.great_expectations:GreatExpectationsTarget",
    "compose": "platformgen.targets.compose:ComposeTarget",
    "superset": "platformgen.targets.superset:SupersetTarget",
    "openmetadata": "platformgen.targets.openmetadata:OpenMetadataTarget",
}


def target_names() -> list[str]:
    """Registered target names, in render order."""
    return list(_REGISTRY)


def get_target(name: str) -> Target:
    """Instantiate a registered target."""
    module_name, _, class_name = _REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    target: Target = cls()
    return target


__all__ = ["Files", "Target", "get_target", "target_names"]
