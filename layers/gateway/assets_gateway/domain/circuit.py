"""A circuit breaker for the upstream: after repeated failures, stop calling for a while and
answer at once, so a Cloudflare outage does not hold every request for its full timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures; open for `open_seconds`,
    then half-open: one trial call decides whether it closes again or re-opens.

    Calls go through `admit()`, whose `Passage` settles the breaker however the call ends: a
    trial that is never settled would keep the circuit open for the life of the environment.
    A trial older than `trial_lease_seconds` (longer than any call may last) no longer blocks
    the next one, in case a call is ever lost without its `finally` running."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        open_seconds: float = 30.0,
        trial_lease_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._trial_lease = trial_lease_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started: float | None = None
        self._lock = threading.Lock()

    def admit(self) -> Passage | None:
        """A passage for one call now, or None while the circuit is open (in half-open state,
        one trial at a time)."""
        with self._lock:
            if self._opened_at is None:
                return Passage(self, trial=False)
            now = self._clock()
            if now - self._opened_at < self._open_seconds:
                return None
            if self._trial_started is not None and now - self._trial_started < self._trial_lease:
                return None
            self._trial_started = now
            return Passage(self, trial=True)

    def retry_after(self) -> int:
        with self._lock:
            if self._opened_at is None:
                return 0
            return max(1, int(self._open_seconds - (self._clock() - self._opened_at) + 0.999))

    def _settle(self, *, trial: bool, succeeded: bool) -> None:
        with self._lock:
            if succeeded:
                self._failures, self._opened_at, self._trial_started = 0, None, None
                return
            self._failures += 1
            if trial:
                self._opened_at, self._trial_started = self._clock(), None
            elif self._opened_at is None and self._failures >= self._threshold:
                # A call that started before the circuit opened does not restart the interval.
                self._opened_at = self._clock()

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None


class Passage:
    """One admitted call, used as a context manager: leaving the block normally records a
    success (Cloudflare answered), leaving it with any exception records a failure. Settling is
    done once, in `__exit__`, so no path out of a call can leave a trial mark behind."""

    __slots__ = ("_breaker", "_settled", "trial")

    def __init__(self, breaker: CircuitBreaker, *, trial: bool) -> None:
        self._breaker = breaker
        self._settled = False
        self.trial = trial

    def __enter__(self) -> Passage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._settled:
            self._settled = True
            self._breaker._settle(trial=self.trial, succeeded=exc_type is None)
