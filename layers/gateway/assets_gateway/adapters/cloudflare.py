"""The upstream client: one call to Cloudflare's Create Assets Upload Session operation.

Cloudflare's own answers (a session, or its 4xx refusal) are returned byte for byte; anything we
cannot trust (transport errors, timeouts, 5xx, non-envelope bodies, a 2xx without a usable
session) becomes an `UpstreamFailure`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from assets_gateway.domain.circuit import CircuitBreaker
from assets_gateway.domain.envelope import UpstreamEnvelope, is_upload_session, parse_envelope
from assets_gateway.domain.errors import CircuitOpen, UpstreamFailure
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.redaction import redact_body, redact_text
from assets_gateway.ports.upstream import AttemptMeter, UpstreamAnswer

# Headers of Cloudflare's answer that mean something to the caller. Cloudflare's Ratelimit
# headers describe the org token's budget, not the caller's, so they stay here.
_PASS_THROUGH_HEADERS = ("content-type", "cf-ray", "retry-after")


def session_path(target: SessionTarget) -> str:
    account = quote(target.account_id, safe="")
    script = quote(target.script_name, safe="")
    if target.namespace is None:
        return f"/accounts/{account}/workers/scripts/{script}/assets-upload-session"
    namespace = quote(target.namespace, safe="")
    return (
        f"/accounts/{account}/workers/dispatch/namespaces/{namespace}"
        f"/scripts/{script}/assets-upload-session"
    )


def build_http_client(*, connect_timeout: float, read_timeout: float) -> httpx.Client:
    """The one client of a Lambda environment: its pool keeps TLS connections warm."""
    return httpx.Client(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=1.0
        ),
        headers={"User-Agent": "assets-gateway/0.1"},
        follow_redirects=False,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for connection errors, timeouts, 429 and 5xx, all within one deadline that fits
    inside the Lambda timeout (25 s) with room for the rest of the pipeline."""

    attempts: int = 3
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 2.0
    deadline_seconds: float = 20.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: spread retries so instances do not retry in step."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


class CloudflareClient:
    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.Client,
        retry: RetryPolicy = RetryPolicy(),
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._retry = retry
        self._breaker = breaker or CircuitBreaker()
        self._sleep = sleep
        self._clock = clock

    def create_upload_session(
        self,
        target: SessionTarget,
        body: bytes,
        token: SecretStr,
        meter: AttemptMeter | None = None,
    ) -> UpstreamAnswer:
        """Every way out of the call settles the breaker: an answer (a 429 included: Cloudflare is
        up and the service's cool-down handles its limit) closes it, any exception counts as a
        failure."""
        passage = self._breaker.admit()
        if passage is None:
            raise CircuitOpen(
                "Cloudflare has been failing; the gateway pauses calls to it",
                retry_after=self._breaker.retry_after(),
            )
        with passage:
            return self._with_retries(target, body, token, meter)

    def _with_retries(
        self,
        target: SessionTarget,
        body: bytes,
        token: SecretStr,
        meter: AttemptMeter | None,
    ) -> UpstreamAnswer:
        deadline = self._clock() + self._retry.deadline_seconds
        started = time.perf_counter()
        failure: UpstreamFailure | None = None
        throttled: UpstreamAnswer | None = None
        for attempt in range(1, self._retry.attempts + 1):
            if attempt > 1 and meter is not None and not meter.may_retry():
                break  # the org's budget has no room for another call: the last answer stands
            try:
                answer = self._attempt(target, body, token, deadline, started)
            except UpstreamFailure as error:
                if meter is not None:
                    meter.record(reached=error.reached, ratelimit=None)
                failure, throttled = error, None
                wait = self._retry.backoff(attempt)
            else:
                if meter is not None:
                    meter.record(reached=True, ratelimit=answer.ratelimit)
                if answer.status != 429 and answer.status < 500:
                    return answer
                throttled = answer if answer.status == 429 else None
                failure = None if throttled else _server_error(answer)
                wait = _retry_after(answer.headers) or self._retry.backoff(attempt)
            if attempt == self._retry.attempts or self._clock() + wait >= deadline:
                break
            self._sleep(wait)
        if throttled is not None:
            # Cloudflare is limiting the org token: the service opens the cool-down.
            return throttled
        raise failure or UpstreamFailure("Cloudflare could not be reached")

    def _attempt(
        self, target: SessionTarget, body: bytes, token: SecretStr, deadline: float, started: float
    ) -> UpstreamAnswer:
        remaining = deadline - self._clock()
        try:
            response = self._http.post(
                self._base_url + session_path(target),
                content=body,
                headers={
                    "Authorization": f"Bearer {token.get_secret_value()}",
                    "Content-Type": "application/json",
                },
                # Never wait past the deadline, whatever the client's own read timeout.
                timeout=_within(self._http.timeout, remaining),
            )
        except httpx.TimeoutException as error:
            failure = UpstreamFailure("Cloudflare did not answer in time", status=504)
            raise _noting_reach(failure, error) from None
        except httpx.TransportError as error:
            raise _noting_reach(
                UpstreamFailure("Cloudflare is unreachable", status=502), error
            ) from None
        except httpx.HTTPError as error:
            # A body the client cannot decode (a broken gzip, say) is garbage from Cloudflare.
            failure = UpstreamFailure("Cloudflare answered a body that cannot be decoded")
            raise _noting_reach(failure, error) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        answer_body = _without_token(response.content, token)
        envelope = _check_trustworthy(response.status_code, answer_body)
        headers = {
            name: redact_text(response.headers[name], token.get_secret_value())
            for name in _PASS_THROUGH_HEADERS
            if name in response.headers
        }
        return UpstreamAnswer(
            response.status_code,
            answer_body,
            headers,
            elapsed_ms,
            envelope.error_codes,
            ratelimit=response.headers.get("ratelimit"),
        )


# Errors raised before the request was sent: Cloudflare never saw (nor counted) it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _noting_reach(failure: UpstreamFailure, error: httpx.HTTPError) -> UpstreamFailure:
    failure.reached = not isinstance(error, _NOT_SENT)
    return failure


def _within(timeout: httpx.Timeout, remaining: float) -> httpx.Timeout:
    """The client's timeouts, the read one cut to what is left of the deadline."""
    read = timeout.read if timeout.read is not None else remaining
    return httpx.Timeout(
        connect=timeout.connect,
        read=max(0.05, min(read, remaining)),
        write=timeout.write,
        pool=timeout.pool,
    )


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _server_error(answer: UpstreamAnswer) -> UpstreamFailure:
    return UpstreamFailure(f"Cloudflare answered {answer.status}", status=502)


def _without_token(body: bytes, token: SecretStr) -> bytes:
    """Cloudflare never echoes the token, but the gateway must not rely on that."""
    return redact_body(body, token.get_secret_value())


def _check_trustworthy(status: int, body: bytes) -> UpstreamEnvelope:
    """5xx and 429 bodies are not judged here: those answers are retried or backed off."""
    envelope = parse_envelope(body)
    if status >= 500 or status == 429:
        return envelope or UpstreamEnvelope(success=False, error_codes=(), result=None)
    if envelope is None:
        raise UpstreamFailure(
            f"Cloudflare answered {status} with a body that is not an API envelope"
        )
    if 200 <= status < 300 and not (envelope.success and is_upload_session(envelope.result)):
        raise UpstreamFailure(f"Cloudflare answered {status} without a usable upload session")
    return envelope
