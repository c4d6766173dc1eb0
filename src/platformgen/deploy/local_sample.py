"""The sample data of a spec, served to the compiled platform the way its real sources would be.

Every source may name a `sample:` folder (relative to the spec root). `platformgen up --local` makes it look
like the real thing, so the generated DAGs run unchanged:

- **postgres**: a database ``src_<source>`` on the local server, with the declared tables (schema and table
  names from the spec, column types from the plan; CSV columns the spec does not declare become text columns,
  as a real source table has more columns than the platform reads), loaded from ``<sample>/<table>.csv`` with
  COPY. It is created once: a later `up` finds it (by its comment) and leaves it alone, so the incremental
  extracts see an unchanged source. ``PLATFORMGEN_SOURCE_<NAME>_URL`` points at it.
- **api**: `ReplayServer`, an HTTP server on 127.0.0.1 that answers the endpoint's requests with the recorded
  pages ``<sample>/<endpoint>/page-NNN.json`` in the endpoint's pagination style (page_number: the page
  parameter; offset: the offsets where recorded pages start; cursor: the cursor each recorded page names for
  the next one; link_header: a ``Link: <...?sample_page=N>; rel="next"`` header it adds). Past the last page it
  answers an empty page. It ignores the incremental parameter: every run re-reads all pages, and the
  incremental load skips rows raw already has. ``PLATFORMGEN_API_<SOURCE>_BASE_URL`` points at it. Every
  response carries ``X-Platformgen-Sample`` naming the file it came from.
- **file**: the files of ``<sample>/`` matching the tables' patterns are put where the source's `location`
  says: uploaded to ``s3://bucket/prefix`` on the local S3 endpoint, or copied below the local project root
  for a relative folder. The extract ingests each file once (tracked by name and checksum in ingestion_log).

A source without sample data is left out of the local run (its ingestion DAG is not run).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from platformgen.deploy.local_services import PgService, S3Service, connect, sql_literal
from platformgen.errors import PlatformgenError
from platformgen.plan.build import Plan, SourcePlan
from platformgen.spec.models import ApiEndpoint, ApiSource, FileSource, FileTable, PostgresSource, PostgresTable

SAMPLE_HEADER = "X-Platformgen-Sample"
SAMPLE_PAGE_PARAM = "sample_page"
_COMMENT_PREFIX = "platformgen sample data of source"
_LOADING = ": loading"

Echo = Callable[[str], None]


def spec_root(spec: Path) -> Path:
    """The folder sample paths are relative to: the spec directory, or the folder of a one-file spec."""
    return spec if spec.is_dir() else spec.parent


def sample_folder(root: Path, source: SourcePlan) -> Path | None:
    """The source's sample folder when the spec names one and it exists."""
    sample = source.spec.sample
    if not sample:
        return None
    folder = (root / sample).resolve()
    return folder if folder.is_dir() else None


def shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- postgres sources


def source_database(source: SourcePlan) -> str:
    """The database that stands in for a PostgreSQL source."""
    return f"src_{source.name}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), [])


def prepare_postgres_source(pg: PgService, source: SourcePlan, folder: Path, echo: Echo) -> str:
    """Create and load the sample database of a PostgreSQL source once; returns its URL."""
    assert isinstance(source.spec, PostgresSource)
    database = source_database(source)
    files = [folder / f"{t.name}.csv" for t in source.tables]
    missing = [shown(f) for f in files if not f.is_file()]
    if missing:
        raise PlatformgenError(f"sample data of source {source.name}: missing {', '.join(missing)}")
    digest = _digest(files)
    comment = f"{_COMMENT_PREFIX} {source.name} from {shown(folder)} (sha256 {digest})"
    if pg.database_exists(database) and (pg.database_comment(database) or "").endswith(_LOADING):
        with connect(pg.url) as conn:  # an earlier load was interrupted
            conn.execute(f"drop database {_quote(database)} with (force)")
    if pg.database_exists(database):
        existing = pg.database_comment(database) or ""
        if not existing.startswith(_COMMENT_PREFIX):
            raise PlatformgenError(
                f"database {database!r} exists on {pg.describe()} but was not created by platformgen up --local: "
                "drop it, or use another server"
            )
        note = (
            "" if digest in existing else " (the sample files changed since: `platformgen down --local --wipe` reloads)"
        )
        echo(f"source {source.name}: sample database {database} already loaded{note}")
        return pg.database_url(database)
    pg.ensure_database(database, comment=f"{_COMMENT_PREFIX} {source.name}{_LOADING}")
    try:
        rows = _load_tables(pg.database_url(database), source, folder)
    except Exception:
        with connect(pg.url) as conn:
            conn.execute(f"drop database if exists {_quote(database)}")
        raise
    with connect(pg.url) as conn:
        conn.execute(f"comment on database {_quote(database)} is {sql_literal(comment)}")
    loaded = ", ".join(f"{name} {count}" for name, count in rows.items())
    echo(f"source {source.name}: created sample database {database} from {shown(folder)} ({loaded} rows)")
    return pg.database_url(database)


def _load_tables(url: str, source: SourcePlan, folder: Path) -> dict[str, int]:
    rows: dict[str, int] = {}
    with connect(url, autocommit=False) as conn:
        for table in source.tables:
            spec = table.spec
            assert isinstance(spec, PostgresTable)
            schema, name = spec.schema_, spec.table or table.name
            path = folder / f"{table.name}.csv"
            header = [h.strip() for h in _csv_header(path)]
            declared = {c.name: c.postgres_type or "text" for c in table.columns}
            columns = [*declared, *(h for h in header if h and h not in declared)]
            ddl = ", ".join(f"{_quote(c)} {declared.get(c, 'text')}" for c in columns)
            relation = f"{_quote(schema)}.{_quote(name)}"
            with conn.cursor() as cur:
                cur.execute(f"create schema if not exists {_quote(schema)}")
                cur.execute(f"create table {relation} ({ddl})")
                target = ", ".join(_quote(h) for h in header)
                with (
                    cur.copy(f"copy {relation} ({target}) from stdin (format csv, header true)") as copy,
                    path.open("rb") as handle,
                ):
                    while chunk := handle.read(1 << 20):
                        copy.write(chunk)
                cur.execute(f"select count(*) from {relation}")
                found = cur.fetchone()
            rows[f"{schema}.{name}" if schema != "public" else name] = int(found[0]) if found else 0
        conn.commit()
    return rows


# --------------------------------------------------------------------------- file sources


def file_sample_files(folder: Path, source: SourcePlan) -> list[Path]:
    """The sample files that match a table pattern of the source."""
    from platformgen.runtime.extract_files import glob_regex

    found: list[Path] = []
    for table in source.tables:
        assert isinstance(table.spec, FileTable)
        regex = glob_regex(table.spec.pattern)
        for path in sorted(folder.rglob("*")):
            if path.is_file() and regex.match(path.relative_to(folder).as_posix()) and path not in found:
                found.append(path)
    return found


def stage_file_source(source: SourcePlan, folder: Path, *, project_root: Path, s3: S3Service, echo: Echo) -> str | None:
    """Put a file source's sample files where its location points; returns a local landing folder to keep."""
    spec = source.spec
    assert isinstance(spec, FileSource)
    files = file_sample_files(folder, source)
    if not files:
        echo(f"source {source.name}: no file in {shown(folder)} matches its table patterns")
    location = spec.location
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        s3.ensure_bucket(bucket)
        client = s3.client()
        for path in files:
            key = "/".join(p for p in (prefix, path.relative_to(folder).as_posix()) if p)
            client.upload_file(str(path), bucket, key)
        echo(f"source {source.name}: {len(files)} sample file(s) from {shown(folder)} in {location}")
        return None
    relative = PurePosixPath(location)
    if relative.is_absolute() or ".." in relative.parts:
        echo(
            f"source {source.name}: location {location} is outside the project folder; "
            "sample files not copied (put files there yourself)"
        )
        return None
    landing = project_root.joinpath(*relative.parts)
    landing.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = landing / path.relative_to(folder)
        if not target.is_file() or target.read_bytes() != path.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    echo(f"source {source.name}: {len(files)} sample file(s) from {shown(folder)} in {shown(landing)}")
    return relative.as_posix()


# --------------------------------------------------------------------------- API sources


def _dig(document: Any, path: str | None) -> Any:
    node = document
    for part in (path or "").split("."):
        if not part:
            continue
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _with_records(document: Any, path: str | None, records: list[Any]) -> Any:
    """A copy of a recorded page whose record list is replaced."""
    if not path:
        return records
    copy = json.loads(json.dumps(document))
    node = copy
    parts = [p for p in path.split(".") if p]
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = records
    return copy


@dataclass
class Page:
    """One recorded response."""

    file: Path
    document: Any
    records: list[Any]


@dataclass
class Reply:
    """What the replay server answers."""

    status: int
    body: Any
    sample: str  # the file it came from, or why there is none
    headers: dict[str, str] = field(default_factory=dict)


class EndpointReplay:
    """Answers the requests of one endpoint from its recorded pages, in its pagination style."""

    def __init__(self, source: str, endpoint: ApiEndpoint, folder: Path, route: str) -> None:
        self.source = source
        self.endpoint = endpoint
        self.folder = folder
        self.route = route
        self.pages: list[Page] = []
        for path in sorted(folder.glob("page-*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            records = _dig(document, endpoint.records)
            if not isinstance(records, list):
                raise PlatformgenError(
                    f"sample page {shown(path)}: no record list at {endpoint.records or 'the top level'!r}"
                )
            self.pages.append(Page(path, document, records))
        if not self.pages:
            raise PlatformgenError(f"sample data of {source}.{endpoint.name}: no page-NNN.json in {shown(folder)}")

    def _page(self, index: int) -> Reply:
        page = self.pages[index]
        return Reply(200, page.document, shown(page.file))

    def _empty(self, why: str) -> Reply:
        return Reply(200, _with_records(self.pages[-1].document, self.endpoint.records, []), why)

    def answer(self, query: Mapping[str, str], base: str) -> Reply:
        pagination = self.endpoint.pagination
        if pagination is None:
            records = [r for page in self.pages for r in page.records]
            body = _with_records(self.pages[0].document, self.endpoint.records, records)
            return Reply(200, body, ", ".join(shown(p.file) for p in self.pages))
        if pagination.type == "page_number":
            try:
                index = int(query.get(pagination.param, pagination.start)) - pagination.start
            except ValueError:
                return Reply(400, {"error": f"{pagination.param} is not a number"}, "bad request")
            return self._page(index) if 0 <= index < len(self.pages) else self._empty("past the last recorded page")
        if pagination.type == "offset":
            try:
                offset = int(query.get(pagination.param, 0))
            except ValueError:
                return Reply(400, {"error": f"{pagination.param} is not a number"}, "bad request")
            start = 0
            for index, page in enumerate(self.pages):
                if offset == start:
                    return self._page(index)
                start += len(page.records)
            if offset >= start:
                return self._empty("past the last recorded page")
            return Reply(
                404, {"error": f"the recorded sample has no page starting at {pagination.param}={offset}"}, "none"
            )
        if pagination.type == "cursor":
            cursor = query.get(pagination.param)
            if not cursor:
                return self._page(0)
            for index, page in enumerate(self.pages[:-1]):
                following = _dig(page.document, pagination.cursor_path)
                if following is not None and str(following) == cursor:
                    return self._page(index + 1)
            return Reply(404, {"error": f"no recorded page follows cursor {cursor!r}"}, "none")
        # link_header: the first request carries the endpoint's parameters, the next links our page number
        try:
            index = int(query.get(SAMPLE_PAGE_PARAM, 1)) - 1
        except ValueError:
            return Reply(400, {"error": f"{SAMPLE_PAGE_PARAM} is not a number"}, "bad request")
        if not 0 <= index < len(self.pages):
            return self._empty("past the last recorded page")
        reply = self._page(index)
        if index + 1 < len(self.pages):
            reply.headers["Link"] = f'<{base}{self.route}?{SAMPLE_PAGE_PARAM}={index + 2}>; rel="next"'
        return reply


class ReplayServer:
    """A local HTTP server that replays recorded API responses (sample data, never a real API)."""

    def __init__(self) -> None:
        self.routes: dict[str, EndpointReplay] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_source(self, source: SourcePlan, folder: Path) -> str:
        """Route the source's endpoints to their recorded pages; returns the base URL to use for it."""
        spec = source.spec
        assert isinstance(spec, ApiSource)
        prefix = "/" + quote(source.name) + urlsplit(spec.base_url).path.rstrip("/")
        for table in source.tables:
            endpoint = table.spec
            assert isinstance(endpoint, ApiEndpoint)
            route = prefix + "/" + endpoint.path.lstrip("/")
            self.routes[route] = EndpointReplay(source.name, endpoint, folder / table.name, route)
        return self.url + prefix

    def start(self) -> None:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                replay = outer.routes.get(parts.path)
                if replay is None:
                    reply = Reply(404, {"error": f"no recorded sample endpoint at {parts.path}"}, "none")
                else:
                    reply = replay.answer(query, outer.url)
                body = json.dumps(reply.body).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header(SAMPLE_HEADER, f"recorded sample response: {reply.sample}")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="platformgen-sample-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --------------------------------------------------------------------------- all sources


@dataclass
class SampleSetup:
    """What the sample data needs from the runtime, and what was left out."""

    env: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # sources with sample data (their DAGs run)
    without_sample: list[str] = field(default_factory=list)
    landing_folders: list[str] = field(default_factory=list)  # below the project root
    replay: ReplayServer | None = None

    def stop(self) -> None:
        if self.replay is not None:
            self.replay.stop()
            self.replay = None


def prepare_samples(
    plan: Plan, spec: Path, *, pg: PgService, s3: S3Service, project_root: Path, echo: Echo
) -> SampleSetup:
    """Make every source's sample data reachable the way the source itself would be."""
    from platformgen.runtime.extract_api import base_url_env
    from platformgen.runtime.settings import source_url_env

    root = spec_root(spec)
    setup = SampleSetup()
    try:
        for source in plan.sources:
            folder = sample_folder(root, source)
            if folder is None:
                setup.without_sample.append(source.name)
                where = f" ({source.spec.sample} not found)" if source.spec.sample else ""
                echo(f"source {source.name}: no sample data{where}; its ingestion DAG is not run")
                continue
            setup.sources.append(source.name)
            if source.kind == "postgres":
                setup.env[source_url_env(source.name)] = prepare_postgres_source(pg, source, folder, echo)
            elif source.kind == "api":
                if setup.replay is None:
                    setup.replay = ReplayServer()
                    setup.replay.start()
                setup.env[base_url_env(source.name)] = setup.replay.add_source(source, folder)
                echo(f"source {source.name}: serving recorded sample responses from {shown(folder)} (not the real API)")
            else:
                landing = stage_file_source(source, folder, project_root=project_root, s3=s3, echo=echo)
                if landing is not None:
                    setup.landing_folders.append(landing)
    except BaseException:
        setup.stop()
        raise
    return setup
