"""What an admin request carries: the request itself, the models of its JSON bodies, and
parsing a body into one of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from assets_gateway.domain.errors import MalformedRequest
from assets_gateway.domain.policy import AccountId, PrincipalArn, Quotas, Reason
from assets_gateway.domain.request_body import parse_json_body
from assets_gateway_common.json_pointer import json_pointer

if TYPE_CHECKING:
    from assets_gateway.domain.envelope import Reply
    from assets_gateway.ports.audit import AdminAuditRecord

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class AdminRequest:
    principal: str
    request_id: str
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


# One admin operation: it answers the request and notes what it did in the audit record.
Operation = Callable[[AdminRequest, "AdminAuditRecord"], "Reply"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidateBody(_Body):
    policy: Any


class PublishBody(_Body):
    policy: Any
    reason: Reason


class SimulateBody(_Body):
    policy: Any
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class SummaryBody(_Body):
    entries: int = Field(ge=0)
    bytes: int = Field(ge=0)
    paths: list[str] | None = None
    largest_file_bytes: int | None = Field(default=None, ge=0)


class ExplainBody(_Body):
    principal: PrincipalArn
    account_id: AccountId
    script_name: str = Field(min_length=1, max_length=255)
    namespace: str | None = Field(default=None, min_length=1, max_length=255)
    manifest: dict[str, Any] | None = None
    summary: SummaryBody | None = None


class GrantBody(_Body):
    quotas: Quotas
    reason: Reason
    expires_at: AwareDatetime


class ReasonBody(_Body):
    reason: Reason


def parse_body(model: type[M], body: bytes) -> M:
    """A JSON body as `model`, or 400 19000 naming the first problem with its pointer."""
    document = parse_json_body(body) if body.strip() else {}
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise MalformedRequest(
            f"request body: {first['msg']}", pointer=json_pointer(*first["loc"]) or "/"
        ) from None
