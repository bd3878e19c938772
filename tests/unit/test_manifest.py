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


# --- hostile input (issue #6): strict JSON, bounded echoes -----------------------------------


@pytest.mark.parametrize(
    ("raw", "pointer"),
    [
        (
            b'{"manifest": {"/a": {"hash": "ab", "size": 1}, "/a": {"hash": "cd", "size": 2}}}',
            "/manifest/~1a",
        ),
        (b'{"manifest": {"/a": {"hash": "ab", "hash": "cd", "size": 1}}}', "/manifest/~1a/hash"),
        (b'{"manifest": {"/a": {"hash": "ab", "size": 1, "size": 2}}}', "/manifest/~1a/size"),
        (b'{"manifest": {}, "manifest": {"/a": {"hash": "ab", "size": 1}}}', "/manifest"),
        # The inner repeat is in a value the outer repeat overwrote: the outer one is named.
        (
            b'{"manifest": {"/a": {"hash": "ab", "hash": "ab", "size": 1}, "/a": {}}}',
            "/manifest/~1a",
        ),
        (b'{"manifest": {"/ok": {"hash": "ab", "size": 1}}, "x": [{"k": 1, "k": 2}]}', "/x/0/k"),
    ],
)
def test_duplicate_keys_are_refused_with_a_pointer(raw: bytes, pointer: str) -> None:
    with pytest.raises(InvalidManifest) as refused:
        parse_json_body(raw)
    assert (refused.value.code, refused.value.status) == (19001, 400)
    assert refused.value.pointer == pointer
    assert "duplicate key" in refused.value.message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(literal: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_json_body(f'{{"manifest": {{"/a": {{"hash": "ab", "size": {literal}}}}}}}'.encode())
    assert refused.value.code == 19000
    assert f"{literal} is not a JSON number" in refused.value.message


@pytest.mark.parametrize(
    "raw",
    [
        '{"manifest": {}}'.encode("utf-16"),
        '{"manifest": {}}'.encode("utf-16-le"),
        '{"manifest": {}}'.encode("utf-32"),
        '{"manifest": {"/é": {"hash": "ab", "size": 1}}}'.encode("latin-1"),
        b'{"manifest": {"/\xed\xa0\x80": {"hash": "ab", "size": 1}}}',  # an encoded surrogate
    ],
)
def test_only_utf8_is_read(raw: bytes) -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_json_body(raw)
    assert refused.value.code == 19000
    assert "UTF-8" in refused.value.message or "not valid JSON" in refused.value.message


def test_a_utf8_byte_order_mark_is_tolerated() -> None:
    assert parse_json_body(b'\xef\xbb\xbf{"manifest": {}}') == {"manifest": {}}


def test_numbers_too_long_to_read_are_named() -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_json_body(b'{"manifest": {"/a": {"hash": "ab", "size": ' + b"9" * 5000 + b"}}}")
    assert "number too long" in refused.value.message


def test_syntax_errors_say_where() -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_json_body(b'{"manifest":\n {"/a": }}')
    assert "line 2, column 9" in refused.value.message


def test_huge_floats_are_not_sizes() -> None:
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(parse_json_body(b'{"manifest": {"/a": {"hash": "ab", "size": 1e999}}}'))
    assert refused.value.pointer == "/manifest/~1a/size"


@pytest.mark.parametrize("path", ["/\ud800", "/a/\udc00b", "/" + "\ud800" * 2000])
def test_lone_surrogates_in_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(body({path: {"hash": HASH, "size": 1}}))
    assert "lone surrogate" in refused.value.message
    # The pointer every JSON parser can read: no lone surrogate in it.
    pointer = refused.value.pointer or ""
    assert pointer.startswith("/manifest/~1")
    assert "\ufffd" in pointer
    pointer.encode("utf-8")


def test_what_a_refusal_echoes_is_bounded() -> None:
    long_path = "/a" * 2_000_000
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(body({long_path: {"hash": HASH, "size": 1}}))
    assert len(refused.value.pointer or "") < 10_000
    assert (refused.value.pointer or "").endswith("…")

    long_key = "k" * 1_000_000
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest(body({"/a": {"hash": HASH, "size": 1, long_key: 1}}))
    assert len(refused.value.message) < 300
    assert "1000000 characters" in refused.value.message
    with pytest.raises(InvalidManifest) as refused:
        parse_manifest({"manifest": {}, long_key: 1})
    assert len(refused.value.message) < 300


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=UTF-8", 'application/json; charset="utf-8"', "application/json;"],
)
def test_utf8_charsets_are_accepted(content_type: str) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-16", "application/json;charset=iso-8859-1"]
)
def test_other_charsets_are_refused(content_type: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        check_content_type(content_type)
    assert "charset" in refused.value.message


def test_json_pointer_takes_array_indexes() -> None:
    assert json_pointer("x", 0, "k") == "/x/0/k"
