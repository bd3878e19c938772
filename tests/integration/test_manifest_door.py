"""The S3 door end to end on loopback: manifests put into moto's S3 over HTTP, the real S3 → SQS
notification, the SQS event Lambda would deliver, the real handler, the Cloudflare emulator."""

from __future__ import annotations

import gzip
import json
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any
from urllib.parse import unquote_plus

import pytest

from assets_gateway.adapters.cloudflare import RetryPolicy
from assets_gateway.domain.manifest_objects import ManifestObject, read_notification
from assets_gateway.doors.s3 import Disposition
from assets_gateway.lambda_glue.settings import ManifestDoorSettings
from assets_gateway.lambda_glue.wiring import build_manifest_door
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REGION, REPO_ROOT, local_aws_session
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_CI, WEB_DEPLOYER, WEB_SCRIPT, demo_policy
from gateway_local.put_manifest import writer_tagging
from gateway_local.sqs_poller import Batch, lambda_sqs_event
from gateway_local.stack import MANIFEST_RETENTION_SECONDS, MAX_RECEIVE_COUNT, LocalStack
from helpers import content_hash, manifest_of, numbered_files

EVENTS = REPO_ROOT / "events" / "manifest_events"
UPSTREAM_ATTEMPTS = RetryPolicy().attempts


def key_for(name: str, team: str = "web", account: str = DEMO_ACCOUNT_ID) -> str:
    return f"incoming/{team}/{account}/{WEB_SCRIPT}/{name}"


def result_key(key: str) -> str:
    return "results/" + key.removeprefix("incoming/").removesuffix(".gz")


def unique(name: str) -> str:
    return f"{uuid.uuid4().hex[:8]}-{name}"


WRITERS = {"web": WEB_DEPLOYER.principal_arn, "docs": DOCS_CI.principal_arn}


def put(
    stack: LocalStack, key: str, body: bytes | dict[str, Any], *, writer: str | None = None
) -> str:
    """Upload as a team member would: tagged with the writer (the bucket policy's demand)."""
    s3 = stack.aws.client("s3", endpoint_url=stack.moto.endpoint_url)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    writer = writer or WRITERS.get(key.split("/")[1], WEB_DEPLOYER.principal_arn)
    version: str = s3.put_object(
        Bucket=stack.names.manifest_bucket, Key=key, Body=data, Tagging=writer_tagging(writer)
    )["VersionId"]
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


# --- Hardening (issue 12): stale results, forged notifications, writers, quota waits, poison ---

WEB_RELEASE = "arn:aws:iam::111111111111:role/web-release"


def s3_client(stack: LocalStack) -> Any:
    return stack.aws.client("s3", endpoint_url=stack.moto.endpoint_url)


def sqs_client(stack: LocalStack) -> Any:
    return stack.aws.client("sqs", endpoint_url=stack.moto.endpoint_url)


def receive_all(stack: LocalStack, expected: int) -> list[Any]:
    """Every waiting notification, as one list (the test chooses the order of delivery)."""
    messages: list[Any] = []
    while len(messages) < expected:
        batch = sqs_client(stack).receive_message(
            QueueUrl=stack.queues.manifest_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        assert batch.get("Messages"), f"{len(messages)} of {expected} notifications arrived"
        messages.extend(batch["Messages"])
    return messages


def discard_notifications(stack: LocalStack, count: int) -> None:
    """Take S3's own notifications off the queue (the test sends its own instead)."""
    messages = receive_all(stack, expected=count)
    sqs_client(stack).delete_message_batch(
        QueueUrl=stack.queues.manifest_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ],
    )


def handle(stack: LocalStack, messages: list[Any]) -> set[str]:
    """One Lambda invocation with these messages in this order; deletes those that succeeded,
    as the event source mapping does. Returns the failed message ids."""
    event = lambda_sqs_event(messages, stack.queues.manifest_arn, REGION)
    answer = invoke(stack, event)
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs_client(stack).delete_message_batch(
            QueueUrl=stack.queues.manifest_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )
    return failed


def stored_result(stack: LocalStack, key: str) -> tuple[dict[str, Any], dict[str, str], str]:
    answer = s3_client(stack).get_object(Bucket=stack.names.manifest_bucket, Key=result_key(key))
    return json.loads(answer["Body"].read()), answer["Metadata"], answer["ETag"]


def status_of(stack: LocalStack, key: str) -> int | None:
    found = result(stack, key)
    return None if found is None else found[0]


def hashes_of(envelope: dict[str, Any]) -> list[str]:
    return sorted(h for bucket in envelope["result"]["buckets"] for h in bucket)


def expected_hashes(count: int) -> list[str]:
    return sorted(content_hash(data) for data in numbered_files(count).values())


def metrics_in(output: str) -> Counter[str]:
    """The metrics the handler emitted (Powertools prints CloudWatch EMF lines to stdout)."""
    counted: Counter[str] = Counter()
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for definition in document["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = document[metric["Name"]]
                counted[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return counted


def web_policy(**changes: Any) -> dict[str, Any]:
    policy = demo_policy()
    policy["teams"]["web"].update(changes)
    return policy


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_ten_overwrites_delivered_out_of_order_end_with_the_latest_versions_result(
    stack: LocalStack, order: str
) -> None:
    """Finding 5: a result never goes backwards, whatever order the notifications arrive in."""
    key = key_for(unique("overwritten.json"))
    versions = [put(stack, key, manifest(count)) for count in range(1, 11)]
    messages = receive_all(stack, expected=10)
    # The local delivery names each version and a sequencer that grows with each PUT, as S3's.
    described = [json.loads(m["Body"])["Records"][0]["s3"]["object"] for m in messages]
    assert sorted(d["versionId"] for d in described) == sorted(versions)
    by_version = {d["versionId"]: d["sequencer"] for d in described}
    sequencers = [by_version[v] for v in versions]
    assert sequencers == sorted(sequencers, key=lambda s: s.zfill(64))
    if order == "reversed":
        messages.sort(
            key=lambda m: versions.index(
                json.loads(m["Body"])["Records"][0]["s3"]["object"]["versionId"]
            ),
            reverse=True,
        )
    else:
        random.Random(5).shuffle(messages)
    assert handle(stack, messages) == set()
    envelope, metadata, _ = stored_result(stack, key)
    assert metadata["source-version"] == versions[-1]
    assert envelope["source"] == {
        "key": key,
        "version_id": versions[-1],
        "sequencer": sequencers[-1],
    }
    assert hashes_of(envelope) == expected_hashes(10)
    # Superseded versions are not even run: one session, for the latest version.
    assert session_calls(stack) == 1


def test_a_retry_after_an_upstream_failure_does_not_overwrite_a_newer_result(
    stack: LocalStack,
) -> None:
    key = key_for(unique("retried.json"))
    first = put(stack, key, manifest(1))
    stack.emulator.inject_fault(Fault(status=503, count=UPSTREAM_ATTEMPTS))
    assert len(deliver(stack).failed) == 1  # put #1 fails upstream and goes back to the queue
    second = put(stack, key, manifest(2))
    messages = receive_all(stack, expected=2)
    by_version = {
        json.loads(m["Body"])["Records"][0]["s3"]["object"]["versionId"]: m for m in messages
    }
    # The newer version is answered first, then the retry of the older one arrives.
    assert handle(stack, [by_version[second], by_version[first]]) == set()
    envelope, metadata, _ = stored_result(stack, key)
    assert (metadata["source-version"], hashes_of(envelope)) == (second, expected_hashes(2))
    assert session_calls(stack) == UPSTREAM_ATTEMPTS + 1


def test_the_same_content_uploaded_twice_is_answered_for_each_version(stack: LocalStack) -> None:
    """Finding 19c: local notifications name the version, so an identical re-upload is a new
    version to answer, not a duplicate of the first (moto's own notifications carry no version)."""
    key = key_for(unique("same.json"))
    first = put(stack, key, manifest(3))
    assert deliver(stack).failed == frozenset()
    assert stored_result(stack, key)[1]["source-version"] == first
    second = put(stack, key, manifest(3))
    assert deliver(stack).failed == frozenset()
    assert stored_result(stack, key)[1]["source-version"] == second
    assert session_calls(stack) == 2


def forged(
    stack: LocalStack, key: str, version_id: str, sequencer: str = "FFFFFFFFFFFFFFFF"
) -> dict[str, Any]:
    """A notification body as anyone with sqs:SendMessage could write it."""
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AROAFORGER:mallory"},
                "s3": {
                    "bucket": {"name": stack.names.manifest_bucket},
                    "object": {"key": key, "versionId": version_id, "sequencer": sequencer},
                },
            }
        ]
    }


def send(stack: LocalStack, body: dict[str, Any] | str) -> None:
    sqs_client(stack).send_message(
        QueueUrl=stack.queues.manifest_url,
        MessageBody=body if isinstance(body, str) else json.dumps(body),
    )


def forget_processed_versions(stack: LocalStack) -> None:
    """As if the idempotency records had expired (moto's TTL never does)."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.names.control_table):
        for item in page["Items"]:
            if item["id"]["S"].startswith("manifest-object#"):
                dynamodb.delete_item(TableName=stack.names.control_table, Key={"id": item["id"]})


def test_forged_notifications_change_no_result_and_never_rerun(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 8: a bogus version is rejected (no result overwritten with an error), and a
    notification for a version already answered never runs again, even once its idempotency
    record is gone, so nobody re-runs (and charges) another team's manifest."""
    key = key_for(unique("victim.json"))
    old = put(stack, key, manifest(1))
    current = put(stack, key, manifest(2))
    assert deliver(stack).failed == frozenset()
    capsys.readouterr()
    before = stored_result(stack, key)
    assert before[1]["source-version"] == current
    calls = session_calls(stack)
    forget_processed_versions(stack)
    send(stack, forged(stack, key, "bogus-version-id"))
    send(stack, forged(stack, key, current))
    send(stack, forged(stack, key, old))
    while (batch := stack.manifest_poller.poll_once()).received:
        assert batch.failed == frozenset()
    assert stored_result(stack, key) == before
    assert session_calls(stack) == calls
    emitted = metrics_in(capsys.readouterr().out)
    assert emitted["NotificationRejected"] == 1
    assert emitted["ManifestAlreadyAnswered"] == 1
    assert emitted["ManifestSuperseded"] == 1


def test_the_caller_is_the_objects_writer_checked_against_the_policy(stack: LocalStack) -> None:
    """Finding 9: a role removed from the team's principals is refused while another member
    still passes; a team removed from the policy is refused; an untagged object is refused."""
    stack.publish_policy(
        web_policy(principals=["arn:aws:iam::111111111111:role/web-deployer", WEB_RELEASE])
    )
    by_deployer, by_release = key_for(unique("deployer.json")), key_for(unique("release.json"))
    put(stack, by_deployer, manifest(), writer=WEB_DEPLOYER.principal_arn)
    put(stack, by_release, manifest(), writer=WEB_RELEASE)
    assert deliver(stack).failed == frozenset()
    assert [status_of(stack, k) for k in (by_deployer, by_release)] == [200, 200]

    stack.publish_policy(web_policy(principals=[WEB_RELEASE]))  # the deployer is compromised
    removed, member = key_for(unique("removed.json")), key_for(unique("member.json"))
    untagged, other_team = key_for(unique("untagged.json")), key_for(unique("docs-writer.json"))
    put(stack, removed, manifest(), writer=WEB_DEPLOYER.principal_arn)
    put(stack, member, manifest(), writer=WEB_RELEASE)
    put(stack, other_team, manifest(), writer=DOCS_CI.principal_arn)
    s3_client(stack).put_object(
        Bucket=stack.names.manifest_bucket, Key=untagged, Body=json.dumps(manifest()).encode()
    )
    assert deliver(stack).failed == frozenset()
    outcomes = {k: result(stack, k) for k in (removed, member, untagged, other_team)}
    assert status_of(stack, member) == 200
    for refused in (removed, untagged, other_team):
        found = outcomes[refused]
        assert found is not None
        assert (found[0], found[1]["errors"][0]["code"]) == (403, 19010), refused

    policy = demo_policy()
    del policy["teams"]["web"]
    stack.publish_policy(policy)
    gone = key_for(unique("team-gone.json"))
    put(stack, gone, manifest(), writer=WEB_RELEASE)
    assert deliver(stack).failed == frozenset()
    found = result(stack, gone)
    assert found is not None
    assert (found[0], found[1]["errors"][0]["code"]) == (403, 19010)
    assert session_calls(stack) == 3


def test_quota_refusals_wait_for_retry_after_without_using_up_receives(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 6: a manifest refused for quota is held until its Retry-After (a delayed copy),
    as often as it takes, never reaches the dead-letter queue for it, and is answered once the
    quota allows; waits are counted apart from failures."""
    # A daily quota: the test's rounds must not see a window reset (a minute's would, at times).
    stack.publish_policy(web_policy(quotas={"sessions_per_minute": 30, "sessions_per_day": 1}))
    keys = [key_for(unique(f"burst-{i}.json")) for i in range(3)]
    for key in keys:
        put(stack, key, manifest())
    capsys.readouterr()
    assert deliver(stack).failed == frozenset()
    assert sum(result(stack, key) is not None for key in keys) == 1
    waiting = [key for key in keys if result(stack, key) is None]
    for round_ in range(1, MAX_RECEIVE_COUNT + 3):
        held = stack.delayed_manifest_records()
        assert len(held) == 2, round_
        for seconds, attributes in held:
            assert 0 < seconds <= 900  # Retry-After (until tomorrow), capped by SQS's delay
            assert attributes["assets-gateway-waits"] == str(round_)
        assert stack.pass_manifest_delays() == 2
        assert deliver(stack).failed == frozenset()
        assert all(result(stack, key) is None for key in waiting)
    emitted = metrics_in(capsys.readouterr().out)
    assert emitted["ManifestWaited"] == 2 * (MAX_RECEIVE_COUNT + 3)
    assert emitted["ManifestRetried"] == 0
    dead = sqs_client(stack).receive_message(QueueUrl=stack.queues.dead_letter_url)
    assert dead.get("Messages", []) == []

    stack.clear_quotas()
    stack.publish_policy(web_policy())
    assert stack.pass_manifest_delays() == 2
    assert deliver(stack).failed == frozenset()
    assert [status_of(stack, key) for key in waiting] == [200, 200]
    assert stack.delayed_manifest_records() == []


def test_a_quota_wait_past_the_messages_lifetime_writes_the_refusal(stack: LocalStack) -> None:
    stack.publish_policy(web_policy(quotas={"sessions_per_minute": 30, "sessions_per_day": 1}))
    first, late = key_for(unique("first.json")), key_for(unique("late.json"))
    put(stack, first, manifest())
    assert deliver(stack).failed == frozenset()
    version = put(stack, late, manifest())
    discard_notifications(stack, 1)  # S3's own: replaced by a copy held since long ago
    sqs_client(stack).send_message(
        QueueUrl=stack.queues.manifest_url,
        MessageBody=json.dumps(forged(stack, late, version, "0A")),
        MessageAttributes={
            "assets-gateway-waits": {"DataType": "Number", "StringValue": "40"},
            "assets-gateway-first-sent-ms": {
                "DataType": "Number",
                # First sent a second longer ago than the queue keeps a message.
                "StringValue": str(int((time.time() - MANIFEST_RETENTION_SECONDS - 1) * 1000)),
            },
        },
    )
    assert deliver(stack).failed == frozenset()
    found = result(stack, late)
    assert found is not None
    assert (found[0], found[1]["errors"][0]["code"]) == (429, 19020)
    assert stack.delayed_manifest_records() == []


def test_a_poison_record_is_skipped_and_counted_and_the_rest_is_answered(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 14: a non-object userIdentity (and other malformed records) never raises."""
    key = key_for(unique("good.json"))
    version = put(stack, key, manifest())
    discard_notifications(stack, 1)
    good = forged(stack, key, version, "0A")["Records"][0]
    poison = {**good, "userIdentity": "AWS:AROAEXAMPLE:ci"}
    send(stack, {"Records": [poison, good, {**good, "s3": "nothing"}]})
    send(stack, "[1, 2]")
    capsys.readouterr()
    assert stack.manifest_poller.poll_once().failed == frozenset()
    assert stack.manifest_poller.poll_once().received == 0
    found = result(stack, key)
    assert found is not None
    assert found[0] == 200
    assert metrics_in(capsys.readouterr().out)["NotificationMalformed"] == 3


def test_a_result_writer_that_loses_the_race_decides_again_and_never_goes_backwards(
    stack: LocalStack,
) -> None:
    """Finding 5, the race itself: between the door's last check and its PUT of the result, a
    newer version is uploaded and answered. The conditional PUT fails, the door reads again,
    sees its version is no longer current and leaves the newer answer in place."""
    key = key_for(unique("raced.json"))
    put(stack, key, manifest(1))
    (message,) = receive_all(stack, expected=1)
    (older,) = read_notification(message["Body"], stack.names.manifest_bucket).objects
    newer: list[ManifestObject] = []

    def newer_version_lands_first(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] != result_key(key) or newer:
            return
        version = put(stack, key, manifest(2))
        newer.append(replace(older, version_id=version, revision=version, sequencer="FF"))
        answered = stack.manifest_events.records.door.process(
            newer[0], request_id="newer", final_attempt=False
        )
        assert answered["disposition"] == Disposition.ANSWERED

    aws = local_aws_session()
    aws.events.register("before-parameter-build.s3.PutObject", newer_version_lands_first)
    door = build_manifest_door(ManifestDoorSettings.from_environ(os.environ), aws=aws)
    outcome = door.process(older, request_id="older", final_attempt=False)
    assert outcome["disposition"] == Disposition.SUPERSEDED
    envelope, metadata, _ = stored_result(stack, key)
    assert metadata["source-version"] == newer[0].version_id
    assert hashes_of(envelope) == expected_hashes(2)


def test_sample_poison_record_is_skipped_and_its_neighbour_answered(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 14 with the review's record: `userIdentity` a string, beside a good record."""
    event = localised(stack, "poison_user_identity")
    capsys.readouterr()
    assert invoke(stack, event) == {"batchItemFailures": []}
    assert status_of(stack, key_for("build-44.json")) == 200
    assert result(stack, key_for("build-43.json")) is None
    assert metrics_in(capsys.readouterr().out)["NotificationMalformed"] == 1
