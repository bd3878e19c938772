"""Builds what each function runs from its settings: boto3 clients, the one httpx client, the
stores, the doors and their idempotency records; and notes in the function's
`AfterRestore` the pools a SnapStart-restored environment must renew (`lambda_glue.snapstart`).

Each client made costs cold start (issue 15: the first ~40 ms, each further one a few ms, a
DynamoDB resource ~20 ms): an environment makes one client per service, which all its stores
share (`_client`), and a client that most requests never need (SQS, for the S3 door's quota
waits) is made when first asked for."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from weakref import WeakKeyDictionary

import boto3
import httpx
from botocore.config import Config

from assets_gateway.adapters.audit import LoggerAuditSink
from assets_gateway.adapters.cloudflare import (
    CloudflareClient,
    PooledHttp,
    RetryPolicy,
    build_http_client,
)
from assets_gateway.adapters.cloudflare_token import TokenProvider
from assets_gateway.adapters.decision_log import DecisionLog
from assets_gateway.adapters.key_records import KeyRecordStore
from assets_gateway.adapters.policy_store import PolicyStore
from assets_gateway.adapters.quota_store import QuotaStore
from assets_gateway.domain.circuit import CircuitBreaker
from assets_gateway.domain.deploy_policy import build_request_models
from assets_gateway.domain.quota import CallBudget
from assets_gateway.doors.session import SessionService
from assets_gateway.lambda_glue.api_idempotency import IdempotentSessions
from assets_gateway.lambda_glue.settings import AdminSettings, ManifestDoorSettings, Settings
from assets_gateway.lambda_glue.snapstart import AfterRestore
from assets_gateway.ports.audit import AuditSink
from assets_gateway.ports.quota import QuotaGate

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from mypy_boto3_dynamodb import DynamoDBClient

    from assets_gateway.adapters.s3_holds import ManifestHolds
    from assets_gateway.doors.admin.door import AdminService
    from assets_gateway.doors.deploy import DeployService
    from assets_gateway.doors.s3 import ManifestDoor
    from assets_gateway.lambda_glue.manifest_records import ManifestRecords

# AWS calls must fail well inside the Lambda timeout; standard retry mode backs off on throttling.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)


# The clients each environment's stores share, by the environment's `AfterRestore` (see
# `_client`): a function's module builds everything with one.
_CLIENTS: WeakKeyDictionary[AfterRestore, dict[str, tuple[boto3.Session, Any]]] = (
    WeakKeyDictionary()
)
_CLIENTS_LOCK = threading.Lock()


def _client(aws: boto3.Session, service: str, restore: AfterRestore) -> Any:
    """The environment's one client of `service`, made from `aws` by the first store to ask and
    shared by the others (one connection pool, one cold-start cost), renewed after a SnapStart
    restore. Builders called without the function's `restore` (tests, tools) get their own."""
    with _CLIENTS_LOCK:
        made = _CLIENTS.setdefault(restore, {})
        session, client = made.get(service, (None, None))
        if session is not aws:
            client = aws.client(service, config=AWS_CLIENT_CONFIG)  # type: ignore[call-overload]
            made[service] = (aws, restore.renew_connections(client))
    return client


def _dynamodb(aws: boto3.Session, restore: AfterRestore) -> DynamoDBClient:
    client: DynamoDBClient = _client(aws, "dynamodb", restore)
    return client


def quiet_sdk_debug_logs() -> None:
    """botocore logs response bodies at DEBUG, and GetSecretValue's body is the token: cap the
    AWS SDK's loggers at INFO whatever the function's log level."""
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.INFO)


class _PipelineParts(NamedTuple):
    """What the session and deploy doors both call through: the policy, the quotas, the org
    token and Cloudflare."""

    policies: PolicyStore
    quotas: QuotaGate
    tokens: TokenProvider
    upstream: CloudflareClient


def _pipeline_parts(
    settings: Settings,
    *,
    http: httpx.Client | None,
    aws: boto3.Session,
    quotas: QuotaGate | None,
    restore: AfterRestore,
    decisions: DecisionLog | None = None,
    keys: KeyRecordStore | None = None,
) -> _PipelineParts:
    quiet_sdk_debug_logs()
    return _PipelineParts(
        policies=PolicyStore(
            table_name=settings.control_table_name,
            dynamodb=_dynamodb(aws, restore),
            max_age_seconds=settings.policy_cache_seconds,
        ),
        quotas=quotas
        or QuotaStore(
            table_name=settings.quota_table_name,
            dynamodb=_dynamodb(aws, restore),
            budget=CallBudget.for_ceiling(settings.global_budget_per_5_minutes),
            decisions=decisions,
            keys=keys,
        ),
        tokens=TokenProvider(
            secret_id=settings.cloudflare_token_secret_id,
            # Made at init although a request with the token cached never calls it: every
            # environment's first request that reaches Cloudflare would make it otherwise (with
            # SnapStart, in each restored environment rather than once in the snapshot).
            secretsmanager=_client(aws, "secretsmanager", restore),
            max_age_seconds=settings.token_cache_seconds,
        ),
        upstream=CloudflareClient(
            base_url=settings.cloudflare_api_base_url,
            http=http or restore.renew_http(_upstream_http(settings)),
            retry=RetryPolicy(
                attempts=settings.upstream_attempts,
                deadline_seconds=settings.upstream_deadline_seconds,
            ),
            breaker=CircuitBreaker(
                failure_threshold=settings.circuit_failure_threshold,
                open_seconds=settings.circuit_open_seconds,
            ),
        ),
    )


def _upstream_http(settings: Settings) -> PooledHttp:
    return PooledHttp(
        lambda: build_http_client(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
        )
    )


def build_session_service(
    settings: Settings,
    *,
    http: httpx.Client | None = None,
    aws: boto3.Session | None = None,
    audit: AuditSink | None = None,
    quotas: QuotaGate | None = None,
    now: Callable[[], float] = time.time,
    max_request_body_bytes: int | None = None,
    restore: AfterRestore | None = None,
    keys: KeyRecordStore | None = None,
) -> SessionService:
    aws = aws or boto3.Session()
    restore = restore or AfterRestore()
    # Held decisions and key claims ride the quota store's charges (`decision_log`,
    # `key_records`): the store that charges writes them.
    decisions = _decision_log(settings, aws, restore) if quotas is None else None
    keys = keys if quotas is None else None
    parts = _pipeline_parts(
        settings,
        http=http,
        aws=aws,
        quotas=quotas,
        restore=restore,
        decisions=decisions,
        keys=keys,
    )
    return SessionService(
        **parts._asdict(),
        audit=audit or LoggerAuditSink(),
        max_request_body_bytes=max_request_body_bytes or settings.max_request_body_bytes,
        max_inflated_body_bytes=settings.max_inflated_body_bytes,
        decisions=decisions,
        keys=keys,
        now=now,
    )


def build_deploy_service(settings: Settings, *, restore: AfterRestore) -> DeployService:
    # Imported here: the session and S3 functions share this module and never deploy, and the
    # deploy door brings the Worker upload's parser and models (cold start, issue 15).
    from assets_gateway.doors.deploy import DeployService  # noqa: PLC0415

    build_request_models()
    aws = boto3.Session()
    parts = _pipeline_parts(settings, http=None, aws=aws, quotas=None, restore=restore)
    return DeployService(
        **parts._asdict(),
        audit=LoggerAuditSink(),
        max_request_body_bytes=settings.max_request_body_bytes,
        decisions=_decision_log(settings, aws, restore),
    )


def _decision_log(
    settings: Settings, aws: boto3.Session, restore: AfterRestore
) -> DecisionLog | None:
    if settings.decisions_table_name is None:
        return None
    return DecisionLog(
        table_name=settings.decisions_table_name,
        dynamodb=_dynamodb(aws, restore),
        retention_days=settings.decision_retention_days,
    )


def build_manifest_door(
    settings: ManifestDoorSettings,
    *,
    aws: boto3.Session | None = None,
    http: httpx.Client | None = None,
    audit: AuditSink | None = None,
    now: Callable[[], float] = time.time,
    restore: AfterRestore | None = None,
) -> ManifestDoor:
    # Only the S3 function needs these: the API door's cold start does not pay for them.
    from assets_gateway.adapters.outcome_events import EventBridgeOutcomes  # noqa: PLC0415
    from assets_gateway.adapters.s3_manifests import S3ManifestBucket  # noqa: PLC0415
    from assets_gateway.doors.s3 import ManifestDoor  # noqa: PLC0415

    aws = aws or boto3.Session()
    restore = restore or AfterRestore()
    service = build_session_service(
        settings,
        aws=aws,
        http=http,
        audit=audit,
        now=now,
        max_request_body_bytes=settings.max_manifest_object_bytes,
        restore=restore,
    )
    return ManifestDoor(
        sessions=service,
        bucket=S3ManifestBucket(s3=_client(aws, "s3", restore)),
        events=EventBridgeOutcomes(
            events=_client(aws, "events", restore),
            event_bus=settings.event_bus_name,
        ),
        max_object_bytes=settings.max_manifest_object_bytes,
        now=now,
    )


def build_manifest_holds(
    settings: ManifestDoorSettings,
    *,
    aws: boto3.Session | None = None,
    restore: AfterRestore | None = None,
) -> ManifestHolds | None:
    """How the S3 door holds a record through a quota wait (None: it does not)."""
    from assets_gateway.adapters.s3_holds import ManifestHolds  # noqa: PLC0415

    if settings.manifest_queue_url is None:
        return None
    aws = aws or boto3.Session()
    restore = restore or AfterRestore()
    return ManifestHolds(
        sqs=lambda: _client(aws, "sqs", restore),
        queue_url=settings.manifest_queue_url,
        retention_seconds=settings.manifest_queue_retention_seconds,
    )


def build_manifest_records(
    settings: ManifestDoorSettings, *, metrics: Metrics, restore: AfterRestore
) -> ManifestRecords:
    """The S3 door's SQS record handler: the door, its holds, its idempotency records."""
    from assets_gateway.lambda_glue.manifest_records import ManifestRecords  # noqa: PLC0415

    # One session for every client of the function (each session costs cold start).
    aws = boto3.Session()
    return ManifestRecords(
        door=build_manifest_door(settings, aws=aws, restore=restore),
        holds=build_manifest_holds(settings, aws=aws, restore=restore),
        persistence=_idempotency_records(settings.idempotency_table_name, aws, restore),
        bucket_name=settings.manifest_bucket_name,
        max_receive_count=settings.manifest_max_receive_count,
        idempotency_hours=settings.idempotency_hours,
        metrics=metrics,
    )


def _idempotency_records(
    table_name: str, aws: boto3.Session, restore: AfterRestore
) -> DynamoDBPersistenceLayer:
    # Only the S3 function keeps Powertools' idempotency records (the API door's ride its charges).
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
        DynamoDBPersistenceLayer,
    )

    # The function's DynamoDB client: Powertools would otherwise build a session of its own at
    # start-up (~50 ms of cold start).
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=_dynamodb(aws, restore))


class SessionApi(NamedTuple):
    """The session function's core: the pipeline, and its `Idempotency-Key` front."""

    service: SessionService
    sessions: IdempotentSessions


def build_session_api(
    settings: Settings, *, restore: AfterRestore, aws: boto3.Session | None = None
) -> SessionApi:
    aws = aws or boto3.Session()
    keys = KeyRecordStore(
        table_name=settings.control_table_name,
        dynamodb=_dynamodb(aws, restore),
    )
    service = build_session_service(settings, aws=aws, restore=restore, keys=keys)
    return SessionApi(service, IdempotentSessions(service))


def build_admin_service(
    settings: AdminSettings,
    *,
    aws: boto3.Session | None = None,
    http: httpx.Client | None = None,
    now: Callable[[], float] = time.time,
    restore: AfterRestore | None = None,
) -> AdminService:
    # Only the admin function needs these: the doors' cold starts do not pay for them.
    from assets_gateway.adapters.policy_history import PolicyHistory  # noqa: PLC0415
    from assets_gateway.doors.admin.door import AdminService  # noqa: PLC0415

    aws = aws or boto3.Session()
    restore = restore or AfterRestore()
    dynamodb = _dynamodb(aws, restore)
    decisions = _decision_log(settings, aws, restore)
    if decisions is None:
        raise ValueError("the admin door needs DECISIONS_TABLE_NAME (policy simulations)")
    # Explain answers with the policy as published now, not as a cache saw it a while ago.
    sessions = build_session_service(
        settings.model_copy(update={"policy_cache_seconds": 0}),
        aws=aws,
        http=http,
        now=now,
        restore=restore,
    )
    return AdminService(
        history=PolicyHistory(table_name=settings.control_table_name, dynamodb=dynamodb),
        counters=QuotaStore(
            table_name=settings.quota_table_name,
            dynamodb=dynamodb,
            budget=CallBudget.for_ceiling(settings.global_budget_per_5_minutes),
        ),
        decisions=decisions,
        sessions=sessions,
        admins=settings.admin_principals,
        global_budget=settings.global_budget_per_5_minutes,
        retention_days=settings.decision_retention_days,
        audit=LoggerAuditSink(),
        now=now,
    )
