"""API Gateway's own answers (gateway responses), rendered from template.yaml's GatewayResponses.

The local front answers some requests by itself, as API Gateway does (bad signature, unknown
route, body too large, a crashed Lambda). What the caller sees then is whatever the template's
`GatewayResponses` say for that response type, so the front reads them from the template instead
of repeating them: a code changed in the template changes the local answer too, and the two can
never disagree (they did: the front answered 413 with 10000 while the template maps it to 19002).

Only what the template uses is supported: static header values ('quoted'), an `application/json`
template with a few `$context` variables, an optional `StatusCode`. Anything else is refused when
the responses are read, not when a request happens to need them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway_local.aws_resources import load_template

__all__ = [
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "GatewayResponse",
    "gateway_responses",
    "template_gateway_responses",
]

DEFAULT_4XX = "DEFAULT_4XX"
DEFAULT_5XX = "DEFAULT_5XX"
_JSON = "application/json"
_VARIABLE = re.compile(r"\$(?:context|input|util|stageVariables)[A-Za-z0-9_.]*")


@dataclass(frozen=True)
class GatewayResponse:
    """One response type as the template customises it."""

    status: int | None = None  # None: the status of the situation (403, 413, 502...)
    headers: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None  # the application/json body template

    def body(self, *, message: str, response_type: str, request_id: str) -> bytes:
        """The body API Gateway renders: `$context.error.messageString` is the message as a
        quoted JSON string; with no template, API Gateway's own `{"message": ...}`."""
        if self.template is None:
            return json.dumps({"message": message}).encode()
        values = {
            "$context.error.messageString": json.dumps(message),
            "$context.error.message": message,
            "$context.error.responseType": response_type,
            "$context.requestId": request_id,
        }

        def substitute(match: re.Match[str]) -> str:
            return values[match.group(0)]

        return _VARIABLE.sub(substitute, self.template).encode()


_SUPPORTED_VARIABLES = frozenset(
    {
        "$context.error.messageString",
        "$context.error.message",
        "$context.error.responseType",
        "$context.requestId",
    }
)


def _response(response_type: str, spec: Mapping[str, Any]) -> GatewayResponse:
    status = spec.get("StatusCode")
    parameters = spec.get("ResponseParameters") or {}
    unsupported = set(parameters) - {"Headers"}
    if unsupported:
        raise ValueError(f"{response_type}: ResponseParameters {sorted(unsupported)} unsupported")
    headers: dict[str, str] = {}
    for name, value in (parameters.get("Headers") or {}).items():
        if not (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'"):
            raise ValueError(f"{response_type}: header {name} is not a static 'value'")
        headers[str(name)] = value[1:-1]
    templates = spec.get("ResponseTemplates") or {}
    template = templates.get(_JSON)
    if template is not None:
        unknown = set(_VARIABLE.findall(template)) - _SUPPORTED_VARIABLES
        if unknown:
            raise ValueError(f"{response_type}: template variables {sorted(unknown)} unsupported")
        # The rendered body must be JSON whatever the message holds.
        json.loads(
            GatewayResponse(template=template).body(
                message='a "quoted" message\n', response_type=response_type, request_id="id"
            )
        )
    return GatewayResponse(
        status=int(status) if status is not None else None, headers=headers, template=template
    )


def gateway_responses(template: Mapping[str, Any]) -> dict[str, GatewayResponse]:
    """Every GatewayResponse of the template's REST APIs (AWS::Serverless::Api), by type."""
    found: dict[str, GatewayResponse] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        for response_type, spec in (resource["Properties"].get("GatewayResponses") or {}).items():
            found[str(response_type)] = _response(str(response_type), spec)
    return found


def template_gateway_responses() -> dict[str, GatewayResponse]:
    """The gateway responses of the repository's template.yaml."""
    return gateway_responses(load_template())
