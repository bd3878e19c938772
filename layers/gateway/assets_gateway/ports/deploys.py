"""The deploy pipeline as the Lambda glue calls it: one governed call of Cloudflare's Workers
API (a read of a Worker's state, a Worker upload, a deployment, its settings or its workers.dev
route), its result and the business outcome it counts as (`doors.deploy` implements it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assets_gateway.domain.deploy_decisions import DeployCall

if TYPE_CHECKING:
    from assets_gateway.domain.envelope import Reply
    from assets_gateway.domain.identity import Caller
    from assets_gateway.ports.sessions import Outcome


@dataclass(frozen=True)
class DeployRequest:
    caller: Caller
    kind: DeployCall
    method: str
    # Under Cloudflare's `/client/v4`, still percent-encoded as the caller sent it.
    path: str
    account_id: str
    # None for a call about the account (its workers.dev subdomain).
    script_name: str | None
    request_id: str
    namespace: str | None = None
    query: str = ""
    body: bytes = field(default=b"", repr=False)
    content_type: str | None = None
    content_encoding: str | None = None

    @property
    def route(self) -> str:
        """The call as the audit names it: `POST /accounts/{a}/workers/scripts/{s}/versions`."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class DeployResult:
    reply: Reply
    outcome: Outcome
    team: str | None = None
