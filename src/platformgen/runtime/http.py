"""HTTP for API sources: retries with exponential backoff and Retry-After, a client-side rate limit, Link headers.

Nothing here logs or raises a message that contains a secret: every URL and error text goes through `redact`,
which removes the known secrets (tokens, passwords, keys) and the values of credential-like query parameters.
`requests` is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from platformgen.runtime.settings import scrub

log = logging.getLogger("platformgen.runtime.http")

#: Seconds of the first retry delay (doubled on each further attempt); tests set it to a few milliseconds.
BACKOFF_BASE_ENV = "PLATFORMGEN_HTTP_BACKOFF_BASE"
#: Upper bound of one wait, also applied to Retry-After, in seconds.
BACKOFF_CAP_ENV = "PLATFORMGEN_HTTP_BACKOFF_CAP"
#: Attempts of one request, the first included.
MAX_ATTEMPTS_ENV = "PLATFORMGEN_HTTP_MAX_ATTEMPTS"
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 60.0
DEFAULT_MAX_ATTEMPTS = 6

_CREDENTIAL_PARAM = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|auth|authorization|signature|sig|password|"
    r"passwd|secret|client[_-]?secret|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&;#\s]*"
)
_LINK_PARAM_NAME = re.compile(r"\s*([A-Za-z0-9!#$&+.^_`|~-]+\*?)\s*")
_LINK_TOKEN = re.compile(r"[^;,\s]*")


class HttpError(RuntimeError):
    """A request failed for good (after the retries for transient failures); the message holds no secret."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` without the given secrets, URL passwords and values of credential-like query parameters."""
    return _CREDENTIAL_PARAM.sub(r"\1***", scrub(text, *secrets))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: `attempts` in all, waits of base*2^n (with jitter), at most `cap` each."""

    attempts: int = DEFAULT_MAX_ATTEMPTS
    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_CAP

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The defaults, overridden by PLATFORMGEN_HTTP_BACKOFF_BASE, _BACKOFF_CAP and _MAX_ATTEMPTS."""
        return cls(
            attempts=max(1, int(os.environ.get(MAX_ATTEMPTS_ENV) or DEFAULT_MAX_ATTEMPTS)),
            base=max(0.0, float(os.environ.get(BACKOFF_BASE_ENV) or DEFAULT_BACKOFF_BASE)),
            cap=max(0.0, float(os.environ.get(BACKOFF_CAP_ENV) or DEFAULT_BACKOFF_CAP)),
        )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based); Retry-After wins when given."""
        if retry_after is not None:
            return min(self.cap, max(0.0, retry_after))
        backoff = min(self.cap, self.base * float(2 ** (attempt - 1)))
        return backoff * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date; None when absent or invalid."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_link_header(value: str | None) -> dict[str, str]:
    """RFC 8288 Link header -> {rel: url}; the first link of each relation type wins."""
    links: dict[str, str] = {}
    text = value or ""
    i, n = 0, len(text)
    while True:
        i = text.find("<", i)
        if i == -1:
            return links
        end = text.find(">", i + 1)
        if end == -1:
            return links
        url, i = text[i + 1 : end].strip(), end + 1
        rels: list[str] = []
        while i < n:  # parameters: ; name[=token or "quoted"] ... up to the next ',' or the end
            while i < n and text[i] in " \t":
                i += 1
            if i >= n or text[i] == ",":
                i += 1
                break
            if text[i] != ";":
                i += 1
                continue
            i += 1
            match = _LINK_PARAM_NAME.match(text, i)
            if match is None:
                continue
            name, i = match.group(1).lower(), match.end()
            param = ""
            if i < n and text[i] == "=":
                i += 1
                while i < n and text[i] in " \t":
                    i += 1
                if i < n and text[i] == '"':
                    i += 1
                    chars: list[str] = []
                    while i < n and text[i] != '"':
                        if text[i] == "\\" and i + 1 < n:
                            i += 1
                        chars.append(text[i])
                        i += 1
                    param, i = "".join(chars), i + 1
                else:
                    token = _LINK_TOKEN.match(text, i)
                    param = token.group(0) if token else ""
                    i = token.end() if token else i
            if name == "rel" and not rels:
                rels = param.split()
        for rel in rels:
            links.setdefault(rel.lower(), url)


class RateLimiter:
    """At most `requests` calls in any window of `per_seconds` (a sliding window; thread-safe)."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests < 1 or per_seconds < 0:
            raise ValueError("a rate limit needs requests >= 1 and per_seconds >= 0")
        self.requests = requests
        self.per_seconds = float(per_seconds)
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more call is allowed; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._calls and now - self._calls[0] >= self.per_seconds:
                    self._calls.popleft()
                if len(self._calls) < self.requests:
                    self._calls.append(now)
                    return waited
                pause = self.per_seconds - (now - self._calls[0])
                self._sleep(pause)
                waited += pause


class _RedactingFilter(logging.Filter):
    """Scrubs secrets from records of a third-party logger (urllib3 logs request lines with query strings)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken record is not ours to fix
            return True
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


@contextmanager
def redacted_logs(secrets: Sequence[str], loggers: Sequence[str] = ("urllib3.connectionpool",)) -> Iterator[None]:
    """While active, records of the given loggers have secrets removed before any handler sees them."""
    filt = _RedactingFilter(secrets)
    targets = [logging.getLogger(name) for name in loggers]
    for target in targets:
        target.addFilter(filt)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(filt)


@dataclass
class Response:
    """What the caller needs of a response (decoupled from requests, and free of secrets)."""

    status: int
    url: str  # the URL requested, as sent (may hold secrets: redact before showing it)
    headers: Mapping[str, str]
    content: bytes


def _session(sensitive_headers: Sequence[str]) -> Any:
    """A requests Session that drops the credential headers (not only Authorization) on a redirect to another host."""
    import requests

    drop = {h.lower() for h in sensitive_headers}
    base: Any = requests.Session

    class _Session(base):  # type: ignore[misc]
        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            super().rebuild_auth(prepared_request, response)
            if drop and self.should_strip_auth(response.request.url, prepared_request.url):
                for name in [h for h in prepared_request.headers if h.lower() in drop]:
                    del prepared_request.headers[name]

    return _Session()


class HttpClient:
    """GET with retries on 429, 5xx and connection errors, Retry-After, a rate limit and no secret in any message."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        rate_limiter: RateLimiter | None = None,
        secrets: Sequence[str] = (),
        sensitive_headers: Sequence[str] = (),
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = _session(sensitive_headers)
        self.session.headers.update(dict(headers or {}))
        if basic_auth is not None:
            self.session.auth = basic_auth
        self.timeout = timeout
        self.rate_limiter = rate_limiter
        self.secrets = tuple(s for s in secrets if s)
        self.policy = policy or RetryPolicy.from_env()
        self._sleep = sleep
        self.requests_sent = 0
        self.bytes_received = 0

    def redact(self, text: str) -> str:
        """`text` without this client's secrets."""
        return redact(text, self.secrets)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> Response:
        """GET `url` with `params`; retries transient failures and raises HttpError for the rest."""
        import requests

        attempts = self.policy.attempts
        shown = self.redact(url)
        for attempt in range(1, attempts + 1):
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            self.requests_sent += 1
            try:
                with redacted_logs(self.secrets):
                    raw = self.session.get(url, params=params, timeout=self.timeout)
            except requests.exceptions.SSLError as exc:  # a certificate problem does not go away by retrying
                reason = self.redact(f"{type(exc).__name__}: {exc}")
                raise HttpError(f"GET {shown} failed: {reason}", url=shown) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                reason = self.redact(f"{type(exc).__name__}: {exc}")
                if attempt >= attempts:
                    raise HttpError(f"GET {shown} failed after {attempts} attempt(s): {reason}", url=shown) from None
                wait = self.policy.delay(attempt)
                log.warning("GET %s: %s; retry %d/%d in %.2fs", shown, reason, attempt + 1, attempts, wait)
                self._sleep(wait)
                continue
            except requests.RequestException as exc:
                reason = self.redact(f"{type(exc).__name__}: {exc}")
                raise HttpError(f"GET {shown} failed: {reason}", url=shown) from None
            sent = self.redact(raw.url or url)
            content = raw.content
            self.bytes_received += len(content)
            status = raw.status_code
            if status < 400:
                return Response(status=status, url=raw.url or url, headers=dict(raw.headers), content=content)
            snippet = self.redact(content[:300].decode("utf-8", "replace").strip())
            reason_text = self.redact(f" {raw.reason}" if raw.reason else "")
            if status == 429 or status >= 500:
                if attempt >= attempts:
                    raise HttpError(
                        f"GET {sent} answered {status}{reason_text} {attempts} time(s); giving up: {snippet}",
                        status=status,
                        url=sent,
                    )
                retry_after = parse_retry_after(raw.headers.get("Retry-After"))
                wait = self.policy.delay(attempt, retry_after)
                log.warning(
                    "GET %s answered %d%s; retry %d/%d in %.2fs%s",
                    sent,
                    status,
                    reason_text,
                    attempt + 1,
                    attempts,
                    wait,
                    "" if retry_after is None else f" (Retry-After {retry_after:g}s)",
                )
                self._sleep(wait)
                continue
            hint = " (check the credentials of the source)" if status in (401, 403) else ""
            raise HttpError(f"GET {sent} answered {status}{reason_text}{hint}: {snippet}", status=status, url=sent)
        raise AssertionError("unreachable")  # pragma: no cover
