"""Replaying recorded decisions against a proposed policy (pure).

A recorded decision keeps what the policy judged: who called (the principal, or the team the S3
door's prefix named), the target, and the manifest's summary (count, bytes, largest file and,
when they fit, its paths), or for the deploy door's writes what the deploy policy read of them
(`deploy_decisions.JudgedDeploy`), judged again by the same function. Quotas are not replayed:
the counters of the past cannot be rebuilt, and a proposed policy changes who may do what,
which is what an admin wants to see before publishing. The kill switch is left out too: it
refuses everything by design.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from assets_gateway.domain.deploy_decisions import JudgedDeploy, deploy_reasons
from assets_gateway.domain.errors import GatewayError
from assets_gateway.domain.policy import (
    ManifestSummary,
    PolicyDocument,
    SessionTarget,
    access_reasons,
    decide,
    moment,
)

# How many changed decisions a team's report shows.
MAX_EXAMPLES = 10


@dataclass(frozen=True)
class RecordedDecision:
    at: float
    request_id: str
    door: str
    principal: str
    target: SessionTarget
    # What the policy said then: the caller was mapped, not suspended, and `decide` allowed it.
    policy_allowed: bool
    team: str | None = None
    # Set when the door itself named the team (the S3 door's trusted key prefix).
    caller_team: str | None = None
    outcome: str = ""
    policy_version: int | None = None
    # None when the caller was refused before its manifest was read.
    manifest: ManifestSummary | None = None
    # A deploy door write: what the deploy policy read of it (None for a session).
    deploy: JudgedDeploy | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool | None  # None: the record lacks what the new policy needs to judge it
    team: str | None
    reasons: tuple[str, ...]
    approximate: bool = False


def judge(policy: PolicyDocument, decision: RecordedDecision) -> Verdict:
    """What `policy` would say about the recorded request (quotas and kill switch aside)."""
    if decision.caller_team is not None:
        team = decision.caller_team if decision.caller_team in policy.teams else None
    else:
        team = policy.team_of(decision.principal)
    if team is None:
        return Verdict(False, None, (f"principal {decision.principal} is not mapped to a team",))
    if policy.teams[team].suspended:
        return Verdict(False, team, (f"team {team!r} is suspended",))
    if decision.deploy is not None:
        return _judge_deploy(policy, team, decision, decision.deploy)
    if decision.manifest is None:
        return Verdict(
            None, team, ("what the policy judges was not recorded (the caller was refused)",)
        )
    verdict = decide(
        team,
        policy.teams[team],
        policy.limits_of(team, at=moment(decision.at)),
        decision.target,
        decision.manifest,
    )
    return Verdict(
        verdict.allowed,
        team,
        tuple(reason.message for reason in verdict.reasons),
        approximate=bool(verdict.unchecked),
    )


def _judge_deploy(
    policy: PolicyDocument, team: str, decision: RecordedDecision, judged: JudgedDeploy
) -> Verdict:
    target = decision.target
    own = policy.teams[team]
    reasons = access_reasons(team, own, target.account_id, target.script_name, target.namespace)
    rules = policy.limits_of(team, at=moment(decision.at)).deploy
    try:
        reasons += deploy_reasons(team, rules, own.script_globs, judged)
    except GatewayError as error:  # a body the door judged, which no policy changes
        return Verdict(None, team, (error.message,))
    return Verdict(not reasons, team, tuple(reason.message for reason in reasons))


def _word(allowed: bool) -> str:
    return "allowed" if allowed else "refused"


@dataclass
class _TeamReport:
    decisions: int = 0
    unchanged: int = 0
    now_refused: int = 0
    now_allowed: int = 0
    not_evaluable: int = 0
    approximate: int = 0

    def as_dict(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "unchanged": self.unchanged,
            "now_refused": self.now_refused,
            "now_allowed": self.now_allowed,
            "not_evaluable": self.not_evaluable,
            "approximate": self.approximate,
            "examples": examples,
        }


def simulate(policy: PolicyDocument, decisions: list[RecordedDecision]) -> dict[str, Any]:
    """Which recorded decisions `policy` would turn (allowed → refused and back), by team."""
    reports: dict[str, _TeamReport] = defaultdict(_TeamReport)
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for decision in decisions:
        verdict = judge(policy, decision)
        team = decision.team or verdict.team or "(no team)"
        report = reports[team]
        report.decisions += 1
        report.approximate += verdict.approximate
        if verdict.allowed is None:
            report.not_evaluable += 1
            continue
        if verdict.allowed == decision.policy_allowed:
            report.unchanged += 1
            continue
        if verdict.allowed:
            report.now_allowed += 1
        else:
            report.now_refused += 1
        if len(examples[team]) < MAX_EXAMPLES:
            examples[team].append(
                {
                    "request_id": decision.request_id,
                    "at": moment(decision.at).isoformat(),
                    "door": decision.door,
                    "call": decision.deploy.call.value if decision.deploy else "session",
                    "principal": decision.principal,
                    "account_id": decision.target.account_id,
                    "script_name": decision.target.script_name,
                    "namespace": decision.target.namespace,
                    "was": _word(decision.policy_allowed),
                    "now": _word(verdict.allowed),
                    "reasons": list(verdict.reasons),
                }
            )
    return {
        "decisions": len(decisions),
        "changed": sum(r.now_allowed + r.now_refused for r in reports.values()),
        "not_evaluable": sum(r.not_evaluable for r in reports.values()),
        "approximate": sum(r.approximate for r in reports.values()),
        "teams": {team: reports[team].as_dict(examples[team]) for team in sorted(reports, key=str)},
    }
