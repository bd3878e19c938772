"""Lambda's SQS event source mapping, locally: receive a batch, build the event Lambda would
send (message attributes included), invoke the handler, delete what succeeded and leave the
reported failures to come back after their visibility timeout (and, past maxReceiveCount, to
move to the dead-letter queue). Visibility changes and delays are moto's own, as in SQS."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway_local.api_front import lambda_context

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Batch:
    received: int
    failed: frozenset[str]
    event: dict[str, Any]


def lambda_sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": _lambda_message_attributes(message),
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's own
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _lambda_message_attributes(message: MessageTypeDef) -> dict[str, Any]:
    """SQS's MessageAttributes in the shape Lambda's event source mapping delivers them."""
    return {
        name: {
            "stringValue": value.get("StringValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }


class SqsPoller:
    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        region: str,
        function_name: str = "manifest-events",
        batch_size: int = 10,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._region = region
        self._function_name = function_name
        self._batch_size = batch_size

    def poll_once(self, wait_seconds: int = 0) -> Batch:
        """One batch (possibly empty): invoke, then delete every record not reported failed."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return Batch(0, frozenset(), {"Records": []})
        event = lambda_sqs_event(messages, self._queue_arn, self._region)
        try:
            answer = self._handler(event, lambda_context(self._function_name, timeout_seconds=30))
            failed = frozenset(f["itemIdentifier"] for f in answer.get("batchItemFailures", []))
        except Exception:
            # A handler error fails the whole batch, as in Lambda.
            logger.exception("manifest handler failed the whole batch")
            failed = frozenset(message["MessageId"] for message in messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return Batch(len(messages), failed, event)

    def run(self, stopping: threading.Event, idle_seconds: float = 0.5) -> None:
        # Short polls with the wait out here: a long poll would hold the local moto server
        # (which serves one request at a time) and stall every other AWS call.
        while not stopping.is_set():
            try:
                if self.poll_once(wait_seconds=0).received == 0:
                    stopping.wait(idle_seconds)
            except Exception:
                logger.exception("polling the manifest queue failed")
                stopping.wait(1)
