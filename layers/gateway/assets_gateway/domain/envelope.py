"""Cloudflare's v4 envelope: building our refusals and reading Cloudflare's answers (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assets_gateway.domain.errors import GatewayError, PolicyInvalid, Problem

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Reply:
    """What a door sends back: status, headers and the exact body bytes."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


# A Retry-After that is absent or not whole seconds means a minute.
DEFAULT_RETRY_AFTER_SECONDS = 60


def retry_after_seconds(value: str | None, *, ceiling: int | None = None) -> int:
    """A `Retry-After` in whole seconds: at least 1, at most `ceiling` when one is given."""
    try:
        seconds = int(value) if value is not None else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        seconds = DEFAULT_RETRY_AFTER_SECONDS
    seconds = max(seconds, 1)
    return seconds if ceiling is None else min(seconds, ceiling)


def _message(code: int, problem: Problem) -> dict[str, Any]:
    return {"code": code, "message": problem.message, **_source(problem)}


def error_envelope(error: GatewayError) -> dict[str, Any]:
    """`errors` holds the refusal; `messages` holds every individual reason behind it.

    An invalid policy is the exception: each problem is an error of its own (with its pointer),
    and `messages` carries the warnings."""
    if isinstance(error, PolicyInvalid):
        return {
            "success": False,
            "errors": [_message(error.code, reason) for reason in error.reasons],
            "messages": [{"message": w.message, **_source(w)} for w in error.warnings],
            "result": None,
        }
    return {
        "success": False,
        "errors": [_message(error.code, Problem(error.message, error.pointer))],
        "messages": [_message(error.code, reason) for reason in error.reasons],
        "result": None,
    }


def _source(problem: Problem) -> dict[str, Any]:
    return {"source": {"pointer": problem.pointer}} if problem.pointer is not None else {}


def error_reply(error: GatewayError, *, request_id: str | None = None) -> Reply:
    headers = {"Content-Type": JSON_CONTENT_TYPE, **error.headers}
    if request_id:
        headers["X-Request-Id"] = request_id
    body = json.dumps(error_envelope(error), separators=(",", ":")).encode()
    return Reply(status=error.status, body=body, headers=headers)


def success_reply(
    result: Any,
    *,
    headers: Mapping[str, str] | None = None,
    messages: Sequence[Mapping[str, Any]] = (),
) -> Reply:
    """The gateway's own successful answers (e.g. usage) use Cloudflare's envelope too."""
    envelope = {"success": True, "errors": [], "messages": list(messages), "result": result}
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return Reply(
        status=200, body=body, headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})}
    )


@dataclass(frozen=True)
class UpstreamEnvelope:
    """The parts of Cloudflare's answer the gateway looks at; the bytes pass through as they are."""

    success: bool
    error_codes: tuple[int, ...]
    result: Mapping[str, Any] | None


def parse_envelope(body: bytes) -> UpstreamEnvelope | None:
    """Read a v4 envelope tolerantly (`errors` may be null, as in Cloudflare's docs).

    Returns None when the body is not an envelope at all (HTML error page, truncated JSON…).
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json allows
        return None
    if not isinstance(document, dict) or not isinstance(document.get("success"), bool):
        return None
    errors = document.get("errors") or []
    codes = (
        tuple(
            item["code"]
            for item in errors
            if isinstance(item, dict) and isinstance(item.get("code"), int)
        )
        if isinstance(errors, list)
        else ()
    )
    result = document.get("result")
    return UpstreamEnvelope(
        success=document["success"],
        error_codes=codes,
        result=result if isinstance(result, dict) else None,
    )


def is_upload_session(result: Mapping[str, Any] | None) -> bool:
    """A usable session has a string jwt and a list of lists of hash strings."""
    if result is None or not isinstance(result.get("jwt"), str):
        return False
    buckets = result.get("buckets", [])
    return isinstance(buckets, list) and all(
        isinstance(bucket, list) and all(isinstance(h, str) for h in bucket) for bucket in buckets
    )
