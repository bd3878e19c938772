"""The session door's recorded decisions, as a policy simulation reads them back."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from assets_gateway.domain.simulation import RecordedDecision


class RecordedDecisions(Protocol):
    def between(self, since: datetime, until: datetime) -> tuple[list[RecordedDecision], bool]:
        """The decisions recorded in [since, until) and whether the read stopped at its cap."""
        ...
