"""Cloudflare as the session door calls it: one upload-session call, its answer, and the meter
through which the org's budget counts every attempt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pydantic import SecretStr

    from assets_gateway.domain.policy import SessionTarget


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes
    headers: dict[str, str]
    elapsed_ms: float
    error_codes: tuple[int, ...] = ()
    # Cloudflare's `Ratelimit` header: the org token's budget, for the gateway, not the caller.
    ratelimit: str | None = None


class AttemptMeter(Protocol):
    """Told of every attempt, asked before every retry: the org's Cloudflare budget counts
    each request that reached Cloudflare, retries included, and must allow each retry."""

    def may_retry(self) -> bool: ...

    def record(self, *, reached: bool, ratelimit: str | None) -> None: ...


class Upstream(Protocol):
    """Cloudflare's own answers (a session or its 4xx) come back as they are; anything that
    cannot be trusted raises the domain's `UpstreamFailure` (or `CircuitOpen`)."""

    def create_upload_session(
        self, target: SessionTarget, body: bytes, token: SecretStr, meter: AttemptMeter | None
    ) -> UpstreamAnswer: ...
