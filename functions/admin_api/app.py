"""Admin door: govern the policy, explain decisions, see usage, stop things (AWS_IAM, admins only).

Routes live under /admin on the same REST API as the session door. Each route turns the event
into an AdminRequest and hands it to the core; authorisation, audit and errors happen there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.adapters.audit import AdminAuditRecord
from assets_gateway.domain.envelope import Reply
from assets_gateway.doors.admin.door import AdminService
from assets_gateway.doors.admin.request import AdminRequest
from assets_gateway.lambda_glue.rest import (
    register_error_handlers,
    request_body,
    request_id,
    to_response,
)
from assets_gateway.lambda_glue.settings import AdminSettings
from assets_gateway.lambda_glue.wiring import build_admin_service

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app, metrics)

settings = AdminSettings.from_environ(os.environ)
admin: AdminService = build_admin_service(settings)

Operation = Callable[[AdminRequest, AdminAuditRecord], Reply]


def _run(action: str, operation: Operation, *, team: str | None = None) -> Response[str]:
    event = app.current_event
    request = AdminRequest(
        principal=event.request_context.identity.user_arn or "",
        request_id=request_id(event),
        body=request_body(event),
        query=dict(event.query_string_parameters or {}),
        headers={name.lower(): value for name, value in (event.headers or {}).items()},
    )
    reply = admin.handle(action, request, operation, team=team)
    outcome = "admin_done" if reply.status < 400 else "admin_refused"
    metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)
    return to_response(reply)


@app.get("/admin/policy")
def get_policy() -> Response[str]:
    return _run("policy.get", admin.get_policy)


@app.put("/admin/policy")
def publish_policy() -> Response[str]:
    return _run("policy.publish", admin.publish)


@app.get("/admin/policy/versions")
def policy_versions() -> Response[str]:
    return _run("policy.versions", admin.versions)


@app.get("/admin/policy/versions/<version>")
def policy_version(version: str) -> Response[str]:
    return _run("policy.version", admin.policy_version(version))


@app.post("/admin/policy:validate")
def validate_policy() -> Response[str]:
    return _run("policy.validate", admin.validate)


@app.post("/admin/policy:simulate")
def simulate_policy() -> Response[str]:
    return _run("policy.simulate", admin.simulate)


@app.post("/admin/explain")
def explain() -> Response[str]:
    return _run("explain", admin.explain)


@app.get("/admin/usage")
def usage() -> Response[str]:
    return _run("usage.get", admin.usage)


@app.post("/admin/teams/<team>/grants")
def grant(team: str) -> Response[str]:
    return _run("team.grant", admin.grant(team), team=team)


@app.delete("/admin/teams/<team>/usage")
def reset_usage(team: str) -> Response[str]:
    return _run("usage.reset", admin.reset_usage(team), team=team)


@app.post("/admin/teams/<team>:suspend")
def suspend(team: str) -> Response[str]:
    return _run("team.suspend", admin.set_suspended(team, suspended=True), team=team)


@app.post("/admin/teams/<team>:resume")
def resume(team: str) -> Response[str]:
    return _run("team.resume", admin.set_suspended(team, suspended=False), team=team)


@app.post("/admin/kill-switch:engage")
def engage_kill_switch() -> Response[str]:
    return _run("kill_switch.engage", admin.set_kill_switch(engaged=True))


@app.post("/admin/kill-switch:release")
def release_kill_switch() -> Response[str]:
    return _run("kill_switch.release", admin.set_kill_switch(engaged=False))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Never the answer as trace metadata: policies and usage are for admins, X-Ray has other readers.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
