"""Apply the generated ``openmetadata/governance.json`` through OpenMetadata's REST API, idempotently.

Order (each step needs the ids of the one before):

1. ``PUT /v1/users`` per user and ``PUT /v1/teams`` per team (members by the ids the user PUTs returned);
2. ``PUT /v1/classifications``, ``PUT /v1/tags``, ``PUT /v1/glossaries``, ``PUT /v1/glossaryTerms``: the
   create-or-update endpoints, so a second run changes nothing;
3. per table: ``GET /v1/tables/name/<fqn>?fields=owners,tags,columns``, then one ``PATCH /v1/tables/<id>``
   (JSON Patch) with only what is missing: the owners when they differ, absent table tags and glossary terms,
   absent column tags. A table OpenMetadata has not ingested yet (404) is reported as pending, not an error:
   the sync DAG applies the governance again after each ingestion.

`plan_requests` is the pure part (what would be sent, with names where ids are not known yet);
`apply_governance` runs it against a server. ``${VAR}`` references in the payloads (a database name taken
from the environment) are expanded first. `requests` is imported inside the functions.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

DEFAULT_URL = "http://openmetadata-server:8585/api"
URL_ENV = "OPENMETADATA_URL"
TOKEN_ENV = "OPENMETADATA_JWT_TOKEN"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: the create-or-update endpoint of each payload list, in the order they are applied
ENDPOINTS = (
    ("users", "/v1/users"),
    ("teams", "/v1/teams"),
    ("classifications", "/v1/classifications"),
    ("tags", "/v1/tags"),
    ("glossaries", "/v1/glossaries"),
    ("glossaryTerms", "/v1/glossaryTerms"),
)


class OpenMetadataError(RuntimeError):
    """A request to OpenMetadata failed; the message names it and carries the server's answer."""


@dataclass(frozen=True)
class Step:
    """One create-or-update request."""

    method: str
    path: str
    body: dict[str, Any]


@dataclass
class ApplyReport:
    """What `apply_governance` did."""

    upserted: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "upserted": self.upserted,
            "patched": self.patched,
            "unchanged": self.unchanged,
            "pending": self.pending,
        }


def load_governance(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The governance payloads, ``${VAR}`` expanded from `env` (a missing variable is an error)."""
    text = Path(path).read_text(encoding="utf-8")
    environment = os.environ if env is None else env
    missing = sorted({m.group(1) for m in _VAR.finditer(text) if m.group(1) not in environment})
    if missing:
        raise OpenMetadataError(f"{path} needs the environment variable(s) {', '.join(missing)}")
    data: dict[str, Any] = json.loads(_VAR.sub(lambda m: json.dumps(environment[m.group(1)])[1:-1], text))
    return data


def plan_requests(governance: Mapping[str, Any]) -> list[Step]:
    """The create-or-update requests, in order; team members are user names (ids are filled in when sent)."""
    steps: list[Step] = []
    for key, path in ENDPOINTS:
        for payload in governance.get(key, []):
            steps.append(Step("PUT", path, {k: v for k, v in payload.items() if v is not None}))
    return steps


def tag_label(fqn: str, *, glossary: bool = False) -> dict[str, str]:
    """A TagLabel as OpenMetadata stores it on tables and columns."""
    return {
        "tagFQN": fqn,
        "source": "Glossary" if glossary else "Classification",
        "labelType": "Manual",
        "state": "Confirmed",
    }


def table_patch(
    table: Mapping[str, Any], wanted: Mapping[str, Any], owners: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """JSON Patch operations that add what `wanted` asks for and `table` (as GET returns it) lacks."""
    ops: list[dict[str, Any]] = []
    current = {(o.get("type"), o.get("id")) for o in table.get("owners") or []}
    if owners and current != {(o["type"], o["id"]) for o in owners}:
        ops.append({"op": "add", "path": "/owners", "value": owners})
    have = {t.get("tagFQN") for t in table.get("tags") or []}
    labels = [tag_label(t) for t in wanted.get("tags", [])]
    labels += [tag_label(t, glossary=True) for t in wanted.get("glossaryTerms", [])]
    if table.get("tags") is None and any(label["tagFQN"] not in have for label in labels):
        ops.append({"op": "add", "path": "/tags", "value": []})
    ops += [{"op": "add", "path": "/tags/-", "value": label} for label in labels if label["tagFQN"] not in have]
    for index, column in enumerate(table.get("columns") or []):
        missing = [t for t in wanted.get("columns", {}).get(column.get("name"), []) if t not in _tags_of(column)]
        if missing and column.get("tags") is None:
            ops.append({"op": "add", "path": f"/columns/{index}/tags", "value": []})
        ops += [{"op": "add", "path": f"/columns/{index}/tags/-", "value": tag_label(t)} for t in missing]
    return ops


def _tags_of(entity: Mapping[str, Any]) -> set[str]:
    return {str(t.get("tagFQN")) for t in entity.get("tags") or []}


class _Client:
    def __init__(self, url: str, token: str, timeout: float) -> None:
        import requests  # noqa: TID251 - deploy-time only, imported lazily

        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.timeout = timeout

    def send(self, method: str, path: str, body: Any = None, *, patch: bool = False, ok404: bool = False) -> Any:
        import requests  # noqa: TID251 - deploy-time only, imported lazily

        headers = {"Content-Type": "application/json-patch+json" if patch else "application/json"}
        data = None if body is None else json.dumps(body)
        try:
            response = self.session.request(method, self.url + path, data=data, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise OpenMetadataError(f"cannot reach OpenMetadata at {self.url}: {exc}") from exc
        if ok404 and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise OpenMetadataError(
                f"OpenMetadata {method} {path} answered {response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content else {}


def apply_governance(governance: Mapping[str, Any], *, url: str, token: str, timeout: float = 60.0) -> ApplyReport:
    """Send the governance payloads; returns what was created or updated, patched and still pending."""
    client = _Client(url, token, timeout)
    report = ApplyReport()
    ids: dict[tuple[str, str], str] = {}
    for step in plan_requests(governance):
        body = dict(step.body)
        if step.path == "/v1/teams":
            body["users"] = [ids[("user", name)] for name in body.get("users", []) if ("user", name) in ids]
        answer = client.send(step.method, step.path, body)
        kind = {"/v1/users": "user", "/v1/teams": "team"}.get(step.path)
        if kind and answer.get("id"):
            ids[(kind, body["name"])] = str(answer["id"])
        report.upserted.append(f"{step.path} {body.get('name')}")
    for wanted in governance.get("tables", []):
        fqn = wanted["fqn"]
        table = client.send("GET", f"/v1/tables/name/{quote(fqn, safe='')}?fields=owners,tags,columns", ok404=True)
        if table is None:
            report.pending.append(fqn)
            continue
        owners = [_owner_ref(client, ids, owner) for owner in wanted.get("owners", [])]
        ops = table_patch(table, wanted, [o for o in owners if o is not None])
        if not ops:
            report.unchanged.append(fqn)
            continue
        client.send("PATCH", f"/v1/tables/{table['id']}", ops, patch=True)
        report.patched.append(fqn)
    return report


def _owner_ref(client: _Client, ids: dict[tuple[str, str], str], owner: Mapping[str, str]) -> dict[str, str] | None:
    kind, name = owner["type"], owner["name"]
    if (kind, name) not in ids:
        found = client.send("GET", f"/v1/{kind}s/name/{quote(name, safe='')}", ok404=True)
        if found is None:
            return None
        ids[(kind, name)] = str(found["id"])
    return {"id": ids[(kind, name)], "type": kind}


def apply_governance_file(
    path: Path, *, url: str | None = None, token: str | None = None, env: Mapping[str, str] | None = None
) -> ApplyReport:
    """Apply ``<output>/openmetadata/governance.json``; URL and token default to OPENMETADATA_URL / _JWT_TOKEN."""
    environment = os.environ if env is None else env
    token = token or environment.get(TOKEN_ENV)
    if not token:
        raise OpenMetadataError(f"set {TOKEN_ENV} (an OpenMetadata bot or admin JWT) to apply the governance")
    return apply_governance(
        load_governance(path, environment), url=url or environment.get(URL_ENV, DEFAULT_URL), token=token
    )
