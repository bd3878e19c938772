"""`Idempotency-Key` on the API door, over HTTP: a retried request gets the first answer without
calling Cloudflare or charging quota again; the same key with another body is 409 19040. The key
is claimed by the request's quota charge (one transaction): a request refused before the charge
claims nothing."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase
from typing import Any

import httpx
import pytest

from assets_gateway.adapters.cloudflare import RetryPolicy
from gateway_local.aws_resources import load_template
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import (
    DOCS_CI,
    PLATFORM_ADMIN,
    WEB_DEPLOYER,
    demo_policy,
)
from gateway_local.stack import LocalStack
from helpers import every_log_record, manifest_of, quota_items, session_url, signed_client


def body(*names: str) -> dict[str, Any]:
    return {"manifest": manifest_of({f"/{name}": name.encode() for name in names})}


def calls(stack: LocalStack) -> int:
    return len(stack.emulator.calls_to("/assets-upload-session"))


def sessions_charged(stack: LocalStack) -> int:
    items = quota_items(stack)
    return sum(int(i["sessions"]["N"]) for i in items if i["pk"]["S"].startswith("team#web#60#"))


class AuditLines:
    """The session door's audit records, as the function logs them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)

    def of(self, request_id: str) -> list[dict[str, Any]]:
        # The handler sits on the root logger and on the gateway's (which propagates): each
        # record arrives twice, hence the dict of distinct lines.
        lines = dict.fromkeys(
            line
            for line in self.stream.getvalue().splitlines()
            if line.startswith("{") and '"audit"' in line
        )
        records = [json.loads(line)["audit"] for line in lines]
        return [record for record in records if record.get("request_id") == request_id]


@pytest.fixture
def audit() -> Iterator[AuditLines]:
    lines = AuditLines()
    with every_log_record(lines.handler):
        yield lines


def admin_post(stack: LocalStack, path: str) -> httpx.Response:
    with signed_client(PLATFORM_ADMIN) as admin:
        answer = admin.post(f"{stack.front_server.url}/admin/{path}", json={"reason": "replays"})
    assert answer.status_code == 200, answer.text
    return answer


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        pytest.param(None, 200, id="a-session"),
        # A final refusal by Cloudflare is remembered too.
        pytest.param(Fault(status=400), 400, id="cloudflare-400"),
    ],
)
def test_a_retry_with_the_same_key_replays_the_first_answer(
    stack: LocalStack, fault: Fault | None, status: int
) -> None:
    key = {"Idempotency-Key": f"deploy-4711-{status}"}
    if fault is not None:
        stack.emulator.inject_fault(fault)
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(session_url(stack), json=body("a.html"), headers=key)
        second = web.post(session_url(stack), json=body("a.html"), headers=key)
    assert first.status_code == second.status_code == status
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert calls(stack) == 1
    assert sessions_charged(stack) == 1


def test_the_same_key_with_another_body_is_409(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4712"}
    with signed_client(WEB_DEPLOYER) as web:
        assert web.post(session_url(stack), json=body("a.html"), headers=key).status_code == 200
        conflict = web.post(session_url(stack), json=body("b.html"), headers=key)
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["code"] == 19040
    assert calls(stack) == 1


def test_keys_belong_to_their_caller(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "shared-name"}
    with signed_client(WEB_DEPLOYER) as web, signed_client(DOCS_CI) as docs:
        assert web.post(session_url(stack), json=body("index.html"), headers=key).status_code == 200
        theirs = docs.post(session_url(stack, "docs"), json=body("index.html"), headers=key)
    assert theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs.headers
    assert calls(stack) == 2


def test_a_retry_while_the_first_request_runs_is_409_then_gets_the_first_answer(
    stack: LocalStack,
) -> None:
    key = {"Idempotency-Key": "deploy-4721"}
    answered = threading.Event()
    stack.emulator.inject_fault(Fault(until=answered))  # Cloudflare still working on the first
    arrived = stack.emulator.received
    with (
        signed_client(WEB_DEPLOYER) as first_client,
        signed_client(WEB_DEPLOYER) as web,
        ThreadPoolExecutor(1) as pool,
    ):
        first = pool.submit(first_client.post, session_url(stack), json=body("a.html"), headers=key)
        try:
            stack.emulator.wait_for_calls(arrived + 1)
            running = web.post(session_url(stack), json=body("a.html"), headers=key)
        finally:
            answered.set()
        first_answer = first.result()
        again = web.post(session_url(stack), json=body("a.html"), headers=key)
    assert running.status_code == 409
    [error] = running.json()["errors"]
    assert error["code"] == 19040
    assert "still running" in error["message"]
    assert first_answer.status_code == 200
    assert again.json() == first_answer.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert calls(stack) == 1
    assert sessions_charged(stack) == 1


def test_answers_worth_retrying_are_not_remembered(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4713"}
    stack.emulator.inject_fault(Fault(status=503, count=RetryPolicy().attempts))
    with signed_client(WEB_DEPLOYER) as web:
        failed = web.post(session_url(stack), json=body("a.html"), headers=key)
        retried = web.post(session_url(stack), json=body("a.html"), headers=key)
    assert failed.status_code == 502
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers
    assert sessions_charged(stack) == 1


def key_records(stack: LocalStack) -> set[str]:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    items = dynamodb.scan(TableName=stack.names.control_table)["Items"]
    return {item["id"]["S"] for item in items if item["id"]["S"].startswith("api-session#")}


def test_a_request_refused_before_its_charge_claims_no_key(stack: LocalStack) -> None:
    """Refused by the policy, it leaves no record: its retry is judged again (the same refusal,
    no replay), and the key stays free for the request the caller meant."""
    key = {"Idempotency-Key": "deploy-4720"}
    before = key_records(stack)
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(session_url(stack, "docs"), json=body("a.html"), headers=key)
        second = web.post(session_url(stack, "docs"), json=body("a.html"), headers=key)
        assert key_records(stack) == before
        meant = web.post(session_url(stack), json=body("b.html"), headers=key)
    assert first.status_code == second.status_code == 403
    assert second.json()["errors"] == first.json()["errors"]
    assert "Idempotent-Replayed" not in second.headers
    assert meant.status_code == 200
    assert len(key_records(stack) - before) == 1
    assert calls(stack) == 1


def test_malformed_keys_are_refused(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as web:
        spaced = web.post(
            session_url(stack), json=body("a"), headers={"Idempotency-Key": "has space"}
        )
        long = web.post(session_url(stack), json=body("a"), headers={"Idempotency-Key": "k" * 256})
    assert spaced.status_code == long.status_code == 400
    assert spaced.json()["errors"][0]["code"] == 19000
    assert calls(stack) == 0


def test_a_replay_is_audited_as_a_decision_of_its_own(stack: LocalStack, audit: AuditLines) -> None:
    key = {"Idempotency-Key": "deploy-4715"}
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(session_url(stack), json=body("a.html"), headers=key)
        again = web.post(session_url(stack), json=body("a.html"), headers=key)
    assert (first.status_code, again.status_code) == (200, 200)
    first_id, replay_id = first.headers["X-Request-Id"], again.headers["X-Request-Id"]
    assert replay_id != first_id
    [replayed] = audit.of(replay_id)
    assert replayed["outcome"] == "replayed"
    assert (replayed["status"], replayed["team"]) == (200, "web")
    assert replayed["replay_of"] == first_id
    assert replayed["principal"] == WEB_DEPLOYER.principal_arn
    assert audit.of(first_id)[0]["outcome"] == "allowed"
    assert calls(stack) == 1


@pytest.mark.parametrize(
    ("refuse", "restore", "status", "audited"),
    [
        # The kill switch stops every request before its caller's team is looked up.
        pytest.param(
            "kill-switch:engage",
            "kill-switch:release",
            503,
            ("stopped", 19013, None),
            id="kill-switch",
        ),
        pytest.param(
            "teams/web:suspend",
            "teams/web:resume",
            403,
            ("refused_caller", 19010, "web"),
            id="team-suspended",
        ),
    ],
)
def test_a_replay_is_refused_while_the_gateway_refuses_the_caller(
    stack: LocalStack,
    audit: AuditLines,
    *,
    refuse: str,
    restore: str,
    status: int,
    audited: tuple[str, int, str | None],
) -> None:
    code = audited[1]
    key = {"Idempotency-Key": f"deploy-{code}"}
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(session_url(stack), json=body("a.html"), headers=key)
        admin_post(stack, refuse)
        refused = web.post(session_url(stack), json=body("a.html"), headers=key)
        admin_post(stack, restore)
        resumed = web.post(session_url(stack), json=body("a.html"), headers=key)
    assert first.status_code == 200
    # The retry gets a refusal of its own, not the first answer (nor its JWT) ...
    assert refused.status_code == status
    assert refused.json()["errors"][0]["code"] == code
    assert first.json()["result"]["jwt"] not in refused.text
    assert "Idempotent-Replayed" not in refused.headers
    # ... audited as that refusal (before the charge, where the key is looked at) ...
    [refusal] = audit.of(refused.headers["X-Request-Id"])
    assert (refusal["outcome"], refusal["code"], refusal["team"]) == audited
    # ... and once the gateway serves the caller again, the retry is the first answer.
    assert resumed.status_code == 200
    assert resumed.json() == first.json()
    assert resumed.headers["Idempotent-Replayed"] == "true"
    assert (
        audit.of(resumed.headers["X-Request-Id"])[0]["replay_of"] == first.headers["X-Request-Id"]
    )
    assert calls(stack) == 1
    assert sessions_charged(stack) == 1


def test_a_replay_is_refused_once_the_caller_left_its_team(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4718"}
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(session_url(stack), json=body("a.html"), headers=key)
        unmapped = demo_policy()
        unmapped["teams"]["web"]["principals"] = ["arn:aws:iam::111111111111:role/someone-else"]
        stack.publish_policy(unmapped)
        nobody = web.post(session_url(stack), json=body("a.html"), headers=key)
        moved = demo_policy()
        moved["teams"]["web"]["principals"] = ["arn:aws:iam::111111111111:role/someone-else"]
        moved["teams"]["docs"]["principals"].append("arn:aws:iam::111111111111:role/web-deployer")
        moved["teams"]["docs"]["scripts"].append("web-*")  # so it reaches the key's record
        moved["teams"]["docs"]["paths"].append("/**")
        stack.publish_policy(moved)
        elsewhere = web.post(session_url(stack), json=body("a.html"), headers=key)
    assert first.status_code == 200
    assert (nobody.status_code, nobody.json()["errors"][0]["code"]) == (403, 19010)
    assert (elsewhere.status_code, elsewhere.json()["errors"][0]["code"]) == (409, 19040)
    assert "team 'web'" in elsewhere.json()["errors"][0]["message"]
    assert calls(stack) == 1


def session_function_keys() -> set[str]:
    """The ControlTable keys template.yaml lets the session function write (LeadingKeys)."""
    statements = load_template()["Resources"]["SessionApiFunction"]["Properties"]["Policies"][0]
    return {
        key
        for statement in statements["Statement"]
        if statement["Resource"] == {"Fn::GetAtt": "ControlTable.Arn"}
        and "dynamodb:PutItem" in statement["Action"]
        for key in statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    }


def test_records_are_kept_under_the_keys_the_template_lets_the_function_use(
    stack: LocalStack,
) -> None:
    """moto enforces no IAM: this holds the keys the door really writes against the template."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)

    def records() -> set[str]:
        items = dynamodb.scan(TableName=stack.names.control_table)["Items"]
        return {item["id"]["S"] for item in items if not item["id"]["S"].startswith("policy#")}

    before = records()
    with signed_client(WEB_DEPLOYER) as web:
        answer = web.post(
            session_url(stack), json=body("k.html"), headers={"Idempotency-Key": "k-4719"}
        )
    assert answer.status_code == 200
    written = records() - before
    assert len(written) == 1
    allowed = session_function_keys()
    assert allowed
    assert all(any(fnmatchcase(key, pattern) for pattern in allowed) for key in written), written
