"""SigV4 signing (httpx auth) and server-side verification, checked against each other and
against an independent vector from AWS's SigV4 test suite."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from assets_gateway_client.sigv4 import SigV4Auth
from gateway_local.sigv4_verify import (
    MISSING_AUTHENTICATION_TOKEN,
    SIGNATURE_MISMATCH,
    UNRECOGNIZED_CLIENT,
    SignatureError,
    parse_authorization,
    verify_sigv4,
)

REGION = "us-east-1"
AKID = "AKIAUNITTESTKEY00001"
SECRET = "unit/test+secret/key"
SECRETS = {AKID: SECRET, "ASIAUNITTESTTEMP0001": "temporary/secret"}
BASE = "https://abc123defg.execute-api.us-east-1.amazonaws.com"
SESSION_PATH = "/prod/client/v4/accounts/acc1/workers/scripts/site/assets-upload-session"


class Captured:
    """A MockTransport that keeps what went over the wire (after auth ran)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"success": True})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def wire() -> Captured:
    return Captured()


def client_for(wire: Captured, credentials: Credentials) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(wire), auth=SigV4Auth(credentials, REGION))


def verify(
    request: httpx.Request,
    *,
    now: datetime | None = None,
    secrets: Mapping[str, str] = SECRETS,
    region: str = REGION,
    service: str = "execute-api",
    **overrides: Any,
) -> str:
    """Verify a captured request exactly as it would arrive (`overrides`: what changed on the
    way, as `url`, `headers` or `body`), by a verifier holding `secrets` for `region`."""
    return verify_sigv4(
        request.method,
        overrides.get("url", str(request.url)),
        overrides.get("headers", dict(request.headers.items())),
        overrides.get("body", request.content),
        secrets=secrets,
        region=region,
        service=service,
        now=now or datetime.now(UTC),
    )


# -- an oracle that is not botocore: AWS's published SigV4 test suite ("get-vanilla") ----------

VANILLA_HEADERS = {
    "Host": "example.amazonaws.com",
    "X-Amz-Date": "20150830T123600Z",
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    ),
}
VANILLA_SECRETS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
VANILLA_NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


def test_aws_test_suite_vector_verifies() -> None:
    caller = verify_sigv4(
        "GET",
        "https://example.amazonaws.com/",
        VANILLA_HEADERS,
        b"",
        secrets=VANILLA_SECRETS,
        region="us-east-1",
        service="service",
        now=VANILLA_NOW,
    )
    assert caller == "AKIDEXAMPLE"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "https://example.amazonaws.com/", b""),
        ("GET", "https://example.amazonaws.com/other", b""),
        ("GET", "https://example.amazonaws.com/?a=b", b""),
        ("GET", "https://example.amazonaws.com/", b"x"),
    ],
)
def test_aws_test_suite_vector_refuses_any_change(method: str, url: str, body: bytes) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_sigv4(
            method,
            url,
            VANILLA_HEADERS,
            body,
            secrets=VANILLA_SECRETS,
            region="us-east-1",
            service="service",
            now=VANILLA_NOW,
        )
    assert refused.value.message == SIGNATURE_MISMATCH
    assert refused.value.error_type == "InvalidSignatureException"


# -- the httpx auth ----------------------------------------------------------------------------


def test_signs_only_stable_headers_and_replaces_bearer(wire: Captured) -> None:
    with client_for(wire, Credentials(AKID, SECRET)) as client:
        client.post(
            BASE + SESSION_PATH,
            json={"manifest": {}},
            headers={"Authorization": "Bearer cf-token", "User-Agent": "Cloudflare/Python 4"},
        )
    request = wire.last
    authorization = request.headers.get_list("authorization")
    assert len(authorization) == 1
    assert authorization[0].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "Bearer" not in authorization[0]
    assert list(parse_authorization(authorization[0]).signed_headers) == [
        "content-type",
        "host",
        "x-amz-date",
    ]
    assert "x-amz-security-token" not in request.headers
    assert verify(request) == AKID


def test_signature_covers_the_exact_body(wire: Captured) -> None:
    with client_for(wire, Credentials(AKID, SECRET)) as client:
        client.post(BASE + SESSION_PATH, content=b'{"manifest": {"/a": 1}}')
    request = wire.last
    assert verify(request) == AKID
    with pytest.raises(SignatureError) as refused:
        verify(request, body=b'{"manifest": {"/a": 2}}')
    assert refused.value.message == SIGNATURE_MISMATCH


def test_no_content_type_means_it_is_not_signed(wire: Captured) -> None:
    with client_for(wire, Credentials(AKID, SECRET)) as client:
        client.get(BASE + "/prod/client/v4/health")
    request = wire.last
    assert "content-type" not in request.headers
    assert (
        "content-type" not in parse_authorization(request.headers["authorization"]).signed_headers
    )
    assert verify(request) == AKID


def test_percent_encoded_path_and_query(wire: Captured) -> None:
    path = "/prod/client/v4/accounts/acc1/workers/scripts/my%20site%2Fv2/assets-upload-session"
    with client_for(wire, Credentials(AKID, SECRET)) as client:
        client.post(BASE + path, params={"b": "x y+z", "a": "1~*"}, json={})
    request = wire.last
    assert request.url.raw_path.startswith(path.encode())
    assert verify(request) == AKID
    # The same signature does not cover the decoded path.
    decoded = str(request.url).replace("my%20site%2Fv2", "my site/v2")
    with pytest.raises(SignatureError):
        verify(request, url=decoded)


def test_session_token_is_sent_and_signed(wire: Captured) -> None:
    credentials = Credentials("ASIAUNITTESTTEMP0001", "temporary/secret", "session-token-123")
    with client_for(wire, credentials) as client:
        client.post(BASE + SESSION_PATH, json={}, headers={"X-Amz-Security-Token": "stale"})
    request = wire.last
    assert request.headers.get_list("x-amz-security-token") == ["session-token-123"]
    assert (
        "x-amz-security-token"
        in parse_authorization(request.headers["authorization"]).signed_headers
    )
    assert verify(request) == "ASIAUNITTESTTEMP0001"
    # A temporary key without its token is not a valid credential (even if signed that way).
    headers = {k: v for k, v in request.headers.items() if k != "x-amz-security-token"}
    headers["authorization"] = headers["authorization"].replace(";x-amz-security-token", "")
    with pytest.raises(SignatureError) as refused:
        verify(request, headers=headers)
    assert refused.value.message == UNRECOGNIZED_CLIENT
    # A different token than the one signed does not match.
    with pytest.raises(SignatureError) as mismatch:
        verify(request, headers={**dict(request.headers.items()), "x-amz-security-token": "other"})
    assert mismatch.value.message == SIGNATURE_MISMATCH


def test_refreshable_credentials_are_resolved_per_request(wire: Captured) -> None:
    generations = iter(f"AKIAGENERATION00000{n}" for n in (1, 2, 3))

    def refresh() -> dict[str, str]:
        # Expires inside botocore's advisory window (15 min): every use asks for a refresh.
        expiry = datetime.now(UTC) + timedelta(minutes=12)
        key = next(generations)
        return {
            "access_key": key,
            "secret_key": f"secret-of-{key}",
            "token": f"token-of-{key}",
            "expiry_time": expiry.isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        metadata=refresh(), refresh_using=refresh, method="unit-test"
    )
    secrets = {f"AKIAGENERATION00000{n}": f"secret-of-AKIAGENERATION00000{n}" for n in (1, 2, 3)}
    with client_for(wire, credentials) as client:
        client.get(BASE + "/prod/a")
        client.get(BASE + "/prod/b")
    used = []
    for request in wire.requests:
        used.append(verify(request, secrets=secrets))
        key = used[-1]
        assert request.headers["x-amz-security-token"] == f"token-of-{key}"
    assert used == ["AKIAGENERATION000002", "AKIAGENERATION000003"]


def test_from_session_uses_session_credentials_and_region(wire: Captured) -> None:
    session = boto3.Session(
        aws_access_key_id=AKID, aws_secret_access_key=SECRET, region_name="eu-west-1"
    )
    auth = SigV4Auth.from_session(session)
    assert auth.region == "eu-west-1"
    assert SigV4Auth.from_session(session, REGION).region == REGION
    with httpx.Client(transport=httpx.MockTransport(wire), auth=auth) as client:
        client.get(BASE + "/prod/x")
    assert "/eu-west-1/execute-api/aws4_request" in wire.last.headers["authorization"]


def test_from_session_without_region_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    session = boto3.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET)
    with pytest.raises(ValueError, match="region"):
        SigV4Auth.from_session(session)


# -- refusals, with API Gateway's messages -------------------------------------------------------


@pytest.fixture
def signed(wire: Captured) -> httpx.Request:
    with client_for(wire, Credentials(AKID, SECRET)) as client:
        client.post(BASE + SESSION_PATH, json={"manifest": {}})
    return wire.last


def test_missing_authorization(signed: httpx.Request) -> None:
    headers = {k: v for k, v in signed.headers.items() if k != "authorization"}
    with pytest.raises(SignatureError) as refused:
        verify(signed, headers=headers)
    assert refused.value.message == MISSING_AUTHENTICATION_TOKEN
    assert refused.value.error_type == "MissingAuthenticationTokenException"


def test_bearer_token_is_an_incomplete_signature(signed: httpx.Request) -> None:
    headers = {**dict(signed.headers.items()), "authorization": "Bearer cf-token"}
    with pytest.raises(SignatureError) as refused:
        verify(signed, headers=headers)
    assert refused.value.message.startswith("Invalid key=value pair (missing equal-sign)")
    expected = hashlib.sha256(b"Bearer cf-token").digest()
    assert base64.b64encode(expected).decode() in refused.value.message
    assert refused.value.error_type == "IncompleteSignatureException"


def test_missing_parameters_are_listed(signed: httpx.Request) -> None:
    headers = {k: v for k, v in signed.headers.items() if k not in ("authorization", "x-amz-date")}
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential=x=y"
    with pytest.raises(SignatureError) as refused:
        verify(signed, headers=headers)
    message = refused.value.message
    assert "requires 'Signature' parameter" in message
    assert "requires 'SignedHeaders' parameter" in message
    assert "either a 'X-Amz-Date' or a 'Date' header" in message
    assert "requires 'Credential'" not in message


def test_unknown_access_key(signed: httpx.Request) -> None:
    with pytest.raises(SignatureError) as refused:
        verify(signed, secrets={"AKIAOTHER": SECRET})
    assert refused.value.message == UNRECOGNIZED_CLIENT
    assert refused.value.error_type == "UnrecognizedClientException"


def test_wrong_secret(signed: httpx.Request) -> None:
    with pytest.raises(SignatureError) as refused:
        verify(signed, secrets={AKID: SECRET + "x"})
    assert refused.value.message == SIGNATURE_MISMATCH


def test_stale_and_future_dates(signed: httpx.Request) -> None:
    signed_at = datetime.strptime(signed.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC
    )
    assert verify(signed, now=signed_at + timedelta(minutes=4, seconds=59)) == AKID
    with pytest.raises(SignatureError) as expired:
        verify(signed, now=signed_at + timedelta(minutes=6))
    assert expired.value.message == (
        f"Signature expired: {signed.headers['x-amz-date']} is now earlier than "
        f"{(signed_at + timedelta(minutes=1)):%Y%m%dT%H%M%SZ} "
        f"({(signed_at + timedelta(minutes=6)):%Y%m%dT%H%M%SZ} - 5 min.)"
    )
    with pytest.raises(SignatureError) as early:
        verify(signed, now=signed_at - timedelta(minutes=6))
    assert early.value.message.startswith(
        f"Signature not yet current: {signed.headers['x-amz-date']} is still later than "
    )


@pytest.mark.parametrize(
    ("region", "service", "expected"),
    [
        (
            "eu-west-1",
            "execute-api",
            "Credential should be scoped to a valid region, not 'us-east-1'. ",
        ),
        (REGION, "lambda", "Credential should be scoped to correct service: 'lambda'. "),
    ],
)
def test_credential_scope_must_match(
    signed: httpx.Request, region: str, service: str, expected: str
) -> None:
    with pytest.raises(SignatureError) as refused:
        verify(signed, region=region, service=service)
    assert refused.value.message == expected


def test_host_must_be_signed(signed: httpx.Request) -> None:
    authorization = signed.headers["authorization"].replace("content-type;host;", "content-type;")
    headers = {**dict(signed.headers.items()), "authorization": authorization}
    with pytest.raises(SignatureError) as refused:
        verify(signed, headers=headers)
    assert refused.value.message.startswith("'Host' or ':authority' must be a 'SignedHeader'")


def test_unsigned_token_is_refused(signed: httpx.Request) -> None:
    headers = {**dict(signed.headers.items()), "x-amz-security-token": "injected"}
    with pytest.raises(SignatureError) as refused:
        verify(signed, headers=headers)
    assert refused.value.error_type == "IncompleteSignatureException"


def test_signed_header_changed_in_transit(signed: httpx.Request) -> None:
    headers = {**dict(signed.headers.items()), "content-type": "text/plain"}
    with pytest.raises(SignatureError) as refused:
        verify(signed, headers=headers)
    assert refused.value.message == SIGNATURE_MISMATCH


def test_unsigned_headers_may_change(signed: httpx.Request) -> None:
    headers = {**dict(signed.headers.items()), "user-agent": "proxy/1.0", "via": "1.1 proxy"}
    assert verify(signed, headers=headers) == AKID


def test_declared_payload_hash_must_match_the_body(wire: Captured) -> None:
    lie = hashlib.sha256(b"something else").hexdigest()
    with client_for(wire, Credentials(AKID, SECRET)) as client:
        client.post(
            BASE + SESSION_PATH, content=b"real body", headers={"X-Amz-Content-SHA256": lie}
        )
    with pytest.raises(SignatureError) as refused:
        verify(wire.last)
    assert refused.value.message == SIGNATURE_MISMATCH
