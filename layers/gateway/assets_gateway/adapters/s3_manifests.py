"""The manifest bucket over S3 (`ports.manifest_bucket`), S3's answers translated: a version or
key that is not there is an answer, a lost conditional write is an answer, anything else is
`BucketUnavailable` naming what was being done."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from assets_gateway.ports.manifest_bucket import (
    BucketUnavailable,
    ResultMetadata,
    ResultState,
    StoredVersion,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

# A named version that is not there: S3 answers 404, 405 for a delete marker, 400 for an id
# that cannot be a version id (a forged one).
_MISSING_VERSION_CODES = frozenset(
    {"NoSuchKey", "NoSuchVersion", "404", "405", "InvalidArgument", "400"}
)
# A key with no current object (never written, or deleted: its latest version a delete marker).
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404"})
# Another writer changed the result between our read and our write (If-Match on a result
# deleted meanwhile answers 404: the same story).
_LOST_RACE_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _answer(doing: str, absent: frozenset[str], call: Callable[[], T]) -> T | None:
    """S3's answer; None when S3 says it is `absent`; any other failure is `BucketUnavailable`."""
    try:
        return call()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in absent:
            return None
        raise BucketUnavailable(f"{doing}: {code}") from None
    except BotoCoreError as error:
        raise BucketUnavailable(f"{doing}: {type(error).__name__}") from None


class S3ManifestBucket:
    def __init__(self, *, s3: S3Client) -> None:
        self._s3 = s3

    def head_version(self, bucket: str, key: str, version_id: str) -> StoredVersion | None:
        head = _answer(
            f"checking {key}",
            _MISSING_VERSION_CODES,
            lambda: self._s3.head_object(Bucket=bucket, Key=key, VersionId=version_id),
        )
        if head is None:
            return None
        return StoredVersion(int(head.get("ContentLength", 0)), head.get("VersionId"))

    def current_version(self, bucket: str, key: str) -> str | None:
        head = _answer(
            f"checking {key}",
            _MISSING_KEY_CODES,
            lambda: self._s3.head_object(Bucket=bucket, Key=key),
        )
        return None if head is None else head.get("VersionId")

    def tag(self, bucket: str, key: str, version_id: str, name: str) -> str:
        tagging = _answer(
            f"reading the tags of {key}",
            _MISSING_VERSION_CODES,
            lambda: self._s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id),
        )
        tags = tagging["TagSet"] if tagging is not None else []
        return next((tag["Value"] for tag in tags if tag["Key"] == name), "")

    def read(self, bucket: str, key: str, version_id: str, max_bytes: int) -> bytes:
        def read_version() -> bytes:
            answer = self._s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)
            return answer["Body"].read(max_bytes + 1)

        return _answer(f"reading {key}", frozenset(), read_version) or b""

    def result_state(self, bucket: str, key: str) -> ResultState:
        head = _answer(
            f"reading {key}",
            _MISSING_KEY_CODES,
            lambda: self._s3.head_object(Bucket=bucket, Key=key),
        )
        if head is None:
            return ResultState(None, None, None)
        metadata = head.get("Metadata", {})
        return ResultState(
            etag=head.get("ETag"),
            source_key=metadata.get("source-key"),
            source_version=metadata.get("source-version"),
        )

    def put_result(
        self, bucket: str, key: str, body: bytes, metadata: ResultMetadata, *, over: str | None
    ) -> bool:
        condition: dict[str, Any] = {"IfMatch": over} if over else {"IfNoneMatch": "*"}
        written = _answer(
            f"writing {key}",
            _LOST_RACE_CODES | _MISSING_KEY_CODES,
            lambda: self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                Metadata={
                    "status": str(metadata.status),
                    "request-id": metadata.request_id,
                    # Metadata is ASCII: the source key is percent-encoded.
                    "source-key": quote(metadata.source_key, safe="/"),
                    "source-version": metadata.source_version,
                    "source-sequencer": metadata.source_sequencer,
                },
                **condition,
            ),
        )
        return written is not None
