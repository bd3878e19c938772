"""S3 door: manifests uploaded under incoming/ arrive as S3 notifications through SQS.

Each SQS record is processed on its own (partial batch response): a record whose manifest needs
another attempt fails alone and SQS delivers it again; the rest of the batch is done. Each
object version is processed once (Powertools idempotency on bucket + key + revision), so a
duplicate notification neither calls Cloudflare nor charges quota a second time.
(`revision` is the version id in the deployed, versioned bucket.) A record refused for quota is
held until its Retry-After as a delayed copy (`s3_holds`): a wait, not a failure. Malformed
records and notifications that do not check out are skipped, logged and counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.adapters.s3_holds import HoldFailed, HoldState
from assets_gateway.doors.s3 import (
    Disposition,
    ManifestObject,
    QuotaWait,
    RetryLater,
    read_notification,
)
from assets_gateway.lambda_glue.settings import ManifestDoorSettings
from assets_gateway.lambda_glue.wiring import (
    AWS_CLIENT_CONFIG,
    build_manifest_door,
    build_manifest_holds,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics()

settings = ManifestDoorSettings.from_environ(os.environ)
aws = boto3.Session()
door = build_manifest_door(settings, aws=aws)
holds = build_manifest_holds(settings, aws=aws)
processor = BatchProcessor(event_type=EventType.SQS)
idempotency = IdempotencyConfig(
    event_key_jmespath="[bucket, key, revision]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=settings.idempotency_hours * 3600,
)
persistence = DynamoDBPersistenceLayer(
    table_name=settings.idempotency_table_name,
    boto3_client=aws.client("dynamodb", config=AWS_CLIENT_CONFIG),
)


def _process(
    manifest: dict[str, Any], request_id: str, final_attempt: bool, wait_until: float | None
) -> dict[str, Any]:
    outcome = door.process(
        ManifestObject(**manifest),
        request_id=request_id,
        final_attempt=final_attempt,
        wait_until=wait_until,
    )
    return outcome.as_dict()


# The stored outcome answers duplicates; a raise (RetryLater, QuotaWait) stores nothing.
process_once: Callable[..., dict[str, Any]] = idempotent_function(
    data_keyword_argument="manifest",
    persistence_store=persistence,
    config=idempotency,
    key_prefix="manifest-object",
)(_process)

# Dispositions that are not an answer, each its own metric.
_NOT_ANSWERED_METRICS = {
    Disposition.REJECTED.value: "NotificationRejected",
    Disposition.SUPERSEDED.value: "ManifestSuperseded",
    Disposition.ALREADY_ANSWERED.value: "ManifestAlreadyAnswered",
}


def record_handler(record: SQSRecord) -> None:
    notification = read_notification(record.body, settings.manifest_bucket_name)
    for reason in notification.skipped:
        logger.info("notification skipped", extra={"reason": reason})
        metrics.add_metric(name="NotificationSkipped", unit=MetricUnit.Count, value=1)
    if notification.malformed:
        metrics.add_metric(
            name="NotificationMalformed", unit=MetricUnit.Count, value=notification.malformed
        )
    final_attempt = (
        int(record.attributes.approximate_receive_count or 1) >= settings.manifest_max_receive_count
    )
    state = HoldState.of(
        {name: value.string_value for name, value in record.message_attributes.items()},
        int(record.attributes.sent_timestamp or 0),
    )
    wait_until = holds.wait_until(state) if holds is not None else None
    wait = 0
    for manifest in notification.objects:
        try:
            outcome = process_once(
                manifest=manifest.as_dict(),
                request_id=record.message_id,
                final_attempt=final_attempt,
                wait_until=wait_until,
            )
        except QuotaWait as quota:
            metrics.add_metric(name=quota.outcome, unit=MetricUnit.Count, value=1)
            wait = max(wait, quota.seconds)
            continue
        except RetryLater as retry:
            logger.warning("manifest will be retried", extra={"reason": str(retry)})
            metrics.add_metric(name="ManifestRetried", unit=MetricUnit.Count, value=1)
            if retry.outcome:
                metrics.add_metric(name=retry.outcome, unit=MetricUnit.Count, value=1)
            raise
        _count(outcome)
    if wait and holds is not None:
        _hold(record, state, wait)


def _hold(record: SQSRecord, state: HoldState, seconds: int) -> None:
    """A wait, not a failure: a delayed copy comes back and this record completes."""
    try:
        delay = holds.hold(record.body, state, seconds) if holds is not None else 0
    except HoldFailed as failed:  # the record comes back on its visibility timeout instead
        logger.warning("manifest hold failed", extra={"reason": str(failed)})
        metrics.add_metric(name="ManifestRetried", unit=MetricUnit.Count, value=1)
        raise RetryLater(str(failed)) from None
    logger.info(
        "manifest held for its quota",
        extra={"retry_after": seconds, "delay": delay, "waits": state.waits + 1},
    )
    metrics.add_metric(name="ManifestWaited", unit=MetricUnit.Count, value=1)


def _count(outcome: dict[str, Any]) -> None:
    not_answered = _NOT_ANSWERED_METRICS.get(str(outcome.get("disposition")))
    if not_answered is not None:
        metrics.add_metric(name=not_answered, unit=MetricUnit.Count, value=1)
        return
    if detail_type := outcome.get("detail_type"):
        metrics.add_metric(name=detail_type, unit=MetricUnit.Count, value=1)
    if pipeline_outcome := outcome.get("outcome"):  # records stored before it had one
        metrics.add_metric(name=pipeline_outcome, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
