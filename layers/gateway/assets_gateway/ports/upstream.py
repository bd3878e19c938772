"""Cloudflare as the doors call it: an upload-session call or any governed call forwarded as
the caller made it, its answer, and the meter through which the org's budget counts every
attempt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class UpstreamCall:
    """One call as the deploy door forwards it: `path` is under Cloudflare's `/client/v4`, already
    percent-encoded, `query` the raw query string; `headers` give the body its meaning (never
    an Authorization: the adapter adds the org token)."""

    method: str
    path: str
    query: str = ""
    body: bytes = field(default=b"", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Whether sending it twice is harmless: a call that creates something (a version, a
    # deployment) is sent again only when the first attempt never left.
    idempotent: bool = True


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


class UpstreamForwarder(Protocol):
    """The deploy door's Cloudflare: any governed call, forwarded as judged; answers and
    failures as `Upstream`'s."""

    def forward(
        self, call: UpstreamCall, token: SecretStr, meter: AttemptMeter | None
    ) -> UpstreamAnswer: ...
