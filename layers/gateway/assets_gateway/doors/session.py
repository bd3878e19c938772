"""The pipeline of the session door, and the only place that knows the order of its steps:

    identifiers → body limits → policy (team of the caller) → manifest → decision → token →
    Cloudflare → reply, with one audit record whatever happens.

Identity comes before the manifest so an unknown caller learns nothing about validation; the
team's limits (e.g. full hashes) shape manifest validation.

Pure: everything outside goes through the ports it is given (policy source, quota gate, token
source, upstream, audit sink, decision recorder), so it imports only domain and ports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assets_gateway.domain.envelope import Reply, error_reply, success_reply
from assets_gateway.domain.errors import (
    GatewayError,
    GlobalBudgetExceeded,
    IdempotencyConflict,
    MalformedRequest,
    ManifestTooLarge,
    PolicyDenied,
    Problem,
    QuotaExceeded,
)
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.manifest import Manifest, ManifestLimits, parse_manifest_body
from assets_gateway.domain.policy import (
    EffectiveLimits,
    ManifestSummary,
    PolicyDocument,
    SessionTarget,
    decide,
    moment,
)
from assets_gateway.domain.quota import (
    BudgetState,
    Charge,
    Limit,
    LimitState,
    Scope,
    first_exceeded,
    ratelimit_headers,
)
from assets_gateway.domain.request_body import check_content_type, gunzip
from assets_gateway.domain.simulation import RecordedDecision
from assets_gateway.doors.gate import (
    UpstreamCalls,
    admitted_team,
    audit_record,
    back_off,
    call_with_org_token,
    check_target,
    reason,
    refusal,
    team_of,
    team_quota_headers,
)
from assets_gateway.ports.audit import AuditRecord, AuditSink
from assets_gateway.ports.idempotency import (
    REPLAYED_HEADER,
    KeyClaim,
    KeyClaimed,
    KeyRecord,
    KeyRecords,
)
from assets_gateway.ports.policy_source import PolicySource, StoredPolicy
from assets_gateway.ports.quota import QuotaGate, Ticket
from assets_gateway.ports.recorded_decisions import DecisionRecorder
from assets_gateway.ports.sessions import Outcome, SessionRequest, SessionResult
from assets_gateway.ports.token import TokenSource
from assets_gateway.ports.upstream import Upstream


@dataclass
class _Progress:
    """What one request has established so far, for the answer's headers and the refund."""

    team: str | None = None
    limits: Sequence[Limit] = ()
    ticket: Ticket | None = None
    manifest: Manifest | None = None
    decided_at: float | None = None  # the recorded decision's time (its key: held again, same)
    claimed: KeyClaim | None = None  # the Idempotency-Key the charge claimed
    key_taken: bool = False  # a retry of a request that claimed the key first


class SessionService:
    def __init__(
        self,
        *,
        policies: PolicySource,
        quotas: QuotaGate,
        tokens: TokenSource,
        upstream: Upstream,
        audit: AuditSink,
        max_request_body_bytes: int,
        max_inflated_body_bytes: int = 32 * 1024 * 1024,
        decisions: DecisionRecorder | None = None,
        keys: KeyRecords | None = None,
        now: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._decisions = decisions
        self._keys = keys
        self._policies = policies
        self._quotas = quotas
        self._tokens = tokens
        self._upstream = upstream
        self._audit = audit
        self._max_body = max_request_body_bytes
        self._max_inflated = max_inflated_body_bytes
        self._now = now
        self._timer = timer

    def create_session(self, request: SessionRequest) -> SessionResult:
        started = self._timer()
        record = audit_record(request.request_id, request.caller, request.target)
        progress = _Progress()
        if request.summary is not None and not request.dry_run:
            raise ValueError("a manifest summary can only be explained (dry run)")
        if request.claim is not None and (request.dry_run or self._keys is None):
            raise ValueError("an Idempotency-Key is claimed by a charge this service makes")
        try:
            result = self._run(request, record, progress)
        except GatewayError as error:
            if request.dry_run:
                # A dry run reports a refusal as its decision instead of answering it.
                result = self._dry_run_reply(
                    progress, [reason(error.code, error)], policy_version=record.policy_version
                )
                record.reasons = [error.message]
                return self._finish(record, result, started)
            self._give_back(progress)
            reply, outcome = refusal(
                error,
                record,
                request.request_id,
                lambda: team_quota_headers(
                    self._quotas, progress.team, progress.limits, self._now()
                ),
            )
            result = SessionResult(reply, outcome)
        except Exception:
            # The handler answers a clean 500 envelope; the charge and the key are given back
            # and the decision is still audited.
            self._give_back(progress)
            self._settle_key(progress, None, record.team)
            record.latency_ms = self._elapsed_ms(started)
            self._audit.record(record)
            raise
        if not (request.dry_run or progress.key_taken) and result.outcome is not Outcome.ALLOWED:
            # An allowed request's decision rode its charge (held just before it).
            self._remember(request, record, progress, result.outcome)
        self._settle_key(progress, result, record.team)
        return self._finish(record, result, started)

    def _settle_key(
        self, progress: _Progress, result: SessionResult | None, team: str | None
    ) -> None:
        """A claimed key keeps a final answer (2xx, a 4xx but 429) for retries; after a 429, a
        5xx or a failure it is given up, so the retry really runs again."""
        claim, progress.claimed = progress.claimed, None
        if claim is None or self._keys is None:
            return
        if result is None or result.reply.status == 429 or result.reply.status >= 500:
            self._keys.release(claim)
        else:
            kept = SessionResult(result.reply, result.outcome, team=team)
            self._keys.complete(claim, kept, self._now())

    def _finish(self, record: AuditRecord, result: SessionResult, started: float) -> SessionResult:
        record.latency_ms = self._elapsed_ms(started)
        record.outcome = result.outcome.value
        record.status = result.reply.status
        self._audit.record(record)
        return SessionResult(result.reply, result.outcome, team=record.team)

    def _answered_before(
        self, request: SessionRequest, record: AuditRecord, progress: _Progress, found: KeyRecord
    ) -> SessionResult:
        """A retry whose key a first request claimed: the first answer (and its JWT) again,
        nothing forwarded, charged or recorded for simulations (the first request was). It got
        here as a new request would (kill switch, team, policy), and is refused (409 19040)
        when its body differs, when the first request still runs, or when the caller now
        belongs to another team than the one the first answer was for."""
        progress.key_taken = True
        if self._decisions is not None:
            self._decisions.withdraw(request.request_id)
        if request.claim is None or found.payload_hash != request.claim.payload_hash:
            raise IdempotencyConflict("this Idempotency-Key was already used with another request")
        first = found.answer
        if first is None:
            raise IdempotencyConflict(
                "a request with this Idempotency-Key is still running; retry shortly"
            )
        record.replay_of = first.reply.headers.get("X-Request-Id")
        if first.team is not None and record.team != first.team:
            raise IdempotencyConflict(
                f"this Idempotency-Key was first used for team {first.team!r}; the caller "
                f"now belongs to team {record.team!r}: send the request with a new key"
            )
        headers = {
            **first.reply.headers,
            # This request's own id: the one its audit record (with `replay_of`) is found by.
            "X-Request-Id": request.request_id,
            REPLAYED_HEADER: "true",
        }
        return SessionResult(Reply(first.reply.status, first.reply.body, headers), Outcome.REPLAYED)

    def _remember(
        self, request: SessionRequest, record: AuditRecord, progress: _Progress, outcome: Outcome
    ) -> None:
        """Keep what the policy judged, for admins replaying a proposed policy: refused callers,
        and every request whose manifest was read (whatever quotas or Cloudflare said after).
        Held, not written: the environment's next quota charge carries it (`DecisionRecorder`),
        so a refusal before the quota step writes nothing but its audit line."""
        if self._decisions is None:
            return
        manifest = progress.manifest
        if manifest is None and outcome is not Outcome.REFUSED_CALLER:
            return
        if progress.decided_at is None:
            progress.decided_at = self._now()
        summary = None
        if manifest is not None:
            summary = ManifestSummary(
                count=manifest.count,
                total_bytes=manifest.total_bytes,
                largest_file_bytes=manifest.largest_file_bytes,
            )
        self._decisions.hold(
            RecordedDecision(
                at=progress.decided_at,
                request_id=request.request_id,
                door=request.caller.source,
                principal=request.caller.principal_arn,
                target=request.target,
                policy_allowed=outcome not in (Outcome.REFUSED_CALLER, Outcome.REFUSED_POLICY),
                team=progress.team,
                caller_team=request.caller.team,
                outcome=outcome.value,
                policy_version=record.policy_version,
                manifest=summary,
            ),
            paths=list(manifest.entries) if manifest is not None else None,
        )

    def usage(self, caller: Caller, request_id: str) -> Reply:
        """The caller's own team: its limits, what is used and when each window resets."""
        try:
            stored = self._policies.current()
            team = team_of(stored.policy, caller)
            quotas = stored.policy.limits_of(team, at=moment(self._now())).quotas
            limits = (*quotas.limits(), *quotas.deploy_limits())
            # One consistent read of the team's windows and the org's budget.
            team_states, budget = self._quotas.usage_and_budget(team, limits, self._now())
        except GatewayError as error:
            return error_reply(error, request_id=request_id)
        result = {
            "team": team,
            "policy_version": stored.version,
            "quotas": [state.as_dict() for state in team_states],
            "cloudflare_budget": budget.as_dict(),
        }
        headers = {**ratelimit_headers(team_states), "X-Request-Id": request_id}
        return success_reply(result, headers=headers)

    def _elapsed_ms(self, started: float) -> float:
        return round((self._timer() - started) * 1000, 3)

    def _run(
        self, request: SessionRequest, record: AuditRecord, progress: _Progress
    ) -> SessionResult:
        check_target(request.target)
        if len(request.body) > self._max_body:
            raise ManifestTooLarge(
                f"request body is {len(request.body)} bytes; at most {self._max_body} are accepted"
            )
        check_content_type(request.content_type)
        body = self._inflate(request)
        stored = self._policies.current()
        record.policy_version = stored.version
        team = progress.team = admitted_team(stored.policy, request.caller, record)
        limits = stored.policy.limits_of(team, at=moment(self._now()))
        progress.limits = limits.quotas.limits()
        if request.summary is not None:
            record.entries, record.bytes = request.summary.count, request.summary.total_bytes
            return self._dry_run(
                stored=stored,
                team=team,
                limits=limits,
                target=request.target,
                manifest=request.summary,
                progress=progress,
                record=record,
            )
        manifest = parse_manifest_body(
            body, ManifestLimits(require_full_hash=limits.require_full_hash)
        )
        record.entries, record.bytes = manifest.count, manifest.total_bytes
        progress.manifest = manifest
        if request.dry_run:
            return self._dry_run(
                stored=stored,
                team=team,
                limits=limits,
                target=request.target,
                manifest=manifest,
                progress=progress,
                record=record,
            )
        _enforce(stored.policy, team, limits, request.target, manifest)
        # Its decision rides the charge's transaction: one round trip for both. Should the
        # charge be refused, the refusal's decision replaces it (and rides a later charge).
        self._remember(request, record, progress, Outcome.ALLOWED)
        # Quota comes after validation and policy: a bad request never consumes any.
        now = self._now()
        try:
            ticket = progress.ticket = self._quotas.charge(
                team,
                progress.limits,
                Charge(entries=manifest.count, bytes=manifest.total_bytes),
                now,
                request.request_id,
                claim=request.claim,
            )
        except KeyClaimed as claimed:
            return self._answered_before(request, record, progress, claimed.record)
        progress.claimed = request.claim
        record.quota = {state.limit.name: state.used for state in ticket.after}
        if ticket.budget is not None:
            record.quota["cloudflare-5min"] = ticket.budget.window_calls
        calls = UpstreamCalls(self._quotas, ticket, now, request.request_id, self._now)
        body = manifest.to_body()
        answer = call_with_org_token(
            tokens=self._tokens,
            quotas=self._quotas,
            record=record,
            calls=calls,
            send=lambda token: self._upstream.create_upload_session(
                request.target, body, token, calls
            ),
            now=self._now,
        )
        record.upstream_status, record.upstream_ms = answer.status, round(answer.elapsed_ms, 3)
        if answer.status == 429:
            back_off(self._quotas, answer, now)
        outcome = Outcome.ALLOWED if 200 <= answer.status < 300 else Outcome.REFUSED_UPSTREAM
        headers = {
            **answer.headers,
            **progress.ticket.headers(),
            "X-Request-Id": request.request_id,
        }
        return SessionResult(Reply(answer.status, answer.body, headers), outcome)

    def _inflate(self, request: SessionRequest) -> bytes:
        encoding = (request.content_encoding or "identity").strip().lower()
        if encoding == "identity":
            return request.body
        if encoding == "gzip":
            return gunzip(request.body, self._max_inflated)
        raise MalformedRequest(f"Content-Encoding must be gzip or absent, not {encoding[:40]!r}")

    def _dry_run(
        self,
        *,
        stored: StoredPolicy,
        team: str,
        limits: EffectiveLimits,
        target: SessionTarget,
        manifest: Manifest | ManifestSummary,
        progress: _Progress,
        record: AuditRecord,
    ) -> SessionResult:
        """Every reason the request would be refused now, policy and quota, charging nothing."""
        now = self._now()
        decision = decide(team, stored.policy.teams[team], limits, target, manifest)
        reasons = [reason(PolicyDenied.code, problem) for problem in decision.reasons]
        current, budget = self._quotas.usage_and_budget(team, progress.limits, now)
        used = {state.limit.name: state.used for state in current}
        charge = Charge(entries=manifest.count, bytes=manifest.total_bytes)
        exceeded = first_exceeded(progress.limits, used, charge)
        if exceeded is not None:
            state = next(s for s in current if s.limit is exceeded)
            problem = Problem(f"the request would exceed {state.describe()}")
            reasons.append(reason(QuotaExceeded.code, problem))
        if budget.available < 1:
            problem = Problem(f"the org's Cloudflare budget is spent: {budget.describe()}")
            reasons.append(reason(GlobalBudgetExceeded.code, problem))
        record.reasons = [reason["message"] for reason in reasons]
        return self._dry_run_reply(
            progress,
            reasons,
            manifest,
            current,
            budget,
            policy_version=stored.version,
            unchecked=decision.unchecked,
        )

    def _dry_run_reply(
        self,
        progress: _Progress,
        reasons: list[dict[str, Any]],
        manifest: Manifest | ManifestSummary | None = None,
        current: Sequence[LimitState] = (),
        budget: BudgetState | None = None,
        *,
        policy_version: int | None = None,
        unchecked: Sequence[str] = (),
    ) -> SessionResult:
        result = {
            "dry_run": True,
            "allowed": not reasons,
            "team": progress.team,
            "policy_version": policy_version,
            "entries": manifest.count if manifest else None,
            "bytes": manifest.total_bytes if manifest else None,
            "reasons": reasons,
            "quotas": [state.as_dict() for state in current]
            + ([budget.as_dict()] if budget is not None else []),
            "unchecked": list(unchecked),
        }
        team_states = [state for state in current if state.limit.scope is Scope.TEAM]
        return SessionResult(
            success_reply(result, headers=ratelimit_headers(team_states)), Outcome.DRY_RUN
        )

    def _give_back(self, progress: _Progress) -> None:
        """A charged request that ends in a refusal or failure gets its team quota back (the
        org's budget keeps the calls that reached Cloudflare: `gate.UpstreamCalls`)."""
        if progress.ticket is not None:
            self._quotas.refund(progress.ticket)
            progress.ticket = None


def _enforce(
    policy: PolicyDocument,
    team: str,
    limits: EffectiveLimits,
    target: SessionTarget,
    manifest: Manifest,
) -> None:
    decision = decide(team, policy.teams[team], limits, target, manifest)
    if not decision.allowed:
        count = len(decision.reasons)
        raise PolicyDenied(
            f"the org's policy denies this request ({count} reason{'s' if count > 1 else ''})",
            reasons=decision.reasons,
        )
