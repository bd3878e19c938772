"""The audit records the doors write, one per decision, and the sinks they go to. Never the
token: at most its fingerprint (`redaction.fingerprint`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class AuditRecord:
    request_id: str
    door: str
    principal: str
    outcome: str = "internal_error"
    status: int = 500
    code: int | None = None
    team: str | None = None
    account_id: str | None = None
    script_name: str | None = None
    namespace: str | None = None
    entries: int | None = None
    bytes: int | None = None
    reasons: list[str] = field(default_factory=list)
    policy_version: int | None = None
    quota: dict[str, int] | None = None
    token_fingerprint: str | None = None
    upstream_status: int | None = None
    upstream_ms: float | None = None
    # Requests that reached Cloudflare (retries included): what the org's budget counted.
    upstream_attempts: int | None = None
    latency_ms: float | None = None
    # An Idempotency-Key replay: the request id of the first request, whose answer it repeats.
    replay_of: str | None = None
    # The deploy door: the call (`POST /accounts/…/versions`) and what the policy judged of it
    # (binding types and names, sizes, the body's digest, deployment splits; never a value).
    route: str | None = None
    deploy: dict[str, Any] | None = None


@dataclass
class AdminAuditRecord:
    """One admin action, allowed or refused (`audit.door = "admin"` in Logs Insights)."""

    request_id: str
    principal: str
    action: str
    door: str = "admin"
    outcome: str = "refused"
    status: int = 500
    code: int | None = None
    team: str | None = None
    reason: str | None = None
    policy_version: int | None = None
    changes: list[str] = field(default_factory=list)
    message: str | None = None


class AuditSink(Protocol):
    def record(self, record: AuditRecord) -> None: ...


class AdminAuditSink(Protocol):
    def record(self, record: AdminAuditRecord) -> None: ...
