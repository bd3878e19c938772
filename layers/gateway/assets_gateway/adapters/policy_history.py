"""Published policy versions in the ControlTable, and publishing with optimistic concurrency.

Each publish writes two items in one transaction: `policy#v#<NNNNNN>` (kept forever: the
history, and what a rollback re-publishes) and `policy#current` (what the doors read), the latter
only if its version is still the one the admin read (`If-Match`). Two admins publishing over the
same version: exactly one wins, the other gets 409 and re-reads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.adapters.policy_store import CURRENT_POLICY_ID, DOCUMENT_ATTRIBUTE
from assets_gateway.domain.errors import PolicyUnavailable, PolicyVersionConflict
from assets_gateway.ports.policy_versions import PublishedPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

logger = Logger(child=True)


def version_id(version: int) -> str:
    return f"policy#v#{version:06d}"


class PolicyHistory:
    def __init__(self, *, table_name: str, dynamodb: DynamoDBClient) -> None:
        self._table = table_name
        self._dynamodb = dynamodb

    def current(self) -> PublishedPolicy | None:
        return self._get(CURRENT_POLICY_ID)

    def version(self, version: int) -> PublishedPolicy | None:
        return self._get(version_id(version))

    def versions(self, *, before: int, limit: int) -> list[PublishedPolicy]:
        """Versions below `before`, newest first (their documents left out)."""
        numbers = list(range(before - 1, max(0, before - 1 - limit), -1))
        if not numbers:
            return []
        try:
            answer = self._dynamodb.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": [{"id": {"S": version_id(n)}} for n in numbers],
                        "ProjectionExpression": "#v, published_by, published_at, #r, changes",
                        "ExpressionAttributeNames": {"#v": "version", "#r": "reason"},
                    }
                }
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(error) from None
        found = [_published(item, {}) for item in answer.get("Responses", {}).get(self._table, [])]
        return sorted(found, key=lambda published: published.version, reverse=True)

    def publish(self, new: PublishedPolicy) -> None:
        expected_version = new.version - 1
        document = json.dumps({"version": new.version, "policy": new.policy}, separators=(",", ":"))
        attributes: dict[str, AttributeValueTypeDef] = {
            DOCUMENT_ATTRIBUTE: {"S": document},
            "version": {"N": str(new.version)},
            "published_by": {"S": new.published_by},
            "published_at": {"S": new.published_at},
            "reason": {"S": new.reason},
            "changes": {"L": [{"S": change} for change in new.changes]},
        }
        if expected_version == 0:
            current_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
        else:
            current_condition = {
                "ConditionExpression": "#v = :expected",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        current_put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {"id": {"S": CURRENT_POLICY_ID}, **attributes},
            **current_condition,
        }
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {"id": {"S": version_id(new.version)}, **attributes},
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                    {"Put": current_put},  # type: ignore[typeddict-item]
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise PolicyVersionConflict(
                    f"version {expected_version} is no longer the current policy: someone "
                    "published first; read the current version and apply your change to it"
                ) from None
            raise _unavailable(error) from None
        except BotoCoreError as error:
            raise _unavailable(error) from None

    def _get(self, item_id: str) -> PublishedPolicy | None:
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key={"id": {"S": item_id}}, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(error) from None
        if item is None:
            return None
        stored = json.loads(item[DOCUMENT_ATTRIBUTE]["S"])
        return _published(item, stored.get("policy", {}))


def _published(item: dict[str, Any], policy: dict[str, Any]) -> PublishedPolicy:
    return PublishedPolicy(
        version=int(item["version"]["N"]),
        policy=policy,
        published_by=item.get("published_by", {}).get("S", ""),
        published_at=item.get("published_at", {}).get("S", ""),
        reason=item.get("reason", {}).get("S", ""),
        changes=tuple(change["S"] for change in item.get("changes", {}).get("L", [])),
    )


def _unavailable(error: Exception) -> PolicyUnavailable:
    logger.error("policy history call failed", extra={"cause": type(error).__name__})
    return PolicyUnavailable("the policy store is unavailable; retry later")
