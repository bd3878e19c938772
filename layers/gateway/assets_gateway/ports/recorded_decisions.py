"""The session door's recorded decisions: what the policy judged, kept for admins replaying a
proposed policy (`decision_log` implements it over DynamoDB)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assets_gateway.domain.simulation import RecordedDecision


class DecisionRecorder(Protocol):
    """Never fails a request: a decision that cannot be kept is only logged."""

    def record(self, decision: RecordedDecision, paths: list[str] | None = None) -> None: ...
