"""Shared rendering helpers: stable YAML/JSON dumps and the one Jinja environment for code templates."""

from __future__ import annotations

import io
import json
import pprint
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from ruamel.yaml import YAML


def dump_yaml(data: Any) -> str:
    """YAML with the dict's own key order, block style, no aliases, wide lines."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    yaml.allow_unicode = True
    yaml.representer.ignore_aliases = lambda *_: True
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def dump_json(data: Any) -> str:
    """Indented JSON with a trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: Any) -> str:
    """A PostgreSQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def templates_dir() -> Path:
    """The templates folder: inside the installed package, or the repository's top-level templates/."""
    packaged = resources.files("platformgen") / "_templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment for code templates: strict undefined, trailing newline kept."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["qi"] = quote_ident
    env.filters["ql"] = quote_literal
    env.filters["py"] = repr
    env.filters["pyfmt"] = lambda v: pprint.pformat(v, width=110, sort_dicts=False)
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def render_template(name: str, **context: Any) -> str:
    """Render a template under templates/."""
    return environment().get_template(name).render(**context)
