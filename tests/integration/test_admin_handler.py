"""The admin function with the canonical API Gateway events in events/admin_api/, against moto
over loopback: routing through the greedy /admin/{proxy+} resource, envelopes, and the change
reaching the session pipeline."""

from __future__ import annotations

import json
from typing import Any

from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.stack import LocalStack

EVENTS = REPO_ROOT / "events" / "admin_api"


def invoke(stack: LocalStack, name: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    event = json.loads((EVENTS / f"{name}.json").read_text())
    result = stack.admin_api.lambda_handler(event, lambda_context("AdminApiFunction"))
    headers = {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return result["statusCode"], json.loads(result["body"]), headers


def test_get_policy_answers_the_current_version_with_its_etag(stack: LocalStack) -> None:
    current = stack.policy_history.current()
    assert current is not None
    status, envelope, headers = invoke(stack, "get_policy")
    assert status == 200
    assert envelope["success"] is True
    assert envelope["result"]["version"] == current.version
    assert envelope["result"]["policy"] == current.policy
    assert headers["ETag"] == f'"{current.version}"'


def test_suspend_event_publishes_a_version_the_session_door_then_enforces(
    stack: LocalStack,
) -> None:
    before = stack.policy_history.current()
    assert before is not None
    status, envelope, _ = invoke(stack, "suspend_team")
    assert (status, envelope["result"]["suspended"]) == (200, True)
    after = stack.policy_history.current()
    assert after is not None
    assert after.version == before.version + 1
    assert after.policy["teams"]["docs"]["suspended"] is True
    assert after.reason == "incident 42: docs CI loops on deploy"
    assert after.published_by.endswith("assumed-role/platform-admin/alice")
    session = json.loads((REPO_ROOT / "events" / "session_api" / "create_session.json").read_text())
    session["requestContext"]["identity"]["userArn"] = "arn:aws:iam::222222222222:user/docs-ci"
    session["path"] = session["path"].replace("web-storefront", "docs")
    session["pathParameters"]["script_name"] = "docs"
    result = stack.session_api.lambda_handler(session, lambda_context("SessionApiFunction"))
    refusal = json.loads(result["body"])
    assert (result["statusCode"], refusal["errors"][0]["code"]) == (403, 19010)
    assert "incident 42" in refusal["errors"][0]["message"]


def test_publish_without_if_match_is_428_and_changes_nothing(stack: LocalStack) -> None:
    before = stack.policy_history.current()
    status, envelope, _ = invoke(stack, "publish_without_if_match")
    assert (status, envelope["errors"][0]["code"]) == (428, 19053)
    assert stack.policy_history.current() == before


def test_usage_event_reads_the_team_window(stack: LocalStack) -> None:
    status, envelope, _ = invoke(stack, "usage_of_team")
    assert status == 200
    (team,) = envelope["result"]["teams"]
    assert team["team"] == "web"
    assert [q["name"] for q in team["quotas"]] == ["sessions-minute", "deploy-calls-minute"]
    assert envelope["result"]["cloudflare_budget"]["name"] == "cloudflare-5min"
