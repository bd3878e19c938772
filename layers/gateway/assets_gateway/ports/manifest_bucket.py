"""The manifest bucket as the S3 door reads and writes it: object versions, their writer's tag,
and the result objects, written only over the result the door last read (`s3_manifests`
implements it over S3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BucketUnavailable(Exception):
    """S3 failed in a way a later attempt may cure; the message says what was being done."""


@dataclass(frozen=True)
class StoredVersion:
    size: int
    # The version S3 answered for (None when it named none).
    version_id: str | None


@dataclass(frozen=True)
class ResultMetadata:
    """What a result object says of itself: its status, the request that wrote it, and the
    manifest version it answers."""

    status: int
    request_id: str
    source_key: str
    source_version: str
    source_sequencer: str


@dataclass(frozen=True)
class ResultState:
    etag: str | None  # None: no result yet
    source_key: str | None
    source_version: str | None


class ManifestBucket(Protocol):
    """Every method raises `BucketUnavailable` for a failure other than the one it answers."""

    def head_version(self, bucket: str, key: str, version_id: str) -> StoredVersion | None:
        """The named version; None when there is none (or the id cannot be one)."""
        ...

    def current_version(self, bucket: str, key: str) -> str | None:
        """The key's current version; None when it has none (never written, or deleted)."""
        ...

    def tag(self, bucket: str, key: str, version_id: str, name: str) -> str:
        """A tag's value on that version ("" when the tag or the version is not there)."""
        ...

    def read(self, bucket: str, key: str, version_id: str, max_bytes: int) -> bytes:
        """The version's bytes, at most `max_bytes + 1` of them (so an overflow shows)."""
        ...

    def result_state(self, bucket: str, key: str) -> ResultState: ...

    def put_result(
        self, bucket: str, key: str, body: bytes, metadata: ResultMetadata, *, over: str | None
    ) -> bool:
        """Write the result only if the result is still the one of ETag `over` (None: only if
        there is none yet); False when another writer got there first."""
        ...
