"""`Idempotency-Key` on the API door, over HTTP: a retried request gets the first answer without
calling Cloudflare or charging quota again; the same key with another body is 409 19040."""

from __future__ import annotations

from typing import Any

from assets_gateway.cloudflare import RetryPolicy
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_CI, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack
from helpers import manifest_of, signed_client


def url(stack: LocalStack, script: str = WEB_SCRIPT) -> str:
    account = f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}"
    return f"{account}/workers/scripts/{script}/assets-upload-session"


def body(*names: str) -> dict[str, Any]:
    return {"manifest": manifest_of({f"/{name}": name.encode() for name in names})}


def calls(stack: LocalStack) -> int:
    return len(stack.emulator.calls_to("/assets-upload-session"))


def sessions_charged(stack: LocalStack) -> int:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    items = dynamodb.scan(TableName=stack.names.quota_table)["Items"]
    return sum(int(i["sessions"]["N"]) for i in items if i["pk"]["S"].startswith("team#web#60#"))


def test_a_retry_with_the_same_key_replays_the_first_answer(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4711"}
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(url(stack), json=body("a.html"), headers=key)
        second = web.post(url(stack), json=body("a.html"), headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert calls(stack) == 1
    assert sessions_charged(stack) == 1


def test_the_same_key_with_another_body_is_409(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4712"}
    with signed_client(WEB_DEPLOYER) as web:
        assert web.post(url(stack), json=body("a.html"), headers=key).status_code == 200
        conflict = web.post(url(stack), json=body("b.html"), headers=key)
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["code"] == 19040
    assert calls(stack) == 1


def test_keys_belong_to_their_caller(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "shared-name"}
    with signed_client(WEB_DEPLOYER) as web, signed_client(DOCS_CI) as docs:
        assert web.post(url(stack), json=body("index.html"), headers=key).status_code == 200
        theirs = docs.post(url(stack, "docs"), json=body("index.html"), headers=key)
    assert theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs.headers
    assert calls(stack) == 2


def test_answers_worth_retrying_are_not_remembered(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4713"}
    stack.emulator.inject_fault(Fault(status=503, count=RetryPolicy().attempts))
    with signed_client(WEB_DEPLOYER) as web:
        failed = web.post(url(stack), json=body("a.html"), headers=key)
        retried = web.post(url(stack), json=body("a.html"), headers=key)
    assert failed.status_code == 502
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers
    assert sessions_charged(stack) == 1


def test_final_refusals_are_remembered_too(stack: LocalStack) -> None:
    key = {"Idempotency-Key": "deploy-4714"}
    with signed_client(WEB_DEPLOYER) as web:
        first = web.post(url(stack, "docs"), json=body("a.html"), headers=key)
        second = web.post(url(stack, "docs"), json=body("a.html"), headers=key)
    assert first.status_code == second.status_code == 403
    assert second.headers["Idempotent-Replayed"] == "true"


def test_malformed_keys_are_refused(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as web:
        spaced = web.post(url(stack), json=body("a"), headers={"Idempotency-Key": "has space"})
        long = web.post(url(stack), json=body("a"), headers={"Idempotency-Key": "k" * 256})
    assert spaced.status_code == long.status_code == 400
    assert spaced.json()["errors"][0]["code"] == 19000
    assert calls(stack) == 0
