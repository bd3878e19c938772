"""AWS for the local stack: moto in server mode on loopback, resources made from template.yaml.

Tables are created from the template's own KeySchema, AttributeDefinitions and TTL, so the
local stack and the tests follow the deployed shape.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import yaml
from moto.core.common_models import BaseModel
from moto.core.model_instances import model_data, reset_model_data
from moto.dynamodb.models import dynamodb_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from gateway_local.http_server import BackgroundServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from mypy_boto3_dynamodb import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


def local_dir() -> Path:
    """Where `make run` keeps stack.json and logs/: GATEWAY_LOCAL_DIR, else .local here."""
    return Path(os.environ.get("GATEWAY_LOCAL_DIR") or REPO_ROOT / ".local")


REGION = "us-east-1"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads template.yaml, keeping intrinsic functions (!Ref, !Sub…) as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_mapping(node)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        template: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506
    return template


@dataclass(frozen=True)
class ResourceNames:
    control_table: str
    quota_table: str
    decisions_table: str
    token_secret: str
    manifest_bucket: str
    manifest_queue: str
    dead_letter_queue: str
    # Not in the template: a rule on the default bus copies the gateway's events here, so a
    # person (or a test) can read what teams would subscribe to.
    events_queue: str

    @classmethod
    def for_prefix(cls, prefix: str) -> ResourceNames:
        return cls(
            control_table=f"{prefix}-ControlTable",
            quota_table=f"{prefix}-QuotaTable",
            decisions_table=f"{prefix}-DecisionsTable",
            token_secret=f"{prefix}/cloudflare-token",
            manifest_bucket=f"{prefix}-manifests",
            manifest_queue=f"{prefix}-manifest-events",
            dead_letter_queue=f"{prefix}-manifest-events-dlq",
            events_queue=f"{prefix}-gateway-events",
        )

    def table_for(self, logical_id: str) -> str:
        return {
            "ControlTable": self.control_table,
            "QuotaTable": self.quota_table,
            "DecisionsTable": self.decisions_table,
        }[logical_id]


class _OneRequestAtATime:
    """DynamoDB makes each conditional write and transaction atomic; moto's in-memory backend
    does not when its server is threaded (a check and its update can interleave with another
    request's). Serialising requests restores DynamoDB's guarantee for concurrency tests."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


def local_aws_session() -> boto3.Session:
    """moto accepts any credentials; these fixed ones keep the local stack off real AWS."""
    return boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
    )


_SEQUENCERS = itertools.count(1)
_SEQUENCER_LOCK = threading.Lock()


def notify_as_s3_does() -> None:
    """moto's S3 notifications lack the object's `versionId` and `sequencer`, which S3 sends for
    every PUT to a versioned bucket: add them from the stored version, at the moment moto builds
    the event (so ten quick overwrites are ten distinct versions, in S3's order). moto runs in
    this process, so its event builder is wrapped once for every local stack."""
    from moto.s3 import notifications  # noqa: PLC0415 - moto's internals, only here

    if getattr(notifications._get_s3_event, "gateway_local", False):
        return
    build = notifications._get_s3_event

    def with_version(
        event_name: str, bucket: Any, key: Any, notification_id: str
    ) -> dict[str, list[dict[str, Any]]]:
        event = build(event_name, bucket, key, notification_id)
        with _SEQUENCER_LOCK:
            sequencer = f"{next(_SEQUENCERS):016X}"
        for record in event["Records"]:
            described = record["s3"]["object"]
            version_id = getattr(key, "version_id", None)
            if version_id and version_id != "null":
                described["versionId"] = version_id
            described["sequencer"] = sequencer
        return event

    with_version.gateway_local = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version


def _untracked_new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
    instance: BaseModel = super(BaseModel, cls).__new__(cls)
    return instance


def stop_model_instance_history() -> None:
    """Stop moto keeping every model object it ever made, for the life of the process.

    moto's `BaseModel.__new__` appends each instance of every model class (each DynamoDB item,
    SQS message, S3 key...) to a class-level `instances_tracked` list that only its
    `/moto-api/data.json` dashboard reads. Nothing ever removes them, and every
    TransactWriteItems deep-copies the whole table for its rollback: all those copies stayed
    reachable, ~40 kB per request under load (1.65 GB after an hour). The models themselves
    stay in their backends, which is the state AWS would hold; only the history goes.
    """
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]
    reset_model_data()  # what was tracked before this call


def tracked_model_instances() -> int:
    """How many model objects moto's (dashboard) history holds: 0 once it is stopped."""
    return sum(
        len(getattr(model, "instances_tracked", ()))
        for models in model_data.values()
        for model in models.values()
    )


class MotoServer:
    """moto in server mode on 127.0.0.1 (a free port), reached by real boto3 over HTTP."""

    def __init__(self) -> None:
        notify_as_s3_does()
        stop_model_instance_history()
        app = DomainDispatcherApplication(create_backend_app)
        self._server = BackgroundServer(_OneRequestAtATime(app), name="moto")
        self.endpoint_url = self._server.url

    def session(self) -> boto3.Session:
        return local_aws_session()

    def retained(self) -> dict[str, int]:
        """What moto holds in this process: DynamoDB items and stream records (state AWS would
        hold too), and the model objects of moto's own history (none: it is stopped)."""
        items = streams = 0
        for account in dynamodb_backends.values():
            for backend in account.values():
                for table in backend.tables.values():
                    items += len(table)
                    if table.stream_shard is not None:
                        streams += len(table.stream_shard.items)
        return {
            "dynamodb_items": items,
            "dynamodb_stream_records": streams,
            "tracked_model_instances": tracked_model_instances(),
        }

    def stop(self) -> None:
        self._server.stop()


def create_tables(dynamodb: DynamoDBClient, names: ResourceNames, template: dict[str, Any]) -> None:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        properties = resource["Properties"]
        table_name = names.table_for(logical_id)
        dynamodb.create_table(
            TableName=table_name,
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )


def provision(
    session: boto3.Session, endpoint_url: str, names: ResourceNames, *, cloudflare_token: str
) -> None:
    """Create the tables and the token secret the template declares."""
    create_tables(session.client("dynamodb", endpoint_url=endpoint_url), names, load_template())
    secrets = session.client("secretsmanager", endpoint_url=endpoint_url)
    secrets.create_secret(Name=names.token_secret, SecretString=cloudflare_token)


@dataclass(frozen=True)
class Queues:
    manifest_url: str
    manifest_arn: str
    dead_letter_url: str
    events_url: str


def provision_s3_door(
    session: boto3.Session,
    endpoint_url: str,
    names: ResourceNames,
    *,
    visibility_timeout: int,
    max_receive_count: int,
    retention_seconds: int = 345_600,
) -> Queues:
    """The bucket, its notification to the queue (with a dead-letter queue), and a copy of the
    gateway's EventBridge events into a queue that can be read locally."""
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    s3 = session.client("s3", endpoint_url=endpoint_url)
    events = session.client("events", endpoint_url=endpoint_url)
    dead_letter_url = sqs.create_queue(QueueName=names.dead_letter_queue)["QueueUrl"]
    dead_letter_arn = _queue_arn(sqs, dead_letter_url)
    manifest_url = sqs.create_queue(
        QueueName=names.manifest_queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(retention_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    manifest_arn = _queue_arn(sqs, manifest_url)
    s3.create_bucket(Bucket=names.manifest_bucket)
    s3.put_bucket_versioning(
        Bucket=names.manifest_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    s3.put_bucket_notification_configuration(
        Bucket=names.manifest_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": manifest_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                }
            ]
        },
    )
    events_url = sqs.create_queue(QueueName=names.events_queue)["QueueUrl"]
    events.put_rule(
        Name="assets-gateway-events", EventPattern=json.dumps({"source": ["assets-gateway"]})
    )
    events.put_targets(
        Rule="assets-gateway-events",
        Targets=[{"Id": "local-queue", "Arn": _queue_arn(sqs, events_url)}],
    )
    return Queues(manifest_url, manifest_arn, dead_letter_url, events_url)


def _queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn
