"""The API door as teams use it: over HTTP, signed with SigV4, through the local API front, to the
real handler, moto server and the Cloudflare emulator."""

from __future__ import annotations

import base64
import json
import subprocess

import httpx
import pytest

from assets_gateway_client.sigv4 import SigV4Auth
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    OUTSIDER,
    UNLINKED_ACCOUNT_ID,
    WEB_DEPLOYER,
    WEB_NAMESPACE,
    WEB_SCRIPT,
)
from gateway_local.stack import LocalStack
from helpers import (
    HTTP_TIMEOUT,
    aws_session,
    cloudflare_sdk,
    content_hash,
    manifest_of,
    numbered_files,
    session_url,
    signed_client,
)


def test_official_sdk_gets_buckets_and_jwt_through_the_gateway(stack: LocalStack) -> None:
    files = numbered_files(25)
    client = cloudflare_sdk(stack, WEB_DEPLOYER)
    session = client.workers.scripts.assets.upload.create(
        WEB_SCRIPT, account_id=DEMO_ACCOUNT_ID, manifest=manifest_of(files)
    )
    assert session is not None
    assert session.jwt
    hashes = sorted(h for bucket in session.buckets or [] for h in bucket)
    assert hashes == sorted(content_hash(data) for data in files.values())
    forwarded = stack.emulator.calls_to("/assets-upload-session")
    assert len(forwarded) == 1
    assert forwarded[0].headers["authorization"] == f"Bearer {stack.cloudflare_token}"


def test_buckets_upload_to_cloudflare_with_the_session_jwt(stack: LocalStack) -> None:
    files = numbered_files(23, prefix="/upload/f")
    by_hash = {content_hash(data): data for data in files.values()}
    with signed_client(WEB_DEPLOYER) as gateway:
        created = gateway.post(session_url(stack), json={"manifest": manifest_of(files)})
    assert created.status_code == 200, created.text
    result = created.json()["result"]
    assert len(result["buckets"]) > 1

    upload_url = f"{stack.cloudflare_url}/accounts/{DEMO_ACCOUNT_ID}/workers/assets/upload"
    statuses = []
    completion = None
    with httpx.Client(
        headers={"Authorization": f"Bearer {result['jwt']}"}, timeout=HTTP_TIMEOUT
    ) as cloudflare_api:
        for bucket in result["buckets"]:
            parts = [(h, (h, base64.b64encode(by_hash[h]), "text/plain")) for h in bucket]
            uploaded = cloudflare_api.post(upload_url, params={"base64": "true"}, files=parts)
            statuses.append(uploaded.status_code)
            completion = uploaded.json()["result"].get("jwt")
    assert statuses == [202] * (len(result["buckets"]) - 1) + [201]
    assert completion

    with signed_client(WEB_DEPLOYER) as gateway:
        again = gateway.post(session_url(stack), json={"manifest": manifest_of(files)})
    assert again.json()["result"]["buckets"] == []


def test_dispatch_namespace_route(stack: LocalStack) -> None:
    url = (
        f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/dispatch/namespaces/{WEB_NAMESPACE}"
        f"/scripts/{WEB_SCRIPT}/assets-upload-session"
    )
    with signed_client(WEB_DEPLOYER) as gateway:
        answer = gateway.post(url, json={"manifest": manifest_of({"/a.html": b"a"})})
    assert answer.status_code == 200, answer.text
    assert stack.emulator.calls_to("/assets-upload-session")[0].path.endswith(
        f"/dispatch/namespaces/{WEB_NAMESPACE}/scripts/{WEB_SCRIPT}/assets-upload-session"
    )


def test_unsigned_call_is_refused_like_api_gateway(stack: LocalStack) -> None:
    answer = httpx.post(session_url(stack), json={"manifest": {}}, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == 10000
    assert answer.json()["success"] is False
    assert stack.emulator.calls == []


def test_badly_signed_call_is_refused(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as gateway:
        request = gateway.build_request("POST", session_url(stack), json={"manifest": {}})
        signed = next(SigV4Auth.from_session(aws_session(WEB_DEPLOYER)).auth_flow(request))
        signed.stream = httpx.ByteStream(b'{"manifest": {"/x": {"hash": "ab", "size": 1}}}')
        signed.headers["Content-Length"] = str(
            len(b'{"manifest": {"/x": {"hash": "ab", "size": 1}}}')
        )
        answer = httpx.Client(timeout=HTTP_TIMEOUT).send(signed)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == 10000


def test_caller_without_a_team_gets_19010(stack: LocalStack) -> None:
    with signed_client(OUTSIDER) as gateway:
        answer = gateway.post(session_url(stack), json={"manifest": {}})
    assert answer.status_code == 403
    error = answer.json()["errors"][0]
    assert error["code"] == 19010
    assert "arn:aws:iam::333333333333:user/outsider" in error["message"]
    assert stack.emulator.calls == []


def test_request_outside_the_policy_lists_every_reason(stack: LocalStack) -> None:
    files = {"/index.html": b"x", "/private/keys.txt": b"y", "/admin/panel.html": b"z"}
    with signed_client(DOCS_CI) as gateway:
        answer = gateway.post(
            session_url(stack, script="web-storefront", account=UNLINKED_ACCOUNT_ID),
            json={"manifest": manifest_of(files)},
        )
    assert answer.status_code == 403
    envelope = answer.json()
    assert envelope["errors"][0]["code"] == 19011
    messages = [m["message"] for m in envelope["messages"]]
    assert any(UNLINKED_ACCOUNT_ID in m for m in messages)
    assert any("web-storefront" in m for m in messages)
    pointers = {m.get("source", {}).get("pointer") for m in envelope["messages"]}
    assert {"/manifest/~1private~1keys.txt", "/manifest/~1admin~1panel.html"} <= pointers
    assert len(messages) == 4
    assert stack.emulator.calls == []


@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        (b'{"manifest": {"/a": {"hash": "xyz", "size": 1}}}', 400, 19001, "/manifest/~1a/hash"),
        (b'{"manifest": {"/a": {"hash": "ab", "size": -1}}}', 400, 19001, "/manifest/~1a/size"),
        (b'{"manifest": {"/a": {"hash": "ab", "size": 1e12}}}', 400, 19001, "/manifest/~1a/size"),
        (b'{"manifest": {"a.html": {"hash": "ab", "size": 1}}}', 400, 19001, "/manifest/a.html"),
        (
            b'{"manifest": {"/a/../b": {"hash": "ab", "size": 1}}}',
            400,
            19001,
            "/manifest/~1a~1..~1b",
        ),
        (
            b'{"manifest": {"/a\\u0007": {"hash": "ab", "size": 1}}}',
            400,
            19001,
            "/manifest/~1a\x07",
        ),
        (b"not json", 400, 19000, None),
        (b'["manifest"]', 400, 19000, None),
    ],
)
def test_invalid_manifests_get_400_with_a_pointer(
    stack: LocalStack, body: bytes, status: int, code: int, pointer: str | None
) -> None:
    with signed_client(WEB_DEPLOYER) as gateway:
        answer = gateway.post(
            session_url(stack), content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == status
    error = answer.json()["errors"][0]
    assert error["code"] == code
    assert error.get("source", {}).get("pointer") == pointer
    assert stack.emulator.calls == []


def test_too_many_entries_gets_413(stack: LocalStack) -> None:
    files = numbered_files(1_001)
    with signed_client(DOCS_CI) as gateway:
        answer = gateway.post(
            session_url(stack, script="docs"),
            json={
                "manifest": {
                    p.replace("/assets/", "/docs/"): e for p, e in manifest_of(files).items()
                }
            },
        )
    # The docs team may send 1,000 entries: its policy refuses the 1,001st.
    assert answer.status_code == 403
    assert "1001 entries" in answer.json()["messages"][0]["message"]

    oversized = {f"/f{i}": {"hash": "ab", "size": 1} for i in range(100_001)}
    with signed_client(WEB_DEPLOYER) as gateway:
        answer = gateway.post(session_url(stack), json={"manifest": oversized})
    assert answer.status_code == 413
    assert answer.json()["errors"][0]["code"] == 19002


def test_wrong_content_type_is_refused(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as gateway:
        answer = gateway.post(session_url(stack), data={"manifest": "x"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == 19000


def test_cloudflare_4xx_passes_through_unchanged(stack: LocalStack) -> None:
    body = json.dumps({"manifest": manifest_of({"/a.html": b"a"})}).encode()
    with signed_client(WEB_DEPLOYER) as gateway:
        through_gateway = gateway.post(
            session_url(stack, account=UNLINKED_ACCOUNT_ID),
            content=body,
            headers={"Content-Type": "application/json"},
        )
    direct = httpx.post(
        f"{stack.cloudflare_url}/accounts/{UNLINKED_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}"
        "/assets-upload-session",
        content=body,
        headers={"Authorization": f"Bearer {stack.cloudflare_token}"},
        timeout=HTTP_TIMEOUT,
    )
    assert direct.status_code == 403
    assert through_gateway.status_code == direct.status_code
    assert through_gateway.content == direct.content


def test_unknown_route_is_refused_as_cloudflare_does_not_as_a_bad_token(stack: LocalStack) -> None:
    """Under /client/v4 an unknown path is Cloudflare's 404 7003 (the deploy function's
    catch-all), never API Gateway's 403 10000, which wrangler would take for a bad token;
    outside /client/v4 it stays API Gateway's own refusal."""
    with signed_client(WEB_DEPLOYER) as gateway:
        answer = gateway.get(f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts")
        outside = gateway.get(stack.base_url.removesuffix("/client/v4") + "/elsewhere")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == 7003
    assert outside.status_code == 403
    assert outside.json()["errors"][0]["message"] == "Missing Authentication Token"
    assert stack.emulator.calls == []


def test_curl_aws_sigv4(stack: LocalStack) -> None:
    body = json.dumps({"manifest": manifest_of({"/curl.html": b"curl"})})
    completed = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--aws-sigv4",
            "aws:amz:us-east-1:execute-api",
            "--user",
            f"{WEB_DEPLOYER.access_key_id}:{WEB_DEPLOYER.secret_access_key}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
            "--write-out",
            "\n%{http_code}",
            session_url(stack),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    payload, status = completed.stdout.rsplit("\n", 1)
    assert status == "200", payload
    assert json.loads(payload)["result"]["buckets"] == [[content_hash(b"curl")]]
