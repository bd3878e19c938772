"""One request of the team client, retried as wrangler does: 429, 5xx and connection failures,
3 times (1 s, 2 s, 4 s, or the answer's `Retry-After` when it is at most 60 s; a longer wait is
reported instead of slept). The loop is the shared one (`assets_gateway_common.retry`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from assets_gateway_client.answers import UploadError
from assets_gateway_common.retry import (
    RetryRule,
    RetrySchedule,
    call_with_retries,
    parse_retry_after,
)

__all__ = ["MAX_RETRIES", "USER_AGENT", "Clock", "Retrying", "Sleep"]

USER_AGENT = "assets-gateway-client/0.1"
MAX_RETRIES = 3
MAX_RETRY_AFTER_S = 60.0  # wrangler's ceiling
BACKOFF_S = 1.0

Sleep = Callable[[float], None]
Clock = Callable[[], float]  # wall-clock seconds: JWT expiries, Retry-After dates

_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _busy(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


@dataclass
class Retrying:
    """How one upload's requests are retried, the gateway's and Cloudflare's alike (`sleep` and
    `clock` injected: tests wait for nothing), and how many retries it made (across threads)."""

    sleep: Sleep = time.sleep
    clock: Clock = time.time  # wall clock: Retry-After dates, JWT expiries
    max_retries: int = MAX_RETRIES
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def send(
        self,
        send: Callable[[], httpx.Response],
        *,
        what: str,
        stop: threading.Event | None = None,
    ) -> httpx.Response:
        """Send, retrying 429, 5xx and connection failures. An answer that is still retryable
        after the last attempt, or asks to wait longer than MAX_RETRY_AFTER_S, is returned; a
        failure to get any answer is an UploadError. Once `stop` is set (another request
        failed), nothing more is waited for or sent."""
        attempts = [0]

        def attempt() -> httpx.Response:
            attempts[0] += 1
            return send()

        def stopped() -> bool:
            return stop is not None and stop.is_set()

        def pause(seconds: float) -> None:
            if not stopped():
                self.sleep(seconds)

        try:
            return call_with_retries(
                attempt,
                RetryRule(retryable=_busy, retry_after=self._retry_after, errors=_RETRYABLE_ERRORS),
                RetrySchedule(
                    attempts=self.max_retries + 1,
                    base_delay_seconds=BACKOFF_S,
                    max_wait_seconds=MAX_RETRY_AFTER_S,
                ),
                sleep=pause,
                may_retry=lambda: not stopped(),
                on_retry=self._count,
            )
        except _RETRYABLE_ERRORS as error:
            count = attempts[0]
            raise UploadError(
                f"{what}: {type(error).__name__}: {error or 'no answer'} "
                f"(after {count} attempt{'s' if count > 1 else ''})"
            ) from error
        except httpx.HTTPError as error:  # not retryable: a malformed URL, a TLS failure...
            raise UploadError(f"{what}: {type(error).__name__}: {error}") from error

    def _retry_after(self, response: httpx.Response) -> float | None:
        return parse_retry_after(response.headers.get("retry-after"), clock=self.clock)

    def _count(self, _wait: float) -> None:
        with self._lock:
            self.retries += 1
