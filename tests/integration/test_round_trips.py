"""Issue 15, target 3: the AWS round trips of each session-door path, counted (botocore's
`before-call` events on the function's one boto3 session, real boto3 against moto server), and
the recorded decisions they no longer write on their own, all still recorded."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from assets_gateway.adapters.decision_log import MAX_HELD, DecisionLog
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.simulation import RecordedDecision
from assets_gateway.lambda_glue.api_idempotency import IdempotentSessions
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.ports.sessions import Outcome, SessionRequest
from gateway_local.aws_calls import counted_session_api
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_CI, DOCS_SCRIPT, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack
from helpers import manifest_of

WRITES = ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem", "DeleteItem")


class Function:
    """One warm execution environment of the session function, its AWS calls counted."""

    def __init__(self, stack: LocalStack) -> None:
        # The stack's own functions read the policy on every request (tests publish policies);
        # a deployed function caches it, as this one does.
        environment = {**stack.handler_environment(), "POLICY_CACHE_SECONDS": "300"}
        self.counter, self.sessions = counted_session_api(Settings.from_environ(environment))
        self.sequence = 0

    def send(
        self,
        path: str = "/a.html",
        *,
        caller: Caller = Caller(WEB_DEPLOYER.principal_arn),  # noqa: B008 - frozen value
        script: str = WEB_SCRIPT,
        key: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Outcome, str, Counter[str]]:
        """A request for `path`: its outcome, its request id, the AWS calls it made."""
        self.sequence += 1
        request_id = f"trips-{id(self)}-{self.sequence}"
        body = json.dumps({"manifest": manifest_of({path: path.encode()})}).encode()
        request = SessionRequest(
            caller=caller,
            target=SessionTarget(DEMO_ACCOUNT_ID, script),
            body=body,
            content_type="application/json",
            request_id=request_id,
            dry_run=dry_run,
        )
        self.counter.take()
        result = self.sessions.create_session(request, key)
        return result.outcome, request_id, self.counter.take()


def recorded(stack: LocalStack) -> dict[str, RecordedDecision]:
    log = DecisionLog(
        table_name=stack.names.decisions_table,
        dynamodb=stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url),
        retention_days=1,
    )
    now = datetime.now(UTC)
    found, _ = log.between(now - timedelta(hours=1), now + timedelta(minutes=1))
    return {decision.request_id: decision for decision in found}


def writes(calls: Counter[str]) -> list[str]:
    return [name for name in calls if name.removeprefix("dynamodb.") in WRITES]


@pytest.fixture
def function(stack: LocalStack) -> Function:
    stack.clear_decisions()
    warm = Function(stack)
    outcome, _, cold = warm.send("/warm.html")
    assert outcome is Outcome.ALLOWED
    # The first request reads the policy and the org token; later ones find them cached.
    assert {"dynamodb.GetItem", "secrets-manager.GetSecretValue"} <= set(cold)
    return warm


def test_an_admitted_request_is_one_round_trip_that_carries_its_decision(
    stack: LocalStack, function: Function
) -> None:
    outcome, request_id, calls = function.send("/index.html")
    assert outcome is Outcome.ALLOWED
    assert calls == Counter({"dynamodb.TransactWriteItems": 1})
    decision = recorded(stack)[request_id]
    assert (decision.policy_allowed, decision.outcome, decision.team) == (True, "allowed", "web")
    assert decision.manifest is not None
    assert decision.manifest.paths == ("/index.html",)


def test_an_idempotency_key_rides_the_charge_and_adds_one_write_and_a_replay_one(
    stack: LocalStack, function: Function
) -> None:
    outcome, first_id, first = function.send("/keyed.html", key="trips-key")
    assert outcome is Outcome.ALLOWED
    # The key's claim rides the one charge; its answer is kept after Cloudflare's.
    assert first == Counter({"dynamodb.TransactWriteItems": 1, "dynamodb.UpdateItem": 1})
    outcome, replay_id, replay = function.send("/keyed.html", key="trips-key")
    assert outcome is Outcome.REPLAYED
    # The charge, cancelled by the claim it carries: it returns the first answer, and charges
    # and records nothing.
    assert replay == Counter({"dynamodb.TransactWriteItems": 1})
    function.send("/after-replay.html")
    decisions = recorded(stack)
    assert decisions[first_id].outcome == "allowed"
    assert replay_id not in decisions


def test_refusals_before_the_quota_step_write_nothing_and_lose_nothing(
    stack: LocalStack, function: Function
) -> None:
    """Given a caller outside every team and a request the policy denies, neither writes (their
    decisions are held); the environment's next admitted request carries both in its one
    transaction, and simulations read them as before."""
    outcome, stranger_id, stranger = function.send(caller=Caller("arn:aws:iam::1:user/nobody"))
    assert outcome is Outcome.REFUSED_CALLER
    assert writes(stranger) == []
    outcome, denied_id, denied = function.send(script="not-a-web-script")
    assert outcome is Outcome.REFUSED_POLICY
    assert writes(denied) == []
    assert stranger_id not in recorded(stack)
    assert denied_id not in recorded(stack)

    outcome, carrier_id, carrier = function.send("/carrier.html")
    assert outcome is Outcome.ALLOWED
    assert carrier == Counter({"dynamodb.TransactWriteItems": 1})
    decisions = recorded(stack)
    assert (decisions[stranger_id].policy_allowed, decisions[stranger_id].outcome) == (
        False,
        "refused_caller",
    )
    assert decisions[stranger_id].manifest is None
    assert (decisions[denied_id].policy_allowed, decisions[denied_id].outcome) == (
        False,
        "refused_policy",
    )
    assert decisions[denied_id].manifest is not None
    assert decisions[carrier_id].policy_allowed is True


def test_a_quota_refusal_keeps_its_decision_for_the_next_charge(
    stack: LocalStack, function: Function
) -> None:
    """The docs team opens 5 sessions a minute: the sixth is refused by the charge itself,
    whose cancelled transaction wrote nothing; its decision (the policy allowed it) rides the
    next charge."""
    docs = Caller(DOCS_CI.principal_arn)
    for n in range(5):
        outcome, _, _ = function.send(f"/docs/{n}.html", caller=docs, script=DOCS_SCRIPT)
        assert outcome is Outcome.ALLOWED
    outcome, refused_id, calls = function.send("/docs/6.html", caller=docs, script=DOCS_SCRIPT)
    assert outcome is Outcome.REFUSED_QUOTA
    assert calls["dynamodb.TransactWriteItems"] == 1  # cancelled: nothing written
    assert refused_id not in recorded(stack)
    function.send("/next.html")
    decision = recorded(stack)[refused_id]
    assert (decision.policy_allowed, decision.outcome) == (True, "refused_quota")


def test_a_dry_run_reads_once_and_records_nothing(stack: LocalStack, function: Function) -> None:
    outcome, request_id, calls = function.send("/dry.html", dry_run=True)
    assert outcome is Outcome.DRY_RUN
    assert calls == Counter({"dynamodb.BatchGetItem": 1})
    function.send("/after-dry.html")
    assert request_id not in recorded(stack)


def test_a_flood_of_refusals_is_written_in_batches_not_dropped(
    stack: LocalStack, function: Function
) -> None:
    """With no admitted request to carry them, every MAX_HELD refusals cost one transaction of
    Puts (IAM: the PutItem the function holds on the table), never one write each, and none is
    dropped."""
    ids, batches = [], 0
    for _ in range(MAX_HELD):
        outcome, request_id, calls = function.send(script="not-a-web-script")
        assert outcome is Outcome.REFUSED_POLICY
        ids.append(request_id)
        batches += calls["dynamodb.TransactWriteItems"]
        assert set(writes(calls)) <= {"dynamodb.TransactWriteItems"}
    assert batches == 1
    decisions = recorded(stack)
    assert all(decisions[request_id].outcome == "refused_policy" for request_id in ids)


def test_the_sessions_core_is_the_one_the_handler_runs(function: Function) -> None:
    assert isinstance(function.sessions, IdempotentSessions)
