"""The emulator's Workers: scripts, their versions, deployments, settings and workers.dev flags.

The state Cloudflare keeps per account behind the deploy flow of `wrangler deploy`, `wrangler
versions upload`, `wrangler versions deploy` and `wrangler rollback` (Workers for Platforms
scripts live apart, per dispatch namespace). `WorkersState` validates what a script upload sends
as Cloudflare does and answers the `result` of each route; authentication, rate limits, faults and
the envelope are the emulator's (`cloudflare_emulator`). Redeeming a completion JWT is delegated
to `redeem_assets` (the emulator owns upload sessions), which hands back the session's manifest.

Codes: 10007 (Worker not found: the code wrangler takes for "new Worker"), 10092 (not found in a
dispatch namespace: the code wrangler checks there), 10021 (Cloudflare's "script validation
failed", seen for a missing main module and an unreadable metadata part), 10000 (authentication,
seen for bad assets JWTs). Codes Cloudflare does not publish for these refusals are ours, in the
1033x block (see `WorkersCode`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from assets_gateway_common.json_pointer import json_pointer
from gateway_local.emulator_wire import ApiError, Part

# The bindings Cloudflare accepts and the fields each type must carry (a string unless listed in
# `_ANY_FIELDS`). Types not listed are refused, as Cloudflare refuses an unknown type.
BINDING_FIELDS: Mapping[str, tuple[str, ...]] = {
    "assets": (),
    "plain_text": ("text",),
    "secret_text": ("text",),
    "json": ("json",),
    "version_metadata": (),
    "inherit": (),
    "kv_namespace": ("namespace_id",),
    "r2_bucket": ("bucket_name",),
    "d1": ("id",),
    "queue": ("queue_name",),
    "service": ("service",),
    "durable_object_namespace": ("class_name",),
    "analytics_engine": ("dataset",),
    "hyperdrive": ("id",),
    "vectorize": ("index_name",),
    "ai": (),
    "browser": (),
    "images": (),
    "send_email": (),
    "mtls_certificate": ("certificate_id",),
    "dispatch_namespace": ("namespace",),
    "workflow": ("workflow_name",),
    "secrets_store_secret": ("store_id", "secret_name"),
}
_ANY_FIELDS = frozenset({"json"})  # any JSON value
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_DEPLOYMENT_VERSIONS = 2  # a gradual deployment splits traffic between at most two versions


class WorkersCode:
    """Cloudflare's codes for the deploy flow's refusals, and ours where it publishes none."""

    AUTHENTICATION = 10000
    WORKER_NOT_FOUND = 10007
    SCRIPT_VALIDATION = 10021
    NOT_IN_NAMESPACE = 10092
    VERSION_NOT_FOUND = 10330
    INVALID_DEPLOYMENT = 10331
    INVALID_SETTINGS = 10332
    ASSETS_TOKEN_USED = 10333


@dataclass(frozen=True)
class ScriptKey:
    account_id: str
    name: str
    namespace: str | None = None  # a Workers for Platforms dispatch namespace


@dataclass(frozen=True)
class Module:
    name: str
    content_type: str | None
    size: int


@dataclass(frozen=True)
class Version:
    """One uploaded Worker version, as stored; `public()` is what the API shows of it."""

    id: str
    number: int
    created_on: str
    source: str
    triggered_by: str
    message: str | None
    tag: str | None
    main_module: str | None  # None: an assets-only Worker
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Mapping[str, Any], ...]
    modules: tuple[Module, ...]
    assets: Mapping[str, tuple[str, int]] | None  # path -> (hash, size); None: no assets
    assets_config: Mapping[str, Any] | None
    etag: str

    def public(self) -> dict[str, Any]:
        annotations: dict[str, Any] = {"workers/triggered_by": self.triggered_by}
        if self.message is not None:
            annotations["workers/message"] = self.message
        if self.tag is not None:
            annotations["workers/tag"] = self.tag
        return {
            "id": self.id,
            "number": self.number,
            "metadata": {
                "author_id": "emulator",
                "author_email": "emulator@example.com",
                "source": self.source,
                "created_on": self.created_on,
                "modified_on": self.created_on,
                "has_preview": False,
            },
            "annotations": annotations,
            "resources": {
                "script": {
                    "etag": self.etag,
                    "handlers": ["fetch"],
                    "last_deployed_from": self.source,
                },
                "script_runtime": {
                    "compatibility_date": self.compatibility_date,
                    "compatibility_flags": list(self.compatibility_flags),
                    "usage_model": "standard",
                },
                "bindings": [_redact_binding(binding) for binding in self.bindings],
            },
            "startup_time_ms": 1,
        }


@dataclass(frozen=True)
class Deployment:
    id: str
    created_on: str
    source: str
    versions: tuple[tuple[str, float], ...]  # (version id, percentage)
    triggered_by: str
    message: str | None

    def public(self) -> dict[str, Any]:
        annotations: dict[str, Any] = {"workers/triggered_by": self.triggered_by}
        if self.message is not None:
            annotations["workers/message"] = self.message
        return {
            "id": self.id,
            "source": self.source,
            "strategy": "percentage",
            "author_email": "emulator@example.com",
            "created_on": self.created_on,
            "annotations": annotations,
            "versions": [
                {"version_id": version_id, "percentage": percentage}
                for version_id, percentage in self.versions
            ],
        }


@dataclass
class Script:
    key: ScriptKey
    tag: str
    created_on: str
    modified_on: str
    versions: list[Version] = field(default_factory=list)  # oldest first
    deployments: list[Deployment] = field(default_factory=list)  # oldest first
    settings: dict[str, Any] = field(default_factory=dict)
    subdomain_enabled: bool = False
    previews_enabled: bool = False

    def latest_version(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def deployed(self) -> Deployment | None:
        return self.deployments[-1] if self.deployments else None

    def service_script(self) -> dict[str, Any]:
        """The `script` object of `GET /workers/services/{s}` (and the dispatch twin)."""
        latest = self.latest_version()
        return {
            "id": self.key.name,
            "tag": self.tag,
            "tags": list(self.settings.get("tags") or []),
            "etag": latest.etag if latest else None,
            "handlers": ["fetch"],
            "created_on": self.created_on,
            "modified_on": self.modified_on,
            "usage_model": "standard",
            "compatibility_date": latest.compatibility_date if latest else None,
            "compatibility_flags": list(latest.compatibility_flags) if latest else [],
            "last_deployed_from": latest.source if latest else "wrangler",
            "has_assets": bool(latest and latest.assets is not None),
            "has_modules": True,
            "migration_tag": None,
        }


@dataclass(frozen=True)
class UploadedMetadata:
    """A script upload's metadata part, checked."""

    main_module: str | None  # None: an assets-only Worker
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Mapping[str, Any], ...]
    assets_jwt: str | None
    assets_config: Mapping[str, Any] | None
    keep_assets: bool
    keep_bindings: tuple[str, ...]
    message: str | None
    tag: str | None


@dataclass(frozen=True)
class ScriptUpload:
    """A multipart script upload as received: its parts, how it came, and whether `inherit`
    bindings must exist (`bindings_inherit=strict`)."""

    parts: Sequence[Part]
    source: str  # "wrangler" or "api": what versions and deployments show as their source
    strict_inherit: bool


# Takes (assets JWT, script key) and answers the manifest that JWT's session registered, or
# raises ApiError (forged, expired, another account's or script's, already redeemed).
RedeemAssets = Callable[[str, ScriptKey], Mapping[str, tuple[str, int]]]


def _invalid(message: str, pointer: str | None = None) -> ApiError:
    return ApiError(400, WorkersCode.SCRIPT_VALIDATION, message, pointer=pointer)


def _redact_binding(binding: Mapping[str, Any]) -> dict[str, Any]:
    """Cloudflare never shows a secret's value back."""
    if binding.get("type") == "secret_text":
        return {key: value for key, value in binding.items() if key != "text"}
    return dict(binding)


def parse_upload_metadata(parts: Sequence[Part], today: date) -> UploadedMetadata:
    """The metadata part of a script upload, validated as Cloudflare validates it."""
    by_name = {part.name: part for part in parts}
    metadata_part = by_name.get("metadata")
    if metadata_part is None:
        raise _invalid("could not read content for part metadata")
    try:
        metadata = json.loads(b"".join(metadata_part.chunks))
    except ValueError as error:
        raise _invalid("metadata part is not valid JSON") from error
    if not isinstance(metadata, dict):
        raise _invalid("metadata must be a JSON object", "/")
    main_module = metadata.get("main_module", metadata.get("body_part"))
    # An assets-only Worker (wrangler's upload without `main`): metadata with `assets` and no
    # module part at all.
    assets_only = main_module is None and isinstance(metadata.get("assets"), dict)
    if assets_only and len(by_name) > 1:
        raise _invalid("metadata.main_module is required", "/main_module")
    if not assets_only and (not isinstance(main_module, str) or not main_module):
        raise _invalid("metadata.main_module is required", "/main_module")
    if not assets_only and (main_module not in by_name or main_module == "metadata"):
        raise _invalid("Uncaught TypeError: Main module name is not present in bundle.")
    compatibility_date = _compatibility_date(metadata.get("compatibility_date"), today)
    flags = metadata.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise _invalid("compatibility_flags must be a list of strings", "/compatibility_flags")
    bindings = _bindings(metadata.get("bindings", []))
    assets_jwt, assets_config, keep_assets = _assets(metadata)
    if any(binding["type"] == "assets" for binding in bindings) and not (assets_jwt or keep_assets):
        raise _invalid("An assets binding needs assets.jwt (or keep_assets)", "/assets/jwt")
    keep_bindings = metadata.get("keep_bindings", [])
    if not isinstance(keep_bindings, list) or not all(
        isinstance(kind, str) for kind in keep_bindings
    ):
        raise _invalid("keep_bindings must be a list of binding types", "/keep_bindings")
    annotations = metadata.get("annotations", {})
    if not isinstance(annotations, dict):
        raise _invalid("annotations must be an object", "/annotations")
    message = annotations.get("workers/message")
    tag = annotations.get("workers/tag")
    if not all(value is None or isinstance(value, str) for value in (message, tag)):
        raise _invalid("annotations must be strings", "/annotations")
    return UploadedMetadata(
        main_module=main_module,
        compatibility_date=compatibility_date,
        compatibility_flags=tuple(flags),
        bindings=tuple(bindings),
        assets_jwt=assets_jwt,
        assets_config=assets_config,
        keep_assets=keep_assets,
        keep_bindings=tuple(keep_bindings),
        message=message,
        tag=tag,
    )


def _compatibility_date(value: object, today: date) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or _DATE_RE.fullmatch(value) is None:
        raise _invalid("compatibility_date must be a date as YYYY-MM-DD", "/compatibility_date")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as error:
        raise _invalid(f"compatibility_date {value} is no date", "/compatibility_date") from error
    # Cloudflare's edge may be a day ahead of the caller's timezone: one day of slack.
    if parsed > today + timedelta(days=1):
        raise _invalid(
            f"Can't set compatibility date in the future: {value}", "/compatibility_date"
        )
    return value


def _bindings(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid("bindings must be a list", "/bindings")
    seen: set[str] = set()
    bindings: list[dict[str, Any]] = []
    for index, binding in enumerate(value):
        pointer = f"/bindings/{index}"
        if not isinstance(binding, dict):
            raise _invalid("a binding must be an object", pointer)
        name, kind = binding.get("name"), binding.get("type")
        if not isinstance(name, str) or not name:
            raise _invalid("a binding needs a name", f"{pointer}/name")
        if not isinstance(kind, str) or kind not in BINDING_FIELDS:
            raise _invalid(f"binding {name!r} has an unknown type {kind!r}", f"{pointer}/type")
        if name in seen:
            raise _invalid(f"binding name {name!r} is used twice", f"{pointer}/name")
        seen.add(name)
        for required in BINDING_FIELDS[kind]:
            present = required in binding
            if not present or (
                required not in _ANY_FIELDS and not isinstance(binding[required], str)
            ):
                raise _invalid(
                    f"binding {name!r} of type {kind} needs {required}", f"{pointer}/{required}"
                )
        bindings.append(binding)
    return bindings


def _assets(metadata: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any] | None, bool]:
    keep_assets = metadata.get("keep_assets", False)
    if not isinstance(keep_assets, bool):
        raise _invalid("keep_assets must be a boolean", "/keep_assets")
    assets = metadata.get("assets")
    if assets is None:
        return None, None, keep_assets
    if not isinstance(assets, dict):
        raise _invalid("assets must be an object {jwt, config}", "/assets")
    jwt = assets.get("jwt")
    if not isinstance(jwt, str) or not jwt:
        raise _invalid("assets.jwt is required", "/assets/jwt")
    config = assets.get("config")
    if config is not None and not isinstance(config, dict):
        raise _invalid("assets.config must be an object", "/assets/config")
    return jwt, config, keep_assets


def _timestamp(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def _not_found(key: ScriptKey) -> ApiError:
    if key.namespace is not None:
        return ApiError(
            404, WorkersCode.NOT_IN_NAMESPACE, "This Worker does not exist in the namespace."
        )
    return ApiError(
        404, WorkersCode.WORKER_NOT_FOUND, "This Worker does not exist on your account."
    )


class WorkersState:
    """Every account's scripts; one lock, since the server answers from many threads."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        redeem_assets: RedeemAssets,
        account_subdomain: str | None,
    ) -> None:
        self._clock = clock
        self._redeem_assets = redeem_assets
        self._account_subdomain = account_subdomain
        self._lock = threading.Lock()
        self._scripts: dict[ScriptKey, Script] = {}

    # ------------------------------------------------------------------ inspection

    def script(self, key: ScriptKey) -> Script | None:
        with self._lock:
            return self._scripts.get(key)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()

    def _existing(self, key: ScriptKey) -> Script:
        script = self._scripts.get(key)
        if script is None:
            raise _not_found(key)
        return script

    # ------------------------------------------------------------------ reads

    def service(self, key: ScriptKey) -> dict[str, Any]:
        """`GET /workers/services/{s}`, or the dispatch namespace's `GET .../scripts/{s}`."""
        with self._lock:
            script = self._existing(key)
            if key.namespace is not None:
                return {
                    "created_on": script.created_on,
                    "modified_on": script.modified_on,
                    "dispatch_namespace": key.namespace,
                    "script": script.service_script(),
                }
            return {
                "id": key.name,
                "default_environment": {
                    "environment": "production",
                    "created_on": script.created_on,
                    "modified_on": script.modified_on,
                    "script": script.service_script(),
                },
                "created_on": script.created_on,
                "modified_on": script.modified_on,
            }

    def deployments(self, key: ScriptKey) -> dict[str, Any]:
        with self._lock:
            script = self._existing(key)
            return {"deployments": [d.public() for d in reversed(script.deployments)]}

    def versions(self, key: ScriptKey) -> dict[str, Any]:
        with self._lock:
            script = self._existing(key)
            return {"items": [version.public() for version in reversed(script.versions)]}

    def version(self, key: ScriptKey, version_id: str) -> dict[str, Any]:
        with self._lock:
            return self._version(self._existing(key), version_id).public()

    @staticmethod
    def _version(script: Script, version_id: str) -> Version:
        wanted = version_id.replace("-", "")
        for version in script.versions:
            if version.id.replace("-", "") == wanted:
                return version
        raise ApiError(404, WorkersCode.VERSION_NOT_FOUND, f"Version {version_id} not found")

    def settings(self, key: ScriptKey) -> dict[str, Any]:
        with self._lock:
            script = self._existing(key)
            latest = script.latest_version()
            return {
                "bindings": [_redact_binding(b) for b in latest.bindings] if latest else [],
                "compatibility_date": latest.compatibility_date if latest else None,
                "compatibility_flags": list(latest.compatibility_flags) if latest else [],
                "usage_model": "standard",
                "placement": {},
                **self._script_settings(script),
            }

    def secrets(self, key: ScriptKey) -> list[dict[str, str]]:
        """`GET …/secrets`: the names and types of the latest version's secrets, never a value
        (wrangler lists them before a deploy with vars or bindings)."""
        with self._lock:
            latest = self._existing(key).latest_version()
            bindings = latest.bindings if latest else ()
            return [
                {"name": binding["name"], "type": binding["type"]}
                for binding in bindings
                if binding.get("type") in ("secret_text", "secret_key")
            ]

    @staticmethod
    def _script_settings(script: Script) -> dict[str, Any]:
        return {
            "logpush": script.settings.get("logpush", False),
            "observability": script.settings.get("observability"),
            "tail_consumers": script.settings.get("tail_consumers"),
            "tags": script.settings.get("tags", []),
        }

    def worker(self, key: ScriptKey) -> dict[str, Any]:
        """`GET /workers/workers/{s}` (the Workers API): where wrangler now reads whether the
        Worker is on workers.dev and has preview URLs."""
        with self._lock:
            script = self._existing(key)
            subdomain: dict[str, Any] = {
                "enabled": script.subdomain_enabled,
                "previews_enabled": script.previews_enabled,
            }
            if script.subdomain_enabled and self._account_subdomain is not None:
                subdomain["url"] = f"https://{key.name}.{self._account_subdomain}.workers.dev"
            return {
                "id": script.tag,
                "name": key.name,
                "created_on": script.created_on,
                "updated_on": script.modified_on,
                "subdomain": subdomain,
                **self._script_settings(script),
            }

    def account_subdomain(self, account_id: str) -> dict[str, Any]:
        if self._account_subdomain is None:
            raise ApiError(
                404, WorkersCode.WORKER_NOT_FOUND, "This account has no workers.dev subdomain."
            )
        return {"subdomain": self._account_subdomain}

    def subdomain(self, key: ScriptKey) -> dict[str, Any]:
        with self._lock:
            script = self._existing(key)
            return {
                "enabled": script.subdomain_enabled,
                "previews_enabled": script.previews_enabled,
            }

    # ------------------------------------------------------------------ writes

    def patch_script_settings(self, key: ScriptKey, body: object) -> dict[str, Any]:
        with self._lock:
            self._existing(key)  # the path is resolved before the body is read
        if not isinstance(body, dict):
            raise ApiError(400, WorkersCode.INVALID_SETTINGS, "Settings must be a JSON object")
        checks = {
            "logpush": lambda v: isinstance(v, bool),
            "observability": lambda v: v is None or isinstance(v, dict),
            "tail_consumers": lambda v: v is None or isinstance(v, list),
            "tags": lambda v: (
                v is None or (isinstance(v, list) and all(isinstance(t, str) for t in v))
            ),
        }
        for name, value in body.items():
            check = checks.get(name)
            if check is None or not check(value):
                raise ApiError(
                    400,
                    WorkersCode.INVALID_SETTINGS,
                    f"Invalid setting {name!r}",
                    pointer=json_pointer(name),
                )
        with self._lock:
            script = self._existing(key)
            script.settings.update({k: v for k, v in body.items() if v is not None})
            return self._script_settings(script)

    def set_subdomain(self, key: ScriptKey, body: object) -> dict[str, Any]:
        """`POST .../subdomain`: `previews_enabled` left out keeps its value (wrangler leaves it
        out unless the config sets `preview_urls`)."""
        with self._lock:
            self._existing(key)  # the path is resolved before the body is read
        fields = body if isinstance(body, dict) else {}
        enabled, previews = fields.get("enabled"), fields.get("previews_enabled")
        if not isinstance(enabled, bool) or not isinstance(previews, (bool, type(None))):
            raise ApiError(
                400,
                WorkersCode.INVALID_SETTINGS,
                "Body must be {enabled: bool, previews_enabled?: bool}",
            )
        with self._lock:
            script = self._existing(key)
            script.subdomain_enabled = enabled
            if previews is not None:
                script.previews_enabled = previews
            return {"enabled": enabled, "previews_enabled": script.previews_enabled}

    def upload_script(self, key: ScriptKey, upload: ScriptUpload) -> dict[str, Any]:
        """`PUT /workers/scripts/{s}`: creates the Worker if new, uploads a version and deploys
        it to 100% at once (what the script API has always done)."""
        metadata = parse_upload_metadata(upload.parts, self._today())
        with self._lock:
            script = self._scripts.get(key)
            if script is None:
                now = _timestamp(self._clock())
                script = Script(key, secrets.token_hex(16), now, now)
            version = self._new_version(script, upload, metadata, "upload")
            self._scripts[key] = script
            split = ((version.id, 100.0),)
            self._deploy(script, split, upload.source, "upload", metadata.message)
            result = script.service_script()
        return {**result, "deployment_id": version.id, "startup_time_ms": 1}

    def upload_version(self, key: ScriptKey, upload: ScriptUpload) -> dict[str, Any]:
        """`POST /workers/scripts/{s}/versions`: a new version of an existing Worker, undeployed."""
        with self._lock:
            self._existing(key)  # the path is resolved before the body is read
        metadata = parse_upload_metadata(upload.parts, self._today())
        with self._lock:
            script = self._existing(key)
            return self._new_version(script, upload, metadata, "version_upload").public()

    def deploy(self, key: ScriptKey, body: object, *, source: str) -> dict[str, Any]:
        """`POST /workers/scripts/{s}/deployments`: route traffic to up to two versions."""
        with self._lock:
            self._existing(key)  # the path is resolved before the body is read
        split, message = _parse_deployment(body)
        with self._lock:
            script = self._existing(key)
            resolved = tuple((self._version(script, vid).id, pct) for vid, pct in split)
            deployment = self._deploy(script, resolved, source, "deployment", message)
            return deployment.public()

    # ------------------------------------------------------------------ internals

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date()

    def _new_version(
        self,
        script: Script,
        upload: ScriptUpload,
        metadata: UploadedMetadata,
        triggered_by: str,
    ) -> Version:
        """Build and append a version (the lock is held). The assets JWT is redeemed last, once
        everything else has passed, so a refused upload never spends it."""
        previous = script.latest_version()
        bindings = _resolve_bindings(metadata, previous, upload.strict_inherit)
        if metadata.assets_jwt is not None:
            assets: Mapping[str, tuple[str, int]] | None = self._redeem_assets(
                metadata.assets_jwt, script.key
            )
        elif metadata.keep_assets and previous is not None:
            assets = previous.assets
        else:
            assets = None
        modules = tuple(
            Module(part.name, part.content_type, sum(len(chunk) for chunk in part.chunks))
            for part in upload.parts
            if part.name != "metadata"
        )
        digest = hashlib.sha256()
        for part in upload.parts:
            digest.update(part.name.encode() + b"\0" + b"".join(part.chunks))
        now = _timestamp(self._clock())
        version = Version(
            id=_uuid(),
            number=len(script.versions) + 1,
            created_on=now,
            source=upload.source,
            triggered_by=triggered_by,
            message=metadata.message,
            tag=metadata.tag,
            main_module=metadata.main_module,
            compatibility_date=metadata.compatibility_date,
            compatibility_flags=metadata.compatibility_flags,
            bindings=bindings,
            modules=modules,
            assets=assets,
            assets_config=metadata.assets_config,
            etag=digest.hexdigest(),
        )
        script.versions.append(version)
        script.modified_on = now
        return version

    def _deploy(
        self,
        script: Script,
        split: tuple[tuple[str, float], ...],
        source: str,
        triggered_by: str,
        message: str | None,
    ) -> Deployment:
        deployment = Deployment(
            id=_uuid(),
            created_on=_timestamp(self._clock()),
            source=source,
            versions=split,
            triggered_by=triggered_by,
            message=message,
        )
        script.deployments.append(deployment)
        return deployment


def _resolve_bindings(
    metadata: UploadedMetadata, previous: Version | None, strict_inherit: bool
) -> tuple[Mapping[str, Any], ...]:
    """`inherit` bindings and `keep_bindings` types take the previous version's bindings; with
    `bindings_inherit=strict` an `inherit` binding the previous version lacks is refused."""
    before = {binding["name"]: binding for binding in previous.bindings} if previous else {}
    resolved: list[Mapping[str, Any]] = []
    for binding in metadata.bindings:
        if binding["type"] != "inherit":
            resolved.append(binding)
        elif binding["name"] in before:
            resolved.append(before[binding["name"]])
        elif strict_inherit:
            raise _invalid(f"binding {binding['name']!r} cannot be inherited: no such binding")
    named = {binding["name"] for binding in resolved}
    resolved.extend(
        binding
        for name, binding in before.items()
        if binding["type"] in metadata.keep_bindings and name not in named
    )
    return tuple(resolved)


def _parse_deployment(body: object) -> tuple[list[tuple[str, float]], str | None]:
    def refuse(message: str, pointer: str | None = None) -> ApiError:
        return ApiError(400, WorkersCode.INVALID_DEPLOYMENT, message, pointer=pointer)

    if not isinstance(body, dict):
        raise refuse("Deployment must be a JSON object")
    if body.get("strategy") != "percentage":
        raise refuse("strategy must be 'percentage'", "/strategy")
    versions = body.get("versions")
    if not isinstance(versions, list) or not 1 <= len(versions) <= MAX_DEPLOYMENT_VERSIONS:
        raise refuse(f"versions must list 1 to {MAX_DEPLOYMENT_VERSIONS} versions", "/versions")
    split: list[tuple[str, float]] = []
    for index, entry in enumerate(versions):
        version_id = entry.get("version_id") if isinstance(entry, dict) else None
        percentage = entry.get("percentage") if isinstance(entry, dict) else None
        if not isinstance(version_id, str) or not version_id:
            raise refuse("version_id is required", f"/versions/{index}/version_id")
        if (
            not isinstance(percentage, (int, float))
            or isinstance(percentage, bool)
            or not 0 <= percentage <= 100
        ):
            raise refuse("percentage must be from 0 to 100", f"/versions/{index}/percentage")
        split.append((version_id, float(percentage)))
    if len({version_id.replace("-", "") for version_id, _ in split}) != len(split):
        raise refuse("a version is listed twice", "/versions")
    if abs(sum(percentage for _, percentage in split) - 100) > 1e-9:
        raise refuse("percentages must add up to 100", "/versions")
    annotations = body.get("annotations") or {}
    message = annotations.get("workers/message") if isinstance(annotations, dict) else None
    return split, message if isinstance(message, str) else None


def _uuid() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
