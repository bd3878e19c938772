"""Worker upload bodies as wrangler sends them: the metadata model, the summary the deploy
policy judges, gzip, and the bytes forwarded being the bytes judged."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from form_bodies import BOUNDARY, CONTENT_TYPE, MIB, FormPart, form

from assets_gateway.domain.envelope import error_reply
from assets_gateway.domain.errors import GatewayError, InvalidWorkerUpload, WorkerUploadTooLarge
from assets_gateway.domain.multipart import FormLimits
from assets_gateway.domain.worker_metadata import BINDING_TYPES, BindingKind
from assets_gateway.domain.worker_upload import UploadLimits, WorkerUpload, read_worker_upload
from helpers import traced_peak

JWT = "eyJhbGciOiJIUzI1NiJ9.completion-token.sig"
INDEX_JS = b"import './chunk.js';\r\nexport default {}"
SECRET = "s3cr3t-value-never-logged"
WASM = b"\x00asm\x01\x00\x00\x00\r\n\r\n--" + BOUNDARY[:-1].encode() + b"\r\n\xff"

# Bindings as wrangler's createWorkerUploadForm writes them (workers-sdk f830836).
BINDINGS: list[dict[str, Any]] = [
    {"name": "GREETING", "type": "plain_text", "text": "hello"},
    {"name": "CONFIG", "type": "json", "json": {"a": 1}},
    {"name": "API_KEY", "type": "secret_text", "text": SECRET},
    {"name": "CF_VERSION", "type": "version_metadata"},
    {"name": "ASSETS", "type": "assets"},
    {"name": "KV", "type": "kv_namespace", "namespace_id": "0f2ac74b498b48028cb68387c421e279"},
    {"name": "DB", "type": "d1", "id": "xxxx-d1-id"},
    {"name": "BUCKET", "type": "r2_bucket", "bucket_name": "team-bucket"},
    {"name": "JOBS", "type": "queue", "queue_name": "team-jobs"},
    {"name": "AUTH", "type": "service", "service": "auth-worker", "environment": "production"},
    {
        "name": "ROOMS",
        "type": "durable_object_namespace",
        "class_name": "Room",
        "script_name": "rooms",
    },
    {"name": "STATS", "type": "analytics_engine", "dataset": "team_stats"},
    {"name": "AI", "type": "ai"},
    {"name": "BROWSER", "type": "browser"},
    {"name": "PG", "type": "hyperdrive", "id": "hyperdrive-id"},
    {"name": "VECTORS", "type": "vectorize", "index_name": "team-index"},
    {"name": "CERT", "type": "mtls_certificate", "certificate_id": "cert-id"},
    {
        "name": "DISPATCH",
        "type": "dispatch_namespace",
        "namespace": "customers",
        "outbound": {"worker": {"service": "outbound-worker"}, "params": [{"name": "x"}]},
    },
    {"name": "FLOW", "type": "workflow", "workflow_name": "flow", "class_name": "Flow"},
    {"name": "STORE", "type": "secrets_store_secret", "store_id": "st", "secret_name": "sn"},
    {"name": "OLD", "type": "inherit"},
    {"name": "MYSTERY", "type": "some_unsafe_thing", "param": 1},
]


# What the summary names of each resource binding above, in BINDINGS' order of fields.
RESOURCES = {
    "kv_namespace": (("namespace_id", "0f2ac74b498b48028cb68387c421e279"),),
    "d1": (("id", "xxxx-d1-id"),),
    "r2_bucket": (("bucket_name", "team-bucket"),),
    "queue": (("queue_name", "team-jobs"),),
    "service": (("service", "auth-worker"), ("environment", "production")),
    "durable_object_namespace": (("class_name", "Room"), ("script_name", "rooms")),
    "analytics_engine": (("dataset", "team_stats"),),
    "hyperdrive": (("id", "hyperdrive-id"),),
    "vectorize": (("index_name", "team-index"),),
    "mtls_certificate": (("certificate_id", "cert-id"),),
    "dispatch_namespace": (
        ("namespace", "customers"),
        ("outbound/worker/service", "outbound-worker"),
    ),
    "workflow": (("workflow_name", "flow"), ("class_name", "Flow")),
    "secrets_store_secret": (("store_id", "st"), ("secret_name", "sn")),
    "plain_text": (),
    "ai": (),
}


def metadata(**fields: Any) -> dict[str, Any]:
    """What `wrangler deploy` sends for a new Worker with assets (fields override)."""
    document: dict[str, Any] = {
        "main_module": "index.js",
        "bindings": BINDINGS,
        "compatibility_date": "2026-11-01",
        "compatibility_flags": ["nodejs_compat"],
        "assets": {"jwt": JWT, "config": {"html_handling": "auto-trailing-slash"}},
        "observability": {"enabled": True},
    }
    document.update(fields)
    return {key: value for key, value in document.items() if value is not None}


def wrangler_body(document: dict[str, Any] | bytes | None = None, *more: FormPart) -> bytes:
    if not isinstance(document, bytes):
        document = json.dumps(document or metadata()).encode()
    return form(
        [
            ("metadata", document, None, None),
            ("index.js", INDEX_JS, "index.js", "application/javascript+module"),
            ("chunk.js", b"export const x = 1;", "chunk.js", "application/javascript+module"),
            ("a.wasm", WASM, "a.wasm", "application/wasm"),
            ("index.js.map", b'{"version":3}', "index.js.map", "application/source-map"),
            *more,
        ]
    )


def read(body: bytes, **kwargs: Any) -> WorkerUpload:
    return read_worker_upload(body, CONTENT_TYPE, **kwargs)


def refusal(body: bytes, content_type: str = CONTENT_TYPE, **kwargs: Any) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        read_worker_upload(body, content_type, **kwargs)
    return refused.value


def test_a_new_worker_with_assets_is_summarised_for_the_deploy_policy() -> None:
    body = wrangler_body()
    upload = read(body)
    summary = upload.summary
    assert summary.main_module == "index.js"
    assert summary.body_part is None
    assert [(m.name, m.content_type, m.size) for m in summary.modules] == [
        ("index.js", "application/javascript+module", len(INDEX_JS)),
        ("chunk.js", "application/javascript+module", 19),
        ("a.wasm", "application/wasm", len(WASM)),
        ("index.js.map", "application/source-map", 13),
    ]
    assert summary.script_bytes == len(INDEX_JS) + 19 + len(WASM) + 13
    assert summary.wire_bytes == len(body)
    assert summary.compatibility_date == "2026-11-01"
    assert summary.compatibility_flags == ("nodejs_compat",)
    assert summary.assets_jwt is not None
    assert summary.assets_jwt.get_secret_value() == JWT
    assert (summary.keep_bindings, summary.keep_assets) == (None, None)
    assert (summary.logpush, summary.migrations, summary.tail_consumers) == (False, False, ())
    by_type = summary.bindings_by_type
    assert {kind: by_type[kind][0].resources for kind in RESOURCES} == RESOURCES
    kinds = {b.type: b.kind for b in summary.bindings}
    assert kinds["plain_text"] is kinds["secret_text"] is BindingKind.VALUE
    assert kinds["assets"] is kinds["version_metadata"] is kinds["ai"] is BindingKind.PLATFORM
    assert kinds["inherit"] is BindingKind.INHERIT
    assert kinds["some_unsafe_thing"] is BindingKind.UNKNOWN
    assert summary.unknown_binding_types == ("some_unsafe_thing",)
    assert summary.unsafe
    assert [b.name for b in summary.bindings] == [b["name"] for b in BINDINGS]


def test_every_binding_type_cloudflare_documents_is_classified() -> None:
    documented = {
        "assets", "plain_text", "json", "secret_text", "version_metadata", "kv_namespace", "d1",
        "r2_bucket", "queue", "service", "durable_object_namespace", "analytics_engine", "ai",
        "browser", "hyperdrive", "vectorize", "mtls_certificate", "dispatch_namespace",
        "workflow", "secrets_store_secret", "inherit", "wasm_module", "text_blob", "data_blob",
        "send_email", "pipelines", "images", "ratelimit", "worker_loader", "secret_key",
    }  # fmt: skip
    assert documented <= set(BINDING_TYPES)
    assert all(kind is not BindingKind.UNKNOWN for kind, _ in BINDING_TYPES.values())


def test_the_forwarded_bytes_are_the_judged_bytes() -> None:
    body = wrangler_body()
    upload = read(body)
    assert upload.forward_body() is body
    assert upload.body is body
    assert upload.forward_headers() == {"Content-Type": CONTENT_TYPE}
    assert len(upload.wire_sha256) == 64
    module = upload.form.get("a.wasm")
    assert module is not None
    assert upload.form.content(module) == WASM


def test_gzip_is_inflated_for_judging_and_forwarded_as_judged() -> None:
    plain = wrangler_body()
    wire = gzip.compress(plain)
    upload = read_worker_upload(wire, CONTENT_TYPE, "gzip")
    assert upload.forward_body() is upload.body
    assert upload.forward_headers() == {"Content-Type": CONTENT_TYPE}
    assert upload.body == plain
    assert upload.summary.wire_bytes == len(wire)
    assert upload.summary.script_bytes == read(plain).summary.script_bytes
    assert read_worker_upload(plain, CONTENT_TYPE, "identity").body is plain
    assert read_worker_upload(wire, CONTENT_TYPE, " GZip ").body == plain


@pytest.mark.parametrize(
    ("wire", "encoding", "kind", "words"),
    [
        (gzip.compress(b"x" * (MIB + 1)), "gzip", WorkerUploadTooLarge, "more than 1048576"),
        (b"not gzip at all", "gzip", InvalidWorkerUpload, "not valid gzip"),
        (gzip.compress(b"abc")[:-4], "gzip", InvalidWorkerUpload, "truncated gzip"),
        (b"x", "br", InvalidWorkerUpload, "Content-Encoding 'br' is not accepted"),
        (b"x", "gzip, gzip", InvalidWorkerUpload, "is not accepted"),
        (b"x" * (2 * MIB + 1), None, WorkerUploadTooLarge, "send it with Content-Encoding: gzip"),
    ],
)
def test_encodings_and_sizes_are_held_to_their_ceilings(
    wire: bytes, encoding: str | None, kind: type[GatewayError], words: str
) -> None:
    limits = UploadLimits(max_wire_bytes=2 * MIB, max_inflated_bytes=MIB)
    refused = refusal(wire, content_encoding=encoding, limits=limits)
    assert type(refused) is kind
    assert words in refused.message


def test_an_assets_only_upload_has_metadata_and_no_module() -> None:
    document = {"assets": {"jwt": JWT, "config": {}}, "compatibility_date": "2026-11-01"}
    upload = read(form([("metadata", json.dumps(document).encode(), None, None)]))
    assert upload.summary.modules == ()
    assert upload.summary.script_bytes == 0
    assert upload.summary.main_module is None
    assert upload.summary.bindings == ()


def test_a_service_worker_names_its_body_part_and_blobs() -> None:
    document = {
        "body_part": "worker.js",
        "bindings": [{"name": "a_wasm", "type": "wasm_module", "part": "a_wasm"}],
    }
    body = form(
        [
            ("a_wasm", WASM, "a.wasm", "application/wasm"),
            ("metadata", json.dumps(document).encode(), None, None),
            ("worker.js", b"addEventListener()", "worker.js", "application/javascript"),
        ]
    )
    summary = read(body).summary
    assert summary.body_part == "worker.js"
    assert summary.bindings[0].kind is BindingKind.MODULE
    assert summary.bindings[0].resources == (("part", "a_wasm"),)


def test_versions_upload_fields_and_unknown_fields_are_kept_and_reported() -> None:
    document = metadata(
        keep_bindings=["secret_text", "secret_key"],
        keep_assets=True,
        annotations={"workers/message": "fix", "workers/tag": "v2"},
        tail_consumers=[{"service": "tail-a"}],
        streaming_tail_consumers=[{"service": "tail-b", "environment": "prod"}],
        logpush=True,
        migrations={"new_tag": "v1", "new_sqlite_classes": ["Room"]},
        placement={"mode": "smart"},
        limits={"cpu_ms": 50},
        usage_model="standard",
        tags=["team-a"],
        capnp_schema="./capnp-1.compiled",
        future_field={"x": 1},
    )
    upload = read(wrangler_body(document))
    summary = upload.summary
    assert summary.keep_bindings == ("secret_text", "secret_key")
    assert summary.keep_assets is True
    assert summary.tail_consumers == ("tail-a", "tail-b")
    assert (summary.logpush, summary.migrations) == (True, True)
    assert summary.unknown_fields == ("future_field",)
    assert upload.metadata.model_extra == {"future_field": {"x": 1}}
    assert (upload.metadata.usage_model, upload.metadata.tags) == ("standard", ["team-a"])


def test_no_secret_reaches_a_repr() -> None:
    upload = read(wrangler_body())
    for shown in (repr(upload), repr(upload.summary), repr(upload.metadata), str(upload)):
        assert JWT not in shown
        assert SECRET not in shown


OUTBOUND_NOT_A_STRING = {
    "type": "dispatch_namespace",
    "name": "D",
    "namespace": "n",
    "outbound": {"worker": {"service": ["x"]}},
}


@pytest.mark.parametrize(
    ("document", "pointer", "words"),
    [
        (b"not json", None, "metadata part: request body is not valid JSON"),
        (b'{"main_module":"index.js","main_module":"x"}', "/main_module", "duplicate key"),
        (b"[]", "", "must be a JSON object"),
        (metadata(bindings={"a": 1}), "/bindings", "Input should be a valid list"),
        (metadata(bindings=[{"name": "X"}]), "/bindings/0/type", "Field required"),
        (metadata(bindings=[{"type": "kv_namespace", "name": ""}]), "/bindings/0/name", "1 char"),
        (metadata(bindings=[{"type": "plain_text", "name": 1}]), "/bindings/0/name", "string"),
        (metadata(compatibility_date="tomorrow"), "/compatibility_date", "pattern"),
        (metadata(compatibility_flags="nodejs_compat"), "/compatibility_flags", "list"),
        (metadata(keep_assets="yes"), "/keep_assets", "boolean"),
        (metadata(logpush=1), "/logpush", "boolean"),
        (metadata(tags="team-a"), "/tags", "list"),
        (metadata(assets={"jwt": 5}), "/assets/jwt", "string"),
        (metadata(tail_consumers=[{}]), "/tail_consumers/0/service", "Field required"),
        (metadata(body_part="index.js"), "/body_part", "names both main_module"),
        (metadata(main_module="missing.js"), "/main_module", "no part of the upload"),
        (
            metadata(bindings=[{"type": "kv_namespace", "name": "KV", "namespace_id": 7}]),
            "/bindings/0/namespace_id",
            "namespace_id must be a string",
        ),
        (
            metadata(
                bindings=[
                    {
                        "type": "dispatch_namespace",
                        "name": "D",
                        "namespace": "n",
                        "outbound": {"worker": {"service": ["x"]}},
                    }
                ]
            ),
            "/bindings/0/outbound/worker/service",
            "must be a string",
        ),
        (
            metadata(bindings=[{"type": "wasm_module", "name": "W", "part": "nope"}]),
            "/bindings/0/part",
            "no part of the upload",
        ),
    ],
)
def test_invalid_metadata_is_refused_with_a_pointer(
    document: dict[str, Any] | bytes, pointer: str | None, words: str
) -> None:
    refused = refusal(wrangler_body(document))
    assert type(refused) is InvalidWorkerUpload
    assert words in refused.message
    assert refused.pointer == pointer


def test_metadata_part_faults_are_named() -> None:
    without = form([("index.js", b"x", "index.js", "application/javascript+module")])
    assert 'no part named "metadata"' in refusal(without).message
    typed = form([("metadata", b"{}", "m.bin", "application/octet-stream")])
    assert "application/json" in refusal(typed).message
    as_json = form([("metadata", b"{}", "metadata.json", "application/json; charset=utf-8")])
    assert read(as_json).summary.modules == ()
    big = refusal(wrangler_body(metadata(padding="x" * 2000)),
                  limits=UploadLimits(max_metadata_bytes=1000))  # fmt: skip
    assert type(big) is WorkerUploadTooLarge
    assert "larger than 1000 bytes" in big.message


def test_a_metadata_part_of_350_000_empty_objects_is_refused_before_it_is_built() -> None:
    count = (MIB - 64) // 3
    raw = b'{"main_module":"index.js","exports":[' + b",".join([b"{}"] * count) + b"]}"
    assert len(raw) < MIB
    body = wrangler_body(raw)
    peak, refused = traced_peak(lambda: read(body))
    assert isinstance(refused, WorkerUploadTooLarge)
    assert "more than 100000 JSON values" in refused.message
    assert peak < 3 * MIB, f"{peak / MIB:.1f} MiB"  # the part's copy, not 350,000 dicts
    # Under the ceiling, the same shape is read: the ceiling is the caller's to choose.
    limits = UploadLimits(max_metadata_values=count + 10)
    assert read(body, limits=limits).metadata.exports == [{}] * count


def test_refusals_become_cloudflare_envelopes_a_person_can_act_on() -> None:
    refused = refusal(wrangler_body(metadata(compatibility_date="soon")))
    reply = error_reply(refused)
    assert reply.status == 400
    envelope = json.loads(reply.body)
    assert envelope["success"] is False
    assert envelope["errors"][0]["code"] == 19060
    assert envelope["errors"][0]["source"] == {"pointer": "/compatibility_date"}
    assert "compatibility_date" in envelope["errors"][0]["message"]
    too_big = error_reply(refusal(b"x" * 10, limits=UploadLimits(max_wire_bytes=5)))
    assert too_big.status == 413
    assert json.loads(too_big.body)["errors"][0]["code"] == 19061


def test_only_immutable_bytes_are_judged() -> None:
    with pytest.raises(TypeError):
        read_worker_upload(bytearray(wrangler_body()), CONTENT_TYPE)  # type: ignore[arg-type]


def test_a_gzip_bomb_of_tiny_parts_is_refused_within_the_inflated_body_and_a_little() -> None:
    unit = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="p{{}}"\r\n\r\n\r\n'
    plain = "".join(unit.format(n) for n in range(360_000)).encode()  # ~32 MiB
    wire = gzip.compress(plain, 9)
    del plain
    assert len(wire) < 6 * 1000 * 1000
    limits = UploadLimits(max_inflated_bytes=32 * MIB, form=FormLimits())
    peak, refused = traced_peak(lambda: read_worker_upload(wire, CONTENT_TYPE, "gzip", limits))
    assert isinstance(refused, WorkerUploadTooLarge)
    assert "more than 2000 parts" in refused.message
    # The inflated body once (gunzip holds one copy), plus the part table of 2,000 parts.
    assert peak < 32 * MIB + 2 * MIB, f"{peak / MIB:.1f} MiB"
