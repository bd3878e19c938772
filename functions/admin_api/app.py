"""Admin door: govern the policy, explain decisions, see usage, stop things (AWS_IAM, admins only).

Routes live under /admin on the same REST API as the session door (`lambda_glue.admin_routes`).
Each turns the event into an AdminRequest and hands it to the core; authorisation, audit and
errors happen there.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.lambda_glue.admin_routes import register_admin_routes
from assets_gateway.lambda_glue.rest import rest_resolver
from assets_gateway.lambda_glue.settings import AdminSettings
from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.lambda_glue.tracing import deferred_tracer
from assets_gateway.lambda_glue.wiring import build_admin_service

logger = Logger()
tracer = deferred_tracer()
metrics = Metrics()
app = rest_resolver(metrics)
# Built once per execution environment: warm invocations reuse clients, pools and caches.
# With SnapStart, each restored environment renews its pools and its random seed.
after_restore = AfterRestore()
admin = build_admin_service(AdminSettings.from_environ(os.environ), restore=after_restore)
after_restore.register_with_runtime()
register_admin_routes(app, admin, metrics)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Never the answer as trace metadata: policies and usage are for admins, X-Ray has other readers.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
