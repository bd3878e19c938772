"""The session handler on the sample API Gateway events of events/, against moto server and the
Cloudflare emulator over loopback; and the pipeline's failure paths with real adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assets_gateway.doors.session import SessionService
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from assets_gateway.ports.audit import AuditRecord
from assets_gateway.ports.sessions import Outcome, SessionRequest
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT, ResourceNames, create_tables, load_template
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import (
    WEB_DEPLOYER,
    demo_policy,
    web_session_request,
)
from gateway_local.stack import LocalStack

EVENTS = REPO_ROOT / "events" / "session_api"
GOOD_BODY = (
    b'{"manifest": {"/index.html": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}}'
)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def invoke(stack: LocalStack, event_name: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = stack.session_api.lambda_handler(
        load_event(event_name), lambda_context("SessionApiFunction")
    )
    headers = {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return result["statusCode"], json.loads(result["body"]), headers


class RecordingAudit:
    """An audit sink that keeps records in memory (the sink is a dependency of the service)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(
    ("event_name", "status", "code"),
    [
        ("invalid_hash", 400, 19001),
        ("not_json", 400, 19000),
        ("form_content_type", 400, 19000),
        ("invalid_script_name", 400, 19000),
        ("caller_without_team", 403, 19010),
        ("policy_denied", 403, 19011),
    ],
)
def test_refusals_answer_the_envelope_and_forward_nothing(
    stack: LocalStack, event_name: str, status: int, code: int
) -> None:
    answer_status, envelope, headers = invoke(stack, event_name)
    assert answer_status == status
    assert envelope["success"] is False
    assert envelope["result"] is None
    assert envelope["errors"][0]["code"] == code
    assert headers["Content-Type"] == "application/json"
    assert stack.emulator.calls == []


def test_invalid_hash_event_points_at_the_entry(stack: LocalStack) -> None:
    _, envelope, _ = invoke(stack, "invalid_hash")
    assert envelope["errors"][0]["source"] == {"pointer": "/manifest/~1index.html/hash"}


@pytest.mark.parametrize("event_name", ["create_session", "create_dispatch_session"])
def test_good_events_create_a_session(stack: LocalStack, event_name: str) -> None:
    status, envelope, headers = invoke(stack, event_name)
    assert status == 200
    assert envelope["success"] is True
    assert len([h for bucket in envelope["result"]["buckets"] for h in bucket]) == 3
    assert headers["X-Request-Id"] == load_event(event_name)["requestContext"]["requestId"]
    assert headers["cf-ray"]
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1


def test_cloudflare_refusal_keeps_its_status_and_envelope(stack: LocalStack) -> None:
    status, envelope, _ = invoke(stack, "unlinked_account")
    assert status == 403
    assert envelope["errors"][0]["code"] == 10000
    assert stack.emulator.calls_to("/assets-upload-session")[0].status == 403


def service_for(stack: LocalStack, audit: RecordingAudit, **overrides: str) -> SessionService:
    """The real wiring (boto3 over moto server, httpx to the emulator), some settings changed."""
    settings = Settings.from_environ({**stack.handler_environment(), **overrides})
    return build_session_service(settings, aws=stack.aws, audit=audit)


def web_request(body: bytes = GOOD_BODY) -> SessionRequest:
    return web_session_request(body, request_id="req-test")


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        (Fault(status=500), 502, "Cloudflare answered 500"),
        (Fault(status=503), 502, "Cloudflare answered 503"),
        (
            Fault(status=502, body=b"<html><h1>502 Bad Gateway</h1></html>"),
            502,
            "answered 502",
        ),
        (Fault(garbage=True), 502, "not an API envelope"),
        (Fault(body=b'{"success": true, "errors": [], "result": {"buckets": []}}'), 502, "usable"),
        (Fault(body=b'{"success": tr'), 502, "not an API envelope"),
        (Fault(reset=True), 502, "unreachable"),
        # An answer as late as a busy machine makes it is still an answer, not a timeout.
        (Fault(status=503, delay_s=0.5), 502, "Cloudflare answered 503"),
        (Fault(hold=True), 504, "in time"),
    ],
)
def test_upstream_failures_become_19031(
    stack: LocalStack, audit: RecordingAudit, fault: Fault, status: int, message: str
) -> None:
    # One attempt: how each failure is answered (retries are tested in test_upstream_resilience).
    # Only the timeout case has a short read timeout, and there Cloudflare never answers (the
    # emulator holds the request until the client hangs up): no answer races the client's
    # timeout, however busy the machine. The others keep the default, far above any answer.
    timeout = {"UPSTREAM_READ_TIMEOUT_SECONDS": "0.2"} if fault.hold else {}
    service = service_for(stack, audit, UPSTREAM_ATTEMPTS="1", **timeout)
    stack.emulator.inject_fault(fault)
    result = service.create_session(web_request())
    envelope = result.reply.json()
    assert result.reply.status == status
    assert envelope["errors"][0]["code"] == 19031
    assert message in envelope["errors"][0]["message"]
    assert result.outcome is Outcome.UPSTREAM_ERROR
    assert audit.records[-1].outcome == "upstream_error"
    # A client that timed out can be back before the emulator's thread even read its request.
    stack.emulator.wait_for_calls(1)
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1


def test_cloudflare_unreachable(stack: LocalStack, audit: RecordingAudit) -> None:
    service = service_for(stack, audit, CLOUDFLARE_API_BASE_URL="http://127.0.0.1:9/client/v4")
    result = service.create_session(web_request())
    assert (result.reply.status, result.reply.json()["errors"][0]["code"]) == (502, 19031)


def test_missing_token_secret_is_503_19030(stack: LocalStack, audit: RecordingAudit) -> None:
    service = service_for(stack, audit, CLOUDFLARE_TOKEN_SECRET_ID="does-not-exist")
    result = service.create_session(web_request())
    assert (result.reply.status, result.reply.json()["errors"][0]["code"]) == (503, 19030)
    assert stack.emulator.calls == []


@pytest.fixture
def empty_control_table(stack: LocalStack) -> Iterator[str]:
    names = ResourceNames.for_prefix("empty")
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    create_tables(dynamodb, names, load_template())
    yield names.control_table
    # Every table made (the template's), so the next test that asks for one can make them again.
    for table in dynamodb.list_tables()["TableNames"]:
        if table.startswith("empty-"):
            dynamodb.delete_table(TableName=table)


def test_no_policy_published_is_503_19012(
    stack: LocalStack, audit: RecordingAudit, empty_control_table: str
) -> None:
    service = service_for(stack, audit, CONTROL_TABLE_NAME=empty_control_table)
    result = service.create_session(web_request())
    envelope = result.reply.json()
    assert (result.reply.status, envelope["errors"][0]["code"]) == (503, 19012)
    assert "no policy has been published" in envelope["errors"][0]["message"]


def test_a_current_item_without_a_string_document_is_no_policy_published(
    stack: LocalStack, audit: RecordingAudit, empty_control_table: str
) -> None:
    stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url).put_item(
        TableName=empty_control_table,
        Item={"id": {"S": "policy#current"}, "document": {"B": b'{"version": 1}'}},
    )
    service = service_for(stack, audit, CONTROL_TABLE_NAME=empty_control_table)
    result = service.create_session(web_request())
    envelope = result.reply.json()
    assert (result.reply.status, envelope["errors"][0]["code"]) == (503, 19012)
    assert "no policy has been published" in envelope["errors"][0]["message"]


def test_unreadable_policy_store_is_503_19012(stack: LocalStack, audit: RecordingAudit) -> None:
    service = service_for(stack, audit, CONTROL_TABLE_NAME="no-such-table")
    result = service.create_session(web_request())
    envelope = result.reply.json()
    assert (result.reply.status, envelope["errors"][0]["code"]) == (503, 19012)
    assert "unavailable" in envelope["errors"][0]["message"]


def test_invalid_stored_policy_is_503_not_a_crash(stack: LocalStack, audit: RecordingAudit) -> None:
    current = stack.policy_history.current()
    assert current is not None
    # The current item corrupted in place (same version), as a hand edit would leave it.
    version = str(current.version)
    stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url).put_item(
        TableName=stack.names.control_table,
        Item={
            "id": {"S": "policy#current"},
            "document": {"S": '{"version": ' + version + ', "policy": {}}'},
            "version": {"N": version},
        },
    )
    result = service_for(stack, audit).create_session(web_request())
    assert (result.reply.status, result.reply.json()["errors"][0]["code"]) == (503, 19012)


def test_suspended_team_is_refused_with_19010(stack: LocalStack, audit: RecordingAudit) -> None:
    policy = demo_policy()
    policy["teams"]["web"]["suspended"] = True
    version = stack.publish_policy(policy)
    result = service_for(stack, audit).create_session(web_request())
    envelope = result.reply.json()
    assert (result.reply.status, envelope["errors"][0]["code"]) == (403, 19010)
    assert "suspended" in envelope["errors"][0]["message"]
    assert audit.records[-1].policy_version == version


def test_one_audit_record_per_request_with_the_decision(
    stack: LocalStack, audit: RecordingAudit
) -> None:
    service = service_for(stack, audit)
    allowed = service.create_session(web_request())
    refused = service.create_session(
        web_request(b'{"manifest": {"/x": {"hash": "ab", "size": -5}}}')
    )
    assert (allowed.reply.status, refused.reply.status) == (200, 400)
    assert len(audit.records) == 2
    first, second = audit.records
    assert first.outcome == "allowed"
    assert (first.team, first.entries, first.bytes, first.upstream_status) == ("web", 1, 17, 200)
    assert first.principal == WEB_DEPLOYER.principal_arn
    assert first.token_fingerprint is not None
    assert len(first.token_fingerprint) == 12
    assert first.latency_ms is not None
    assert (second.outcome, second.code, second.status) == ("refused_request", 19001, 400)
    assert second.upstream_status is None
    assert second.reasons == ["size must be a whole number of bytes from 0 to 26214400"]


def test_unexpected_errors_are_audited_then_raised(
    stack: LocalStack, audit: RecordingAudit
) -> None:
    def crash(_: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError("a bug, not a domain error")

    settings = Settings.from_environ(stack.handler_environment())
    service = build_session_service(
        settings,
        aws=stack.aws,
        audit=audit,
        http=httpx.Client(transport=httpx.MockTransport(crash)),
    )
    with pytest.raises(ZeroDivisionError):
        service.create_session(web_request())
    assert audit.records[-1].outcome == "internal_error"
    assert audit.records[-1].team == "web"


def test_handler_answers_a_clean_500_envelope_on_a_crash(stack: LocalStack) -> None:
    event = load_event("create_session")
    del event["requestContext"]["identity"]
    result = stack.session_api.lambda_handler(event, lambda_context("SessionApiFunction"))
    envelope = json.loads(result["body"])
    assert result["statusCode"] == 500
    assert envelope["errors"][0]["code"] == 19099
    assert "Traceback" not in result["body"]
    assert "KeyError" not in result["body"]


def test_usage_event_answers_the_callers_team(stack: LocalStack) -> None:
    status, envelope, headers = invoke(stack, "usage")
    assert status == 200
    assert envelope["result"]["team"] == "web"
    assert [q["name"] for q in envelope["result"]["quotas"]] == [
        "sessions-minute",
        "sessions-day",
        "entries-day",
        "bytes-day",
        "deploy-calls-minute",
        "deploys-hour",
        "deploys-day",
    ]
    assert "RateLimit-Policy" in headers
