"""Replaying recorded decisions against a proposed policy (pure)."""

from __future__ import annotations

import copy

from assets_gateway.adapters.decision_log import pack_paths, unpack_paths
from assets_gateway.domain.policy import ManifestSummary, PolicyDocument, SessionTarget
from assets_gateway.domain.simulation import RecordedDecision, judge, simulate
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_CI, WEB_DEPLOYER, demo_policy

AT = 1_795_000_000.0


def recorded(
    principal: str,
    script: str,
    *,
    allowed: bool,
    paths: tuple[str, ...] | None = ("/index.html",),
    manifest: bool = True,
    request_id: str = "r",
) -> RecordedDecision:
    summary = (
        ManifestSummary(count=1, total_bytes=10, paths=paths, largest_file_bytes=10)
        if manifest
        else None
    )
    return RecordedDecision(
        at=AT,
        request_id=request_id,
        door="api",
        principal=principal,
        target=SessionTarget(DEMO_ACCOUNT_ID, script),
        policy_allowed=allowed,
        team=None,
        manifest=summary,
    )


def policy(change: dict[str, object] | None = None) -> PolicyDocument:
    raw = copy.deepcopy(demo_policy())
    for team, fields in (change or {}).items():
        raw["teams"][team].update(fields)
    return PolicyDocument.model_validate(raw)


def test_the_current_policy_changes_nothing() -> None:
    decisions = [
        recorded(WEB_DEPLOYER.principal_arn, "web-storefront", allowed=True),
        recorded(DOCS_CI.principal_arn, "docs", allowed=True),
        recorded(DOCS_CI.principal_arn, "web-storefront", allowed=False),
    ]
    report = simulate(policy(), decisions)
    assert (report["decisions"], report["changed"]) == (3, 0)


def test_narrower_paths_turn_allowed_into_refused_with_examples_by_team() -> None:
    decisions = [
        recorded(DOCS_CI.principal_arn, "docs", allowed=True, paths=("/blog/a.html",)),
        recorded(DOCS_CI.principal_arn, "docs", allowed=True, paths=("/docs/a.html",)),
        recorded(WEB_DEPLOYER.principal_arn, "web-storefront", allowed=True),
    ]
    report = simulate(policy({"docs": {"paths": ["/docs/**"]}}), decisions)
    docs = report["teams"]["docs"]
    assert (docs["decisions"], docs["unchanged"], docs["now_refused"]) == (2, 1, 1)
    (example,) = docs["examples"]
    assert (example["was"], example["now"]) == ("allowed", "refused")
    assert "outside team 'docs'" in example["reasons"][0]
    assert report["teams"]["web"]["unchanged"] == 1


def test_wider_scripts_turn_refused_into_allowed() -> None:
    decisions = [recorded(DOCS_CI.principal_arn, "handbook", allowed=False)]
    report = simulate(policy({"docs": {"scripts": ["docs", "handbook"]}}), decisions)
    assert report["teams"]["docs"]["now_allowed"] == 1


def test_suspension_and_unmapping_refuse_and_refused_callers_are_not_evaluable() -> None:
    outsider = "arn:aws:iam::333333333333:user/outsider"
    decisions = [
        recorded(WEB_DEPLOYER.principal_arn, "web-storefront", allowed=True),
        recorded(outsider, "docs", allowed=False, manifest=False),
    ]
    suspended = simulate(policy({"web": {"suspended": True}}), decisions)
    assert suspended["teams"]["web"]["now_refused"] == 1
    # The outsider is now a docs principal, but its manifest was never read.
    mapped = policy({"docs": {"principals": [DOCS_CI.principal_arn, outsider]}})
    verdict = judge(mapped, decisions[1])
    assert (verdict.allowed, verdict.team) == (None, "docs")
    assert simulate(mapped, decisions)["not_evaluable"] == 1


def test_a_record_without_paths_is_judged_on_the_rest_and_marked_approximate() -> None:
    decision = recorded(DOCS_CI.principal_arn, "docs", allowed=True, paths=None)
    verdict = judge(policy({"docs": {"paths": ["/docs/**"]}}), decision)
    assert (verdict.allowed, verdict.approximate) == (True, True)


def test_paths_pack_small_and_round_trip() -> None:
    paths = [f"/assets/{i // 100}/file-{i}.js" for i in range(20_000)]
    packed = pack_paths(paths)
    assert packed is not None
    assert len(packed) < 300_000
    assert unpack_paths(packed) == tuple(paths)
    assert unpack_paths(pack_paths([]) or b"") == ()
