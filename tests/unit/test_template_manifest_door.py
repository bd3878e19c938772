"""The S3 door's fences, read from template.yaml: who may feed the manifest queue, who may read,
delete and tag manifests and results, and what the manifest function itself may do. cfn-lint and
`sam validate --lint` check the template's shape (and would report a dependency cycle); these
check the statements say what the door relies on."""

from __future__ import annotations

from typing import Any

import pytest

from assets_gateway.adapters.s3_holds import MAX_DELAY_SECONDS
from assets_gateway.doors.s3 import WRITER_TAG
from gateway_local.aws_resources import load_template

BUCKET_ARN = (
    "arn:${AWS::Partition}:s3:::${ManifestBucketPrefix}-manifests-${AWS::AccountId}-${AWS::Region}"
)
FUNCTION_ROLE = {"Fn::GetAtt": "ManifestEventsFunctionRole.Arn"}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    resources: dict[str, Any] = load_template()["Resources"]
    return resources


def statements(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in resource["Properties"]["PolicyDocument"]["Statement"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_only_the_manifest_bucket_and_the_function_may_send_to_the_queue(
    resources: dict[str, Any],
) -> None:
    """Finding 8: a deny for every other sender, not only an Allow for S3."""
    policy = statements(resources["ManifestQueuePolicy"])
    allow = policy["AllowManifestBucketNotifications"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::Sub": BUCKET_ARN}
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    deny = policy["DenySendersButTheManifestBucket"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"] == {
        "ArnNotEquals": {
            "aws:SourceArn": {"Fn::Sub": BUCKET_ARN},
            "aws:PrincipalArn": FUNCTION_ROLE,
        }
    }
    other_accounts = policy["DenyNotificationsFromOtherAccounts"]
    assert other_accounts["Condition"]["StringNotEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    # The function's own receives and deletes are never denied (only TLS is demanded).
    for statement in policy.values():
        if statement["Effect"] == "Deny" and statement["Sid"] != "DenyInsecureTransport":
            assert as_list(statement["Action"]) == ["sqs:SendMessage"]


def test_the_queue_policy_names_the_bucket_as_the_bucket_is_named(
    resources: dict[str, Any],
) -> None:
    name = resources["ManifestBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert "arn:${AWS::Partition}:s3:::" + name == BUCKET_ARN


def test_reads_and_deletes_are_fenced_by_the_team_prefix(resources: dict[str, Any]) -> None:
    """Finding 10a: results hold upload JWTs; s3:GetObject on "*" must not read them."""
    policy = statements(resources["ManifestBucketPolicy"])
    fence = policy["DenyReadsAndDeletesOutsideOwnTeamPrefix"]
    assert fence["Effect"] == "Deny"
    assert fence["Principal"] == "*"
    assert set(fence["Action"]) == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    }
    assert fence["NotResource"] == [
        {"Fn::Sub": "${ManifestBucket.Arn}/incoming/${!aws:PrincipalTag/assets-team}/*"},
        {"Fn::Sub": "${ManifestBucket.Arn}/results/${!aws:PrincipalTag/assets-team}/*"},
    ]
    # Only the manifest function reads every team's objects.
    assert fence["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": FUNCTION_ROLE}}
    unsafe = policy["DenyUnsafeTeamTags"]
    assert set(fence["Action"]) <= set(unsafe["Action"])


def test_every_upload_names_its_writer_and_nobody_retags_as_someone_else(
    resources: dict[str, Any],
) -> None:
    """Finding 9: the tag the door reads as the caller is the uploader's own principal ARN."""
    policy = statements(resources["ManifestBucketPolicy"])
    condition = {"StringNotEquals": {f"s3:RequestObjectTag/{WRITER_TAG}": "${aws:PrincipalArn}"}}
    uploads = policy["DenyUploadsNotTaggedWithTheirWriter"]
    assert (uploads["Effect"], uploads["Action"], uploads["Condition"]) == (
        "Deny",
        "s3:PutObject",
        condition,
    )
    assert uploads["Resource"] == {"Fn::Sub": "${ManifestBucket.Arn}/incoming/*"}
    retag = policy["DenyTaggingAsSomeoneElse"]
    assert set(retag["Action"]) == {"s3:PutObjectTagging", "s3:PutObjectVersionTagging"}
    assert retag["Condition"] == condition
    assert set(policy["DenyRemovingWriterTags"]["Action"]) == {
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
    }


def test_the_manifest_function_may_do_what_the_door_does_and_no_more(
    resources: dict[str, Any],
) -> None:
    function = resources["ManifestEventsFunction"]["Properties"]
    (document,) = function["Policies"]
    granted = {s["Sid"]: s for s in document["Statement"]}
    assert set(granted["ReadManifests"]["Action"]) == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
    }
    assert granted["ReadManifests"]["Resource"] == {"Fn::Sub": BUCKET_ARN + "/incoming/*"}
    assert set(granted["WriteResults"]["Action"]) == {"s3:GetObject", "s3:PutObject"}
    assert granted["WriteResults"]["Resource"] == {"Fn::Sub": BUCKET_ARN + "/results/*"}
    assert granted["HoldRecordsForQuota"] == {
        "Sid": "HoldRecordsForQuota",
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": "ManifestQueue.Arn"},
    }
    # The role must not wait for the bucket: the bucket waits for the queue policy, which
    # names the role.
    assert "ManifestBucket.Arn" not in repr(document)


def test_the_functions_view_of_the_queue_matches_the_queue(resources: dict[str, Any]) -> None:
    queue = resources["ManifestQueue"]["Properties"]
    variables = resources["ManifestEventsFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MANIFEST_QUEUE_URL"] == {"Ref": "ManifestQueue"}
    assert int(variables["MANIFEST_QUEUE_RETENTION_SECONDS"]) == queue["MessageRetentionPeriod"]
    assert int(variables["MANIFEST_MAX_RECEIVE_COUNT"]) == queue["RedrivePolicy"]["maxReceiveCount"]
    # A hold's delay is within SQS's ceiling and well inside the retention.
    assert MAX_DELAY_SECONDS <= 900 < queue["MessageRetentionPeriod"]
