"""Deploy door: the Workers API calls `wrangler deploy`, `versions upload`, `versions deploy` and
`rollback` make besides the upload session, behind API Gateway with AWS_IAM auth. Each route
names what its call does (`DeployCall`); the Cloudflare path is rebuilt from the validated
parameters, so nothing but the route's own shape is ever forwarded."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.domain.errors import RouteNotFound
from assets_gateway.lambda_glue.deploy_routes import DEPLOY_ROUTES, DeployRoute, deploy_request
from assets_gateway.lambda_glue.rest import respond, rest_resolver
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.lambda_glue.tracing import deferred_tracer
from assets_gateway.lambda_glue.wiring import build_deploy_service

logger = Logger()
tracer = deferred_tracer()
metrics = Metrics()
app = rest_resolver(metrics)
# Built once per execution environment: warm invocations reuse clients, pools and caches.
# With SnapStart, each restored environment renews its pools and its random seed.
after_restore = AfterRestore()
service = build_deploy_service(Settings.from_environ(os.environ), restore=after_restore)
after_restore.register_with_runtime()


def _serve(route: DeployRoute, **parameters: str) -> Response[str]:
    event = app.current_event
    request = deploy_request(event, route, parameters)
    result = service.handle(request)
    # The session door's outcome names: the org's alarms on refusals, upstream errors and
    # unavailable dependencies watch both doors.
    metrics.add_metric(name=result.outcome.value, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="deploy_call", unit=MetricUnit.Count, value=1)
    return respond(event, result.reply)


for _route in DEPLOY_ROUTES:
    app.route(_route.resolver_path, method=_route.method)(
        lambda _route=_route, **parameters: _serve(_route, **parameters)
    )


@app.get("/client/v4/user/tokens/verify")
def verify() -> Response[str]:
    event = app.current_event
    metrics.add_metric(name="deploy_verify", unit=MetricUnit.Count, value=1)
    return respond(event, service.verify(deploy_request(event, None, {})))


# Event Handler tries static routes before dynamic ones, and dynamic ones in the order they were
# added: this one, added last, is tried last. `<first>` stops at a slash; `.*` takes the rest.
@app.route("/client/v4/<first>.*", method=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_governed(first: str) -> Response[str]:
    """Any other call under /client/v4: Cloudflare's "no route" answer, saying what to do, rather
    than API Gateway's 403 10000 (which wrangler reads as a bad token)."""
    event = app.current_event
    metrics.add_metric(name="route_not_governed", unit=MetricUnit.Count, value=1)
    raise RouteNotFound(
        f"the assets gateway does not serve {event.http_method} {event.path[:200]}: it "
        "governs the upload session and the Workers deploy calls of wrangler deploy, versions "
        "upload, versions deploy and rollback (wrangler needs account_id in its configuration "
        "or CLOUDFLARE_ACCOUNT_ID: the gateway does not list accounts)"
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Never the answer as trace metadata: it may hold a Worker's settings.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
