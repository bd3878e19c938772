"""Large answers of the session function are gzip-compressed when the caller accepts gzip:
Lambda returns at most 6 MB, and a session for 100,000 missing files is ~3.5 MB of hashes.
Through the real handler (API Gateway events, moto server and the Cloudflare emulator on
loopback), over HTTP through the local API front, and `rest.to_response` on its own."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import os
from typing import Any

import pytest

from assets_gateway.domain.envelope import Reply
from assets_gateway.lambda_glue.rest import (
    COMPRESS_FROM_BYTES,
    LAMBDA_RESPONSE_LIMIT_BYTES,
    accepts_gzip,
    to_response,
)
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import WEB_DEPLOYER
from gateway_local.stack import LocalStack
from helpers import session_url, signed_client

SAMPLE_EVENT: dict[str, Any] = json.loads(
    (REPO_ROOT / "events" / "session_api" / "create_session.json").read_text()
)
# Each missing file adds ~35 bytes of hash to the answer: 3,000 of them make ~105 KB.
LARGE = 3_000


def manifest_body(entries: int, salt: str = "") -> bytes:
    manifest = {
        f"/site/{i // 100}/page-{i}.html": {
            "hash": hashlib.sha256(f"{salt}{i}".encode()).hexdigest()[:32],
            "size": 100 + i,
        }
        for i in range(entries)
    }
    return json.dumps({"manifest": manifest}, separators=(",", ":")).encode()


def session_event(body: bytes, accept_encoding: str | None) -> dict[str, Any]:
    """The sample event with this body and Accept-Encoding (absent when None)."""
    event = copy.deepcopy(SAMPLE_EVENT)
    for field in ("headers", "multiValueHeaders"):
        event[field].pop("Accept-Encoding", None)
        event[field].pop("Content-Length", None)
    if accept_encoding is not None:
        event["headers"]["Accept-Encoding"] = accept_encoding
        event["multiValueHeaders"]["Accept-Encoding"] = [accept_encoding]
    event["body"] = body.decode()
    event["isBase64Encoded"] = False
    return event


def invoke(stack: LocalStack, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = stack.session_api.lambda_handler(
        event, lambda_context("SessionApiFunction")
    )
    return result


def headers_of(result: dict[str, Any]) -> dict[str, str]:
    merged = {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items()}
    merged.update(result.get("headers") or {})
    return {name.lower(): value for name, value in merged.items()}


def body_of(result: dict[str, Any]) -> bytes:
    """The bytes the caller gets: API Gateway decodes a base64 body (binary media types */*)."""
    if result["isBase64Encoded"]:
        return base64.b64decode(result["body"], validate=True)
    return str(result["body"]).encode()


def assert_session(envelope: Any, entries: int) -> None:
    assert envelope["success"] is True
    assert sum(len(bucket) for bucket in envelope["result"]["buckets"]) == entries


# ------------------------------------------------------------------- through the handler


def test_a_large_answer_is_gzip_when_the_caller_accepts_it(stack: LocalStack) -> None:
    result = invoke(stack, session_event(manifest_body(LARGE), "gzip, deflate"))
    assert result["statusCode"] == 200
    headers = headers_of(result)
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["content-type"] == "application/json"
    assert result["isBase64Encoded"] is True
    compressed = body_of(result)
    plain = gzip.decompress(compressed)
    assert len(plain) >= COMPRESS_FROM_BYTES
    assert len(compressed) < len(plain) * 0.7
    assert_session(json.loads(plain), LARGE)
    assert headers["x-request-id"]  # the gateway's own headers are still there


@pytest.mark.parametrize(
    "accept_encoding", [None, "", "identity", "deflate, br", "gzip;q=0", "*;q=0", "x-gzip; q=0.0"]
)
def test_a_large_answer_is_plain_when_the_caller_does_not_accept_gzip(
    stack: LocalStack, accept_encoding: str | None
) -> None:
    result = invoke(stack, session_event(manifest_body(LARGE, salt="plain"), accept_encoding))
    assert result["statusCode"] == 200
    headers = headers_of(result)
    assert "content-encoding" not in headers
    assert headers["vary"] == "Accept-Encoding"
    assert result["isBase64Encoded"] is False
    assert_session(json.loads(result["body"]), LARGE)


@pytest.mark.parametrize("accept_encoding", ["gzip", "GZIP;q=0.5", "x-gzip", "*", "br, *;q=0.1"])
def test_every_way_of_accepting_gzip_gets_it(stack: LocalStack, accept_encoding: str) -> None:
    result = invoke(stack, session_event(manifest_body(LARGE, salt="ways"), accept_encoding))
    assert headers_of(result)["content-encoding"] == "gzip"
    assert_session(json.loads(gzip.decompress(body_of(result))), LARGE)


def test_small_answers_are_unchanged_whatever_the_caller_accepts(stack: LocalStack) -> None:
    result = invoke(stack, session_event(manifest_body(3), "gzip, deflate"))
    assert result["statusCode"] == 200
    assert result["isBase64Encoded"] is False
    headers = headers_of(result)
    assert "content-encoding" not in headers
    assert "vary" not in headers
    assert_session(json.loads(result["body"]), 3)
    refusal = invoke(stack, session_event(b'{"manifest": {"/a": {}}}', "gzip"))
    assert refusal["statusCode"] == 400
    assert refusal["isBase64Encoded"] is False
    assert json.loads(refusal["body"])["errors"][0]["code"] == 19001


def test_a_100k_session_fits_lambdas_limit_only_compressed(stack: LocalStack) -> None:
    entries = 100_000
    event = session_event(b"", "gzip")
    event["body"] = base64.b64encode(gzip.compress(manifest_body(entries, salt="100k"))).decode()
    event["isBase64Encoded"] = True
    event["headers"]["Content-Encoding"] = "gzip"
    event["multiValueHeaders"]["Content-Encoding"] = ["gzip"]
    result = invoke(stack, event)
    assert result["statusCode"] == 200, str(result["body"])[:300]
    assert headers_of(result)["content-encoding"] == "gzip"
    # What Lambda measures: the whole JSON result.
    assert len(json.dumps(result)) < LAMBDA_RESPONSE_LIMIT_BYTES
    plain = gzip.decompress(body_of(result))
    assert len(plain) > 3_000_000
    assert_session(json.loads(plain), entries)


# ------------------------------------------------------------- over HTTP, as callers see it


def test_over_http_a_large_answer_arrives_gzip_and_reads_as_json(stack: LocalStack) -> None:
    with signed_client(WEB_DEPLOYER) as web:
        body = manifest_body(LARGE, salt="http")
        compressed = web.post(session_url(stack), content=body, headers={"Accept-Encoding": "gzip"})
        plain = web.post(
            session_url(stack),
            content=manifest_body(LARGE, salt="http-plain"),
            headers={"Accept-Encoding": "identity"},
        )
    assert compressed.status_code == 200, compressed.text[:300]
    assert compressed.headers["content-encoding"] == "gzip"
    assert int(compressed.headers["content-length"]) < len(compressed.content) * 0.7
    assert_session(compressed.json(), LARGE)  # httpx decodes gzip as any client does
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert_session(plain.json(), LARGE)


# --------------------------------------------------------------------- to_response alone


def lambda_result(reply: Reply, accept_encoding: str | None) -> dict[str, Any]:
    """What the handler returns for this reply, built as Powertools builds it."""
    response = to_response(reply, accept_encoding=accept_encoding)
    return {
        "statusCode": response.status_code,
        "body": response.body,
        "isBase64Encoded": response.base64_encoded,
        "headers": response.headers,
    }


def test_an_answer_over_6_mb_is_compressed_below_the_limit() -> None:
    hashes = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(200_000)]
    body = json.dumps({"success": True, "result": {"jwt": "j", "buckets": [hashes]}}).encode()
    assert len(body) > LAMBDA_RESPONSE_LIMIT_BYTES
    result = lambda_result(Reply(200, body, {"Content-Type": "application/json"}), "gzip")
    assert result["isBase64Encoded"] is True
    assert len(json.dumps(result)) < LAMBDA_RESPONSE_LIMIT_BYTES
    assert gzip.decompress(base64.b64decode(result["body"])) == body


@pytest.mark.parametrize(
    ("accept_encoding", "says"),
    [(None, "send Accept-Encoding: gzip"), ("gzip", "larger than Lambda can return")],
)
def test_an_answer_lambda_cannot_return_is_a_clean_502(
    accept_encoding: str | None, says: str
) -> None:
    # Random bytes as base64 text: gzip cannot shrink them below the limit.
    body = base64.b64encode(os.urandom(6 * 1024 * 1024)) if accept_encoding else b"x" * 6_400_000
    reply = Reply(200, body, {"Content-Type": "application/json", "X-Request-Id": "r-1"})
    result = lambda_result(reply, accept_encoding)
    assert result["statusCode"] == 502
    assert result["isBase64Encoded"] is False
    assert result["headers"]["X-Request-Id"] == "r-1"
    (error,) = json.loads(result["body"])["errors"]
    assert error["code"] == 19031
    assert says in error["message"]


def test_quotes_count_against_the_limit_of_an_uncompressed_answer() -> None:
    # 5.5 MB of quotes is 11 MB once the body is a JSON string in Lambda's result.
    reply = Reply(200, b'"' * 5_500_000, {"Content-Type": "application/json"})
    assert lambda_result(reply, None)["statusCode"] == 502
    assert lambda_result(reply, "gzip")["statusCode"] == 200


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZip", True),
        ("deflate, gzip;q=1.0", True),
        ("gzip;q=0", False),
        ("gzip; q=0.001", True),
        ("gzip;q=oops", False),
        ("x-gzip", True),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("br, zstd", False),
        ("identity", False),
        ("gzipped", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
