"""The S3 door's SQS records: each notification checked, each manifest object it names run
through the door once (Powertools idempotency on bucket + key + revision: `revision` is the
version id in the deployed, versioned bucket), and what became of it logged and counted.

A record whose manifest needs another attempt raises `RetryLater`: it fails alone (partial batch
response) and SQS delivers it again. A record refused for quota is held until its Retry-After as
a delayed copy (`s3_holds`): a wait, not a failure. Malformed records and notifications that do
not check out are skipped, logged and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.adapters.s3_holds import HoldFailed, HoldState, ManifestHolds
from assets_gateway.domain.manifest_objects import ManifestObject, read_notification
from assets_gateway.doors.s3 import Disposition, ManifestDoor, ObjectOutcome, QuotaWait, RetryLater

logger = Logger(child=True)

# template.yaml scopes the manifest function's ControlTable access to `manifest-object#*` keys.
KEY_PREFIX = "manifest-object"

# Dispositions that are not an answer, each its own metric.
_NOT_ANSWERED_METRICS = {
    Disposition.REJECTED.value: "NotificationRejected",
    Disposition.SUPERSEDED.value: "ManifestSuperseded",
    Disposition.ALREADY_ANSWERED.value: "ManifestAlreadyAnswered",
}


class ManifestRecords:
    def __init__(
        self,
        *,
        door: ManifestDoor,
        holds: ManifestHolds | None,
        persistence: BasePersistenceLayer,
        bucket_name: str,
        max_receive_count: int,
        idempotency_hours: int,
        metrics: Metrics,
    ) -> None:
        self.door = door
        self._holds = holds
        self._bucket_name = bucket_name
        self._max_receive_count = max_receive_count
        self._metrics = metrics
        self._config = IdempotencyConfig(
            event_key_jmespath="[bucket, key, revision]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=idempotency_hours * 3600,
        )
        # The stored outcome answers duplicates; a raise (RetryLater, QuotaWait) stores nothing.
        self._once: Callable[..., ObjectOutcome] = idempotent_function(
            data_keyword_argument="manifest",
            persistence_store=persistence,
            config=self._config,
            key_prefix=KEY_PREFIX,
        )(self._process)

    def register_lambda_context(self, context: LambdaContext) -> None:
        self._config.register_lambda_context(context)

    def handle(self, record: SQSRecord) -> None:
        """One SQS record (Powertools Batch's record handler)."""
        notification = read_notification(record.body, self._bucket_name)
        for reason in notification.skipped:
            logger.info("notification skipped", extra={"reason": reason})
            self._count("NotificationSkipped")
        if notification.malformed:
            self._count("NotificationMalformed", notification.malformed)
        receives = int(record.attributes.approximate_receive_count or 1)
        state = HoldState.of(
            {name: value.string_value for name, value in record.message_attributes.items()},
            int(record.attributes.sent_timestamp or 0),
        )
        wait_until = self._holds.wait_until(state) if self._holds is not None else None
        wait = 0
        for manifest in notification.objects:
            try:
                outcome = self._once(
                    manifest=manifest.as_dict(),
                    request_id=record.message_id,
                    final_attempt=receives >= self._max_receive_count,
                    wait_until=wait_until,
                )
            except QuotaWait as quota:
                self._count(quota.outcome)
                wait = max(wait, quota.seconds)
                continue
            except RetryLater as retry:
                logger.warning("manifest will be retried", extra={"reason": str(retry)})
                self._count("ManifestRetried")
                if retry.outcome:
                    self._count(retry.outcome)
                raise
            self._report(manifest, outcome)
        if wait and self._holds is not None:
            self._hold(self._holds, record, state, wait)

    def _process(
        self,
        manifest: dict[str, Any],
        request_id: str,
        final_attempt: bool,
        wait_until: float | None,
    ) -> ObjectOutcome:
        return self.door.process(
            ManifestObject(**manifest),
            request_id=request_id,
            final_attempt=final_attempt,
            wait_until=wait_until,
        )

    def _hold(
        self, holds: ManifestHolds, record: SQSRecord, state: HoldState, seconds: int
    ) -> None:
        """A wait, not a failure: a delayed copy comes back and this record completes."""
        try:
            delay = holds.hold(record.body, state, seconds)
        except HoldFailed as failed:  # the record comes back on its visibility timeout instead
            logger.warning("manifest hold failed", extra={"reason": str(failed)})
            self._count("ManifestRetried")
            raise RetryLater(str(failed)) from None
        logger.info(
            "manifest held for its quota",
            extra={"retry_after": seconds, "delay": delay, "waits": state.waits + 1},
        )
        self._count("ManifestWaited")

    def _report(self, manifest: ManifestObject, outcome: ObjectOutcome) -> None:
        not_answered = _NOT_ANSWERED_METRICS.get(str(outcome.get("disposition")))
        if not_answered is not None:
            logger.info(
                "manifest notification not answered",
                extra={
                    "key": manifest.key,
                    "version_id": manifest.version_id,
                    "disposition": outcome.get("disposition"),
                    "reason": outcome.get("reason"),
                    "uploader": manifest.uploader,
                },
            )
            self._count(not_answered)
            return
        if detail_type := outcome.get("detail_type"):
            self._count(detail_type)
        if pipeline_outcome := outcome.get("outcome"):  # records stored before it had one
            self._count(pipeline_outcome)

    def _count(self, name: str, value: int = 1) -> None:
        self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
