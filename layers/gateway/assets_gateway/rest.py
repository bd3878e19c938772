"""The one place where replies and exceptions become API Gateway responses (Event Handler)."""

from __future__ import annotations

import base64

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from assets_gateway.envelope import JSON_CONTENT_TYPE, Reply, error_reply
from assets_gateway.errors import GatewayError, InternalError, MalformedRequest, RouteNotFound

logger = Logger(child=True)


def to_response(reply: Reply) -> Response[str]:
    headers = dict(reply.headers)
    content_type = headers.pop("Content-Type", None) or headers.pop("content-type", None)
    # A str body: REST APIs pass base64 through undecoded unless the caller's Accept is binary.
    return Response(
        status_code=reply.status,
        content_type=content_type or JSON_CONTENT_TYPE,
        body=reply.body.decode("utf-8", errors="replace"),
        headers=headers,
    )


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


def register_error_handlers(app: APIGatewayRestResolver, metrics: Metrics) -> None:
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
