"""`Idempotency-Key` records in the ControlTable (`ports.idempotency`), shaped as Powertools'
DynamoDB idempotency records are (`id`, `status`, `expiration`, `in_progress_expiration`,
`validation`, `data`), so records written before the claim rode the charge are still read.

The claim is a conditional Put carried by the quota charge's TransactWriteItems (`quota_store`):
it succeeds where no record is, or where the one there expired (its hour is over, or the request
that claimed it ran out of time), and, cancelled, returns the record it found (ALL_OLD)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.domain.envelope import Reply
from assets_gateway.ports.idempotency import KeyClaim, KeyRecord
from assets_gateway.ports.sessions import Outcome, SessionResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

logger = Logger(child=True)

IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
# Powertools' condition for taking a key, with its attribute names.
_FREE = (
    "attribute_not_exists(#id) OR #expiry < :now OR "
    "(#status = :in_progress AND attribute_exists(#running) AND #running < :now_ms)"
)
_NAMES = {
    "#id": "id",
    "#expiry": "expiration",
    "#status": "status",
    "#running": "in_progress_expiration",
}


class KeyRecordStore:
    def __init__(
        self, *, table_name: str, dynamodb: DynamoDBClient, record_seconds: int = 3600
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._record_seconds = record_seconds

    def claim_put(self, claim: KeyClaim, now: float) -> TransactWriteItemTypeDef:
        """The claim, as an operation of the charge's transaction."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "id": {"S": claim.record_id},
                    "status": {"S": IN_PROGRESS},
                    "expiration": {"N": str(int(now) + self._record_seconds)},
                    "in_progress_expiration": {"N": str(int(now * 1000) + claim.running_ms)},
                    "validation": {"S": claim.payload_hash},
                },
                "ConditionExpression": _FREE,
                "ExpressionAttributeNames": _NAMES,
                "ExpressionAttributeValues": {
                    ":now": {"N": str(int(now))},
                    ":now_ms": {"N": str(int(now * 1000))},
                    ":in_progress": {"S": IN_PROGRESS},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    @staticmethod
    def found(item: Mapping[str, Any] | None) -> KeyRecord:
        """The record a cancelled claim came back with."""
        item = item or {}
        payload_hash = item.get("validation", {}).get("S")
        if item.get("status", {}).get("S") != COMPLETED:
            return KeyRecord(payload_hash, None)
        stored = json.loads(item["data"]["S"])
        answer = SessionResult(
            Reply(stored["status"], stored["body"].encode(), dict(stored["headers"])),
            Outcome(stored["outcome"]),
            team=stored.get("team"),  # absent from records written before replays were checked
        )
        return KeyRecord(payload_hash, answer)

    def complete(self, claim: KeyClaim, answer: SessionResult, now: float) -> None:
        data = {
            "status": answer.reply.status,
            "headers": dict(answer.reply.headers),
            "body": answer.reply.body.decode("utf-8", errors="replace"),
            "outcome": answer.outcome.value,
            "team": answer.team,
        }
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"id": {"S": claim.record_id}},
                UpdateExpression="SET #data = :data, #expiry = :expiry, #status = :completed",
                ExpressionAttributeNames={
                    "#data": "data",
                    "#expiry": "expiration",
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":data": {"S": json.dumps(data, sort_keys=True)},
                    ":expiry": {"N": str(int(now) + self._record_seconds)},
                    ":completed": {"S": COMPLETED},
                },
            )
        except (ClientError, BotoCoreError) as error:
            # The caller has its answer; a retry with the key finds it running until the claim
            # runs out, then runs again.
            logger.error("idempotency record not completed", extra={"cause": type(error).__name__})

    def release(self, claim: KeyClaim) -> None:
        try:
            self._dynamodb.delete_item(TableName=self._table, Key={"id": {"S": claim.record_id}})
        except (ClientError, BotoCoreError) as error:
            logger.error("idempotency record not released", extra={"cause": type(error).__name__})
