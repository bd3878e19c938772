"""The policy document (data with a schema) and the pure decision over one request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from assets_gateway.domain.manifest import ManifestLimits, parse_manifest, parse_manifest_body
from assets_gateway.domain.policy import MAX_PATH_REASONS, PolicyDocument, SessionTarget, decide

FIXTURES = Path(__file__).parents[1] / "fixtures" / "policies"
ACCOUNT = "0123456789abcdef0123456789abcdef"
OTHER_ACCOUNT = "fedcba9876543210fedcba9876543210"
HASH = "0de3dd5df907418e9730fd2bd747bd5e"


@pytest.fixture(scope="module")
def org() -> PolicyDocument:
    return PolicyDocument.model_validate_json((FIXTURES / "org.json").read_text())


def decision_for(org: PolicyDocument, team: str, target: SessionTarget, paths: dict[str, int]):  # type: ignore[no-untyped-def]
    manifest = parse_manifest(
        {"manifest": {p: {"hash": HASH, "size": s} for p, s in paths.items()}}
    )
    return decide(team, org.teams[team], org.limits_of(team), target, manifest)


def test_assumed_role_sessions_map_to_the_team_of_their_role(org: PolicyDocument) -> None:
    assert org.team_of("arn:aws:sts::111111111111:assumed-role/web-deployer/ci-run-7") == "web"
    assert org.team_of("arn:aws:iam::111111111111:role/web-deployer") == "web"
    assert org.team_of("arn:aws:iam::222222222222:user/docs-ci") == "docs"


def test_unknown_principals_and_other_accounts_map_to_no_team(org: PolicyDocument) -> None:
    assert org.team_of("arn:aws:iam::333333333333:user/outsider") is None
    assert org.team_of("arn:aws:sts::999999999999:assumed-role/web-deployer/x") is None
    assert org.team_of("") is None


def test_allowed_request(org: PolicyDocument) -> None:
    decision = decision_for(org, "web", SessionTarget(ACCOUNT, "web-shop"), {"/a.html": 10})
    assert decision.allowed
    assert decision.reasons == ()


def test_dispatch_namespace_must_match(org: PolicyDocument) -> None:
    allowed = decision_for(org, "web", SessionTarget(ACCOUNT, "web-x", "customer-1"), {"/a": 1})
    denied = decision_for(org, "web", SessionTarget(ACCOUNT, "web-x", "internal"), {"/a": 1})
    assert allowed.allowed
    assert not denied.allowed
    assert "dispatch namespace 'internal'" in denied.reasons[0].message


def test_every_reason_is_reported(org: PolicyDocument) -> None:
    paths = {"/index.html": 10, "/docs/a/b.html": 70, "/secret.txt": 10, "/assets/x/y.css": 20}
    decision = decision_for(org, "docs", SessionTarget(OTHER_ACCOUNT, "web-shop"), paths)
    messages = [reason.message for reason in decision.reasons]
    assert not decision.allowed
    assert any(f"account {OTHER_ACCOUNT}" in m for m in messages)
    assert any("script 'web-shop'" in m for m in messages)
    assert any("4 entries" in m and "at most 3" in m for m in messages)
    assert any("110 bytes" in m and "at most 100" in m for m in messages)
    pointers = {reason.pointer for reason in decision.reasons}
    assert "/manifest/~1docs~1a~1b.html/size" in pointers
    # `*` stays within a segment: /assets/x/y.css is outside /assets/*.css.
    assert {"/manifest/~1secret.txt", "/manifest/~1assets~1x~1y.css"} <= pointers
    assert len(decision.reasons) == 7


def test_a_manifest_forwarded_as_sent_gets_the_same_decision(org: PolicyDocument) -> None:
    # The fast path's packed entries (size first in one entry): every reason, pointers included.
    entries = {
        "/index.html": {"size": 10, "hash": HASH},
        "/docs/a/b.html": {"hash": HASH, "size": 70},
    }
    raw = json.dumps({"manifest": entries}, separators=(",", ":")).encode()
    fast = parse_manifest_body(raw, ManifestLimits(require_full_hash=True))
    assert fast.to_body() is raw
    target = SessionTarget(OTHER_ACCOUNT, "web-shop")
    limits = org.limits_of("docs")
    expected = decide("docs", org.teams["docs"], limits, target, parse_manifest(json.loads(raw)))
    assert decide("docs", org.teams["docs"], limits, target, fast) == expected
    assert "/manifest/~1docs~1a~1b.html/size" in {reason.pointer for reason in expected.reasons}


def test_path_reasons_are_capped_and_summarised(org: PolicyDocument) -> None:
    team = org.teams["docs"]
    paths = {f"/other/{i}": 1 for i in range(25)}
    manifest = parse_manifest(
        {"manifest": {p: {"hash": HASH, "size": s} for p, s in paths.items()}}
    )
    limits = org.limits_of("web")
    decision = decide("docs", team, limits, SessionTarget(ACCOUNT, "docs"), manifest)
    path_reasons = [
        r for r in decision.reasons if r.pointer and r.pointer.startswith("/manifest/~1other")
    ]
    assert len(path_reasons) == MAX_PATH_REASONS
    assert decision.reasons[-1].message == f"and {25 - MAX_PATH_REASONS} more paths outside"


def test_team_limits_override_defaults(org: PolicyDocument) -> None:
    assert org.limits_of("web").max_entries == 20_000
    docs = org.limits_of("docs")
    assert (docs.max_entries, docs.max_bytes, docs.max_file_bytes, docs.require_full_hash) == (
        3,
        100,
        60,
        True,
    )


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("malformed-shared-principal.json", "belongs to one team"),
        ("malformed-bad-account.json", "accounts.0"),
        ("malformed-unknown-field.json", "acounts"),
        ("malformed-no-principals.json", "principals"),
    ],
)
def test_malformed_policies_are_rejected(fixture: str, expected: str) -> None:
    with pytest.raises(ValidationError) as rejected:
        PolicyDocument.model_validate(json.loads((FIXTURES / fixture).read_text()))
    assert expected in str(rejected.value)
