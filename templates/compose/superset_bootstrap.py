"""Superset bootstrap of the platformgen stack, run inside the Superset image.

    superset_bootstrap.py roles BUNDLE_DIR    import BUNDLE_DIR/roles.json (`superset fab import-roles`)
    superset_bootstrap.py import BUNDLE_DIR   import the bundle (metadata.yaml, databases/, datasets/, ...)

Both are idempotent: import-roles adds missing permissions, and the assets import overwrites the objects it
matches by uuid. ${VAR} references in roles.json and databases/*.yaml are filled in from the environment (the
container gets .env); a missing variable is an error naming it. Nothing secret is printed.
"""

import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BUNDLE_FOLDERS = ("databases", "datasets", "charts", "dashboards")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(text, where):
    missing = sorted({m.group(1) for m in VAR.finditer(text) if m.group(1) not in os.environ})
    if missing:
        sys.exit("{} needs the variable(s) {}: set them in .env".format(where, ", ".join(missing)))
    return VAR.sub(lambda m: os.environ[m.group(1)], text)


def import_roles(folder):
    path = Path(folder) / "roles.json"
    if not path.is_file():
        print("no {}: no platform roles to import".format(path))
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(expand(path.read_text(encoding="utf-8"), "roles.json"))
    try:
        subprocess.run(["superset", "fab", "import-roles", "-p", handle.name], check=True)
    finally:
        os.unlink(handle.name)


def bundle_contents(folder):
    """Relative path -> text of the bundle files, as Superset's importer reads them from a ZIP."""
    folder = Path(folder)
    if not (folder / "metadata.yaml").is_file():
        sys.exit("{} has no metadata.yaml: compile the spec first".format(folder))
    contents = {"metadata.yaml": (folder / "metadata.yaml").read_text(encoding="utf-8")}
    for sub in BUNDLE_FOLDERS:
        for path in sorted((folder / sub).rglob("*.yaml")):
            rel = path.relative_to(folder).as_posix()
            text = path.read_text(encoding="utf-8")
            contents[rel] = expand(text, rel) if sub == "databases" else text
    return contents


def import_bundle(folder):
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from flask import g
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for rel, text in sorted(bundle_contents(folder).items()):
                archive.writestr("bundle/" + rel, text)
        buffer.seek(0)
        with zipfile.ZipFile(buffer) as archive:
            contents = get_contents_from_bundle(archive)
        deploy = Path(folder) / "deploy.json"
        info = json.loads(deploy.read_text(encoding="utf-8")).get("database", {}) if deploy.is_file() else {}
        variable = info.get("password_env")
        passwords = {}
        if variable:
            if variable not in os.environ:
                sys.exit("the warehouse password variable {} is not set: set it in .env".format(variable))
            passwords[info.get("file", "databases/warehouse.yaml")] = os.environ[variable]
        g.user = security_manager.find_user(username=os.environ.get("SUPERSET_ADMIN_USER", "admin"))
        ImportAssetsCommand(contents, passwords=passwords).run()
        print("imported {} files of {}".format(len(contents), folder))


def main(argv):
    if len(argv) == 2 and argv[0] == "roles":
        import_roles(argv[1])
    elif len(argv) == 2 and argv[0] == "import":
        import_bundle(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
