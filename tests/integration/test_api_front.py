"""The local API Gateway front over real loopback HTTP: SigV4 from httpx (our SigV4Auth), from
`curl --aws-sigv4` and from the official `cloudflare` SDK; the proxy event a Lambda receives;
API Gateway's own refusals in the Cloudflare envelope."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.credentials import Credentials

from assets_gateway_client.sigv4 import SigV4Auth
from gateway_local import sigv4_verify
from gateway_local.api_front import ApiFront, LocalIdentity, Route
from gateway_local.aws_resources import load_template
from gateway_local.http_server import BackgroundServer
from gateway_local.sigv4_verify import SIGNATURE_MISMATCH, UNRECOGNIZED_CLIENT
from helpers import HTTP_TIMEOUT

REGION = "us-east-1"
STAGE = "local"
SESSION = "/client/v4/accounts/{account_id}/workers/scripts/{script_name}/assets-upload-session"
DISPATCH = (
    "/client/v4/accounts/{account_id}/workers/dispatch/namespaces/{namespace}"
    "/scripts/{script_name}/assets-upload-session"
)
WEB_ROLE = "arn:aws:sts::111111111111:assumed-role/web-deployer"
# The deployer's secret holds "/" and "+"; TEMPORARY's key is an STS one (ASIA…, session token).
DEPLOYER = LocalIdentity(
    "AKIADEPLOYER00000001", "deployer/secret+key", f"{WEB_ROLE}/ci-session", "111111111111"
)
ALICE = LocalIdentity(
    "AKIAALICE00000000001", "alice-secret", "arn:aws:iam::222222222222:user/alice", "222222222222"
)
TEMPORARY = LocalIdentity(
    "ASIATEMPORARY0000001", "temporary-secret", f"{WEB_ROLE}/laptop", "111111111111"
)
SESSION_TOKEN = "FwoGZXIvYXdzEJr//////////wEaDFakeSessionToken=="
OK_ENVELOPE = {
    "success": True,
    "errors": [],
    "messages": [],
    "result": {"jwt": "upload-jwt", "buckets": [["a" * 32]]},
}


@dataclass
class Clock:
    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class RecordingHandler:
    """A stand-in Lambda: records what it got, answers a proxy result (or crashes)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    crash: bool = False

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.contexts.append(
            {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
            }
        )
        if self.crash:
            raise RuntimeError("boom in the handler")
        if self.result is not None:
            return self.result
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(OK_ENVELOPE),
            "isBase64Encoded": False,
        }

    @property
    def event(self) -> dict[str, Any]:
        assert len(self.events) == 1, f"expected one call, got {len(self.events)}"
        return self.events[0]


@dataclass
class Front:
    url: str
    handler: RecordingHandler
    clock: Clock

    def gateway_url(self, path: str) -> str:
        return f"{self.url}/{STAGE}{path}"


def make_front(handler: RecordingHandler, clock: Clock, **options: Any) -> ApiFront:
    return ApiFront(
        handler=handler,
        routes=[Route("POST", SESSION), Route("POST", DISPATCH), Route("GET", "/client/v4/ping")],
        identities=[DEPLOYER, ALICE, TEMPORARY],
        region=REGION,
        stage=STAGE,
        function_name="session-api",
        clock=clock,
        **options,
    )


@pytest.fixture
def api() -> Iterator[Front]:
    """A front on its own port (not the shared `stack` of conftest): a recording handler."""
    handler, clock = RecordingHandler(), Clock()
    with BackgroundServer(make_front(handler, clock, timeout_seconds=20), name="api") as server:
        yield Front(url=server.url, handler=handler, clock=clock)


def sigv4_client(identity: LocalIdentity = DEPLOYER, token: str | None = None) -> httpx.Client:
    credentials = Credentials(identity.access_key_id, identity.secret_access_key, token)
    return httpx.Client(auth=SigV4Auth(credentials, REGION), timeout=HTTP_TIMEOUT)


@dataclass(frozen=True)
class CurlAnswer:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def curl(
    url: str,
    *,
    user: str = f"{DEPLOYER.access_key_id}:{DEPLOYER.secret_access_key}",
    data: str | None = '{"manifest": {}}',
    headers: tuple[str, ...] = ("Content-Type: application/json",),
) -> CurlAnswer:
    command = ["curl", "-sS", "--aws-sigv4", f"aws:amz:{REGION}:execute-api", "--user", user]
    for header in headers:
        command += ["-H", header]
    if data is not None:
        command += ["--data-binary", data]
    command += ["-w", "\n%{http_code}", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return CurlAnswer(status=int(status), body=body)


def curl_major_version() -> int:
    done = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"curl (\d+)\.", done.stdout)
    assert match is not None
    return int(match.group(1))


def assert_gateway_refusal(
    status: int,
    headers: httpx.Headers,
    body: Any,
    *,
    code: int,
    message: str,
    error_type: str | None,
    envelope_code: int = 10000,
) -> None:
    assert status == code
    assert headers["content-type"] == "application/json"
    assert body == {
        "success": False,
        "errors": [{"code": envelope_code, "message": message}],
        "messages": [],
        "result": None,
    }
    assert headers.get("x-amzn-ErrorType") == error_type
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-amzn-RequestId"])


def assert_missing_authentication_token(api: Front, response: httpx.Response) -> None:
    """API Gateway's answer to no signature, or no such route or method: the Lambda never ran."""
    assert_gateway_refusal(
        response.status_code, response.headers, response.json(),
        code=403, message="Missing Authentication Token",
        error_type="MissingAuthenticationTokenException",
    )  # fmt: skip
    assert api.handler.events == []


SCRIPT_PATH = "/client/v4/accounts/acc1/workers/scripts/site/assets-upload-session"
ENCODED_PATH = "/client/v4/accounts/acc1/workers/scripts/my%20site%2Bv2/assets-upload-session"


# -- accepted signatures -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedPath:
    """A path and query both signers must get through, and what the Lambda then receives."""

    path: str
    query: str
    script_name: str
    expected_query: dict[str, str] | None


# Plain and percent-encoded script names, with no query, an encoded one and an unsorted one.
SIGNED_PATHS = pytest.mark.parametrize(
    "case",
    [
        SignedPath(SCRIPT_PATH, "", "site", None),
        SignedPath(SCRIPT_PATH, "?dry_run=true&b=x%20y", "site", {"dry_run": "true", "b": "x y"}),
        SignedPath(ENCODED_PATH, "", "my site+v2", None),
        SignedPath(ENCODED_PATH, "?b=2&a=1", "my site+v2", {"b": "2", "a": "1"}),
    ],
    ids=["plain", "query", "encoded", "encoded-unsorted-query"],
)


@SIGNED_PATHS
def test_httpx_signature_accepted(api: Front, case: SignedPath) -> None:
    with sigv4_client() as client:
        response = client.post(
            api.gateway_url(case.path) + case.query,
            json={"manifest": {}},
            headers={"Authorization": "Bearer would-be-cloudflare-token"},
        )
    assert response.status_code == 200, response.text
    assert response.json() == OK_ENVELOPE
    event = api.handler.event
    assert event["path"] == case.path
    assert event["pathParameters"] == {"account_id": "acc1", "script_name": case.script_name}
    assert event["queryStringParameters"] == case.expected_query
    assert event["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")


@SIGNED_PATHS
def test_curl_signature_accepted(api: Front, case: SignedPath) -> None:
    answer = curl(api.gateway_url(case.path) + case.query)
    assert answer.status == 200, answer.body
    assert answer.json() == OK_ENVELOPE
    event = api.handler.event
    assert event["pathParameters"] == {"account_id": "acc1", "script_name": case.script_name}
    assert event["queryStringParameters"] == case.expected_query
    assert event["body"] == '{"manifest": {}}'
    assert event["requestContext"]["identity"]["userAgent"].startswith("curl/")


def test_curl_788_needs_its_own_canonical_form(api: Front, monkeypatch: pytest.MonkeyPatch) -> None:
    """curl 7.x signs the path as sent (AWS wants it encoded twice) and the query unsorted:
    only the curl form in sigv4_verify makes such a request pass."""
    if curl_major_version() >= 8:
        # Newer curl canonicalises like AWS: the verifier's full set of forms still accepts it.
        assert curl(api.gateway_url(ENCODED_PATH) + "?b=2&a=1").status == 200
        return
    monkeypatch.setattr(sigv4_verify, "_CANONICAL_FORMS", (("aws", "aws"), ("aws", "sorted")))
    assert curl(api.gateway_url(SCRIPT_PATH)).status == 200
    assert curl(api.gateway_url(ENCODED_PATH)).json()["errors"][0]["message"] == (
        SIGNATURE_MISMATCH
    )
    assert curl(api.gateway_url(SCRIPT_PATH) + "?b=2&a=1").status == 403
    with sigv4_client() as client:
        assert client.post(api.gateway_url(ENCODED_PATH) + "?b=2&a=1", json={}).status_code == 200


def test_session_token_accepted_with_httpx(api: Front) -> None:
    with sigv4_client(TEMPORARY, SESSION_TOKEN) as client:
        response = client.post(api.gateway_url(SCRIPT_PATH), json={"manifest": {}})
    assert response.status_code == 200, response.text
    event = api.handler.event
    assert event["headers"]["X-Amz-Security-Token"] == SESSION_TOKEN
    assert event["requestContext"]["identity"]["accessKey"] == TEMPORARY.access_key_id
    assert event["requestContext"]["identity"]["userArn"] == TEMPORARY.principal_arn


def test_session_token_accepted_with_curl(api: Front) -> None:
    user = f"{TEMPORARY.access_key_id}:{TEMPORARY.secret_access_key}"
    headers = ("Content-Type: application/json", f"x-amz-security-token: {SESSION_TOKEN}")
    answer = curl(api.gateway_url(SCRIPT_PATH), user=user, headers=headers)
    assert answer.status == 200, answer.body
    assert api.handler.event["requestContext"]["identity"]["caller"].endswith(":laptop")
    # Without its token the temporary key is not a credential at all.
    refused = curl(api.gateway_url(SCRIPT_PATH), user=user)
    assert refused.status == 403
    assert refused.json()["errors"][0]["message"] == UNRECOGNIZED_CLIENT


def test_stage_prefix_is_optional(api: Front) -> None:
    with sigv4_client() as client:
        response = client.post(api.url + SCRIPT_PATH, json={"manifest": {}})
    assert response.status_code == 200, response.text
    event = api.handler.event
    assert event["path"] == SCRIPT_PATH
    assert event["requestContext"]["path"] == f"/{STAGE}{SCRIPT_PATH}"


def test_cloudflare_sdk_through_the_front(api: Front) -> None:
    import cloudflare

    with sigv4_client() as http_client:
        sdk = cloudflare.Cloudflare(
            base_url=api.gateway_url("/client/v4"),
            api_token="unused",
            http_client=http_client,
            max_retries=0,
        )
        session = sdk.workers.scripts.assets.upload.create(
            "site",
            account_id="acc1",
            manifest={"/index.html": {"hash": "a" * 32, "size": 12}},
        )
    assert session is not None
    assert session.jwt == "upload-jwt"
    assert session.buckets == [["a" * 32]]
    event = api.handler.event
    assert event["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert json.loads(event["body"]) == {
        "manifest": {"/index.html": {"hash": "a" * 32, "size": 12}}
    }


# -- the event and the context -------------------------------------------------------------------


def test_event_shape_for_an_assumed_role(api: Front) -> None:
    before = datetime.now(UTC)
    with sigv4_client() as client:
        response = client.post(
            api.gateway_url(SCRIPT_PATH) + "?a=1&a=2&b=x%2By",
            json={"manifest": {}},
            headers={"User-Agent": "deployer/1.0"},
        )
    assert response.status_code == 200, response.text
    event = api.handler.event
    assert set(event) == {
        "resource", "path", "httpMethod", "headers", "multiValueHeaders",
        "queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
        "stageVariables", "requestContext", "body", "isBase64Encoded",
    }  # fmt: skip
    assert event["resource"] == SESSION
    assert event["httpMethod"] == "POST"
    assert event["stageVariables"] is None
    assert event["queryStringParameters"] == {"a": "2", "b": "x+y"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x+y"]}
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert json.loads(event["body"]) == {"manifest": {}}
    assert event["isBase64Encoded"] is False

    context = event["requestContext"]
    assert context["resourcePath"] == SESSION
    assert context["httpMethod"] == "POST"
    assert context["stage"] == STAGE
    assert context["path"] == f"/{STAGE}{SCRIPT_PATH}"
    assert context["protocol"] == "HTTP/1.1"
    assert context["accountId"] == "123456789012"
    assert re.fullmatch(r"[a-z0-9]{10}", context["apiId"])
    assert re.fullmatch(r"[0-9a-f]{6}", context["resourceId"])
    assert context["domainName"] == api.url.removeprefix("http://")
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert context["extendedRequestId"] == response.headers["x-amz-apigw-id"]
    epoch = datetime.fromtimestamp(context["requestTimeEpoch"] / 1000, UTC)
    assert before - timedelta(seconds=1) <= epoch <= datetime.now(UTC)
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["requestTime"])

    identity = context["identity"]
    assert identity["userArn"] == DEPLOYER.principal_arn
    assert identity["accountId"] == DEPLOYER.account_id
    assert identity["accessKey"] == DEPLOYER.access_key_id
    assert re.fullmatch(r"AROA[A-Z0-9]{17}:ci-session", identity["caller"])
    assert identity["user"] == identity["caller"]
    assert identity["sourceIp"] == "127.0.0.1"
    assert identity["userAgent"] == "deployer/1.0"
    for name in (
        "cognitoIdentityPoolId", "cognitoIdentityId", "principalOrgId",
        "cognitoAuthenticationType", "cognitoAuthenticationProvider",
    ):  # fmt: skip
        assert name in identity
        assert identity[name] is None


def test_event_parses_with_powertools_models(api: Front) -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
    from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel

    with sigv4_client() as client:
        client.post(api.gateway_url(ENCODED_PATH), json={"manifest": {}})
    model = APIGatewayProxyEventModel.model_validate(api.handler.event)
    assert model.requestContext.identity.userArn == DEPLOYER.principal_arn
    assert model.pathParameters == {"account_id": "acc1", "script_name": "my site+v2"}
    wrapped = APIGatewayProxyEvent(api.handler.event)
    assert (
        wrapped.request_context.identity.caller
        == api.handler.event["requestContext"]["identity"]["caller"]
    )
    assert wrapped.headers.get("content-type") == "application/json"


def test_same_role_sessions_share_the_role_id_and_users_get_aida(api: Front) -> None:
    with sigv4_client() as client:
        client.post(api.gateway_url(SCRIPT_PATH), json={})
    with sigv4_client(TEMPORARY, SESSION_TOKEN) as client:
        client.post(api.gateway_url(SCRIPT_PATH), json={})
    with sigv4_client(ALICE) as client:
        client.post(api.gateway_url(SCRIPT_PATH), json={})
    ci, laptop, alice = (e["requestContext"]["identity"] for e in api.handler.events)
    assert ci["caller"].split(":")[0] == laptop["caller"].split(":")[0]
    assert ci["caller"] != laptop["caller"]
    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", alice["caller"])
    assert alice["user"] == alice["caller"]
    assert alice["userArn"] == ALICE.principal_arn
    assert alice["accountId"] == "222222222222"


def test_lambda_context(api: Front) -> None:
    with sigv4_client() as client:
        client.post(api.gateway_url(SCRIPT_PATH), json={})
    (context,) = api.handler.contexts
    assert context["function_name"] == "session-api"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:session-api"
    )
    assert context["log_group_name"] == "/aws/lambda/session-api"
    assert "[$LATEST]" in context["log_stream_name"]
    assert re.fullmatch(r"[0-9a-f-]{36}", context["aws_request_id"])
    assert context["aws_request_id"] != api.handler.event["requestContext"]["requestId"]
    assert 0 < context["remaining_ms"] <= 20_000


def test_binary_and_gzip_bodies_are_base64(api: Front) -> None:
    binary = bytes(range(256))
    compressed = gzip.compress(b'{"manifest": {}}')
    with sigv4_client() as client:
        client.post(api.gateway_url(SCRIPT_PATH), content=binary)
        client.post(
            api.gateway_url(SCRIPT_PATH),
            content=compressed,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    raw, zipped = api.handler.events
    assert raw["isBase64Encoded"] is True
    assert base64.b64decode(raw["body"]) == binary
    assert zipped["isBase64Encoded"] is True
    assert gzip.decompress(base64.b64decode(zipped["body"])) == b'{"manifest": {}}'


def test_proxy_result_is_translated(api: Front) -> None:
    api.handler.result = {
        "statusCode": 201,
        "headers": {"Retry-After": "7", "X-Single": "one"},
        "multiValueHeaders": {"X-Multi": ["a", "b"], "X-Single": ["multi-wins"]},
        "body": base64.b64encode(b"\x00\x01binary").decode(),
        "isBase64Encoded": True,
    }
    with sigv4_client() as client:
        response = client.post(api.gateway_url(SCRIPT_PATH), json={})
    assert response.status_code == 201
    assert response.content == b"\x00\x01binary"
    assert response.headers["retry-after"] == "7"
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get_list("x-single") == ["multi-wins"]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-RequestId"]


# -- refusals ---------------------------------------------------------------------------------


def test_missing_auth(api: Front) -> None:
    response = httpx.post(api.gateway_url(SCRIPT_PATH), json={}, timeout=HTTP_TIMEOUT)
    assert_missing_authentication_token(api, response)


def test_bearer_only_is_an_incomplete_signature(api: Front) -> None:
    response = httpx.post(
        api.gateway_url(SCRIPT_PATH),
        json={},
        headers={"Authorization": "Bearer cf-token"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
    assert response.json()["errors"][0]["message"].startswith("Invalid key=value pair")
    assert api.handler.events == []


def test_tampered_body(api: Front) -> None:
    auth = SigV4Auth(Credentials(DEPLOYER.access_key_id, DEPLOYER.secret_access_key), REGION)
    original = httpx.Request("POST", api.gateway_url(SCRIPT_PATH), json={"manifest": {}})
    auth.sign(original)
    headers = {k: v for k, v in original.headers.items() if k != "content-length"}
    tampered = httpx.Request(
        "POST", original.url, headers=headers, content=b'{"manifest": {"/x": {}}}'
    )
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        response = client.send(tampered)
    assert_gateway_refusal(
        response.status_code, response.headers, response.json(),
        code=403, message=SIGNATURE_MISMATCH, error_type="InvalidSignatureException",
    )  # fmt: skip
    assert api.handler.events == []
    # The untouched request goes through: the refusal was about the body.
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        assert client.send(original).status_code == 200


@pytest.mark.parametrize(
    ("signer", "message", "error_type"),
    [
        (
            LocalIdentity(DEPLOYER.access_key_id, "not-the-secret", "", ""),
            SIGNATURE_MISMATCH,
            "InvalidSignatureException",
        ),
        (
            LocalIdentity("AKIASTRANGER00000001", "whatever", "", ""),
            UNRECOGNIZED_CLIENT,
            "UnrecognizedClientException",
        ),
    ],
    ids=["wrong-secret", "unknown-access-key"],
)
def test_a_wrong_secret_or_an_unknown_key_is_refused(
    api: Front, signer: LocalIdentity, message: str, error_type: str
) -> None:
    with sigv4_client(signer) as client:
        response = client.post(api.gateway_url(SCRIPT_PATH), json={})
    assert_gateway_refusal(
        response.status_code, response.headers, response.json(),
        code=403, message=message, error_type=error_type,
    )  # fmt: skip
    assert api.handler.events == []


def test_wrong_secret_curl(api: Front) -> None:
    answer = curl(api.gateway_url(SCRIPT_PATH), user=f"{DEPLOYER.access_key_id}:wrong")
    assert answer.status == 403
    assert answer.json()["errors"] == [{"code": 10000, "message": SIGNATURE_MISMATCH}]
    assert api.handler.events == []


@pytest.mark.parametrize(
    ("offset", "prefix"),
    [
        (timedelta(minutes=6), "Signature expired: "),
        (timedelta(minutes=-6), "Signature not yet current: "),
    ],
)
def test_stale_date(api: Front, offset: timedelta, prefix: str) -> None:
    api.clock.offset = offset
    with sigv4_client() as client:
        response = client.post(api.gateway_url(SCRIPT_PATH), json={})
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    message = response.json()["errors"][0]["message"]
    assert message.startswith(prefix)
    assert message.endswith("5 min.)")
    assert api.handler.events == []
    api.clock.offset = timedelta(minutes=4)
    with sigv4_client() as client:
        assert client.post(api.gateway_url(SCRIPT_PATH), json={}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/client/v4/accounts/acc1/workers/scripts/site/other"),
        ("POST", "/client/v4/accounts/acc1/workers/scripts/a/b/assets-upload-session"),
        ("POST", "/client/v4/accounts//workers/scripts/site/assets-upload-session"),
        ("GET", SCRIPT_PATH),
        ("POST", "/client/v4/ping"),
    ],
)
def test_unknown_route_or_method(api: Front, method: str, path: str) -> None:
    with sigv4_client() as client:
        response = client.request(method, api.gateway_url(path), content=b"{}")
    assert_missing_authentication_token(api, response)


def test_get_route_and_dispatch_route(api: Front) -> None:
    dispatch = (
        "/client/v4/accounts/acc1/workers/dispatch/namespaces/ns%2F1/scripts/s"
        "/assets-upload-session"
    )
    with sigv4_client() as client:
        assert client.get(api.gateway_url("/client/v4/ping")).status_code == 200
        assert client.post(api.gateway_url(dispatch), json={}).status_code == 200
    ping, session = api.handler.events
    assert ping["body"] is None
    assert ping["pathParameters"] is None
    assert session["resource"] == DISPATCH
    assert session["pathParameters"] == {
        "account_id": "acc1",
        "namespace": "ns/1",
        "script_name": "s",
    }


def test_handler_exception_is_502(api: Front, caplog: pytest.LogCaptureFixture) -> None:
    api.handler.crash = True
    with caplog.at_level(logging.ERROR, logger="gateway_local.api_front"), sigv4_client() as client:
        response = client.post(api.gateway_url(SCRIPT_PATH), json={})
    assert_gateway_refusal(
        response.status_code, response.headers, response.json(),
        code=502, message="Internal server error", error_type="InternalServerErrorException",
        envelope_code=19099,
    )  # fmt: skip
    assert len(api.handler.events) == 1
    assert any("boom in the handler" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize(
    "result",
    [
        {"body": "no status"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!!", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_result_is_502(api: Front, result: dict[str, Any]) -> None:
    api.handler.result = result
    with sigv4_client() as client:
        response = client.post(api.gateway_url(SCRIPT_PATH), json={})
    assert response.status_code == 502
    assert response.json()["errors"][0]["message"] == "Internal server error"


def test_oversize_body_is_413() -> None:
    handler, clock = RecordingHandler(), Clock()
    front = make_front(handler, clock, max_body_bytes=1024)
    with BackgroundServer(front, name="api") as server, sigv4_client() as client:
        at_limit = client.post(f"{server.url}{SCRIPT_PATH}", content=b"x" * 1024)
        over = client.post(f"{server.url}{SCRIPT_PATH}", content=b"x" * 1025)
    assert at_limit.status_code == 200
    assert_gateway_refusal(
        over.status_code, over.headers, over.json(),
        code=413, message="Request Too Long", error_type=None, envelope_code=19002,
    )  # fmt: skip
    assert len(handler.events) == 1


# -- the template's GatewayResponses -------------------------------------------------------------

TEMPLATE_GATEWAY_RESPONSES: dict[str, Any] = load_template()["Resources"]["SessionApi"][
    "Properties"
]["GatewayResponses"]


def expected_gateway_answer(response_type: str, message: str) -> tuple[dict[str, str], Any]:
    """What API Gateway answers for `response_type`, read from template.yaml by the test itself
    (not by the front's renderer): the headers and the rendered JSON body."""
    spec = TEMPLATE_GATEWAY_RESPONSES[response_type]
    headers = {
        name: value.strip("'") for name, value in spec["ResponseParameters"]["Headers"].items()
    }
    body = spec["ResponseTemplates"]["application/json"].replace(
        "$context.error.messageString", json.dumps(message)
    )
    return headers, json.loads(body)


def raw_exchange(url: str, request: bytes, *, close_write: bool = False) -> tuple[int, bytes]:
    """Send bytes as they are (no client fixes them up) and read the whole answer."""
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=30) as connection:
        connection.sendall(request)
        if close_write:  # the client gives up mid-body
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def chunked_post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("response_type", "status", "message", "provoke"),
    [
        ("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", "unsigned"),
        ("INVALID_SIGNATURE", 403, SIGNATURE_MISMATCH, "wrong secret"),
        ("DEFAULT_4XX", 403, UNRECOGNIZED_CLIENT, "unknown key"),
        ("REQUEST_TOO_LARGE", 413, "Request Too Long", "too large"),
        ("BAD_REQUEST_BODY", 400, "Invalid request body", "bad chunk"),
        ("DEFAULT_5XX", 502, "Internal server error", "crash"),
    ],
)
def test_the_fronts_own_answers_are_the_templates_gateway_responses(
    response_type: str, status: int, message: str, provoke: str
) -> None:
    # Given a front with the template's GatewayResponses (what the local stack runs)
    handler, clock = RecordingHandler(crash=provoke == "crash"), Clock()
    front = make_front(handler, clock, max_body_bytes=1024)
    stranger = LocalIdentity("AKIASTRANGER00000001", "whatever", "", "")
    wrong = LocalIdentity(DEPLOYER.access_key_id, "not-the-secret", "", "")
    with BackgroundServer(front, name="api") as server:
        url = f"{server.url}{SCRIPT_PATH}"
        # When API Gateway itself has to answer
        if provoke == "bad chunk":
            got_status, raw_body = raw_exchange(
                url, chunked_post(SCRIPT_PATH, b"zz\r\n{}\r\n0\r\n\r\n")
            )
            got_headers: dict[str, str] = {"Content-Type": "application/json"}
            got_body = json.loads(raw_body)
        else:
            identity = {"unknown key": stranger, "wrong secret": wrong}.get(provoke, DEPLOYER)
            with sigv4_client(identity) as client:
                if provoke == "unsigned":
                    answer = httpx.post(url, json={}, timeout=HTTP_TIMEOUT)
                else:
                    answer = client.post(
                        url, content=b"x" * (2048 if provoke == "too large" else 2)
                    )
            got_status, got_headers, got_body = (
                answer.status_code,
                dict(answer.headers),
                answer.json(),
            )
    # Then the answer is exactly the template's gateway response for that type
    headers, body = expected_gateway_answer(response_type, message)
    assert got_status == int(TEMPLATE_GATEWAY_RESPONSES[response_type].get("StatusCode", status))
    assert got_body == body
    lowered = {name.lower(): value for name, value in got_headers.items()}
    for name, value in headers.items():
        assert lowered[name.lower()] == value
    assert len(handler.events) == (1 if provoke == "crash" else 0)


def test_every_gateway_response_the_front_gives_is_customised_in_the_template() -> None:
    # The types the front answers with (above) must each have their envelope in the template;
    # a type dropped from the template would silently fall back to DEFAULT_4XX's code.
    produced = {
        "MISSING_AUTHENTICATION_TOKEN",
        "INVALID_SIGNATURE",
        "REQUEST_TOO_LARGE",
        "BAD_REQUEST_BODY",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    assert produced <= set(TEMPLATE_GATEWAY_RESPONSES)
    codes = {
        name: json.loads(
            spec["ResponseTemplates"]["application/json"].replace(
                "$context.error.messageString", '"m"'
            )
        )["errors"][0]["code"]
        for name, spec in TEMPLATE_GATEWAY_RESPONSES.items()
    }
    # DESIGN.md's table: 413 is 19002, a malformed body 19000, a crash 19099.
    assert (codes["REQUEST_TOO_LARGE"], codes["BAD_REQUEST_BODY"], codes["DEFAULT_5XX"]) == (
        19002,
        19000,
        19099,
    )


@pytest.mark.parametrize(
    ("request_bytes", "close_write"),
    [
        (chunked_post(SCRIPT_PATH, b"zz\r\n{}\r\n0\r\n\r\n"), False),  # not a hex chunk size
        (chunked_post(SCRIPT_PATH, b"-5\r\n{}\r\n0\r\n\r\n"), False),  # a negative one
        (chunked_post(SCRIPT_PATH, b'100\r\n{"manifest"'), True),  # cut short mid-chunk
        (chunked_post(SCRIPT_PATH, b"2\r\n{}\r\n"), True),  # no last chunk
        (
            f"POST {SCRIPT_PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n"
            "Connection: close\r\n\r\n{}".encode(),
            True,
        ),  # shorter than its Content-Length
    ],
)
def test_malformed_bodies_are_a_clean_400_19000(
    api: Front, caplog: pytest.LogCaptureFixture, request_bytes: bytes, close_write: bool
) -> None:
    with caplog.at_level(logging.DEBUG):
        status, body = raw_exchange(api.url + SCRIPT_PATH, request_bytes, close_write=close_write)
    assert status == 400
    envelope = json.loads(body)
    assert envelope["success"] is False
    assert envelope["errors"][0]["code"] == 19000
    assert b"Traceback" not in body
    assert not [record for record in caplog.records if record.exc_info]  # nothing unhandled
    assert api.handler.events == []
