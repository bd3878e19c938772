"""The S3 door end to end on loopback: manifests put into moto's S3 over HTTP, the real S3 → SQS
notification, the SQS event Lambda would deliver, the real handler, the Cloudflare emulator."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any
from urllib.parse import unquote_plus

import pytest

from assets_gateway.cloudflare import RetryPolicy
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_SCRIPT, demo_policy
from gateway_local.sqs_poller import Batch
from gateway_local.stack import MAX_RECEIVE_COUNT, LocalStack
from helpers import content_hash, manifest_of, numbered_files

EVENTS = REPO_ROOT / "events" / "manifest_events"
UPSTREAM_ATTEMPTS = RetryPolicy().attempts


def key_for(name: str, team: str = "web", account: str = DEMO_ACCOUNT_ID) -> str:
    return f"incoming/{team}/{account}/{WEB_SCRIPT}/{name}"


def result_key(key: str) -> str:
    return "results/" + key.removeprefix("incoming/").removesuffix(".gz")


def unique(name: str) -> str:
    return f"{uuid.uuid4().hex[:8]}-{name}"


def put(stack: LocalStack, key: str, body: bytes | dict[str, Any]) -> str:
    s3 = stack.aws.client("s3", endpoint_url=stack.moto.endpoint_url)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    version: str = s3.put_object(Bucket=stack.names.manifest_bucket, Key=key, Body=data)[
        "VersionId"
    ]
    return version


def result(stack: LocalStack, key: str) -> tuple[int, dict[str, Any]] | None:
    s3 = stack.aws.client("s3", endpoint_url=stack.moto.endpoint_url)
    try:
        answer = s3.get_object(Bucket=stack.names.manifest_bucket, Key=result_key(key))
    except s3.exceptions.NoSuchKey:
        return None
    return int(answer["Metadata"]["status"]), json.loads(answer["Body"].read())


def deliver(stack: LocalStack) -> Batch:
    """One batch from the queue to the handler, as Lambda's event source mapping does."""
    batch = stack.manifest_poller.poll_once()
    assert batch.received > 0
    return batch


def gateway_events(stack: LocalStack) -> list[dict[str, Any]]:
    sqs = stack.aws.client("sqs", endpoint_url=stack.moto.endpoint_url)
    messages = sqs.receive_message(QueueUrl=stack.queues.events_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def session_calls(stack: LocalStack) -> int:
    return len(stack.emulator.calls_to("/assets-upload-session"))


def manifest(count: int = 3) -> dict[str, Any]:
    return {"manifest": manifest_of(numbered_files(count))}


def test_uploaded_manifests_get_their_session_as_a_result_object(stack: LocalStack) -> None:
    keys = [key_for(unique("site.json")), key_for(unique("docs.json"))]
    for key in keys:
        put(stack, key, manifest())
    batch = deliver(stack)
    assert batch.failed == frozenset()
    for key in keys:
        found = result(stack, key)
        assert found is not None
        status, envelope = found
        assert status == 200
        assert envelope["success"] is True
        assert envelope["result"]["jwt"]
        assert sorted(h for b in envelope["result"]["buckets"] for h in b) == sorted(
            content_hash(data) for data in numbered_files(3).values()
        )
    assert session_calls(stack) == 2
    events = gateway_events(stack)
    assert sorted(e["detail"]["key"] for e in events) == sorted(keys)
    assert {e["detail-type"] for e in events} == {"AssetsUploadSessionCreated"}
    assert all("jwt" not in json.dumps(e) for e in events)


def test_the_same_batch_delivered_twice_calls_cloudflare_once_per_manifest(
    stack: LocalStack,
) -> None:
    keys = [key_for(unique("a.json")), key_for(unique("b.json"))]
    for key in keys:
        put(stack, key, manifest())
    batch = deliver(stack)
    assert session_calls(stack) == 2
    again = invoke(stack, batch.event)
    assert again == {"batchItemFailures": []}
    assert session_calls(stack) == 2
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    items = dynamodb.scan(TableName=stack.names.quota_table)["Items"]
    minute = [i for i in items if i["pk"]["S"].startswith("team#web#60#")]
    assert sum(int(i["sessions"]["N"]) for i in minute) == 2


def test_sample_duplicate_event_is_processed_once(stack: LocalStack) -> None:
    event = localised(stack, "duplicate")
    assert invoke(stack, event) == {"batchItemFailures": []}
    assert session_calls(stack) == 1


def invoke(stack: LocalStack, event: dict[str, Any]) -> Any:
    return stack.manifest_events.lambda_handler(event, lambda_context("manifest-events"))


def localised(stack: LocalStack, name: str) -> dict[str, Any]:
    """A sample event of events/ pointed at the local bucket, each key put there once (the
    sample's version ids are replaced by the real ones)."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    versions: dict[str, str] = {}
    for record in event["Records"]:
        body = json.loads(record["body"])
        for s3_record in body.get("Records", []):
            s3_record["s3"]["bucket"]["name"] = stack.names.manifest_bucket
            described = s3_record["s3"]["object"]
            key = unquote_plus(described["key"])
            if key not in versions:
                versions[key] = put(stack, key, manifest())
            described["versionId"] = versions[key]
        record["body"] = json.dumps(body)
    return event


def test_sample_url_encoded_key_with_spaces_and_plus(stack: LocalStack) -> None:
    event = localised(stack, "url_encoded_key")
    assert invoke(stack, event) == {"batchItemFailures": []}
    key = key_for("release 2026+11/build 43+final.json")
    found = result(stack, key)
    assert found is not None
    assert found[0] == 200


def test_sample_test_event_is_ignored(stack: LocalStack) -> None:
    event = json.loads((EVENTS / "test_event.json").read_text())
    assert invoke(stack, event) == {"batchItemFailures": []}
    assert stack.emulator.calls == []


def test_refused_manifest_writes_the_refusal_and_is_not_retried(stack: LocalStack) -> None:
    key = key_for(unique("bad.json"))
    put(stack, key, {"manifest": {"/a": {"hash": "not-hex", "size": 1}}})
    batch = deliver(stack)
    assert batch.failed == frozenset()
    found = result(stack, key)
    assert found is not None
    status, envelope = found
    assert status == 400
    assert envelope["errors"][0]["code"] == 19001
    assert envelope["errors"][0]["source"]["pointer"] == "/manifest/~1a/hash"
    assert stack.manifest_poller.poll_once().received == 0
    assert [e["detail-type"] for e in gateway_events(stack)] == ["AssetsUploadSessionRefused"]


def test_upstream_503_fails_only_that_record(stack: LocalStack) -> None:
    first, second = key_for(unique("first.json")), key_for(unique("second.json"))
    put(stack, first, manifest())
    put(stack, second, manifest())
    # Every attempt the upstream client makes for the first record fails.
    stack.emulator.inject_fault(Fault(status=503, count=UPSTREAM_ATTEMPTS))
    batch = deliver(stack)
    assert batch.received == 2
    assert len(batch.failed) == 1
    statuses = {key: result(stack, key) for key in (first, second)}
    assert sorted(found is None for found in statuses.values()) == [False, True]
    # The failed record comes back and succeeds; its refunded quota is charged once more.
    retry = deliver(stack)
    assert (retry.received, retry.failed) == (1, frozenset())
    assert all(result(stack, key) is not None for key in (first, second))


def test_after_the_last_attempt_the_failure_is_written_and_the_record_dead_letters(
    stack: LocalStack,
) -> None:
    key = key_for(unique("doomed.json"))
    put(stack, key, manifest())
    stack.emulator.inject_fault(Fault(status=503, count=MAX_RECEIVE_COUNT * UPSTREAM_ATTEMPTS))
    for attempt in range(1, MAX_RECEIVE_COUNT + 1):
        batch = deliver(stack)
        assert len(batch.failed) == 1, attempt
        written = result(stack, key)
        assert (written is None) == (attempt < MAX_RECEIVE_COUNT)
    found = result(stack, key)
    assert found is not None
    assert (found[0], found[1]["errors"][0]["code"]) == (502, 19031)
    assert stack.manifest_poller.poll_once().received == 0
    sqs = stack.aws.client("sqs", endpoint_url=stack.moto.endpoint_url)
    dead = sqs.receive_message(QueueUrl=stack.queues.dead_letter_url).get("Messages", [])
    assert len(dead) == 1
    assert session_calls(stack) == MAX_RECEIVE_COUNT * UPSTREAM_ATTEMPTS


@pytest.mark.parametrize(("team", "suspend"), [("nobody", False), ("docs", True)])
def test_unknown_or_suspended_team_prefix_is_refused_and_nothing_forwarded(
    stack: LocalStack, team: str, suspend: bool
) -> None:
    if suspend:
        policy = demo_policy()
        policy["teams"]["docs"]["suspended"] = True
        stack.publish_policy(policy)
    key = key_for(unique("m.json"), team=team)
    put(stack, key, manifest())
    assert deliver(stack).failed == frozenset()
    found = result(stack, key)
    assert found is not None
    assert (found[0], found[1]["errors"][0]["code"]) == (403, 19010)
    assert stack.emulator.calls == []


def test_gzipped_manifests_are_read(stack: LocalStack) -> None:
    key = key_for(unique("site.json.gz"))
    body = json.dumps(manifest(5)).encode()
    # Two gzip members (RFC 1952 §2.2: concatenated streams are one file), then zero padding.
    put(stack, key, gzip.compress(body[:40]) + gzip.compress(body[40:]) + b"\0" * 8)
    assert deliver(stack).failed == frozenset()
    found = result(stack, key)
    assert found is not None
    assert found[0] == 200


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (gzip.compress(b" " * (65 * 1024 * 1024)), 19002),  # a 64 KiB object inflating to 65 MiB
        (b"\x1f\x8b\x08\x00not gzip at all", 19000),
        (gzip.compress(b'{"manifest": {}}') + b"garbage", 19000),  # bytes after the last member
        # 64 KiB inflating to 64 MiB of values no manifest holds: refused before any is built.
        (gzip.compress(b'{"manifest":{},"x":[' + b"{}," * (21 * 1024 * 1024) + b"{}]}"), 19002),
    ],
)
def test_bad_gzip_is_refused_permanently(stack: LocalStack, payload: bytes, code: int) -> None:
    key = key_for(unique("bomb.json.gz"))
    put(stack, key, payload)
    assert deliver(stack).failed == frozenset()
    found = result(stack, key)
    assert found is not None
    assert found[1]["errors"][0]["code"] == code
    assert stack.emulator.calls == []


def test_result_objects_never_hold_the_token(stack: LocalStack) -> None:
    key = key_for(unique("leak.json"))
    put(stack, key, manifest())
    token = stack.cloudflare_token
    stack.emulator.inject_fault(
        Fault(
            status=400,
            body=json.dumps({"success": False, "errors": [{"code": 1, "message": token}]}).encode(),
        )
    )
    deliver(stack)
    s3 = stack.aws.client("s3", endpoint_url=stack.moto.endpoint_url)
    stored = s3.get_object(Bucket=stack.names.manifest_bucket, Key=result_key(key))["Body"].read()
    assert token.encode() not in stored
    assert b"[REDACTED]" in stored
    assert all(token not in json.dumps(e) for e in gateway_events(stack))
