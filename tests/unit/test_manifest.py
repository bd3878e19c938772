"""Manifest validation: Cloudflare's rules plus the org's hygiene, each refusal with a pointer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assets_gateway.errors import InvalidManifest, MalformedRequest, ManifestTooLarge
from assets_gateway.manifest import (
    MAX_FILE_BYTES,
    ManifestLimits,
    check_content_type,
    json_pointer,
    parse_json_body,
    parse_manifest,
)

HASH = "0de3dd5df907418e9730fd2bd747bd5e"


def body(entries: dict[str, Any]) -> dict[str, Any]:
    return {"manifest": entries}


def test_valid_manifest_is_summarised() -> None:
    manifest = parse_manifest(
        body({"/index.html": {"hash": HASH, "size": 17}, "/a/b.css": {"hash": "ab", "size": 0}})
    )
    assert manifest.count == 2
    assert manifest.total_bytes == 17
    assert json.loads(manifest.to_body()) == body(
        {"/index.html": {"hash": HASH, "size": 17}, "/a/b.css": {"hash": "ab", "size": 0}}
    )


def test_empty_manifest_is_valid() -> None:
    assert parse_manifest(body({})).count == 0


@pytest.mark.parametrize(
    ("entries", "pointer"),
    [
        ({"/x": {"hash": "XYZ", "size": 1}}, "/manifest/~1x/hash"),
        ({"/x": {"hash": "A0", "size": 1}}, "/manifest/~1x/hash"),
        ({"/x": {"hash": "a" * 33, "size": 1}}, "/manifest/~1x/hash"),
        ({"/x": {"hash": "", "size": 1}}, "/manifest/~1x/hash"),
        ({"/x": {"hash": 12, "size": 1}}, "/manifest/~1x/hash"),
        ({"/x": {"size": 1}}, "/manifest/~1x/hash"),
        ({"/x": {"hash": HASH, "size": -1}}, "/manifest/~1x/size"),
        ({"/x": {"hash": HASH, "size": MAX_FILE_BYTES + 1}}, "/manifest/~1x/size"),
        ({"/x": {"hash": HASH, "size": 1.0}}, "/manifest/~1x/size"),
        ({"/x": {"hash": HASH, "size": True}}, "/manifest/~1x/size"),
        ({"/x": {"hash": HASH, "size": "1"}}, "/manifest/~1x/size"),
        ({"/x": {"hash": HASH}}, "/manifest/~1x/size"),
        ({"/x": {"hash": HASH, "size": 1, "type": "text/html"}}, "/manifest/~1x/type"),
        ({"/x": [HASH, 1]}, "/manifest/~1x"),
        ({"index.html": {"hash": HASH, "size": 1}}, "/manifest/index.html"),
        ({"/a/../etc/passwd": {"hash": HASH, "size": 1}}, "/manifest/~1a~1..~1etc~1passwd"),
        ({"/..": {"hash": HASH, "size": 1}}, "/manifest/~1.."),
        ({"/a/./b": {"hash": HASH, "size": 1}}, "/manifest/~1a~1.~1b"),
        ({"/a//b": {"hash": HASH, "size": 1}}, "/manifest/~1a~1~1b"),
        ({"/dir/": {"hash": HASH, "size": 1}}, "/manifest/~1dir~1"),
        ({"/a\x00b": {"hash": HASH, "size": 1}}, "/manifest/~1a\x00b"),
        ({"/a\nb": {"hash": HASH, "size": 1}}, "/manifest/~1a\nb"),
        ({"/a\x7fb": {"hash": HASH, "size": 1}}, "/manifest/~1a\x7fb"),
        ({"/" + "é" * 2049: {"hash": HASH, "size": 1}}, "/manifest/~1" + "é" * 2049),
        (
            {"/ok": {"hash": HASH, "size": 1}, "/x~y": {"hash": "no", "size": 1}},
            "/manifest/~1x~0y/hash",
        ),
    ],
)
def test_invalid_entries_are_refused_with_a_pointer(entries: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(body(entries))
    assert refused.value.pointer == pointer
    assert refused.value.code == 19001
    assert refused.value.status == 400


def test_the_first_bad_entry_is_named() -> None:
    entries = {"/a": {"hash": HASH, "size": 1}, "/b": {"hash": "!", "size": 1}, "/c": {"size": -1}}
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(body(entries))
    assert refused.value.pointer == "/manifest/~1b/hash"


def test_a_path_of_4096_bytes_is_accepted_and_one_more_is_not() -> None:
    parse_manifest(body({"/" + "a" * 4095: {"hash": HASH, "size": 1}}))
    with pytest.raises(InvalidManifest):
        parse_manifest(body({"/" + "a" * 4096: {"hash": HASH, "size": 1}}))


@pytest.mark.parametrize("document", [[], "manifest", 3, None])
def test_a_body_that_is_not_an_object_is_malformed(document: Any) -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_manifest(document)
    assert (refused.value.code, refused.value.status) == (19000, 400)


@pytest.mark.parametrize(
    ("document", "pointer"),
    [({}, "/manifest"), ({"manifest": []}, "/manifest"), ({"manifest": {}, "extra": 1}, "/extra")],
)
def test_the_manifest_field_is_required_and_alone(document: Any, pointer: str) -> None:
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(document)
    assert refused.value.pointer == pointer


def test_too_many_entries_is_413() -> None:
    entries = {f"/f{i}": {"hash": HASH, "size": 1} for i in range(11)}
    with pytest.raises(ManifestTooLarge) as refused:
        parse_manifest(body(entries), ManifestLimits(max_entries=10))
    assert (refused.value.code, refused.value.status) == (19002, 413)


def test_policy_may_demand_full_hashes() -> None:
    parse_manifest(body({"/x": {"hash": "ab", "size": 1}}))
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(
            body({"/x": {"hash": "ab", "size": 1}}), ManifestLimits(require_full_hash=True)
        )
    assert "32" in refused.value.message


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b'{"a": 1' + b"0" * 5000 + b"}"],
)
def test_bodies_that_are_not_json_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_json_body(raw)


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "application/json; charset=utf-8", "application/vnd.api+json"],
)
def test_json_content_types_are_accepted(content_type: str | None) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
def test_other_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        check_content_type(content_type)
    assert content_type in refused.value.message


def test_json_pointer_escapes_tilde_before_slash() -> None:
    assert json_pointer("manifest", "/a~/b", "hash") == "/manifest/~1a~0~1b/hash"
