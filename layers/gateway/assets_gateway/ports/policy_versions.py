"""The policy's published versions: what the admin door reads and publishes through.

Every version is kept (the history, and what a rollback re-publishes); one of them is current.
Publishing is optimistic: a version is stored only while its predecessor is still current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# One page of the history holds at most this many versions (DynamoDB's BatchGetItem reads 100).
MAX_VERSIONS_PER_PAGE = 100


@dataclass(frozen=True)
class PublishedPolicy:
    """One version of the policy document, with who published it, when, why and what changed."""

    version: int
    policy: dict[str, Any]
    published_by: str = ""
    published_at: str = ""
    reason: str = ""
    changes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "published_by": self.published_by,
            "published_at": self.published_at,
            "reason": self.reason,
            "changes": list(self.changes),
        }

    def as_result(self) -> dict[str, Any]:
        return {**self.summary(), "policy": self.policy}


class PolicyVersions(Protocol):
    def current(self) -> PublishedPolicy | None: ...

    def version(self, version: int) -> PublishedPolicy | None: ...

    def versions(self, *, before: int, limit: int) -> list[PublishedPolicy]:
        """Versions below `before`, newest first, their documents left out."""
        ...

    def publish(self, new: PublishedPolicy) -> None:
        """Store `new` and make it current, only while version `new.version - 1` is current
        (0: none is); otherwise raise PolicyVersionConflict."""
        ...
