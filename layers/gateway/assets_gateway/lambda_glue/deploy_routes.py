"""The deploy door's routes: each Workers API call it governs, what that call does, and the
deploy request read from API Gateway's event.

One table serves the function's router, the template's API events (a test holds them equal)
and the Cloudflare path each call is forwarded to, rebuilt from the validated parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from assets_gateway.domain.deploy_decisions import DeployCall
from assets_gateway.domain.errors import MalformedRequest
from assets_gateway.lambda_glue.api_events import caller, request_body, request_id
from assets_gateway.ports.deploys import DeployRequest

API_PREFIX = "/client/v4"
_ACCOUNT = "/accounts/{account_id}/workers"
_SCRIPT = _ACCOUNT + "/scripts/{script_name}"
_DISPATCH_SCRIPT = _ACCOUNT + "/dispatch/namespaces/{namespace}/scripts/{script_name}"
# Version ids are UUIDs; nothing else is forwarded in their place.
_VERSION_ID = re.compile(r"[0-9a-fA-F-]{1,64}")
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class DeployRoute:
    method: str
    # Cloudflare's path under /client/v4, with `{name}` parameters.
    path: str
    kind: DeployCall

    @property
    def api_path(self) -> str:
        """The path as the template's API event names it."""
        return API_PREFIX + self.path

    @property
    def resolver_path(self) -> str:
        """The path as Event Handler's router names it."""
        return _PARAMETER.sub(r"<\1>", self.api_path)

    def cloudflare_path(self, parameters: Mapping[str, str]) -> str:
        return _PARAMETER.sub(lambda found: quote(parameters[found[1]], safe=""), self.path)


DEPLOY_ROUTES: tuple[DeployRoute, ...] = (
    DeployRoute("GET", _ACCOUNT + "/services/{script_name}", DeployCall.READ),
    DeployRoute("GET", _ACCOUNT + "/workers/{script_name}", DeployCall.READ),
    DeployRoute("GET", _ACCOUNT + "/subdomain", DeployCall.READ),
    DeployRoute("GET", _SCRIPT + "/settings", DeployCall.READ),
    DeployRoute("GET", _SCRIPT + "/deployments", DeployCall.READ),
    DeployRoute("GET", _SCRIPT + "/versions", DeployCall.READ),
    DeployRoute("GET", _SCRIPT + "/versions/{version_id}", DeployCall.READ),
    DeployRoute("GET", _SCRIPT + "/subdomain", DeployCall.READ),
    DeployRoute("GET", _SCRIPT + "/secrets", DeployCall.READ),  # names and types, no values
    DeployRoute("PUT", _SCRIPT, DeployCall.WORKER_UPLOAD),
    DeployRoute("POST", _SCRIPT + "/versions", DeployCall.WORKER_UPLOAD),
    DeployRoute("POST", _SCRIPT + "/deployments", DeployCall.DEPLOYMENT),
    DeployRoute("PATCH", _SCRIPT + "/script-settings", DeployCall.SCRIPT_SETTINGS),
    DeployRoute("POST", _SCRIPT + "/subdomain", DeployCall.SUBDOMAIN),
    DeployRoute("GET", _DISPATCH_SCRIPT + "/settings", DeployCall.READ),
    DeployRoute("GET", _DISPATCH_SCRIPT + "/secrets", DeployCall.READ),
    DeployRoute("PUT", _DISPATCH_SCRIPT, DeployCall.WORKER_UPLOAD),
)


def deploy_request(
    event: APIGatewayProxyEvent, route: DeployRoute | None, parameters: Mapping[str, str]
) -> DeployRequest:
    """The call as the door judges it. `route` None: a call about the caller alone
    (`/user/tokens/verify`)."""
    version = parameters.get("version_id")
    if version is not None and not _VERSION_ID.fullmatch(version):
        raise MalformedRequest("version_id must be a version's UUID", pointer="/version_id")
    return DeployRequest(
        caller=caller(event),
        kind=route.kind if route else DeployCall.READ,
        method=event.http_method.upper(),
        path=route.cloudflare_path(parameters) if route else event.path,
        account_id=parameters.get("account_id", ""),
        script_name=parameters.get("script_name"),
        namespace=parameters.get("namespace"),
        request_id=request_id(event),
        query=_query(event),
        body=request_body(event),
        content_type=event.headers.get("content-type"),
        content_encoding=event.headers.get("content-encoding"),
    )


def _query(event: APIGatewayProxyEvent) -> str:
    """The query string as sent (wrangler's `bindings_inherit=strict`, `excludeScript=true`)."""
    values = event.multi_value_query_string_parameters or {}
    return urlencode([(name, value) for name, sent in values.items() for value in sent])
