"""Reading S3 notifications (pure): decoded keys, the key layout, what is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assets_gateway.adapters.s3_holds import FIRST_SENT_ATTRIBUTE, WAITS_ATTRIBUTE, HoldState
from assets_gateway.domain.manifest_objects import read_notification
from assets_gateway.doors.s3 import with_source

EVENTS = Path(__file__).parents[2] / "events" / "manifest_events"
BUCKET = "assets-gateway-manifests-123456789012-us-east-1"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def body_of(event_name: str, index: int = 0) -> str:
    body: str = json.loads((EVENTS / f"{event_name}.json").read_text())["Records"][index]["body"]
    return body


def record(key: str, **object_fields: Any) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, **object_fields}},
                }
            ]
        }
    )


def test_sample_event_names_team_account_script_and_version() -> None:
    (manifest,) = read_notification(body_of("object_created"), BUCKET).objects
    assert (manifest.team, manifest.account_id, manifest.script_name) == (
        "web",
        ACCOUNT,
        "web-storefront",
    )
    assert manifest.version_id == manifest.revision == "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
    assert manifest.result_key == f"results/web/{ACCOUNT}/web-storefront/build-42.json"
    assert manifest.uploader == "AWS:AROAEXAMPLEWEBDEPLOY:ci-build-42"
    assert manifest.sequencer == "0062E99A88DC407460"
    assert not manifest.gzipped


def test_url_encoded_keys_are_decoded_with_plus_as_space() -> None:
    (manifest,) = read_notification(body_of("url_encoded_key"), BUCKET).objects
    assert (
        manifest.key == f"incoming/web/{ACCOUNT}/web-storefront/release 2026+11/build 43+final.json"
    )
    assert manifest.name == "release 2026+11/build 43+final"


def test_test_events_are_skipped() -> None:
    notification = read_notification(body_of("test_event"), BUCKET)
    assert notification.objects == ()
    assert notification.skipped == ("s3:TestEvent",)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (record("results/web/x/y/z.json"), "is not incoming/"),
        (record(f"incoming/web/{ACCOUNT}/script.json"), "is not incoming/"),
        (record(f"incoming/web/{ACCOUNT}/s/notes.txt"), "is not incoming/"),
        ("not json", "not JSON"),
        ("[]", "not an S3 notification"),
        ('{"Records": []}', "no S3 records"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "malformed"),
    ],
)
def test_what_is_not_a_manifest_upload_is_skipped(body: str, reason: str) -> None:
    notification = read_notification(body, BUCKET)
    assert notification.objects == ()
    assert reason in notification.skipped[0]


def test_other_buckets_and_removals_are_skipped() -> None:
    other = read_notification(body_of("object_created"), "another-bucket")
    assert other.objects == ()
    assert "is not the manifest bucket" in other.skipped[0]
    removed = json.loads(record(f"incoming/web/{ACCOUNT}/s/m.json"))
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert read_notification(json.dumps(removed), BUCKET).objects == ()


def test_a_record_must_name_its_version_and_sequencer() -> None:
    """The bucket is versioned: S3 names the version and a sequencer in every ObjectCreated
    record, so a record without them is not S3's and runs nothing."""
    key = f"incoming/web/{ACCOUNT}/s/m.json.gz"
    (manifest,) = read_notification(record(key, versionId="v1", sequencer="00a1"), BUCKET).objects
    assert (manifest.version_id, manifest.revision, manifest.sequencer) == ("v1", "v1", "00A1")
    assert manifest.gzipped
    assert manifest.result_key == f"results/web/{ACCOUNT}/s/m.json"
    for fields in (
        {"sequencer": "00A1"},
        {"versionId": "v1"},
        {"versionId": "v1", "sequencer": "x"},
    ):
        notification = read_notification(record(key, **fields), BUCKET)
        assert notification.objects == ()
        assert notification.malformed == 0


def s3_record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:ci"},
        "s3": {
            "bucket": {"name": BUCKET},
            "object": {
                "key": f"incoming/web/{ACCOUNT}/s/m.json",
                "versionId": "v1",
                "sequencer": "0A",
            },
        },
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    "poison",
    [
        s3_record(userIdentity="AWS:AROAEXAMPLE:ci"),  # the review's poison record
        s3_record(userIdentity=["AWS:AROAEXAMPLE:ci"]),
        s3_record(userIdentity={"principalId": 7}),
        s3_record(eventName=None),
        s3_record(eventName=1),
        s3_record(s3="not an object"),
        s3_record(s3={"bucket": BUCKET, "object": {}}),
        s3_record(s3={"bucket": {"name": BUCKET}, "object": "m.json"}),
        s3_record(s3={"bucket": {"name": BUCKET}, "object": {"key": 12}}),
        s3_record(
            s3={
                "bucket": {"name": BUCKET},
                "object": {"key": f"incoming/web/{ACCOUNT}/s/m.json", "versionId": 3},
            }
        ),
        "a string",
        None,
        [],
    ],
)
def test_every_malformed_record_is_skipped_and_counted_in_the_same_pass(poison: Any) -> None:
    body = json.dumps({"Records": [poison, s3_record(), poison]})
    notification = read_notification(body, BUCKET)
    assert [o.key for o in notification.objects] == [f"incoming/web/{ACCOUNT}/s/m.json"]
    assert notification.malformed == 2
    assert len(notification.skipped) == 2
    assert all("malformed" in reason for reason in notification.skipped)


@pytest.mark.parametrize("body", ['{"Records": {"a": 1}}', '{"Records": "x"}', "3", "[1]"])
def test_messages_that_are_no_notification_are_counted_malformed(body: str) -> None:
    notification = read_notification(body, BUCKET)
    assert notification.objects == ()
    assert notification.malformed == 1


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({}, HoldState(0, 5_000)),
        ({WAITS_ATTRIBUTE: "3", FIRST_SENT_ATTRIBUTE: "1000"}, HoldState(3, 1_000)),
        ({WAITS_ATTRIBUTE: "x", FIRST_SENT_ATTRIBUTE: "1000"}, HoldState(0, 5_000)),
        ({WAITS_ATTRIBUTE: "-1", FIRST_SENT_ATTRIBUTE: "1000"}, HoldState(0, 5_000)),
        ({WAITS_ATTRIBUTE: "2", FIRST_SENT_ATTRIBUTE: "9000"}, HoldState(0, 5_000)),  # future
        ({WAITS_ATTRIBUTE: "2"}, HoldState(0, 5_000)),
    ],
)
def test_a_held_copy_says_how_often_it_waited_and_since_when(
    attributes: dict[str, str | None], expected: HoldState
) -> None:
    assert HoldState.of(attributes, sent_timestamp_ms=5_000) == expected


def test_a_result_names_the_version_it_answers_without_reparsing_the_envelope() -> None:
    (manifest,) = read_notification(body_of("object_created"), BUCKET).objects
    source = {
        "key": manifest.key,
        "version_id": manifest.version_id,
        "sequencer": "0062E99A88DC407460",
    }
    for body in (b'{"success":true,"result":{"jwt":"j"}}', b' {\n "a": 1}', b"{}"):
        spliced = json.loads(with_source(body, manifest))
        assert spliced == {"source": source, **json.loads(body)}
        assert next(iter(spliced)) == "source"
