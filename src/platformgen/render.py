"""Shared rendering helpers: stable YAML/JSON dumps and the one Jinja environment for code templates."""

from __future__ import annotations

import json
import pprint
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ./()-]*$")
#: words YAML 1.1 loaders (PyYAML: Airflow, dbt, Superset) read as booleans or null
_RESERVED = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    if _PLAIN.match(text) and not text.endswith(" ") and text.lower() not in _RESERVED:
        return text
    return _double_quoted(text)


_PRINTABLE = re.compile("[\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _double_quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON escapes, plus \\u/\\U escapes for what YAML may not contain raw."""
    quoted = json.dumps(text, ensure_ascii=False)
    if all(_PRINTABLE.match(c) for c in text):
        return quoted
    return "".join(
        c if _PRINTABLE.match(c) else (f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}") for c in quoted
    )


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            label = f"{pad}{_scalar(key)}:"
            if isinstance(item, dict) and item:
                out.append(label)
                _emit(item, indent + 2, out)
            elif isinstance(item, list | tuple) and item:
                out.append(label)
                _emit(item, indent, out)
            else:
                out.append(f"{label} {_inline(item)}")
        return
    for item in value:
        if isinstance(item, dict) and item:
            lines: list[str] = []
            _emit(item, indent + 2, lines)
            lines[0] = f"{pad}- {lines[0][indent + 2 :]}"
            out.extend(lines)
        elif isinstance(item, list | tuple) and item:
            lines = []
            _emit(item, indent + 2, lines)
            lines[0] = f"{pad}- {lines[0][indent + 2 :]}"
            out.extend(lines)
        else:
            out.append(f"{pad}- {_inline(item)}")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return _scalar(value)


def dump_yaml(data: Any) -> str:
    """Block-style YAML of plain data (dicts keep their order); strings are quoted whenever a YAML 1.1 or
    1.2 loader could read them as anything but the same string. Much faster than a general-purpose dumper."""
    if not isinstance(data, dict | list | tuple) or not data:
        return _inline(data) + "\n"
    out: list[str] = []
    _emit(data, 0, out)
    return "\n".join(out) + "\n"


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
