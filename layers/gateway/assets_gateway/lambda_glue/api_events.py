"""What the API doors read from API Gateway's proxy events: the body's exact bytes, the request
id, the caller, headers (repeats included), and the session door's request."""

from __future__ import annotations

import base64

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from assets_gateway.domain.errors import MalformedRequest
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.ports.sessions import SessionRequest

DRY_RUN_HEADER = "X-Assets-Gateway-Dry-Run"


def session_request(event: APIGatewayProxyEvent, target: SessionTarget) -> SessionRequest:
    return SessionRequest(
        caller=caller(event),
        target=target,
        body=request_body(event),
        content_type=event.headers.get("content-type"),
        content_encoding=event.headers.get("content-encoding"),
        request_id=request_id(event),
        dry_run=flag_header(event, DRY_RUN_HEADER),
    )


def caller(event: APIGatewayProxyEvent) -> Caller:
    """Who signed the request, as API Gateway's AWS_IAM authorisation established it."""
    return Caller(principal_arn=principal(event))


def principal(event: APIGatewayProxyEvent) -> str:
    return event.request_context.identity.user_arn or ""


def request_body(event: APIGatewayProxyEvent) -> bytes:
    """The body's exact bytes. API Gateway sends text as is and binary as valid base64; an event
    that breaks either promise is still a 400, never a crash: a lone surrogate stays in the bytes
    (the manifest check refuses them as not UTF-8), bad base64 is refused here."""
    body = event.body or ""
    if not event.is_base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body)
    except ValueError:  # binascii.Error (bad padding) or text that is not ASCII
        raise MalformedRequest("request body is marked base64 but is not valid base64") from None


def request_id(event: APIGatewayProxyEvent) -> str:
    return event.request_context.request_id or ""


def accept_encoding(event: APIGatewayProxyEvent) -> str | None:
    """The caller's Accept-Encoding (headers are case-insensitive; repeated ones are joined)."""
    values = header_values(event, "Accept-Encoding")
    return ", ".join(values) if values else None


def header_values(event: APIGatewayProxyEvent, name: str) -> list[str]:
    """Every value the caller sent for header `name` (case-insensitive), repeats included."""
    wanted = name.lower()
    values = [
        value
        for header, sent in (event.multi_value_headers or {}).items()
        if header.lower() == wanted
        for value in sent
    ]
    if values:
        return values
    single = event.headers.get(wanted)
    return [] if single is None else [single]


_YES, _NO = frozenset({"1", "true"}), frozenset({"0", "false"})


def flag_header(event: APIGatewayProxyEvent, name: str) -> bool:
    """A yes/no header: `1`/`true` or `0`/`false` in any case, spaces around allowed; absent
    means no. Anything else (`yes`, `on`, `2`, empty, or repeats that disagree) is 400 19000:
    reading an unknown value as "no" would turn the dry run a caller asked for into a real,
    charged session."""
    answers: set[bool] = set()
    for value in header_values(event, name):
        word = value.strip().lower()
        if word not in _YES | _NO:
            raise MalformedRequest(
                f"{name} must be 1, true, 0 or false (any case), not {value[:40]!r}"
            )
        answers.add(word in _YES)
    if len(answers) > 1:
        raise MalformedRequest(f"{name} was sent more than once with different values")
    return answers.pop() if answers else False
