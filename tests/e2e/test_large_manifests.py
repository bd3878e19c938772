"""100,000-entry manifests: through the API door as gzip (Lambda's 6 MB payload limit would
refuse the ~9 MB of JSON) and through the S3 door; compressed bodies that lie are refused."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.put_manifest import writer_tagging
from gateway_local.stack import LocalStack
from helpers import session_url, signed_client

ENTRIES = 100_000


def big_manifest(entries: int = ENTRIES) -> dict[str, Any]:
    return {
        "manifest": {
            f"/assets/{i // 1000}/chunk-{i}.js": {
                "hash": hashlib.sha256(i.to_bytes(4, "big")).hexdigest()[:32],
                "size": 1000 + i,
            }
            for i in range(entries)
        }
    }


def gzip_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def test_a_100k_entry_manifest_goes_through_the_api_door_as_gzip(stack: LocalStack) -> None:
    raw = json.dumps(big_manifest()).encode()
    assert len(raw) > 6 * 1024 * 1024  # too big for Lambda uncompressed
    with signed_client(WEB_DEPLOYER) as web:
        answer = web.post(session_url(stack), content=gzip.compress(raw), headers=gzip_headers())
    assert answer.status_code == 200, answer.text[:500]
    buckets = answer.json()["result"]["buckets"]
    assert sum(len(bucket) for bucket in buckets) == ENTRIES
    forwarded = stack.emulator.calls_to("/assets-upload-session")
    assert len(forwarded) == 1
    assert len(json.loads(forwarded[0].body)["manifest"]) == ENTRIES


def test_a_100k_entry_manifest_goes_through_the_s3_door(stack: LocalStack) -> None:
    s3 = stack.aws.client("s3", endpoint_url=stack.moto.endpoint_url)
    key = f"incoming/web/{DEMO_ACCOUNT_ID}/{WEB_SCRIPT}/release-100k.json.gz"
    s3.put_object(
        Bucket=stack.names.manifest_bucket,
        Key=key,
        Body=gzip.compress(json.dumps(big_manifest()).encode()),
        Tagging=writer_tagging(WEB_DEPLOYER.principal_arn),
    )
    assert stack.manifest_poller.poll_once().failed == frozenset()
    result_key = f"results/web/{DEMO_ACCOUNT_ID}/{WEB_SCRIPT}/release-100k.json"
    stored = json.loads(
        s3.get_object(Bucket=stack.names.manifest_bucket, Key=result_key)["Body"].read()
    )
    assert sum(len(bucket) for bucket in stored["result"]["buckets"]) == ENTRIES


@pytest.mark.parametrize(
    ("body", "encoding", "status", "code"),
    [
        (gzip.compress(b" " * (33 * 1024 * 1024)), "gzip", 413, 19002),  # 33 MiB from ~32 KiB
        (gzip.compress(b'{"manifest": {}}')[:-6], "gzip", 400, 19000),  # truncated
        (b'{"manifest": {}}', "gzip", 400, 19000),  # says gzip, is not
        (b'{"manifest": {}}', "br", 400, 19000),  # an encoding we do not take
    ],
)
def test_compressed_bodies_that_lie_are_refused(
    stack: LocalStack, body: bytes, encoding: str, status: int, code: int
) -> None:
    with signed_client(WEB_DEPLOYER) as web:
        answer = web.post(
            session_url(stack),
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
    assert answer.status_code == status
    assert answer.json()["errors"][0]["code"] == code
    assert stack.emulator.calls == []


def test_gzip_dry_run_reports_the_inflated_manifest(stack: LocalStack) -> None:
    body = gzip.compress(json.dumps(big_manifest(10)).encode())
    with signed_client(WEB_DEPLOYER) as web:
        answer = web.post(
            session_url(stack),
            content=body,
            headers={**gzip_headers(), "X-Assets-Gateway-Dry-Run": "1"},
        )
    assert answer.json()["result"]["entries"] == 10
