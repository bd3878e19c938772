"""An `Idempotency-Key` is claimed by the quota charge that admits its request, in the same
transaction (issue 15): the real quota store and key records on moto server."""

from __future__ import annotations

import hashlib
import time
from typing import Any, NamedTuple, cast

import pytest
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from assets_gateway.adapters.key_records import KeyRecordStore
from assets_gateway.adapters.quota_store import QuotaStore
from assets_gateway.domain.envelope import Reply
from assets_gateway.domain.errors import QuotaExceeded
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.quota import CallBudget, Charge, TeamQuotas
from assets_gateway.lambda_glue.api_idempotency import KEY_PREFIX, key_claim
from assets_gateway.ports.idempotency import KeyClaim, KeyClaimed
from assets_gateway.ports.sessions import Outcome, SessionRequest, SessionResult
from gateway_local.api_front import lambda_context
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack

LIMITS = TeamQuotas(2, 1000, 10_000, 10**9, 120, 30, 200).limits()
ONE = Charge(entries=1, bytes=10)


class Stores(NamedTuple):
    keys: KeyRecordStore
    quotas: QuotaStore

    def charge(self, team: str, request_id: str, claim: KeyClaim | None, now: float) -> None:
        self.quotas.charge(team, LIMITS, ONE, now, request_id, claim=claim)

    def claimed(self, name: str, now: float, running_ms: int = 30_000) -> KeyClaim:
        """Team `name`'s first request, keyed `name`, charged with its claim."""
        claim = key_claim(request(name), name, running_ms)
        self.charge(name, name, claim, now)
        return claim


@pytest.fixture
def stores(stack: LocalStack) -> Stores:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    keys = KeyRecordStore(table_name=stack.names.control_table, dynamodb=dynamodb)
    quotas = QuotaStore(
        table_name=stack.names.quota_table,
        dynamodb=dynamodb,
        budget=CallBudget.for_ceiling(10**6),
        keys=keys,
    )
    return Stores(keys, quotas)


def request(name: str, body: bytes = b'{"manifest":{}}') -> SessionRequest:
    return SessionRequest(
        caller=Caller(WEB_DEPLOYER.principal_arn),
        target=SessionTarget(DEMO_ACCOUNT_ID, WEB_SCRIPT),
        body=body,
        content_type="application/json",
        request_id=f"claims-{name}",
    )


def record_of(stack: LocalStack, claim: KeyClaim) -> dict[str, Any] | None:
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    item = dynamodb.get_item(
        TableName=stack.names.control_table, Key={"id": {"S": claim.record_id}}
    )
    return cast("dict[str, Any] | None", item.get("Item"))


def sessions_used(quotas: QuotaStore, team: str, now: float) -> int:
    [minute] = [s for s in quotas.usage(team, LIMITS, now) if s.limit.name == "sessions-minute"]
    return minute.used


ANSWER = SessionResult(
    Reply(200, b'{"success":true,"result":{"jwt":"first"}}', {"X-Request-Id": "claims-first"}),
    Outcome.ALLOWED,
    team="claims-a",
)


def test_a_claim_rides_the_charge_and_holds_the_key_until_the_answer_is_kept(
    stack: LocalStack, stores: Stores
) -> None:
    now = time.time()
    claim = stores.claimed("claims-a", now)
    assert (record_of(stack, claim) or {})["status"]["S"] == "INPROGRESS"

    with pytest.raises(KeyClaimed) as running:
        stores.charge("claims-a", "claims-a2", claim, now)
    assert running.value.record.answer is None
    assert running.value.record.payload_hash == claim.payload_hash
    assert sessions_used(stores.quotas, "claims-a", now) == 1  # the cancelled charge took nothing

    stores.keys.complete(claim, ANSWER, now)
    with pytest.raises(KeyClaimed) as answered:
        stores.charge("claims-a", "claims-a3", claim, now)
    assert answered.value.record.answer == ANSWER
    assert sessions_used(stores.quotas, "claims-a", now) == 1


def test_a_released_key_and_a_key_whose_request_ran_out_of_time_are_free_again(
    stack: LocalStack, stores: Stores
) -> None:
    now = time.time()
    released = stores.claimed("claims-b", now)
    stores.keys.release(released)
    assert record_of(stack, released) is None
    stores.charge("claims-b", "claims-b2", released, now)

    dead = stores.claimed("claims-c", now, running_ms=1_000)
    # Its request never answered; past its running time (the function's timeout), the key is
    # taken by the retry.
    stores.charge("claims-c", "claims-c2", dead, now + 2)
    assert sessions_used(stores.quotas, "claims-c", now + 2) == 2


def test_a_claimed_key_wins_over_a_spent_quota_and_a_refused_charge_claims_nothing(
    stack: LocalStack, stores: Stores
) -> None:
    now = time.time()
    first = stores.claimed("claims-d", now)
    stores.keys.complete(first, ANSWER, now)
    stores.charge("claims-d", "claims-d2", None, now)  # the minute's 2 sessions spent

    with pytest.raises(KeyClaimed) as retry:
        stores.charge("claims-d", "claims-d3", first, now)
    assert retry.value.record.answer == ANSWER

    other = key_claim(request("e"), "claims-e", 30_000)
    with pytest.raises(QuotaExceeded):
        stores.charge("claims-d", "claims-e", other, now)
    assert record_of(stack, other) is None


def test_records_powertools_kept_before_the_claim_rode_the_charge_are_still_answered(
    stack: LocalStack, stores: Stores
) -> None:
    """A retry across the deployment that moved the claim finds the first answer Powertools
    kept (the same record id, body hash and answer)."""
    first = request("f", body=b'{"manifest":{"/a":{"hash":"00","size":1}}}')
    persistence = DynamoDBPersistenceLayer(
        table_name=stack.names.control_table,
        boto3_client=stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url),
    )
    # The configuration the API door's records were written with until issue 15.
    config = IdempotencyConfig(
        event_key_jmespath="[key, principal, target]",
        payload_validation_jmespath="body_sha256",
        expires_after_seconds=3600,
    )
    config.register_lambda_context(cast("Any", lambda_context("claims")))

    def answer(claim: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": 200,
            "headers": {"X-Request-Id": "claims-f"},
            "body": '{"result":{"jwt":"kept"}}',
            "outcome": "allowed",
            "team": "web",
        }

    first_time = idempotent_function(
        data_keyword_argument="claim",
        persistence_store=persistence,
        config=config,
        key_prefix=KEY_PREFIX,
    )(answer)
    first_time(
        claim={
            "key": "claims-f",
            "principal": first.caller.principal,
            "target": [DEMO_ACCOUNT_ID, None, WEB_SCRIPT],
            "body_sha256": hashlib.sha256(first.body).hexdigest(),
        }
    )
    claim = key_claim(first, "claims-f", running_ms=30_000)
    with pytest.raises(KeyClaimed) as retry:
        stores.charge("claims-f", "claims-f", claim, time.time())
    kept = retry.value.record
    assert kept.payload_hash == claim.payload_hash
    assert kept.answer == SessionResult(
        Reply(200, b'{"result":{"jwt":"kept"}}', {"X-Request-Id": "claims-f"}),
        Outcome.ALLOWED,
        team="web",
    )
