"""Holding an S3-door record through a quota wait without using up its receives.

SQS counts every receive of a message toward the redrive policy's maxReceiveCount, and
ChangeMessageVisibility gives none back: a record held by its visibility alone would reach the
dead-letter queue after five waits though nothing failed. So a wait sends a copy of the
notification back to the queue, delayed by the answer's Retry-After, and the record itself
completes. SQS delays a message at most 15 minutes: a longer wait takes several hops, each a
cheap quota refusal (nothing reaches Cloudflare, the charge is given back). The copy carries how
many waits it has had and when the first copy was sent; a record is held only while the first
copy's retention would still have kept it, after which the refusal is written as its result.
Real failures still count as receives of whichever copy meets them (at most maxReceiveCount per
copy), so waits and failures are counted apart. The SQS client is asked for at the first hold:
records that never wait (most) do not pay for it, nor does the function's init.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

WAITS_ATTRIBUTE = "assets-gateway-waits"
FIRST_SENT_ATTRIBUTE = "assets-gateway-first-sent-ms"
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds ceiling


class HoldFailed(Exception):
    """The delayed copy could not be sent: the record must come back the ordinary way."""


@dataclass(frozen=True)
class HoldState:
    """What a record says about its earlier waits (pure)."""

    waits: int
    first_sent_ms: int

    @classmethod
    def of(cls, attributes: Mapping[str, str | None], sent_timestamp_ms: int) -> HoldState:
        """From the message attributes of a held copy; a first copy has none (and garbage is
        read as none: only S3 and this function may send to the queue)."""
        waits = _non_negative(attributes.get(WAITS_ATTRIBUTE))
        first_sent = _non_negative(attributes.get(FIRST_SENT_ATTRIBUTE))
        if waits is None or first_sent is None or first_sent > sent_timestamp_ms:
            return cls(0, sent_timestamp_ms)
        return cls(waits, first_sent)


def _non_negative(value: str | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


class ManifestHolds:
    def __init__(
        self,
        *,
        sqs: Callable[[], SQSClient],
        queue_url: str,
        retention_seconds: int,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._retention = retention_seconds

    def wait_until(self, state: HoldState) -> float:
        """The last moment (epoch seconds) this record may still be waiting for its quota."""
        return state.first_sent_ms / 1000 + self._retention

    def hold(self, body: str, state: HoldState, seconds: int) -> int:
        """Send the delayed copy; returns the delay used (the rest of a long wait is a new hop)."""
        delay = max(0, min(seconds, MAX_DELAY_SECONDS))
        try:
            self._sqs().send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                DelaySeconds=delay,
                MessageAttributes={
                    WAITS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(state.waits + 1)},
                    FIRST_SENT_ATTRIBUTE: {
                        "DataType": "Number",
                        "StringValue": str(state.first_sent_ms),
                    },
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise HoldFailed(f"holding the record: {type(error).__name__}") from None
        return delay
