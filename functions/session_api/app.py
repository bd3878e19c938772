"""API door: Cloudflare's Create Assets Upload Session, behind API Gateway with AWS_IAM auth."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.doors.session import SessionRequest
from assets_gateway.lambda_glue.api_idempotency import IDEMPOTENCY_HEADER
from assets_gateway.lambda_glue.rest import (
    accept_encoding,
    flag_header,
    register_error_handlers,
    request_body,
    request_id,
    to_response,
)
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_idempotent_sessions, build_session_service

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app, metrics)

# Built once per execution environment: warm invocations reuse clients, pools and caches.
settings = Settings.from_environ(os.environ)
aws = boto3.Session()
service = build_session_service(settings, aws=aws)
sessions = build_idempotent_sessions(service, settings, aws=aws)

SESSION = "/client/v4/accounts/<account_id>/workers/scripts/<script_name>/assets-upload-session"
USAGE = "/client/v4/gateway/usage"
DRY_RUN_HEADER = "X-Assets-Gateway-Dry-Run"
DISPATCH_SESSION = (
    "/client/v4/accounts/<account_id>/workers/dispatch/namespaces/<namespace>"
    "/scripts/<script_name>/assets-upload-session"
)


@app.post(SESSION)
def create_session(account_id: str, script_name: str) -> Response[str]:
    return _create(SessionTarget(account_id=account_id, script_name=script_name))


@app.post(DISPATCH_SESSION)
def create_dispatch_session(account_id: str, namespace: str, script_name: str) -> Response[str]:
    return _create(
        SessionTarget(account_id=account_id, script_name=script_name, namespace=namespace)
    )


@app.get(USAGE)
def usage() -> Response[str]:
    event = app.current_event
    caller = Caller(principal_arn=event.request_context.identity.user_arn or "")
    metrics.add_metric(name="usage_read", unit=MetricUnit.Count, value=1)
    return to_response(
        service.usage(caller, request_id(event)), accept_encoding=accept_encoding(event)
    )


def _create(target: SessionTarget) -> Response[str]:
    event = app.current_event
    dry_run = flag_header(event, DRY_RUN_HEADER)
    result = sessions.create_session(
        SessionRequest(
            caller=Caller(principal_arn=event.request_context.identity.user_arn or ""),
            target=target,
            body=request_body(event),
            content_type=event.headers.get("content-type"),
            content_encoding=event.headers.get("content-encoding"),
            request_id=request_id(event),
            dry_run=dry_run,
        ),
        key=event.headers.get(IDEMPOTENCY_HEADER),
    )
    metrics.add_metric(name=result.outcome.value, unit=MetricUnit.Count, value=1)
    return to_response(result.reply, accept_encoding=accept_encoding(event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Never the answer as trace metadata: it holds the session's upload JWT (X-Ray has other readers).
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sessions.register_lambda_context(context)
    return app.resolve(event, context)
