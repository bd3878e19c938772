"""Held decisions (`decision_log`): each rides one transaction at a time, and comes back first in
line when that transaction is not applied. No network: holding below MAX_HELD calls nothing."""

from __future__ import annotations

import boto3

from assets_gateway.adapters.decision_log import DecisionLog
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.simulation import RecordedDecision


def decision(request_id: str, outcome: str = "refused_policy") -> RecordedDecision:
    return RecordedDecision(
        at=1_795_608_010.0,
        request_id=request_id,
        door="api",
        principal="arn:aws:iam::1:role/r",
        target=SessionTarget("0" * 32, "web"),
        policy_allowed=False,
        outcome=outcome,
    )


def log() -> DecisionLog:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return DecisionLog(table_name="decisions", dynamodb=client, retention_days=1)


def test_concurrent_transactions_never_carry_the_same_decision() -> None:
    held = log()
    for n in range(4):
        held.hold(decision(f"r{n}"))
    first = held.riders(max_items=2)
    second = held.riders(max_items=2)
    assert [r.request_id for r in first] == ["r0", "r1"]
    assert [r.request_id for r in second] == ["r2", "r3"]
    assert held.riders() == []


def test_a_transaction_not_applied_gives_its_riders_back_first_in_line() -> None:
    held = log()
    held.hold(decision("old"))
    taken = held.riders()
    held.hold(decision("new"))
    held.released(taken)
    assert [r.request_id for r in held.riders()] == ["old", "new"]


def test_a_later_decision_of_the_same_request_wins_over_one_given_back() -> None:
    held = log()
    held.hold(decision("r", "allowed"))
    taken = held.riders()
    held.hold(decision("r", "refused_quota"))  # the charge that carried it was refused
    held.released(taken)
    (rider,) = held.riders()
    assert rider.item["outcome"] == {"S": "refused_quota"}
