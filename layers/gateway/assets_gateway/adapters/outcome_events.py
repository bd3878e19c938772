"""The S3 door's outcome events on EventBridge (`ports.outcome_events`). A failure to publish is
logged, never raised: the result object stays the record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

EVENT_SOURCE = "assets-gateway"

logger = Logger(child=True)


class EventBridgeOutcomes:
    def __init__(self, *, events: EventBridgeClient, event_bus: str) -> None:
        self._events = events
        self._event_bus = event_bus

    def publish(self, detail_type: str, detail: Mapping[str, Any], resource: str) -> None:
        try:
            answer = self._events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self._event_bus,
                        "Resources": [resource],
                    }
                ]
            )
            failed = answer.get("FailedEntryCount", 0)
        except (ClientError, BotoCoreError) as error:
            failed, cause = 1, type(error).__name__
        else:
            cause = "FailedEntryCount"
        if failed:
            logger.error(
                "outcome event not published", extra={"key": detail.get("key"), "cause": cause}
            )
