"""The upstream client: Cloudflare's Create Assets Upload Session operation, and any governed
call of the deploy door forwarded as its caller made it.

Cloudflare's own answers (a session, a version, or a 4xx refusal) are returned byte for byte;
anything we cannot trust (transport errors, timeouts, 5xx, non-envelope bodies, a 2xx that is no
success, or no usable session) becomes an `UpstreamFailure`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from assets_gateway.domain.circuit import CircuitBreaker
from assets_gateway.domain.envelope import UpstreamEnvelope, is_upload_session, parse_envelope
from assets_gateway.domain.errors import CircuitOpen, UpstreamFailure
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.domain.redaction import redact_body, redact_text
from assets_gateway.ports.upstream import AttemptMeter, UpstreamAnswer, UpstreamCall
from assets_gateway_common.retry import (
    RetryRule,
    RetrySchedule,
    call_with_retries,
    parse_retry_after,
)

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


class PooledHttp:
    """The one httpx client of a Lambda environment, built when the first call needs it and
    renewable.

    Built on first use: its TLS context (the CA bundle read and parsed) is tens of ms of cold
    start that a request refused before Cloudflare never needs, and X-Ray instruments only the
    httpx clients built after it patched httpx (`lambda_glue.tracing`). Renewable: environments
    restored from one SnapStart snapshot must each open their own connections."""

    def __init__(self, build: Callable[[], httpx.Client]) -> None:
        self._build = build
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __call__(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = self._build()
        return client

    def renew(self) -> None:
        """Close the pool's connections; the next call builds a new client."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _full_jitter(ceiling: float) -> float:
    """Spread retries so instances do not retry in step."""
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


@dataclass(frozen=True)
class RetryPolicy(RetrySchedule):
    """Retries for connection errors, timeouts, 429 and 5xx, all within one deadline that fits
    inside the Lambda timeout (25 s) with room for the rest of the pipeline."""

    attempts: int = 3
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 2.0
    jitter: Callable[[float], float] = field(default=_full_jitter, repr=False, compare=False)
    deadline_seconds: float = 20.0


class CloudflareClient:
    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.Client | PooledHttp,
        retry: RetryPolicy = RetryPolicy(),
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._http: Callable[[], httpx.Client] = (
            http if isinstance(http, PooledHttp) else lambda: http
        )
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
        call = UpstreamCall(
            "POST", session_path(target), body=body, headers={"Content-Type": "application/json"}
        )
        return self._send(call, token, meter, _usable_session)

    def forward(
        self, call: UpstreamCall, token: SecretStr, meter: AttemptMeter | None = None
    ) -> UpstreamAnswer:
        return self._send(call, token, meter, _successful)

    def _send(
        self,
        call: UpstreamCall,
        token: SecretStr,
        meter: AttemptMeter | None,
        usable: Callable[[UpstreamEnvelope], bool],
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
            return self._with_retries(call, token, meter, usable)

    def _with_retries(
        self,
        call: UpstreamCall,
        token: SecretStr,
        meter: AttemptMeter | None,
        usable: Callable[[UpstreamEnvelope], bool],
    ) -> UpstreamAnswer:
        deadline = self._clock() + self._retry.deadline_seconds
        started = time.perf_counter()

        def attempt() -> UpstreamAnswer:
            try:
                answer = self._attempt(call, token, deadline, started, usable)
            except UpstreamFailure as error:
                if meter is not None:
                    meter.record(reached=error.reached, ratelimit=None)
                raise
            if meter is not None:
                meter.record(reached=True, ratelimit=answer.ratelimit)
            return answer

        answer = call_with_retries(
            attempt,
            _UPSTREAM_RETRIES if call.idempotent else _CREATING_RETRIES,
            self._retry,
            sleep=self._sleep,
            clock=self._clock,
            deadline=deadline,
            # the org's budget must have room for each retry, else the last answer stands
            may_retry=meter.may_retry if meter is not None else None,
        )
        if answer.status >= 500:
            raise _server_error(answer)
        # A 429: Cloudflare is limiting the org token; the service opens the cool-down.
        return answer

    def _attempt(
        self,
        call: UpstreamCall,
        token: SecretStr,
        deadline: float,
        started: float,
        usable: Callable[[UpstreamEnvelope], bool],
    ) -> UpstreamAnswer:
        remaining = deadline - self._clock()
        url = self._base_url + call.path + (f"?{call.query}" if call.query else "")
        http = self._http()
        try:
            response = http.request(
                call.method,
                url,
                content=call.body or None,
                headers={**call.headers, "Authorization": f"Bearer {token.get_secret_value()}"},
                # Never wait past the deadline, whatever the client's own read timeout.
                timeout=_within(http.timeout, remaining),
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
        envelope = _check_trustworthy(response.status_code, answer_body, usable)
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


def _throttled_or_failed(answer: UpstreamAnswer) -> bool:
    return answer.status == 429 or answer.status >= 500


def _retry_after(answer: UpstreamAnswer) -> float | None:
    """Cloudflare's advice; `0` is none (retrying at once, in step with every other instance,
    is what the jittered backoff avoids)."""
    return parse_retry_after(answer.headers.get("retry-after"), clock=time.time) or None


# Connection errors, timeouts and garbage (an UpstreamFailure), 429 and 5xx are retried.
_UPSTREAM_RETRIES = RetryRule(
    retryable=_throttled_or_failed, retry_after=_retry_after, errors=(UpstreamFailure,)
)


def _never_sent(error: Exception) -> bool:
    return isinstance(error, UpstreamFailure) and not error.reached


# A call that creates something is sent again only when Cloudflare surely did not act on it: the
# first attempt never left, or Cloudflare's 429 refused it. A timeout or a 5xx may have created
# the version already; the caller sees the failure and decides.
_CREATING_RETRIES = RetryRule(
    retryable=lambda answer: answer.status == 429,
    retry_after=_retry_after,
    errors=(UpstreamFailure,),
    retryable_error=_never_sent,
)


def _server_error(answer: UpstreamAnswer) -> UpstreamFailure:
    return UpstreamFailure(f"Cloudflare answered {answer.status}", status=502)


def _without_token(body: bytes, token: SecretStr) -> bytes:
    """Cloudflare never echoes the token, but the gateway must not rely on that."""
    return redact_body(body, token.get_secret_value())


def _usable_session(envelope: UpstreamEnvelope) -> bool:
    return envelope.success and is_upload_session(envelope.result)


def _successful(envelope: UpstreamEnvelope) -> bool:
    return envelope.success


def _check_trustworthy(
    status: int, body: bytes, usable: Callable[[UpstreamEnvelope], bool]
) -> UpstreamEnvelope:
    """5xx and 429 bodies are not judged here: those answers are retried or backed off."""
    envelope = parse_envelope(body)
    if status >= 500 or status == 429:
        return envelope or UpstreamEnvelope(success=False, error_codes=(), result=None)
    if envelope is None:
        raise UpstreamFailure(
            f"Cloudflare answered {status} with a body that is not an API envelope"
        )
    if 200 <= status < 300 and not usable(envelope):
        what = "a usable upload session" if usable is _usable_session else "success"
        raise UpstreamFailure(f"Cloudflare answered {status} without {what}")
    return envelope
