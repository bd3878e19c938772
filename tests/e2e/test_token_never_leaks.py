"""The org's Cloudflare token never appears in a log line, a response, an error or a metric.

A full run through the local stack (successes, refusals, Cloudflare refusals, upstream faults,
a crash, and a Cloudflare answer that echoes the token) with every logger at DEBUG; then every
captured byte is searched for the token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import cloudflare
import httpx
import pytest
from form_bodies import CONTENT_TYPE, form

from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    OUTSIDER,
    UNLINKED_ACCOUNT_ID,
    WEB_DEPLOYER,
    web_session_request,
)
from gateway_local.stack import LocalStack
from helpers import (
    HTTP_TIMEOUT,
    cloudflare_sdk,
    every_log_record,
    manifest_of,
    numbered_files,
    session_url,
    signed_client,
)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    """All log records of every logger, at DEBUG, formatted as they would be shipped."""
    capture = _Capture()
    with every_log_record(capture):
        yield capture.lines


def test_token_appears_in_no_output(
    stack: LocalStack, every_log_line: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    token = stack.cloudflare_token
    manifest = {"manifest": manifest_of(numbered_files(5))}
    answers: list[httpx.Response] = []
    with signed_client(WEB_DEPLOYER) as web, signed_client(DOCS_CI) as docs:
        answers.append(web.post(session_url(stack), json=manifest))
        answers.append(web.post(session_url(stack, account=UNLINKED_ACCOUNT_ID), json=manifest))
        answers.append(docs.post(session_url(stack, "web-x"), json=manifest))
        answers.append(web.post(session_url(stack), content=b"{not json"))
        for fault in (
            # Every attempt of the upstream's retries fails.
            Fault(status=500, count=3),
            Fault(garbage=True, count=3),
            Fault(reset=True, count=3),
            Fault(status=401),
            # A misbehaving upstream that echoes the credential it was sent.
            Fault(
                status=400,
                body=json.dumps(
                    {"success": False, "errors": [{"code": 1, "message": f"bad {token}"}]}
                ).encode(),
            ),
        ):
            stack.emulator.inject_fault(fault)
            answers.append(web.post(session_url(stack), json=manifest))
    with signed_client(OUTSIDER) as outsider:
        answers.append(outsider.post(session_url(stack), json=manifest))
    answers.append(httpx.post(session_url(stack), json=manifest, timeout=HTTP_TIMEOUT))

    sdk = cloudflare_sdk(stack, DOCS_CI)
    with pytest.raises(cloudflare.PermissionDeniedError) as refused:
        sdk.workers.scripts.assets.upload.create(
            "web-x", account_id=DEMO_ACCOUNT_ID, manifest=manifest["manifest"]
        )

    statuses = [answer.status_code for answer in answers]
    assert statuses == [200, 403, 403, 400, 502, 502, 502, 401, 400, 403, 403]
    assert "[REDACTED]" in answers[8].text
    outputs = [
        *(answer.text for answer in answers),
        *(json.dumps(dict(answer.headers)) for answer in answers),
        str(refused.value),
        json.dumps(refused.value.body),
        *every_log_line,
    ]
    captured = capfd.readouterr()
    outputs += [captured.out, captured.err]

    # The capture really saw the run: one audit record per request that reached the handler.
    audit_lines = [line for line in every_log_line if '"audit"' in line]
    assert len(audit_lines) >= 10
    assert any('"token_fingerprint":"' in line for line in audit_lines)
    assert all(token not in output for output in outputs)
    # The emulator did receive it: the search above would have found a leak.
    assert (
        stack.emulator.calls_to("/assets-upload-session")[0]
        .headers["authorization"]
        .endswith(token)
    )


def test_reading_the_token_at_debug_level_logs_no_secret(
    stack: LocalStack, every_log_line: list[str]
) -> None:
    # A fresh service reads the secret now (the stack's handler has it cached), while every
    # logger is at DEBUG: botocore would log GetSecretValue's body unless capped.
    settings = Settings.from_environ(stack.handler_environment())
    service = build_session_service(settings, aws=stack.aws)
    result = service.create_session(
        web_session_request(
            json.dumps({"manifest": manifest_of({"/a": b"a"})}).encode(), request_id="debug-run"
        )
    )
    assert result.reply.status == 200
    assert any("GetSecretValue" in line or "secretsmanager" in line for line in every_log_line)
    assert all(stack.cloudflare_token not in line for line in every_log_line)


def test_the_deploy_door_leaks_the_token_nowhere(
    stack: LocalStack, every_log_line: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    token = stack.cloudflare_token
    scripts = f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts"
    metadata = {"main_module": "index.js", "compatibility_date": "2025-01-01"}
    worker = form(
        [
            ("metadata", json.dumps(metadata).encode(), None, None),
            ("index.js", b"export default {}", "index.js", "application/javascript+module"),
        ]
    )
    echo = json.dumps({"success": False, "errors": [{"code": 1, "message": f"bad {token}"}]})
    answers: list[httpx.Response] = []
    with signed_client(WEB_DEPLOYER) as web:
        multipart = {"Content-Type": CONTENT_TYPE}
        answers.append(web.get(f"{scripts}/web-leak/settings"))  # 10007 passed through
        answers.append(web.put(f"{scripts}/web-leak", content=worker, headers=multipart))
        answers.append(web.post(f"{scripts}/web-leak/subdomain", json={"enabled": False}))
        answers.append(web.put(f"{scripts}/docs", content=worker, headers=multipart))
        for fault in (Fault(status=500, count=3), Fault(status=400, body=echo.encode())):
            stack.emulator.inject_fault(fault)
            answers.append(web.get(f"{scripts}/web-leak/deployments"))
        answers.append(web.get(f"{stack.base_url}/user/tokens/verify"))

    assert [answer.status_code for answer in answers] == [404, 200, 200, 403, 502, 400, 200]
    assert "[REDACTED]" in answers[5].text
    captured = capfd.readouterr()
    outputs = [
        *(answer.text for answer in answers),
        *(json.dumps(dict(answer.headers)) for answer in answers),
        *every_log_line,
        captured.out,
        captured.err,
    ]
    audit_lines = [line for line in every_log_line if '"route":"' in line]
    assert len(audit_lines) >= len(answers)
    assert all(token not in output for output in outputs)
    assert stack.emulator.calls[0].headers["authorization"].endswith(token)
