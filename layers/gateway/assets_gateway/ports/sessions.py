"""The session pipeline as the other doors and the Lambda glue call it: a request for an upload
session, its result and the business outcome it counts as (`doors.session` implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assets_gateway.domain.envelope import Reply
    from assets_gateway.domain.identity import Caller
    from assets_gateway.domain.policy import ManifestSummary, SessionTarget
    from assets_gateway.ports.idempotency import KeyClaim


class Outcome(StrEnum):
    """One business outcome per request; each is a metric and the audit record's `outcome`."""

    ALLOWED = "allowed"
    REFUSED_REQUEST = "refused_request"
    REFUSED_CALLER = "refused_caller"
    REFUSED_POLICY = "refused_policy"
    REFUSED_QUOTA = "refused_quota"
    REFUSED_BUDGET = "refused_budget"
    REFUSED_UPSTREAM = "refused_upstream"
    CIRCUIT_OPEN = "circuit_open"
    UPSTREAM_ERROR = "upstream_error"
    DRY_RUN = "dry_run"
    # An Idempotency-Key retry answered with the first answer: nothing forwarded or charged.
    REPLAYED = "replayed"
    STOPPED = "stopped"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class SessionRequest:
    caller: Caller
    target: SessionTarget
    body: bytes
    content_type: str | None
    request_id: str
    # Decide and report, but forward nothing and charge nothing.
    dry_run: bool = False
    # `gzip` lets a 100,000-entry manifest (~9 MB of JSON) fit Lambda's 6 MB payload.
    content_encoding: str | None = None
    # An admin's explain of a manifest known only by its summary (a dry run; no body is read).
    summary: ManifestSummary | None = None
    # The Idempotency-Key to claim with the request's quota charge (`ports.idempotency`).
    claim: KeyClaim | None = None


@dataclass(frozen=True)
class SessionResult:
    reply: Reply
    outcome: Outcome
    # The team the caller was decided to be (None when the request never got that far).
    team: str | None = None


class Sessions(Protocol):
    """Every refusal is a result (an envelope in `reply`), never an exception."""

    def create_session(self, request: SessionRequest) -> SessionResult: ...
