"""From a build folder to uploaded Workers assets: the whole direct-upload flow via the gateway.

    from assets_gateway_client.upload import upload_directory

    result = upload_directory(
        "dist",
        account_id="0123456789abcdef0123456789abcdef",
        script_name="web-storefront",
        gateway_url="https://<api-id>.execute-api.us-east-1.amazonaws.com/v1/client/v4",
    )
    print(result.jwt)  # the completion token: the script upload's `assets.jwt`

1. The folder becomes a manifest exactly as wrangler builds it (`manifest_builder`); a file too
   large stops everything before any call.
2. The gateway creates the upload session (SigV4-signed, with the caller's AWS identity; the
   gateway adds the org's Cloudflare token). Each session request carries a fresh
   `Idempotency-Key`, reused by its own retries, so a retry after a lost answer is not charged
   twice.
3. Only the buckets Cloudflare asks for are uploaded, **directly to Cloudflare** with the
   session's JWT (`POST /accounts/{id}/workers/assets/upload?base64=true`, one multipart part
   per file named by its hash, holding its base64, typed with the file's content type or
   `application/null`), in parallel on a bounded thread pool. When the JWT carries
   `wrangler_single_asset_uploads`, each file goes raw to `.../workers/assets/upload/{hash}`
   instead, as wrangler does. Every file is re-read and its hash checked before it is sent: a
   file changed since step 1 is never stored under the old hash.
4. 429, 5xx and connection failures are retried (3 times, 1 s / 2 s / 4 s, or the answer's
   `Retry-After` when it is at most 60 s; a longer wait is reported instead of slept).
5. When the session JWT has expired (it lives an hour: by its `exp`, or a 401 from Cloudflare),
   a fresh session is created once and only what is still missing is uploaded.
6. The completion JWT comes from Cloudflare's 201, or is the session's own JWT when nothing
   needed uploading.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from assets_gateway_client.content_types import NULL_CONTENT_TYPE
from assets_gateway_client.manifest_builder import (
    Asset,
    AssetManifest,
    build_manifest,
    hash_encoded,
    node_extension,
)

if TYPE_CHECKING:
    import os

    import boto3

    from assets_gateway_client.sigv4 import SigV4Auth

__all__ = [
    "DEFAULT_CLOUDFLARE_API_URL",
    "CloudflareUploadError",
    "DryRunDecision",
    "GatewayClient",
    "GatewayError",
    "UploadError",
    "UploadProgress",
    "UploadResult",
    "UploadSession",
    "decode_jwt_payload",
    "upload_assets",
    "upload_directory",
    "upload_manifest",
]

DEFAULT_CLOUDFLARE_API_URL = "https://api.cloudflare.com/client/v4"
DRY_RUN_HEADER = "X-Assets-Gateway-Dry-Run"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "assets-gateway-client/0.1"
MAX_RETRIES = 3
MAX_RETRY_AFTER_S = 60.0
BACKOFF_S = 1.0
BULK_CONCURRENCY = 3  # wrangler's BULK_UPLOAD_CONCURRENCY
SINGLE_ASSET_CONCURRENCY = 50  # wrangler's default when the JWT names no edge_kv concurrency
MAX_SESSIONS = 2  # the first, and one fresh session when its JWT expires
_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", re.IGNORECASE)
_GATEWAY_TIMEOUT = httpx.Timeout(35.0, connect=10.0)  # API Gateway answers within 29 s
_UPLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # a bucket can hold tens of MiB

Sleep = Callable[[float], None]
Clock = Callable[[], float]


# ----------------------------------------------------------------------------- errors


class UploadError(Exception):
    """The upload did not complete. The message is written for the person who ran it."""


@dataclass(frozen=True)
class _ApiAnswer:
    status: int
    errors: tuple[dict[str, Any], ...]
    messages: tuple[dict[str, Any], ...]
    request_id: str | None
    retry_after: float | None
    text: str


class GatewayError(UploadError):
    """The gateway (or Cloudflare behind it) refused or failed to create the session."""

    def __init__(self, message: str, answer: _ApiAnswer) -> None:
        super().__init__(message)
        self.status = answer.status
        self.errors = list(answer.errors)
        self.messages = list(answer.messages)
        self.request_id = answer.request_id
        self.retry_after = answer.retry_after

    @property
    def code(self) -> int | None:
        code = self.errors[0].get("code") if self.errors else None
        return code if isinstance(code, int) else None


class CloudflareUploadError(UploadError):
    """Cloudflare refused or failed an upload request."""

    def __init__(self, message: str, answer: _ApiAnswer) -> None:
        super().__init__(message)
        self.status = answer.status
        self.errors = list(answer.errors)
        self.retry_after = answer.retry_after


class _SessionExpired(Exception):
    """The session JWT is past its `exp`, or Cloudflare answered 401 to it."""


# ----------------------------------------------------------------------------- records


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
class UploadProgress:
    """Where the upload stands; handed to the `progress` callback after each request."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


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


@dataclass(frozen=True)
class UploadResult:
    """What an upload did. `jwt` is the completion token (None for a dry run)."""

    jwt: str | None
    entries: int  # files in the manifest
    total_bytes: int  # their bytes
    uploaded_files: int  # files sent to Cloudflare (distinct contents)
    uploaded_bytes: int
    sessions: int  # sessions created: 1, or 2 when the first JWT expired
    upload_requests: int  # upload requests that succeeded
    retries: int  # retried requests (gateway and Cloudflare)
    single_asset_uploads: bool
    duration_s: float
    dry_run: DryRunDecision | None = None

    @property
    def already_uploaded(self) -> int:
        """Files of the manifest that Cloudflare already held (or duplicates of sent ones)."""
        return self.entries - self.uploaded_files

    def to_json(self) -> dict[str, Any]:
        return {
            "jwt": self.jwt,
            "entries": self.entries,
            "bytes": self.total_bytes,
            "uploaded_files": self.uploaded_files,
            "uploaded_bytes": self.uploaded_bytes,
            "already_uploaded": self.already_uploaded,
            "sessions": self.sessions,
            "upload_requests": self.upload_requests,
            "retries": self.retries,
            "mode": "single-asset" if self.single_asset_uploads else "buckets",
            "duration_s": round(self.duration_s, 3),
            "dry_run": self.dry_run.to_json() if self.dry_run is not None else None,
        }


# ----------------------------------------------------------------------------- HTTP helpers


def _retry_after_seconds(value: str | None, clock: Clock) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock())


def _answer(response: httpx.Response, clock: Clock) -> _ApiAnswer:
    """The v4 envelope's errors and messages, tolerating `null`s and non-JSON bodies."""
    errors: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    if isinstance(envelope, dict):
        errors = [e for e in envelope.get("errors") or [] if isinstance(e, dict)]
        messages = [m for m in envelope.get("messages") or [] if isinstance(m, dict)]
    return _ApiAnswer(
        status=response.status_code,
        errors=tuple(errors),
        messages=tuple(messages),
        request_id=response.headers.get("x-request-id"),
        retry_after=_retry_after_seconds(response.headers.get("retry-after"), clock),
        text=response.text[:300] if envelope is None else "",
    )


def _describe(item: Mapping[str, Any]) -> str:
    code = item.get("code")
    text = f"{code} {item.get('message', '')}" if code is not None else str(item.get("message"))
    source = item.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else item.get("pointer")
    return f"{text} ({pointer})" if pointer else text


def _explain(what: str, answer: _ApiAnswer) -> str:
    lines = [f"{what}: HTTP {answer.status}"]
    if answer.errors:
        lines[0] += " — " + "; ".join(_describe(e) for e in answer.errors)
    elif answer.text:
        lines[0] += f" — {answer.text!r}"
    lines.extend(f"  - {_describe(m)}" for m in answer.messages)
    if answer.retry_after is not None and answer.status == 429:
        lines.append(f"  retry after {answer.retry_after:.0f} s")
    if answer.request_id:
        lines.append(f"  request id {answer.request_id}")
    return "\n".join(lines)


@dataclass
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    retries: int = 0

    def retried(self) -> None:
        with self.lock:
            self.retries += 1


_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _send_with_retries(
    send: Callable[[], httpx.Response],
    *,
    what: str,
    counters: _Counters,
    sleep: Sleep,
    clock: Clock,
    max_retries: int,
    stop: threading.Event | None = None,
) -> httpx.Response:
    """Send, retrying 429, 5xx and connection failures. An answer that is still retryable
    after the last attempt, or asks to wait longer than MAX_RETRY_AFTER_S, is returned."""
    attempt = 0
    while True:
        try:
            response = send()
        except _RETRYABLE_ERRORS as error:
            if attempt >= max_retries or (stop is not None and stop.is_set()):
                raise UploadError(
                    f"{what}: {type(error).__name__}: {error or 'no answer'} "
                    f"(after {attempt + 1} attempt{'s' if attempt else ''})"
                ) from error
            delay = BACKOFF_S * 2**attempt
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            if attempt >= max_retries or (stop is not None and stop.is_set()):
                return response
            retry_after = _retry_after_seconds(response.headers.get("retry-after"), clock)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER_S:
                return response
            delay = retry_after if retry_after is not None else BACKOFF_S * 2**attempt
        counters.retried()
        sleep(delay)
        attempt += 1


def _json_result(response: httpx.Response) -> Any:
    try:
        envelope = response.json()
    except ValueError:
        return None
    return envelope.get("result") if isinstance(envelope, dict) else None


# ----------------------------------------------------------------------------- the gateway


def _session_path(account_id: str, script_name: str, dispatch_namespace: str | None) -> str:
    account, script = quote(account_id, safe=""), quote(script_name, safe="")
    if dispatch_namespace is None:
        return f"/accounts/{account}/workers/scripts/{script}/assets-upload-session"
    namespace = quote(dispatch_namespace, safe="")
    return (
        f"/accounts/{account}/workers/dispatch/namespaces/{namespace}"
        f"/scripts/{script}/assets-upload-session"
    )


def region_from_url(url: str) -> str | None:
    """The region of an `execute-api` URL (`https://id.execute-api.eu-west-1.amazonaws.com`)."""
    match = _REGION_IN_URL.search(url)
    return match.group(1).lower() if match else None


def gateway_auth(
    gateway_url: str, *, session: boto3.Session | None = None, region: str | None = None
) -> SigV4Auth:
    """SigV4 for the gateway: the session's credentials (the default chain when None), signed
    for `region`, else the region in the gateway's URL, else the session's region."""
    # boto3 takes ~0.3 s to import: only signing needs it, not --manifest-only
    import boto3  # noqa: PLC0415

    from assets_gateway_client.sigv4 import SigV4Auth  # noqa: PLC0415

    aws = session if session is not None else boto3.Session()
    # boto3 reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda, the SDKs and the message
    # below name.
    resolved = (
        region or region_from_url(gateway_url) or aws.region_name or os.environ.get("AWS_REGION")
    )
    if not resolved:
        raise UploadError(
            "no AWS region to sign for: pass region= (--region), or set AWS_REGION "
            "(the gateway's region, e.g. us-east-1)"
        )
    try:
        return SigV4Auth.from_session(aws, resolved)
    except ValueError as error:
        raise UploadError(f"cannot sign requests to the gateway: {error}") from error


def profile_auth(gateway_url: str, *, profile: str | None, region: str | None) -> SigV4Auth:
    """`gateway_auth` for a command line: the named AWS profile (else the default chain), any
    credential problem reported as an UploadError."""
    import boto3  # noqa: PLC0415 - slow to import; only signing needs it
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415

    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        return gateway_auth(gateway_url, session=session, region=region)
    except BotoCoreError as error:
        raise UploadError(f"AWS credentials: {error}") from error


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
    sleep: Sleep = time.sleep
    clock: Clock = time.time
    max_retries: int = MAX_RETRIES
    counters: _Counters = field(default_factory=_Counters)

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
        try:
            response = _send_with_retries(
                lambda: self.http.post(url, content=body, headers=headers),
                what=f"cannot reach the gateway at {self.gateway_url}",
                counters=self.counters,
                sleep=self.sleep,
                clock=self.clock,
                max_retries=self.max_retries,
            )
        except httpx.HTTPError as error:  # not retryable: a malformed URL, a TLS failure...
            raise UploadError(f"cannot call the gateway at {self.gateway_url}: {error}") from error
        if not response.is_success:
            answer = _answer(response, self.clock)
            what = "the gateway's dry run failed" if dry_run else "no upload session"
            message = _explain(what, answer)
            if response.status_code == 403 and any(e.get("code") == 10000 for e in answer.errors):
                message += (
                    "\n  (API Gateway refused the call: check the gateway URL, which ends with "
                    "/client/v4, the AWS credentials and the region they are signed for)"
                )
            raise GatewayError(message, answer)
        return _json_result(response)


# ----------------------------------------------------------------------------- uploading


@dataclass
class _Progress:
    callback: Callable[[UploadProgress], None] | None
    files_total: int
    bytes_total: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    files_done: int = 0
    bytes_done: int = 0
    requests: int = 0
    uploaded: set[str] = field(default_factory=set)

    def report(self) -> None:
        if self.callback is not None:
            self.callback(
                UploadProgress(self.files_done, self.files_total, self.bytes_done, self.bytes_total)
            )

    def done(self, assets: Sequence[Asset]) -> None:
        with self.lock:
            self.requests += 1
            for asset in assets:
                if asset.hash not in self.uploaded:
                    self.uploaded.add(asset.hash)
                    self.files_done += 1
                    self.bytes_done += asset.size
            self.report()

    def plan(self, assets: Iterable[Asset]) -> None:
        """A (fresh) session asks for these: the totals become what is done plus them."""
        with self.lock:
            pending = [a for a in assets if a.hash not in self.uploaded]
            self.files_total = self.files_done + len(pending)
            self.bytes_total = self.bytes_done + sum(a.size for a in pending)
            self.report()


@dataclass
class _Uploader:
    client: httpx.Client
    upload_url: str
    manifest: AssetManifest
    progress: _Progress
    counters: _Counters
    sleep: Sleep
    clock: Clock
    max_retries: int
    concurrency: int | None

    def run(self, session: UploadSession) -> str:
        """Upload what `session` asks for; its completion JWT. Raises _SessionExpired."""
        assets = self._assets(session)
        self.progress.plan(assets)
        single = session.single_asset_uploads
        jobs: list[list[Asset]] = (
            [[asset] for asset in assets]
            if single
            else [[self._asset(h) for h in bucket] for bucket in session.buckets]
        )
        workers = self.concurrency or (
            (session.edge_kv_concurrency() or SINGLE_ASSET_CONCURRENCY)
            if single
            else BULK_CONCURRENCY
        )
        stop = threading.Event()
        completion: list[str] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="assets-upload") as pool:
            futures: list[Future[str | None]] = [
                pool.submit(self._upload, session, job, single, stop) for job in jobs
            ]
            try:
                finished, _pending = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C: end what is running, start nothing more
                _abandon(futures, stop)
                raise
            if any(f.exception() is not None for f in finished):
                _abandon(futures, stop)
                raise _first_error(futures)
            completion.extend(jwt for f in futures if (jwt := f.result()))
        if not completion:
            raise UploadError(
                "every file was uploaded but Cloudflare sent no completion token; run again "
                "(what was uploaded is kept, so the next run resumes)"
            )
        return completion[-1]

    def _asset(self, file_hash: str) -> Asset:
        asset = self.manifest.asset_for_hash(file_hash)
        if asset is None:
            raise UploadError(
                f"Cloudflare asked for {file_hash}, which no file of the manifest has"
            )
        return asset

    def _assets(self, session: UploadSession) -> list[Asset]:
        return [self._asset(h) for h in dict.fromkeys(session.hashes)]

    def _upload(
        self, session: UploadSession, job: list[Asset], single: bool, stop: threading.Event
    ) -> str | None:
        if stop.is_set():
            return None
        try:
            return self._upload_job(session, job, single, stop)
        except BaseException:
            stop.set()  # before this worker takes the next job: nothing more is sent
            raise

    def _upload_job(
        self, session: UploadSession, job: list[Asset], single: bool, stop: threading.Event
    ) -> str | None:
        expires_at = session.expires_at
        if expires_at is not None and self.clock() >= expires_at:
            raise _SessionExpired
        headers = {"Authorization": f"Bearer {session.jwt}", "User-Agent": USER_AGENT}
        if single:
            (asset,) = job
            content = _read_checked(asset, encode=False)
            headers["Content-Type"] = asset.content_type or NULL_CONTENT_TYPE
            url, what = f"{self.upload_url}/{asset.hash}", f"uploading {asset.key}"

            def send() -> httpx.Response:
                return self.client.post(url, content=content, headers=headers)

        else:
            parts = [
                (
                    a.hash,
                    (a.hash, _read_checked(a, encode=True), a.content_type or NULL_CONTENT_TYPE),
                )
                for a in job
            ]
            what = f"uploading a bucket of {len(job)} files ({job[0].key}...)"

            def send() -> httpx.Response:
                return self.client.post(
                    self.upload_url, params={"base64": "true"}, files=parts, headers=headers
                )

        try:
            response = _send_with_retries(
                send,
                what=what,
                counters=self.counters,
                sleep=self.sleep,
                clock=self.clock,
                max_retries=self.max_retries,
                stop=stop,
            )
        except httpx.HTTPError as error:  # not retryable: a malformed URL, a TLS failure...
            raise UploadError(f"{what}: {type(error).__name__}: {error}") from error
        if response.status_code == 401:
            raise _SessionExpired
        if not response.is_success:
            answer = _answer(response, self.clock)
            raise CloudflareUploadError(_explain(f"Cloudflare refused {what}", answer), answer)
        self.progress.done(job)
        result = _json_result(response)
        jwt = result.get("jwt") if isinstance(result, dict) else None
        return jwt if isinstance(jwt, str) and jwt else None


def _abandon(futures: Sequence[Future[str | None]], stop: threading.Event) -> None:
    """Queued jobs are cancelled (or return at once); running ones end their request."""
    stop.set()
    for future in futures:
        future.cancel()


def _first_error(futures: Sequence[Future[str | None]]) -> BaseException:
    """The error to raise: an expiry wins (it is recoverable), else the first failure."""
    errors = [e for f in futures if not f.cancelled() and (e := f.exception()) is not None]
    for error in errors:
        if isinstance(error, _SessionExpired):
            return error
    return errors[0]


def _read_checked(asset: Asset, *, encode: bool) -> bytes:
    """The file's bytes (base64 when `encode`), after checking they still hash to the manifest's
    hash: Cloudflare stores content by hash, so stale content would be served for it."""
    try:
        content = asset.file.read_bytes()
    except OSError as error:
        raise UploadError(f"cannot read {asset.key}: {error}") from error
    encoded = base64.b64encode(content)
    if len(content) != asset.size or (
        hash_encoded(encoded, node_extension(asset.file.name)) != asset.hash
    ):
        raise UploadError(
            f"{asset.key} changed after the manifest was built; nothing of it was sent. "
            "Run the upload again once the build is finished."
        )
    return encoded if encode else content


def upload_assets(
    manifest: AssetManifest,
    *,
    open_session: Callable[[], UploadSession],
    account_id: str,
    cloudflare_api_url: str = DEFAULT_CLOUDFLARE_API_URL,
    concurrency: int | None = None,
    progress: Callable[[UploadProgress], None] | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.time,
    max_retries: int = MAX_RETRIES,
    http_client: httpx.Client | None = None,
    _counters: _Counters | None = None,
) -> UploadResult:
    """Upload what the sessions `open_session` creates ask for, directly to Cloudflare.

    `open_session` is called once, and once more if the first session's JWT expires midway.
    `concurrency` bounds parallel requests (default: wrangler's, 3 buckets or the JWT's
    `edge_kv_upload_concurrency`/50 single files). `progress` is called after each request,
    from worker threads, one call at a time.
    """
    started = time.perf_counter()
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    counters = _counters or _Counters()
    tracker = _Progress(progress, 0, 0)
    upload_url = f"{cloudflare_api_url.rstrip('/')}/accounts/{quote(account_id, safe='')}"
    upload_url += "/workers/assets/upload"
    client = http_client or httpx.Client(
        timeout=_UPLOAD_TIMEOUT,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
    )
    uploader = _Uploader(
        client, upload_url, manifest, tracker, counters, sleep, clock, max_retries, concurrency
    )
    sessions = 0
    single = False
    try:
        while True:
            session = open_session()
            sessions += 1
            single = single or session.single_asset_uploads
            if not session.buckets:  # nothing missing: the session's JWT completes it
                tracker.plan(())
                jwt = session.jwt
                break
            try:
                jwt = uploader.run(session)
                break
            except _SessionExpired:
                if sessions >= MAX_SESSIONS:
                    raise UploadError(
                        "the fresh upload session expired too; check this machine's clock and "
                        "run again (what was uploaded is kept, so the next run resumes)"
                    ) from None
    finally:
        if http_client is None:
            client.close()
    return UploadResult(
        jwt=jwt,
        entries=manifest.entries,
        total_bytes=manifest.total_bytes,
        uploaded_files=tracker.files_done,
        uploaded_bytes=tracker.bytes_done,
        sessions=sessions,
        upload_requests=tracker.requests,
        retries=counters.retries,
        single_asset_uploads=single,
        duration_s=time.perf_counter() - started,
    )


def upload_manifest(
    manifest: AssetManifest,
    *,
    account_id: str,
    script_name: str,
    gateway_url: str,
    session: boto3.Session | None = None,
    auth: httpx.Auth | None = None,
    region: str | None = None,
    dispatch_namespace: str | None = None,
    cloudflare_api_url: str = DEFAULT_CLOUDFLARE_API_URL,
    concurrency: int | None = None,
    progress: Callable[[UploadProgress], None] | None = None,
    dry_run: bool = False,
    sleep: Sleep = time.sleep,
    clock: Clock = time.time,
    max_retries: int = MAX_RETRIES,
) -> UploadResult:
    """`upload_directory` for a manifest already built (see there)."""
    started = time.perf_counter()
    body = json.dumps(manifest.to_request_body(), separators=(",", ":")).encode("utf-8")
    signer = auth if auth is not None else gateway_auth(gateway_url, session=session, region=region)
    with httpx.Client(auth=signer, timeout=_GATEWAY_TIMEOUT) as http:
        gateway = GatewayClient(
            http,
            gateway_url,
            account_id,
            script_name,
            dispatch_namespace,
            sleep=sleep,
            clock=clock,
            max_retries=max_retries,
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
                retries=gateway.counters.retries,
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
            sleep=sleep,
            clock=clock,
            max_retries=max_retries,
            _counters=gateway.counters,
        )
    return dataclasses.replace(result, duration_s=time.perf_counter() - started)


def upload_directory(
    directory: str | os.PathLike[str] | Path,
    *,
    account_id: str,
    script_name: str,
    gateway_url: str,
    session: boto3.Session | None = None,
    auth: httpx.Auth | None = None,
    region: str | None = None,
    dispatch_namespace: str | None = None,
    cloudflare_api_url: str = DEFAULT_CLOUDFLARE_API_URL,
    concurrency: int | None = None,
    progress: Callable[[UploadProgress], None] | None = None,
    dry_run: bool = False,
    sleep: Sleep = time.sleep,
    clock: Clock = time.time,
    max_retries: int = MAX_RETRIES,
) -> UploadResult:
    """Upload a build folder's assets for `script_name` and return the completion JWT.

    `gateway_url` is the gateway's base URL, ending with `/client/v4`. Requests to it are
    signed with `auth` if given, else with SigV4 from `session` (default: boto3's credential
    chain) for `region` (default: the region in the gateway URL, else the session's).
    `cloudflare_api_url` is where files go (the real API by default; the local emulator's URL
    when testing). `dry_run` asks the gateway for its decision and uploads nothing.

    Raises ManifestError (the folder, before any call), GatewayError (session refused, with
    the gateway's codes and reasons), CloudflareUploadError or UploadError.
    """
    manifest = build_manifest(directory)
    return upload_manifest(
        manifest,
        account_id=account_id,
        script_name=script_name,
        gateway_url=gateway_url,
        session=session,
        auth=auth,
        region=region,
        dispatch_namespace=dispatch_namespace,
        cloudflare_api_url=cloudflare_api_url,
        concurrency=concurrency,
        progress=progress,
        dry_run=dry_run,
        sleep=sleep,
        clock=clock,
        max_retries=max_retries,
    )
