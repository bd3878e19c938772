"""Validation of proposed policies: schema errors with pointers, semantic checks, change summaries,
and the sample policy the README points admins to."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from assets_gateway.domain.deploy_policy import DeployRules
from assets_gateway.domain.policy import (
    Grant,
    KillSwitch,
    Limits,
    PolicyDocument,
    Quotas,
    TeamPolicy,
)
from assets_gateway.domain.policy_check import describe_changes, validate_policy
from gateway_local.demo import demo_policy

SAMPLE = Path(__file__).parents[2] / "policies" / "sample-policy.yaml"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BUDGET = 1000


def check(raw: Any, budget: int = BUDGET):  # type: ignore[no-untyped-def]
    return validate_policy(raw, global_budget=budget, now=NOW)


def grant_to(team: str, **fields: Any) -> dict[str, Any]:
    """A grant of 10 sessions a day until 2030, as a policy file holds it; `fields` override."""
    grant = {
        "team": team,
        "quotas": {"sessions_per_day": 10},
        "reason": "launch",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    return {**grant, **fields}


def pointers(problems: Any) -> list[str | None]:
    return [problem.pointer for problem in problems]


def test_the_demo_policy_is_valid_without_errors() -> None:
    validation = check(demo_policy())
    assert validation.valid
    assert validation.errors == ()


def test_schema_errors_point_at_each_bad_field_in_the_request_body() -> None:
    policy = demo_policy()
    policy["teams"]["web"]["principals"] = ["not-an-arn"]
    policy["teams"]["docs"]["accounts"] = ["XYZ"]
    policy["teams"]["Bad Name"] = policy["teams"].pop("docs")
    policy["surprise"] = 1
    validation = check(policy)
    assert not validation.valid
    found = set(pointers(validation.errors))
    assert "/policy/teams/web/principals/0" in found
    assert "/policy/teams/Bad Name" in found
    assert "/policy/surprise" in found
    by_pointer = {p.pointer: p.message for p in validation.errors}
    assert "IAM role or user ARN" in by_pointer["/policy/teams/web/principals/0"]
    assert "team name 'Bad Name' is invalid" in by_pointer["/policy/teams/Bad Name"]


def test_a_principal_in_two_teams_is_an_error_at_the_second_listing() -> None:
    policy = demo_policy()
    # Same role, once as a role ARN and once as an assumed-role session of it.
    policy["teams"]["docs"]["principals"].append(
        "arn:aws:sts::111111111111:assumed-role/web-deployer/any-session"
    )
    validation = check(policy)
    assert pointers(validation.errors) == ["/policy/teams/docs/principals/1"]
    assert "already in team 'web'" in validation.errors[0].message


def test_a_principal_listed_twice_in_one_team_is_only_a_warning() -> None:
    policy = demo_policy()
    policy["teams"]["web"]["principals"].append(policy["teams"]["web"]["principals"][0])
    validation = check(policy)
    assert validation.valid
    assert "/policy/teams/web/principals/1" in pointers(validation.warnings)


def test_grants_for_unknown_teams_are_errors() -> None:
    policy = demo_policy()
    policy["grants"] = [grant_to("ghosts")]
    validation = check(policy)
    assert pointers(validation.errors) == ["/policy/grants/0/team"]


def test_a_schema_error_does_not_hide_the_semantic_problems_of_the_parts_that_parse() -> None:
    # Given a bad account id (schema) and a grant to a team the policy does not define (semantic)
    policy = demo_policy()
    policy["teams"]["web"]["accounts"] = ["not-hex"]
    policy["teams"]["docs"]["scripts"] = ["docs.site"]
    policy["grants"] = [grant_to("ghosts")]
    # When it is validated, then one answer lists all three, each at its pointer
    validation = check(policy)
    assert not validation.valid
    assert set(pointers(validation.errors)) == {
        "/policy/grants/0/team",
        "/policy/teams/docs/scripts/0",
        "/policy/teams/web/accounts/0",
    }
    assert len(validation.errors) == 3


def test_a_grant_to_a_team_that_fails_its_schema_is_not_called_unknown() -> None:
    policy = demo_policy()
    policy["teams"]["web"]["principals"] = ["not-an-arn"]
    policy["grants"] = [grant_to("web"), grant_to("docs", reason="", expires_at="soon")]
    policy["defaults"] = {"max_entries": -1}
    policy["kill_switch"] = {"engaged": True, "reason": "incident"}
    validation = check(policy)
    found = pointers(validation.errors)
    assert "/policy/teams/web/principals/0" in found
    assert "/policy/defaults/max_entries" in found
    assert {"/policy/grants/1/reason", "/policy/grants/1/expires_at"} <= set(found)
    assert "/policy/grants/0/team" not in found
    # The parts that parse still get their warnings.
    assert "/policy/kill_switch/engaged" in pointers(validation.warnings)


@pytest.mark.parametrize("raw", [[], "policy", None], ids=["list", "string", "null"])
def test_a_document_that_is_not_an_object_is_one_error(raw: Any) -> None:
    validation = check(raw)
    assert not validation.valid
    assert pointers(validation.errors) == ["/policy"]


@pytest.mark.parametrize(
    ("field", "pattern"),
    [("scripts", "web.site"), ("namespaces", "ns/x"), ("paths", "assets/**"), ("paths", "/a//b")],
)
def test_globs_that_can_match_nothing_are_errors(field: str, pattern: str) -> None:
    policy = demo_policy()
    policy["teams"]["web"][field] = ["web-*", pattern] if field == "scripts" else [pattern]
    validation = check(policy)
    index = 1 if field == "scripts" else 0
    assert pointers(validation.errors) == [f"/policy/teams/web/{field}/{index}"]
    assert "matches no" in validation.errors[0].message


def test_quotas_beyond_the_global_budget() -> None:
    policy = demo_policy()
    policy["teams"]["web"]["quotas"]["sessions_per_minute"] = 1200
    policy["teams"]["docs"]["quotas"]["sessions_per_minute"] = 250
    validation = check(policy)
    # Per minute above the whole 5-minute budget can never apply: an error.
    assert pointers(validation.errors) == ["/policy/teams/web/quotas/sessions_per_minute"]
    policy["teams"]["web"]["quotas"]["sessions_per_minute"] = 100
    validation = check(policy)
    assert validation.valid
    # 250 a minute spends 1000 per 5 minutes in 4 minutes; together they ask 1750 > 1000.
    assert "/policy/teams/docs/quotas/sessions_per_minute" in pointers(validation.warnings)
    assert "/policy/teams" in pointers(validation.warnings)
    assert "/policy/teams/web/quotas/sessions_per_minute" not in pointers(validation.warnings)


def test_expired_grants_admins_in_teams_and_an_engaged_kill_switch_are_warnings() -> None:
    policy = demo_policy()
    policy["admins"] = ["arn:aws:iam::222222222222:user/docs-ci"]
    policy["grants"] = [
        {
            "team": "web",
            "quotas": {"sessions_per_minute": 5},
            "reason": "last week",
            "expires_at": "2026-11-01T00:00:00Z",
        }
    ]
    policy["kill_switch"] = {"engaged": True, "reason": "incident"}
    validation = check(policy)
    assert validation.valid
    assert {
        "/policy/admins/0",
        "/policy/grants/0/expires_at",
        "/policy/kill_switch/engaged",
    } <= set(pointers(validation.warnings))


def test_grants_add_to_the_team_quotas_while_active() -> None:
    policy = demo_policy()
    policy["grants"] = [
        {
            "team": "docs",
            "quotas": {"sessions_per_minute": 7, "entries_per_day": 1000},
            "reason": "launch",
            "expires_at": "2026-11-25T13:00:00Z",
        }
    ]
    document = PolicyDocument.model_validate(policy)
    during = document.limits_of("docs", at=NOW).quotas
    after = document.limits_of("docs", at=datetime(2026, 11, 25, 13, 0, tzinfo=UTC)).quotas
    assert (during.sessions_per_minute, during.entries_per_day) == (12, 21_000)
    assert (after.sessions_per_minute, after.entries_per_day) == (5, 20_000)
    assert document.limits_of("web", at=NOW).quotas.sessions_per_minute == 30


def test_changes_name_what_moved() -> None:
    before = PolicyDocument.model_validate(demo_policy())
    raw = copy.deepcopy(demo_policy())
    raw["teams"]["web"]["scripts"] = ["web-*", "shop-*"]
    del raw["teams"]["docs"]
    raw["teams"]["data"] = {"principals": ["arn:aws:iam::444444444444:role/data"]}
    after = PolicyDocument.model_validate(raw)
    changes = describe_changes(before, after)
    assert "team 'data' added" in changes
    assert "team 'docs' removed" in changes
    assert any(c.startswith("team 'web': scripts ['web-*'] → ['web-*', 'shop-*']") for c in changes)
    assert describe_changes(before, before) == ["no change"]
    assert describe_changes(None, after) == ["first policy: 2 teams"]


def test_the_sample_policy_validates_and_uses_every_feature() -> None:
    raw = yaml.safe_load(SAMPLE.read_text())
    validation = check(raw)
    assert validation.errors == ()
    assert validation.valid
    used_team_fields = {field for team in raw["teams"].values() for field in team}
    used_default_fields = set(raw["defaults"])
    assert set(PolicyDocument.model_fields) <= set(raw)
    assert set(TeamPolicy.model_fields) <= used_team_fields
    assert set(Limits.model_fields) <= used_default_fields
    assert set(Grant.model_fields) <= {f for grant in raw["grants"] for f in grant}
    assert set(KillSwitch.model_fields) - {"at"} <= set(raw["kill_switch"])
    used_quota_fields = {f for team in raw["teams"].values() for f in team.get("quotas", {})} | set(
        raw["defaults"]["quotas"]
    )
    assert set(Quotas.model_fields) <= used_quota_fields
    used_deploy_fields = {f for team in raw["teams"].values() for f in team.get("deploy", {})}
    assert set(DeployRules.model_fields) <= set(raw["defaults"]["deploy"])
    assert set(DeployRules.model_fields) <= used_deploy_fields
