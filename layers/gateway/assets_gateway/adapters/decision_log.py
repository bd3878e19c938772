"""Recorded decisions in the DecisionsTable, kept for a while (TTL) so an admin can replay them
against a proposed policy.

One item per decision: partition `day#<UTC date>`, sort key `<ISO time>#<request id>`, so a
period is a handful of range queries. The manifest's paths are kept compressed when they fit a
DynamoDB item (most manifests); larger ones keep their count, bytes and largest file, and the
replay says which rules it could not check. Recording never fails a request: it is logged.

The session door writes no item of its own (issue 15: one AWS round trip per admitted request):
it `hold`s each decision in the execution environment, and the quota store's next charge carries
the held decisions (oldest first, up to `MAX_RIDERS`) as Puts in its TransactWriteItems
(`riders` takes them from the held ones, `released` gives them back if it is not applied). An
admitted request's own decision is held just before its charge, so it lands with the charge,
atomically. A refusal before the quota step (or a charge the quota refused) makes no write: its
decision rides the environment's next charge, or a transaction of its own once `MAX_HELD` wait
(a flood of refusals costs one write per `MAX_HELD`). What an environment still holds when
Lambda retires it is not recorded (its audit line remains); the deploy door `record`s at once,
as before.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.domain.deploy_decisions import JudgedDeploy
from assets_gateway.domain.errors import DecisionsUnavailable
from assets_gateway.domain.policy import ManifestSummary, SessionTarget, moment
from assets_gateway.domain.simulation import RecordedDecision

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

logger = Logger(child=True)

# DynamoDB items hold 400 KB; the compressed paths stay well under, with room for the rest.
MAX_PATHS_BYTES = 300_000
# What one simulation reads at most (an API Gateway request has 29 s).
MAX_DECISIONS_READ = 20_000
# Held decisions are written in transactions of their own when this many wait, or this much.
MAX_HELD = 25
MAX_HELD_BYTES = 3_000_000
# What one charge carries at most: TransactWriteItems takes 100 actions and 4 MB in all.
MAX_RIDERS = 8
MAX_RIDERS_BYTES = 1_000_000


def _day_key(at: datetime) -> str:
    return f"day#{at.date().isoformat()}"


def _sort_key(at: datetime, request_id: str) -> str:
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{request_id}"


def pack_paths(paths: Iterable[str]) -> bytes | None:
    packed = zlib.compress("\n".join(paths).encode("utf-8"), 1)
    return packed if len(packed) <= MAX_PATHS_BYTES else None


def unpack_paths(packed: bytes) -> tuple[str, ...]:
    text = zlib.decompress(packed).decode("utf-8")
    return tuple(text.split("\n")) if text else ()


@dataclass(frozen=True, eq=False)
class HeldDecision:
    """A decision's item, waiting for a write to carry it."""

    request_id: str
    item: dict[str, AttributeValueTypeDef]
    size: int


class DecisionLog:
    def __init__(self, *, table_name: str, dynamodb: DynamoDBClient, retention_days: int) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._retention = timedelta(days=retention_days)
        # By request id (a request held again replaces its earlier item), oldest first.
        self._held: dict[str, HeldDecision] = {}
        self._lock = threading.Lock()

    def record(self, decision: RecordedDecision, paths: list[str] | None = None) -> None:
        try:
            self._dynamodb.put_item(TableName=self._table, Item=self._item(decision, paths))
        except (ClientError, BotoCoreError) as error:
            _not_recorded([decision.request_id], error)

    def hold(self, decision: RecordedDecision, paths: list[str] | None = None) -> None:
        """Keep the decision until the next charge carries it (see the module's docstring)."""
        item = self._item(decision, paths)
        size = len(item.get("paths", {}).get("B", b"")) + 1024
        with self._lock:
            self._held.pop(decision.request_id, None)
            self._held[decision.request_id] = HeldDecision(decision.request_id, item, size)
            flush = len(self._held) >= MAX_HELD or sum(h.size for h in self._held.values()) > (
                MAX_HELD_BYTES
            )
        while flush and (batch := self.riders(MAX_HELD, MAX_HELD_BYTES)):
            self._write_batch(batch)

    def withdraw(self, request_id: str) -> None:
        with self._lock:
            self._held.pop(request_id, None)

    def riders(
        self, max_items: int = MAX_RIDERS, max_bytes: int = MAX_RIDERS_BYTES
    ) -> list[HeldDecision]:
        """Held decisions for one transaction to carry (oldest first, within its limits: one at
        least), taken from the held ones so that no concurrent transaction carries them too;
        `released` gives them back if the transaction is not applied."""
        riders: list[HeldDecision] = []
        total = 0
        with self._lock:
            for rider in list(self._held.values())[:max_items]:
                if riders and total + rider.size > max_bytes:
                    break
                riders.append(rider)
                total += rider.size
                del self._held[rider.request_id]
        return riders

    def put(self, rider: HeldDecision) -> TransactWriteItemTypeDef:
        return {"Put": {"TableName": self._table, "Item": rider.item}}

    def released(self, riders: Iterable[HeldDecision]) -> None:
        """The transaction that took these was not applied: held again, first in line (unless
        their requests held a later decision meanwhile)."""
        with self._lock:
            back = {r.request_id: r for r in riders if r.request_id not in self._held}
            self._held = {**back, **self._held}

    def _write_batch(self, riders: list[HeldDecision]) -> None:
        """One TransactWriteItems of Puts: the PutItem the functions are granted on the table
        is all it needs (a BatchWriteItem would need a grant of its own)."""
        try:
            self._dynamodb.transact_write_items(TransactItems=[self.put(r) for r in riders])
        except (ClientError, BotoCoreError) as error:
            # Logged, as a failed write always was: holding them would only grow the buffer.
            _not_recorded([rider.request_id for rider in riders], error)

    def _item(
        self, decision: RecordedDecision, paths: list[str] | None
    ) -> dict[str, AttributeValueTypeDef]:
        at = moment(decision.at)
        item: dict[str, AttributeValueTypeDef] = {
            "pk": {"S": _day_key(at)},
            "sk": {"S": _sort_key(at, decision.request_id)},
            "at": {"N": f"{decision.at:.6f}"},
            "request_id": {"S": decision.request_id},
            "door": {"S": decision.door},
            "principal": {"S": decision.principal},
            "account_id": {"S": decision.target.account_id},
            "script_name": {"S": decision.target.script_name},
            "policy_allowed": {"BOOL": decision.policy_allowed},
            "outcome": {"S": decision.outcome},
            "expires_at": {"N": str(int((at + self._retention).timestamp()))},
        }
        optional = {
            "team": decision.team,
            "caller_team": decision.caller_team,
            "namespace": decision.target.namespace,
        }
        item.update({name: {"S": value} for name, value in optional.items() if value})
        if decision.policy_version is not None:
            item["policy_version"] = {"N": str(decision.policy_version)}
        if decision.deploy is not None:
            item["deploy"] = {"S": json.dumps(decision.deploy.as_record(), separators=(",", ":"))}
        summary = decision.manifest
        if summary is not None:
            item["entries"] = {"N": str(summary.count)}
            item["bytes"] = {"N": str(summary.total_bytes)}
            if summary.largest_file_bytes is not None:
                item["largest"] = {"N": str(summary.largest_file_bytes)}
            packed = pack_paths(paths) if paths is not None else None
            if packed is not None:
                item["paths"] = {"B": packed}
        return item

    def between(self, since: datetime, until: datetime) -> tuple[list[RecordedDecision], bool]:
        """Decisions in [since, until), oldest first, and whether the read stopped at the cap."""
        found: list[RecordedDecision] = []
        day = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < until:
            for item in self._query_day(day, since, until):
                found.append(_decision(item))
                if len(found) >= MAX_DECISIONS_READ:
                    return found, True
            day += timedelta(days=1)
        return found, False

    def _query_day(
        self, day: datetime, since: datetime, until: datetime
    ) -> Iterator[dict[str, Any]]:
        paginator = self._dynamodb.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :day AND sk BETWEEN :since AND :until",
                ExpressionAttributeValues={
                    ":day": {"S": _day_key(day)},
                    ":since": {"S": _sort_key(since.astimezone(UTC), "")},
                    ":until": {"S": _sort_key(until.astimezone(UTC), "")},
                },
            ):
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as error:
            logger.error("decision log read failed", extra={"cause": type(error).__name__})
            raise DecisionsUnavailable(
                "the recorded decisions cannot be read; retry later"
            ) from None


def _not_recorded(request_ids: list[str], error: Exception) -> None:
    logger.error(
        "decision not recorded",
        extra={"request_ids": request_ids, "cause": type(error).__name__},
    )


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value else None


def _number(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value else None


def _decision(item: dict[str, Any]) -> RecordedDecision:
    entries, total = _number(item, "entries"), _number(item, "bytes")
    summary = None
    if entries is not None and total is not None:
        packed = item.get("paths")
        summary = ManifestSummary(
            count=entries,
            total_bytes=total,
            paths=unpack_paths(bytes(packed["B"])) if packed else None,
            largest_file_bytes=_number(item, "largest"),
        )
    return RecordedDecision(
        at=float(item["at"]["N"]),
        request_id=item["request_id"]["S"],
        door=item["door"]["S"],
        principal=item["principal"]["S"],
        target=SessionTarget(
            account_id=item["account_id"]["S"],
            script_name=item["script_name"]["S"],
            namespace=_text(item, "namespace"),
        ),
        policy_allowed=bool(item["policy_allowed"]["BOOL"]),
        team=_text(item, "team"),
        caller_team=_text(item, "caller_team"),
        outcome=item.get("outcome", {}).get("S", ""),
        policy_version=_number(item, "policy_version"),
        manifest=summary,
        deploy=JudgedDeploy.from_record(json.loads(item["deploy"]["S"]))
        if "deploy" in item
        else None,
    )
