"""The files of upload sessions, sent directly to Cloudflare with each session's JWT.

Only the buckets Cloudflare asks for are uploaded (`POST /accounts/{id}/workers/assets/upload
?base64=true`, one multipart part per file named by its hash, holding its base64, typed with the
file's content type or `application/null`), in parallel on a bounded thread pool. When the JWT
carries `wrangler_single_asset_uploads`, each file goes raw to `.../workers/assets/upload/{hash}`
instead, as wrangler does. Every file is re-read and its hash checked before it is sent: a file
changed since the manifest was built is never stored under the old hash. When a session's JWT
expires (by its `exp`, or a 401 from Cloudflare), one fresh session is asked for and only what is
still missing is sent.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from assets_gateway_client import environment
from assets_gateway_client.answers import (
    ApiAnswer,
    CloudflareUploadError,
    SessionExpired,
    UploadError,
    explain,
)
from assets_gateway_client.content_types import NULL_CONTENT_TYPE
from assets_gateway_client.gateway import DryRunDecision, UploadSession
from assets_gateway_client.http_retry import USER_AGENT, Retrying
from assets_gateway_client.manifest_builder import (
    Asset,
    AssetManifest,
    hash_encoded,
    node_extension,
)

__all__ = ["UPLOAD_TIMEOUT", "UploadProgress", "UploadResult", "upload_assets"]

BULK_CONCURRENCY = 3  # wrangler's BULK_UPLOAD_CONCURRENCY
SINGLE_ASSET_CONCURRENCY = 50  # wrangler's default when the JWT names no edge_kv concurrency
MAX_SESSIONS = 2  # the first, and one fresh session when its JWT expires
UPLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # a bucket can hold tens of MiB
BASE64_QUERY = {"base64": "true"}  # the bucket form carries each file's base64


@dataclass(frozen=True)
class UploadProgress:
    """Where the upload stands; handed to the `progress` callback after each request."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


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
    retrying: Retrying
    concurrency: int | None

    def run(self, session: UploadSession) -> str:
        """Upload what `session` asks for; its completion JWT. Raises SessionExpired."""
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
        if expires_at is not None and self.retrying.clock() >= expires_at:
            raise SessionExpired
        headers = {"Authorization": f"Bearer {session.jwt}", "User-Agent": USER_AGENT}
        if single:
            (asset,) = job
            headers["Content-Type"] = asset.content_type or NULL_CONTENT_TYPE
            request = self.client.build_request(
                "POST",
                f"{self.upload_url}/{asset.hash}",
                content=_read_checked(asset, encode=False),
                headers=headers,
            )
            what = f"uploading {asset.key}"
        else:
            parts = [
                (
                    a.hash,
                    (a.hash, _read_checked(a, encode=True), a.content_type or NULL_CONTENT_TYPE),
                )
                for a in job
            ]
            request = self.client.build_request(
                "POST", self.upload_url, params=BASE64_QUERY, files=parts, headers=headers
            )
            # The form rendered once, here: one write per request (not one per part and part
            # header), and a retry resends the same bytes without rendering them again.
            request.read()
            what = f"uploading a bucket of {len(job)} files ({job[0].key}...)"

        def send() -> httpx.Response:
            return self.client.send(request)

        response = self.retrying.send(send, what=what, stop=stop)
        if response.status_code == 401:
            raise SessionExpired
        answer = ApiAnswer.read(response, clock=self.retrying.clock)
        if not answer.ok:
            raise CloudflareUploadError(explain(f"Cloudflare refused {what}", answer), answer)
        self.progress.done(job)
        result = answer.result
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
        if isinstance(error, SessionExpired):
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
    cloudflare_api_url: str | None = None,
    concurrency: int | None = None,
    progress: Callable[[UploadProgress], None] | None = None,
    retrying: Retrying | None = None,
    http_client: httpx.Client | None = None,
) -> UploadResult:
    """Upload what the sessions `open_session` creates ask for, directly to Cloudflare.

    `open_session` is called once, and once more if the first session's JWT expires midway.
    `concurrency` bounds parallel requests (default: wrangler's, 3 buckets or the JWT's
    `edge_kv_upload_concurrency`/50 single files). `progress` is called after each request,
    from worker threads, one call at a time. `retrying` says how requests are retried (and
    counts the retries; default: wrangler's 3, sleeping for real); `cloudflare_api_url` defaults
    to $CLOUDFLARE_API_URL, else Cloudflare's API.
    """
    started = time.perf_counter()
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    retrying = retrying or Retrying()
    cloudflare_api_url = environment.cloudflare_api_url(cloudflare_api_url)
    tracker = _Progress(progress, 0, 0)
    upload_url = f"{cloudflare_api_url.rstrip('/')}/accounts/{quote(account_id, safe='')}"
    upload_url += "/workers/assets/upload"
    client = http_client or httpx.Client(
        timeout=UPLOAD_TIMEOUT,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
    )
    uploader = _Uploader(client, upload_url, manifest, tracker, retrying, concurrency)
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
            except SessionExpired:
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
        retries=retrying.retries,
        single_asset_uploads=single,
        duration_s=time.perf_counter() - started,
    )
