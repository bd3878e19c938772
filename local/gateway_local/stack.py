"""The embedded local stack: moto (AWS), the Cloudflare emulator and the SigV4 API front, all on
127.0.0.1, wired to the real session handler exactly as the template wires it in AWS."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

from assets_gateway.adapters.policy_history import PolicyHistory
from assets_gateway.ports.policy_versions import PublishedPolicy
from gateway_local.api_front import ApiFront, LocalIdentity, Route
from gateway_local.aws_resources import (
    REGION,
    REPO_ROOT,
    MotoServer,
    ResourceNames,
    load_template,
    provision,
    provision_s3_door,
)
from gateway_local.cloudflare_emulator import CloudflareEmulator
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_SCRIPT,
    IDENTITIES,
    PLATFORM_ADMIN,
    UNLINKED_ACCOUNT_ID,
    WEB_NAMESPACE,
    WEB_SCRIPT,
    demo_policy,
)
from gateway_local.http_server import BackgroundServer
from gateway_local.request_log import RequestLog, as_function, as_manifest_function
from gateway_local.sqs_poller import SqsPoller

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

SESSION_API_APP = REPO_ROOT / "functions" / "session_api" / "app.py"
ADMIN_API_APP = REPO_ROOT / "functions" / "admin_api" / "app.py"
DEPLOY_API_APP = REPO_ROOT / "functions" / "deploy_api" / "app.py"
MANIFEST_EVENTS_APP = REPO_ROOT / "functions" / "manifest_events" / "app.py"


def _manifest_delivery(template: dict[str, Any]) -> tuple[int, int, int]:
    """The template's maxReceiveCount, the SQS event's BatchSize and the queue's retention, so
    local delivery follows the deployed one."""
    queue = template["Resources"]["ManifestQueue"]["Properties"]
    events = template["Resources"]["ManifestEventsFunction"]["Properties"]["Events"]
    (sqs_event,) = (event for event in events.values() if event["Type"] == "SQS")
    return (
        int(queue["RedrivePolicy"]["maxReceiveCount"]),
        int(sqs_event["Properties"]["BatchSize"]),
        int(queue["MessageRetentionPeriod"]),
    )


MAX_RECEIVE_COUNT, MANIFEST_BATCH_SIZE, MANIFEST_RETENTION_SECONDS = _manifest_delivery(
    load_template()
)
SESSION_API_FUNCTION = "SessionApiFunction"
ADMIN_API_FUNCTION = "AdminApiFunction"
DEPLOY_API_FUNCTION = "DeployApiFunction"
DEFAULT_GATEWAY_PORT = 8787


@dataclass(frozen=True)
class StackOptions:
    gateway_port: int = DEFAULT_GATEWAY_PORT
    prefix: str = "assets-gateway-local"
    policy_cache_seconds: int = 5
    identities: dict[str, LocalIdentity] = field(default_factory=lambda: dict(IDENTITIES))
    # Like Lambda's concurrency: separate module instances, each serving one request at a time.
    execution_environments: int = 4
    # Seconds before a failed manifest record is delivered again (the template says 720; a
    # person trying it locally should not wait that long, and tests use 0).
    manifest_visibility_timeout: int = 5
    # Settings for the functions beyond what the template sets (tests tune a few).
    extra_environment: dict[str, str] = field(default_factory=dict)
    # The emulator's per-token limit (Cloudflare's 1,200 per 5 minutes); benches raise it.
    cloudflare_rate_limit: int = 1200
    # Where one line per request goes (`make run`: the terminal); None writes none.
    request_log: TextIO | None = None


def api_routes(
    template: dict[str, Any], function: str = SESSION_API_FUNCTION, *, name: str | None = None
) -> list[Route]:
    """The routes the template gives the function, so the front serves what API Gateway would;
    `name` is how the front knows the function (None: its default one)."""
    events = template["Resources"][function]["Properties"]["Events"]
    return [
        Route(
            method=event["Properties"]["Method"].upper(),
            resource=event["Properties"]["Path"],
            function=name,
        )
        for event in events.values()
        if event["Type"] == "Api"
    ]


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class ExecutionEnvironments:
    """Lambda runs one invocation at a time per execution environment, and module state (the
    Powertools resolver's current event, the metrics buffer) relies on it. Concurrent requests
    each borrow a whole environment, waiting when all are busy, as Lambda would scale out."""

    def __init__(self, handlers: Sequence[Handler]) -> None:
        self._idle: queue.SimpleQueue[Handler] = queue.SimpleQueue()
        for handler in handlers:
            self._idle.put(handler)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        handler = self._idle.get()
        try:
            return handler(event, context)
        finally:
            self._idle.put(handler)


def load_handler_module(path: Path, module_name: str) -> ModuleType:
    """Import a function's app.py as Lambda does: once, reading its configuration from env."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LocalStack:
    def __init__(self, options: StackOptions = StackOptions()) -> None:
        self.options = options
        self.names = ResourceNames.for_prefix(options.prefix)
        # A fresh token per run: the leak tests search every output for it.
        self.cloudflare_token = "local-cf-" + secrets.token_urlsafe(32)
        self.moto = MotoServer()
        self.aws = self.moto.session()
        self.emulator = CloudflareEmulator(
            tokens={self.cloudflare_token: [DEMO_ACCOUNT_ID]},
            rate_limit=options.cloudflare_rate_limit,
        )
        self.emulator_server = BackgroundServer(self.emulator, name="cloudflare-emulator")
        provision(
            self.aws, self.moto.endpoint_url, self.names, cloudflare_token=self.cloudflare_token
        )
        self.queues = provision_s3_door(
            self.aws,
            self.moto.endpoint_url,
            self.names,
            visibility_timeout=options.manifest_visibility_timeout,
            max_receive_count=MAX_RECEIVE_COUNT,
            retention_seconds=MANIFEST_RETENTION_SECONDS,
        )
        dynamodb = self.aws.client("dynamodb", endpoint_url=self.moto.endpoint_url)
        self.policy_history = PolicyHistory(table_name=self.names.control_table, dynamodb=dynamodb)
        self.publish_policy(demo_policy())
        os.environ.update(self.manifest_handler_environment())
        os.environ.update(self.admin_handler_environment())
        environments = [
            load_handler_module(SESSION_API_APP, f"session_api_app_{id(self)}_{n}")
            for n in range(options.execution_environments)
        ]
        self.session_api = environments[0]
        self.admin_api = load_handler_module(ADMIN_API_APP, f"admin_api_app_{id(self)}")
        # wrangler's deploy calls come one at a time; two environments serve an overlap.
        deploy_environments = [
            load_handler_module(DEPLOY_API_APP, f"deploy_api_app_{id(self)}_{n}") for n in range(2)
        ]
        self.deploy_api = deploy_environments[0]
        template = load_template()
        self.front = ApiFront(
            handler=ExecutionEnvironments(
                [as_function("session-api", env.lambda_handler) for env in environments]
            ),
            routes=[
                *api_routes(template),
                *api_routes(template, ADMIN_API_FUNCTION, name="admin-api"),
                *api_routes(template, DEPLOY_API_FUNCTION, name="deploy-api"),
            ],
            identities=list(options.identities.values()),
            region=REGION,
            function_name="session-api",
            functions={
                "admin-api": ExecutionEnvironments(
                    [as_function("admin-api", self.admin_api.lambda_handler)]
                ),
                "deploy-api": ExecutionEnvironments(
                    [as_function("deploy-api", env.lambda_handler) for env in deploy_environments]
                ),
            },
        )
        front: WSGIApplication = self.front
        if options.request_log is not None:
            front = RequestLog(self.front, options.request_log)
        self.front_server = BackgroundServer(front, options.gateway_port, name="api-front")
        self.manifest_events = load_handler_module(
            MANIFEST_EVENTS_APP, f"manifest_events_app_{id(self)}"
        )
        self.manifest_poller = SqsPoller(
            sqs=self.aws.client("sqs", endpoint_url=self.moto.endpoint_url),
            queue_url=self.queues.manifest_url,
            queue_arn=self.queues.manifest_arn,
            handler=(
                as_function("manifest-events", self.manifest_events.lambda_handler)
                if options.request_log is None
                else as_manifest_function(
                    "manifest-events", self.manifest_events.lambda_handler, options.request_log
                )
            ),
            region=REGION,
            batch_size=MANIFEST_BATCH_SIZE,
        )
        self._stopping = threading.Event()
        self._poller_thread: threading.Thread | None = None

    def start_polling(self) -> None:
        """Deliver manifest notifications continuously, as Lambda's event source mapping does
        (tests call `manifest_poller.poll_once()` themselves instead)."""
        self._poller_thread = threading.Thread(
            target=self.manifest_poller.run, args=(self._stopping,), name="sqs-poller", daemon=True
        )
        self._poller_thread.start()

    def handler_environment(self) -> dict[str, str]:
        """What template.yaml sets on the function, pointed at the local services."""
        return {
            "CONTROL_TABLE_NAME": self.names.control_table,
            "QUOTA_TABLE_NAME": self.names.quota_table,
            "DECISIONS_TABLE_NAME": self.names.decisions_table,
            "CLOUDFLARE_TOKEN_SECRET_ID": self.names.token_secret,
            "CLOUDFLARE_API_BASE_URL": self.cloudflare_url,
            "POLICY_CACHE_SECONDS": str(self.options.policy_cache_seconds),
            "AWS_ENDPOINT_URL": self.moto.endpoint_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "assets-gateway",
            "POWERTOOLS_METRICS_NAMESPACE": "AssetsGateway",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.options.extra_environment,
        }

    def manifest_handler_environment(self) -> dict[str, str]:
        """The session function's environment plus what the S3 door's function gets."""
        return {
            **self.handler_environment(),
            "MANIFEST_BUCKET_NAME": self.names.manifest_bucket,
            "IDEMPOTENCY_TABLE_NAME": self.names.control_table,
            "EVENT_BUS_NAME": "default",
            "MANIFEST_MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            "MANIFEST_QUEUE_URL": self.queues.manifest_url,
            "MANIFEST_QUEUE_RETENTION_SECONDS": str(MANIFEST_RETENTION_SECONDS),
        }

    def admin_handler_environment(self) -> dict[str, str]:
        """The admin door's function: the demo's platform admin is named by the "template"."""
        return {**self.handler_environment(), "ADMIN_PRINCIPALS": PLATFORM_ADMIN.principal_arn}

    @property
    def cloudflare_url(self) -> str:
        return self.emulator_server.url + "/client/v4"

    @property
    def base_url(self) -> str:
        return self.front_server.url + "/client/v4"

    def publish_policy(
        self, policy: dict[str, Any], reason: str = "seeded by the local stack"
    ) -> int:
        """Publish as the admin door does (a new version over the current one), unvalidated so
        tests can also store what the admin door would refuse."""
        current = self.policy_history.current()
        version = (current.version if current else 0) + 1
        self.policy_history.publish(
            PublishedPolicy(
                version=version,
                policy=policy,
                published_by="local-stack",
                published_at=datetime.now(UTC).isoformat(),
                reason=reason,
            )
        )
        return version

    def clear_quotas(self) -> None:
        """Forget every counter and cool-down (tests start from unused quotas)."""
        dynamodb = self.aws.client("dynamodb", endpoint_url=self.moto.endpoint_url)
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self.names.quota_table, ProjectionExpression="pk"
        ):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=self.names.quota_table, Key={"pk": item["pk"]})

    def clear_decisions(self) -> None:
        """Forget every recorded decision (simulation tests replay only their own)."""
        dynamodb = self.aws.client("dynamodb", endpoint_url=self.moto.endpoint_url)
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self.names.decisions_table, ProjectionExpression="pk, sk"
        ):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=self.names.decisions_table, Key=item)

    def drain_queues(self) -> None:
        """Delete every waiting message (SQS allows one PurgeQueue a minute, so receive them)."""
        sqs = self.aws.client("sqs", endpoint_url=self.moto.endpoint_url)
        for url in (self.queues.manifest_url, self.queues.dead_letter_url, self.queues.events_url):
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )

    def delayed_manifest_records(self) -> list[tuple[float, dict[str, str]]]:
        """The manifest queue's delayed messages (held for a quota): seconds until each becomes
        visible, and its message attributes. Read from moto, which keeps them hidden till then."""
        return [
            (
                max(0.0, (message.delayed_until - now_ms) / 1000),
                {
                    name: str(value.get("StringValue"))
                    for name, value in message.message_attributes.items()
                },
            )
            for message, now_ms in self._delayed_manifest_messages()
        ]

    def pass_manifest_delays(self) -> int:
        """Time passes for the manifest queue: every delayed message becomes visible now (moto's
        SQS keeps real time; a test cannot wait a Retry-After out). Returns how many."""
        delayed = self._delayed_manifest_messages()
        for message, _ in delayed:
            message.delayed_until = 0
        return len(delayed)

    def _delayed_manifest_messages(self) -> list[tuple[Any, float]]:
        from moto.core.utils import unix_time_millis  # noqa: PLC0415 - moto's own clock
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 - the in-process backend

        queue = sqs_backends[self.queues.manifest_arn.split(":")[4]][REGION].queues[
            self.names.manifest_queue
        ]
        now_ms = unix_time_millis()
        return [(message, now_ms) for message in queue._messages if message.delayed]

    def describe(self) -> dict[str, Any]:
        """The connection details written to .local/stack.json (no Cloudflare token in it)."""
        return {
            "base_url": self.base_url,
            "admin_url": self.front_server.url + "/admin",
            "region": REGION,
            "identities": {
                name: {
                    "access_key_id": identity.access_key_id,
                    "secret_access_key": identity.secret_access_key,
                    "principal_arn": identity.principal_arn,
                }
                for name, identity in self.options.identities.items()
            },
            "demo": {
                "account_id": DEMO_ACCOUNT_ID,
                "unlinked_account_id": UNLINKED_ACCOUNT_ID,
                "scripts": {"web": WEB_SCRIPT, "docs": DOCS_SCRIPT},
                "dispatch_namespace": WEB_NAMESPACE,
            },
            "cloudflare_emulator_url": self.cloudflare_url,
            "aws_endpoint_url": self.moto.endpoint_url,
            "resources": {
                "control_table": self.names.control_table,
                "quota_table": self.names.quota_table,
                "decisions_table": self.names.decisions_table,
                "cloudflare_token_secret": self.names.token_secret,
                "manifest_bucket": self.names.manifest_bucket,
                "manifest_queue_url": self.queues.manifest_url,
                "dead_letter_queue_url": self.queues.dead_letter_url,
                "gateway_events_queue_url": self.queues.events_url,
            },
        }

    def write_description(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")

    def stop(self) -> None:
        self._stopping.set()
        if self._poller_thread is not None:
            self._poller_thread.join(timeout=5)
        self.front_server.stop()
        self.emulator_server.stop()
        self.moto.stop()
