"""Validate merged spec data against the pydantic models; turn pydantic errors into located, readable messages."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from platformgen.errors import Diagnostic, SpecError
from platformgen.spec.loader import Path_, SpecDocument
from platformgen.spec.models import Spec
from platformgen.spec.suggest import did_you_mean

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
}


def _candidates(tp: Any) -> list[Any]:
    """Union members of a (possibly Annotated/Optional) type."""
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in get_args(tp):
            out.extend(_candidates(arg))
        return out
    return [tp]


def _field_type(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _step(tp: Any, element: str | int) -> Any:
    """The type reached from `tp` by a path element, or None."""
    for cand in _candidates(tp):
        origin = get_origin(cand)
        if isinstance(element, int) and origin is list:
            return get_args(cand)[0]
        if isinstance(element, str) and origin is dict:
            return get_args(cand)[1]
        if isinstance(element, str) and isinstance(cand, type) and issubclass(cand, BaseModel):
            found = _field_type(cand, element)
            if found is not None:
                return found
    return None


def _select_branch(tp: Any, tag: str) -> Any:
    """For a union-branch element of a pydantic loc (a tag value or class name), the branch type."""
    for cand in _candidates(tp):
        if not (isinstance(cand, type) and issubclass(cand, BaseModel)):
            if getattr(cand, "__name__", None) == tag:
                return cand
            continue
        if cand.__name__ == tag:
            return cand
        for info in cand.model_fields.values():
            if (
                get_origin(info.annotation) is Literal
                and tag in get_args(info.annotation)
                and len(get_args(info.annotation)) == 1
            ):
                return cand
    return None


def _models_of(tp: Any) -> list[type[BaseModel]]:
    return [c for c in _candidates(tp) if isinstance(c, type) and issubclass(c, BaseModel)]


def resolve(loc: tuple[str | int, ...], data: Any) -> tuple[Path_, Any, Any, bool]:
    """Map a pydantic error loc onto the data: (data path, type at the end, data node, whether it exists)."""
    path: list[str | int] = []
    node: Any = data
    tp: Any = Spec
    exists = True
    for element in loc:
        if isinstance(node, dict) and isinstance(element, str) and element in node and _step(tp, element) is not None:
            path.append(element)
            node = node[element]
            tp = _step(tp, element)
            continue
        if isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            path.append(element)
            node = node[element]
            tp = _step(tp, element)
            continue
        branch = _select_branch(tp, str(element)) if tp is not None else None
        if branch is not None:
            tp = branch
            continue
        if isinstance(node, dict) and isinstance(element, str) and element in node:
            # an extra key: exists in data but not in the model
            path.append(element)
            node = node[element]
            tp = None
            continue
        path.append(element)
        exists = False
        node = None
        tp = _step(tp, element) if tp is not None else None
    return tuple(path), tp, node, exists


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string '{shown}'"
    return f"{value!r}"


def _parent_model(loc: tuple[str | int, ...], data: Any) -> list[type[BaseModel]]:
    _, tp, _, _ = resolve(loc[:-1], data)
    return _models_of(tp)


def _allowed_keys(models: list[type[BaseModel]]) -> list[str]:
    keys: list[str] = []
    for model in models:
        for name, info in model.model_fields.items():
            keys.append(info.alias or name)
    return keys


def _message(error: Any, data: Any) -> tuple[Path_, bool, str]:
    """(data path, point at the key?, message) for one pydantic error."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind: str = error["type"]
    path, _tp, node, exists = resolve(loc, data)
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(_parent_model(loc, data))
        hint = did_you_mean(key, allowed)
        if not hint and allowed:
            shown = ", ".join(allowed) if len(allowed) <= 14 else ", ".join(allowed[:14]) + ", ..."
            hint = f"; allowed here: {shown}"
        return path, True, f"unknown key '{key}'{hint}"
    if kind == "located":
        return (*path, str(ctx["at"])), True, str(error["msg"])
    if kind == "missing":
        parent = path[:-1]
        under = f" under '{parent[-1]}'" if parent and isinstance(parent[-1], str) else ""
        return parent, True, f"missing required key '{path[-1]}'{under}"
    if kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "kind")).strip("'")
        _, tp, _, _ = resolve(loc, data)
        tags = [get_args(m.model_fields[disc].annotation)[0] for m in _models_of(tp) if disc in m.model_fields]
        expected = f": one of {', '.join(tags)}" if tags else ""
        if not isinstance(value, dict):
            return path, False, f"expected a mapping with '{disc}'{expected}, got {_describe(value)}"
        return path, True, f"missing required key '{disc}'{expected}"
    if kind == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "kind")).strip("'")
        tag = str(ctx.get("tag"))
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        return (
            (*path, disc),
            False,
            f"unknown {disc} '{tag}'{did_you_mean(tag, tags)}: expected one of {', '.join(tags)}",
        )
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        return (
            path,
            False,
            f"{_describe(value)} is not allowed here{did_you_mean(str(value), options)}: expected {expected}",
        )
    if kind in _TYPE_WORDS:
        return path, False, f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}"
    if kind in ("too_short", "too_long"):
        what = "item" if isinstance(value, list | dict) else "character"
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        noun = what if limit == 1 else what + "s"
        named = f"'{path[-1]}' " if path and isinstance(path[-1], str) else ""
        if kind == "too_short":
            return path, False, f"{named}needs at least {limit} {noun}"
        return path, False, f"{named}allows at most {limit} {noun}"
    if kind == "string_pattern_mismatch":
        return path, False, f"{_describe(value)} has the wrong format (expected to match {ctx.get('pattern')})"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return path, False, f"{_describe(value)} is out of range: {error['msg'].lower()}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    del node, exists
    return path, False, message


def check_structure(document: SpecDocument) -> Spec:
    """Validate the merged data; every structural problem is reported at its file:line:col."""
    try:
        return Spec.model_validate(document.data)
    except ValidationError as exc:
        raise SpecError(translate(exc, document)) from None


_CUT_REMAINDER_RE = re.compile(r"^\s*\d+\s*\)\s*$")


def _cut_remainder(path: Path_, data: Any) -> bool:
    """Whether `path` is inside the key '2)' left over from `{amount: decimal(12,2)}` cut at its comma.

    The cut-off value itself is reported ("looks cut off at a comma"); the remainder would only repeat it.
    """
    node: Any = data
    for element in path:
        if isinstance(node, dict) and isinstance(element, str) and _CUT_REMAINDER_RE.match(element):
            keys = list(node)
            position = keys.index(element) if element in keys else 0
            before = node[keys[position - 1]] if position > 0 else None
            if isinstance(before, str) and "(" in before and ")" not in before:
                return True
        if isinstance(node, dict) and element in node:
            node = node[element]
            continue
        if not (isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)):
            return False
        node = node[element]
    return False


def translate(exc: ValidationError, document: SpecDocument) -> list[Diagnostic]:
    """Located diagnostics for a pydantic ValidationError; branch errors of one union are merged."""
    grouped: dict[Path_, list[tuple[bool, str]]] = {}
    for error in exc.errors(include_url=False):
        path, at_key, message = _message(error, document.data)
        if _cut_remainder(path, document.data):
            continue
        grouped.setdefault(path, [])
        if (at_key, message) not in grouped[path]:
            grouped[path].append((at_key, message))
    diagnostics: list[Diagnostic] = []
    for path, items in grouped.items():
        expecteds = [m for _, m in items if m.startswith("expected ") and ", got " in m]
        if len(expecteds) > 1 and len(expecteds) == len(items):
            wants = [m[len("expected ") :].split(", got ")[0] for m in expecteds]
            got = expecteds[0].split(", got ")[1]
            items = [(False, f"expected {' or '.join(dict.fromkeys(wants))}, got {got}")]
        for at_key, message in items:
            loc = document.source_map.key(path) if at_key else document.source_map.value(path)
            diagnostics.append(Diagnostic(loc, message))
    return diagnostics
