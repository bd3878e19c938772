"""A circuit breaker for the upstream: after repeated failures, stop calling for a while and
answer at once, so a Cloudflare outage does not hold every request for its full timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures; open for `open_seconds`,
    then half-open: one trial call decides whether it closes again or re-opens."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        open_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state, only one trial at a time)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self._open_seconds or self._trial_running:
                return False
            self._trial_running = True
            return True

    def retry_after(self) -> int:
        with self._lock:
            if self._opened_at is None:
                return 0
            return max(1, int(self._open_seconds - (self._clock() - self._opened_at) + 0.999))

    def record_success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial_running = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self._threshold:
                self._opened_at = self._clock()
            self._trial_running = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None
