"""AWS for the local stack: moto in server mode on loopback, resources made from template.yaml.

Tables are created from the template's own KeySchema, AttributeDefinitions and TTL, so the
local stack and the tests follow the deployed shape.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import yaml
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from gateway_local.http_server import BackgroundServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from mypy_boto3_dynamodb import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
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
    token_secret: str

    @classmethod
    def for_prefix(cls, prefix: str) -> ResourceNames:
        return cls(
            control_table=f"{prefix}-ControlTable",
            quota_table=f"{prefix}-QuotaTable",
            token_secret=f"{prefix}/cloudflare-token",
        )

    def table_for(self, logical_id: str) -> str:
        return {"ControlTable": self.control_table, "QuotaTable": self.quota_table}[logical_id]


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


class MotoServer:
    """moto in server mode on 127.0.0.1 (a free port), reached by real boto3 over HTTP."""

    def __init__(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = BackgroundServer(_OneRequestAtATime(app), name="moto")
        self.endpoint_url = self._server.url

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )

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


def put_policy(
    session: boto3.Session, endpoint_url: str, table: str, policy: dict[str, Any], version: int
) -> None:
    """Write a policy the way the admin door publishes it: a version item and the current one."""
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    document = json.dumps({"version": version, "policy": policy}, separators=(",", ":"))
    for item_id in (f"policy#v#{version:06d}", "policy#current"):
        dynamodb.put_item(
            TableName=table,
            Item={
                "id": {"S": item_id},
                "document": {"S": document},
                "version": {"N": str(version)},
            },
        )
