"""Manifest objects in the S3 door's bucket, and the S3 event notifications that name them (pure).

    incoming/<team>/<account_id>/<script_name>/<name>.json[.gz]
        →  results/<team>/<account_id>/<script_name>/<name>.json

Notifications are read without trust and without raising: keys URL-decoded (S3 encodes spaces
as '+'), test events, other buckets and keys outside the layout skipped, malformed records
skipped and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus

INCOMING_PREFIX, RESULTS_PREFIX = "incoming/", "results/"
_MANIFEST_KEY = re.compile(
    r"^incoming/(?P<team>[^/]+)/(?P<account>[^/]+)/(?P<script>[^/]+)/(?P<name>.+?)"
    r"(?P<extension>\.json(?:\.gz)?)$"
)
# S3's sequencer: a hex string; its length varies (compare after left-padding with zeros).
_SEQUENCER = re.compile(r"^[0-9A-Fa-f]{1,64}$")


@dataclass(frozen=True)
class ManifestObject:
    bucket: str
    key: str
    version_id: str
    # The notification's sequencer (hex): kept in the result so readers can order answers.
    sequencer: str
    # What makes this upload unique for idempotency: the version id (the bucket is versioned).
    revision: str
    team: str
    account_id: str
    script_name: str
    name: str
    gzipped: bool
    # The notification's userIdentity.principalId: logged only; the caller comes from the tag.
    uploader: str

    @property
    def result_key(self) -> str:
        return f"{RESULTS_PREFIX}{self.team}/{self.account_id}/{self.script_name}/{self.name}.json"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Notification:
    """What one SQS message body holds: the manifest objects, and what was skipped and why.
    `malformed` counts the skipped records that were not even a well-formed S3 record."""

    objects: tuple[ManifestObject, ...]
    skipped: tuple[str, ...]
    malformed: int = 0


class _Malformed(ValueError):
    """A record that is not a well-formed S3 notification record."""


def read_notification(body: str, bucket: str) -> Notification:
    """Parse an S3 event notification (pure, never raises): keys decoded; test events, other
    buckets and keys outside the layout skipped; malformed records skipped and counted."""
    try:
        document = json.loads(body)
    except ValueError:
        return Notification((), ("the message is not JSON",), 1)
    if not isinstance(document, dict):
        return Notification((), ("the message is not an S3 notification",), 1)
    if document.get("Event") == "s3:TestEvent":
        return Notification((), ("s3:TestEvent",))
    records = document.get("Records")
    if records is not None and not isinstance(records, list):
        return Notification((), ("Records is not a list",), 1)
    objects: list[ManifestObject] = []
    skipped: list[str] = []
    malformed = 0
    for record in records or []:
        try:
            found = _manifest_object(record, bucket)
        except _Malformed as problem:
            malformed += 1
            skipped.append(f"a malformed record: {problem}")
            continue
        if isinstance(found, ManifestObject):
            objects.append(found)
        else:
            skipped.append(found)
    if not objects and not skipped:
        skipped.append("the message holds no S3 records")
    return Notification(tuple(objects), tuple(skipped), malformed)


def _field(container: Any, name: str, kind: type, *, required: bool = True) -> Any:
    if not isinstance(container, dict):
        raise _Malformed(f"expected an object holding {name!r}")
    value = container.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Malformed(f"{name!r} is not a {kind.__name__}")
    return value


def _manifest_object(record: Any, expected_bucket: str) -> ManifestObject | str:
    event_name = _field(record, "eventName", str)
    s3 = _field(record, "s3", dict)
    bucket = _field(_field(s3, "bucket", dict), "name", str)
    described = _field(s3, "object", dict)
    # S3 URL-encodes keys in notifications, spaces as '+'.
    key = unquote_plus(_field(described, "key", str))
    if bucket != expected_bucket:
        return f"bucket {bucket} is not the manifest bucket"
    if not event_name.startswith("ObjectCreated:"):
        return f"{event_name} on {key}"
    match = _MANIFEST_KEY.match(key)
    if match is None:
        return f"{key} is not incoming/<team>/<account_id>/<script_name>/<name>.json[.gz]"
    identity = record.get("userIdentity")
    principal = _field(identity, "principalId", str, required=False) if identity else None
    # The bucket is versioned: S3 names the version and a sequencer in every ObjectCreated record.
    version_id = _field(described, "versionId", str, required=False)
    sequencer = _field(described, "sequencer", str, required=False)
    if not version_id or version_id == "null":
        return f"{key}: the record names no object version"
    if sequencer is None or not _SEQUENCER.match(sequencer):
        return f"{key}: the record has no valid sequencer"
    return ManifestObject(
        bucket=bucket,
        key=key,
        version_id=version_id,
        sequencer=sequencer.upper(),
        revision=version_id,
        team=match["team"],
        account_id=match["account"],
        script_name=match["script"],
        name=match["name"],
        gzipped=match["extension"].endswith(".gz"),
        uploader=principal or "unknown",
    )
