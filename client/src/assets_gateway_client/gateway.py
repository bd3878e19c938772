"""The gateway's session route, as the team client calls it: upload sessions and dry runs for one
target, each request with a fresh `Idempotency-Key` kept across its own retries.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from assets_gateway_client.answers import ApiAnswer, GatewayError, UploadError, explain
from assets_gateway_client.http_retry import USER_AGENT, Retrying

DRY_RUN_HEADER = "X-Assets-Gateway-Dry-Run"
IDEMPOTENCY_HEADER = "Idempotency-Key"
GATEWAY_TIMEOUT = httpx.Timeout(35.0, connect=10.0)  # API Gateway answers within 29 s


def decode_jwt_payload(jwt: str) -> dict[str, Any]:
    """The claims of a JWT, read without verifying it (as wrangler does); {} if unreadable."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1]
    try:
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True)
class UploadSession:
    """An assets upload session: its JWT and the buckets of hashes Cloudflare still needs."""

    jwt: str
    buckets: tuple[tuple[str, ...], ...]
    claims: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: object) -> UploadSession:
        """From the `result` of Cloudflare's envelope: `{"jwt": str, "buckets": [[hash...]...]}`."""
        if not isinstance(result, dict) or not isinstance(result.get("jwt"), str):
            raise UploadError("the session answer holds no JWT")
        jwt: str = result["jwt"]
        buckets = result.get("buckets") or []
        if not isinstance(buckets, list) or not all(
            isinstance(bucket, list) and all(isinstance(h, str) for h in bucket)
            for bucket in buckets
        ):
            raise UploadError("the session answer's buckets are not lists of hashes")
        return cls(
            jwt=jwt,
            buckets=tuple(tuple(bucket) for bucket in buckets if bucket),
            claims=decode_jwt_payload(jwt),
        )

    @property
    def hashes(self) -> list[str]:
        return [file_hash for bucket in self.buckets for file_hash in bucket]

    @property
    def single_asset_uploads(self) -> bool:
        return self.claims.get("wrangler_single_asset_uploads") is True

    @property
    def expires_at(self) -> float | None:
        exp = self.claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None

    def edge_kv_concurrency(self) -> int | None:
        value = self.claims.get("edge_kv_upload_concurrency")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
            return int(value)
        return None


@dataclass(frozen=True)
class DryRunDecision:
    """The gateway's answer to a dry run: would this very request be served?"""

    allowed: bool
    team: str | None
    entries: int | None
    bytes: int | None
    reasons: tuple[dict[str, Any], ...]
    quotas: tuple[dict[str, Any], ...]

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> DryRunDecision:
        def optional_int(value: object) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        team = result.get("team")
        return cls(
            allowed=result.get("allowed") is True,
            team=team if isinstance(team, str) else None,
            entries=optional_int(result.get("entries")),
            bytes=optional_int(result.get("bytes")),
            reasons=tuple(r for r in result.get("reasons") or [] if isinstance(r, dict)),
            quotas=tuple(q for q in result.get("quotas") or [] if isinstance(q, dict)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "team": self.team,
            "entries": self.entries,
            "bytes": self.bytes,
            "reasons": list(self.reasons),
            "quotas": list(self.quotas),
        }


def _session_path(account_id: str, script_name: str, dispatch_namespace: str | None) -> str:
    account, script = quote(account_id, safe=""), quote(script_name, safe="")
    if dispatch_namespace is None:
        return f"/accounts/{account}/workers/scripts/{script}/assets-upload-session"
    namespace = quote(dispatch_namespace, safe="")
    return (
        f"/accounts/{account}/workers/dispatch/namespaces/{namespace}"
        f"/scripts/{script}/assets-upload-session"
    )


@dataclass
class GatewayClient:
    """Session requests to the gateway for one target, signed by `http`'s auth.

    Each request carries a fresh `Idempotency-Key`, kept across its own retries (429, 5xx,
    network failures), so a retry after a lost answer gets the same session, uncharged.
    """

    http: httpx.Client
    gateway_url: str
    account_id: str
    script_name: str
    dispatch_namespace: str | None = None
    retrying: Retrying = field(default_factory=Retrying)

    @property
    def url(self) -> str:
        path = _session_path(self.account_id, self.script_name, self.dispatch_namespace)
        return self.gateway_url.rstrip("/") + path

    def create_session(self, body: bytes) -> UploadSession:
        """A real session: Cloudflare's JWT and the buckets it still needs."""
        return UploadSession.from_result(self._post(body, dry_run=False))

    def dry_run(self, body: bytes) -> DryRunDecision:
        """The gateway's decision on this very request; nothing forwarded, nothing charged."""
        result = self._post(body, dry_run=True)
        if not isinstance(result, dict) or result.get("dry_run") is not True:
            raise UploadError(
                "the gateway answered the dry run with a real session or an unknown body: "
                f"it may predate dry runs ({DRY_RUN_HEADER})"
            )
        return DryRunDecision.from_result(result)

    def _post(self, body: bytes, *, dry_run: bool) -> Any:
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: str(uuid.uuid4()),
            "User-Agent": USER_AGENT,
        }
        if dry_run:
            headers[DRY_RUN_HEADER] = "1"
        url = self.url
        response = self.retrying.send(
            lambda: self.http.post(url, content=body, headers=headers),
            what=f"cannot reach the gateway at {self.gateway_url}",
        )
        answer = ApiAnswer.read(response, clock=self.retrying.clock)
        if not answer.ok:
            what = "the gateway's dry run failed" if dry_run else "no upload session"
            message = explain(what, answer)
            if answer.status == 403 and answer.has_code(10000):
                message += (
                    "\n  (API Gateway refused the call: check the gateway URL, which ends with "
                    "/client/v4, the AWS credentials and the region they are signed for)"
                )
            raise GatewayError(message, answer)
        return answer.result
