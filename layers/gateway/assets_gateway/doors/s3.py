"""The S3 door: a manifest uploaded under `incoming/` runs the same pipeline as the API door.

    incoming/<team>/<account_id>/<script_name>/<name>.json[.gz]
        →  results/<team>/<account_id>/<script_name>/<name>.json

S3 notifications arrive through SQS: at least once, unordered, keys URL-encoded. Nothing in a
notification is taken on trust (the queue only accepts S3, but a door is judged by what it does
with a forged message): the object version must exist, only the key's current version is run,
and the caller is whoever S3 says wrote it (the `assets-gateway-writer` tag the bucket policy
forces to `${aws:PrincipalArn}`), checked against the policy like an API caller. A notification
that does not check out changes no result.

A result never goes backwards: it is written only while its version is still the key's current
one, with a conditional PUT (If-Match on the result's ETag, If-None-Match for the first), re-read
and re-decided whenever another writer got there first. It names the version it answers.

Refusals that a retry cannot change (bad manifest, policy, Cloudflare's own 4xx) are written as
the result and end there; failures a retry may cure (Cloudflare 5xx/429, stores unavailable)
raise `RetryLater` so only that record goes back to the queue, and the last attempt also writes
its failure as the result before the record moves to the dead-letter queue. A quota refusal
(19020/19021) is not a failure: `QuotaWait` asks the caller to hold the record until its
Retry-After (see `s3_holds`).

The bucket is read and written through `ports.manifest_bucket` and outcomes announced through
`ports.outcome_events`; the door logs nothing itself: what became of each object, with the
reason when it was not answered, is its `ObjectOutcome`, which the caller logs and counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from enum import StrEnum
from typing import NotRequired, TypedDict

from assets_gateway.domain.envelope import Reply, error_reply, retry_after_seconds
from assets_gateway.domain.errors import GatewayError, ManifestTooLarge
from assets_gateway.domain.identity import Caller
from assets_gateway.domain.manifest_objects import ManifestObject
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.request_body import gunzip
from assets_gateway.ports.manifest_bucket import (
    BucketUnavailable,
    ManifestBucket,
    ResultMetadata,
    ResultState,
)
from assets_gateway.ports.outcome_events import OutcomeEvents
from assets_gateway.ports.sessions import Outcome, SessionRequest, SessionResult, Sessions

# Set on every upload (the bucket policy refuses a PutObject whose tag is not the caller's own
# principal ARN), read back by the door: who wrote the object, as S3 authenticated it.
WRITER_TAG = "assets-gateway-writer"
CREATED, REFUSED = "AssetsUploadSessionCreated", "AssetsUploadSessionRefused"
_QUOTA_CODES = {19020, 19021}
_WRITE_ROUNDS = 5


class RetryLater(Exception):
    """This record failed in a way a later attempt may cure: SQS should deliver it again."""

    def __init__(self, message: str, *, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class QuotaWait(Exception):
    """The team's quota or the global budget refused this manifest: not a failure, only a wait.
    Nothing was written; the record should come back after `seconds`."""

    def __init__(self, seconds: int, *, outcome: str) -> None:
        super().__init__(f"quota refused; retry after {seconds} s")
        self.seconds = seconds
        self.outcome = outcome


class Disposition(StrEnum):
    """What became of one notified object version."""

    ANSWERED = "answered"  # its result was written
    REJECTED = "rejected"  # the notification does not check out: no result changed
    SUPERSEDED = "superseded"  # a newer version (or a deletion) is current: not answered
    ALREADY_ANSWERED = "already_answered"  # the result answers this version already


class ObjectOutcome(TypedDict):
    """What became of one notified object version. Kept as its idempotency record (JSON), which
    answers a duplicate notification: records written by earlier versions may lack a key."""

    key: str
    result_key: str
    disposition: str
    request_id: str
    # An answer: its status and error code, the event published, and the pipeline's outcome
    # (allowed, refused_quota…: the same metrics as the API door).
    status: NotRequired[int]
    code: NotRequired[int | None]
    detail_type: NotRequired[str]
    outcome: NotRequired[str]
    # Not an answer: why not.
    reason: NotRequired[str]


def _retriable(status: int) -> bool:
    return status == 429 or status >= 500


class ManifestDoor:
    def __init__(
        self,
        *,
        sessions: Sessions,
        bucket: ManifestBucket,
        events: OutcomeEvents,
        max_object_bytes: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._bucket = bucket
        self._events = events
        self._max_bytes = max_object_bytes
        self._now = now

    def process(
        self,
        obj: ManifestObject,
        *,
        request_id: str,
        final_attempt: bool,
        wait_until: float | None = None,
    ) -> ObjectOutcome:
        """Check the notification against S3, run the pipeline on the object version and write
        its result. `wait_until` (epoch seconds): how long a quota refusal may still be waited
        out (`QuotaWait`); past it, or without it, the refusal is written as the result. An
        outcome that is not an answer carries its reason (the caller logs it)."""
        try:
            return self._process(obj, request_id, final_attempt, wait_until)
        except BucketUnavailable as error:
            raise RetryLater(str(error)) from None

    def _process(
        self, obj: ManifestObject, request_id: str, final_attempt: bool, wait_until: float | None
    ) -> ObjectOutcome:
        size = self._verify(obj, request_id)
        if not isinstance(size, int):
            return size
        if (stale := self._not_current(obj, request_id)) is not None:
            return stale
        if self._result_state(obj).source_version == obj.version_id:
            return _skipped(obj, request_id, Disposition.ALREADY_ANSWERED, "answered before")
        try:
            result = self._session(obj, request_id, size)
        except GatewayError as refusal:  # the object itself is unusable: a permanent refusal
            result = SessionResult(
                error_reply(refusal, request_id=request_id), Outcome.REFUSED_REQUEST
            )
        reply = result.reply
        code = _error_code(reply)
        self._maybe_wait(reply, code, result.outcome.value, wait_until)
        if _retriable(reply.status) and not final_attempt and code not in _QUOTA_CODES:
            raise RetryLater(f"{obj.key}: {reply.status} {code}", outcome=result.outcome.value)
        written = self._write_result(obj, reply, request_id)
        if written is not None:
            return written
        outcome = ObjectOutcome(
            key=obj.key,
            result_key=obj.result_key,
            disposition=Disposition.ANSWERED.value,
            request_id=request_id,
            status=reply.status,
            code=code,
            detail_type=CREATED if 200 <= reply.status < 300 else REFUSED,
            outcome=result.outcome.value,
        )
        self._publish(obj, outcome)
        if _retriable(reply.status) and code not in _QUOTA_CODES:
            raise RetryLater(
                f"{obj.key}: {reply.status} {code}, last attempt; result written",
                outcome=result.outcome.value,
            )
        return outcome

    def _maybe_wait(
        self, reply: Reply, code: int | None, outcome: str, wait_until: float | None
    ) -> None:
        if reply.status != 429 or code not in _QUOTA_CODES or wait_until is None:
            return
        seconds = retry_after_seconds(reply.header("Retry-After"))
        if self._now() + seconds <= wait_until:
            raise QuotaWait(seconds, outcome=outcome)

    def _verify(self, obj: ManifestObject, request_id: str) -> int | ObjectOutcome:
        """The notified version must exist: its size, or a rejection that writes nothing."""
        stored = self._bucket.head_version(obj.bucket, obj.key, obj.version_id)
        if stored is None:
            why = "the notified object version does not exist"
            return _skipped(obj, request_id, Disposition.REJECTED, why)
        if stored.version_id not in (None, obj.version_id):
            return _skipped(obj, request_id, Disposition.REJECTED, "S3 answered another version")
        return stored.size

    def _not_current(self, obj: ManifestObject, request_id: str) -> ObjectOutcome | None:
        """Only the key's current version is answered: an older one's answer would be stale the
        moment it was written (its newer version's own notification answers the key)."""
        current = self._bucket.current_version(obj.bucket, obj.key)
        if current == obj.version_id:
            return None
        reason = "the key was deleted" if current is None else f"version {current} is current"
        return _skipped(obj, request_id, Disposition.SUPERSEDED, reason)

    def _result_state(self, obj: ManifestObject) -> ResultState:
        return self._bucket.result_state(obj.bucket, obj.result_key)

    def _session(self, obj: ManifestObject, request_id: str, size: int) -> SessionResult:
        # The caller is the object's writer (an unknown one maps to no team: 19010), and the
        # service also holds it to the key's team.
        writer = self._bucket.tag(obj.bucket, obj.key, obj.version_id, WRITER_TAG)
        caller = Caller(
            principal_arn=writer or f"s3-object-without-{WRITER_TAG}", source="s3", team=obj.team
        )
        body = self._read(obj, size)
        return self._sessions.create_session(
            SessionRequest(
                caller=caller,
                target=SessionTarget(obj.account_id, obj.script_name),
                body=body,
                content_type="application/json",
                request_id=request_id,
            )
        )

    def _read(self, obj: ManifestObject, size: int) -> bytes:
        if size > self._max_bytes:
            raise ManifestTooLarge(
                f"the manifest object is {size} bytes; at most {self._max_bytes} are read"
            )
        data = self._bucket.read(obj.bucket, obj.key, obj.version_id, self._max_bytes)
        if len(data) > self._max_bytes:
            raise ManifestTooLarge(f"the manifest object is over {self._max_bytes} bytes")
        return gunzip(data, self._max_bytes, what="the .json.gz object") if obj.gzipped else data

    def _write_result(
        self, obj: ManifestObject, reply: Reply, request_id: str
    ) -> ObjectOutcome | None:
        """Write the result while this version is still the key's current one, conditionally on
        the result read just before deciding: None once written, else why not."""
        body = with_source(reply.body, obj)
        metadata = ResultMetadata(
            status=reply.status,
            request_id=request_id,
            source_key=obj.key,
            source_version=obj.version_id,
            source_sequencer=obj.sequencer,
        )
        for _ in range(_WRITE_ROUNDS):
            state = self._result_state(obj)
            if state.source_version == obj.version_id:
                return _skipped(obj, request_id, Disposition.ALREADY_ANSWERED, "raced")
            if (stale := self._not_current(obj, request_id)) is not None:
                return stale
            if self._bucket.put_result(obj.bucket, obj.result_key, body, metadata, over=state.etag):
                return None
            # Another version's result landed in between: decide again.
        raise RetryLater(f"writing {obj.result_key}: lost {_WRITE_ROUNDS} races in a row")

    def _publish(self, obj: ManifestObject, outcome: ObjectOutcome) -> None:
        """Teams subscribe to these. The session JWT is not in the event: it stays in the
        team's own result object."""
        detail = {
            "team": obj.team,
            "account_id": obj.account_id,
            "script_name": obj.script_name,
            "bucket": obj.bucket,
            "key": obj.key,
            "version_id": obj.version_id,
            "result_key": outcome["result_key"],
            "status": outcome.get("status"),
            "code": outcome.get("code"),
            "request_id": outcome["request_id"],
        }
        self._events.publish(
            outcome.get("detail_type", REFUSED), detail, f"arn:aws:s3:::{obj.bucket}/{obj.key}"
        )


def _skipped(
    obj: ManifestObject, request_id: str, disposition: Disposition, reason: str
) -> ObjectOutcome:
    return ObjectOutcome(
        key=obj.key,
        result_key=obj.result_key,
        disposition=disposition.value,
        request_id=request_id,
        reason=reason,
    )


def with_source(body: bytes, obj: ManifestObject) -> bytes:
    """The envelope with a leading `source` member naming the version it answers. Spliced, not
    re-serialised: a 100,000-entry answer is not parsed again for one member."""
    source = json.dumps(
        {"key": obj.key, "version_id": obj.version_id, "sequencer": obj.sequencer},
        separators=(",", ":"),
    ).encode()
    stripped = body.lstrip()
    if not stripped.startswith(b"{"):
        return body
    rest = stripped[1:].lstrip()
    return b'{"source":' + source + (b"" if rest.startswith(b"}") else b",") + rest


def _error_code(reply: Reply) -> int | None:
    if 200 <= reply.status < 300:
        return None
    try:
        errors = json.loads(reply.body).get("errors") or []
        code = errors[0].get("code") if errors else None
    except (ValueError, AttributeError, TypeError):
        return None
    return code if isinstance(code, int) else None
