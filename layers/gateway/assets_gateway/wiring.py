"""Builds the real service from settings: boto3 clients, the one httpx client, the stores."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import boto3
import httpx
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.config import Config

from assets_gateway.api_idempotency import IdempotentSessions
from assets_gateway.audit import AuditSink, LoggerAuditSink
from assets_gateway.circuit import CircuitBreaker
from assets_gateway.cloudflare import CloudflareClient, RetryPolicy, build_http_client
from assets_gateway.cloudflare_token import TokenProvider
from assets_gateway.policy_store import PolicyStore
from assets_gateway.quota_store import QuotaStore
from assets_gateway.s3_door import ManifestDoor
from assets_gateway.service import QuotaGate, SessionService
from assets_gateway.settings import ManifestDoorSettings, Settings

# AWS calls must fail well inside the Lambda timeout; standard retry mode backs off on throttling.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)


def quiet_sdk_debug_logs() -> None:
    """botocore logs response bodies at DEBUG, and GetSecretValue's body is the token: cap the
    AWS SDK's loggers at INFO whatever the function's log level."""
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.INFO)


def build_session_service(
    settings: Settings,
    *,
    http: httpx.Client | None = None,
    aws: boto3.Session | None = None,
    audit: AuditSink | None = None,
    quotas: QuotaGate | None = None,
    now: Callable[[], float] = time.time,
    max_request_body_bytes: int | None = None,
) -> SessionService:
    quiet_sdk_debug_logs()
    aws = aws or boto3.Session()
    http = http or build_http_client(
        connect_timeout=settings.upstream_connect_timeout_seconds,
        read_timeout=settings.upstream_read_timeout_seconds,
    )
    return SessionService(
        policies=PolicyStore(
            table_name=settings.control_table_name,
            dynamodb=aws.resource("dynamodb", config=AWS_CLIENT_CONFIG),
            max_age_seconds=settings.policy_cache_seconds,
        ),
        quotas=quotas
        or QuotaStore(
            table_name=settings.quota_table_name,
            dynamodb=aws.client("dynamodb", config=AWS_CLIENT_CONFIG),
        ),
        global_budget=settings.global_budget_per_5_minutes,
        tokens=TokenProvider(
            secret_id=settings.cloudflare_token_secret_id,
            secretsmanager=aws.client("secretsmanager", config=AWS_CLIENT_CONFIG),
            max_age_seconds=settings.token_cache_seconds,
        ),
        upstream=CloudflareClient(
            base_url=settings.cloudflare_api_base_url,
            http=http,
            retry=RetryPolicy(
                attempts=settings.upstream_attempts,
                deadline_seconds=settings.upstream_deadline_seconds,
            ),
            breaker=CircuitBreaker(
                failure_threshold=settings.circuit_failure_threshold,
                open_seconds=settings.circuit_open_seconds,
            ),
        ),
        audit=audit or LoggerAuditSink(),
        max_request_body_bytes=max_request_body_bytes or settings.max_request_body_bytes,
        max_inflated_body_bytes=settings.max_inflated_body_bytes,
        now=now,
    )


def build_manifest_door(
    settings: ManifestDoorSettings,
    *,
    aws: boto3.Session | None = None,
    http: httpx.Client | None = None,
    audit: AuditSink | None = None,
    now: Callable[[], float] = time.time,
) -> ManifestDoor:
    aws = aws or boto3.Session()
    service = build_session_service(
        settings,
        aws=aws,
        http=http,
        audit=audit,
        now=now,
        max_request_body_bytes=settings.max_manifest_object_bytes,
    )
    return ManifestDoor(
        service=service,
        s3=aws.client("s3", config=AWS_CLIENT_CONFIG),
        events=aws.client("events", config=AWS_CLIENT_CONFIG),
        event_bus=settings.event_bus_name,
        max_object_bytes=settings.max_manifest_object_bytes,
    )


def build_idempotent_sessions(service: SessionService, settings: Settings) -> IdempotentSessions:
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.control_table_name, boto_config=AWS_CLIENT_CONFIG
    )
    return IdempotentSessions(service, persistence)
