"""The deploy door's route table is the one source of its router and of the template's events."""

from __future__ import annotations

from assets_gateway.domain.deploy_decisions import DeployCall
from assets_gateway.lambda_glue.deploy_routes import DEPLOY_ROUTES, DeployRoute
from gateway_local.aws_resources import load_template

OWN_EVENTS = {
    ("GET", "/client/v4/user/tokens/verify"),
    ("ANY", "/client/v4/{proxy+}"),
}


def test_the_template_gives_the_function_exactly_the_table_s_routes() -> None:
    events = load_template()["Resources"]["DeployApiFunction"]["Properties"]["Events"]
    declared = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in events.values()
    }
    table = {(route.method, route.api_path) for route in DEPLOY_ROUTES}
    assert declared == table | OWN_EVENTS
    assert len(table) == len(DEPLOY_ROUTES)  # no route twice


def test_the_cloudflare_path_is_rebuilt_from_the_parameters_percent_encoded() -> None:
    route = DeployRoute(
        "GET", "/accounts/{account_id}/workers/scripts/{script_name}", DeployCall.READ
    )
    assert route.resolver_path == "/client/v4/accounts/<account_id>/workers/scripts/<script_name>"
    path = route.cloudflare_path({"account_id": "a" * 32, "script_name": "x/../y"})
    assert path == f"/accounts/{'a' * 32}/workers/scripts/x%2F..%2Fy"


def test_only_uploads_and_deployments_count_as_deploys() -> None:
    counted = {route.path.rsplit("/", 1)[-1] for route in DEPLOY_ROUTES if route.kind.deploys}
    assert counted == {"{script_name}", "versions", "deployments"}
    assert all(route.method != "GET" for route in DEPLOY_ROUTES if route.kind.deploys)
