"""DynamoDB behaviours moto does not produce, given to the real QuotaStore through botocore's
Stubber: transaction conflicts under contention, and an unreachable table. No network."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from assets_gateway.adapters.quota_store import MAX_ATTEMPTS, QuotaStore
from assets_gateway.domain.errors import QuotaUnavailable
from assets_gateway.domain.quota import CallBudget, Charge, TeamQuotas

LIMITS = TeamQuotas(5, 100, 1000, 10_000, 120, 30, 200).limits()
NOW = 1_795_608_010.0


def conflict() -> dict[str, Any]:
    reasons = [{"Code": "None"}] * 3 + [{"Code": "TransactionConflict"}, {"Code": "None"}]
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "http_status_code": 400,
        "response_meta": {},
        "modeled_fields": {"CancellationReasons": reasons, "Message": "cancelled"},
    }


@pytest.fixture
def store_and_stub() -> tuple[QuotaStore, Stubber, list[float]]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    slept: list[float] = []
    return (
        QuotaStore(
            table_name="quota",
            dynamodb=client,
            budget=CallBudget.for_ceiling(1000),
            sleep=slept.append,
        ),
        Stubber(client),
        slept,
    )


def test_conflicting_transactions_are_retried(
    store_and_stub: tuple[QuotaStore, Stubber, list[float]],
) -> None:
    store, stub, slept = store_and_stub
    stub.add_client_error("transact_write_items", **conflict())
    stub.add_client_error("transact_write_items", **conflict())
    stub.add_response("transact_write_items", {})
    stub.add_response("batch_get_item", {"Responses": {"quota": []}})
    with stub:
        ticket = store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW)
        stub.assert_no_pending_responses()
    assert len(slept) == 2
    assert all(0 < pause <= 0.05 for pause in slept)
    assert ticket.team == "web"


def test_endless_conflicts_end_in_a_clear_503(
    store_and_stub: tuple[QuotaStore, Stubber, list[float]],
) -> None:
    store, stub, slept = store_and_stub
    for _ in range(MAX_ATTEMPTS):
        stub.add_client_error("transact_write_items", **conflict())
    with stub, pytest.raises(QuotaUnavailable) as refused:
        store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW)
    assert refused.value.status == 503
    assert len(slept) == MAX_ATTEMPTS - 1


def test_throttling_is_unavailable_not_a_crash(
    store_and_stub: tuple[QuotaStore, Stubber, list[float]],
) -> None:
    store, stub, _ = store_and_stub
    stub.add_client_error(
        "transact_write_items", service_error_code="ProvisionedThroughputExceededException"
    )
    with stub, pytest.raises(QuotaUnavailable):
        store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW)
