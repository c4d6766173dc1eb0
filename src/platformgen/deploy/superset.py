"""Superset at `up` time and after each transformation: zip the generated bundle, import it, refresh datasets.

- `build_bundle_zip(folder)` zips ``superset/`` (metadata.yaml, databases/, datasets/, charts/, dashboards/)
  under one top-level folder, as Superset's importer requires, with fixed timestamps (same input, same bytes).
  ``${VAR}`` references in the database and dataset files (the user, and the database name when the spec takes
  it from the environment) are filled in from the environment here; a missing variable is an error naming it.
- `import_bundle(...)` logs in (``/api/v1/security/login``), fetches a CSRF token with the same session and
  POSTs the zip with ``overwrite=true`` and the warehouse password in the ``passwords`` field. The default
  endpoint is ``/api/v1/assets/import/``, which overwrites every object of the bundle: the dashboard
  importer (``endpoint="dashboard"``) overwrites only dashboards and keeps existing charts, datasets and
  databases as they were, so a changed chart would not reach Superset.
- `deploy_superset(folder, ...)` does both, reading the password variable from ``superset/deploy.json``.
- `refresh_datasets(...)` (the sync DAG's task) looks each dataset up by table name and uuid and PUTs
  ``/api/v1/dataset/<id>/refresh`` so Superset re-reads the columns after the marts were rebuilt.

`requests` is imported inside the functions; nothing here runs at import time.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUNDLE_FOLDERS = ("databases", "datasets", "charts", "dashboards")
#: folders whose ${VAR}s are filled in: the database URI, and the datasets' catalog (the database name)
EXPANDED = ("databases", "datasets")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: a fixed ZIP timestamp: the same files give the same bytes
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)
DEFAULT_URL = "http://superset:8088"


class SupersetDeployError(RuntimeError):
    """A Superset step failed; the message says which request and why."""


def expand_vars(text: str, env: Mapping[str, str], *, where: str) -> str:
    """Replace ${VAR} with its value; a variable that is not set is an error naming it and the file."""
    missing = sorted({m.group(1) for m in _VAR.finditer(text) if m.group(1) not in env})
    if missing:
        raise SupersetDeployError(f"{where} needs the environment variable(s) {', '.join(missing)}: set them first")
    return _VAR.sub(lambda m: env[m.group(1)], text)


def deploy_info(folder: Path) -> dict[str, Any]:
    """The generated ``deploy.json`` of the Superset folder."""
    path = Path(folder) / "deploy.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SupersetDeployError(f"cannot read {path}: {exc}; compile the spec first") from exc
    return data


def bundle_files(folder: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The bundle's files (relative path -> text), ``${VAR}`` in database and dataset files expanded from `env`."""
    folder = Path(folder)
    environment = os.environ if env is None else env
    if not (folder / "metadata.yaml").is_file():
        raise SupersetDeployError(f"{folder} has no metadata.yaml: compile the spec first")
    files = {"metadata.yaml": (folder / "metadata.yaml").read_text(encoding="utf-8")}
    for sub in BUNDLE_FOLDERS:
        for path in sorted((folder / sub).rglob("*.yaml")):
            rel = path.relative_to(folder).as_posix()
            text = path.read_text(encoding="utf-8")
            files[rel] = expand_vars(text, environment, where=rel) if sub in EXPANDED else text
    return files


def build_bundle_zip(folder: Path, env: Mapping[str, str] | None = None, *, root: str | None = None) -> bytes:
    """The import ZIP of the generated ``superset/`` folder: every entry under one top-level folder."""
    folder = Path(folder)
    top = root
    if top is None:
        top = str(deploy_info(folder).get("bundle") or "bundle") if (folder / "deploy.json").is_file() else "bundle"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, text in sorted(bundle_files(folder, env).items()):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def roles_json(folder: Path, env: Mapping[str, str] | None = None) -> str:
    """``roles.json`` ready for ``superset fab import-roles -p``, ``${VAR}`` expanded."""
    path = Path(folder) / "roles.json"
    return expand_vars(path.read_text(encoding="utf-8"), os.environ if env is None else env, where="roles.json")


@dataclass
class SupersetClient:
    """A logged-in session: Bearer token plus the CSRF token and cookie Superset wants on writes."""

    url: str
    session: Any
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, self.url + path, headers=self.headers, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise SupersetDeployError(
                f"Superset {method} {path} answered {response.status_code}: {response.text[:2000]}"
            )
        return response


def login(url: str, username: str, password: str, *, timeout: float = 60.0) -> SupersetClient:
    """Log in with the database provider and fetch a CSRF token in the same session."""
    import requests  # noqa: TID251 - deploy-time only, imported lazily

    base = url.rstrip("/")
    session = requests.Session()
    try:
        response = session.post(
            f"{base}/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": True},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise SupersetDeployError(f"cannot reach Superset at {base}: {exc}") from exc
    if response.status_code != 200:
        raise SupersetDeployError(f"Superset login as {username!r} failed ({response.status_code}): {response.text}")
    token = response.json().get("access_token")
    if not token:
        raise SupersetDeployError("Superset login answered without an access_token")
    client = SupersetClient(base, session, {"Authorization": f"Bearer {token}", "Referer": base}, timeout)
    csrf = client.request("GET", "/api/v1/security/csrf_token/").json().get("result")
    if not csrf:
        raise SupersetDeployError("Superset answered without a CSRF token")
    client.headers["X-CSRFToken"] = csrf
    return client


def import_bundle(
    url: str,
    username: str,
    password: str,
    bundle: bytes,
    passwords: Mapping[str, str],
    *,
    endpoint: str = "assets",
    timeout: float = 120.0,
) -> dict[str, Any]:
    """POST the bundle to Superset's import API with overwrite and the database passwords."""
    client = login(url, username, password, timeout=timeout)
    if endpoint == "assets":
        path, file_field, form = "/api/v1/assets/import/", "bundle", {}
    elif endpoint == "dashboard":
        path, file_field, form = "/api/v1/dashboard/import/", "formData", {"overwrite": "true"}
    else:
        raise ValueError(f"unknown import endpoint {endpoint!r}: use 'assets' or 'dashboard'")
    form["passwords"] = json.dumps(dict(passwords))
    response = client.request("POST", path, files={file_field: ("bundle.zip", bundle, "application/zip")}, data=form)
    result: dict[str, Any] = response.json() if response.content else {}
    return result


def deploy_superset(
    folder: Path,
    *,
    url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
    endpoint: str = "assets",
) -> dict[str, Any]:
    """Build and import the bundle of ``<output>/superset``; credentials default to SUPERSET_ADMIN_* variables."""
    environment = os.environ if env is None else env
    info = deploy_info(folder)
    database = info["database"]
    variable = database.get("password_env")
    if not variable or variable not in environment:
        raise SupersetDeployError(f"the warehouse password variable {variable} is not set: Superset needs it")
    bundle = build_bundle_zip(folder, environment)
    return import_bundle(
        url or environment.get("SUPERSET_URL", DEFAULT_URL),
        username or _required(environment, "SUPERSET_ADMIN_USER"),
        password or _required(environment, "SUPERSET_ADMIN_PASSWORD"),
        bundle,
        {database["file"]: environment[variable]},
        endpoint=endpoint,
    )


def rison(value: Any) -> str:
    """Rison encoding (the `q` parameter of Superset's list APIs) of dicts, lists, strings, numbers, bools."""
    if isinstance(value, bool):
        return "!t" if value else "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if re.fullmatch(r"[A-Za-z_./~][A-Za-z0-9_./~-]*", value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, dict):
        return "(" + ",".join(f"{rison(k)}:{rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    raise TypeError(f"cannot rison-encode {type(value).__name__}")


def refresh_datasets(
    url: str, username: str, password: str, datasets: list[Mapping[str, str]], *, timeout: float = 60.0
) -> dict[str, Any]:
    """Refresh the columns of every dataset (found by table name, matched by uuid); missing ones are reported."""
    client = login(url, username, password, timeout=timeout)
    refreshed: list[str] = []
    missing: list[str] = []
    for dataset in datasets:
        query = {
            "filters": [{"col": "table_name", "opr": "eq", "value": dataset["table_name"]}],
            "columns": ["id", "uuid", "schema", "table_name"],
            "page_size": 100,
        }
        found = client.request("GET", "/api/v1/dataset/", params={"q": rison(query)}).json().get("result", [])
        match = next((row for row in found if str(row.get("uuid")) == dataset["uuid"]), None)
        if match is None:
            match = next((row for row in found if row.get("schema") == dataset["schema"]), None)
        label = f"{dataset['schema']}.{dataset['table_name']}"
        if match is None:
            missing.append(label)
            continue
        client.request("PUT", f"/api/v1/dataset/{match['id']}/refresh")
        refreshed.append(label)
    return {"refreshed": refreshed, "missing": missing}


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise SupersetDeployError(f"set {name}: Superset's admin credentials come from the environment")
    return value
