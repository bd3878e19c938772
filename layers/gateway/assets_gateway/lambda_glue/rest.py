"""The one place where replies and exceptions become API Gateway responses (Event Handler).

Large answers are gzip-compressed here, in the function, for callers that accept gzip: Lambda
returns at most 6 MB from a synchronous call (API Gateway's own compression comes after that
limit, too late), and a session for 100,000 missing files is a ~3.5 MB list of hashes that
gzip halves. Compression runs at level 1: at 3.5 MB it costs ~40 ms here against ~200 ms for
level 9 (Powertools' `compress=True`), for a body 3 % larger. The compressed body goes out as
base64 with `isBase64Encoded`, which API Gateway decodes back to bytes because the API treats
every media type as binary (template.yaml, `BinaryMediaTypes: */*`).
"""

from __future__ import annotations

import base64
import zlib

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from assets_gateway.domain.envelope import JSON_CONTENT_TYPE, Reply, error_reply
from assets_gateway.domain.errors import (
    GatewayError,
    InternalError,
    RouteNotFound,
    UpstreamFailure,
)
from assets_gateway.lambda_glue.api_events import accept_encoding, request_id

logger = Logger(child=True)

# Lambda's limit on what a synchronous invocation returns: the whole JSON result (status,
# headers, the body as a JSON string or as base64).
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
# What the result holds besides its body (status code, headers, JSON punctuation), generously.
_RESULT_OVERHEAD_BYTES = 64 * 1024
# Answers from this size on are compressed for callers that accept gzip: a session of ~1,800
# missing files or more. Smaller ones (refusals, usage, small sessions) go out as they are: the
# bytes saved would not pay for the compression.
COMPRESS_FROM_BYTES = 64 * 1024
_GZIP_LEVEL = 1


def to_response(reply: Reply, *, accept_encoding: str | None = None) -> Response[str]:
    """The reply as API Gateway's proxy result; gzip-compressed when it is large and the caller's
    `Accept-Encoding` allows gzip. An answer too large for Lambda to return (over 6 MB even
    compressed, or uncompressed for a caller that does not accept gzip) becomes a clean 502
    envelope rather than Lambda's bare failure."""
    headers = dict(reply.headers)
    content_type = headers.pop("Content-Type", None) or headers.pop("content-type", None)
    content_type = content_type or JSON_CONTENT_TYPE
    body = reply.body
    if len(body) < COMPRESS_FROM_BYTES:
        return _text_response(reply.status, content_type, body, headers)
    headers["Vary"] = "Accept-Encoding"
    if accepts_gzip(accept_encoding):
        deflater = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        compressed = deflater.compress(body) + deflater.flush()
        encoded = base64.b64encode(compressed).decode("ascii")
        if len(encoded) + _RESULT_OVERHEAD_BYTES > LAMBDA_RESPONSE_LIMIT_BYTES:
            return _too_large(reply, len(body), accepted_gzip=True)
        response = Response(
            status_code=reply.status,
            content_type=content_type,
            body=encoded,
            headers={**headers, "Content-Encoding": "gzip"},
        )
        # Already base64 (a str keeps this Response[str], as every route declares): tell
        # API Gateway to decode it, as Powertools does for a bytes body.
        response.base64_encoded = True
        return response
    # As a JSON string, each quote and backslash of the body takes one more byte.
    escaped_bytes = len(body) + body.count(b'"') + body.count(b"\\")
    if escaped_bytes + _RESULT_OVERHEAD_BYTES > LAMBDA_RESPONSE_LIMIT_BYTES:
        return _too_large(reply, len(body), accepted_gzip=False)
    return _text_response(reply.status, content_type, body, headers)


def respond(event: APIGatewayProxyEvent, reply: Reply) -> Response[str]:
    """The reply to this event, compressed when the caller accepts gzip and it pays."""
    return to_response(reply, accept_encoding=accept_encoding(event))


def _text_response(
    status: int, content_type: str, body: bytes, headers: dict[str, str]
) -> Response[str]:
    # A str body: REST APIs pass base64 through undecoded unless the caller's Accept is binary.
    return Response(
        status_code=status,
        content_type=content_type,
        body=body.decode("utf-8", errors="replace"),
        headers=headers,
    )


def _too_large(reply: Reply, size: int, *, accepted_gzip: bool) -> Response[str]:
    hint = "" if accepted_gzip else "; send Accept-Encoding: gzip to receive it compressed"
    logger.warning(
        "answer too large for Lambda",
        extra={"status": reply.status, "bytes": size, "accepted_gzip": accepted_gzip},
    )
    error = UpstreamFailure(
        f"the answer ({reply.status}, {size} bytes) is larger than Lambda can return "
        f"({LAMBDA_RESPONSE_LIMIT_BYTES} bytes){hint}"
    )
    request_id = reply.headers.get("X-Request-Id")
    return to_response(error_reply(error, request_id=request_id))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether `Accept-Encoding` (RFC 9110 §12.5.3) allows gzip: listed as `gzip` or `x-gzip`,
    or covered by `*`, with a q-value above 0."""
    if not accept_encoding:
        return False
    wildcard = False
    for item in accept_encoding.split(","):
        coding, *parameters = item.split(";")
        coding = coding.strip().lower()
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if coding in ("gzip", "x-gzip"):
            return weight > 0
        if coding == "*":
            wildcard = weight > 0
    return wildcard


def rest_resolver(metrics: Metrics) -> APIGatewayRestResolver:
    """Event Handler's REST resolver, with every refusal and crash answered in our envelope."""
    app = APIGatewayRestResolver()

    def _refusal(error: GatewayError) -> Response[str]:
        # Refusals raised before the service (an event API Gateway would never send).
        metrics.add_metric(name="refused_request", unit=MetricUnit.Count, value=1)
        return to_response(error_reply(error, request_id=request_id(app.current_event)))

    def _no_route(_: NotFoundError) -> Response[str]:
        metrics.add_metric(name="route_not_found", unit=MetricUnit.Count, value=1)
        path = app.current_event.path
        error = RouteNotFound(
            f"Could not route to {path}, perhaps your object identifier is invalid?"
        )
        return to_response(error_reply(error, request_id=request_id(app.current_event)))

    def _crash(_: Exception) -> Response[str]:
        # Logged with its stack trace here; the caller gets a clean envelope, never a trace.
        logger.exception("unhandled error")
        metrics.add_metric(name="internal_error", unit=MetricUnit.Count, value=1)
        error = InternalError("internal error; quote the request id to the platform team")
        return to_response(error_reply(error, request_id=request_id(app.current_event)))

    app.exception_handler(GatewayError)(_refusal)
    app.not_found(_no_route)
    app.exception_handler(Exception)(_crash)
    return app
