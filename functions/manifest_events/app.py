"""S3 door: manifests uploaded under incoming/ arrive as S3 notifications through SQS.

Each SQS record is processed on its own (partial batch response): a record whose manifest needs
another attempt fails alone and SQS delivers it again; the rest of the batch is done. Each
object version is processed once (Powertools idempotency on bucket + key + revision), so a
duplicate notification neither calls Cloudflare nor charges quota a second time.
(`revision` is the version id in the deployed, versioned bucket.)
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

from assets_gateway.s3_door import ManifestObject, RetryLater, read_notification
from assets_gateway.settings import ManifestDoorSettings
from assets_gateway.wiring import AWS_CLIENT_CONFIG, build_manifest_door

logger = Logger()
tracer = Tracer()
metrics = Metrics()

settings = ManifestDoorSettings.from_environ(os.environ)
aws = boto3.Session()
door = build_manifest_door(settings, aws=aws)
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


def _process(manifest: dict[str, Any], request_id: str, final_attempt: bool) -> dict[str, Any]:
    outcome = door.process(
        ManifestObject(**manifest), request_id=request_id, final_attempt=final_attempt
    )
    return outcome.as_dict()


# The stored outcome answers duplicates; a raise (RetryLater) stores nothing, so SQS retries.
process_once: Callable[..., dict[str, Any]] = idempotent_function(
    data_keyword_argument="manifest",
    persistence_store=persistence,
    config=idempotency,
    key_prefix="manifest-object",
)(_process)


def record_handler(record: SQSRecord) -> None:
    notification = read_notification(record.body, settings.manifest_bucket_name)
    for reason in notification.skipped:
        logger.info("notification skipped", extra={"reason": reason})
        metrics.add_metric(name="NotificationSkipped", unit=MetricUnit.Count, value=1)
    final_attempt = (
        int(record.attributes.approximate_receive_count or 1) >= settings.manifest_max_receive_count
    )
    for manifest in notification.objects:
        try:
            outcome = process_once(
                manifest=manifest.as_dict(),
                request_id=record.message_id,
                final_attempt=final_attempt,
            )
        except RetryLater as retry:
            logger.warning("manifest will be retried", extra={"reason": str(retry)})
            metrics.add_metric(name="ManifestRetried", unit=MetricUnit.Count, value=1)
            if retry.outcome:
                metrics.add_metric(name=retry.outcome, unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name=outcome["detail_type"], unit=MetricUnit.Count, value=1)
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
