"""What `make run` shows and what it keeps.

The terminal gets one readable line per request the front answers (method, path, the caller's
team, status, error code, milliseconds). Everything the functions print — Powertools' JSON log
records, the audit records, the EMF metrics — goes to one file per function under
`.local/logs/`, as CloudWatch Logs keeps one log group per function.

How the pieces meet without reaching into the functions: the stack runs each invocation inside
`running(function)`, so `FunctionLogs` (standing in for `sys.stdout`) knows whose file a write
belongs to; the front's requests run inside `RequestLog`, and an audit record written during one
tells that request its caller's team. The error code is read from the answer's own envelope.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# What the stack itself logs (outside any function): warnings, a Lambda that crashed.
STACK_LOG = "local-stack.log"
ADMIN_DOOR = "admin"
# A Cloudflare account id (32 hex) is shortened to its first four characters on the terminal.
_ACCOUNT_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{4})[0-9a-f]{28}(?![0-9a-f])")

_function: ContextVar[str | None] = ContextVar("function", default=None)
_request: ContextVar[_Seen | None] = ContextVar("request", default=None)


@dataclass
class _Seen:
    """What the functions' own records (or else the answer) said about the request."""

    team: str | None = None
    door: str | None = None
    # Every audit record written meanwhile (an SQS batch answers several manifests).
    audits: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def running(function: str) -> Iterator[None]:
    """Whatever this thread prints until the block ends belongs to `function`'s log."""
    token = _function.set(function)
    try:
        yield
    finally:
        _function.reset(token)


Handler = Callable[[dict[str, Any], Any], Any]


def as_function(function: str, handler: Handler) -> Handler:
    """`handler`, each invocation running as `function` (see `running`)."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        with running(function):
            return handler(event, context)

    return invoke


def as_manifest_function(function: str, handler: Handler, terminal: TextIO) -> Handler:
    """`handler` (the S3 door's), running as `function`: each manifest it answers (an audit
    record) makes one line on `terminal`, `S3 incoming/<team>/<account>/<script>/…`."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        seen = _Seen()
        token = _request.set(seen)
        try:
            with running(function):
                return handler(event, context)
        finally:
            _request.reset(token)
            for audit in seen.audits:
                _print(terminal, manifest_line(audit))

    return invoke


def manifest_line(audit: dict[str, Any]) -> str:
    """The S3 door's answer to one manifest, from its audit record."""
    where = "/".join(str(audit.get(name) or "-") for name in ("team", "account_id", "script_name"))
    code = audit.get("code")
    return request_line(
        "S3",
        f"incoming/{where}/…",
        who=f"team={audit.get('team') or '-'}",
        status=int(audit.get("status") or 0),
        code=code if isinstance(code, int) else None,
        milliseconds=float(audit.get("latency_ms") or 0),
    )


_terminal_lock = threading.Lock()


def _print(terminal: TextIO, line: str) -> None:
    with _terminal_lock:  # whole lines, whichever thread answered
        print(line, file=terminal, flush=True)


class FunctionLogs(io.TextIOBase):
    """A text stream that files each write under the function running in the writing thread
    (`<directory>/<function>.log`, one JSON record a line), or `local-stack.log` outside any."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        function = _function.get()
        name = f"{function}.log" if function else STACK_LOG
        with self._lock:
            log = self._files.get(name)
            if log is None:
                log = self._files[name] = (self.directory / name).open("a", encoding="utf-8")
            log.write(text)
            log.flush()
        seen = _request.get()
        if seen is not None and '"audit"' in text:
            _note_audit(seen, text)
        return len(text)

    def close(self) -> None:
        with self._lock:
            for log in self._files.values():
                log.close()
            self._files.clear()
        super().close()


def _note_audit(seen: _Seen, text: str) -> None:
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        audit = record.get("audit") if isinstance(record, dict) else None
        if isinstance(audit, dict):
            seen.audits.append(audit)
            seen.door = str(audit.get("door") or "") or None
            team = audit.get("team")
            seen.team = team if isinstance(team, str) else None


def envelope_of(body: bytes, content_encoding: str | None) -> dict[str, Any] | None:
    """The answer's Cloudflare-style envelope, if it is one (gzip-encoded or not)."""
    try:
        if content_encoding and "gzip" in content_encoding.lower():
            body = gzip.decompress(body)
        envelope = json.loads(body)
    except (OSError, EOFError, ValueError):
        return None
    return envelope if isinstance(envelope, dict) else None


def error_code(envelope: dict[str, Any]) -> int | None:
    """The envelope's first error code."""
    errors = envelope.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    code = first.get("code") if isinstance(first, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def result_team(envelope: dict[str, Any]) -> str | None:
    """The team an answer names (`GET /gateway/usage` answers for the caller's own team)."""
    result = envelope.get("result")
    team = result.get("team") if isinstance(result, dict) else None
    return team if isinstance(team, str) else None


def request_line(
    method: str, path: str, *, who: str, status: int, code: int | None, milliseconds: float
) -> str:
    """`POST /client/v4/accounts/0123…/workers/…  team=web  200  -  41 ms`"""
    shown = _ACCOUNT_ID.sub(r"\1…", path)
    code_text = "-" if code is None else str(code)
    return f"{method} {shown}  {who}  {status}  {code_text}  {milliseconds:.0f} ms"


def _who(seen: _Seen) -> str:
    """The caller as the audit names it: its team, or the admin door (whose callers are admins,
    in no team); `team=-` before a team was known."""
    if seen.door == ADMIN_DOOR:
        return "admin"
    return f"team={seen.team or '-'}"


@dataclass
class RequestLog:
    """WSGI middleware: answers what `app` answers and writes one line per request to
    `terminal`."""

    app: WSGIApplication
    terminal: TextIO
    clock: Callable[[], float] = time.perf_counter

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = self.clock()
        seen = _Seen()
        token = _request.set(seen)
        answered: dict[str, Any] = {}

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered["status"], answered["headers"] = status, headers
            return start_response(status, headers, exc_info)

        try:
            chunks = self.app(environ, remember)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        finally:
            _request.reset(token)
        status = int(str(answered.get("status", "500")).split(" ", 1)[0])
        headers = {name.lower(): value for name, value in answered.get("headers", [])}
        code = None
        if status >= 400 or (seen.team is None and seen.door is None):
            envelope = envelope_of(body, headers.get("content-encoding")) or {}
            code = error_code(envelope)
            seen.team = seen.team or result_team(envelope)
        line = request_line(
            str(environ.get("REQUEST_METHOD", "")),
            str(environ.get("PATH_INFO", "")),
            who=_who(seen),
            status=status,
            code=code,
            milliseconds=(self.clock() - started) * 1000,
        )
        _print(self.terminal, line)
        return [body]
