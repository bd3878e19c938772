"""API door: Cloudflare's Create Assets Upload Session, behind API Gateway with AWS_IAM auth."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.domain.policy import SessionTarget
from assets_gateway.lambda_glue.api_events import caller, request_id, session_request
from assets_gateway.lambda_glue.api_idempotency import IDEMPOTENCY_HEADER
from assets_gateway.lambda_glue.rest import respond, rest_resolver
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.lambda_glue.tracing import deferred_tracer
from assets_gateway.lambda_glue.wiring import build_session_api

logger = Logger()
tracer = deferred_tracer()
metrics = Metrics()
app = rest_resolver(metrics)
# Built once per execution environment: warm invocations reuse clients, pools and caches.
# With SnapStart, each restored environment renews its pools and its random seed.
after_restore = AfterRestore()
service, sessions = build_session_api(Settings.from_environ(os.environ), restore=after_restore)
after_restore.register_with_runtime()

SESSION = "/client/v4/accounts/<account_id>/workers/scripts/<script_name>/assets-upload-session"
DISPATCH_SESSION = (
    "/client/v4/accounts/<account_id>/workers/dispatch/namespaces/<namespace>"
    "/scripts/<script_name>/assets-upload-session"
)


@app.post(SESSION)
@app.post(DISPATCH_SESSION)
def session(account_id: str, script_name: str, namespace: str | None = None) -> Response[str]:
    event = app.current_event
    request = session_request(event, SessionTarget(account_id, script_name, namespace))
    result = sessions.create_session(request, key=event.headers.get(IDEMPOTENCY_HEADER))
    metrics.add_metric(name=result.outcome.value, unit=MetricUnit.Count, value=1)
    return respond(event, result.reply)


@app.get("/client/v4/gateway/usage")
def usage() -> Response[str]:
    event = app.current_event
    metrics.add_metric(name="usage_read", unit=MetricUnit.Count, value=1)
    return respond(event, service.usage(caller(event), request_id(event)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Never the answer as trace metadata: it holds the session's upload JWT (X-Ray has other readers).
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sessions.register_lambda_context(context)
    return app.resolve(event, context)
