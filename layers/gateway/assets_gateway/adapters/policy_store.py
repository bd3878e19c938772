"""The current policy, read from the ControlTable through Powertools Parameters and cached briefly.

Item `policy#current` holds `document`: the JSON `{"version": N, "policy": {...}}` that the admin
door publishes. Parsing and compiling happen once per distinct stored document, not per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError

from assets_gateway.domain.errors import PolicyUnavailable
from assets_gateway.ports.policy_source import StoredPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CURRENT_POLICY_ID = "policy#current"
DOCUMENT_ATTRIBUTE = "document"

logger = Logger(child=True)


@dataclass
class _Compiled:
    raw: str
    stored: StoredPolicy


class _PolicyProvider(BaseProvider):
    """Powertools Parameters' cache over one DynamoDB item's string attribute, read with the
    function's DynamoDB client (Powertools' `DynamoDBProvider` needs a boto3 resource, whose
    making costs each cold start ~20 ms more than the client the quota store makes anyway).
    Answers "" for a missing item, so "nothing published" is told apart from "store down"."""

    def __init__(
        self, *, table_name: str, key_attr: str, value_attr: str, client: DynamoDBClient
    ) -> None:
        # Powertools' BaseProvider.__init__ carries no annotations.
        super().__init__(client=client)  # type: ignore[no-untyped-call]
        self._client = client
        self._table_name = table_name
        self._key_attr = key_attr
        self._value_attr = value_attr

    def _get(self, name: str, **sdk_options: Any) -> str:
        answer = self._client.get_item(
            TableName=self._table_name, Key={self._key_attr: {"S": name}}, **sdk_options
        )
        # A document that is not a string attribute reads as nothing published.
        return answer.get("Item", {}).get(self._value_attr, {}).get("S", "")

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        """The control table has no sort key: an item per policy name, nothing to list."""
        raise NotImplementedError("the policy store reads one item by its key")


class PolicyStore:
    def __init__(self, *, table_name: str, dynamodb: DynamoDBClient, max_age_seconds: int) -> None:
        self._provider = _PolicyProvider(
            table_name=table_name, key_attr="id", value_attr=DOCUMENT_ATTRIBUTE, client=dynamodb
        )
        self._max_age = max_age_seconds
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def current(self) -> StoredPolicy:
        try:
            raw = self._provider.get(CURRENT_POLICY_ID, max_age=self._max_age, ConsistentRead=False)
        except GetParameterError as exc:
            logger.error("policy read failed", extra={"cause": type(exc.__context__).__name__})
            raise PolicyUnavailable("the policy store is unavailable; retry later") from None
        if not raw or not isinstance(raw, str):
            raise PolicyUnavailable("no policy has been published yet")
        with self._lock:
            compiled = self._compiled
            if compiled is None or compiled.raw != raw:
                compiled = _Compiled(raw=raw, stored=self._parse(raw))
                self._compiled = compiled
        return compiled.stored

    @staticmethod
    def _parse(raw: str) -> StoredPolicy:
        try:
            return StoredPolicy.model_validate_json(raw)
        except ValidationError as exc:
            logger.error("stored policy is invalid", extra={"errors": exc.error_count()})
            raise PolicyUnavailable(
                "the stored policy is invalid; an admin must republish it"
            ) from None
