"""What the signing proxy decides for each request, apart from any I/O (pure): where it goes, which
headers travel each way, when a body is gzipped, and the proxy's own answers in Cloudflare's v4
envelope.

Asset uploads (`POST /client/v4/accounts/{a}/workers/assets/upload`, the bucket form, and
`.../upload/{hash}`, the single-asset form) carry the session JWT and go straight to Cloudflare:
they need no org token and may exceed API Gateway's 10 MB payload limit. Everything else under
`/client/v4` goes to the gateway, signed with the caller's AWS identity.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from enum import Enum

__all__ = [
    "API_PREFIX",
    "GZIP_THRESHOLD_BYTES",
    "Upstream",
    "envelope",
    "forwarded_request_headers",
    "forwarded_response_headers",
    "gzip_body",
    "should_gzip",
    "upstream_for",
]

API_PREFIX = "/client/v4"
# Bodies for the gateway are gzipped from this size on: a 100,000-entry manifest (~10 MB of
# JSON) would not pass API Gateway's 10 MB limit otherwise, and shrinks about tenfold.
GZIP_THRESHOLD_BYTES = 1024 * 1024
_UPLOAD_PATH = re.compile(r"^/client/v4/accounts/[^/]+/workers/assets/upload(?:/[^/]+)?/?$")

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded; plus what the proxy
# recomputes itself (Host for the upstream's URL, the length of the body it sends).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "host",
        "content-length",
    }
)

# How Cloudflare's API takes credentials: a token (Authorization: Bearer), or the global API key
# (X-Auth-Email + X-Auth-Key) or a service key, which wrangler sends when they are set.
_CLOUDFLARE_CREDENTIALS = frozenset(
    {"authorization", "x-auth-key", "x-auth-email", "x-auth-user-service-key"}
)


class Upstream(Enum):
    """Where a request goes."""

    GATEWAY = "gateway"  # signed with SigV4, the client's Authorization dropped
    CLOUDFLARE = "cloudflare"  # unsigned, the session JWT kept


def upstream_for(method: str, path: str) -> Upstream | None:
    """The upstream for a request to `path` (raw, without the query); None outside /client/v4."""
    if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
        return None
    if method == "POST" and _UPLOAD_PATH.match(path):
        return Upstream.CLOUDFLARE
    return Upstream.GATEWAY


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    """Header names the `Connection` header declares hop-by-hop (RFC 9110 §7.6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }


def forwarded_request_headers(
    headers: Iterable[tuple[str, str]], upstream: Upstream
) -> list[tuple[str, str]]:
    """The client's headers that travel on. Toward the gateway its Cloudflare credentials (a
    placeholder token, or a real key the gateway has no use for) and any `X-Amz-*` stay behind
    too: the proxy signs in their place."""
    pairs = list(headers)
    dropped = _HOP_BY_HOP | _connection_tokens(pairs)
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        lowered = name.lower()
        if lowered in dropped:
            continue
        if upstream is Upstream.GATEWAY and (
            lowered in _CLOUDFLARE_CREDENTIALS or lowered.startswith("x-amz-")
        ):
            continue
        kept.append((name, value))
    return kept


def forwarded_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's answer headers that reach the client (the length is the proxy's own)."""
    pairs = list(headers)
    dropped = _HOP_BY_HOP | _connection_tokens(pairs)
    return [(name, value) for name, value in pairs if name.lower() not in dropped]


def should_gzip(
    upstream: Upstream, body_bytes: int, headers: Iterable[tuple[str, str]], threshold: int
) -> bool:
    """Gzip a body for the gateway from `threshold` bytes on, unless the client encoded it."""
    if upstream is not Upstream.GATEWAY or body_bytes < threshold:
        return False
    return not any(
        name.lower() == "content-encoding" and value.strip().lower() not in ("", "identity")
        for name, value in headers
    )


def gzip_body(body: bytes) -> bytes:
    """A body as sent with `Content-Encoding: gzip` (no timestamp: the same body, the same
    bytes)."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def envelope(code: int, message: str) -> bytes:
    """Cloudflare's v4 error envelope, for the proxy's own answers."""
    document = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return json.dumps(document).encode("utf-8")
