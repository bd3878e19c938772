"""Where the session door keeps what the policy judged, for admins replaying a proposed policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assets_gateway.domain.simulation import RecordedDecision


class DecisionRecorder(Protocol):
    """Never fails a request: a decision that cannot be kept is only logged."""

    def record(self, decision: RecordedDecision, paths: list[str] | None = None) -> None: ...
