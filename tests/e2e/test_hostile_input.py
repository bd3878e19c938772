"""A corpus of hostile requests, sent over real HTTP (SigV4-signed) through the local API front to
the real handler: each gets a clear 4xx in Cloudflare's envelope with a documented code, never a
5xx or a stack trace, and nothing of it reaches Cloudflare. Bodies beyond the limits, deep
nesting, huge numbers, duplicate keys, other encodings, lone surrogates, NaN, wrong content types,
path parameters with encoded slashes and dots, headers that try to reach Cloudflare."""

from __future__ import annotations

import gzip
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    UNLINKED_ACCOUNT_ID,
    WEB_DEPLOYER,
    WEB_NAMESPACE,
    WEB_SCRIPT,
)
from gateway_local.stack import LocalStack
from helpers import HTTP_TIMEOUT, session_url, signed_client

HASH = "0de3dd5df907418e9730fd2bd747bd5e"
MIB = 1024 * 1024
VALID = {"manifest": {"/index.html": {"hash": HASH, "size": 17}}}
# What the gateway sends Cloudflare: httpx's own headers and ours, nothing of the caller's.
UPSTREAM_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "content-length",
    "content-type",
    "authorization",
}


@pytest.fixture
def web() -> Iterator[httpx.Client]:
    with signed_client(WEB_DEPLOYER) as client:
        yield client


def forwarded(stack: LocalStack) -> list[bytes]:
    return [call.body for call in stack.emulator.calls_to("/assets-upload-session")]


def assert_refused(
    stack: LocalStack,
    answer: httpx.Response,
    status: int,
    code: int,
    *,
    pointer: str | None = None,
    says: str | None = None,
) -> dict[str, object]:
    """A clear refusal: the status and code, the envelope, no trace, no token, nothing sent on."""
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json"), (
        answer.text[:500]
    )
    envelope = answer.json()
    assert envelope["success"] is False
    assert envelope["result"] is None
    assert isinstance(envelope["messages"], list)
    (error,) = envelope["errors"]
    assert error["code"] == code, error
    if pointer is not None:
        assert error["source"]["pointer"] == pointer
    if says is not None:
        assert says in error["message"]
    assert "Traceback" not in answer.text
    assert 'File "' not in answer.text
    assert stack.cloudflare_token not in answer.text
    assert len(answer.content) < 20_000, "a refusal echoes a bounded part of the request"
    assert forwarded(stack) == []
    return error  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class Case:
    body: bytes
    status: int
    code: int
    pointer: str | None = None
    says: str | None = None
    content_type: str | None = "application/json"
    content_encoding: str | None = None


def manifest_with(size: str) -> bytes:
    return b'{"manifest": {"/a": {"hash": "ab", "size": ' + size.encode() + b"}}}"


def gzipped(
    body: bytes, status: int, code: int, *, pointer: str | None = None, says: str | None = None
) -> Case:
    """A case whose body is sent as is, declared `Content-Encoding: gzip`."""
    return Case(body, status, code, pointer=pointer, says=says, content_encoding="gzip")


def inflating_to(head: bytes, unit: bytes, tail: bytes, size: int = 32 * MIB) -> bytes:
    """gzip of head + unit,unit,… + tail, `size` bytes inflated (the API door's ceiling)."""
    count = (size - len(head) - len(tail)) // (len(unit) + 1)
    return gzip.compress(head + b",".join([unit] * count) + tail)


CORPUS: dict[str, Case] = {
    # Size limits: Lambda's 6 MiB payload (ours, 19002), API Gateway's 10 MiB (the front's 413).
    "body over 6 MiB": Case(
        json.dumps(VALID).encode() + b" " * (6 * MIB), 413, 19002, says="at most 6291456"
    ),
    "body of exactly 10 MiB": Case(b" " * (10 * MIB), 413, 19002),
    "body over 10 MiB": Case(b" " * (10 * MIB + 1), 413, 19002, says="Request Too Long"),
    # Nesting.
    "100k [": Case(b"[" * 100_000, 400, 19000, says="nested too deeply"),
    "100k [ and ]": Case(b"[" * 100_000 + b"]" * 100_000, 400, 19000, says="nested too deeply"),
    "100k objects": Case(b'{"a":' * 100_000, 400, 19000, says="nested too deeply"),
    "deep inside an entry": Case(
        b'{"manifest": {"/a": ' + b"[" * 100_000, 400, 19000, says="nested too deeply"
    ),
    "nested arrays as a size": Case(
        manifest_with("[" * 50 + "]" * 50), 400, 19001, pointer="/manifest/~1a/size"
    ),
    # Numbers.
    "1e999 as a size": Case(manifest_with("1e999"), 400, 19001, pointer="/manifest/~1a/size"),
    "-1e999 as a size": Case(manifest_with("-1e999"), 400, 19001, pointer="/manifest/~1a/size"),
    "5000-digit size": Case(manifest_with("9" * 5000), 400, 19000, says="number too long"),
    "4000-digit size": Case(manifest_with("9" * 4000), 400, 19001, pointer="/manifest/~1a/size"),
    "float size": Case(manifest_with("1.0"), 400, 19001, pointer="/manifest/~1a/size"),
    "exponent size": Case(manifest_with("1E2"), 400, 19001, pointer="/manifest/~1a/size"),
    "NaN": Case(manifest_with("NaN"), 400, 19000, says="NaN is not a JSON number"),
    "Infinity": Case(manifest_with("Infinity"), 400, 19000, says="Infinity is not a JSON"),
    "-Infinity": Case(manifest_with("-Infinity"), 400, 19000, says="-Infinity is not a JSON"),
    # Duplicate keys: refused and named, never resolved silently (json.loads keeps the last).
    "duplicate path": Case(
        b'{"manifest": {"/a": {"hash": "ab", "size": 1}, "/a": {"hash": "cd", "size": 2}}}',
        400,
        19001,
        pointer="/manifest/~1a",
        says="duplicate key '/a'",
    ),
    "duplicate hash in an entry": Case(
        b'{"manifest": {"/a": {"hash": "ab", "hash": "cd", "size": 1}}}',
        400,
        19001,
        pointer="/manifest/~1a/hash",
        says="duplicate key 'hash'",
    ),
    "duplicate manifest": Case(
        b'{"manifest": {}, "manifest": {"/a": {"hash": "ab", "size": 1}}}',
        400,
        19001,
        pointer="/manifest",
    ),
    # Encodings.
    "latin-1": Case(
        '{"manifest": {"/é": {"hash": "ab", "size": 1}}}'.encode("latin-1"), 400, 19000
    ),
    "UTF-16 with BOM": Case(json.dumps(VALID).encode("utf-16"), 400, 19000, says="not UTF-8"),
    "UTF-16LE without BOM": Case(json.dumps(VALID).encode("utf-16-le"), 400, 19000),
    "UTF-32": Case(json.dumps(VALID).encode("utf-32"), 400, 19000, says="not UTF-8"),
    "overlong UTF-8 slash": Case(
        b'{"manifest": {"\xc0\xafa": {"hash": "ab", "size": 1}}}', 400, 19000, says="not UTF-8"
    ),
    "UTF-8-encoded surrogate": Case(
        b'{"manifest": {"/\xed\xa0\x80": {"hash": "ab", "size": 1}}}', 400, 19000
    ),
    "gzip body": Case(gzip.compress(json.dumps(VALID).encode()), 400, 19000),
    # Lone surrogates as JSON escapes: valid JSON text, but no Unicode string.
    "lone surrogate in a path": Case(
        b'{"manifest": {"/\\ud800": {"hash": "ab", "size": 1}}}',
        400,
        19001,
        pointer="/manifest/~1\ufffd",
        says="lone surrogate",
    ),
    "2000 lone surrogates in a path": Case(
        b'{"manifest": {"/' + b"\\udfff" * 2000 + b'": {"hash": "ab", "size": 1}}}',
        400,
        19001,
        says="lone surrogate",
    ),
    "lone surrogate as an entry key": Case(
        b'{"manifest": {"/a": {"hash": "ab", "size": 1, "\\udc00": 1}}}',
        400,
        19001,
        pointer="/manifest/~1a/\ufffd",
    ),
    "lone surrogate as a top-level key": Case(
        b'{"manifest": {}, "\\ud800": 1}', 400, 19001, pointer="/\ufffd"
    ),
    "lone surrogate in a hash": Case(
        b'{"manifest": {"/a": {"hash": "a\\ud800", "size": 1}}}',
        400,
        19001,
        pointer="/manifest/~1a/hash",
    ),
    # Bodies that are JSON, but not an object.
    "a string": Case(b'"manifest"', 400, 19000, says="must be a JSON object"),
    "an array": Case(b"[]", 400, 19000, says="must be a JSON object"),
    "a number": Case(b"3", 400, 19000, says="must be a JSON object"),
    "null": Case(b"null", 400, 19000, says="must be a JSON object"),
    "true": Case(b"true", 400, 19000, says="must be a JSON object"),
    "empty body": Case(b"", 400, 19000, says="line 1, column 1"),
    "whitespace": Case(b" \n\t ", 400, 19000),
    "trailing garbage": Case(json.dumps(VALID).encode() + b"x", 400, 19000, says="Extra data"),
    "two documents": Case(json.dumps(VALID).encode() * 2, 400, 19000, says="Extra data"),
    "empty object": Case(b"{}", 400, 19001, pointer="/manifest"),
    "manifest null": Case(b'{"manifest": null}', 400, 19001, pointer="/manifest"),
    "manifest array": Case(b'{"manifest": [["/a", "ab", 1]]}', 400, 19001, pointer="/manifest"),
    # Keys so long that echoing them would exceed Lambda's 6 MB response limit.
    "5 MB path": Case(
        b'{"manifest": {"/' + b"a/" * (2 * MIB) + b'b": {"hash": "ab", "size": 1}}}',
        400,
        19001,
        says="at most 4096 bytes",
    ),
    "3 MB unknown field": Case(
        b'{"manifest": {"/a": {"hash": "ab", "size": 1, "' + b"/" * (3 * MIB) + b'": 1}}}',
        400,
        19001,
        says="(3145728 characters)",
    ),
    # Bodies of a few KiB inflating to 32 MiB of values no manifest holds: refused before any
    # of it is built (issue 12: these took ~850 MiB and seconds each).
    "32 MiB of {} in an unknown field": gzipped(
        inflating_to(b'{"manifest":{"/a":{"hash":"ab","size":1}},"x":[', b"{}", b"]}"),
        413,
        19002,
        says="more than 300,018 JSON values",
    ),
    "millions of empty entries": gzipped(
        inflating_to(b'{"manifest":{', b'"/a":{}', b"}}"),
        413,
        19002,
        says="a manifest of at most 100,000 entries holds at most 300,002",
    ),
    "millions of top-level keys": gzipped(
        inflating_to(b'{"manifest":{},', b'"k":0', b"}"), 413, 19002
    ),
    "32 MiB of 4300-digit numbers": gzipped(
        inflating_to(b'{"manifest":{},"x":[', b"9" * 4300, b"]}"),
        400,
        19001,
        pointer="/x",
        says="unknown field 'x'",
    ),
    # gzip (RFC 1952): every member is read; anything after the last one is refused.
    "gzip then plain JSON": gzipped(
        gzip.compress(json.dumps(VALID).encode()) + b'{"manifest":{}}',
        400,
        19000,
        says="bytes after its gzip data",
    ),
    "gzip then garbage": gzipped(
        gzip.compress(json.dumps(VALID).encode()) + b"\0\0garbage",
        400,
        19000,
        says="neither another gzip member nor zero padding",
    ),
    # Content types.
    "text/plain": Case(json.dumps(VALID).encode(), 400, 19000, content_type="text/plain"),
    "form": Case(
        b"manifest=" + json.dumps(VALID["manifest"]).encode(),
        400,
        19000,
        content_type="application/x-www-form-urlencoded",
    ),
    "multipart": Case(
        b"--x\r\nContent-Disposition: form-data; name=manifest\r\n\r\n{}\r\n--x--\r\n",
        400,
        19000,
        content_type="multipart/form-data; boundary=x",
    ),
    "xml": Case(b"<manifest/>", 400, 19000, content_type="application/xml"),
    "jsonp": Case(json.dumps(VALID).encode(), 400, 19000, content_type="application/jsonp"),
    "any": Case(json.dumps(VALID).encode(), 400, 19000, content_type="*/*"),
    "a list of types": Case(
        json.dumps(VALID).encode(), 400, 19000, content_type="application/json, text/plain"
    ),
    "charset utf-16": Case(
        json.dumps(VALID).encode("utf-16"),
        400,
        19000,
        says="charset 'utf-16'",
        content_type="application/json; charset=utf-16",
    ),
    "charset latin-1": Case(
        json.dumps(VALID).encode(),
        400,
        19000,
        says="charset",
        content_type="application/json; charset=iso-8859-1",
    ),
    "long content type": Case(
        json.dumps(VALID).encode(), 400, 19000, says="characters)", content_type="x/" + "y" * 4000
    ),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_body_is_a_clear_refusal(stack: LocalStack, web: httpx.Client, name: str) -> None:
    case = CORPUS[name]
    headers = {} if case.content_type is None else {"Content-Type": case.content_type}
    if case.content_encoding is not None:
        headers["Content-Encoding"] = case.content_encoding
    answer = web.post(session_url(stack), content=case.body, headers=headers)
    assert_refused(stack, answer, case.status, case.code, pointer=case.pointer, says=case.says)


@pytest.mark.parametrize(
    "body",
    [
        # A surrogate pair is one valid character; a UTF-8 BOM is tolerated (RFC 8259 §8.1);
        # no content type is accepted; -0 is the integer 0.
        b'{"manifest": {"/\\ud83d\\ude00": {"hash": "ab", "size": 1}}}',
        b'\xef\xbb\xbf{"manifest": {"/a": {"hash": "ab", "size": 1}}}',
        b'{"manifest": {"/a": {"hash": "ab", "size": -0}}}',
        b' \n{ "manifest" : { "/a" : { "size" : 1 , "hash" : "ab" } } } \n',
    ],
)
def test_near_misses_are_accepted_and_only_the_manifest_is_forwarded(
    stack: LocalStack, web: httpx.Client, body: bytes
) -> None:
    answer = web.post(session_url(stack), content=body)  # no Content-Type at all
    assert "content-type" not in answer.request.headers
    assert answer.status_code == 200, answer.text
    (sent,) = forwarded(stack)
    expected = json.loads(body.decode("utf-8-sig"))
    # Re-serialised, canonical: what was validated, not the caller's bytes.
    assert sent == json.dumps(expected, separators=(",", ":")).encode()


def test_a_hostile_dry_run_is_refused_as_cheaply(stack: LocalStack, web: httpx.Client) -> None:
    """A dry run charges no quota, so any mapped caller may repeat it: it reports the same
    refusal, from the same structural limit."""
    answer = web.post(
        session_url(stack),
        content=CORPUS["32 MiB of {} in an unknown field"].body,
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-Assets-Gateway-Dry-Run": "1",
        },
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["allowed"] is False
    (reason,) = result["reasons"]
    assert reason["code"] == 19002
    assert "JSON values" in reason["message"]
    assert forwarded(stack) == []


def test_every_gzip_member_is_read(stack: LocalStack, web: httpx.Client) -> None:
    """RFC 1952 §2.2: concatenated gzip streams are one body (as `gzip -d` reads them), and
    zero padding after the last one is skipped."""
    body = json.dumps(VALID, separators=(",", ":")).encode()
    half = len(body) // 2
    answer = web.post(
        session_url(stack),
        content=gzip.compress(body[:half]) + gzip.compress(body[half:]) + b"\0" * 16,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200, answer.text
    assert forwarded(stack) == [body]


# ------------------------------------------------------------------------ path parameters

ACCOUNT = DEMO_ACCOUNT_ID


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        (f"/accounts/{ACCOUNT}/workers/scripts/%2e%2e/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/%2E%2E/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/..%2F..%2Fx/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-a%2Fb/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-a%5Cb/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-a%252Fb/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-%00/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-%0Ax/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-%C3%A9/assets-upload-session", "/script_name"),
        (
            f"/accounts/{ACCOUNT}/workers/scripts/web-%ED%A0%80/assets-upload-session",
            "/script_name",
        ),
        (f"/accounts/{ACCOUNT}/workers/scripts/web-%FF/assets-upload-session", "/script_name"),
        (f"/accounts/{ACCOUNT}/workers/scripts/{'w' * 256}/assets-upload-session", "/script_name"),
        ("/accounts/%2e%2e/workers/scripts/web-a/assets-upload-session", "/account_id"),
        (f"/accounts/{ACCOUNT}%2F..%2F/workers/scripts/web-a/assets-upload-session", "/account_id"),
        (f"/accounts/{ACCOUNT.upper()}/workers/scripts/web-a/assets-upload-session", "/account_id"),
        (
            f"/accounts/{ACCOUNT}/workers/dispatch/namespaces/%2e%2e/scripts/web-a"
            "/assets-upload-session",
            "/namespace",
        ),
        (
            f"/accounts/{ACCOUNT}/workers/dispatch/namespaces/{WEB_NAMESPACE}%2F..%2Fx/scripts"
            "/web-a/assets-upload-session",
            "/namespace",
        ),
    ],
)
def test_encoded_slashes_and_dots_in_path_parameters_are_refused(
    stack: LocalStack, web: httpx.Client, path: str, pointer: str
) -> None:
    answer = web.post(stack.base_url + path, json=VALID)
    assert_refused(stack, answer, 400, 19000, pointer=pointer)


@pytest.mark.parametrize(
    "path",
    [
        f"/accounts/{ACCOUNT}/workers/scripts/../assets-upload-session",
        f"/accounts/{ACCOUNT}/workers/scripts/./assets-upload-session",
        f"/accounts/{ACCOUNT}/workers/scripts/web-a/../{WEB_SCRIPT}/assets-upload-session",
        f"/accounts/{ACCOUNT}/workers/scripts//assets-upload-session",
        f"/accounts/../accounts/{ACCOUNT}/workers/scripts/{WEB_SCRIPT}/assets-upload-session",
        f"/accounts/{UNLINKED_ACCOUNT_ID}/../{ACCOUNT}/workers/scripts/{WEB_SCRIPT}"
        "/assets-upload-session",
    ],
)
def test_dot_segments_sent_as_is_never_reach_cloudflare(
    stack: LocalStack, web: httpx.Client, path: str
) -> None:
    # httpx normalises `..` away; the request target is set by hand so the front sees it as sent.
    request = web.build_request("POST", stack.base_url + path, json=VALID)
    request.extensions["target"] = (urlsplit(stack.base_url).path + path).encode()
    answer = web.send(request)
    code = {400: 19000, 403: 10000, 404: 7003}[answer.status_code]
    assert_refused(stack, answer, answer.status_code, code)


# -------------------------------------------------------------------------------- headers

HOSTILE_HEADERS = {
    "X-Forwarded-For": "203.0.113.66",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "gopher",
    "Forwarded": "for=203.0.113.66;host=evil.example",
    "X-Real-IP": "203.0.113.66",
    "CF-Connecting-IP": "203.0.113.66",
    "True-Client-IP": "203.0.113.66",
    "X-Auth-Key": "caller-global-api-key",
    "X-Auth-Email": "mallory@evil.example",
    "X-Auth-User-Service-Key": "v1.0-caller-service-key",
    "Proxy-Authorization": "Bearer caller-proxy-token",
    "Cookie": "CF_Authorization=caller-cookie",
    "User-Agent": "caller-agent/6.6.6",
    "X-Amz-Target": "caller-target",
    "X-Original-URL": "/accounts/fedcba9876543210fedcba9876543210/workers/scripts/x",
    "X-HTTP-Method-Override": "DELETE",
}


def test_caller_headers_never_reach_cloudflare(stack: LocalStack, web: httpx.Client) -> None:
    answer = web.post(session_url(stack), json=VALID, headers=HOSTILE_HEADERS)
    assert answer.status_code == 200, answer.text
    (call,) = stack.emulator.calls_to("/assets-upload-session")
    assert call.headers["authorization"] == f"Bearer {stack.cloudflare_token}"
    assert call.method == "POST"
    assert call.path == (
        f"/client/v4/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}/assets-upload-session"
    )
    assert set(call.headers) <= UPSTREAM_HEADERS, set(call.headers) - UPSTREAM_HEADERS
    sent_values = " ".join(call.headers.values())
    assert all(value not in sent_values for value in HOSTILE_HEADERS.values())
    assert call.headers["content-type"] == "application/json"


class _SignedThenAuthorization(httpx.Auth):
    """Signs with SigV4, then adds a second Authorization header carrying a Bearer token."""

    requires_request_body = True

    def __init__(self, signer: httpx.Auth, value: str) -> None:
        self._signer = signer
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._signer.sync_auth_flow(request)
        signed = next(flow)
        signed.headers = httpx.Headers(
            [*signed.headers.multi_items(), ("Authorization", self._value)]
        )
        yield signed


def test_a_caller_cannot_smuggle_a_cloudflare_token(stack: LocalStack, web: httpx.Client) -> None:
    bearer = "Bearer caller-supplied-cloudflare-token"
    # Instead of a signature: API Gateway refuses it before the gateway runs.
    plain = httpx.post(
        session_url(stack), json=VALID, headers={"Authorization": bearer}, timeout=HTTP_TIMEOUT
    )
    assert_refused(stack, plain, 403, 10000)
    # Next to a valid signature: two Authorization headers are no signature API Gateway accepts.
    assert web.auth is not None
    doubled = web.post(
        session_url(stack), json=VALID, auth=_SignedThenAuthorization(web.auth, bearer)
    )
    assert_refused(stack, doubled, 403, 10000)
    # A signed request that also names the token elsewhere: ignored, the org token is used.
    answer = web.post(
        session_url(stack),
        json=VALID,
        headers={
            "X-Authorization": bearer,
            "Authorization-Override": bearer,
            "X-Auth-Token": bearer,
        },
    )
    assert answer.status_code == 200, answer.text
    (call,) = stack.emulator.calls_to("/assets-upload-session")
    assert call.headers["authorization"] == f"Bearer {stack.cloudflare_token}"
    assert "caller-supplied" not in json.dumps(call.headers)


# ------------------------------------------------------------------- events, in process


@pytest.mark.parametrize(
    ("body", "is_base64", "says"),
    [
        ("eyJtYW5pZmVzdCI6e319x", True, "not valid base64"),  # bad padding
        ("ünïcode", True, "not valid base64"),
        ('{"manifest": {"/\ud800": {"hash": "ab", "size": 1}}}', False, "not UTF-8"),
    ],
)
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_events_api_gateway_never_sends_are_still_refused(
    stack: LocalStack, body: str, is_base64: bool, says: str
) -> None:
    """API Gateway hands over text as UTF-8 and binary as valid base64; an event that breaks
    either promise is a 400, not a crash of the handler."""
    event = json.loads((REPO_ROOT / "events" / "session_api" / "create_session.json").read_text())
    event.update(body=body, isBase64Encoded=is_base64)
    result = stack.session_api.lambda_handler(event, lambda_context("session-api"))
    assert result["statusCode"] == 400
    envelope = json.loads(result["body"])
    assert envelope["errors"][0]["code"] == 19000
    assert says in envelope["errors"][0]["message"]
    assert forwarded(stack) == []
