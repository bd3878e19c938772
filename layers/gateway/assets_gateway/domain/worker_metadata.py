"""The `metadata` part of a Worker upload as wrangler writes it; its bindings classified (pure).

Cloudflare's `PUT /accounts/{a}/workers/scripts/{s}` and `POST …/versions` take a JSON
`metadata` part beside the module parts. wrangler builds it in
`@cloudflare/deploy-helpers` `createWorkerUploadForm` (workers-sdk, read at f830836): `main_module`
(ES modules) or `body_part` (service-worker format), `bindings` (a list of `{type, name, …}`),
`compatibility_date`/`_flags`, `migrations`, `keep_bindings`, `logpush`, `placement`,
`tail_consumers`, `streaming_tail_consumers`, `limits`, `annotations`, `keep_assets`,
`assets: {jwt, config}`, `observability`, `cache_options`, `containers`, `exports`,
`capnp_schema`, `package_dependencies`, `code_update_strategy`; Cloudflare's API also
documents `usage_model` and `tags`.
`wrangler.toml`'s `[unsafe.metadata]` is merged into the top level, and its unsafe bindings
arrive with their own `type` (wrangler strips `unsafe_`): both surface here as unknown.

The model checks only what the deploy policy judges (types of the fields it reads, each binding's
`type`, `name` and resource fields), keeps every other field as sent and lists the ones it does
not know. Nothing is ever written back: the gateway forwards the caller's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from assets_gateway.domain.errors import InvalidWorkerUpload, Problem
from assets_gateway_common.json_pointer import json_pointer


class BindingKind(StrEnum):
    VALUE = "value"  # carries its own value: plain_text, json, secret_text
    PLATFORM = "platform"  # a Cloudflare service with nothing of the account's to name
    RESOURCE = "resource"  # names a resource of the account (or another script)
    MODULE = "module"  # names a part of the body (service-worker format)
    INHERIT = "inherit"  # keeps the binding of the previous version
    UNKNOWN = "unknown"  # a type this table does not know (wrangler's unsafe bindings)


# type → (kind, the fields naming what it binds to; `a/b` is a nested field). From Cloudflare's
# API reference (worker script bindings) and wrangler's `createWorkerUploadForm`.
BINDING_TYPES: Mapping[str, tuple[BindingKind, tuple[str, ...]]] = {
    "plain_text": (BindingKind.VALUE, ()),
    "json": (BindingKind.VALUE, ()),
    "secret_text": (BindingKind.VALUE, ()),
    "secret_key": (BindingKind.VALUE, ()),
    "assets": (BindingKind.PLATFORM, ()),
    "version_metadata": (BindingKind.PLATFORM, ()),
    "ai": (BindingKind.PLATFORM, ()),
    "browser": (BindingKind.PLATFORM, ()),
    "images": (BindingKind.PLATFORM, ()),
    "stream": (BindingKind.PLATFORM, ()),
    "media": (BindingKind.PLATFORM, ()),
    "worker_loader": (BindingKind.PLATFORM, ()),
    "websearch": (BindingKind.PLATFORM, ()),
    "unsafe_hello_world": (BindingKind.PLATFORM, ()),
    "kv_namespace": (BindingKind.RESOURCE, ("namespace_id",)),
    "d1": (BindingKind.RESOURCE, ("id", "database_id")),
    "r2_bucket": (BindingKind.RESOURCE, ("bucket_name", "jurisdiction")),
    "queue": (BindingKind.RESOURCE, ("queue_name",)),
    "service": (BindingKind.RESOURCE, ("service", "environment", "entrypoint")),
    "durable_object_namespace": (
        BindingKind.RESOURCE,
        ("class_name", "script_name", "environment", "namespace_id"),
    ),
    "workflow": (BindingKind.RESOURCE, ("workflow_name", "class_name", "script_name")),
    "analytics_engine": (BindingKind.RESOURCE, ("dataset",)),
    "hyperdrive": (BindingKind.RESOURCE, ("id",)),
    "vectorize": (BindingKind.RESOURCE, ("index_name",)),
    "mtls_certificate": (BindingKind.RESOURCE, ("certificate_id",)),
    "dispatch_namespace": (
        BindingKind.RESOURCE,
        ("namespace", "outbound/worker/service", "outbound/worker/environment"),
    ),
    "secrets_store_secret": (BindingKind.RESOURCE, ("store_id", "secret_name")),
    "send_email": (BindingKind.RESOURCE, ("destination_address",)),
    "pipelines": (BindingKind.RESOURCE, ("pipeline", "stream")),
    "ratelimit": (BindingKind.RESOURCE, ("namespace_id",)),
    "vpc_service": (BindingKind.RESOURCE, ("service_id",)),
    "vpc_network": (BindingKind.RESOURCE, ("tunnel_id", "network_id")),
    "ai_search_namespace": (BindingKind.RESOURCE, ("namespace",)),
    "ai_search": (BindingKind.RESOURCE, ("instance_name",)),
    "agent_memory": (BindingKind.RESOURCE, ("namespace",)),
    "artifacts": (BindingKind.RESOURCE, ("namespace",)),
    "flagship": (BindingKind.RESOURCE, ("app_id",)),
    "logfwdr": (BindingKind.RESOURCE, ("destination",)),
    "wasm_module": (BindingKind.MODULE, ("part",)),
    "text_blob": (BindingKind.MODULE, ("part",)),
    "data_blob": (BindingKind.MODULE, ("part",)),
    "inherit": (BindingKind.INHERIT, ("old_name", "version_id")),
}
# Fields whose values are secrets: never in a repr, a summary or a log.
_SECRET_FIELDS = frozenset({"text", "json", "key_base64", "key_jwk"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Binding(BaseModel):
    """One binding: its `type` and `name` checked, every other field kept as sent."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)

    type: str = Field(min_length=1)
    name: str = Field(min_length=1)

    def __repr_args__(self) -> Any:  # values (secret_text's text) never reach a log
        for key, value in super().__repr_args__():
            yield key, "…" if key in _SECRET_FIELDS else value


class AssetsMetadata(BaseModel):
    """`assets: {jwt, config}`: the completion token from the asset upload, and its settings."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)

    jwt: SecretStr | None = None
    config: dict[str, Any] | None = None


class TailConsumer(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)

    service: str = Field(min_length=1)
    environment: str | None = None
    namespace: str | None = None


class WorkerMetadata(BaseModel):
    """The metadata part. Fields the policy reads are typed; the rest are kept as sent."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)

    main_module: str | None = Field(default=None, min_length=1)
    body_part: str | None = Field(default=None, min_length=1)
    compatibility_date: str | None = Field(default=None, pattern=_DATE.pattern)
    compatibility_flags: list[str] | None = None
    bindings: list[Binding] | None = None
    assets: AssetsMetadata | None = None
    keep_bindings: list[str] | None = None
    keep_assets: bool | None = None
    annotations: dict[str, Any] | None = None
    tail_consumers: list[TailConsumer] | None = None
    streaming_tail_consumers: list[TailConsumer] | None = None
    logpush: bool | None = None
    migrations: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    observability: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    usage_model: str | None = None
    tags: list[str] | None = None  # Workers for Platforms
    # Known to wrangler and forwarded as sent; the policy does not read them (yet).
    cache_options: Any = None
    containers: Any = None
    exports: Any = None
    capnp_schema: Any = None
    package_dependencies: Any = None
    code_update_strategy: Any = None  # wrangler 4.16x: how a running Worker's code is swapped

    @property
    def unknown_fields(self) -> tuple[str, ...]:
        return tuple(self.model_extra or ())


@dataclass(frozen=True)
class BindingSummary:
    """What a binding attaches, for the policy: never its value."""

    type: str
    name: str
    kind: BindingKind
    resources: tuple[tuple[str, str], ...]  # (field, value), e.g. ("namespace_id", "0f2a…")


def parse_worker_metadata(document: Any) -> WorkerMetadata:
    """The metadata model of a parsed JSON document; refusals carry a JSON pointer into it."""
    if not isinstance(document, dict):
        raise InvalidWorkerUpload("the metadata part must be a JSON object", pointer=json_pointer())
    try:
        metadata = WorkerMetadata.model_validate(document)
    except ValidationError as error:
        problems = [
            Problem(f"metadata {_where(e['loc'])}: {e['msg']}", pointer=json_pointer(*e["loc"]))
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise InvalidWorkerUpload(
            problems[0].message, pointer=problems[0].pointer, reasons=problems
        ) from None
    if metadata.main_module is not None and metadata.body_part is not None:
        raise InvalidWorkerUpload(
            "metadata names both main_module (ES modules) and body_part (service worker): name one",
            pointer=json_pointer("body_part"),
        )
    return metadata


def summarise_bindings(metadata: WorkerMetadata) -> tuple[BindingSummary, ...]:
    """Every binding classified with the resources it names, in metadata order."""
    return tuple(_summary(index, binding) for index, binding in enumerate(metadata.bindings or ()))


def _summary(index: int, binding: Binding) -> BindingSummary:
    kind, fields = BINDING_TYPES.get(binding.type, (BindingKind.UNKNOWN, ()))
    extra = binding.model_extra or {}
    resources: list[tuple[str, str]] = []
    for path in fields:
        value: Any = extra
        for token in path.split("/"):
            value = value.get(token) if isinstance(value, dict) else None
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidWorkerUpload(
                f"metadata bindings[{index}] ({binding.type} {binding.name!r}): {path} must be "
                "a string",
                pointer=json_pointer("bindings", index, *path.split("/")),
            )
        resources.append((path, value))
    return BindingSummary(binding.type, binding.name, kind, tuple(resources))


def _where(loc: tuple[int | str, ...]) -> str:
    """`bindings[2].name` for a pydantic location."""
    text = ""
    for token in loc:
        text += f"[{token}]" if isinstance(token, int) else (f".{token}" if text else token)
    return text or "(the whole part)"
