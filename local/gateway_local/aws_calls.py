"""Counting the AWS calls a boto3 session's clients make (botocore's `before-call` event): the
round-trip bench and the tests that prove its counts share it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.lambda_glue.wiring import build_session_api
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import local_aws_session

if TYPE_CHECKING:
    import boto3

    from assets_gateway.lambda_glue.api_idempotency import IdempotentSessions
    from assets_gateway.lambda_glue.settings import Settings


class CallCounter:
    """Counts `before-call.<service>.<operation>` events of the clients of one boto3 session.
    Register it before the session makes its clients: each client copies the session's events
    when it is made."""

    def __init__(self, aws: boto3.Session) -> None:
        self.calls: Counter[str] = Counter()
        aws.events.register("before-call.*.*", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.removeprefix("before-call.")] += 1

    def take(self) -> Counter[str]:
        """The calls since the last take, as `{"dynamodb.PutItem": n, ...}`."""
        taken, self.calls = self.calls, Counter()
        return taken


def counted_session_api(settings: Settings) -> tuple[CallCounter, IdempotentSessions]:
    """The session function's core as the handler builds it, on one boto3 session whose calls
    are counted."""
    aws = local_aws_session()
    counter = CallCounter(aws)
    _, sessions = build_session_api(settings, restore=AfterRestore(), aws=aws)
    # As the handler does: a claimed key is held at most for the time left.
    sessions.register_lambda_context(cast("Any", lambda_context("counted-session-api")))
    return counter, sessions
