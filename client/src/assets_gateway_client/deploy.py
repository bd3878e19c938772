"""From a build folder to a deployed Worker through the gateway, in pure Python (no Node): what
`wrangler deploy` does for a Worker with static assets.

    from assets_gateway_client.deploy import WorkerModule, deploy_directory

    result = deploy_directory(
        "dist",
        account_id="0123456789abcdef0123456789abcdef",
        script_name="web-storefront",
        main=WorkerModule.from_file("worker.js"),  # None: an assets-only Worker
        compatibility_date="2025-01-01",
    )
    print(result.version_id)

1. `GET /workers/services/{s}` through the gateway: Cloudflare's 10007 means a new Worker.
2. The assets: the manifest, the session through the gateway and the missing files straight to
   Cloudflare, exactly as `upload_manifest` does it; its completion JWT goes in the metadata.
3. The version, a multipart body as wrangler's `createWorkerUploadForm` builds it (workers-sdk,
   `packages/deploy-helpers/src/deploy/helpers/create-worker-upload-form.ts`): a `metadata` part
   `{main_module, bindings: [{"type": "assets", "name": ...}], compatibility_date,
   compatibility_flags, assets: {jwt, config}}` and the module part (`application/javascript+
   module`). An assets-only Worker is wrangler's short cut: metadata `{assets, compatibility_date,
   compatibility_flags}` and no module part at all (no placeholder script). `assets.config`
   carries the folder's `_redirects` and `_headers` files, as wrangler sends them.
   A new Worker: `PUT /workers/scripts/{s}?excludeScript=true&bindings_inherit=strict` (which
   deploys it; its `deployment_id` is the version's id, as wrangler reads it). An existing one:
   `POST .../versions?bindings_inherit=strict`, then `POST .../deployments` with that version at
   100%. Bodies of 1 MiB and more go gzip-encoded, as the signing proxy sends them.

Every call is signed for the gateway and retried as the upload is (429 with `Retry-After`, 5xx,
network failures: `http_retry`); a refusal is a GatewayError holding the envelope's codes and
every reason. Each URL is a parameter (`gateway_url`, `cloudflare_api_url`), so the same code
runs against the gateway or, in tests, a local Cloudflare.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack
from urllib.parse import quote

import httpx

from assets_gateway_client import environment
from assets_gateway_client.answers import ApiAnswer, GatewayError, UploadError, explain
from assets_gateway_client.assets_ignore import HEADERS_FILENAME, REDIRECTS_FILENAME
from assets_gateway_client.gateway import GATEWAY_TIMEOUT, DryRunDecision
from assets_gateway_client.http_retry import MAX_RETRIES, USER_AGENT, Clock, Retrying, Sleep
from assets_gateway_client.manifest_builder import AssetManifest, build_manifest
from assets_gateway_client.proxy_rules import GZIP_THRESHOLD_BYTES, gzip_body
from assets_gateway_client.signing import gateway_auth
from assets_gateway_client.upload import upload_manifest
from assets_gateway_client.uploader import UploadProgress, UploadResult

if TYPE_CHECKING:
    import os

    import boto3

__all__ = [
    "DEFAULT_ASSETS_BINDING",
    "ESM_CONTENT_TYPE",
    "DeployOptions",
    "DeployResult",
    "UploadForm",
    "WorkerApi",
    "WorkerModule",
    "assets_config",
    "deploy_directory",
    "deploy_manifest",
    "upload_form",
    "worker_metadata",
]

ESM_CONTENT_TYPE = "application/javascript+module"  # wrangler's type for an ES module
DEFAULT_ASSETS_BINDING = "ASSETS"
SERVICE_NOT_FOUND = 10007  # Cloudflare: "This Worker does not exist on your account"
# What wrangler sends as the assets JWT when it only shows what would be sent.
DRY_RUN_JWT = "<the completion JWT of the upload>"


@dataclass(frozen=True)
class WorkerModule:
    """The Worker's one ES module, as it is uploaded (already bundled: nothing is built here)."""

    name: str
    content: bytes
    content_type: str = ESM_CONTENT_TYPE

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | Path) -> WorkerModule:
        """The file's bytes under its own name. OSError when it cannot be read."""
        file = Path(path)
        return cls(file.name, file.read_bytes())


@dataclass(frozen=True)
class UploadForm:
    """A script upload's body, as sent, and its headers (the type with its boundary, and
    `Content-Encoding: gzip` for a large one)."""

    body: bytes
    headers: Mapping[str, str]
    size: int  # before any gzip


def assets_config(directory: Path) -> dict[str, str]:
    """`assets.config` as wrangler sends it from the folder alone: the `_redirects` and
    `_headers` files' text (they are configuration, never uploaded as assets)."""
    config: dict[str, str] = {}
    for name in (REDIRECTS_FILENAME, HEADERS_FILENAME):
        file = directory / name
        if file.is_file():
            config[name] = file.read_text(encoding="utf-8")
    return config


def worker_metadata(
    *,
    main: WorkerModule | None,
    assets_jwt: str,
    config: Mapping[str, Any],
    compatibility_date: str,
    compatibility_flags: Sequence[str] = (),
    assets_binding: str = DEFAULT_ASSETS_BINDING,
    message: str | None = None,
) -> dict[str, Any]:
    """The `metadata` part, as `createWorkerUploadForm` writes it (see the module's docstring)."""
    assets = {"jwt": assets_jwt, "config": dict(config)}
    annotations = {"annotations": {"workers/message": message}} if message is not None else {}
    dates = {
        "compatibility_date": compatibility_date,
        "compatibility_flags": [*compatibility_flags],
    }
    if main is None:
        return {"assets": assets, **annotations, **dates}
    return {
        "main_module": main.name,
        "bindings": [{"name": assets_binding, "type": "assets"}],
        **dates,
        **annotations,
        "assets": assets,
    }


def upload_form(
    metadata: Mapping[str, Any],
    main: WorkerModule | None,
    *,
    gzip_threshold_bytes: int = GZIP_THRESHOLD_BYTES,
) -> UploadForm:
    """The multipart body: the `metadata` field first (no file name, no type, as FormData
    writes a string), then the module as a file part."""
    text = json.dumps(metadata, separators=(",", ":"))
    modules = [] if main is None else [(main.name, (main.name, main.content, main.content_type))]
    # httpx writes the multipart body and its boundary.
    request = httpx.Request(
        "PUT", "http://form.invalid/", files=[("metadata", (None, text)), *modules]
    )
    body = request.read()
    headers = {"Content-Type": request.headers["content-type"]}
    if len(body) < gzip_threshold_bytes:
        return UploadForm(body, headers, len(body))
    return UploadForm(gzip_body(body), {**headers, "Content-Encoding": "gzip"}, len(body))


@dataclass
class WorkerApi:
    """The Worker routes of the gateway (Cloudflare's paths) for one script, signed by `http`'s
    auth, each request retried by `retrying`."""

    http: httpx.Client
    gateway_url: str
    account_id: str
    script_name: str
    retrying: Retrying = field(default_factory=Retrying)

    def _url(self, collection: str, tail: str = "") -> str:
        """`.../accounts/{a}/workers/{collection}/{script}{tail}`, the names URL-quoted."""
        account, script = quote(self.account_id, safe=""), quote(self.script_name, safe="")
        return (
            f"{self.gateway_url.rstrip('/')}/accounts/{account}/workers/{collection}/{script}{tail}"
        )

    def _call(self, what: str, request: httpx.Request) -> ApiAnswer:
        response = self.retrying.send(
            lambda: self.http.send(request), what=f"{what}: cannot reach {self.gateway_url}"
        )
        return ApiAnswer.read(response, clock=self.retrying.clock)

    def _request(self, method: str, url: str, **options: Any) -> httpx.Request:
        headers = {"User-Agent": USER_AGENT, **options.pop("headers", {})}
        return self.http.build_request(method, url, headers=headers, **options)

    @staticmethod
    def _result(what: str, answer: ApiAnswer) -> Any:
        if not answer.ok:
            raise GatewayError(explain(what, answer), answer)
        return answer.result

    def exists(self) -> bool:
        """`GET /workers/services/{s}`: False for Cloudflare's 10007 (a new Worker)."""
        what = f"cannot read the Worker {self.script_name}"
        answer = self._call(what, self._request("GET", self._url("services")))
        if answer.status == 404 and answer.has_code(SERVICE_NOT_FOUND):
            return False
        self._result(what, answer)
        return True

    def create(self, form: UploadForm) -> str:
        """`PUT /workers/scripts/{s}`: the new Worker, deployed; its version's id."""
        what = f"the Worker {self.script_name} was not created"
        request = self._request(
            "PUT",
            self._url("scripts"),
            params={"excludeScript": "true", "bindings_inherit": "strict"},
            content=form.body,
            headers=dict(form.headers),
        )
        return _text(self._result(what, self._call(what, request)), "deployment_id", what)

    def upload_version(self, form: UploadForm) -> str:
        """`POST /workers/scripts/{s}/versions`: a version, not deployed; its id."""
        what = f"no new version of {self.script_name}"
        request = self._request(
            "POST",
            self._url("scripts", "/versions"),
            params={"bindings_inherit": "strict"},
            content=form.body,
            headers=dict(form.headers),
        )
        return _text(self._result(what, self._call(what, request)), "id", what)

    def deploy(self, version_id: str, message: str | None = None) -> str:
        """`POST /workers/scripts/{s}/deployments`: the version at 100%; the deployment's id."""
        what = f"version {version_id} of {self.script_name} was not deployed"
        body: dict[str, Any] = {
            "strategy": "percentage",
            "versions": [{"version_id": version_id, "percentage": 100}],
        }
        if message is not None:
            body["annotations"] = {"workers/message": message}
        request = self._request("POST", self._url("scripts", "/deployments"), json=body)
        return _text(self._result(what, self._call(what, request)), "id", what)


def _text(result: object, key: str, what: str) -> str:
    value = result.get(key) if isinstance(result, dict) else None
    if not isinstance(value, str) or not value:
        raise UploadError(f"{what}: the answer holds no {key}")
    return value


@dataclass(frozen=True)
class DeployResult:
    """What a deploy did. `deployment_id` is None for a new Worker (its upload deploys it, and
    Cloudflare names no deployment) and for a dry run, as is `version_id` for a dry run."""

    script: str
    account: str
    version_id: str | None
    deployment_id: str | None
    new_worker: bool | None  # None for a dry run, which does not ask
    upload: UploadResult
    metadata: Mapping[str, Any]  # as sent (the JWT included): for a dry run, what would be
    script_bytes: int

    @property
    def dry_run(self) -> DryRunDecision | None:
        return self.upload.dry_run

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "script": self.script,
            "account": self.account,
            "version_id": self.version_id,
            "deployment_id": self.deployment_id,
            "new_worker": self.new_worker,
            "uploaded_files": self.upload.uploaded_files,
            "entries": self.upload.entries,
            "bytes": self.upload.total_bytes,
        }
        if self.dry_run is not None:
            document["dry_run"] = self.dry_run.to_json()
        return document


class DeployOptions(TypedDict, total=False):
    """`deploy_manifest`'s keyword arguments, which `deploy_directory` passes on."""

    account_id: Required[str]
    script_name: Required[str]
    main: WorkerModule | None
    compatibility_date: str | None
    compatibility_flags: Sequence[str]
    assets_binding: str
    message: str | None
    gateway_url: str | None
    session: boto3.Session | None
    auth: httpx.Auth | None
    region: str | None
    cloudflare_api_url: str | None
    progress: Callable[[UploadProgress], None] | None
    say: Callable[[str], None] | None
    dry_run: bool
    sleep: Sleep
    clock: Clock
    max_retries: int


def _today(clock: Clock) -> str:
    return datetime.fromtimestamp(clock(), UTC).date().isoformat()


def deploy_manifest(
    manifest: AssetManifest,
    *,
    account_id: str,
    script_name: str,
    main: WorkerModule | None = None,
    compatibility_date: str | None = None,
    compatibility_flags: Sequence[str] = (),
    assets_binding: str = DEFAULT_ASSETS_BINDING,
    message: str | None = None,
    gateway_url: str | None = None,
    session: boto3.Session | None = None,
    auth: httpx.Auth | None = None,
    region: str | None = None,
    cloudflare_api_url: str | None = None,
    progress: Callable[[UploadProgress], None] | None = None,
    say: Callable[[str], None] | None = None,
    dry_run: bool = False,
    sleep: Sleep = time.sleep,
    clock: Clock = time.time,
    max_retries: int = MAX_RETRIES,
) -> DeployResult:
    """`deploy_directory` for a manifest already built (see there)."""
    tell = say or (lambda _text: None)
    gateway_url = environment.gateway_url(gateway_url)
    signer = auth if auth is not None else gateway_auth(gateway_url, session=session, region=region)
    date = compatibility_date or _today(clock)
    with httpx.Client(auth=signer, timeout=GATEWAY_TIMEOUT) as http:
        api = WorkerApi(
            http, gateway_url, account_id, script_name, Retrying(sleep, clock, max_retries)
        )
        # A dry run asks the gateway about the session only: it reads nothing else.
        new_worker = None if dry_run else not api.exists()
        if new_worker is not None:
            kind = "a new Worker" if new_worker else "an existing Worker: a new version"
            tell(f"{script_name}: {kind}")
        uploaded = upload_manifest(
            manifest,
            account_id=account_id,
            script_name=script_name,
            gateway_url=gateway_url,
            auth=signer,
            cloudflare_api_url=cloudflare_api_url,
            progress=progress,
            dry_run=dry_run,
            sleep=sleep,
            clock=clock,
            max_retries=max_retries,
        )
        metadata = worker_metadata(
            main=main,
            assets_jwt=uploaded.jwt or DRY_RUN_JWT,
            config=assets_config(manifest.directory),
            compatibility_date=date,
            compatibility_flags=compatibility_flags,
            assets_binding=assets_binding,
            message=message,
        )
        form = upload_form(metadata, main)
        planned = DeployResult(
            script=script_name,
            account=account_id,
            version_id=None,
            deployment_id=None,
            new_worker=new_worker,
            upload=uploaded,
            metadata=metadata,
            script_bytes=len(main.content) if main else 0,
        )
        if dry_run:
            return planned
        tell(
            f"assets: {uploaded.uploaded_files:,} of {uploaded.entries:,} files uploaded "
            f"({uploaded.already_uploaded:,} already on Cloudflare)"
        )
        tell(
            f"uploading the version: {main.name if main else 'assets only, no script'}, "
            f"compatibility date {date}, {form.size:,} bytes"
            + (f" (gzip: {len(form.body):,})" if len(form.body) != form.size else "")
        )
        if new_worker:
            version_id = api.create(form)
            tell(f"created {script_name}, version {version_id} deployed")
            return replace(planned, version_id=version_id)
        version_id = api.upload_version(form)
        deployment_id = api.deploy(version_id, message)
        tell(f"version {version_id} deployed to 100% (deployment {deployment_id})")
        return replace(planned, version_id=version_id, deployment_id=deployment_id)


def deploy_directory(
    directory: str | os.PathLike[str] | Path, **options: Unpack[DeployOptions]
) -> DeployResult:
    """Deploy a build folder's assets, and `main` if given, as `script_name`'s new version.

    Keywords as `deploy_manifest` takes them: `account_id` and `script_name` (required); `main`,
    the Worker's bundled ES module (None: an assets-only Worker); `compatibility_date` (default:
    today, UTC), `compatibility_flags`, `assets_binding` (the binding's name in `env`, default
    ASSETS), `message` (the version's and deployment's annotation); `gateway_url`, `session`,
    `auth`, `region`, `cloudflare_api_url`, `progress`, `sleep`, `clock` and `max_retries` as
    for `upload_directory`; `say` is told each phase in a line for people; `dry_run` asks the
    gateway for its decision on the assets session, builds the metadata (`result.metadata`, a
    stand-in for the JWT) and calls nothing else.

    Raises ManifestError (the folder, before any call), GatewayError (a refusal, with the
    gateway's codes and every reason), CloudflareUploadError or UploadError.
    """
    return deploy_manifest(build_manifest(directory), **options)
