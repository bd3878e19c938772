"""The upstream client: one call to Cloudflare's Create Assets Upload Session operation.

Cloudflare's own answers (a session, or its 4xx refusal) are returned byte for byte; anything we
cannot trust (transport errors, timeouts, 5xx, non-envelope bodies, a 2xx without a usable
session) becomes an `UpstreamFailure`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from assets_gateway.envelope import is_upload_session, parse_envelope
from assets_gateway.errors import UpstreamFailure
from assets_gateway.policy import SessionTarget

# Headers of Cloudflare's answer that mean something to the caller. Cloudflare's Ratelimit
# headers describe the org token's budget, not the caller's, so they stay here.
_PASS_THROUGH_HEADERS = ("content-type", "cf-ray", "retry-after")
_REDACTED = b"[REDACTED]"


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes
    headers: dict[str, str]
    elapsed_ms: float


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


class CloudflareClient:
    def __init__(self, *, base_url: str, http: httpx.Client) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = http

    def create_upload_session(
        self, target: SessionTarget, body: bytes, token: SecretStr
    ) -> UpstreamAnswer:
        started = time.perf_counter()
        try:
            response = self._http.post(
                self._base_url + session_path(target),
                content=body,
                headers={
                    "Authorization": f"Bearer {token.get_secret_value()}",
                    "Content-Type": "application/json",
                },
            )
        except httpx.TimeoutException:
            raise UpstreamFailure("Cloudflare did not answer in time", status=504) from None
        except httpx.TransportError:
            raise UpstreamFailure("Cloudflare is unreachable", status=502) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        answer_body = _without_token(response.content, token)
        _check_trustworthy(response.status_code, answer_body)
        headers = {
            name: response.headers[name]
            for name in _PASS_THROUGH_HEADERS
            if name in response.headers
        }
        return UpstreamAnswer(response.status_code, answer_body, headers, elapsed_ms)


def _without_token(body: bytes, token: SecretStr) -> bytes:
    """Cloudflare never echoes the token, but the gateway must not rely on that."""
    secret = token.get_secret_value().encode()
    return body.replace(secret, _REDACTED) if secret in body else body


def _check_trustworthy(status: int, body: bytes) -> None:
    envelope = parse_envelope(body)
    if envelope is None:
        raise UpstreamFailure(
            f"Cloudflare answered {status} with a body that is not an API envelope"
        )
    if status >= 500:
        raise UpstreamFailure(f"Cloudflare answered {status}", status=502)
    if 200 <= status < 300 and not (envelope.success and is_upload_session(envelope.result)):
        raise UpstreamFailure(f"Cloudflare answered {status} without a usable upload session")
