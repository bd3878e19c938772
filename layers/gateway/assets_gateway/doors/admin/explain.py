"""What the session door would decide for a caller, script and manifest, and why: a dry run of
the same pipeline (no quota used, nothing forwarded) with the rules of the team it met."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assets_gateway.domain.envelope import Reply, success_reply
from assets_gateway.domain.errors import MalformedRequest
from assets_gateway.domain.globs import GlobSet
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import (
    ManifestSummary,
    PolicyDocument,
    SessionTarget,
    moment,
)
from assets_gateway.doors.admin.publishing import Publisher, parsed
from assets_gateway.doors.admin.request import (
    AdminRequest,
    ExplainBody,
    SummaryBody,
    parse_body,
)
from assets_gateway.doors.session import SessionService
from assets_gateway.ports.sessions import SessionRequest

if TYPE_CHECKING:
    from assets_gateway.ports.audit import AdminAuditRecord


class Explanations:
    def __init__(
        self, publisher: Publisher, sessions: SessionService, *, now: Callable[[], float]
    ) -> None:
        self._publisher = publisher
        self._sessions = sessions
        self._now = now

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
        current = self._publisher.versions.current()
        if decision["team"] is not None and current is not None:
            decision["rules"] = _rules(parsed(current), decision["team"], target, self._now())
        return success_reply(decision)


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
            "quotas": {
                limit.name: limit.limit
                for limit in (*limits.quotas.limits(), *limits.quotas.deploy_limits())
            },
            "deploy": limits.deploy.as_dict(),
        },
        "active_grants": [
            g.model_dump(mode="json") for g in policy.active_grants(team, moment(now))
        ],
    }
