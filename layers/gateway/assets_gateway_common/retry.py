"""`Retry-After` and one retry loop, shared by the gateway's upstream client and the team client.

The gateway retries Cloudflare (with full jitter, within a deadline, asking the org's budget
before every retry); the team client retries the gateway and Cloudflare's upload endpoint, and
the admin client retries its reads. Each says which answers and errors are worth another
attempt; the loop, the backoff and the reading of `Retry-After` are the same. Standard library
only: this module ships in the Lambda layer and in the client's distribution.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Generic, TypeVar

__all__ = [
    "MAX_DELTA_SECONDS",
    "RetryRule",
    "RetrySchedule",
    "call_with_retries",
    "parse_retry_after",
]

# RFC 9111 §1.2.2: a delta-seconds too large to represent is read as 2^31 seconds (68 years).
MAX_DELTA_SECONDS = 2**31
# RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`, delay-seconds being 1*DIGIT. A
# sign is tolerated (a negative wait is already over), nothing else: "1.5" or "soon" is no advice.
_DELTA_SECONDS = re.compile(r"[+-]?[0-9]+")

Answer = TypeVar("Answer")


def parse_retry_after(
    value: str | None, *, clock: Callable[[], float] | None = None
) -> float | None:
    """The wait a `Retry-After` asks for, in seconds from now (never negative, at most
    MAX_DELTA_SECONDS); None when absent or unreadable.

    An HTTP-date is read against `clock` (wall-clock seconds since the epoch, `time.time`);
    without a clock a date is no advice, as for a caller that has no wall clock to compare with.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(min(max(int(text), 0), MAX_DELTA_SECONDS))
    if clock is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime has no zone; RFC 9110 §5.6.7: every HTTP-date is UTC
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - clock()), float(MAX_DELTA_SECONDS))


def _no_jitter(ceiling: float) -> float:
    return ceiling


@dataclass(frozen=True)
class RetrySchedule:
    """How often and how long to wait. The wait after attempt n fails is its answer's
    `Retry-After` when it has one, else `base_delay_seconds * 2**(n-1)` (at most
    `max_delay_seconds`) passed through `jitter` (the caller's: `random.uniform(0, c)` spreads
    retries of many instances; the identity keeps them exact).

    A wait longer than `max_wait_seconds` is not waited: the answer stands, so a caller is told
    to come back in five minutes rather than kept waiting for them."""

    attempts: int
    base_delay_seconds: float
    max_delay_seconds: float = math.inf
    max_wait_seconds: float = math.inf
    jitter: Callable[[float], float] = field(default=_no_jitter, repr=False, compare=False)

    def backoff(self, failed_attempt: int) -> float:
        """The wait after attempt `failed_attempt` (1, 2, ...) when the answer gives no advice."""
        exponential = self.base_delay_seconds * 2 ** (failed_attempt - 1)
        return self.jitter(min(self.max_delay_seconds, exponential))


def _no_advice(_answer: object) -> float | None:
    return None


def _any_error(_error: Exception) -> bool:
    return True


@dataclass(frozen=True)
class RetryRule(Generic[Answer]):
    """Which outcomes are worth another attempt: answers `retryable` says so of (waiting what
    `retry_after` reads from them, else the backoff), and errors of `errors` that
    `retryable_error` accepts. Any other error propagates at once."""

    retryable: Callable[[Answer], bool]
    retry_after: Callable[[Answer], float | None] = _no_advice
    errors: tuple[type[Exception], ...] = ()
    retryable_error: Callable[[Exception], bool] = _any_error


def _ignore(_wait: float) -> None:
    return None


def call_with_retries(
    send: Callable[[], Answer],
    rule: RetryRule[Answer],
    schedule: RetrySchedule,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float] | None = None,
    deadline: float = math.inf,
    may_retry: Callable[[], bool] | None = None,
    on_retry: Callable[[float], None] = _ignore,
) -> Answer:
    """Call `send` until `rule` says its outcome is final, or retrying ends; the last answer, or
    the last error raised again.

    Retrying ends after `schedule.attempts` attempts, when a wait exceeds
    `schedule.max_wait_seconds`, when it would end at or past `deadline` (read on `clock`, which
    a deadline needs), or when `may_retry()` (if given) says no. It is asked after the wait,
    right before the retry leaves, so a budget counts a call when it is made; `on_retry(wait)` is
    then told of it.
    """
    if deadline != math.inf and clock is None:
        raise ValueError("a deadline needs a clock")
    attempt = 1
    while True:
        error: Exception | None = None
        try:
            answer = send()
        except rule.errors as failed:
            if not rule.retryable_error(failed):
                raise
            error, wait = failed, schedule.backoff(attempt)
        else:
            if not rule.retryable(answer):
                return answer
            advised = rule.retry_after(answer)
            wait = advised if advised is not None else schedule.backoff(attempt)
        ends_too_late = clock is not None and clock() + wait >= deadline
        if attempt >= schedule.attempts or wait > schedule.max_wait_seconds or ends_too_late:
            break
        sleep(wait)
        if may_retry is not None and not may_retry():
            break
        on_retry(wait)
        attempt += 1
    if error is not None:
        raise error
    return answer
