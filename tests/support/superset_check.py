"""Check generated Superset bundles with Superset's own import code; run with the Superset venv's python.

Usage: ``.venv-superset/bin/python tests/support/superset_check.py job.json report.json`` (or ``--prepare``, which
only builds the cached metadata database; scripts/setup_tool_venvs.sh runs it after installing Superset)

``job.json``: ``{"bundles": [{"label", "folder", "zip", "passwords", "roles", "dashboards": {uuid: [chart uuids]},
"datasets": [{"uuid", "schema", "table_name"}], "roles_expected": {name: {"sql_lab": bool}}}]}`` where
``folder`` is a generated ``superset/`` folder, ``zip`` the bundle built by ``build_bundle_zip`` and ``roles``
the expanded roles.json. For each bundle the report lists, per file, the validation errors of
ImportV1Database/Dataset/Chart/DashboardSchema and MetadataSchema (zero expected), then imports the zip with
ImportDashboardsCommand (the passwords given), re-imports it with ImportDashboardsCommand and
ImportAssetsCommand (nothing may be duplicated), imports roles.json with Flask-AppBuilder's import_roles (the
code behind ``superset fab import-roles``) and records what each role may do.

The metadata database is SQLite in a temporary folder. ``superset db upgrade`` and ``superset init`` run once
per Superset installation; the result is cached next to the venv and copied for each run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

SECRET_KEY = "platformgen-superset-check-not-a-secret-0123456789abcdef"
CACHE = Path(sys.prefix) / "platformgen-superset-metadata.db"


def _config(folder: Path, db_path: Path) -> Path:
    config = folder / "superset_config.py"
    config.write_text(
        f"SECRET_KEY = {SECRET_KEY!r}\n"
        f"SQLALCHEMY_DATABASE_URI = {'sqlite:///' + str(db_path)!r}\n"
        "PREVENT_UNSAFE_DB_CONNECTIONS = True\n"
        "WTF_CSRF_ENABLED = False\n",
        encoding="utf-8",
    )
    return config


def _superset(args: list[str], env: dict[str, str]) -> None:
    exe = Path(sys.executable).parent / "superset"
    done = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"superset {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def prepare_metadata_db(workdir: Path) -> Path:
    """A migrated and initialised metadata DB in `workdir` (from the cache when it exists)."""
    db_path = workdir / "superset.db"
    if not CACHE.is_file():
        build = Path(tempfile.mkdtemp(prefix="superset-init-"))
        build_db = build / "superset.db"
        env = {**os.environ, "SUPERSET_CONFIG_PATH": str(_config(build, build_db))}
        _superset(["db", "upgrade"], env)
        _superset(["init"], env)
        tmp = CACHE.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(build_db, tmp)
        os.replace(tmp, CACHE)
        shutil.rmtree(build, ignore_errors=True)
    shutil.copyfile(CACHE, db_path)
    return db_path


def _errors(exc: Exception) -> Any:
    messages = getattr(exc, "messages", None)
    return messages if messages is not None else repr(exc)


def validate_files(folder: Path, passwords: dict[str, str]) -> dict[str, Any]:
    """Schema errors of every bundle file in `folder`, keyed by relative path (only files with errors)."""
    import yaml
    from superset.charts.schemas import ImportV1ChartSchema
    from superset.commands.importers.v1.utils import MetadataSchema
    from superset.dashboards.schemas import ImportV1DashboardSchema
    from superset.databases.schemas import ImportV1DatabaseSchema
    from superset.datasets.schemas import ImportV1DatasetSchema

    schemas = {
        "databases/": ImportV1DatabaseSchema(),
        "datasets/": ImportV1DatasetSchema(),
        "charts/": ImportV1ChartSchema(),
        "dashboards/": ImportV1DashboardSchema(),
    }
    errors: dict[str, Any] = {}
    checked = 0
    for path in sorted(folder.rglob("*.yaml")):
        rel = path.relative_to(folder).as_posix()
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        schema: Any = MetadataSchema() if rel == "metadata.yaml" else None
        for prefix, candidate in schemas.items():
            if rel.startswith(prefix):
                schema = candidate
        if schema is None:
            errors[rel] = "not a bundle file"
            continue
        if rel in passwords:  # as load_configs does with the API's passwords field
            config["password"] = passwords[rel]
        try:
            schema.load(config)
        except Exception as exc:
            errors[rel] = _errors(exc)
        checked += 1
    return {"checked": checked, "errors": errors}


def unknown_key_rejected() -> Any:
    """An extra key in a chart file must fail with Superset's 'Unknown field.'."""
    from superset.charts.schemas import ImportV1ChartSchema

    chart = {
        "slice_name": "x",
        "viz_type": "table",
        "params": {},
        "uuid": "00000000-0000-0000-0000-000000000001",
        "dataset_uuid": "00000000-0000-0000-0000-000000000002",
        "version": "1.0.0",
        "bogus_key": 1,
    }
    try:
        ImportV1ChartSchema().load(chart)
    except Exception as exc:
        return _errors(exc)
    return None


def import_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    """Import the zip three times and describe what Superset holds afterwards."""
    from superset import db, security_manager
    from superset.commands.dashboard.importers.v1 import ImportDashboardsCommand
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice
    from superset.utils.core import override_user

    with zipfile.ZipFile(io.BytesIO(Path(bundle["zip"]).read_bytes())) as archive:
        contents = get_contents_from_bundle(archive)
    admin = security_manager.find_user("admin")
    result: dict[str, Any] = {"files": sorted(contents)}
    counts = []
    with override_user(admin):
        # without the password the masked URI must be refused
        try:
            ImportDashboardsCommand(dict(contents), overwrite=True).run()
            result["without_password"] = "imported"
        except Exception as exc:
            result["without_password"] = _errors(getattr(exc, "__cause__", None) or exc)
            db.session.rollback()
        for command in (ImportDashboardsCommand, ImportDashboardsCommand, ImportAssetsCommand):
            command(dict(contents), passwords=bundle["passwords"], overwrite=True).run()
            db.session.commit()
            counts.append(
                {
                    "databases": db.session.query(Database).count(),
                    "datasets": db.session.query(SqlaTable).count(),
                    "charts": db.session.query(Slice).count(),
                    "dashboards": db.session.query(Dashboard).count(),
                }
            )
    result["counts"] = counts
    dashboards = {}
    for uuid in bundle["dashboards"]:
        dashboard = db.session.query(Dashboard).filter_by(uuid=uuid).one()
        dashboards[uuid] = {
            "title": dashboard.dashboard_title,
            "charts": sorted(str(s.uuid) for s in dashboard.slices),
            "position_charts": sorted(
                str(v["meta"]["uuid"]) for v in json.loads(dashboard.position_json).values() if _is_chart(v)
            ),
        }
    result["dashboards"] = dashboards
    datasets = {}
    for entry in bundle["datasets"]:
        table = db.session.query(SqlaTable).filter_by(uuid=entry["uuid"]).one()
        datasets[entry["uuid"]] = {
            "table_name": table.table_name,
            "schema": table.schema,
            "catalog": table.catalog,
            "schema_perm": table.schema_perm,
            "main_dttm_col": table.main_dttm_col,
            "columns": {c.column_name: {"type": c.type, "is_dttm": c.is_dttm} for c in table.columns},
            "metrics": {m.metric_name: m.expression for m in table.metrics},
        }
    result["datasets"] = datasets
    database = db.session.query(Database).filter_by(uuid=bundle["database_uuid"]).one()
    result["database"] = {"name": database.database_name, "password_set": bool(database.password)}
    return result


def _is_chart(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "CHART"


def check_roles(bundle: dict[str, Any]) -> dict[str, Any]:
    """Import roles.json as `superset fab import-roles` does and probe what each role may do."""
    from superset import db, security_manager
    from superset.connectors.sqla.models import SqlaTable
    from superset.utils.core import override_user

    roles = json.loads(Path(bundle["roles"]).read_text(encoding="utf-8"))
    unknown = []
    for role in roles:
        for pair in role["permissions"]:
            permission, view = pair["permission"]["name"], pair["view_menu"]["name"]
            if permission == "schema_access":
                continue
            if security_manager.find_permission_view_menu(permission, view) is None:
                unknown.append([role["name"], permission, view])
    security_manager.import_roles(bundle["roles"])
    security_manager.import_roles(bundle["roles"])  # idempotent: a second import changes nothing
    datasets = [db.session.query(SqlaTable).filter_by(uuid=d["uuid"]).one() for d in bundle["datasets"]]
    probes: dict[str, Any] = {}
    for role in roles:
        found = security_manager.find_role(role["name"])
        username = f"probe_{role['name'].lower()}"
        user = security_manager.find_user(username) or security_manager.add_user(
            username, "Probe", role["name"], f"{username}@example.com", [found], password="probe-password-0"
        )
        with override_user(user):
            probes[role["name"]] = {
                "permissions": len(found.permissions),
                "sql_lab": security_manager.can_access("can_execute_sql_query", "SQLLab"),
                "dashboards": security_manager.can_access("can_read", "Dashboard"),
                "explore": security_manager.can_access("can_explore", "Superset"),
                "datasets": all(security_manager.can_access_datasource(d) for d in datasets),
            }
    return {"unknown_pairs": unknown, "probes": probes}


def main() -> None:
    if sys.argv[1:] == ["--prepare"]:  # scripts/setup_tool_venvs.sh: build the cached metadata DB once
        workdir = Path(tempfile.mkdtemp(prefix="superset-prepare-"))
        prepare_metadata_db(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    workdir = Path(tempfile.mkdtemp(prefix="superset-check-"))
    db_path = prepare_metadata_db(workdir)
    os.environ["SUPERSET_CONFIG_PATH"] = str(_config(workdir, db_path))
    from superset.app import create_app

    app = create_app()
    report: dict[str, Any] = {"unknown_key": None, "bundles": {}}
    with app.app_context():
        from superset import security_manager

        security_manager.add_user(
            "admin", "Ada", "Admin", "admin@example.com", security_manager.find_role("Admin"), password="admin-pw-0"
        )
        report["unknown_key"] = unknown_key_rejected()
        for bundle in job["bundles"]:
            entry: dict[str, Any] = {"validation": validate_files(Path(bundle["folder"]), bundle["passwords"])}
            entry["import"] = import_bundle(bundle)
            entry["roles"] = check_roles(bundle)
            report["bundles"][bundle["label"]] = entry
    Path(sys.argv[2]).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
