"""The YAML emitter: whatever plain data goes in, YAML 1.1 (PyYAML) and 1.2 (ruamel) loaders read the same back."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from platformgen.render import dump_yaml

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "yes",
            "No",
            "on",
            "null",
            "~",
            "2024-01-01",
            "0x1F",
            "1_000",
            "012",
            ".inf",
            "- x",
            "a: b",
            "#",
            "!tag",
            "*x",
            "&a",
            "|",
            ">",
            "'q'",
            '"q"',
            "%",
            "@",
            "`",
        ]
    ),
)
keys = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["y", "n", "on", "true", "1", "null", "a b", "-k"]))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=25,
)


def _ruamel(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, documents, min_size=1, max_size=5))
def test_round_trip_through_both_yaml_dialects(data: dict[str, Any]) -> None:
    text = dump_yaml(data)
    assert yaml.safe_load(text) == data
    assert _ruamel(text) == data


def test_readable_block_style() -> None:
    text = dump_yaml({"models": [{"name": "orders", "columns": [{"name": "id", "tests": ["unique"]}]}], "flag": "yes"})
    assert text == 'models:\n- name: orders\n  columns:\n  - name: id\n    tests:\n    - unique\nflag: "yes"\n'
