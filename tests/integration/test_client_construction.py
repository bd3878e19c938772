"""Which boto3 clients a function makes, and when (cold start, issue 15): at init one client per
service, shared by the stores (no DynamoDB resource); SQS at the S3 door's first quota hold;
each made once per environment and renewed after a SnapStart restore like the others. The
clients are read from what the functions registered for the restore (each client made closes
its pools after a restore), on functions loaded as Lambda loads them, against moto server and
the Cloudflare emulator."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from botocore.client import BaseClient

from assets_gateway.adapters.s3_holds import HoldState
from assets_gateway.lambda_glue.settings import ManifestDoorSettings
from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.lambda_glue.wiring import build_manifest_holds
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT, local_aws_session
from gateway_local.stack import (
    MANIFEST_EVENTS_APP,
    SESSION_API_APP,
    LocalStack,
    load_handler_module,
)

EVENT = REPO_ROOT / "events" / "session_api" / "create_session.json"


def clients(after_restore: AfterRestore) -> list[BaseClient]:
    owners = [getattr(step, "__self__", None) for step in after_restore.steps]
    return [owner for owner in owners if isinstance(owner, BaseClient)]


def services(after_restore: AfterRestore) -> Counter[str]:
    return Counter(client.meta.service_model.service_name for client in clients(after_restore))


def create_session(app: Any) -> int:
    result = app.lambda_handler(json.loads(EVENT.read_text()), lambda_context("SessionApiFunction"))
    status: int = result["statusCode"]
    return status


def test_the_session_function_makes_one_client_per_service_at_init_and_reuses_them(
    stack: LocalStack,
) -> None:
    app = load_handler_module(SESSION_API_APP, f"session_api_clients_{id(stack)}")
    # The quota store, the decision log, the policy store and the idempotency records share one
    # DynamoDB client (a resource would register its own client here too).
    assert services(app.after_restore) == Counter({"dynamodb": 1, "secretsmanager": 1})
    made = clients(app.after_restore)
    # Requests (the first reads the policy and the token) reuse them: no client is made.
    assert create_session(app) == 200
    assert create_session(app) == 200
    assert clients(app.after_restore) == made


def test_the_s3_function_makes_at_init_what_each_record_needs_and_sqs_on_the_first_hold(
    stack: LocalStack,
) -> None:
    app = load_handler_module(MANIFEST_EVENTS_APP, f"manifest_events_clients_{id(stack)}")
    # Each record reads S3, the quota and idempotency tables, and publishes its outcome.
    assert services(app.after_restore) == Counter(
        {"dynamodb": 1, "secretsmanager": 1, "s3": 1, "events": 1}
    )


def test_quota_holds_make_their_sqs_client_at_the_first_hold_and_reuse_it(
    stack: LocalStack,
) -> None:
    # A queue of this test's own: the copies held here wait 15 minutes, away from the door's.
    queues = stack.aws.client("sqs", endpoint_url=stack.moto.endpoint_url)
    queue_url = queues.create_queue(QueueName=f"holds-clients-{uuid.uuid4().hex}")["QueueUrl"]
    settings = ManifestDoorSettings.from_environ(
        {**stack.manifest_handler_environment(), "MANIFEST_QUEUE_URL": queue_url}
    )
    restore = AfterRestore()
    holds = build_manifest_holds(settings, aws=local_aws_session(), restore=restore)
    assert holds is not None
    assert services(restore) == Counter()
    try:
        body = json.dumps({"Records": []})
        assert holds.hold(body, HoldState(waits=0, first_sent_ms=1), seconds=900) == 900
        assert services(restore) == Counter({"sqs": 1})
        [sqs] = clients(restore)
        assert holds.hold(body, HoldState(waits=1, first_sent_ms=1), seconds=900) == 900
        assert clients(restore) == [sqs]
        delayed = queues.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
        assert delayed == "2"
    finally:
        queues.delete_queue(QueueUrl=queue_url)
