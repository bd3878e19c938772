"""Where the S3 door announces what became of a manifest (teams subscribe to these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class OutcomeEvents(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any], resource: str) -> None:
        """Never raises: the result object stays the record, so a failure is only logged."""
        ...
