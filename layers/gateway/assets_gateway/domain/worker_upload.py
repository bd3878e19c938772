"""A Worker upload body judged whole, and the bytes to forward (pure).

`read_worker_upload` takes the request body as received (gzip or not), its Content-Type and
Content-Encoding, and returns a `WorkerUpload`: the parts (offset ranges, `multipart`), the
metadata model (`worker_metadata`) and the summary the deploy policy judges. The upload keeps
the very bytes it judged: `body` (the caller's `wire`, or its inflation for gzip), which the
parts index, is what Cloudflare gets (`forward_body`, `forward_headers`). Nothing else is ever
sent, so what Cloudflare reads is what was checked.

gzip: API Gateway and Lambda take 6 MB (4.5 MB of binary, which the event carries as base64),
so a large bundle reaches the gateway gzipped (`Content-Encoding: gzip`). It is inflated under a
ceiling by `request_body.gunzip`, which counts before it inflates, and forwarded inflated: the
Workers API documents no compressed request bodies, and Cloudflare's own limit is on the
Worker (10 MB compressed, 64 MiB as uploaded), which the deploy policy's `max_script_bytes`
bounds before anything is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import SecretStr

from assets_gateway.domain.errors import (
    GatewayError,
    InvalidWorkerUpload,
    ManifestTooLarge,
    WorkerUploadTooLarge,
)
from assets_gateway.domain.json_values import holds_at_most
from assets_gateway.domain.multipart import FormData, FormLimits, Part, read_form_data
from assets_gateway.domain.request_body import gunzip, parse_json_body, shown
from assets_gateway.domain.worker_metadata import (
    BindingKind,
    BindingSummary,
    WorkerMetadata,
    parse_worker_metadata,
    summarise_bindings,
)
from assets_gateway.domain.worker_sizes import MAX_INFLATED_BYTES, MIB

# Lambda's synchronous payload limit is 6 MB; the door may be given less.
MAX_WIRE_BYTES = 6 * 1000 * 1000
MAX_METADATA_BYTES = 1 * MIB
# JSON values (json_values.holds_at_most) the metadata may hold: a 1 MiB part of `[{},{},…]`
# would build ~350,000 dicts (26 MiB). wrangler's metadata holds a few per binding; 128 `json`
# variables of 5 KB each (Cloudflare's ceilings) would need 320,000 of single digits.
MAX_METADATA_VALUES = 100_000
METADATA_PART = "metadata"
_METADATA_TYPES = frozenset({None, "application/json", "text/plain"})


@dataclass(frozen=True)
class UploadLimits:
    max_wire_bytes: int = MAX_WIRE_BYTES
    max_inflated_bytes: int = MAX_INFLATED_BYTES
    max_metadata_bytes: int = MAX_METADATA_BYTES
    max_metadata_values: int = MAX_METADATA_VALUES
    form: FormLimits = field(default_factory=FormLimits)


@dataclass(frozen=True)
class ModuleSummary:
    """A part other than the metadata: a module, source map or blob, by its size only."""

    name: str
    filename: str | None
    content_type: str | None
    size: int


@dataclass(frozen=True)
class UploadSummary:
    """What the deploy policy judges. `assets_jwt` is a secret (its repr is masked)."""

    main_module: str | None
    body_part: str | None
    modules: tuple[ModuleSummary, ...]
    script_bytes: int  # every part but the metadata, as Cloudflare receives them inflated
    wire_bytes: int  # the body as sent (compressed when gzip)
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    bindings: tuple[BindingSummary, ...]
    unknown_fields: tuple[str, ...]  # top-level metadata fields the model does not know
    tail_consumers: tuple[str, ...]  # services named by tail_consumers and streaming ones
    logpush: bool
    migrations: bool
    keep_bindings: tuple[str, ...] | None
    keep_assets: bool | None
    assets_jwt: SecretStr | None = field(repr=False)

    @property
    def bindings_by_type(self) -> Mapping[str, tuple[BindingSummary, ...]]:
        grouped: dict[str, list[BindingSummary]] = {}
        for binding in self.bindings:
            grouped.setdefault(binding.type, []).append(binding)
        return {kind: tuple(bindings) for kind, bindings in grouped.items()}

    @property
    def unknown_binding_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.type for b in self.bindings if b.kind is BindingKind.UNKNOWN))

    @property
    def unsafe(self) -> bool:
        """Anything wrangler's `[unsafe]` section can send: unknown binding types or fields."""
        return bool(self.unknown_binding_types or self.unknown_fields)


@dataclass(frozen=True)
class WorkerUpload:
    """A judged upload: `form.body` (`wire`, inflated when gzip) is what the parts index and
    what is forwarded."""

    wire: bytes = field(repr=False)
    content_type: str
    content_encoding: str | None
    form: FormData
    metadata: WorkerMetadata = field(repr=False)
    summary: UploadSummary

    @property
    def body(self) -> bytes:
        """The bytes the parts index: `wire` itself, or its inflation for gzip."""
        return self.form.body

    def forward_body(self) -> bytes:
        return self.body

    def forward_headers(self) -> dict[str, str]:
        """The headers that give `body` its meaning, exactly as they were judged."""
        return {"Content-Type": self.content_type}

    @cached_property
    def wire_sha256(self) -> str:
        """Fingerprint of what was judged and forwarded, for the audit record."""
        return hashlib.sha256(self.wire).hexdigest()


def read_worker_upload(
    wire: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: UploadLimits = UploadLimits(),
) -> WorkerUpload:
    """Judge a Worker upload body whole; refuses with `InvalidWorkerUpload` (400) or
    `WorkerUploadTooLarge` (413), each naming what to fix."""
    if not isinstance(wire, bytes):  # a bytearray could change after it was judged
        raise TypeError("read_worker_upload reads bytes")
    if len(wire) > limits.max_wire_bytes:
        raise WorkerUploadTooLarge(
            f"the request body is {len(wire)} bytes, more than {limits.max_wire_bytes}: "
            "send it with Content-Encoding: gzip"
        )
    body = _decoded(wire, content_encoding, limits.max_inflated_bytes)
    form = read_form_data(body, content_type, limits.form)
    assert content_type is not None  # read_form_data refuses a body without one
    metadata = _metadata(form, limits)
    _check_references(form, metadata)
    return WorkerUpload(
        wire=wire,
        content_type=content_type,
        content_encoding=content_encoding,
        form=form,
        metadata=metadata,
        summary=_summary(form, metadata, len(wire)),
    )


def _decoded(wire: bytes, content_encoding: str | None, limit: int) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return wire
    if encoding != "gzip":
        raise InvalidWorkerUpload(
            f"Content-Encoding {shown(content_encoding or '')} is not accepted: send the body "
            "as it is or with Content-Encoding: gzip"
        )
    try:
        return gunzip(wire, limit, what="the gzip request body")
    except ManifestTooLarge as error:
        raise WorkerUploadTooLarge(error.message) from None
    except GatewayError as error:
        raise InvalidWorkerUpload(error.message) from None


def _metadata(form: FormData, limits: UploadLimits) -> WorkerMetadata:
    part = form.get(METADATA_PART)
    if part is None:
        raise InvalidWorkerUpload(
            'the upload has no part named "metadata" (the JSON that names main_module, '
            "bindings and compatibility_date)"
        )
    if part.media_type not in _METADATA_TYPES:
        raise InvalidWorkerUpload(
            f"the metadata part has Content-Type {shown(part.content_type or '')}: send it "
            "as application/json (or without a type)"
        )
    if part.size > limits.max_metadata_bytes:
        raise WorkerUploadTooLarge(
            f"the metadata part is larger than {limits.max_metadata_bytes} bytes"
        )
    raw = bytes(form.content(part))
    if not holds_at_most(raw, limits.max_metadata_values):
        raise WorkerUploadTooLarge(
            f"the metadata part holds more than {limits.max_metadata_values} JSON values"
        )
    try:
        document = parse_json_body(raw)
    except GatewayError as error:
        raise InvalidWorkerUpload(
            f"the metadata part: {error.message}", pointer=error.pointer
        ) from None
    return parse_worker_metadata(document)


def _check_references(form: FormData, metadata: WorkerMetadata) -> None:
    """main_module / body_part and module bindings must name parts of this body."""
    names = {part.name for part in form.parts if part.name != METADATA_PART}
    for field_name in ("main_module", "body_part"):
        named = getattr(metadata, field_name)
        if named is not None and named not in names:
            raise InvalidWorkerUpload(
                f"metadata {field_name} names {shown(named)}, and no part of the upload has "
                "that name",
                pointer=f"/{field_name}",
            )
    for index, binding in enumerate(metadata.bindings or ()):
        part = (binding.model_extra or {}).get("part")
        if part is not None and (not isinstance(part, str) or part not in names):
            raise InvalidWorkerUpload(
                f"metadata bindings[{index}] ({binding.type} {binding.name!r}) names part "
                f"{shown(str(part))}, and no part of the upload has that name",
                pointer=f"/bindings/{index}/part",
            )


def _summary(form: FormData, metadata: WorkerMetadata, wire_bytes: int) -> UploadSummary:
    modules = tuple(_module(part) for part in form.parts if part.name != METADATA_PART)
    consumers = (*(metadata.tail_consumers or ()), *(metadata.streaming_tail_consumers or ()))
    return UploadSummary(
        main_module=metadata.main_module,
        body_part=metadata.body_part,
        modules=modules,
        script_bytes=sum(module.size for module in modules),
        wire_bytes=wire_bytes,
        compatibility_date=metadata.compatibility_date,
        compatibility_flags=tuple(metadata.compatibility_flags or ()),
        bindings=summarise_bindings(metadata),
        unknown_fields=metadata.unknown_fields,
        tail_consumers=tuple(consumer.service for consumer in consumers),
        logpush=bool(metadata.logpush),
        migrations=metadata.migrations is not None,
        keep_bindings=None if metadata.keep_bindings is None else tuple(metadata.keep_bindings),
        keep_assets=metadata.keep_assets,
        assets_jwt=metadata.assets.jwt if metadata.assets else None,
    )


def _module(part: Part) -> ModuleSummary:
    return ModuleSummary(part.name, part.filename, part.content_type, part.size)
