"""The gateway's and Cloudflare's answers as the team client reads them: the v4 envelope's
parts (tolerating `null`s and bodies that are no envelope), the exceptions the upload raises for
them, and their description for people."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from assets_gateway_common.retry import parse_retry_after

__all__ = [
    "ApiAnswer",
    "CloudflareUploadError",
    "GatewayError",
    "Locate",
    "SessionExpired",
    "SetupError",
    "UploadError",
    "describe",
    "explain",
]

# Where a JSON pointer of an answer lands in a local file ("policy.yaml line 8"), if anywhere.
Locate = Callable[[str], str | None]


@dataclass(frozen=True)
class ApiAnswer:
    """One answer: its status and the parts of Cloudflare's envelope (the gateway's too)."""

    status: int
    result: Any = None
    errors: tuple[Mapping[str, Any], ...] = ()
    messages: tuple[Mapping[str, Any], ...] = ()
    etag: str | None = None
    request_id: str | None = None
    retry_after: float | None = None  # seconds, from `Retry-After`
    text: str = ""  # the start of a body that is not an envelope

    @classmethod
    def read(cls, response: httpx.Response, *, clock: Callable[[], float] = time.time) -> ApiAnswer:
        """`clock` (wall-clock seconds) reads a `Retry-After` written as a date."""
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        common: dict[str, Any] = {
            "status": response.status_code,
            "etag": response.headers.get("etag"),
            "request_id": response.headers.get("x-request-id"),
            "retry_after": parse_retry_after(response.headers.get("retry-after"), clock=clock),
        }
        if not isinstance(envelope, dict):
            return cls(**common, text=response.text[:300])
        return cls(
            **common,
            result=envelope.get("result"),
            errors=tuple(e for e in envelope.get("errors") or [] if isinstance(e, dict)),
            messages=tuple(m for m in envelope.get("messages") or [] if isinstance(m, dict)),
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> int | None:
        """The first error's code."""
        code = self.errors[0].get("code") if self.errors else None
        return code if isinstance(code, int) and not isinstance(code, bool) else None

    def has_code(self, code: int) -> bool:
        return any(error.get("code") == code for error in self.errors)


def describe(item: Mapping[str, Any], locate: Locate | None = None) -> str:
    """`19011 message (/pointer; file line 3)` for an error or a message of the envelope."""
    code = item.get("code")
    text = f"{code} {item.get('message', '')}" if code is not None else str(item.get("message"))
    source = item.get("source")
    pointer = source.get("pointer") if isinstance(source, Mapping) else item.get("pointer")
    if not pointer:
        return text
    place = locate(str(pointer)) if locate is not None else None
    return f"{text} ({pointer}; {place})" if place else f"{text} ({pointer})"


def explain(what: str, answer: ApiAnswer) -> str:
    """A refusal or failure for people: every error and message, the wait, the request id."""
    lines = [f"{what}: HTTP {answer.status}"]
    if answer.errors:
        lines[0] += " — " + "; ".join(describe(e) for e in answer.errors)
    elif answer.text:
        lines[0] += f" — {answer.text!r}"
    lines.extend(f"  - {describe(m)}" for m in answer.messages)
    if answer.retry_after is not None and answer.status == 429:
        lines.append(f"  retry after {answer.retry_after:.0f} s")
    if answer.request_id:
        lines.append(f"  request id {answer.request_id}")
    return "\n".join(lines)


class UploadError(Exception):
    """The upload did not complete. The message is written for the person who ran it."""


class SetupError(UploadError):
    """A problem of this machine's setup, found before any call: no gateway URL, no AWS
    credentials, no region to sign for. The command line exits 2 for it."""


class GatewayError(UploadError):
    """The gateway (or Cloudflare behind it) refused or failed to create the session."""

    def __init__(self, message: str, answer: ApiAnswer) -> None:
        super().__init__(message)
        self.answer = answer
        self.status = answer.status
        self.code = answer.code
        self.errors = list(answer.errors)
        self.messages = list(answer.messages)
        self.request_id = answer.request_id
        self.retry_after = answer.retry_after


class CloudflareUploadError(UploadError):
    """Cloudflare refused or failed an upload request."""

    def __init__(self, message: str, answer: ApiAnswer) -> None:
        super().__init__(message)
        self.answer = answer
        self.status = answer.status
        self.errors = list(answer.errors)
        self.retry_after = answer.retry_after


class SessionExpired(Exception):
    """The session JWT is past its `exp`, or Cloudflare answered 401 to it."""
