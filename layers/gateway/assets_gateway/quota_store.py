"""Quota counters in DynamoDB: one item per team and window, one per global window.

A charge is one TransactWriteItems: an `ADD` on every window item, each guarded by a condition
on its limit, plus a check that no Cloudflare cool-down is running. Either every counter moves or
none does. A refund is the same `ADD` with negative amounts. TTL only cleans up old windows:
window keys change as time passes, so correctness never depends on expiry.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.errors import GlobalBudgetExceeded, QuotaExceeded, QuotaUnavailable
from assets_gateway.quota import (
    Charge,
    Limit,
    LimitState,
    Scope,
    first_exceeded,
    ratelimit_headers,
    states,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

logger = Logger(child=True)

COOLDOWN_KEY = "global#cooldown"
# Window items outlive their window by a day, so usage stays readable after it closes.
TTL_GRACE_SECONDS = 86_400
# Concurrent transactions on one item conflict in DynamoDB (TransactionConflict): retry briefly.
MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class _WindowItem:
    key: str
    limits: tuple[Limit, ...]
    expires_at: int


@dataclass(frozen=True)
class Ticket:
    """A successful charge: the counters after it, and what to give back on a refund."""

    team: str
    charge: Charge
    items: tuple[_WindowItem, ...]
    after: tuple[LimitState, ...]

    def headers(self) -> dict[str, str]:
        return ratelimit_headers([s for s in self.after if s.limit.scope is Scope.TEAM])


def _item_key(team: str, limit: Limit, now: float) -> str:
    owner = f"team#{team}" if limit.scope is Scope.TEAM else "global"
    return f"{owner}#{limit.window_seconds}#{limit.window_start(now)}"


def _window_items(team: str, limits: Sequence[Limit], now: float) -> tuple[_WindowItem, ...]:
    grouped: dict[str, list[Limit]] = defaultdict(list)
    for limit in limits:
        grouped[_item_key(team, limit, now)].append(limit)
    return tuple(
        _WindowItem(
            key=key,
            limits=tuple(group),
            expires_at=group[0].window_start(now) + group[0].window_seconds + TTL_GRACE_SECONDS,
        )
        for key, group in grouped.items()
    )


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


class QuotaStore:
    def __init__(
        self,
        *,
        table_name: str,
        dynamodb: DynamoDBClient,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._sleep = sleep

    def charge(self, team: str, limits: Sequence[Limit], charge: Charge, now: float) -> Ticket:
        """Take `charge` from every limit at once, or raise with the limit that refused it."""
        items = _window_items(team, limits, now)
        too_big = first_exceeded(limits, {}, charge)
        if too_big is not None:
            state = LimitState(too_big, 0, too_big.reset_seconds(now))
            raise QuotaExceeded(
                f"this request alone exceeds team {team!r}'s quota of {state.describe()}",
                headers=self._refusal_headers(team, limits, now),
            )
        operations: list[TransactWriteItemTypeDef] = [
            self._add(item, charge, guard=True) for item in items
        ]
        operations.append(self._no_cooldown(now))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self._dynamodb.transact_write_items(TransactItems=operations)
                break
            except ClientError as error:
                if not _is_cancellation(error):
                    raise self._unavailable(error) from None
                reasons = error.response.get("CancellationReasons", [])
                self._raise_refusal(
                    team=team, items=items, limits=limits, charge=charge, reasons=reasons, now=now
                )
                if attempt == MAX_ATTEMPTS:
                    raise QuotaUnavailable("quota counters are busy; retry shortly") from None
                self._sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter
            except BotoCoreError as error:
                raise self._unavailable(error) from None
        return Ticket(team, charge, items, tuple(self.usage(team, limits, now)))

    def refund(self, ticket: Ticket) -> None:
        """Give a charge back (the request was not forwarded, or Cloudflare failed it)."""
        negative = ticket.charge.negated()
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[self._add(item, negative, guard=False) for item in ticket.items]
            )
        except (ClientError, BotoCoreError) as error:
            # The caller already has its answer; an unrefunded charge only costs the team quota
            # until the window rolls over. Loud, so an operator sees it.
            logger.error(
                "quota refund failed", extra={"team": ticket.team, "cause": type(error).__name__}
            )

    def usage(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]:
        """The counters of the current windows, read consistently, without charging anything."""
        items = _window_items(team, limits, now)
        try:
            answer = self._dynamodb.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": [{"pk": {"S": item.key}} for item in items],
                        "ConsistentRead": True,
                    }
                }
            )
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error) from None
        found = {row["pk"]["S"]: row for row in answer.get("Responses", {}).get(self._table, [])}
        used = {
            limit.name: int(found.get(item.key, {}).get(limit.counter.value, {}).get("N", "0"))
            for item in items
            for limit in item.limits
        }
        return states(limits, used, now)

    def reset(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]:
        """Set the team's counters of the current windows back to zero (an admin's decision);
        returns what they were. A request in flight when this runs may still refund its charge
        afterwards, leaving the counter a little below zero until the window rolls over."""
        before = self.usage(team, limits, now)
        for item in _window_items(team, limits, now):
            names = {f"#c{i}": limit.counter.value for i, limit in enumerate(item.limits)}
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": item.key}},
                    UpdateExpression="SET "
                    + ", ".join(f"{name} = :zero" for name in names)
                    + ", expires_at = :expires",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":zero": _n(0), ":expires": _n(item.expires_at)},
                )
            except (ClientError, BotoCoreError) as error:
                raise self._unavailable(error) from None
        return before

    def open_cooldown(self, until: float) -> None:
        """Cloudflare answered 429: no call goes upstream before `until` (epoch seconds)."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": COOLDOWN_KEY}},
                UpdateExpression="SET #until = :until, expires_at = :expires",
                ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={
                    ":until": _n(round(until, 3)),
                    ":expires": _n(int(until) + TTL_GRACE_SECONDS),
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                logger.error(
                    "could not record the Cloudflare cool-down", extra={"cause": "ClientError"}
                )
        except BotoCoreError:
            logger.error(
                "could not record the Cloudflare cool-down", extra={"cause": "BotoCoreError"}
            )

    def _add(self, item: _WindowItem, charge: Charge, *, guard: bool) -> TransactWriteItemTypeDef:
        """`ADD` the charge to each counter of the item; guarded, each counter must have room."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":expires": _n(item.expires_at)}
        adds, conditions = [], []
        for i, limit in enumerate(item.limits):
            amount = charge.amount(limit.counter)
            names[f"#c{i}"] = limit.counter.value
            values[f":a{i}"] = _n(amount)
            adds.append(f"#c{i} :a{i}")
            if guard:
                # The counter before this charge may be at most limit - amount.
                conditions.append(f"(attribute_not_exists(#c{i}) OR #c{i} <= :r{i})")
                values[f":r{i}"] = _n(limit.limit - amount)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": item.key}},
            "UpdateExpression": f"ADD {', '.join(adds)} SET expires_at = :expires",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if guard:
            update["ConditionExpression"] = " AND ".join(conditions)
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": update}  # type: ignore[typeddict-item]

    def _no_cooldown(self, now: float) -> TransactWriteItemTypeDef:
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": {"pk": {"S": COOLDOWN_KEY}},
                "ConditionExpression": "attribute_not_exists(#until) OR #until <= :now",
                "ExpressionAttributeNames": {"#until": "until"},
                "ExpressionAttributeValues": {":now": _n(round(now, 3))},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _raise_refusal(
        self,
        *,
        team: str,
        items: Sequence[_WindowItem],
        limits: Sequence[Limit],
        charge: Charge,
        reasons: Sequence[Any],
        now: float,
    ) -> None:
        """Turn the transaction's cancellation reasons into the refusal they mean, if any."""
        for index, reason in enumerate(reasons):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            old = reason.get("Item") or {}
            if index == len(items):  # the cool-down check
                until = float(old.get("until", {}).get("N", now))
                wait = max(1, int(until - now + 0.999))
                raise GlobalBudgetExceeded(
                    f"Cloudflare asked the gateway to slow down; no calls for {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            item = items[index]
            used = {
                limit.name: int(old.get(limit.counter.value, {}).get("N", "0"))
                for limit in item.limits
            }
            hit = first_exceeded(item.limits, used, charge) or item.limits[0]
            state = LimitState(hit, used.get(hit.name, 0), hit.reset_seconds(now))
            retry_after = {"Retry-After": str(state.reset_seconds)}
            if hit.scope is Scope.GLOBAL:
                raise GlobalBudgetExceeded(
                    f"the org's Cloudflare budget is spent: {state.describe()}", headers=retry_after
                )
            raise QuotaExceeded(
                f"team {team!r} has used its quota of {state.describe()}",
                headers={**self._refusal_headers(team, limits, now), **retry_after},
            )

    def _refusal_headers(self, team: str, limits: Sequence[Limit], now: float) -> dict[str, str]:
        team_limits = [limit for limit in limits if limit.scope is Scope.TEAM]
        return ratelimit_headers(self.usage(team, team_limits, now))

    @staticmethod
    def _unavailable(error: Exception) -> QuotaUnavailable:
        logger.error("quota store call failed", extra={"cause": type(error).__name__})
        return QuotaUnavailable("the quota store is unavailable; retry later")


def _is_cancellation(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"
