"""Where the org's Cloudflare token comes from, as the session door asks for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pydantic import SecretStr


class TokenSource(Protocol):
    """The token, cached; `force_refresh` reads it again (after a rotation). Raises the domain's
    `TokenUnavailable` when it cannot be had."""

    def get(self, *, force_refresh: bool = False) -> SecretStr: ...
