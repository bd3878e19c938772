"""The admin door: govern the policy, explain decisions, see usage, stop things.

Every operation checks that the caller is an admin (named by the template, or by the current
policy's `admins`), and every attempt — allowed or refused — is one audit record. Changes to
what the gateway does (suspend, grants, the kill switch) are new policy versions, published with
the same optimistic concurrency as a full publish, so history, diff and rollback cover them too.
The running session functions pick a new version up within their policy cache age.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from assets_gateway.adapters.audit import LoggerAuditSink
from assets_gateway.adapters.policy_history import MAX_VERSIONS_PER_PAGE, PublishedPolicy
from assets_gateway.domain.envelope import Reply, error_reply, success_reply
from assets_gateway.domain.errors import (
    AdminNotFound,
    AdminOnly,
    GatewayError,
    InternalError,
    MalformedRequest,
    PolicyInvalid,
    PolicyUnavailable,
    PolicyVersionConflict,
    PreconditionRequired,
)
from assets_gateway.domain.globs import GlobSet
from assets_gateway.domain.identity import Caller, normalise_principal
from assets_gateway.domain.policy import (
    AccountId,
    ManifestSummary,
    PolicyDocument,
    PrincipalArn,
    Quotas,
    Reason,
    SessionTarget,
    moment,
)
from assets_gateway.domain.policy_check import (
    Validation,
    describe_changes,
    operational_warnings,
    validate_policy,
)
from assets_gateway.domain.quota import DAY, MINUTE, BudgetState, Limit, LimitState
from assets_gateway.domain.request_body import parse_json_body
from assets_gateway.domain.simulation import RecordedDecision, simulate
from assets_gateway.doors.session import SessionService
from assets_gateway.ports.audit import AdminAuditRecord, AdminAuditSink
from assets_gateway.ports.sessions import SessionRequest
from assets_gateway_common.json_pointer import json_pointer

M = TypeVar("M", bound=BaseModel)

# A read-modify-publish (suspend, grant, kill switch) retries when another admin published in
# between: the change is re-applied to the newer version.
AMEND_ATTEMPTS = 3
DEFAULT_SIMULATION_PERIOD = timedelta(hours=24)
WINDOWS = {"minute": (MINUTE,), "day": (DAY,), "all": (MINUTE, DAY)}


class History(Protocol):
    def current(self) -> PublishedPolicy | None: ...

    def version(self, version: int) -> PublishedPolicy | None: ...

    def versions(self, *, before: int, limit: int) -> list[PublishedPolicy]: ...

    def publish(
        self,
        policy: dict[str, Any],
        *,
        expected_version: int,
        by: str,
        reason: str,
        changes: list[str],
        at: datetime,
    ) -> PublishedPolicy: ...


class Counters(Protocol):
    def usage(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]: ...

    def reset(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]: ...

    def budget_state(self, now: float) -> BudgetState: ...


class Decisions(Protocol):
    def between(self, since: datetime, until: datetime) -> tuple[list[RecordedDecision], bool]: ...


# ----------------------------------------------------------------------------- request bodies


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


@dataclass(frozen=True)
class AdminRequest:
    principal: str
    request_id: str
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


class AdminService:
    def __init__(
        self,
        *,
        history: History,
        counters: Counters,
        decisions: Decisions,
        sessions: SessionService,
        admins: Sequence[str],
        global_budget: int,
        retention_days: int,
        audit: AdminAuditSink | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._history = history
        self._counters = counters
        self._decisions = decisions
        self._sessions = sessions
        self._admins = frozenset(normalise_principal(arn) for arn in admins)
        self._budget = global_budget
        self._retention = timedelta(days=retention_days)
        self._audit = audit or LoggerAuditSink()
        self._now = now

    # -- the door's one entry point ------------------------------------------------------------

    def handle(
        self,
        action: str,
        request: AdminRequest,
        operation: Callable[[AdminRequest, AdminAuditRecord], Reply],
        *,
        team: str | None = None,
    ) -> Reply:
        """Authorise, run, audit: every admin route goes through here."""
        record = AdminAuditRecord(
            request_id=request.request_id, principal=request.principal, action=action, team=team
        )
        try:
            self._authorise(request.principal)
            reply = operation(request, record)
        except GatewayError as error:
            record.code, record.message = error.code, error.message
            reply = error_reply(error, request_id=request.request_id)
        except Exception:
            # The handler answers a clean 500 envelope; the attempt is still audited.
            record.code = InternalError.code
            self._audit.record(record)
            raise
        else:
            record.outcome = "done"
        record.status = reply.status
        self._audit.record(record)
        return reply

    def _authorise(self, principal: str) -> None:
        if normalise_principal(principal) in self._admins:
            return
        current = self._history.current()
        if current is not None and _parsed(current).is_admin(principal):
            return
        raise AdminOnly(f"{normalise_principal(principal)} is not an admin of the assets gateway")

    # -- policy --------------------------------------------------------------------------------

    def get_policy(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        version = request.query.get("version")
        published = self._version(_version_number(version)) if version else self._current()
        record.policy_version = published.version
        return success_reply(published.as_result(), headers=_etag(published.version))

    def policy_version(self, version: str) -> Callable[[AdminRequest, AdminAuditRecord], Reply]:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            published = self._version(_version_number(version))
            record.policy_version = published.version
            return success_reply(published.as_result(), headers=_etag(published.version))

        return operation

    def versions(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        current = self._current()
        limit = _bounded_int(request.query.get("limit"), "limit", 20, 1, MAX_VERSIONS_PER_PAGE)
        before = _bounded_int(request.query.get("before"), "before", current.version + 1, 1, None)
        found = self._history.versions(before=before, limit=limit)
        result = {"current": current.version, "versions": [p.summary() for p in found]}
        return success_reply(result)

    def validate(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        body = parse_body(ValidateBody, request.body)
        validation = self._validated(body.policy)
        current = self._history.current()
        before = _comparable(current)
        assert validation.document is not None
        undone = operational_warnings(before, validation.document, moment(self._now()))
        result = {
            "valid": True,
            "warnings": [_problem(w) for w in (*undone, *validation.warnings)],
            "changes": describe_changes(before, validation.document),
        }
        return success_reply(result)

    def publish(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        expected = _if_match(request.headers)
        body = parse_body(PublishBody, request.body)
        record.reason = body.reason
        validation = self._validated(body.policy)
        current = self._history.current()
        if (current.version if current else 0) != expected:
            raise PolicyVersionConflict(
                f"If-Match names version {expected} but the current policy is version "
                f"{current.version if current else 0}; read it and apply your change to it"
            )
        assert validation.document is not None
        before = _comparable(current)
        undone = operational_warnings(before, validation.document, moment(self._now()))
        published = self._publish(
            validation.document,
            before,
            expected=expected,
            by=request.principal,
            reason=body.reason,
        )
        record.policy_version, record.changes = published.version, list(published.changes)
        result = {
            **published.summary(),
            "warnings": [_problem(w) for w in (*undone, *validation.warnings)],
        }
        return success_reply(result, headers=_etag(published.version))

    def simulate(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        body = parse_body(SimulateBody, request.body)
        validation = self._validated(body.policy)
        assert validation.document is not None
        now = moment(self._now())
        until = body.until or now
        since = body.since or until - DEFAULT_SIMULATION_PERIOD
        if since >= until:
            raise MalformedRequest("since must be before until", pointer="/since")
        if since < now - self._retention:
            raise MalformedRequest(
                f"decisions are kept {self._retention.days} days; since must be after "
                f"{(now - self._retention).isoformat()}",
                pointer="/since",
            )
        decisions, truncated = self._decisions.between(since, until)
        report = simulate(validation.document, decisions)
        result = {
            "period": {"since": since.isoformat(), "until": until.isoformat()},
            "truncated": truncated,
            **report,
        }
        return success_reply(result)

    # -- decisions and usage -------------------------------------------------------------------

    def explain(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        body = parse_body(ExplainBody, request.body)
        if body.manifest is not None and body.summary is not None:
            raise MalformedRequest("send a manifest or its summary, not both", pointer="/summary")
        target = SessionTarget(body.account_id, body.script_name, body.namespace)
        caller = Caller(principal_arn=body.principal, source="admin")
        if body.manifest is not None:
            session_request = SessionRequest(
                caller=caller,
                target=target,
                body=json.dumps({"manifest": body.manifest}).encode(),
                content_type="application/json",
                request_id=request.request_id,
                dry_run=True,
            )
        else:
            summary = body.summary or SummaryBody(entries=0, bytes=0, paths=[])
            session_request = SessionRequest(
                caller=caller,
                target=target,
                body=b"",
                content_type="application/json",
                request_id=request.request_id,
                dry_run=True,
                summary=ManifestSummary(
                    count=summary.entries,
                    total_bytes=summary.bytes,
                    paths=tuple(summary.paths) if summary.paths is not None else None,
                    largest_file_bytes=summary.largest_file_bytes,
                ),
            )
        decision = self._sessions.create_session(session_request).reply.json()["result"]
        decision.pop("dry_run", None)
        record.team, record.policy_version = decision["team"], decision["policy_version"]
        current = self._history.current()
        if decision["team"] is not None and current is not None:
            decision["rules"] = _rules(_parsed(current), decision["team"], target, self._now())
        return success_reply(decision)

    def usage(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        policy = _parsed(self._current())
        team = request.query.get("team")
        windows = _windows(request.query.get("window"))
        if team is not None and team not in policy.teams:
            raise AdminNotFound(f"team {team!r} is not in the policy")
        now = self._now()
        teams = []
        for name in [team] if team else sorted(policy.teams):
            limits = [
                limit
                for limit in policy.limits_of(name, at=moment(now)).quotas.limits()
                if limit.window_seconds in windows
            ]
            states = self._counters.usage(name, limits, now)
            teams.append({"team": name, "quotas": [state.as_dict() for state in states]})
        budget = self._counters.budget_state(now)
        return success_reply({"teams": teams, "cloudflare_budget": budget.as_dict()})

    def reset_usage(self, team: str) -> Callable[[AdminRequest, AdminAuditRecord], Reply]:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            reason = (request.query.get("reason") or "").strip()
            if not reason:
                raise MalformedRequest("say why in ?reason=", pointer="/reason")
            record.reason = reason
            window = request.query.get("window")
            if window is None:
                raise MalformedRequest("name the window: ?window=minute|day|all")
            windows = _windows(window)
            policy = _parsed(self._current())
            if team not in policy.teams:
                raise AdminNotFound(f"team {team!r} is not in the policy")
            now = self._now()
            limits = [
                limit
                for limit in policy.limits_of(team, at=moment(now)).quotas.limits()
                if limit.window_seconds in windows
            ]
            before = self._counters.reset(team, limits, now)
            record.changes = [f"{state.limit.name}: {state.used} → 0" for state in before]
            result = {
                "team": team,
                "reset": [limit.name for limit in limits],
                "before": [state.as_dict() for state in before],
            }
            return success_reply(result)

        return operation

    # -- changes published as new policy versions ----------------------------------------------

    def grant(self, team: str) -> Callable[[AdminRequest, AdminAuditRecord], Reply]:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            body = parse_body(GrantBody, request.body)
            record.reason = body.reason
            now = moment(self._now())
            if body.expires_at <= now:
                raise MalformedRequest("expires_at must be in the future", pointer="/expires_at")
            grant = {
                "team": team,
                "quotas": body.quotas.model_dump(exclude_none=True),
                "reason": body.reason,
                "expires_at": body.expires_at.isoformat(),
                "granted_by": request.principal,
                "granted_at": now.isoformat(),
            }

            def add(policy: dict[str, Any]) -> None:
                _known_team(policy, team)
                # Expired grants go at the same time: they no longer count.
                policy["grants"] = [
                    g for g in policy.get("grants", []) if _still_active(g, now)
                ] + [grant]

            published = self._amend(request, record, add, reason=body.reason)
            return success_reply({"version": published.version, "grant": grant})

        return operation

    def set_suspended(
        self, team: str, *, suspended: bool
    ) -> Callable[[AdminRequest, AdminAuditRecord], Reply]:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            body = parse_body(ReasonBody, request.body)
            record.reason = body.reason

            def change(policy: dict[str, Any]) -> None:
                entry = _known_team(policy, team)
                entry["suspended"] = suspended
                if suspended:
                    entry["suspended_reason"] = body.reason
                else:
                    entry.pop("suspended_reason", None)

            published = self._amend(request, record, change, reason=body.reason)
            result = {"version": published.version, "team": team, "suspended": suspended}
            return success_reply(result)

        return operation

    def set_kill_switch(
        self, *, engaged: bool
    ) -> Callable[[AdminRequest, AdminAuditRecord], Reply]:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            body = parse_body(ReasonBody, request.body)
            record.reason = body.reason
            switch = {
                "engaged": engaged,
                "reason": body.reason,
                "by": request.principal,
                "at": moment(self._now()).isoformat(),
            }

            def change(policy: dict[str, Any]) -> None:
                policy["kill_switch"] = switch

            published = self._amend(request, record, change, reason=body.reason)
            return success_reply({"version": published.version, "kill_switch": switch})

        return operation

    # -- helpers ---------------------------------------------------------------------------------

    def _current(self) -> PublishedPolicy:
        current = self._history.current()
        if current is None:
            raise PolicyUnavailable("no policy has been published yet")
        return current

    def _version(self, version: int) -> PublishedPolicy:
        published = self._history.version(version)
        if published is None:
            raise AdminNotFound(f"policy version {version} does not exist")
        return published

    def _validated(self, raw: Any) -> Validation:
        validation = validate_policy(raw, global_budget=self._budget, now=moment(self._now()))
        if not validation.valid:
            count = len(validation.errors)
            raise PolicyInvalid(
                f"the policy has {count} problem{'s' if count != 1 else ''}; nothing was published",
                reasons=validation.errors,
                warnings=validation.warnings,
            )
        return validation

    def _publish(
        self,
        document: PolicyDocument,
        before: PolicyDocument | None,
        *,
        expected: int,
        by: str,
        reason: str,
    ) -> PublishedPolicy:
        return self._history.publish(
            document.model_dump(mode="json", exclude_unset=True),
            expected_version=expected,
            by=by,
            reason=reason,
            changes=(
                describe_changes(before, document)
                if before is not None or expected == 0
                else [f"replaces version {expected}, which is invalid: {len(document.teams)} teams"]
            ),
            at=moment(self._now()),
        )

    def _amend(
        self,
        request: AdminRequest,
        record: AdminAuditRecord,
        change: Callable[[dict[str, Any]], None],
        *,
        reason: str,
    ) -> PublishedPolicy:
        for attempt in range(1, AMEND_ATTEMPTS + 1):
            current = self._current()
            before = _parsed(current)  # a change to an invalid policy: publish a valid one first
            policy = copy.deepcopy(current.policy)
            change(policy)
            validation = self._validated(policy)
            assert validation.document is not None
            try:
                published = self._publish(
                    validation.document,
                    before,
                    expected=current.version,
                    by=request.principal,
                    reason=reason,
                )
            except PolicyVersionConflict:
                if attempt == AMEND_ATTEMPTS:
                    raise
                continue
            record.policy_version, record.changes = published.version, list(published.changes)
            return published
        raise AssertionError("unreachable")  # pragma: no cover


def _parsed(published: PublishedPolicy) -> PolicyDocument:
    try:
        return PolicyDocument.model_validate(published.policy)
    except ValidationError:
        raise PolicyUnavailable(
            f"stored policy version {published.version} is invalid; publish a valid one"
        ) from None


def _comparable(current: PublishedPolicy | None) -> PolicyDocument | None:
    """The current policy to diff against; None when there is none or it is invalid (a publish
    is how an invalid stored policy gets replaced, so it must not need a valid one)."""
    if current is None:
        return None
    try:
        return PolicyDocument.model_validate(current.policy)
    except ValidationError:
        return None


def _known_team(policy: dict[str, Any], team: str) -> dict[str, Any]:
    entry = policy.get("teams", {}).get(team)
    if not isinstance(entry, dict):
        raise AdminNotFound(f"team {team!r} is not in the policy")
    return entry


def _still_active(grant: Mapping[str, Any], now: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(grant["expires_at"])) > now
    except (KeyError, ValueError):
        return True  # not ours to judge: validation reports it


def _rules(policy: PolicyDocument, team: str, target: SessionTarget, now: float) -> dict[str, Any]:
    """The parts of the team's policy this request meets, and the limits that apply to it."""
    rules = policy.teams[team]
    limits = policy.limits_of(team, at=moment(now))
    return {
        "team": team,
        "description": rules.description,
        "suspended": rules.suspended,
        "account_listed": target.account_id in rules.accounts,
        "matching_script_globs": [
            g for g in rules.scripts if GlobSet([g]).matches(target.script_name)
        ],
        "matching_namespace_globs": [
            g
            for g in rules.namespaces
            if target.namespace and GlobSet([g]).matches(target.namespace)
        ],
        "paths": list(rules.paths),
        "limits": {
            "max_entries": limits.max_entries,
            "max_bytes": limits.max_bytes,
            "max_file_bytes": limits.max_file_bytes,
            "require_full_hash": limits.require_full_hash,
            "quotas": {limit.name: limit.limit for limit in limits.quotas.limits()},
        },
        "active_grants": [
            g.model_dump(mode="json") for g in policy.active_grants(team, moment(now))
        ],
    }


def _problem(problem: Any) -> dict[str, Any]:
    item = {"message": problem.message}
    if problem.pointer is not None:
        item["pointer"] = problem.pointer
    return item


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _if_match(headers: Mapping[str, str]) -> int:
    raw = headers.get("if-match")
    if raw is None:
        raise PreconditionRequired(
            "send If-Match with the version you are replacing (0 when none is published), so a "
            "publish never overwrites a change you have not seen"
        )
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise MalformedRequest("If-Match must be a policy version number", pointer="/If-Match")
    return int(value)


def _version_number(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise MalformedRequest("a policy version is a positive number", pointer="/version")
    return int(raw)


def _bounded_int(raw: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f"{low}..{high}" if high is not None else f"at least {low}"
        raise MalformedRequest(f"{name} must be a number, {bound}", pointer=f"/{name}")
    return int(raw)


def _windows(raw: str | None) -> tuple[int, ...]:
    if raw is None:
        return WINDOWS["all"]
    if raw not in WINDOWS:
        raise MalformedRequest("window must be minute, day or all", pointer="/window")
    return WINDOWS[raw]
