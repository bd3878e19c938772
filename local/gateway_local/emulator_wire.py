"""Cloudflare API v4 on the wire, for the emulator's modules: the envelope, refusals, multipart.

Every answer is Cloudflare's envelope `{"success", "errors", "messages", "result"}`; a refusal is an
`ApiError` raised anywhere below a route and answered once by the dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder
from werkzeug.wrappers import Response

# Our code (Cloudflare publishes none) for a body that is not the multipart/form-data it must be.
NOT_MULTIPART = 10311


class ApiError(Exception):
    """A refusal, answered as Cloudflare's error envelope."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        pointer: str | None = None,
        chain: Iterable[tuple[int, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.pointer = pointer
        self.chain = tuple(chain)
        self.headers = dict(headers or {})

    def error_object(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.pointer is not None:
            error["source"] = {"pointer": self.pointer}
        if self.chain:
            error["error_chain"] = [{"code": code, "message": text} for code, text in self.chain]
        return error

    def response(self) -> Response:
        return error_response(self.status, [self.error_object()], self.headers)


def json_response(
    status: int, payload: object, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(payload), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def success_response(status: int, result: object) -> Response:
    return json_response(status, {"success": True, "errors": [], "messages": [], "result": result})


def error_response(
    status: int, errors: list[dict[str, object]], headers: Mapping[str, str] | None = None
) -> Response:
    envelope = {"success": False, "errors": errors, "messages": [], "result": None}
    return json_response(status, envelope, headers)


@dataclass
class Part:
    name: str
    content_type: str | None
    chunks: list[bytes] = field(default_factory=list)


def parse_multipart(content_type: str | None, body: bytes) -> list[Part]:
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary")
    if mimetype != "multipart/form-data" or not boundary:
        raise ApiError(400, NOT_MULTIPART, "Request body must be multipart/form-data")
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    parts: list[Part] = []
    current: Part | None = None
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, (Field, File)):
                current = Part(event.name, event.headers.get("content-type"))
            elif isinstance(event, Data) and current is not None:
                current.chunks.append(event.data)
                if not event.more_data:
                    parts.append(current)
            elif isinstance(event, Epilogue):
                return parts
    except ValueError as error:
        raise ApiError(400, NOT_MULTIPART, "Malformed multipart/form-data body") from error
