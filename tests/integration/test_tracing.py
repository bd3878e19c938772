"""X-Ray traces are readable by more people than the teams: a session's upload JWT (and the
Cloudflare token) must never reach them. The session handler runs with tracing on, as in Lambda,
in a child process whose X-Ray SDK keeps what it would send to the daemon; the test reads it.

Covers the code (the handler's Tracer decorator); template.yaml's
POWERTOOLS_TRACER_CAPTURE_RESPONSE=false for every function is held by
tests/unit/test_template_security.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from gateway_local.aws_resources import REPO_ROOT
from gateway_local.stack import SESSION_API_APP, LocalStack

CHILD = Path(__file__).with_name("traced_invocation.py")
EVENT = REPO_ROOT / "events" / "session_api" / "create_session.json"
# A sampled trace, as Lambda sets it for each invocation when the function's tracing is Active.
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def keyed_event(path: Path) -> Path:
    """The sample session event with an Idempotency-Key: the record that keeps the answer (JWT
    included) is written to DynamoDB inside the trace too."""
    event = json.loads(EVENT.read_text())
    key = f"traced-{uuid.uuid4()}"
    event["headers"]["Idempotency-Key"] = key
    event.setdefault("multiValueHeaders", {})["Idempotency-Key"] = [key]
    path.write_text(json.dumps(event))
    return path


def idempotency_records(stack: LocalStack) -> set[str]:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    items = dynamodb.scan(TableName=stack.names.control_table)["Items"]
    return {item["id"]["S"] for item in items if item["id"]["S"].startswith("api-session#")}


def traced_invocation(stack: LocalStack, event: Path, output: Path) -> dict[str, Any]:
    environment = {
        **os.environ,
        **stack.handler_environment(),
        "LAMBDA_TASK_ROOT": str(SESSION_API_APP.parent),
        "AWS_LAMBDA_FUNCTION_NAME": "SessionApiFunction",
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        # A subsegment without its segment must fail the child, not vanish from the trace.
        "AWS_XRAY_CONTEXT_MISSING": "RUNTIME_ERROR",
        "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("layers/gateway", "local")),
    }
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)
    environment.pop("POWERTOOLS_TRACER_CAPTURE_RESPONSE", None)  # the code's own choice
    child = subprocess.run(
        [sys.executable, str(CHILD), str(event), str(output)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-4000:]
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def test_traces_hold_neither_the_session_jwt_nor_the_token(
    stack: LocalStack, tmp_path: Path
) -> None:
    event = keyed_event(tmp_path / "event.json")
    records_before = idempotency_records(stack)
    traced = traced_invocation(stack, event, tmp_path / "traced.json")
    assert len(idempotency_records(stack) - records_before) == 1
    answer = traced["answer"]
    assert answer["statusCode"] == 200
    jwt = json.loads(answer["body"])["result"]["jwt"]
    names = {entity["name"] for entity in traced["entities"]}
    # Tracing really ran: the handler's subsegment and the calls it made (AWS through botocore,
    # Cloudflare's emulator on 127.0.0.1 through httpx) were sent.
    assert {"## lambda_handler", "dynamodb", "secretsmanager", "127.0.0.1"} <= names
    # Tracing cost nothing at import: the SDK was loaded by the first invocation's trace, with
    # only what the gateway calls out through patched.
    assert (traced["loaded_at_import"], traced["loaded_after_invocation"]) == (False, True)
    assert traced["patched"] == ["botocore", "httpx"]
    sent = json.dumps(traced["entities"])
    assert jwt not in sent
    assert stack.cloudflare_token not in sent
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1
