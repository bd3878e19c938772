"""The admin door's routes on Event Handler: each turns its event into an `AdminRequest` and
hands it to `AdminService.handle` with its operation; authorisation, audit and errors happen
there. Only the admin function imports this."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from assets_gateway.doors.admin.door import AdminService
from assets_gateway.doors.admin.request import AdminRequest, Operation
from assets_gateway.lambda_glue.api_events import principal, request_body, request_id
from assets_gateway.lambda_glue.rest import to_response

# The operation of a route, from the door and the route's path parameters.
OperationOf = Callable[..., Operation]

# (method, path): (the audited action, its operation)
ROUTES: dict[tuple[str, str], tuple[str, OperationOf]] = {
    ("GET", "/admin/policy"): ("policy.get", lambda admin: admin.get_policy),
    ("PUT", "/admin/policy"): ("policy.publish", lambda admin: admin.publish),
    ("GET", "/admin/policy/versions"): ("policy.versions", lambda admin: admin.versions),
    ("GET", "/admin/policy/versions/<version>"): (
        "policy.version",
        lambda admin, version: admin.policy_version(version),
    ),
    ("POST", "/admin/policy:validate"): ("policy.validate", lambda admin: admin.validate),
    ("POST", "/admin/policy:simulate"): ("policy.simulate", lambda admin: admin.simulate),
    ("POST", "/admin/explain"): ("explain", lambda admin: admin.explain),
    ("GET", "/admin/usage"): ("usage.get", lambda admin: admin.usage),
    ("POST", "/admin/teams/<team>/grants"): ("team.grant", lambda admin, team: admin.grant(team)),
    ("DELETE", "/admin/teams/<team>/usage"): (
        "usage.reset",
        lambda admin, team: admin.reset_usage(team),
    ),
    ("POST", "/admin/teams/<team>:suspend"): (
        "team.suspend",
        lambda admin, team: admin.set_suspended(team, suspended=True),
    ),
    ("POST", "/admin/teams/<team>:resume"): (
        "team.resume",
        lambda admin, team: admin.set_suspended(team, suspended=False),
    ),
    ("POST", "/admin/kill-switch:engage"): (
        "kill_switch.engage",
        lambda admin: admin.set_kill_switch(engaged=True),
    ),
    ("POST", "/admin/kill-switch:release"): (
        "kill_switch.release",
        lambda admin: admin.set_kill_switch(engaged=False),
    ),
}


def register_admin_routes(
    app: APIGatewayRestResolver, admin: AdminService, metrics: Metrics
) -> None:
    for (method, path), (action, operation_of) in ROUTES.items():
        app.route(path, method)(_route(app, admin, metrics, action, operation_of))


def _route(
    app: APIGatewayRestResolver,
    admin: AdminService,
    metrics: Metrics,
    action: str,
    operation_of: OperationOf,
) -> Callable[..., Response[str]]:
    def run(**path: str) -> Response[str]:
        event = app.current_event
        request = AdminRequest(
            principal=principal(event),
            request_id=request_id(event),
            body=request_body(event),
            query=dict(event.query_string_parameters or {}),
            headers={name.lower(): value for name, value in (event.headers or {}).items()},
        )
        operation = operation_of(admin, **path)
        reply = admin.handle(action, request, operation, team=path.get("team"))
        outcome = "admin_done" if reply.status < 400 else "admin_refused"
        metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)
        return to_response(reply)

    return run
