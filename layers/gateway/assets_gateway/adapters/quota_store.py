"""Quota counters in DynamoDB: one item per team and window, one item for the org's Cloudflare
budget (a GCRA, see `quota.CallBudget`), and one item per 5 minutes counting the calls made.

A charge is one TransactWriteItems: an `ADD` on every team window item, each guarded by a
condition on its limit, a check that no Cloudflare cool-down is running, one call taken from the
org's budget, and the call counted with the write's id. Either everything moves or nothing
does. A refund gives the team's counters back; the org's budget keeps every call that reached
Cloudflare (`take_back` returns only a call that never left). TTL only cleans up: team window
keys change as time passes and the budget item is valid whatever its age, so correctness never
depends on expiry.

Idempotency: botocore retries a call whose answer came late, and the first one may have been
applied. Every write carries a `ClientRequestToken` (DynamoDB's own de-duplication, 10 minutes)
and adds its id to the `ops` set of the 5-minute calls item under `NOT contains(ops, id)`: a
replay (the same request again, so the same item) that finds its id was already applied, and is
taken as done. That holds where DynamoDB ignores the token (moto does). One set per 5 minutes
keeps it small (the budget admits at most ~1,200 calls there; 17 bytes an id) and keeps the
table from growing by an item per write.

The budget's update is arithmetic, so concurrent callers never conflict on a value they read:
when the bucket is idle (TAT <= now) it is `SET tat = now + interval` under `tat <= now`; when
it is busy it is `ADD tat interval` under `now < tat <= now + tolerance`. Which case applies is
guessed from the last TAT seen, and a wrong guess comes back as a cancelled transaction holding
the current TAT, which decides the retry or the refusal.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.domain.errors import GlobalBudgetExceeded, QuotaExceeded, QuotaUnavailable
from assets_gateway.domain.quota import (
    GLOBAL_WINDOW,
    MICROS,
    BudgetState,
    CallBudget,
    Charge,
    Limit,
    LimitState,
    RatelimitItem,
    Scope,
    first_exceeded,
    ratelimit_headers,
    states,
)
from assets_gateway.ports.idempotency import KeyClaim, KeyClaimed
from assets_gateway.ports.quota import Ticket, WindowItem

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from assets_gateway.adapters.decision_log import DecisionLog, HeldDecision
    from assets_gateway.adapters.key_records import KeyRecordStore

logger = Logger(child=True)

COOLDOWN_KEY = "global#cooldown"
BUDGET_KEY = "global#gcra"
# Window items outlive their window by a day, so usage stays readable after it closes (and the
# ids of the writes they hold, far past DynamoDB's 10-minute token window and any retry).
TTL_GRACE_SECONDS = 86_400
# Concurrent transactions on one item conflict in DynamoDB (TransactionConflict): retry briefly.
# A wrong guess of the budget's state costs one more attempt.
MAX_ATTEMPTS = 5
_FAILED = "ConditionalCheckFailed"
# A window set to a known value whose counters others keep moving is added to blind (and read
# after) from this many misses on.
EXACT_ATTEMPTS = 2
# Windows whose counters a store remembers (teams x current windows; older ones are dropped).
MAX_SEEN_ITEMS = 1024


def _item_key(team: str, limit: Limit, now: float) -> str:
    return f"team#{team}#{limit.window_seconds}#{limit.window_start(now)}"


def _window_items(team: str, limits: Sequence[Limit], now: float) -> tuple[WindowItem, ...]:
    grouped: dict[str, list[Limit]] = defaultdict(list)
    for limit in limits:
        if limit.scope is Scope.TEAM:  # the org's budget is the GCRA item, not a window
            grouped[_item_key(team, limit, now)].append(limit)
    return tuple(
        WindowItem(
            key=key,
            limits=tuple(group),
            expires_at=group[0].window_start(now) + group[0].window_seconds + TTL_GRACE_SECONDS,
        )
        for key, group in grouped.items()
    )


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _micros(now: float) -> int:
    return round(now * MICROS)


def new_operation_id(request_id: str) -> str:
    """A unique id for one write and its replays: a random part (request ids repeat: an SQS
    message is redelivered with its id) and the request id, for people reading the table."""
    return f"{uuid.uuid4().hex[:16]}#{request_id[:64]}"


def _token(operation: str, attempt: int) -> str:
    """DynamoDB's idempotency token (at most 36 characters): the same for a replay of one
    attempt, different for the next attempt (whose parameters differ)."""
    return hashlib.sha256(f"{operation}|{attempt}".encode()).hexdigest()[:36]


@dataclass
class _TeamPart:
    """The team's side of a charge, and how its window items were written: set to a known
    value (`exact`) or added to blind; misses count the known values that were stale."""

    team: str
    items: Sequence[WindowItem]
    charge: Charge
    exact: dict[str, bool] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)


class QuotaStore:
    def __init__(
        self,
        *,
        table_name: str,
        dynamodb: DynamoDBClient,
        budget: CallBudget,
        sleep: Callable[[float], None] = time.sleep,
        decisions: DecisionLog | None = None,
        keys: KeyRecordStore | None = None,
    ) -> None:
        self._table = table_name
        # Held decisions ride each charge's transaction (`decision_log`): no write of their own.
        self._decisions = decisions
        # So do the Idempotency-Key claims of the requests charged (`key_records`).
        self._keys = keys
        self._dynamodb = dynamodb
        self._budget = budget
        self._sleep = sleep
        # The budget's TAT as last seen here: guesses which update applies (never trusted).
        self._seen_tat = 0
        # Each team window's counters as last seen here (read, written, or returned by a
        # refused write): a charge sets them to known values under a condition that they are
        # still the ones seen, so the counters after it are known without a read.
        self._seen: dict[str, dict[str, int]] = {}
        # The calls of each 5 minutes this store counted or read (a report, never a guard).
        self._seen_calls: dict[str, int] = {}

    @property
    def budget(self) -> CallBudget:
        return self._budget

    # -- the team's quota and the first call, all or nothing --------------------------------

    def charge(
        self,
        team: str,
        limits: Sequence[Limit],
        charge: Charge,
        now: float,
        request_id: str = "",
        *,
        claim: KeyClaim | None = None,
    ) -> Ticket:
        """Take `charge` from every team limit and one call from the org's budget at once, and
        claim the request's Idempotency-Key with them, or raise with what refused it (a claimed
        key first: `KeyClaimed`)."""
        team_limits = [limit for limit in limits if limit.scope is Scope.TEAM]
        items = _window_items(team, team_limits, now)
        too_big = first_exceeded(team_limits, {}, charge)
        if too_big is not None:
            state = LimitState(too_big, 0, too_big.reset_seconds(now))
            raise QuotaExceeded(
                f"this request alone exceeds team {team!r}'s quota of {state.describe()}",
                headers=self._refusal_headers(team, team_limits, now),
            )
        part = _TeamPart(team, items, charge)
        call_id = self._take_call(new_operation_id(request_id), now, part, claim)
        if all(part.exact.values()):
            # One round trip: every window was set to a known value; the budget as known here.
            used = {
                limit.name: self._seen[item.key][limit.counter.value]
                for item in items
                for limit in item.limits
            }
            after = states(team_limits, used, now)
            budget = self._budget.state(
                self._seen_tat, _micros(now), self._seen_calls.get(_calls_key(now), 0)
            )
        else:  # a window was added to blind (contention): read where it stands
            after, budget = self._read(team, team_limits, now)
        return Ticket(team, charge, items, tuple(after), call_id, budget, charged_at=now)

    def refund(self, ticket: Ticket) -> None:
        """Give the team's charge back (the request was not forwarded, or Cloudflare failed
        it). The org's budget keeps its calls: they reached Cloudflare, which counted them."""
        if not ticket.items:
            return
        negative = ticket.charge.negated()
        operation = f"{ticket.call_id}#refund"
        for item in ticket.items:
            self._seen.pop(item.key, None)  # counters others may move too: read or learnt again
        try:
            self._write(
                [self._add(item, negative, guard=False) for item in ticket.items],
                operation,
                at=ticket.charged_at,
                attempt=1,
            )
        except ClientError as error:
            if _is_cancellation(error) and _replayed(error):
                return  # a late answer: the refund was applied by the first try
            self._refund_failed(ticket, error)
        except BotoCoreError as error:
            self._refund_failed(ticket, error)

    # -- the org's Cloudflare budget -------------------------------------------------------

    def permit(self, request_id: str, now: float) -> str | None:
        """One more call to Cloudflare (a retry): its id, or None when the budget or a
        cool-down says no. Raises QuotaUnavailable when the store cannot answer."""
        try:
            return self._take_call(new_operation_id(request_id), now)
        except GlobalBudgetExceeded:
            return None

    def take_back(self, call_id: str, admitted_at: float) -> bool:
        """Return the unit of a call that never reached Cloudflare (the connection failed),
        if no call was admitted since: then the budget is exactly as if it had never been
        taken. Otherwise it stays counted (safe: the guard only errs on the side of fewer
        calls). Whether it was returned; a replay of an applied take-back says so too."""
        undone = f"{call_id}#taken-back"
        operations: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": BUDGET_KEY}},
                    "UpdateExpression": "ADD tat :back SET #last = :undone",
                    "ConditionExpression": "#last = :call",
                    "ExpressionAttributeNames": {"#last": "last"},
                    "ExpressionAttributeValues": {
                        ":back": _n(-self._budget.interval_us),
                        ":call": {"S": call_id},
                        ":undone": {"S": undone},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            self._count_call(admitted_at, -1),
        ]
        try:
            self._dynamodb.transact_write_items(
                TransactItems=operations, ClientRequestToken=_token(undone, 1)
            )
        except ClientError as error:
            if not _is_cancellation(error):
                logger.warning("could not take a call back", extra={"cause": "ClientError"})
                return False
            reasons: Sequence[Any] = error.response.get("CancellationReasons", [])
            old: Mapping[str, Any] = (reasons[0].get("Item") or {}) if reasons else {}
            return bool(old.get("last", {}).get("S") == undone)  # a replay of an applied one
        except BotoCoreError:
            logger.warning("could not take a call back", extra={"cause": "BotoCoreError"})
            return False
        return True

    def follow(self, items: Sequence[RatelimitItem], now: float, seen: BudgetState | None) -> None:
        """Cloudflare's `Ratelimit` says how many calls it will still take: when that is fewer
        than the budget would admit before Cloudflare's reset, the budget follows Cloudflare
        (the TAT only ever moves forward here)."""
        now_us = _micros(now)
        wanted = max(
            (self._budget.following(i.remaining, i.reset_seconds, now_us) for i in items),
            default=None,
        )
        if wanted is None:
            return
        if seen is not None and seen.tat_us >= wanted:
            return  # the budget already held Cloudflare's view after this request's charge
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": BUDGET_KEY}},
                UpdateExpression="SET tat = :wanted, #last = :why, expires_at = :expires",
                ConditionExpression="attribute_not_exists(tat) OR tat < :wanted",
                ExpressionAttributeNames={"#last": "last"},
                ExpressionAttributeValues={
                    ":wanted": _n(wanted),
                    ":why": {"S": "cloudflare-ratelimit"},
                    ":expires": _n(int(now) + TTL_GRACE_SECONDS),
                },
            )
            logger.info(
                "the Cloudflare budget follows Cloudflare's Ratelimit",
                extra={"remaining": min(i.remaining for i in items)},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                logger.warning(
                    "could not follow Cloudflare's Ratelimit", extra={"cause": "ClientError"}
                )
        except BotoCoreError:
            logger.warning(
                "could not follow Cloudflare's Ratelimit", extra={"cause": "BotoCoreError"}
            )

    def budget_state(self, now: float) -> BudgetState:
        return self._read("", [], now)[1]

    # -- reads and admin -------------------------------------------------------------------

    def usage(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]:
        """The counters of the team's current windows, read consistently, charging nothing."""
        return self._read(team, limits, now)[0]

    def usage_and_budget(
        self, team: str, limits: Sequence[Limit], now: float
    ) -> tuple[list[LimitState], BudgetState]:
        """The team's windows and the org's budget in one consistent read."""
        return self._read(team, limits, now)

    def reset(self, team: str, limits: Sequence[Limit], now: float) -> list[LimitState]:
        """Set the team's counters of the current windows back to zero (an admin's decision);
        returns what they were. A request in flight when this runs may still refund its charge
        afterwards, leaving the counter a little below zero until the window rolls over."""
        before = self.usage(team, limits, now)
        for item in _window_items(team, limits, now):
            self._seen.pop(item.key, None)
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

    # -- internals ---------------------------------------------------------------------------

    def _take_call(
        self,
        operation: str,
        now: float,
        part: _TeamPart | None = None,
        claim: KeyClaim | None = None,
    ) -> str:
        """One transaction: the team's updates (if any), the cool-down check, one call from the
        budget, the key's claim (if any), the held decisions that ride along and the marker.
        Returns the call's id (the operation id)."""
        # Held decisions ride a charge (a team's request), after the operations whose
        # cancellation reasons are read by index and before the marker.
        riders = self._decisions.riders() if self._decisions and part is not None else []
        try:
            return self._transact(operation, now, part, riders, claim)
        except BaseException:
            if self._decisions and riders:
                self._decisions.released(riders)  # not written: held for a later charge
            raise

    def _transact(
        self,
        operation: str,
        now: float,
        part: _TeamPart | None,
        riders: Sequence[HeldDecision],
        claim: KeyClaim | None = None,
    ) -> str:
        now_us = _micros(now)
        idle = self._seen_tat <= now_us
        puts = [self._decisions.put(rider) for rider in riders] if self._decisions else []
        if claim is not None:
            if self._keys is None:
                raise ValueError("this quota store keeps no Idempotency-Key records")
            puts.insert(0, self._keys.claim_put(claim, now))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            operations = [
                *(self._team_ops(part) if part is not None else []),
                self._no_cooldown(now),
                self._take_one(operation, now_us, idle=idle),
                *puts,
            ]
            try:
                self._write(operations, operation, at=now, attempt=attempt, calls=1)
            except ClientError as error:
                if not _is_cancellation(error):
                    raise self._unavailable(error) from None
                if _replayed(error):
                    return self._taken(operation, now, idle=idle, part=part)
                reasons = error.response.get("CancellationReasons", [])
                at_once, idle = self._after_cancellation(
                    reasons, part, now, idle=idle, claiming=claim is not None
                )
                if not at_once and attempt < MAX_ATTEMPTS:
                    self._sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter
            except BotoCoreError as error:
                raise self._unavailable(error) from None
            else:
                return self._taken(operation, now, idle=idle, part=part)
        raise QuotaUnavailable("quota counters are busy; retry shortly")

    def _after_cancellation(
        self,
        reasons: Sequence[Any],
        part: _TeamPart | None,
        now: float,
        *,
        idle: bool,
        claiming: bool = False,
    ) -> tuple[bool, bool]:
        """Raises the refusal a cancelled transaction holds (a claimed key first); else whether
        to try again at once (the values it came back with say how) and the budget's state to
        guess next."""
        now_us = _micros(now)
        offset = len(part.items) if part is not None else 0
        if claiming:  # the claim sits right after the budget's call
            self._raise_claimed(reasons, offset + 2)
        stale = self._learn_or_refuse(part, reasons, now) if part is not None else False
        self._raise_cooldown(reasons, offset, now)
        budget_reason = reasons[offset + 1] if offset + 1 < len(reasons) else {}
        if budget_reason.get("Code") != _FAILED:
            return stale, idle
        tat = _tat_of(budget_reason.get("Item"))
        self._seen_tat = tat
        if tat - now_us > self._budget.tolerance_us:
            state = self._budget.state(tat, now_us)
            raise GlobalBudgetExceeded(
                f"the org's Cloudflare budget is spent: {state.describe()}",
                headers={"Retry-After": str(state.retry_after)},
            ) from None
        return True, tat <= now_us  # the guess was wrong: the other update applies

    def _team_ops(self, part: _TeamPart) -> list[TransactWriteItemTypeDef]:
        """Each window set to a known value while that works, else added to under a guard."""
        operations = []
        for item in part.items:
            exact = part.misses.get(item.key, 0) < EXACT_ATTEMPTS and self._fits(item, part.charge)
            part.exact[item.key] = exact
            operations.append(
                self._set(item, part.charge) if exact else self._add(item, part.charge, guard=True)
            )
        return operations

    def _taken(
        self,
        operation: str,
        now: float,
        *,
        idle: bool,
        part: _TeamPart | None,
    ) -> str:
        """The transaction was applied: what is now known of the counters and the budget."""
        now_us = _micros(now)
        # Idle: the TAT was set to exactly this; busy: it moved one interval past a value at
        # least the one seen (a lower bound, which is all `follow` needs).
        start = now_us if idle else max(self._seen_tat, now_us)
        self._seen_tat = start + self._budget.interval_us
        calls = _calls_key(now)
        self._seen_calls = {calls: self._seen_calls.get(calls, 0) + 1}
        if part is not None:
            if len(self._seen) > MAX_SEEN_ITEMS:
                self._seen.clear()
            for item in part.items:
                if part.exact.get(item.key):
                    seen = self._seen.setdefault(item.key, {})
                    for limit in item.limits:
                        name = limit.counter.value
                        seen[name] = seen.get(name, 0) + part.charge.amount(limit.counter)
                else:
                    self._seen.pop(item.key, None)
        return operation

    def _fits(self, item: WindowItem, charge: Charge) -> bool:
        """Whether the window, as last seen here (nothing seen: a new window), has room."""
        seen = self._seen.get(item.key, {})
        return all(
            seen.get(limit.counter.value, 0) + charge.amount(limit.counter) <= limit.limit
            for limit in item.limits
        )

    def _set(self, item: WindowItem, charge: Charge) -> TransactWriteItemTypeDef:
        """`SET` each counter of the item to its value as seen here plus the charge, under the
        condition that it still holds the value seen (a counter never written holds 0). No
        concurrent write slips between: a changed counter fails the transaction and comes back
        with it (`_learn_or_refuse`)."""
        seen = self._seen.get(item.key, {})
        names: dict[str, str] = {}
        values: dict[str, Any] = {":expires": _n(item.expires_at)}
        sets, conditions = [], []
        for i, limit in enumerate(item.limits):
            name = limit.counter.value
            before = seen.get(name, 0)
            names[f"#c{i}"] = name
            values[f":o{i}"] = _n(before)
            values[f":n{i}"] = _n(before + charge.amount(limit.counter))
            sets.append(f"#c{i} = :n{i}")
            conditions.append(
                f"#c{i} = :o{i}" if before else f"(attribute_not_exists(#c{i}) OR #c{i} = :o{i})"
            )
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": item.key}},
            "UpdateExpression": f"SET {', '.join(sets)}, expires_at = :expires",
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return {"Update": update}  # type: ignore[typeddict-item]

    def _write(
        self,
        operations: list[TransactWriteItemTypeDef],
        operation: str,
        *,
        at: float,
        attempt: int,
        calls: int = 0,
    ) -> None:
        """One TransactWriteItems with its idempotency token, its id recorded last (so a
        cancellation's reasons keep the indexes of the operations before it)."""
        marker = self._count_call(at, calls, operation=_short_id(operation))
        self._dynamodb.transact_write_items(
            TransactItems=[*operations, marker], ClientRequestToken=_token(operation, attempt)
        )

    def _take_one(self, call_id: str, now_us: int, *, idle: bool) -> TransactWriteItemTypeDef:
        """The GCRA step: `max(TAT, now) + interval`, under `max(TAT, now) - now <= tolerance`."""
        names = {"#last": "last"}
        values: dict[str, Any] = {
            ":now": _n(now_us),
            ":call": {"S": call_id},
            ":expires": _n(now_us // MICROS + TTL_GRACE_SECONDS),
        }
        if idle:
            values[":next"] = _n(now_us + self._budget.interval_us)
            update = "SET tat = :next, #last = :call, expires_at = :expires"
            condition = "attribute_not_exists(tat) OR tat <= :now"
        else:
            values[":step"] = _n(self._budget.interval_us)
            values[":latest"] = _n(now_us + self._budget.tolerance_us)
            update = "ADD tat :step SET #last = :call, expires_at = :expires"
            condition = "tat > :now AND tat <= :latest"
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": BUDGET_KEY}},
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _count_call(
        self, at: float, calls: int, *, operation: str | None = None
    ) -> TransactWriteItemTypeDef:
        """The report of calls per clock-aligned 5 minutes (`usage`), never a guard; with an
        operation id, the write's idempotency mark too (refused if the id is already there)."""
        start = int(at // GLOBAL_WINDOW) * GLOBAL_WINDOW
        values: dict[str, Any] = {
            ":calls": _n(calls),
            ":expires": _n(start + GLOBAL_WINDOW + TTL_GRACE_SECONDS),
        }
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": _calls_key(at)}},
            "UpdateExpression": "ADD calls :calls SET expires_at = :expires",
            "ExpressionAttributeValues": values,
        }
        if operation is not None:
            update["UpdateExpression"] = "ADD calls :calls, ops :ops SET expires_at = :expires"
            update["ConditionExpression"] = "NOT contains(ops, :op)"
            values[":ops"] = {"SS": [operation]}
            values[":op"] = {"S": operation}
        return {"Update": update}  # type: ignore[typeddict-item]

    def _read(
        self, team: str, limits: Sequence[Limit], now: float
    ) -> tuple[list[LimitState], BudgetState]:
        items = _window_items(team, limits, now)
        keys = [item.key for item in items] + [BUDGET_KEY, _calls_key(now)]
        try:
            answer = self._dynamodb.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": [{"pk": {"S": key}} for key in keys],
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
        team_limits = [limit for limit in limits if limit.scope is Scope.TEAM]
        tat = _tat_of(found.get(BUDGET_KEY))
        self._seen_tat = max(self._seen_tat, tat)
        calls = int(found.get(_calls_key(now), {}).get("calls", {}).get("N", "0"))
        self._seen_calls = {_calls_key(now): calls}
        for item in items:
            self._seen[item.key] = {limit.counter.value: used[limit.name] for limit in item.limits}
        return states(team_limits, used, now), self._budget.state(tat, _micros(now), calls)

    def _add(self, item: WindowItem, charge: Charge, *, guard: bool) -> TransactWriteItemTypeDef:
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

    def _learn_or_refuse(self, part: _TeamPart, reasons: Sequence[Any], now: float) -> bool:
        """A team window that refused the charge: with no room, the team's 429; with room, it
        only held other values than those seen (set again with them, counted as a miss).
        Whether any did."""
        stale = False
        for item, reason in zip(part.items, reasons, strict=False):
            if reason.get("Code") != _FAILED:
                continue
            old = reason.get("Item") or {}
            used = {
                limit.name: int(old.get(limit.counter.value, {}).get("N", "0"))
                for limit in item.limits
            }
            self._seen[item.key] = {limit.counter.value: used[limit.name] for limit in item.limits}
            hit = first_exceeded(item.limits, used, part.charge)
            if hit is None and part.exact.get(item.key):
                part.misses[item.key] = part.misses.get(item.key, 0) + 1
                stale = True
                continue
            hit = hit or item.limits[0]
            state = LimitState(hit, used.get(hit.name, 0), hit.reset_seconds(now))
            team_limits = [limit for window in part.items for limit in window.limits]
            raise QuotaExceeded(
                f"team {part.team!r} has used its quota of {state.describe()}",
                headers={
                    **self._refusal_headers(part.team, team_limits, now),
                    "Retry-After": str(state.reset_seconds),
                },
            )
        return stale

    def _raise_claimed(self, reasons: Sequence[Any], index: int) -> None:
        """A key found claimed wins over any quota refusal: a retry of an answered request is
        answered, not charged."""
        reason = reasons[index] if index < len(reasons) else {}
        if reason.get("Code") == _FAILED and self._keys is not None:
            raise KeyClaimed(self._keys.found(reason.get("Item")))

    @staticmethod
    def _raise_cooldown(reasons: Sequence[Any], index: int, now: float) -> None:
        reason = reasons[index] if index < len(reasons) else {}
        if reason.get("Code") != _FAILED:
            return
        until = float((reason.get("Item") or {}).get("until", {}).get("N", now))
        wait = max(1, int(until - now + 0.999))
        raise GlobalBudgetExceeded(
            f"Cloudflare asked the gateway to slow down; no calls for {wait} s",
            headers={"Retry-After": str(wait)},
        )

    def _refusal_headers(self, team: str, limits: Sequence[Limit], now: float) -> dict[str, str]:
        team_limits = [limit for limit in limits if limit.scope is Scope.TEAM]
        return ratelimit_headers(self.usage(team, team_limits, now))

    @staticmethod
    def _refund_failed(ticket: Ticket, error: Exception) -> None:
        # The caller already has its answer; an unrefunded charge only costs the team quota
        # until the window rolls over. Loud, so an operator sees it.
        logger.error(
            "quota refund failed", extra={"team": ticket.team, "cause": type(error).__name__}
        )

    @staticmethod
    def _unavailable(error: Exception) -> QuotaUnavailable:
        logger.error("quota store call failed", extra={"cause": type(error).__name__})
        return QuotaUnavailable("the quota store is unavailable; retry later")


def _short_id(operation: str) -> str:
    """What the `ops` set keeps of an operation id: its random part (64 bits), marked for a
    refund, enough to tell the writes of 5 minutes apart."""
    return operation[:16] + ("r" if operation.endswith("#refund") else "")


def _calls_key(at: float) -> str:
    return f"global#{GLOBAL_WINDOW}#{int(at // GLOBAL_WINDOW) * GLOBAL_WINDOW}"


def _tat_of(item: Mapping[str, Any] | None) -> int:
    return int((item or {}).get("tat", {}).get("N", "0"))


def _is_cancellation(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _replayed(error: ClientError) -> bool:
    """The transaction's marker (its last operation) already exists: this is a replay of a
    write that was applied."""
    reasons = error.response.get("CancellationReasons", [])
    return bool(reasons) and reasons[-1].get("Code") == _FAILED
