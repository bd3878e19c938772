"""What admins do to teams and to the whole door: read and reset usage, grant more quota,
suspend and resume a team, engage and release the kill switch. All but usage are changes to the
policy, each published as a new version (or none, when the policy already is as asked)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from assets_gateway.domain.envelope import Reply, success_reply
from assets_gateway.domain.errors import AdminNotFound, MalformedRequest
from assets_gateway.domain.policy import Grant, KillSwitch, PolicyDocument, moment
from assets_gateway.domain.quota import DAY, HOUR, MINUTE, Limit
from assets_gateway.doors.admin.publishing import Publisher, change_reply, parsed
from assets_gateway.doors.admin.request import (
    AdminRequest,
    GrantBody,
    Operation,
    ReasonBody,
    parse_body,
)

if TYPE_CHECKING:
    from assets_gateway.ports.audit import AdminAuditRecord
    from assets_gateway.ports.quota_usage import QuotaUsage

WINDOWS = {"minute": (MINUTE,), "hour": (HOUR,), "day": (DAY,), "all": (MINUTE, HOUR, DAY)}


class TeamOperations:
    def __init__(
        self, publisher: Publisher, counters: QuotaUsage, *, now: Callable[[], float]
    ) -> None:
        self._publisher = publisher
        self._counters = counters
        self._now = now

    # -- usage ---------------------------------------------------------------------------------

    def usage(self, request: AdminRequest, record: AdminAuditRecord) -> Reply:
        policy = parsed(self._publisher.current())
        team = request.query.get("team")
        windows = _windows(request.query.get("window"))
        if team is not None:
            _defined(policy, team)
        now = self._now()
        teams = []
        for name in [team] if team else sorted(policy.teams):
            states = self._counters.usage(name, _limits(policy, name, windows, now), now)
            teams.append({"team": name, "quotas": [state.as_dict() for state in states]})
        budget = self._counters.budget_state(now)
        return success_reply({"teams": teams, "cloudflare_budget": budget.as_dict()})

    def reset_usage(self, team: str) -> Operation:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            reason = (request.query.get("reason") or "").strip()
            if not reason:
                raise MalformedRequest("say why in ?reason=", pointer="/reason")
            record.reason = reason
            window = request.query.get("window")
            if window is None:
                raise MalformedRequest("name the window: ?window=minute|day|all")
            windows = _windows(window)
            policy = parsed(self._publisher.current())
            _defined(policy, team)
            now = self._now()
            limits = _limits(policy, team, windows, now)
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

    def grant(self, team: str) -> Operation:
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

            def existing(policy: Mapping[str, Any]) -> dict[str, Any] | None:
                """The active grant that already gives the team this much until then."""
                return next(
                    (g for g in policy.get("grants", []) if _grants_as(g, team, body, now)), None
                )

            def add(policy: dict[str, Any]) -> bool:
                _known_team(policy, team)
                if existing(policy) is not None:
                    return False  # grants add up: the same one twice would double it
                # Expired grants go at the same time: they no longer count.
                policy["grants"] = [
                    g for g in policy.get("grants", []) if _still_active(g, now)
                ] + [grant]
                return True

            publication = self._publisher.amend(add, by=request.principal, reason=body.reason)
            # As the policy now holds it (published now or before).
            shown = existing(publication.policy.policy)
            until = body.expires_at.isoformat()
            return change_reply(
                publication,
                record,
                {"grant": shown},
                unchanged=f"team {team!r} already has this grant (until {until})",
            )

        return operation

    def set_suspended(self, team: str, *, suspended: bool) -> Operation:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            body = parse_body(ReasonBody, request.body)
            record.reason = body.reason

            def change(policy: dict[str, Any]) -> bool:
                entry = _known_team(policy, team)
                if bool(entry.get("suspended", False)) == suspended:
                    return False
                entry["suspended"] = suspended
                if suspended:
                    entry["suspended_reason"] = body.reason
                else:
                    entry.pop("suspended_reason", None)
                return True

            publication = self._publisher.amend(change, by=request.principal, reason=body.reason)
            result = {"team": team, "suspended": suspended}
            as_it_is = _suspension(team, _known_team(publication.policy.policy, team))
            return change_reply(publication, record, result, unchanged=as_it_is)

        return operation

    def set_kill_switch(self, *, engaged: bool) -> Operation:
        def operation(request: AdminRequest, record: AdminAuditRecord) -> Reply:
            body = parse_body(ReasonBody, request.body)
            record.reason = body.reason
            switch = {
                "engaged": engaged,
                "reason": body.reason,
                "by": request.principal,
                "at": moment(self._now()).isoformat(),
            }

            def change(policy: dict[str, Any]) -> bool:
                if bool(_switch(policy).get("engaged", False)) == engaged:
                    return False
                policy["kill_switch"] = switch
                return True

            publication = self._publisher.amend(change, by=request.principal, reason=body.reason)
            shown = _switch(publication.policy.policy)  # as the policy now holds it
            state = "engaged" if engaged else "released"
            return change_reply(
                publication,
                record,
                {"kill_switch": shown},
                unchanged=f"the kill switch is already {state}",
            )

        return operation


def _limits(policy: PolicyDocument, team: str, windows: tuple[int, ...], now: float) -> list[Limit]:
    quotas = policy.limits_of(team, at=moment(now)).quotas
    return [
        limit
        for limit in (*quotas.limits(), *quotas.deploy_limits())
        if limit.window_seconds in windows
    ]


def _defined(policy: PolicyDocument, team: str) -> None:
    if team not in policy.teams:
        raise AdminNotFound(f"team {team!r} is not in the policy")


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


def _grants_as(stored: Any, team: str, body: GrantBody, now: datetime) -> bool:
    """Whether `stored` is an active grant of the same quotas to the same team until the same
    moment (who granted it, when, and why do not make it another grant)."""
    try:
        grant = Grant.model_validate(stored)
    except ValidationError:
        return False
    same = (grant.team, grant.quotas, grant.expires_at) == (team, body.quotas, body.expires_at)
    return same and grant.active(now)


def _suspension(team: str, entry: Mapping[str, Any]) -> str:
    if not entry.get("suspended", False):
        return f"team {team!r} is not suspended"
    why = entry.get("suspended_reason")
    return f"team {team!r} is already suspended" + (f" ({why})" if why else "")


def _switch(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The kill switch as the policy holds it (the default, released, when it says nothing)."""
    stored = policy.get("kill_switch")
    return dict(stored) if isinstance(stored, Mapping) else KillSwitch().model_dump(mode="json")


def _windows(raw: str | None) -> tuple[int, ...]:
    if raw is None:
        return WINDOWS["all"]
    if raw not in WINDOWS:
        raise MalformedRequest("window must be minute, hour, day or all", pointer="/window")
    return WINDOWS[raw]
