"""DynamoDB behaviours moto does not produce, given to the real QuotaStore through botocore's
Stubber: transaction conflicts under contention, and an unreachable table. No network."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from assets_gateway.adapters.quota_store import EXACT_ATTEMPTS, MAX_ATTEMPTS, QuotaStore
from assets_gateway.domain.errors import QuotaExceeded, QuotaUnavailable
from assets_gateway.domain.quota import CallBudget, Charge, TeamQuotas

LIMITS = TeamQuotas(5, 100, 1000, 10_000, 120, 30, 200).limits()
NOW = 1_795_608_010.0


def conflict() -> dict[str, Any]:
    return cancelled([{"Code": "None"}] * 3 + [{"Code": "TransactionConflict"}, {"Code": "None"}])


def cancelled(reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """A TransactWriteItems cancelled for these reasons, one per operation, as the Stubber
    gives it."""
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
    with stub:  # no read after the charge: the Stubber refuses any call it was not given
        ticket = store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW)
        stub.assert_no_pending_responses()
    assert len(slept) == 2
    assert all(0 < pause <= 0.05 for pause in slept)
    assert ticket.team == "web"
    assert {state.limit.name: state.used for state in ticket.after} == FIRST_CHARGE_AFTER


# The windows after one charge of one entry of one byte, on windows never written before.
FIRST_CHARGE_AFTER = {"sessions-minute": 1, "sessions-day": 1, "entries-day": 1, "bytes-day": 1}


def stale_window(index: int, old: dict[str, int]) -> dict[str, Any]:
    """The transaction cancelled because window item `index` (0: minute, 1: day) holds other
    counters than the store had seen; they come back with it (ALL_OLD)."""
    reasons: list[dict[str, Any]] = [{"Code": "None"}] * 5
    reasons[index] = {
        "Code": "ConditionalCheckFailed",
        "Item": {"pk": {"S": "team#web"}, **{name: {"N": str(n)} for name, n in old.items()}},
    }
    return cancelled(reasons)


def updates(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [op["Update"] for op in params["TransactItems"] if "Update" in op]


def test_counters_moved_by_others_come_back_with_the_refusal_and_are_set_again(
    store_and_stub: tuple[QuotaStore, Stubber, list[float]],
) -> None:
    """Given another environment charged the day window, when this store charges with the
    values it had seen (none), the cancellation returns the day's counters and the retry sets
    them from there: the counters after are exact, with no read."""
    store, stub, slept = store_and_stub
    sent: list[dict[str, Any]] = []
    stub.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: sent.append(params),
    )
    stub.add_client_error(
        "transact_write_items", **stale_window(1, {"sessions": 7, "entries": 40, "bytes": 900})
    )
    stub.add_response("transact_write_items", {})
    with stub:
        ticket = store.charge("web", LIMITS, Charge(entries=2, bytes=10), NOW)
        stub.assert_no_pending_responses()
    assert slept == []  # the values came back: no need to wait
    assert {state.limit.name: state.used for state in ticket.after} == {
        "sessions-minute": 1,
        "sessions-day": 8,
        "entries-day": 42,
        "bytes-day": 910,
    }
    day = updates(sent[1])[1]
    assert day["UpdateExpression"].startswith("SET ")
    assert {day["ExpressionAttributeValues"][f":o{i}"]["N"] for i in range(3)} == {"7", "40", "900"}


def test_a_window_without_room_is_the_teams_429(
    store_and_stub: tuple[QuotaStore, Stubber, list[float]],
) -> None:
    store, stub, _ = store_and_stub
    stub.add_client_error("transact_write_items", **stale_window(0, {"sessions": 5}))
    stub.add_response("batch_get_item", {"Responses": {"quota": []}})  # the 429's headers
    with stub, pytest.raises(QuotaExceeded) as refused:
        store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW)
    assert "sessions-minute" in refused.value.message


def test_counters_others_keep_moving_are_added_to_blind_and_read_after(
    store_and_stub: tuple[QuotaStore, Stubber, list[float]],
) -> None:
    """Under contention the known values keep missing: after EXACT_ATTEMPTS misses the window
    is added to under its guard (never conflicting on a value) and read after the charge."""
    store, stub, _ = store_and_stub
    sent: list[dict[str, Any]] = []
    stub.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: sent.append(params),
    )
    for n in range(EXACT_ATTEMPTS):
        stub.add_client_error("transact_write_items", **stale_window(0, {"sessions": n + 1}))
    stub.add_response("transact_write_items", {})
    minute_key = f"team#web#60#{int(NOW // 60) * 60}"
    stub.add_response(
        "batch_get_item",
        {"Responses": {"quota": [{"pk": {"S": minute_key}, "sessions": {"N": "4"}}]}},
    )
    with stub:
        ticket = store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW)
        stub.assert_no_pending_responses()
    assert updates(sent[-1])[0]["UpdateExpression"].startswith("ADD ")
    assert {state.limit.name: state.used for state in ticket.after}["sessions-minute"] == 4


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
