"""The pipeline of the session door, and the only place that knows the order of its steps:

    identifiers → body limits → policy (team of the caller) → manifest → decision → token →
    Cloudflare → reply, with one audit record whatever happens.

Identity comes before the manifest so an unknown caller learns nothing about validation; the
team's limits (e.g. full hashes) shape manifest validation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from assets_gateway.audit import AuditRecord, AuditSink
from assets_gateway.cloudflare import UpstreamAnswer
from assets_gateway.cloudflare_token import fingerprint
from assets_gateway.envelope import Reply, error_reply
from assets_gateway.errors import (
    CallerNotAllowed,
    GatewayError,
    MalformedRequest,
    ManifestTooLarge,
    PolicyDenied,
)
from assets_gateway.identity import Caller
from assets_gateway.manifest import (
    Manifest,
    ManifestLimits,
    check_content_type,
    parse_json_body,
    parse_manifest,
)
from assets_gateway.policy import PolicyDocument, SessionTarget, decide
from assets_gateway.policy_store import StoredPolicy

_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
# Cloudflare script and namespace names: letters, digits, '-' and '_' (no dots, no slashes).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


class Outcome(StrEnum):
    """One business outcome per request; each is a metric and the audit record's `outcome`."""

    ALLOWED = "allowed"
    REFUSED_REQUEST = "refused_request"
    REFUSED_CALLER = "refused_caller"
    REFUSED_POLICY = "refused_policy"
    REFUSED_UPSTREAM = "refused_upstream"
    UPSTREAM_ERROR = "upstream_error"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


_OUTCOME_OF_ERROR: dict[int, Outcome] = {
    19000: Outcome.REFUSED_REQUEST,
    19001: Outcome.REFUSED_REQUEST,
    19002: Outcome.REFUSED_REQUEST,
    19010: Outcome.REFUSED_CALLER,
    19011: Outcome.REFUSED_POLICY,
    19012: Outcome.UNAVAILABLE,
    19030: Outcome.UNAVAILABLE,
    19031: Outcome.UPSTREAM_ERROR,
}


class PolicySource(Protocol):
    def current(self) -> StoredPolicy: ...


class TokenSource(Protocol):
    def get(self, *, force_refresh: bool = False) -> SecretStr: ...


class Upstream(Protocol):
    def create_upload_session(
        self, target: SessionTarget, body: bytes, token: SecretStr
    ) -> UpstreamAnswer: ...


@dataclass(frozen=True)
class SessionRequest:
    caller: Caller
    target: SessionTarget
    body: bytes
    content_type: str | None
    request_id: str


@dataclass(frozen=True)
class SessionResult:
    reply: Reply
    outcome: Outcome


class SessionService:
    def __init__(
        self,
        *,
        policies: PolicySource,
        tokens: TokenSource,
        upstream: Upstream,
        audit: AuditSink,
        max_request_body_bytes: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._policies = policies
        self._tokens = tokens
        self._upstream = upstream
        self._audit = audit
        self._max_body = max_request_body_bytes
        self._clock = clock

    def create_session(self, request: SessionRequest) -> SessionResult:
        started = self._clock()
        record = AuditRecord(
            request_id=request.request_id,
            door=request.caller.source,
            principal=request.caller.principal_arn,
            account_id=request.target.account_id,
            script_name=request.target.script_name,
            namespace=request.target.namespace,
        )
        try:
            result = self._run(request, record)
        except GatewayError as error:
            result = SessionResult(
                error_reply(error, request_id=request.request_id),
                _OUTCOME_OF_ERROR.get(error.code, Outcome.INTERNAL_ERROR),
            )
            record.code = error.code
            record.reasons = [error.message, *(reason.message for reason in error.reasons)]
        except Exception:
            # The handler answers a clean 500 envelope; the decision is still audited.
            record.latency_ms = self._elapsed_ms(started)
            self._audit.record(record)
            raise
        record.latency_ms = self._elapsed_ms(started)
        record.outcome = result.outcome.value
        record.status = result.reply.status
        self._audit.record(record)
        return result

    def _elapsed_ms(self, started: float) -> float:
        return round((self._clock() - started) * 1000, 3)

    def _run(self, request: SessionRequest, record: AuditRecord) -> SessionResult:
        _check_target(request.target)
        if len(request.body) > self._max_body:
            raise ManifestTooLarge(
                f"request body is {len(request.body)} bytes; at most {self._max_body} are accepted"
            )
        check_content_type(request.content_type)
        stored = self._policies.current()
        record.policy_version = stored.version
        team = _team_of(stored.policy, request.caller)
        record.team = team
        limits = stored.policy.limits_of(team)
        manifest = parse_manifest(
            parse_json_body(request.body),
            ManifestLimits(require_full_hash=limits.require_full_hash),
        )
        record.entries, record.bytes = manifest.count, manifest.total_bytes
        _enforce(stored.policy, team, request.target, manifest)
        token = self._tokens.get()
        record.token_fingerprint = fingerprint(token)
        answer = self._upstream.create_upload_session(request.target, manifest.to_body(), token)
        record.upstream_status, record.upstream_ms = answer.status, round(answer.elapsed_ms, 3)
        outcome = Outcome.ALLOWED if 200 <= answer.status < 300 else Outcome.REFUSED_UPSTREAM
        headers = {**answer.headers, "X-Request-Id": request.request_id}
        return SessionResult(Reply(answer.status, answer.body, headers), outcome)


def _check_target(target: SessionTarget) -> None:
    if not _ACCOUNT_ID.fullmatch(target.account_id):
        raise MalformedRequest(
            "account_id must be 32 lowercase hexadecimal characters", pointer="/account_id"
        )
    if not _NAME.fullmatch(target.script_name):
        raise MalformedRequest(
            "script_name may hold only letters, digits, '-' and '_'", pointer="/script_name"
        )
    if target.namespace is not None and not _NAME.fullmatch(target.namespace):
        raise MalformedRequest(
            "namespace may hold only letters, digits, '-' and '_'", pointer="/namespace"
        )


def _team_of(policy: PolicyDocument, caller: Caller) -> str:
    team = policy.team_of(caller.principal_arn)
    if team is None:
        raise CallerNotAllowed(f"principal {caller.principal} is not mapped to any team")
    if policy.teams[team].suspended:
        raise CallerNotAllowed(f"team {team!r} is suspended")
    return team


def _enforce(policy: PolicyDocument, team: str, target: SessionTarget, manifest: Manifest) -> None:
    decision = decide(team, policy.teams[team], policy.limits_of(team), target, manifest)
    if not decision.allowed:
        count = len(decision.reasons)
        raise PolicyDenied(
            f"the org's policy denies this request ({count} reason{'s' if count > 1 else ''})",
            reasons=decision.reasons,
        )
