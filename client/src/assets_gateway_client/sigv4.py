"""SigV4 request signing for httpx, so any httpx client (the `cloudflare` SDK's included) can call
the gateway's API Gateway REST API, which uses AWS_IAM authorization.

    client = httpx.Client(auth=SigV4Auth.from_session(boto3.Session(), "us-east-1"))

Only headers that survive proxies and httpx untouched are signed: `host`, `content-type` (when
present) and `x-amz-*`. The exact body bytes are hashed into the signature. Any Authorization
header already on the request (the `cloudflare` SDK always sets `Bearer ...`) is replaced.
"""

from __future__ import annotations

from collections.abc import Generator

import boto3
import httpx
from botocore.auth import SigV4Auth as _BotocoreSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["SigV4Auth"]

_SIGNATURE_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token")


def _is_signable(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("host", "content-type") or lowered.startswith("x-amz-")


class SigV4Auth(httpx.Auth):
    """httpx authentication that signs every request with AWS Signature Version 4."""

    requires_request_body = True

    def __init__(self, credentials: Credentials, region: str, service: str = "execute-api") -> None:
        if not region:
            raise ValueError("SigV4Auth needs a region (the API's region, e.g. 'us-east-1')")
        self._credentials = credentials
        self.region = region
        self.service = service

    @classmethod
    def from_session(cls, session: boto3.Session, region: str | None = None) -> SigV4Auth:
        """Sign with the session's credentials (refreshed by botocore when they are temporary)."""
        credentials = session.get_credentials()
        if credentials is None:
            raise ValueError("the boto3 session has no AWS credentials to sign with")
        resolved_region = region or session.region_name
        if not resolved_region:
            raise ValueError("no region given and the boto3 session has none configured")
        return cls(credentials, resolved_region)

    def sign(self, request: httpx.Request) -> None:
        """Sign `request` in place (its body must already be read)."""
        # Frozen per request: refreshable (assumed-role) credentials may rotate between calls,
        # and key, secret and token must come from the same generation.
        frozen = self._credentials.get_frozen_credentials()
        for name in _SIGNATURE_HEADERS:
            request.headers.pop(name, None)
        to_sign = {name: value for name, value in request.headers.items() if _is_signable(name)}
        if "host" not in to_sign:  # httpx always sets Host; keep botocore's fallback honest
            to_sign["host"] = request.url.netloc.decode("ascii")
        aws_request = AWSRequest(
            method=request.method,
            url=str(request.url),
            headers=to_sign,
            data=request.content,
        )
        _BotocoreSigV4Auth(frozen, self.service, self.region).add_auth(aws_request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = aws_request.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
