"""Validate generated OpenMetadata workflows with openmetadata-ingestion's own models; run with its venv's python.

Usage: ``.venv-openmetadata/bin/python tests/support/openmetadata_check.py report.json workflow.yaml... [governance.json...]``

The package is installed with ``--no-deps``, so its ``metadata/__init__.py`` (which imports half the
ingestion framework) is bypassed: a bare ``metadata`` package module pointing at the installed folder is
registered first, then ``metadata.generated.schema.metadataIngestion.workflow.OpenMetadataWorkflowConfig`` is
imported. Each file is read as ``metadata ingest`` reads it (``os.path.expandvars``, here with a dummy value
for every ``${VAR}`` it names) and passed to ``model_validate``. The report also shows that an unknown key is
rejected, at the top level and inside a connection.

Each ``governance.json`` is checked with the API's own request models: every payload of users, teams,
classifications, tags, glossaries and glossary terms with Create*Request (team members as the ids
``apply_governance`` would send), and the tag labels and owner references of the table patches with
TagLabel and EntityReference.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_models() -> Any:
    spec = importlib.util.find_spec("metadata")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("openmetadata-ingestion is not installed in this interpreter")
    package = types.ModuleType("metadata")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["metadata"] = package
    from metadata.generated.schema.metadataIngestion.workflow import OpenMetadataWorkflowConfig

    return OpenMetadataWorkflowConfig


def dummy(name: str) -> str:
    if "PORT" in name:
        return "5432"
    if "URL" in name or "ENDPOINT" in name:
        return "http://example.invalid:9000"
    return f"dummy-{name.lower()}"


def read_workflow(path: Path) -> tuple[dict[str, Any], list[str]]:
    import yaml

    raw = path.read_text(encoding="utf-8")
    names = sorted(set(_VAR.findall(raw)))
    for name in names:
        os.environ[name] = dummy(name)
    return yaml.safe_load(os.path.expandvars(raw)), names


def errors_of(model: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    from pydantic import ValidationError

    try:
        model.model_validate(config)
    except ValidationError as exc:
        return [{"loc": [str(p) for p in e["loc"]], "type": e["type"], "msg": e["msg"]} for e in exc.errors()]
    return []


def check_governance(path: Path) -> dict[str, Any]:
    """Errors of each governance payload against OpenMetadata's request models, keyed by list and name."""
    import uuid

    from metadata.generated.schema.api.classification.createClassification import CreateClassificationRequest
    from metadata.generated.schema.api.classification.createTag import CreateTagRequest
    from metadata.generated.schema.api.data.createGlossary import CreateGlossaryRequest
    from metadata.generated.schema.api.data.createGlossaryTerm import CreateGlossaryTermRequest
    from metadata.generated.schema.api.teams.createTeam import CreateTeamRequest
    from metadata.generated.schema.api.teams.createUser import CreateUserRequest
    from metadata.generated.schema.type.entityReference import EntityReference
    from metadata.generated.schema.type.tagLabel import TagLabel

    data = json.loads(path.read_text(encoding="utf-8"))
    models = {
        "users": CreateUserRequest,
        "teams": CreateTeamRequest,
        "classifications": CreateClassificationRequest,
        "tags": CreateTagRequest,
        "glossaries": CreateGlossaryRequest,
        "glossaryTerms": CreateGlossaryTermRequest,
    }
    errors: dict[str, Any] = {}
    checked = 0
    for key, model in models.items():
        for payload in data.get(key, []):
            body = {k: v for k, v in payload.items() if v is not None}
            if key == "teams":
                body["users"] = [str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in body.get("users", [])]
            found = errors_of(model, body)
            checked += 1
            if found:
                errors[f"{key}/{payload.get('name')}"] = found
    for table in data.get("tables", []):
        labels = [{"tagFQN": t, "source": "Classification"} for t in table.get("tags", [])]
        labels += [{"tagFQN": t, "source": "Glossary"} for t in table.get("glossaryTerms", [])]
        labels += [{"tagFQN": t, "source": "Classification"} for ts in table.get("columns", {}).values() for t in ts]
        for label in labels:
            found = errors_of(TagLabel, {**label, "labelType": "Manual", "state": "Confirmed"})
            if found:
                errors[f"tables/{table['fqn']}/{label['tagFQN']}"] = found
        for owner in table.get("owners", []):
            reference = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, owner["name"])), "type": owner["type"]}
            found = errors_of(EntityReference, reference)
            if found:
                errors[f"tables/{table['fqn']}/owner"] = found
        checked += 1
    return {"checked": checked, "errors": errors}


def main() -> None:
    model = load_models()
    report: dict[str, Any] = {"workflows": {}, "unknown_key": {}, "governance": {}}
    first: dict[str, Any] | None = None
    for name in sys.argv[2:]:
        path = Path(name)
        if path.suffix == ".json":
            report["governance"][name] = check_governance(path)
            continue
        config, variables = read_workflow(path)
        errors = errors_of(model, config)
        parsed: dict[str, Any] = {}
        if not errors:
            validated = model.model_validate(config)
            connection = validated.source.serviceConnection
            parsed = {
                "source_type": validated.source.type,
                "service": validated.source.serviceName,
                "config_type": type(validated.source.sourceConfig.config).__name__,
                "connection_type": type(connection.root.config).__name__ if connection is not None else None,
            }
            if first is None and connection is not None:
                first = config
        report["workflows"][name] = {"errors": errors, "variables": variables, "parsed": parsed}
    if first is not None:
        top = copy.deepcopy(first)
        top["bogusKey"] = 1
        inner = copy.deepcopy(first)
        inner["source"]["serviceConnection"]["config"]["bogusKey"] = 1
        report["unknown_key"] = {"top": errors_of(model, top), "connection": errors_of(model, inner)}
    Path(sys.argv[1]).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
