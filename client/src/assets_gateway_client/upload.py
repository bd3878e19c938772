"""From a build folder to uploaded Workers assets: the whole direct-upload flow via the gateway.

    from assets_gateway_client.upload import upload_directory

    result = upload_directory(
        "dist",
        account_id="0123456789abcdef0123456789abcdef",
        script_name="web-storefront",
    )  # the gateway's URL from $ASSETS_GATEWAY_URL, as for `assets-gateway upload`
    print(result.jwt)  # the completion token: the script upload's `assets.jwt`

1. The folder becomes a manifest exactly as wrangler builds it (`manifest_builder`); a file too
   large stops everything before any call.
2. The gateway creates the upload session (SigV4-signed, with the caller's AWS identity; the
   gateway adds the org's Cloudflare token: `gateway`). Each session request carries a fresh
   `Idempotency-Key`, reused by its own retries, so a retry after a lost answer is not charged
   twice.
3. Only the buckets Cloudflare asks for are uploaded, **directly to Cloudflare** with the
   session's JWT, in parallel (`uploader`); a fresh session is asked for once when the JWT
   expires midway.
4. 429, 5xx and connection failures are retried (3 times, 1 s / 2 s / 4 s, or the answer's
   `Retry-After` when it is at most 60 s; a longer wait is reported instead of slept:
   `http_retry`).
5. The completion JWT comes from Cloudflare's 201, or is the session's own JWT when nothing
   needed uploading.

The gateway's URL and Cloudflare's are read as the command line reads them (`environment`):
`gateway_url=` else $ASSETS_GATEWAY_URL; `cloudflare_api_url=` else $CLOUDFLARE_API_URL, else
Cloudflare's API.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Required, TypedDict, Unpack

import httpx

from assets_gateway_client import environment
from assets_gateway_client.gateway import GATEWAY_TIMEOUT, GatewayClient
from assets_gateway_client.http_retry import MAX_RETRIES, Clock, Retrying, Sleep
from assets_gateway_client.manifest_builder import AssetManifest, build_manifest
from assets_gateway_client.signing import gateway_auth
from assets_gateway_client.uploader import UploadProgress, UploadResult, upload_assets

if TYPE_CHECKING:
    import os

    import boto3

__all__ = ["UploadOptions", "upload_directory", "upload_manifest"]


class UploadOptions(TypedDict, total=False):
    """`upload_manifest`'s keyword arguments, which `upload_directory` passes on."""

    account_id: Required[str]
    script_name: Required[str]
    gateway_url: str | None
    session: boto3.Session | None
    auth: httpx.Auth | None
    region: str | None
    dispatch_namespace: str | None
    cloudflare_api_url: str | None
    concurrency: int | None
    progress: Callable[[UploadProgress], None] | None
    dry_run: bool
    sleep: Sleep
    clock: Clock
    max_retries: int


def upload_manifest(
    manifest: AssetManifest,
    *,
    account_id: str,
    script_name: str,
    gateway_url: str | None = None,
    session: boto3.Session | None = None,
    auth: httpx.Auth | None = None,
    region: str | None = None,
    dispatch_namespace: str | None = None,
    cloudflare_api_url: str | None = None,
    concurrency: int | None = None,
    progress: Callable[[UploadProgress], None] | None = None,
    dry_run: bool = False,
    sleep: Sleep = time.sleep,
    clock: Clock = time.time,
    max_retries: int = MAX_RETRIES,
) -> UploadResult:
    """`upload_directory` for a manifest already built (see there)."""
    started = time.perf_counter()
    gateway_url = environment.gateway_url(gateway_url)
    cloudflare_api_url = environment.cloudflare_api_url(cloudflare_api_url)
    body = json.dumps(manifest.to_request_body(), separators=(",", ":")).encode("utf-8")
    signer = auth if auth is not None else gateway_auth(gateway_url, session=session, region=region)
    with httpx.Client(auth=signer, timeout=GATEWAY_TIMEOUT) as http:
        gateway = GatewayClient(
            http,
            gateway_url,
            account_id,
            script_name,
            dispatch_namespace,
            Retrying(sleep, clock, max_retries),
        )
        if dry_run:
            return UploadResult(
                jwt=None,
                entries=manifest.entries,
                total_bytes=manifest.total_bytes,
                uploaded_files=0,
                uploaded_bytes=0,
                sessions=0,
                upload_requests=0,
                retries=gateway.retrying.retries,
                single_asset_uploads=False,
                duration_s=time.perf_counter() - started,
                dry_run=gateway.dry_run(body),
            )
        result = upload_assets(
            manifest,
            open_session=lambda: gateway.create_session(body),
            account_id=account_id,
            cloudflare_api_url=cloudflare_api_url,
            concurrency=concurrency,
            progress=progress,
            retrying=gateway.retrying,  # one count of the retries, gateway and Cloudflare
        )
    return dataclasses.replace(result, duration_s=time.perf_counter() - started)


def upload_directory(
    directory: str | os.PathLike[str] | Path, **options: Unpack[UploadOptions]
) -> UploadResult:
    """Upload a build folder's assets for `script_name` and return the completion JWT.

    Options (keywords): `account_id` and `script_name` (required); `gateway_url`, the gateway's
    base URL ending with `/client/v4` (default: $ASSETS_GATEWAY_URL). Requests to it are signed
    with `auth` if given, else with SigV4 from `session` (default: boto3's credential chain) for
    `region` (default: the region in the gateway URL, else the session's, else $AWS_REGION).
    `cloudflare_api_url` is where files go (default: $CLOUDFLARE_API_URL, else the real API).
    `dispatch_namespace` for Workers for Platforms; `concurrency` bounds parallel uploads;
    `progress` is called after each upload request; `dry_run` asks the gateway for its decision
    and uploads nothing; `sleep`, `clock` and `max_retries` tune the retries.

    Raises ManifestError (the folder, before any call), GatewayError (session refused, with
    the gateway's codes and reasons), CloudflareUploadError or UploadError (no gateway URL, no
    credentials, a network failure...).
    """
    return upload_manifest(build_manifest(directory), **options)
