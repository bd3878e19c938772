"""What every governed door does around its call to Cloudflare, whatever the call: the checks
that come before any reading of the body (identifiers, kill switch, the caller's team), the
meter through which the org's budget counts each attempt, the call with the org token (read
again once if Cloudflare says it is no longer valid), and the cool-down after Cloudflare's 429.

The session door (`session`) and the deploy door (`deploy`) are both built from these, so a
refusal reads the same whichever door answers it. Pure: only domain and ports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pydantic import SecretStr

from assets_gateway.domain.envelope import Reply, error_reply, retry_after_seconds
from assets_gateway.domain.errors import (
    CallerNotAllowed,
    CircuitOpen,
    GatewayError,
    GatewayStopped,
    GlobalBudgetExceeded,
    MalformedRequest,
    Problem,
    QuotaUnavailable,
)
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import PolicyDocument, SessionTarget
from assets_gateway.domain.quota import Limit, Scope, parse_ratelimit, ratelimit_headers
from assets_gateway.domain.redaction import fingerprint
from assets_gateway.ports.audit import AuditRecord
from assets_gateway.ports.quota import QuotaGate, Ticket
from assets_gateway.ports.sessions import Outcome
from assets_gateway.ports.token import TokenSource
from assets_gateway.ports.upstream import UpstreamAnswer

_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
# Cloudflare script and namespace names: letters, digits, '-' and '_' (no dots, no slashes).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")

OUTCOME_OF_ERROR: dict[int, Outcome] = {
    19000: Outcome.REFUSED_REQUEST,
    19001: Outcome.REFUSED_REQUEST,
    19002: Outcome.REFUSED_REQUEST,
    19010: Outcome.REFUSED_CALLER,
    19011: Outcome.REFUSED_POLICY,
    19012: Outcome.UNAVAILABLE,
    19013: Outcome.STOPPED,
    19020: Outcome.REFUSED_QUOTA,
    19021: Outcome.REFUSED_BUDGET,
    19022: Outcome.UNAVAILABLE,
    19030: Outcome.UNAVAILABLE,
    19031: Outcome.UPSTREAM_ERROR,
    19040: Outcome.REFUSED_REQUEST,
    19060: Outcome.REFUSED_REQUEST,
    19061: Outcome.REFUSED_REQUEST,
    19062: Outcome.REFUSED_POLICY,
    19063: Outcome.REFUSED_QUOTA,
    19064: Outcome.REFUSED_REQUEST,
}

# Cloudflare's answers to a token it does not accept: missing/invalid header, invalid token,
# authentication error.
TOKEN_REJECTED_CODES = frozenset({6003, 6111, 9106, 9109, 10000})

# Cloudflare blocks a token for 5 minutes past its limit: no cool-down is longer.
MAX_BACKOFF_SECONDS = 300


def audit_record(request_id: str, caller: Caller, target: SessionTarget | None) -> AuditRecord:
    """The audit record of one request, before anything about it is decided."""
    return AuditRecord(
        request_id=request_id,
        door=caller.source,
        principal=caller.principal_arn,
        account_id=target.account_id if target else None,
        script_name=target.script_name if target else None,
        namespace=target.namespace if target else None,
    )


def reason(code: int, problem: Problem | GatewayError) -> dict[str, Any]:
    """One reason of a dry run's answer: its code, message and, when known, its pointer."""
    found: dict[str, Any] = {"code": code, "message": problem.message}
    if problem.pointer is not None:
        found["pointer"] = problem.pointer
    return found


def refusal(
    error: GatewayError,
    record: AuditRecord,
    request_id: str,
    quota_headers: Callable[[], dict[str, str]],
) -> tuple[Reply, Outcome]:
    """A refusal as the caller gets it (where a known team's quotas stand, unless the error
    says already) and as the audit keeps it (its code and every reason)."""
    if "RateLimit" not in error.headers:
        error.headers = {**quota_headers(), **error.headers}
    outcome = (
        Outcome.CIRCUIT_OPEN
        if isinstance(error, CircuitOpen)
        else OUTCOME_OF_ERROR.get(error.code, Outcome.INTERNAL_ERROR)
    )
    record.code = error.code
    record.reasons = [error.message, *(reason.message for reason in error.reasons)]
    return error_reply(error, request_id=request_id), outcome


def team_quota_headers(
    quotas: QuotaGate, team: str | None, limits: Sequence[Limit], now: float
) -> dict[str, str]:
    """Refusals of a known team still tell it where its quotas stand."""
    team_limits = [limit for limit in limits if limit.scope is Scope.TEAM]
    if team is None or not team_limits:
        return {}
    try:
        return ratelimit_headers(quotas.usage(team, team_limits, now))
    except QuotaUnavailable:
        return {}


def check_account(account_id: str) -> None:
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise MalformedRequest(
            "account_id must be 32 lowercase hexadecimal characters", pointer="/account_id"
        )


def check_target(target: SessionTarget) -> None:
    check_account(target.account_id)
    if not _NAME.fullmatch(target.script_name):
        raise MalformedRequest(
            "script_name may hold only letters, digits, '-' and '_'", pointer="/script_name"
        )
    if target.namespace is not None and not _NAME.fullmatch(target.namespace):
        raise MalformedRequest(
            "namespace may hold only letters, digits, '-' and '_'", pointer="/namespace"
        )


def admitted_team(policy: PolicyDocument, caller: Caller, record: AuditRecord) -> str:
    """The caller's team, once the kill switch, the mapping and a suspension have let it in;
    the audit record names the team before a suspension refuses it."""
    check_kill_switch(policy)
    team = record.team = team_of(policy, caller)
    check_not_suspended(policy, team)
    return team


def team_of(policy: PolicyDocument, caller: Caller) -> str:
    team = policy.team_of(caller.principal_arn)
    if caller.team is not None:
        # The S3 door: the key names the team, and its writer must be one of that team's
        # principals now (a role removed from the policy is refused on both doors).
        if caller.team not in policy.teams:
            raise CallerNotAllowed(f"team {caller.team!r} is not in the org's policy")
        if team != caller.team:
            raise CallerNotAllowed(
                f"principal {caller.principal} is not a principal of team {caller.team!r}"
            )
    if team is None:
        raise CallerNotAllowed(f"principal {caller.principal} is not mapped to any team")
    return team


def check_not_suspended(policy: PolicyDocument, team: str) -> None:
    if policy.teams[team].suspended:
        why = policy.teams[team].suspended_reason
        raise CallerNotAllowed(f"team {team!r} is suspended" + (f": {why}" if why else ""))


def check_kill_switch(policy: PolicyDocument) -> None:
    switch = policy.kill_switch
    if switch.engaged:
        why = f": {switch.reason}" if switch.reason else ""
        raise GatewayStopped(
            f"the org's admins have stopped the assets gateway{why}; calls resume when they "
            "release the kill switch"
        )


class UpstreamCalls:
    """One request's calls to Cloudflare against the org's budget (an `AttemptMeter`).

    The charge admitted the first call; each retry asks the budget first, so every call that
    leaves was counted before it left and no 300 s interval holds more than the budget allows.
    A call that never reached Cloudflare (connection failed, circuit open, no token) is taken
    back; every call that reached it stays counted, whatever Cloudflare answered.
    """

    def __init__(
        self,
        quotas: QuotaGate,
        ticket: Ticket,
        charged_at: float,
        request_id: str,
        now: Callable[[], float],
    ) -> None:
        self._quotas = quotas
        self._request_id = request_id
        self._now = now
        self._admitted: str | None = ticket.call_id or None  # admitted, not yet attempted
        self._admitted_at = charged_at
        self.seen = ticket.budget  # the budget as read right after the charge
        self.reached = 0
        self.taken_back = 0
        self.ratelimit: str | None = None

    def may_retry(self) -> bool:
        now = self._now()
        try:
            call = self._quotas.permit(self._request_id, now)
        except QuotaUnavailable:
            return False  # fail closed: no call the budget cannot count
        self._admitted, self._admitted_at = call, now
        return call is not None

    def record(self, *, reached: bool, ratelimit: str | None) -> None:
        if reached:
            self.reached += 1
        else:
            self._give_back()
        self._admitted = None
        if ratelimit:
            self.ratelimit = ratelimit

    def settle(self) -> None:
        """The request is over: an admitted call that was never attempted goes back."""
        self._give_back()
        self._admitted = None

    def _give_back(self) -> None:
        if self._admitted is not None and self._quotas.take_back(self._admitted, self._admitted_at):
            self.taken_back += 1


def call_with_org_token(
    *,
    tokens: TokenSource,
    quotas: QuotaGate,
    record: AuditRecord,
    calls: UpstreamCalls,
    send: Callable[[SecretStr], UpstreamAnswer],
    now: Callable[[], float],
) -> UpstreamAnswer:
    """`send` with the org token; if Cloudflare says the token is invalid, the secret may have
    been rotated: read it again once and send again with the new one (a call the budget must
    allow too). Cloudflare's own count of the token's calls then wins when it is the lower one."""
    try:
        token = tokens.get()
        record.token_fingerprint = fingerprint(token)
        answer = send(token)
        if answer.status in (400, 401, 403) and set(answer.error_codes) & TOKEN_REJECTED_CODES:
            fresh = tokens.get(force_refresh=True)
            if fresh.get_secret_value() != token.get_secret_value() and calls.may_retry():
                record.token_fingerprint = fingerprint(fresh)
                answer = send(fresh)
    finally:
        record.upstream_attempts = calls.reached
        calls.settle()
    items = parse_ratelimit(calls.ratelimit)
    if items:
        quotas.follow(items, now(), calls.seen)
    return answer


def back_off(quotas: QuotaGate, answer: UpstreamAnswer, now: float) -> NoReturn:
    """Cloudflare is limiting the org token: nobody calls it again before Retry-After."""
    wait = retry_after_seconds(answer.headers.get("retry-after"), ceiling=MAX_BACKOFF_SECONDS)
    quotas.open_cooldown(now + wait)
    raise GlobalBudgetExceeded(
        f"Cloudflare is rate limiting the org's token; the gateway pauses calls for {wait} s",
        headers={"Retry-After": str(wait)},
    )
