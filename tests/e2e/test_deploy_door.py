"""The deploy door on the local stack, over real HTTP and SigV4: each Workers call wrangler makes
after the session is governed (team, allow-list, deploy policy, quotas), forwarded with the org's
token exactly as judged, or refused with our codes and every reason before Cloudflare sees it."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from form_bodies import CONTENT_TYPE, form

from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    OUTSIDER,
    PLATFORM_ADMIN,
    WEB_DEPLOYER,
    WEB_NAMESPACE,
    demo_policy,
)
from gateway_local.stack import LocalStack
from helpers import signed_client

SCRIPT = "web-deploy-door"
WORKER_JS = b"export default { fetch() { return new Response('hi'); } };\n"


def script_url(stack: LocalStack, tail: str = "", script: str = SCRIPT) -> str:
    return f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{script}{tail}"


def worker_body(**metadata: Any) -> bytes:
    document = {"main_module": "index.js", "compatibility_date": "2025-01-01", **metadata}
    return form(
        [
            ("metadata", json.dumps(document).encode(), None, None),
            ("index.js", WORKER_JS, "index.js", "application/javascript+module"),
        ]
    )


def upload(client: httpx.Client, stack: LocalStack, body: bytes, **headers: str) -> httpx.Response:
    return client.put(
        script_url(stack),
        params={"bindings_inherit": "strict"},
        content=body,
        headers={"Content-Type": CONTENT_TYPE, **headers},
    )


def errors_of(answer: httpx.Response) -> list[int]:
    return [error["code"] for error in answer.json()["errors"]]


def messages_of(answer: httpx.Response) -> list[str]:
    return [message["message"] for message in answer.json()["messages"]]


def with_web_policy(stack: LocalStack, **changes: Any) -> None:
    policy = demo_policy()
    policy["teams"]["web"].update(changes)
    stack.publish_policy(policy)


@pytest.fixture
def web() -> httpx.Client:
    return signed_client(WEB_DEPLOYER)


def test_a_new_worker_reads_as_cloudflare_answers_with_the_org_token(
    stack: LocalStack, web: httpx.Client
) -> None:
    answer = web.get(f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/services/{SCRIPT}")
    assert answer.status_code == 404
    assert errors_of(answer) == [10007]  # "new Worker" passes through unchanged
    (call,) = stack.emulator.calls
    assert call.headers["authorization"] == f"Bearer {stack.cloudflare_token}"
    assert answer.headers["X-Request-Id"]
    assert "deploy-calls-minute" in answer.headers["RateLimit-Policy"]


def test_a_worker_upload_is_forwarded_byte_for_byte_and_creates_the_worker(
    stack: LocalStack, web: httpx.Client
) -> None:
    body = worker_body(bindings=[{"type": "plain_text", "name": "GREETING", "text": "hi"}])
    answer = upload(web, stack, body)
    assert answer.status_code == 200, answer.text
    (call,) = stack.emulator.calls
    assert (call.method, call.query) == ("PUT", "bindings_inherit=strict")
    assert call.body == body
    assert call.headers["content-type"] == CONTENT_TYPE
    assert answer.json()["result"]["id"] == SCRIPT


def test_a_gzipped_upload_is_judged_inflated_and_forwarded_as_judged(
    stack: LocalStack, web: httpx.Client
) -> None:
    body = worker_body()
    answer = upload(web, stack, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    (call,) = stack.emulator.calls
    assert call.body == body
    assert "content-encoding" not in call.headers


def test_bindings_the_policy_forbids_are_refused_with_every_reason_before_cloudflare(
    stack: LocalStack, web: httpx.Client
) -> None:
    body = worker_body(
        bindings=[
            {"type": "kv_namespace", "name": "CACHE", "namespace_id": "f" * 32},
            {"type": "d1", "name": "DB", "id": "not-listed"},
            {"type": "plain_text", "name": "OK", "text": "fine"},
        ],
        logpush=True,
        tail_consumers=[{"service": "docs"}],
    )
    answer = upload(web, stack, body)
    assert answer.status_code == 403, answer.text
    assert errors_of(answer) == [19062]
    reasons = messages_of(answer)
    assert len(reasons) == 4, reasons
    assert any("CACHE" in reason for reason in reasons)
    assert any("DB" in reason for reason in reasons)
    assert any("logpush" in reason for reason in reasons)
    assert any("docs" in reason for reason in reasons)
    assert stack.emulator.calls == []


def test_a_script_outside_the_team_is_refused_before_cloudflare(
    stack: LocalStack, web: httpx.Client
) -> None:
    read = web.get(f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/services/docs")
    write = web.put(
        script_url(stack, script="docs"),
        content=worker_body(logpush=True),
        headers={"Content-Type": CONTENT_TYPE},
    )
    for answer in (read, write):
        assert answer.status_code == 403, answer.text
        assert errors_of(answer) == [19011]
        assert "may not use script 'docs'" in messages_of(answer)[0]
    # The write's every reason at once: the allow-list's and the deploy policy's.
    assert len(messages_of(write)) == 2
    assert "logpush" in messages_of(write)[1]
    assert "(2 reasons)" in write.json()["errors"][0]["message"]
    assert stack.emulator.calls == []


def test_callers_without_a_team_are_refused(stack: LocalStack) -> None:
    with signed_client(OUTSIDER) as outsider:
        answer = outsider.get(script_url(stack, "/settings"))
    assert answer.status_code == 403
    assert errors_of(answer) == [19010]
    assert stack.emulator.calls == []


def test_workers_dev_is_enabled_only_where_the_policy_allows(stack: LocalStack) -> None:
    with signed_client(DOCS_CI) as docs:
        refused = docs.post(
            script_url(stack, "/subdomain", script="docs"),
            json={"enabled": True, "previews_enabled": False},
        )
        disabled = docs.post(
            script_url(stack, "/subdomain", script="docs"), json={"enabled": False}
        )
    assert refused.status_code == 403, refused.text
    assert errors_of(refused) == [19062]
    assert "workers.dev" in " ".join(messages_of(refused))
    assert disabled.status_code != 403  # turning it off is always allowed (Cloudflare answers)
    assert [call.method for call in stack.emulator.calls] == ["POST"]


def test_a_split_deployment_needs_gradual_deployments(stack: LocalStack, web: httpx.Client) -> None:
    with_web_policy(stack, deploy={"gradual_deployments": False})
    body = {
        "strategy": "percentage",
        "versions": [
            {"version_id": "11111111-1111-4111-8111-111111111111", "percentage": 10},
            {"version_id": "22222222-2222-4222-8222-222222222222", "percentage": 90},
        ],
    }
    answer = web.post(script_url(stack, "/deployments"), json=body)
    assert answer.status_code == 403, answer.text
    assert errors_of(answer) == [19062]
    malformed = web.post(script_url(stack, "/deployments"), json={"strategy": "percentage"})
    assert malformed.status_code == 400
    assert errors_of(malformed) == [19064]
    assert stack.emulator.calls == []


def test_the_deploy_quota_refuses_with_retry_after_and_gives_back_what_was_not_forwarded(
    stack: LocalStack, web: httpx.Client
) -> None:
    with_web_policy(stack, quotas={"deploys_per_hour": 1})
    first = upload(web, stack, worker_body())
    assert first.status_code == 200, first.text
    second = upload(web, stack, worker_body())
    assert second.status_code == 429, second.text
    assert errors_of(second) == [19063]
    assert 60 < int(second.headers["Retry-After"]) <= 3600  # wrangler fails fast on it
    assert '"deploys-hour";r=0' in second.headers["RateLimit"]
    read = web.get(script_url(stack, "/settings"))  # reads are no deploys
    assert read.status_code == 200, read.text
    assert [call.method for call in stack.emulator.calls] == ["PUT", "GET"]


def test_a_refused_write_leaves_the_deploy_quota_as_it_was(
    stack: LocalStack, web: httpx.Client
) -> None:
    with_web_policy(stack, quotas={"deploys_per_hour": 1})
    refused = upload(web, stack, worker_body(logpush=True))
    assert errors_of(refused) == [19062]
    allowed = upload(web, stack, worker_body())
    assert allowed.status_code == 200, allowed.text


def test_dispatch_namespace_uploads_are_governed_too(stack: LocalStack, web: httpx.Client) -> None:
    url = (
        f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/dispatch/namespaces/"
        f"{WEB_NAMESPACE}/scripts/{SCRIPT}"
    )
    refused = web.put(
        url,
        content=worker_body(bindings=[{"type": "queue", "name": "Q", "queue_name": "jobs"}]),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert refused.status_code == 403
    assert errors_of(refused) == [19062]
    outside = web.put(
        url.replace(WEB_NAMESPACE, "other-namespace"),
        content=worker_body(),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert errors_of(outside) == [19011]
    assert stack.emulator.calls == []


def test_calls_the_gateway_does_not_govern_answer_7003_not_10000(
    stack: LocalStack, web: httpx.Client
) -> None:
    answer = web.get(f"{stack.base_url}/memberships")
    assert answer.status_code == 404
    assert errors_of(answer) == [7003]
    assert "account_id" in answer.json()["errors"][0]["message"]
    deleted = web.delete(f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/queues/jobs")
    assert errors_of(deleted) == [7003]
    assert stack.emulator.calls == []


def test_tokens_verify_says_whose_identity_signs(stack: LocalStack, web: httpx.Client) -> None:
    answer = web.get(f"{stack.base_url}/user/tokens/verify")
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"id": "assets-gateway:web", "status": "active"}
    assert "team 'web'" in messages_of(answer)[0]
    with signed_client(OUTSIDER) as outsider:
        refused = outsider.get(f"{stack.base_url}/user/tokens/verify")
    assert errors_of(refused) == [19010]
    assert stack.emulator.calls == []


def test_every_forwarded_deploy_call_counts_in_the_org_budget(
    stack: LocalStack, web: httpx.Client
) -> None:
    before = web.get(f"{stack.base_url}/gateway/usage").json()["result"]["cloudflare_budget"]
    web.get(script_url(stack, "/settings"))
    web.get(f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/subdomain")
    after = web.get(f"{stack.base_url}/gateway/usage").json()["result"]["cloudflare_budget"]
    assert after["used"] - before["used"] == 2


def test_an_admin_replays_deploy_decisions_against_a_proposed_policy(
    stack: LocalStack, web: httpx.Client
) -> None:
    stack.clear_decisions()
    kv = {
        "type": "kv_namespace",
        "name": "CACHE",
        "namespace_id": "0123456789abcdef0123456789abcde0",
    }
    assert upload(web, stack, worker_body(bindings=[kv])).status_code == 200
    assert upload(web, stack, worker_body(logpush=True)).status_code == 403
    web.get(script_url(stack, "/settings"))  # a read: judged by the allow-list, not recorded
    proposed = demo_policy()
    proposed["teams"]["web"]["deploy"] = {"logpush": True}  # and no KV namespaces any more
    with signed_client(PLATFORM_ADMIN) as admin:
        answer = admin.post(
            stack.base_url.removesuffix("/client/v4") + "/admin/policy:simulate",
            json={"policy": proposed},
        )
    assert answer.status_code == 200, answer.text
    report = answer.json()["result"]["teams"]["web"]
    assert (report["decisions"], report["now_refused"], report["now_allowed"]) == (2, 1, 1)
    by_change = {(e["was"], e["now"]): e for e in report["examples"]}
    refused = by_change[("allowed", "refused")]
    assert refused["call"] == "worker_upload"
    assert any("CACHE" in reason for reason in refused["reasons"])
    assert by_change[("refused", "allowed")]["call"] == "worker_upload"
