"""The S3 door: a manifest uploaded under `incoming/` runs the same pipeline as the API door.

    incoming/<team>/<account_id>/<script_name>/<name>.json[.gz]
        →  results/<team>/<account_id>/<script_name>/<name>.json

S3 notifications arrive through SQS: at least once, unordered, keys URL-encoded. Refusals that a
retry cannot change (bad manifest, policy, Cloudflare's own 4xx) are written as the result and
end there; failures a retry may cure (Cloudflare 5xx/429, throttling, stores unavailable) raise
`RetryLater` so only that record goes back to the queue, and the last attempt also writes its
failure as the result before the record moves to the dead-letter queue.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.envelope import Reply, error_reply
from assets_gateway.errors import GatewayError, MalformedRequest, ManifestTooLarge
from assets_gateway.identity import Caller
from assets_gateway.manifest import gunzip
from assets_gateway.policy import SessionTarget
from assets_gateway.service import Outcome, SessionRequest, SessionResult, SessionService

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

INCOMING_PREFIX, RESULTS_PREFIX = "incoming/", "results/"
_MANIFEST_KEY = re.compile(
    r"^incoming/(?P<team>[^/]+)/(?P<account>[^/]+)/(?P<script>[^/]+)/(?P<name>.+?)"
    r"(?P<extension>\.json(?:\.gz)?)$"
)
EVENT_SOURCE = "assets-gateway"
CREATED, REFUSED = "AssetsUploadSessionCreated", "AssetsUploadSessionRefused"
_MISSING_OBJECT_CODES = {"NoSuchKey", "NoSuchVersion", "404"}


class RetryLater(Exception):
    """This record failed in a way a later attempt may cure: SQS should deliver it again."""

    def __init__(self, message: str, *, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class ManifestObject:
    bucket: str
    key: str
    version_id: str | None
    # What makes this upload unique: the version id in a versioned bucket (as deployed), else the
    # event's sequencer, else the ETag. Duplicate notifications share it; a new upload does not.
    revision: str
    team: str
    account_id: str
    script_name: str
    name: str
    gzipped: bool
    uploader: str

    @property
    def result_key(self) -> str:
        return f"{RESULTS_PREFIX}{self.team}/{self.account_id}/{self.script_name}/{self.name}.json"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Notification:
    """What one SQS message body holds: the manifest objects, and what was skipped and why."""

    objects: tuple[ManifestObject, ...]
    skipped: tuple[str, ...]


def read_notification(body: str, bucket: str) -> Notification:
    """Parse an S3 event notification (pure): keys decoded; test events, other buckets and keys
    outside the layout skipped."""
    try:
        document = json.loads(body)
    except ValueError:
        return Notification((), ("the message is not JSON",))
    if not isinstance(document, dict):
        return Notification((), ("the message is not an S3 notification",))
    if document.get("Event") == "s3:TestEvent":
        return Notification((), ("s3:TestEvent",))
    objects: list[ManifestObject] = []
    skipped: list[str] = []
    for record in document.get("Records") or []:
        found = _manifest_object(record, bucket)
        if isinstance(found, ManifestObject):
            objects.append(found)
        else:
            skipped.append(found)
    if not objects and not skipped:
        skipped.append("the message holds no S3 records")
    return Notification(tuple(objects), tuple(skipped))


def _manifest_object(record: Any, expected_bucket: str) -> ManifestObject | str:
    try:
        event_name = str(record["eventName"])
        bucket = str(record["s3"]["bucket"]["name"])
        # S3 URL-encodes keys in notifications, spaces as '+'.
        key = unquote_plus(str(record["s3"]["object"]["key"]))
    except (KeyError, TypeError):
        return "a record without an S3 bucket and key"
    if bucket != expected_bucket:
        return f"bucket {bucket} is not the manifest bucket"
    if not event_name.startswith("ObjectCreated:"):
        return f"{event_name} on {key}"
    match = _MANIFEST_KEY.match(key)
    if match is None:
        return f"{key} is not incoming/<team>/<account_id>/<script_name>/<name>.json[.gz]"
    uploader = (record.get("userIdentity") or {}).get("principalId") or "unknown"
    described = record["s3"]["object"]
    version_id = described.get("versionId") or None
    revision = version_id or described.get("sequencer") or described.get("eTag") or ""
    return ManifestObject(
        bucket=bucket,
        key=key,
        version_id=version_id,
        revision=str(revision),
        team=match["team"],
        account_id=match["account"],
        script_name=match["script"],
        name=match["name"],
        gzipped=match["extension"].endswith(".gz"),
        uploader=f"s3-uploader:{uploader}",
    )


@dataclass(frozen=True)
class ObjectOutcome:
    key: str
    result_key: str
    status: int
    code: int | None
    detail_type: str
    request_id: str
    # The pipeline's outcome (allowed, refused_quota…): the same metrics as the API door.
    outcome: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _retriable(status: int) -> bool:
    return status == 429 or status >= 500


class ManifestDoor:
    def __init__(
        self,
        *,
        service: SessionService,
        s3: S3Client,
        events: EventBridgeClient,
        event_bus: str,
        max_object_bytes: int,
    ) -> None:
        self._service = service
        self._s3 = s3
        self._events = events
        self._event_bus = event_bus
        self._max_bytes = max_object_bytes

    def process(
        self, obj: ManifestObject, *, request_id: str, final_attempt: bool
    ) -> ObjectOutcome:
        """Run the pipeline on one uploaded manifest and write its result object."""
        try:
            result = self._session(obj, request_id)
        except GatewayError as refusal:  # the object itself is unusable: a permanent refusal
            result = SessionResult(
                error_reply(refusal, request_id=request_id), Outcome.REFUSED_REQUEST
            )
        reply = result.reply
        code = _error_code(reply)
        if _retriable(reply.status) and not final_attempt:
            raise RetryLater(f"{obj.key}: {reply.status} {code}", outcome=result.outcome.value)
        self._write_result(obj, reply, request_id)
        outcome = ObjectOutcome(
            key=obj.key,
            result_key=obj.result_key,
            status=reply.status,
            code=code,
            detail_type=CREATED if 200 <= reply.status < 300 else REFUSED,
            request_id=request_id,
            outcome=result.outcome.value,
        )
        self._publish(obj, outcome)
        if _retriable(reply.status):
            raise RetryLater(
                f"{obj.key}: {reply.status} {code}, last attempt; result written",
                outcome=result.outcome.value,
            )
        return outcome

    def _session(self, obj: ManifestObject, request_id: str) -> SessionResult:
        body = self._read(obj)
        return self._service.create_session(
            SessionRequest(
                caller=Caller(principal_arn=obj.uploader, source="s3", team=obj.team),
                target=SessionTarget(obj.account_id, obj.script_name),
                body=body,
                content_type="application/json",
                request_id=request_id,
            )
        )

    def _read(self, obj: ManifestObject) -> bytes:
        options: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            options["VersionId"] = obj.version_id
        try:
            answer = self._s3.get_object(**options)
            if answer["ContentLength"] > self._max_bytes:
                raise ManifestTooLarge(
                    f"the manifest object is {answer['ContentLength']} bytes; at most "
                    f"{self._max_bytes} are read"
                )
            data = answer["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_OBJECT_CODES:
                raise MalformedRequest("the manifest object no longer exists") from None
            raise RetryLater(f"reading {obj.key}: {type(error).__name__}") from None
        except BotoCoreError as error:
            raise RetryLater(f"reading {obj.key}: {type(error).__name__}") from None
        return gunzip(data, self._max_bytes, what="the .json.gz object") if obj.gzipped else data

    def _write_result(self, obj: ManifestObject, reply: Reply, request_id: str) -> None:
        try:
            self._s3.put_object(
                Bucket=obj.bucket,
                Key=obj.result_key,
                Body=reply.body,
                ContentType="application/json",
                Metadata={
                    "status": str(reply.status),
                    "request-id": request_id,
                    # Metadata is ASCII: the source key is percent-encoded.
                    "source-key": quote(obj.key, safe="/"),
                    "source-version": obj.version_id or "",
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise RetryLater(f"writing {obj.result_key}: {type(error).__name__}") from None

    def _publish(self, obj: ManifestObject, outcome: ObjectOutcome) -> None:
        """Teams subscribe to these; the result object stays the record, so a failure only logs.
        The session JWT is not in the event: it stays in the team's own result object."""
        detail = {
            "team": obj.team,
            "account_id": obj.account_id,
            "script_name": obj.script_name,
            "bucket": obj.bucket,
            "key": obj.key,
            "version_id": obj.version_id,
            "result_key": outcome.result_key,
            "status": outcome.status,
            "code": outcome.code,
            "request_id": outcome.request_id,
        }
        try:
            answer = self._events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": outcome.detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self._event_bus,
                        "Resources": [f"arn:aws:s3:::{obj.bucket}/{obj.key}"],
                    }
                ]
            )
            failed = answer.get("FailedEntryCount", 0)
        except (ClientError, BotoCoreError) as error:
            failed, cause = 1, type(error).__name__
        else:
            cause = "FailedEntryCount"
        if failed:
            logger.error("outcome event not published", extra={"key": obj.key, "cause": cause})


def _error_code(reply: Reply) -> int | None:
    if 200 <= reply.status < 300:
        return None
    try:
        errors = json.loads(reply.body).get("errors") or []
        code = errors[0].get("code") if errors else None
    except (ValueError, AttributeError, TypeError):
        return None
    return code if isinstance(code, int) else None
