"""S3 door: manifests uploaded under incoming/ arrive as S3 notifications through SQS.

Each SQS record is processed on its own (partial batch response): a record whose manifest needs
another attempt fails alone and SQS delivers it again; the rest of the batch is done. Each
object version is processed once, and a record refused for quota waits for its Retry-After
without using up its receives (`lambda_glue.manifest_records`).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.lambda_glue.settings import ManifestDoorSettings
from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.lambda_glue.tracing import deferred_tracer
from assets_gateway.lambda_glue.wiring import build_manifest_records

logger = Logger()
tracer = deferred_tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
# Built once per execution environment: warm invocations reuse clients, pools and caches.
# With SnapStart, each restored environment renews its pools and its random seed.
after_restore = AfterRestore()
records = build_manifest_records(
    ManifestDoorSettings.from_environ(os.environ), metrics=metrics, restore=after_restore
)
after_restore.register_with_runtime()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=records.handle, processor=processor, context=context
    )
