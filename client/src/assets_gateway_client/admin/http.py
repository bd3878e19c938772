"""The admin door over HTTP: its routes at the stage root, SigV4-signed requests, envelopes read
back, and the reads retried (`assets_gateway_common.retry`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Required, TypedDict, Unpack

import httpx

from assets_gateway_client.admin.errors import AdminRefused
from assets_gateway_client.answers import ApiAnswer, Locate
from assets_gateway_client.http_retry import USER_AGENT
from assets_gateway_common.retry import RetryRule, RetrySchedule, call_with_retries

__all__ = ["TIMEOUT", "AdminClient", "Request", "Sleep", "admin_base_url"]
CLIENT_PREFIX = "/client/v4"
# API Gateway answers within 29 s; a simulation over 30 days may use most of that.
TIMEOUT = httpx.Timeout(35.0, connect=10.0)
# Reads are retried twice: 1 s, 2 s, or a Retry-After of at most 10 s (an admin is waiting).
_READS = RetrySchedule(attempts=3, base_delay_seconds=1.0, max_wait_seconds=10.0)
_RETRYABLE_STATUS = frozenset({429, 502, 503})
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)

Sleep = Callable[[float], None]


class Request(TypedDict, total=False):
    """One request's parts besides its method and path."""

    what: Required[str]  # what the request does, for messages: "reading the policy"
    params: Mapping[str, str | int] | None
    body: Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    retry: bool  # reads only: a publish or a grant sent twice is not the same thing


def admin_base_url(gateway_url: str) -> str:
    """The stage root where the admin routes live: the teams' base URL without `/client/v4`."""
    base = gateway_url.strip().rstrip("/")
    if base.endswith(CLIENT_PREFIX):
        base = base[: -len(CLIENT_PREFIX)]
    return base


def _worth_retrying(answer: ApiAnswer) -> bool:
    if answer.status not in _RETRYABLE_STATUS:
        return False
    # A 503 without Retry-After (nothing published, 19012): asking again changes nothing.
    return not (answer.status == 503 and answer.retry_after is None)


def _advised_wait(answer: ApiAnswer) -> float | None:
    return answer.retry_after


_READ_RETRIES = RetryRule(
    retryable=_worth_retrying, retry_after=_advised_wait, errors=_RETRYABLE_ERRORS
)


@dataclass
class AdminClient:
    """Calls the admin door and reads its envelopes; non-2xx answers raise AdminRefused.

    Only reads (GET, validate, simulate, explain) are retried, on connection failures, 429,
    502 and 503 carrying Retry-After: a publish or a grant sent twice is not the same thing."""

    http: httpx.Client
    base_url: str
    sleep: Sleep = time.sleep
    clock: Callable[[], float] = time.time  # wall clock: a Retry-After may be a date
    reads: RetrySchedule = _READS

    def call(
        self, method: str, path: str, *, locate: Locate | None = None, **request: Unpack[Request]
    ) -> ApiAnswer:
        """The 2xx answer; AdminRefused for any other (its pointers located with `locate`)."""
        answer = self.send(method, path, **request)
        if not answer.ok:
            refusal = AdminRefused(request["what"], answer)
            refusal.locate = locate
            raise refusal
        return answer

    def send(self, method: str, path: str, **request: Unpack[Request]) -> ApiAnswer:
        """The answer whatever its status; AdminRefused only when there is none."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        content = None
        body = request.get("body")
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        headers.update(request.get("headers") or {})
        url = self.base_url + path

        def attempt() -> ApiAnswer:
            response = self.http.request(
                method, url, params=request.get("params"), content=content, headers=headers
            )
            return ApiAnswer.read(response, clock=self.clock)

        schedule = self.reads if request.get("retry") else replace(self.reads, attempts=1)
        try:
            return call_with_retries(attempt, _READ_RETRIES, schedule, sleep=self.sleep)
        except _RETRYABLE_ERRORS as error:
            detail = f"cannot reach {url}: {type(error).__name__}: {error}"
            raise AdminRefused(request["what"], None, detail=detail) from error
        except httpx.HTTPError as error:
            detail = f"{url}: {type(error).__name__}: {error}"
            raise AdminRefused(request["what"], None, detail=detail) from error
