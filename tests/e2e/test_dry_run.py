"""`X-Assets-Gateway-Dry-Run: 1`: the decision for the caller's own request, every reason and the
quota state, with nothing forwarded and nothing charged."""

from __future__ import annotations

import httpx
import pytest

from gateway_local.demo import (
    DOCS_CI,
    OUTSIDER,
    WEB_DEPLOYER,
    demo_policy,
)
from gateway_local.stack import LocalStack
from helpers import manifest_of, quota_items, session_url, signed_client

DRY_RUN = {"X-Assets-Gateway-Dry-Run": "1"}


def web_asks_with_dry_run(stack: LocalStack, value: str) -> httpx.Response:
    """The web deployer asks for a session for one 3-byte file, with this dry-run header."""
    with signed_client(WEB_DEPLOYER) as web:
        return web.post(
            session_url(stack),
            json={"manifest": manifest_of({"/a": b"abc"})},
            headers={"X-Assets-Gateway-Dry-Run": value},
        )


def test_allowed_dry_run_forwards_and_charges_nothing(stack: LocalStack) -> None:
    answer = web_asks_with_dry_run(stack, "1")
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert result["dry_run"] is True
    assert result["allowed"] is True
    assert (result["team"], result["entries"], result["bytes"]) == ("web", 1, 3)
    assert result["reasons"] == []
    assert {q["name"] for q in result["quotas"]} >= {"sessions-minute", "cloudflare-5min"}
    assert "RateLimit" in answer.headers
    assert stack.emulator.calls == []
    assert quota_items(stack) == []


def test_dry_run_lists_every_reason_policy_and_quota(stack: LocalStack) -> None:
    policy = demo_policy()
    policy["teams"]["docs"]["quotas"]["entries_per_day"] = 1
    stack.publish_policy(policy)
    files = {"/index.html": b"x", "/secret.txt": b"y"}
    with signed_client(DOCS_CI) as docs:
        answer = docs.post(
            session_url(stack, "web-x"), json={"manifest": manifest_of(files)}, headers=DRY_RUN
        )
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert result["allowed"] is False
    codes = [reason["code"] for reason in result["reasons"]]
    assert codes == [19011, 19011, 19020]
    assert result["reasons"][1]["pointer"] == "/manifest/~1secret.txt"
    assert "entries-day" in result["reasons"][2]["message"]
    assert stack.emulator.calls == []
    assert quota_items(stack) == []


def test_dry_run_reports_refusals_before_the_policy_as_its_decision(stack: LocalStack) -> None:
    with signed_client(OUTSIDER) as outsider:
        nobody = outsider.post(session_url(stack), json={"manifest": {}}, headers=DRY_RUN)
    with signed_client(WEB_DEPLOYER) as web:
        invalid = web.post(
            session_url(stack),
            json={"manifest": {"/a": {"hash": "x!", "size": 1}}},
            headers=DRY_RUN,
        )
    assert nobody.status_code == invalid.status_code == 200
    assert nobody.json()["result"]["allowed"] is False
    assert nobody.json()["result"]["reasons"][0]["code"] == 19010
    assert nobody.json()["result"]["team"] is None
    assert invalid.json()["result"]["reasons"] == [
        {
            "code": 19001,
            "message": "hash must be 1 to 32 lowercase hexadecimal characters",
            "pointer": "/manifest/~1a/hash",
        }
    ]
    assert stack.emulator.calls == []


def test_without_the_header_the_request_is_real(stack: LocalStack) -> None:
    answer = web_asks_with_dry_run(stack, "0")
    assert answer.status_code == 200
    assert "dry_run" not in answer.json()["result"]
    assert len(stack.emulator.calls) == 1


@pytest.mark.parametrize("value", ["yes", "on", "2", "", "tru e", "1, 0"])
def test_a_dry_run_value_the_gateway_does_not_know_is_refused_and_charges_nothing(
    stack: LocalStack, value: str
) -> None:
    answer = web_asks_with_dry_run(stack, value)
    assert answer.status_code == 400
    error = answer.json()["errors"][0]
    assert error["code"] == 19000
    assert "X-Assets-Gateway-Dry-Run must be 1, true, 0 or false" in error["message"]
    assert stack.emulator.calls == []
    assert quota_items(stack) == []


@pytest.mark.parametrize(("value", "dry_run"), [("TRUE", True), ("True", True), ("FALSE", False)])
def test_dry_run_values_are_read_in_any_case(
    stack: LocalStack, value: str, *, dry_run: bool
) -> None:
    answer = web_asks_with_dry_run(stack, value)
    assert answer.status_code == 200
    assert answer.json()["result"].get("dry_run", False) is dry_run
    assert len(stack.emulator.calls) == (0 if dry_run else 1)
