"""No generated file, of any target and for any spec, holds a literal secret: only ${VAR} / env:VAR references.

Three independent checks over the complete output of every spec:

- compiled with every variable the spec references set to a sentinel secret, no sentinel appears anywhere
  (nothing resolves the environment at compile time);
- in YAML and JSON files, every value under a secret-looking key (password, token, secret, key, webhook, ...)
  is a reference, empty, null or Superset's password mask; in other files, the same for `key: value` and
  `key = value` pairs, and in `.env` templates secret variables are left empty;
- no URL carries a literal password, and nothing has the shape of a well-known credential (Slack webhook or
  token, AWS access key, private key block, JWT, GitHub token).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.compiler import compile_spec

REPO = Path(__file__).resolve().parents[1]
SPECS = [REPO / "specs", *sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())]

SECRET_KEY = re.compile(
    r"pass(word|wd)?$|pwd|secret|token|api_?key|access_?key|private_?key|webhook|fernet|jwt|credential", re.I
)
#: a value made only of references: ${VAR}, ${VAR:?msg}, ${VAR?msg}, $VAR, $$VAR, $1, env:VAR, dbt's env_var(),
#: os.environ, and format placeholders ({}, {name}, %s) that code fills in at run time
_REF = (
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[?])[^}]*)?\}"
    r"|\$\$?[A-Za-z_][A-Za-z0-9_]*|\$[0-9]"
    r"|\{[A-Za-z_]?[A-Za-z0-9_]*\}|%s|%\([a-z_]+\)s"
    r"|env:[A-Z_][A-Z0-9_]*"
    r"|\{\{\s*env_var\(\s*'[A-Za-z_][A-Za-z0-9_]*'\s*\)\s*\}\}"
    r"|os\.environ(?:\.get)?[\[(][^\])]*[\])]"
)
REFERENCE = re.compile(rf"^(?:{_REF}|[^A-Za-z0-9]|@)*(?:{_REF})(?:{_REF}|[^A-Za-z0-9]|@)*$")
MASK = "XXXXXXXXXX"
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:([^@\s'\"]+)@", re.I)
PAIR = re.compile(r"""['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?\s*[:=]\s*['"]([^'"\n]*)['"]""")
SHAPES = {
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    "Slack token": re.compile(r"xox[abprs]-[0-9A-Za-z-]{10,}"),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),
    "GitHub token": re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),
}


def is_reference(value: str) -> bool:
    """Empty, the Superset mask, or built only from environment references."""
    return value.strip() in ("", MASK) or bool(REFERENCE.match(value.strip()))


def secret_key(key: str) -> bool:
    # `password_env` and the like name a variable; their value is checked to be a variable name instead
    return bool(SECRET_KEY.search(key)) and not key.lower().endswith(("_env", "_var", "_variable"))


def walk(node: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(path, key, value) of every string value under a key, in a parsed YAML/JSON document."""
    found: list[tuple[str, str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                found.append((f"{path}/{key}", str(key), value))
            else:
                found.extend(walk(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(walk(item, f"{path}/{index}"))
    return found


def problems(path: str, text: str) -> list[str]:
    """Literal secrets in one generated file."""
    found: list[str] = []
    suffix = Path(path).suffix
    if suffix in (".yaml", ".yml", ".json"):
        document = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        for where, key, value in walk(document):
            if secret_key(key) and not is_reference(value):
                found.append(f"{path}:{where}: literal value under '{key}'")
            if key.lower().endswith("_env") and value and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", value):
                found.append(f"{path}:{where}: '{key}' must name a variable")
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if Path(path).name.startswith(".env"):
            name, _, value = line.partition("=")
            if not line.lstrip().startswith("#") and secret_key(name.strip()) and not is_reference(value):
                found.append(f"{where}: .env template sets {name.strip()}")
        elif suffix not in (".yaml", ".yml", ".json"):
            for key, value in PAIR.findall(line):
                if secret_key(key) and not is_reference(value) and value not in ("None", "null"):
                    found.append(f"{where}: literal value for '{key}'")
        for password in URL_PASSWORD.findall(line):
            if not is_reference(password):
                found.append(f"{where}: URL with a literal password")
        for label, shape in SHAPES.items():
            if shape.search(line):
                found.append(f"{where}: looks like a {label}")
    return found


def spec_variables(spec: Path) -> set[str]:
    files = [spec] if spec.is_file() else sorted(spec.rglob("*.yaml"))
    return {m for f in files for m in re.findall(r"env:([A-Z_][A-Z0-9_]*)", f.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_no_generated_file_holds_a_literal_secret(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinels = {}
    for index, name in enumerate(sorted(spec_variables(spec) | {"WAREHOUSE_PASSWORD", "MINIO_ROOT_PASSWORD"})):
        sentinels[name] = f"Sentinel-Secret-{index:03d}-qZ7"
        monkeypatch.setenv(name, sentinels[name])
    files = compile_spec(spec).files
    assert any(p.startswith("superset/") for p in files)
    assert any(p.startswith("openmetadata/") for p in files)
    leaked = [f"{path}: {name}" for path, text in files.items() for name, v in sentinels.items() if v in text]
    assert leaked == [], f"environment values leaked into the output: {leaked}"
    found = [problem for path, text in sorted(files.items()) for problem in problems(path, text)]
    assert found == [], "\n".join(found)


def test_the_checker_finds_literal_secrets() -> None:
    assert problems("a.yaml", "db:\n  password: hunter2\n")
    assert problems("a.json", json.dumps({"jwtToken": "abc"}))
    assert problems("a.py", "PLATFORM = {'password': 'hunter2'}\n")
    assert problems("a.yml", "uri: postgresql://u:hunter2@db/x\n")
    assert problems("a.py", "URL = 'https://hooks.slack.com/services/T000/B000/XXXX'\n")
    assert problems(".env.example", "WAREHOUSE_PASSWORD=hunter2\n")
    assert problems("x.yaml", "database: {password_env: 'not a name'}\n")
    ok = {
        "a.yaml": "password: ${WAREHOUSE_PASSWORD}\nsecret: ${S:?set it}\ntoken: env:TOKEN\n",
        "b.json": json.dumps({"password_env": "WAREHOUSE_PASSWORD", "password": None}),
        "c.yml": "uri: postgresql+psycopg2://${U}:XXXXXXXXXX@postgres:5432/w\n",
        "d.py": "'password': 'env:WAREHOUSE_PASSWORD',\n",
        ".env.example": "WAREHOUSE_PASSWORD=\n",
        "e.yml": "password: \"{{ env_var('DBT_ENV_SECRET_PW') }}\"\n",
    }
    for path, text in ok.items():
        assert problems(path, text) == [], path
