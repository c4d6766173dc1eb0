"""Read spec YAML files into plain data plus a source map of every key and value position."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedOrderedMap, CommentedSeq, CommentedSet, TaggedScalar
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from platformgen.errors import Diagnostic, Loc, SpecError

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 200_000
#: Sections that hold one mapping; defining one in two files is an error.
SINGLE_SECTIONS = ("platform", "orchestration", "storage", "warehouse", "alerting", "governance")
#: Sections that hold a list; the lists of all files are concatenated in file order.
LIST_SECTIONS = ("sources", "models", "expectations", "slas", "dashboards")
#: Folders under a spec directory that are never read as spec files.
RESERVED_DIRS = frozenset({"data"})

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Positions of keys and values, addressed by their path in the merged document."""

    keys: dict[Path_, Loc] = field(default_factory=dict)
    values: dict[Path_, Loc] = field(default_factory=dict)

    def value(self, path: Path_) -> Loc:
        """The position of the value at `path`, or of its nearest known ancestor."""
        for end in range(len(path), -1, -1):
            loc = self.values.get(path[:end])
            if loc is not None:
                return loc
        return Loc("<spec>")

    def key(self, path: Path_) -> Loc:
        """The position of the key naming `path` (falls back to its value)."""
        loc = self.keys.get(path)
        return loc if loc is not None else self.value(path)


@dataclass
class SpecDocument:
    """A spec merged from its files: plain data, positions and the files it came from."""

    data: dict[str, Any]
    source_map: SourceMap
    files: list[str]
    root: Path
    #: which file each top-level section (or list item) came from, for headers and messages
    origins: dict[Path_, str] = field(default_factory=dict)
    #: the text of each file, to place positions inside multi-line values such as SQL
    texts: dict[str, str] = field(default_factory=dict)


def display_path(path: Path) -> str:
    """A path as users see it in messages: relative to the working directory when possible."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return path.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()


def discover_files(root: Path) -> list[Path]:
    """The spec files under `root` (or `root` itself), sorted for a deterministic merge."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SpecError([Diagnostic(Loc(display_path(root)), "spec not found: no such file or directory")])
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith((".", "_")) and not (rel_dir == Path(".") and d in RESERVED_DIRS)
        )
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                found.append(Path(dirpath) / name)
    if not found:
        raise SpecError([Diagnostic(Loc(display_path(root)), "no spec files (*.yaml, *.yml) in this directory")])
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


class _Composer(Composer):
    """ruamel's composer, refusing an alias inside its own anchor (ruamel would silently make it null)."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader=loader)
        self.open_anchors: list[str] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            if event.anchor in self.open_anchors:
                raise ComposerError(
                    None,
                    None,
                    f"the alias '*{event.anchor}' is inside its own anchor '&{event.anchor}' (recursive YAML)",
                    event.start_mark,
                )
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._open(anchor, super().compose_sequence_node)

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._open(anchor, super().compose_mapping_node)

    def _open(self, anchor: Any, compose: Any) -> Any:
        if anchor is None:
            return compose(anchor)
        self.open_anchors.append(str(anchor))
        try:
            return compose(anchor)
        finally:
            self.open_anchors.pop()


class _Converter:
    """Turns ruamel's round-trip nodes into plain Python, recording positions and a node budget."""

    def __init__(self, file: str, diagnostics: list[Diagnostic]) -> None:
        self.file = file
        self.diagnostics = diagnostics
        self.source_map = SourceMap()
        self.nodes = 0
        self.exhausted = False
        #: ids of the collections converted so far: meeting one again means an alias is being expanded
        self.seen: set[int] = set()
        #: the path where the alias expansion under way started (None outside aliases)
        self.alias_at: Path_ | None = None

    def loc(self, line: int, col: int) -> Loc:
        return Loc(self.file, line + 1, col + 1)

    def expansion_loc(self, path: Path_) -> Loc:
        """Where to report an oversized document: the alias whose expansion is under way, else `path`."""
        at = self.alias_at if self.alias_at is not None else path
        if at and isinstance(at[-1], int):
            return self.source_map.value(at[:-1])  # a list item's own position is its anchor's
        return self.source_map.key(at)

    def convert(self, node: Any, path: Path_, active: frozenset[int]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if not self.exhausted:
                self.exhausted = True
                self.diagnostics.append(
                    Diagnostic(
                        self.expansion_loc(path),
                        f"the document expands to more than {MAX_NODES} nodes (anchors and aliases "
                        "nested too deeply?); write the values out or split the spec",
                    )
                )
            return None
        tag = _custom_tag(node)
        if tag is not None:
            self.diagnostics.append(
                Diagnostic(
                    self.source_map.value(path),
                    f"YAML tag '{tag}' is not allowed in a spec: write a plain value (string, number, list, mapping)",
                )
            )
            return None
        if isinstance(node, CommentedMap | CommentedSeq) and id(node) in active:
            self.diagnostics.append(
                Diagnostic(self.source_map.value(path), "an alias refers to its own anchor (recursive YAML)")
            )
            return None
        if isinstance(node, CommentedMap | CommentedSeq) and self.alias_at is None and id(node) in self.seen:
            self.alias_at = path
            try:
                return self.convert_collection(node, path, active)
            finally:
                self.alias_at = None
        return self.convert_collection(node, path, active)

    def convert_collection(self, node: Any, path: Path_, active: frozenset[int]) -> Any:
        """A mapping or list (each child converted); any other node as a plain scalar."""
        if isinstance(node, CommentedMap | CommentedSeq):
            self.seen.add(id(node))
        if isinstance(node, CommentedMap):
            inner = active | {id(node)}
            out: dict[str, Any] = {}
            for key in node:
                kline, kcol, vline, vcol = _positions(node, key)
                child = (*path, str(key))
                if node[key] is None and vline != kline:  # `key:` and nothing: ruamel marks the next token
                    vline, vcol = kline, kcol
                self.source_map.keys.setdefault(child, self.loc(kline, kcol))
                self.source_map.values.setdefault(child, self.loc(vline, vcol))
                if not isinstance(key, str):
                    self.diagnostics.append(
                        Diagnostic(self.loc(kline, kcol), f"keys must be strings, got {_describe(key)}")
                    )
                out[str(key)] = self.convert(node[key], child, inner)
                if self.exhausted:
                    return out
            return out
        if isinstance(node, CommentedSeq):
            inner = active | {id(node)}
            items: list[Any] = []
            for index, item in enumerate(node):
                line, col = node.lc.item(index)
                child = (*path, index)
                self.source_map.values.setdefault(child, self.loc(line, col))
                items.append(self.convert(item, child, inner))
                if self.exhausted:
                    return items
            return items
        return _plain_scalar(node)


def _positions(node: CommentedMap, key: Any) -> tuple[int, int, int, int]:
    """0-based line and column of a key and of its value; a key merged in by `<<: *anchor` has the anchor's."""
    if key in (node.lc.data or {}):
        kline, kcol = node.lc.key(key)
        vline, vcol = node.lc.value(key)
        return kline, kcol, vline, vcol
    for _, merged in getattr(node, "merge", []):
        if isinstance(merged, CommentedMap) and key in merged:
            return _positions(merged, key)
    line, col = node.lc.line or 0, node.lc.col or 0
    return line, col, line, col


#: tags of plain YAML values; any other tag (!!python/..., !custom, !!binary, !!set) is refused
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


def _custom_tag(node: Any) -> str | None:
    """The tag of a node that is not a plain value, as written (e.g. !!python/object), else None."""
    if isinstance(node, bytes):
        return "!!binary"
    if isinstance(node, CommentedSet):
        return "!!set"
    if isinstance(node, CommentedOrderedMap):
        return "!!omap"
    value = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, TaggedScalar) or (isinstance(value, str) and value not in _PLAIN_TAGS):
        text = str(value)
        return "!!" + text[len("tag:yaml.org,2002:") :] if text.startswith("tag:yaml.org,2002:") else text
    return None


def _plain_scalar(node: Any) -> Any:
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, dt.datetime | dt.date):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    return str(node)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


_FLOW_CONTEXTS = {"while parsing a flow sequence": "[", "while parsing a flow mapping": "{"}
_TOKEN_WORDS = {"'<scalar>'": "a value", "'<stream end>'": "the end of the file"}


def _yaml_error(file: str, exc: YAMLError) -> Diagnostic:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "found character '\\t'" in problem:
            problem = "tab character: YAML indentation must use spaces"
        elif "found duplicate key" in problem:
            problem = problem.replace("found duplicate key", "duplicate key")
            problem = problem.split(" with value")[0] + " (each key may appear once in a mapping)"
        elif (
            exc.context == "while scanning a quoted scalar" and exc.context_mark is not None and "unexpected" in problem
        ):
            mark = exc.context_mark
            problem = "this quoted string is never closed: add the closing quote"
        elif exc.context == "while parsing a flow node" and "'<stream end>'" in problem:
            problem = "the file ends inside [...] or {...}: a '[' or '{' is not closed"
        elif exc.context in _FLOW_CONTEXTS and exc.context_mark is not None and "expected ','" in problem:
            opener = _FLOW_CONTEXTS[exc.context]
            found = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = (
                f"this '{opener}' is not closed (or a comma is missing): "
                f"{problem.replace('but got', 'but found')}{found}"
            )
            mark = exc.context_mark
        for token, words in _TOKEN_WORDS.items():
            problem = problem.replace(token, words)
        if mark is not None:
            return Diagnostic(Loc(file, mark.line + 1, mark.column + 1), f"invalid YAML: {problem}")
        return Diagnostic(Loc(file), f"invalid YAML: {problem}")
    return Diagnostic(Loc(file), f"invalid YAML: {str(exc).splitlines()[0]}")


def read_text(path: Path, file: str) -> str:
    """Read a spec file as UTF-8 text, refusing huge and binary files with a located message."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SpecError([Diagnostic(Loc(file), f"cannot read file: {exc.strerror}")]) from None
    if size > MAX_FILE_BYTES:
        raise SpecError(
            [
                Diagnostic(
                    Loc(file),
                    f"file is {size / 1_000_000:.1f} MB, over the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit "
                    "for a spec file; split it into several files",
                )
            ]
        )
    raw = path.read_bytes()
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        col = nul - (raw.rfind(b"\n", 0, nul) + 1) + 1
        raise SpecError([Diagnostic(Loc(file, line, col), "not a text file (NUL byte): a spec must be UTF-8 YAML")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            [Diagnostic(Loc(file, line, col), "not valid UTF-8 text: save the spec file as UTF-8")]
        ) from None


def load_file(path: Path) -> tuple[Any, SourceMap, str, str]:
    """Parse one YAML file into plain data and its source map."""
    file = display_path(path)
    text = read_text(path, file)
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Composer = _Composer
    try:
        node = yaml.load(text)
    except YAMLError as exc:
        raise SpecError([_yaml_error(file, exc)]) from None
    except (ValueError, TypeError, RecursionError) as exc:  # ruamel raises these on some malformed input
        raise SpecError([Diagnostic(Loc(file), f"invalid YAML: {exc}")]) from None
    if node is None:
        raise SpecError(
            [Diagnostic(Loc(file), "file is empty: a spec file is a mapping of sections (platform:, sources:, ...)")]
        )
    if not isinstance(node, CommentedMap):
        raise SpecError(
            [
                Diagnostic(
                    Loc(file),
                    f"a spec file must be a mapping of sections (platform:, sources:, ...), not {_kind(node)}",
                )
            ]
        )
    diagnostics: list[Diagnostic] = []
    converter = _Converter(file, diagnostics)
    converter.source_map.values[()] = Loc(file)
    data = converter.convert(node, (), frozenset())
    if diagnostics:
        raise SpecError(diagnostics)
    return data, converter.source_map, file, text


def _kind(node: Any) -> str:
    if isinstance(node, CommentedSeq):
        return "a list"
    return f"a single value ({_describe(node)})"


def _remap(source: SourceMap, target: SourceMap, section: str, offset: int) -> None:
    for store_from, store_to in ((source.keys, target.keys), (source.values, target.values)):
        for path, loc in store_from.items():
            if not path or path[0] != section:
                continue
            if offset and len(path) >= 2 and isinstance(path[1], int):
                path = (section, path[1] + offset, *path[2:])
            store_to.setdefault(path, loc)


def load_spec(root: Path) -> SpecDocument:
    """Load and merge every file of a spec; all file-level problems are reported together."""
    files = discover_files(root)
    merged: dict[str, Any] = {}
    source_map = SourceMap()
    origins: dict[Path_, str] = {}
    diagnostics: list[Diagnostic] = []
    shown: list[str] = []
    texts: dict[str, str] = {}
    for path in files:
        try:
            data, file_map, file, text = load_file(path)
        except SpecError as exc:
            diagnostics.extend(exc.diagnostics)
            continue
        shown.append(file)
        texts[file] = text
        for section, value in data.items():
            if section in LIST_SECTIONS and section in merged:
                if not isinstance(value, list) or not isinstance(merged[section], list):
                    diagnostics.append(
                        Diagnostic(file_map.key((section,)), f"'{section}' must be a list in every file")
                    )
                    continue
                offset = len(merged[section])
                merged[section].extend(value)
                _remap(file_map, source_map, section, offset)
                for index in range(len(value)):
                    origins[(section, offset + index)] = file
                continue
            if section in merged:
                first = source_map.keys.get((section,), origins.get((section,), "another file"))
                diagnostics.append(
                    Diagnostic(
                        file_map.key((section,)),
                        f"section '{section}' is already defined at {first}; define each section in one file",
                    )
                )
                continue
            merged[section] = value
            origins[(section,)] = file
            if isinstance(value, list):
                for index in range(len(value)):
                    origins[(section, index)] = file
            _remap(file_map, source_map, section, 0)
    if diagnostics:
        raise SpecError(diagnostics)
    source_map.values[()] = Loc(shown[0]) if shown else Loc(display_path(root))
    return SpecDocument(data=merged, source_map=source_map, files=shown, root=root, origins=origins, texts=texts)


def iter_paths(data: Any, prefix: Path_ = ()) -> Iterable[Path_]:
    """Every path in a plain document, depth first (used by tests and the fuzzer)."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_paths(value, (*prefix, index))
