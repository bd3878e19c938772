"""Manifest validation: Cloudflare's rules plus the org's hygiene, each refusal with a pointer."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assets_gateway.domain.manifest as manifest_module
from assets_gateway.domain.errors import (
    GatewayError,
    InvalidManifest,
    MalformedRequest,
    ManifestTooLarge,
)
from assets_gateway.domain.json_values import values_outside_strings
from assets_gateway.domain.manifest import (
    MAX_FILE_BYTES,
    Manifest,
    ManifestLimits,
    _accept_decoded,
    check_structure,
    parse_manifest,
    parse_manifest_body,
)
from assets_gateway.domain.request_body import check_content_type, gunzip, parse_json_body
from helpers import traced_peak

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


# --- the fast path (issue #7): the strict path's answers in fewer steps ----------------------


DEFAULT_LIMITS = ManifestLimits()


def strict(raw: bytes, limits: ManifestLimits = DEFAULT_LIMITS) -> Manifest:
    """The reference: the structural limit, then the strict parse and checks in document order."""
    check_structure(raw.removeprefix(b"\xef\xbb\xbf"), limits)
    return parse_manifest(parse_json_body(raw), limits)


def outcome(parse: Any, raw: bytes, limits: ManifestLimits) -> tuple[Any, ...]:
    """What a caller would see: the refusal (type, code, status, message, pointer) or the
    manifest (entries, total bytes)."""
    try:
        manifest = parse(raw, limits)
    except GatewayError as error:
        return (type(error), error.code, error.status, error.message, error.pointer)
    return ("accepted", manifest.entries, manifest.total_bytes)


def canonical(entries: Any) -> bytes:
    """What the gateway has always sent Cloudflare: compact ASCII JSON of the manifest (the
    fast path's entries are a mapping of mappings, not always dicts)."""
    return json.dumps({"manifest": entries}, separators=(",", ":"), default=dict).encode()


def assert_same_answer(raw: bytes, limits: ManifestLimits = DEFAULT_LIMITS) -> None:
    """Same refusal, or same manifest and the very same bytes forwarded to Cloudflare."""
    fast = outcome(parse_manifest_body, raw, limits)
    assert fast == outcome(strict, raw, limits)
    if fast[0] == "accepted":
        assert parse_manifest_body(raw, limits).to_body() == canonical(fast[1])
        assert strict(raw, limits).to_body() == canonical(fast[1])


def entry(digest: str = HASH, size: Any = 1) -> dict[str, Any]:
    return {"hash": digest, "size": size}


HOSTILE_BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b'"manifest"',
    b"{}",
    b'{"manifest": []}',
    b'{"manifest": {}}',
    b'{"manifest": {}, "extra": 1}',
    b'{"extra": 1, "manifest": {}}',
    b"\xef\xbb\xbf" + b'{"manifest": {"/a": {"hash": "ab", "size": 1}}}',
    b"\xef\xbb\xbf\xef\xbb\xbf" + b'{"manifest": {}}',
    b"\xff\xfe{}",
    '{"manifest": {}}'.encode("utf-16"),
    '{"manifest": {"/é": {"hash": "ab", "size": 1}}}'.encode("latin-1"),
    b'{"manifest": {"/\xed\xa0\x80": {"hash": "ab", "size": 1}}}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000,
    b'{"manifest": {"/a": ' + b"[" * 2000 + b"]" * 2000 + b"}}",
    # Duplicate keys, at every level, also where the duplicate is the only difference.
    b'{"manifest": {"/a": {"hash": "ab", "size": 1}, "/a": {"hash": "cd", "size": 2}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1}, "/a": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "hash": "cd", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1, "size": 2}}}',
    b'{"manifest": {}, "manifest": {"/a": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "hash": "ab", "size": 1}, "/a": {}}}',
    b'{"manifest": {"/ok": {"hash": "ab", "size": 1}}, "x": [{"k": 1, "k": 2}]}',
    # Duplicates hidden behind escaped colons (one decoded colon for each `:` the duplicate
    # adds): the separator count alone would miss them.
    b'{"manifest": {"/a\\u003a\\u003a\\u003a": {"hash": "ab", "size": 1},'
    b' "/b": {"hash": "ab", "size": 1}, "/b": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a\\u003a": {"hash": "ab", "hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a\\u003A": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a:b": {"hash": "ab", "size": 1}, "/c\\":": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1}, "/\\u0061": {"hash": "ab", "size": 1}}}',
    # Numbers.
    b'{"manifest": {"/a": {"hash": "ab", "size": NaN}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": Infinity}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": -Infinity}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1e999}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": -1e999}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": ' + b"9" * 5000 + b"}}}",
    b'{"manifest": {"/a": {"hash": "ab", "size": ' + b"9" * 4000 + b"}}}",
    b'{"manifest": {"/a": {"hash": "ab", "size": 99999999999999999999}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 18446744073709551615}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1.0}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1E2}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": -0}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": -1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": true}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": null}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": "1"}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 26214401}}}',
    # Strings.
    b'{"manifest": {"/\\ud800": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/\\udc00\\ud800": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/\\ud83d\\ude00": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "\\ud800", "size": 1}}}',
    b'{"manifest": {"/a\x01": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a\\n": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a\\u0000b": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a\x7f": {"hash": "ab", "size": 1}}}',
    '{"manifest": {"/a\x85": {"hash": "ab", "size": 1}}}'.encode(),
    '{"manifest": {"/a\u00a0b": {"hash": "ab", "size": 1}}}'.encode(),
    b'{"manifest": {"/a": {"hash": "ab\\n", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "a\\nb", "size": 1}, "/b": {"hash": "cd", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "AB", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "\\u0061b", "size": 1}}}',
    b'{"manifest": {"\\/a\\/b": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"\\u002fa": {"hash": "ab", "size": 1}}}',
    # Shapes.
    b'{"manifest": {"/a": ["ab", 1]}}',
    b'{"manifest": {"/a": "ab"}}',
    b'{"manifest": {"/a": null}}',
    b'{"manifest": {"/a": {}}}',
    b'{"manifest": {"/a": {"hash": "ab"}}}',
    b'{"manifest": {"/a": {"size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1, "type": "text/html"}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1, "x": {"y": 1}}}}',
    b'{"manifest": {"/a": {"hash": {"x": 1}, "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": {"x": 1}}}}',
    b'{"manifest": {"\\u006danifest": 1}}',
    b'{"\\u006danifest": {"/a": {"hash": "ab", "size": 1}}}',
    b'{"manifest": {"/a": {"hash": "ab", "size": 1}}} x',
    b' \t\r\n{"manifest": {"/a": {"hash": "ab", "size": 1}}} \n',
]


@pytest.mark.parametrize("raw", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_the_fast_path_answers_hostile_bodies_as_the_strict_path_does(raw: bytes) -> None:
    assert_same_answer(raw)
    assert_same_answer(raw, ManifestLimits(require_full_hash=True, max_entries=1))


PATHS = [
    "/",
    "/a",
    "/a/",
    "//a",
    "/a//b",
    "/.",
    "/..",
    "/a/.",
    "/a/..",
    "/a/./b",
    "/a/../b",
    "/.well-known/security.txt",
    "/a/.env",
    "/a/..b",
    "/a/b.",
    "/a:b",
    "/é/ü.html",
    "/日本/索引.html",
    "/😀.png",
    "/a b",
    "/a\tb",
    "/a\u2028b",
    "/a\u00adb",
    "a",
    "",
    "/" + "a" * 4095,
    "/" + "a" * 4096,
    "/" + "é" * 2047,
    "/" + "é" * 2048,
    "/" + "😀" * 1023,
    "/" + "😀" * 1024,
    '/a"b',
    "/a\\b",
    "/a\\",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_fast_path_checks_paths_as_the_strict_path_does(path: str, ensure_ascii: bool) -> None:
    # The path alone, then after a valid path (the joined-paths checks see it in the middle).
    for entries in ({path: entry()}, {"/first": entry(), path: entry(), "/last": entry()}):
        assert_same_answer(json.dumps({"manifest": entries}, ensure_ascii=ensure_ascii).encode())


@pytest.mark.parametrize(
    "digest", ["", "a", "0" * 31, "0" * 32, "0" * 33, "g" * 32, "A" * 32, "é", "a\n", 1, None]
)
@pytest.mark.parametrize("full", [False, True])
def test_the_fast_path_checks_hashes_as_the_strict_path_does(digest: Any, full: bool) -> None:
    limits = ManifestLimits(require_full_hash=full)
    for entries in (
        {"/a": entry(digest)},
        {"/a": entry("f" * 32), "/b": entry(digest), "/c": entry("e" * 32)},
    ):
        assert_same_answer(json.dumps({"manifest": entries}).encode(), limits)


@pytest.mark.parametrize(
    "size", [0, 1, MAX_FILE_BYTES, MAX_FILE_BYTES + 1, -1, 1.0, 1.5, True, False, None, "1", 2**70]
)
def test_the_fast_path_checks_sizes_as_the_strict_path_does(size: Any) -> None:
    for entries in ({"/a": entry(size=size)}, {"/a": entry(), "/b": entry(size=size)}):
        assert_same_answer(json.dumps({"manifest": entries}).encode())
    assert_same_answer(
        json.dumps({"manifest": {"/a": entry(size=size)}}).encode(),
        ManifestLimits(max_file_bytes=100),
    )


def test_too_many_entries_take_the_strict_path_to_their_413() -> None:
    raw = json.dumps({"manifest": {f"/f{i}": entry() for i in range(11)}}).encode()
    with pytest.raises(ManifestTooLarge):
        parse_manifest_body(raw, ManifestLimits(max_entries=10))
    assert_same_answer(raw, ManifestLimits(max_entries=10))


# Generated bodies: manifests from a hostile alphabet, serialised in several ways, sometimes
# with a key repeated by hand; the fast path must agree with the strict path on every one.
_PATH_CHARS = st.sampled_from(list('/.:ab-_é日😀 "\\\n\x00\x7f\x85\u2028\ud800'))
_HASHES = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    st.text(alphabet="0123456789abcdefABG\n", max_size=34),
    st.integers(),
    st.none(),
)
_SIZES = st.one_of(
    st.integers(min_value=0, max_value=MAX_FILE_BYTES),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
_ENTRIES = st.one_of(
    st.fixed_dictionaries({"hash": _HASHES, "size": _SIZES}),
    st.fixed_dictionaries(
        {"hash": _HASHES, "size": _SIZES}, optional={"type": st.text(max_size=3)}
    ),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=3),
)
_MANIFESTS = st.dictionaries(
    st.one_of(
        st.text(alphabet=_PATH_CHARS, max_size=12).map(lambda p: "/" + p),
        st.text(alphabet=_PATH_CHARS, max_size=6),
    ),
    _ENTRIES,
    max_size=6,
)


def _serialise(manifest: dict[str, Any], style: int) -> bytes:
    document = {"manifest": manifest}
    if style == 0:
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if style == 1:
        return json.dumps(document, separators=(",", ":")).encode()
    if style == 2:
        return json.dumps(document, indent=2).encode()
    return msgspec.json.format(msgspec.json.encode(document)) if _encodable(document) else b"{"


def _encodable(document: Any) -> bool:
    try:
        msgspec.json.encode(document)
    except (TypeError, UnicodeEncodeError, OverflowError):
        return False
    return True


def _repeat_a_key(raw: bytes, nth: int) -> bytes:
    """The body with the nth `"key": value` member of the manifest written twice (same text)."""
    text = raw.decode("utf-8", "surrogatepass")
    document = json.loads(text)
    members = list(document["manifest"].items())
    if not members:
        return raw
    key, value = members[nth % len(members)]
    member = json.dumps({key: value})[1:-1]
    return text.replace('"manifest": {', '"manifest": {' + member + ", ", 1).encode(
        "utf-8", "surrogatepass"
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    manifest=_MANIFESTS,
    style=st.integers(min_value=0, max_value=3),
    repeat=st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
    full=st.booleans(),
)
def test_generated_bodies_get_the_same_answer_from_both_paths(
    manifest: dict[str, Any], style: int, repeat: int | None, full: bool
) -> None:
    raw = _serialise(manifest, style)
    if repeat is not None and style == 0:
        raw = _repeat_a_key(raw, repeat)
    assert_same_answer(raw, ManifestLimits(require_full_hash=full))


@pytest.mark.parametrize(
    "raw",
    [
        # What httpx (`json=`), the Cloudflare SDKs and wrangler send for ASCII paths.
        canonical({"/index.html": entry(), "/a b/c:d.css": entry("ab", 0), "/x": entry(size=7)}),
        canonical({"/a": {"size": 1, "hash": "ab"}}),
        b'{"manifest":{}}',
        canonical({"/chunk-0a.js": entry(size=7), "/b-0": entry(size=1)}),  # "-0", no size 0
    ],
)
def test_a_body_already_in_canonical_form_is_forwarded_as_the_callers_own_bytes(
    raw: bytes,
) -> None:
    manifest = parse_manifest_body(raw)
    assert manifest.raw is raw
    assert manifest.to_body() is raw


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"manifest": {"/a": entry()}}).encode(),  # json.dumps' default ", " and ": "
        json.dumps({"manifest": {"/a": entry()}}, indent=2).encode(),
        canonical({"/a": entry()}) + b"\n",
        canonical({"/a": entry()}) + b" " * 10_000,
        b"\xef\xbb\xbf" + canonical({"/a": entry()}),
        b'{"manifest":{"/a":{"hash":"ab","size":-0}}}',
        b'{"manifest":{"/a-0":{"hash":"ab","size":-0},"/b":{"hash":"ab","size":0}}}',
        b'{"manifest":{"/a:-b":{"hash":"ab","size":1}}}',
        json.dumps({"manifest": {"/é/😀": entry()}}, ensure_ascii=False).encode(),
        # What wrangler sends for a non-ASCII path: compact, but UTF-8 rather than escapes.
        json.dumps(
            {"manifest": {"/é": entry()}}, ensure_ascii=False, separators=(",", ":")
        ).encode(),
        canonical({"/é/😀": entry()}).replace(b"\\u00e9", b"\\u00E9"),
        b'{"manifest":{"\\/a":{"hash":"ab","size":1}}}',
        b'{"manifest":{"/a\\u003a":{"hash":"ab","size":1}}}',
    ],
)
def test_any_other_body_is_forwarded_in_canonical_form(raw: bytes) -> None:
    manifest = parse_manifest_body(raw)
    expected = canonical(json.loads(raw.decode("utf-8-sig"))["manifest"])
    assert manifest.to_body() == expected
    assert expected.isascii()
    assert manifest.raw in (None, expected)  # a BOM-less copy of a canonical body is fine


def test_a_manifest_without_its_bytes_is_serialised_in_canonical_form() -> None:
    entries = {"/é": entry(), "/a": entry("ab", 0), '/q"\\': entry()}
    manifest = parse_manifest({"manifest": entries})
    assert manifest.raw is None
    assert manifest.to_body() == canonical(entries)
    ascii_only = {"/a": entry(), '/q"\\': entry("ab", 0)}
    assert parse_manifest({"manifest": ascii_only}).to_body() == canonical(ascii_only)


def test_the_largest_file_is_known_on_both_paths() -> None:
    raw = canonical({"/a": entry(size=5), "/b": entry(size=70), "/c": entry(size=0)})
    assert parse_manifest_body(raw).largest_file_bytes == 70
    assert strict(raw).largest_file_bytes == 70
    assert parse_manifest_body(b'{"manifest":{}}').largest_file_bytes == 0
    assert parse_manifest({"manifest": {}}).largest_file_bytes == 0


def test_a_large_manifest_takes_the_fast_path_and_matches_the_strict_one() -> None:
    entries = {
        f"/assets/{i // 100}/file-{i}.js": entry(f"{i:032x}", i % 5000) for i in range(20_000)
    }
    raw = canonical(entries)
    manifest = parse_manifest_body(raw)
    assert manifest.to_body() is raw
    assert (manifest.count, manifest.total_bytes) == (20_000, sum(i % 5000 for i in range(20_000)))
    assert manifest.entries == strict(raw).entries
    # One bad entry at the very end: the strict path names it, as it always did.
    entries["/assets/last/..."] = entry()
    raw = gzip.decompress(gzip.compress(json.dumps({"manifest": entries}).encode()))
    assert_same_answer(raw)


@pytest.mark.parametrize("path", ["/" + "a" * 1024, "/b/" + "a" * 4093])
def test_a_manifest_with_a_path_too_long_for_the_typed_decoder_is_still_accepted_fast(
    path: str,
) -> None:
    # The typed decoder refuses paths over 1,024 characters; json's own document then gets the
    # same column checks: accepted, the caller's bytes forwarded (the strict path never is).
    raw = canonical({"/first": entry(), path: entry(size=3), "/last": entry(size=0)})
    manifest = parse_manifest_body(raw)
    assert manifest.to_body() is raw
    assert (manifest.count, manifest.total_bytes, manifest.largest_file_bytes) == (3, 4, 3)
    assert_same_answer(raw)
    with pytest.raises(InvalidManifest):
        parse_manifest_body(canonical({"/first": entry(), path + "a" * 4096: entry()}))


def test_a_body_forwarded_as_sent_reads_as_the_same_entries() -> None:
    # Its entries are decoded packed (two slots, no dict): they read as the dicts the other
    # paths build, in the body's order, whatever the order of each entry's fields.
    raw = b'{"manifest":{"/b":{"size":2,"hash":"ab"},"/a":{"hash":"cd","size":0}}}'
    manifest = parse_manifest_body(raw)
    assert manifest.to_body() is raw
    assert isinstance(manifest.entries, Mapping)
    assert list(manifest.entries) == ["/b", "/a"]
    assert manifest.entries["/b"] == {"hash": "ab", "size": 2}
    assert dict(manifest.entries) == {"/b": entry("ab", 2), "/a": entry("cd", 0)}
    assert manifest.entries == strict(raw).entries
    assert "/a" in manifest.entries
    assert "/c" not in manifest.entries
    assert (manifest.count, manifest.total_bytes, manifest.largest_file_bytes) == (2, 2, 2)
    assert manifest == strict(raw)
    # A size written -0 is not what Cloudflare gets: the dict path writes the body again.
    minus_zero = raw.replace(b'"size":0', b'"size":-0')
    assert parse_manifest_body(minus_zero).to_body() == raw
    assert type(parse_manifest_body(minus_zero).entries) is dict


@pytest.mark.parametrize("size", [True, 1.0, "1", None])
def test_the_column_checks_type_sizes_themselves_after_an_untyped_parser(size: Any) -> None:
    # bench/manifest_parsers.py runs the same checks after parsers that do not type the entries.
    raw = canonical({"/a": entry(size=size)})
    assert _accept_decoded(json.loads(raw), raw, DEFAULT_LIMITS) is None
    good = canonical({"/a": entry()})
    accepted = _accept_decoded(json.loads(good), good, DEFAULT_LIMITS)
    assert accepted is not None
    assert accepted.raw is good


# --- hostile bodies (issue 12, finding 2): refused in bounded memory and time ------------------

MIB = 1024 * 1024
SMALL = ManifestLimits(max_entries=10)  # a ceiling of 3 x 10 + 2 + 16 = 48 values


def _filled(head: bytes, unit: bytes, tail: bytes, size: int) -> bytes:
    """head, then `unit` repeated (comma-separated) to `size` bytes, then tail."""
    count = (size - len(head) - len(tail)) // (len(unit) + 1)
    return head + b",".join([unit] * count) + tail


def _numbered(head: bytes, unit: bytes, tail: bytes, size: int) -> bytes:
    """Like `_filled`, with `unit` holding `%d`: every key distinct."""
    count = (size - len(head) - len(tail)) // (len(unit % 10**7) + 1)
    return head + b",".join(unit % n for n in range(count)) + tail


@pytest.mark.parametrize(
    "raw",
    [
        # The review's body: a valid manifest, then an unknown field of empty objects.
        b'{"manifest":{"/a":{"hash":"ab","size":1}},"x":[' + b",".join([b"{}"] * 44) + b"]}",
        b'{"manifest":{},"x":[' + b",".join([b"0"] * 48) + b"]}",
        b'{"manifest":{},"x":[' + b",".join([b'""'] * 48) + b"]}",
        b'{"manifest":{},' + b",".join(b'"k%d":0' % n for n in range(48)) + b"}",
        b'{"manifest":{},' + b",".join([b'"k":0'] * 48) + b"}",
        b'{"manifest":{' + b",".join(b'"/%d":{}' % n for n in range(48)) + b"}}",
        b'{"manifest":{' + b",".join([b'"/a":{}'] * 48) + b"}}",
        b'{"manifest":{"/a":[' + b",".join([b"0"] * 48) + b"]}}",
        # More keys than the fast path may build: the structure is checked before it runs.
        b'{"manifest":{'
        + b",".join(b'"/%d":{"hash":"ab","size":1}' % n for n in range(20))
        + b"}}",
        b"[" * 49,
        b"[" + b"{}," * 48 + b"{}",  # not even JSON: refused for its size all the same
        # No array and no colon (the fast path runs first): still refused for its size.
        b'{"manifest"' + b",{}" * 48 + b"}",
        b"{" + b"," * 60 + b"}",
    ],
)
def test_a_body_holding_more_values_than_any_manifest_is_refused_unread(raw: bytes) -> None:
    with pytest.raises(ManifestTooLarge) as refused:
        parse_manifest_body(raw, SMALL)
    assert refused.value.code == 19002
    assert refused.value.status == 413
    assert refused.value.pointer is None
    assert refused.value.message.startswith("request body holds more than 48 JSON values")
    assert "at most 10 entries holds at most 32" in refused.value.message
    assert_same_answer(raw, SMALL)


@pytest.mark.parametrize(
    "raw",
    [
        # Commas, brackets and braces inside strings are no values.
        b'{"manifest":{"/a,{[":{"hash":"ab","size":1}},"x":"' + b",{[" * 100 + b'"}',
        b'{"manifest":{"' + b"/," * 30 + b'":{"hash":"ab","size":1}}}',
        b'{"manifest":{"/a":{"hash":"ab","size":1}},"x":["' + b'\\",' * 60 + b'"]}',
        # Eleven entries: one over the limit, named by the entry count as before.
        canonical({f"/{n}": entry() for n in range(11)}),
        # Every entry a value short of valid: the first is named.
        b'{"manifest":{' + b",".join(b'"/%d":{}' % n for n in range(15)) + b"}}",
    ],
)
def test_a_body_within_the_value_ceiling_gets_the_strict_answer(raw: bytes) -> None:
    check_structure(raw, SMALL)
    assert_same_answer(raw, SMALL)


def _values(document: Any) -> int:
    if isinstance(document, dict):
        return 1 + sum(map(_values, document.values()))
    if isinstance(document, list):
        return 1 + sum(map(_values, document))
    return 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=',{[]}"\\:a é\n'),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=',{["\\:a', max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(document=_JSON, indent=st.sampled_from([None, 2]), scan=st.integers(2, 9))
def test_values_are_counted_exactly_outside_strings(
    document: Any, indent: int | None, scan: int
) -> None:
    raw = json.dumps(document, indent=indent, ensure_ascii=indent is None).encode()
    expected = _values(document)
    # Both counts: few strings taken off one by one, or the body scanned without its strings
    # (in pieces of `scan` bytes: every cut between whole strings).
    assert values_outside_strings(raw, scan) == expected
    # The ceiling just below, at and above the count: refused exactly when over it.
    for max_entries in range(expected // 3 + 2):
        limits = ManifestLimits(max_entries=max_entries)
        if expected <= manifest_module.value_ceiling(limits):
            check_structure(raw, limits)
        else:
            with pytest.raises(ManifestTooLarge):
                check_structure(raw, limits)


# The worst bodies each door can be handed: 6 MiB on the wire at most, gzip inflating up to the
# door's ceiling (API door 32 MiB, S3 door 64 MiB). Value-heavy ones are refused before anything
# is built; the rest build at most what their strings hold (never more than the body's size).
_VALUE_HEAVY: dict[str, Callable[[int], bytes]] = {
    "unknown field of {}": lambda size: _filled(
        b'{"manifest":{"/a":{"hash":"ab","size":1}},"x":[', b"{}", b"]}", size
    ),
    "unknown field of 0": lambda size: _filled(b'{"manifest":{},"x":[', b"0", b"]}", size),
    "entries of {} under one key": lambda size: _filled(b'{"manifest":{', b'"/a":{}', b"}}", size),
    "valid entries, far too many": lambda size: _numbered(
        b'{"manifest":{', b'"/%d":{"hash":"ab","size":1}', b"}}", size
    ),
    "strings holding commas": lambda size: _filled(
        b'{"manifest":{},"x":[', b'"' + b"," * 110 + b'"', b"]}", size
    ),
    "deep nesting": lambda size: b'{"manifest":{"/a":' + b"[" * (size - 32) + b"}}",
}
_STRING_HEAVY: dict[str, Callable[[int], bytes]] = {
    "one long string": lambda size: b'{"manifest":{},"x":"' + b"a" * (size - 24) + b'"}',
    "one long path": lambda size: (
        b'{"manifest":{"/' + b"a" * (size - 64) + b'":{"hash":"ab","size":1}}}'
    ),
    "4300-digit integers": lambda size: _filled(b'{"manifest":{},"x":[', b"9" * 4300, b"]}", size),
}


def _peak_of(raw: bytes) -> tuple[int, GatewayError]:
    """tracemalloc's peak of Python allocations while the body is refused (the body excluded)."""
    peak, refused = traced_peak(lambda: parse_manifest_body(raw))
    assert isinstance(refused, GatewayError), f"accepted: {refused!r}"
    return peak, refused


@pytest.mark.parametrize("name", list(_VALUE_HEAVY))
def test_the_worst_value_heavy_bodies_are_refused_in_bounded_memory(name: str) -> None:
    raw = _VALUE_HEAVY[name](64 * MIB)  # the S3 door's ceiling; the API door's is 32 MiB
    assert len(raw) <= 64 * MIB
    peak, refusal = _peak_of(raw)
    assert peak < 4 * MIB, f"{name}: {peak / MIB:.1f} MiB"
    assert (refusal.status, refusal.code) == (413, 19002), refusal.message
    assert "JSON values" in refusal.message


@pytest.mark.parametrize("name", list(_STRING_HEAVY))
def test_the_worst_string_heavy_bodies_build_no_more_than_they_hold(name: str) -> None:
    raw = _STRING_HEAVY[name](32 * MIB)  # the API door's ceiling
    assert len(raw) <= 32 * MIB
    peak, refusal = _peak_of(raw)
    # What the strings hold, once (not the body decoded again next to it): under 64 MiB. "one
    # long path" is judged on the fast path's own document, never parsed a second time.
    assert peak < len(raw) + 2 * MIB, f"{name}: {peak / MIB:.1f} MiB"
    assert (refusal.status, refusal.code) == (400, 19001), refusal.message


# --- gzip (issue 12, finding 16): RFC 1952 §2.2, a gzip file is a series of members ------------

GZ = gzip.compress


def test_every_gzip_member_is_inflated() -> None:
    assert gunzip(GZ(b'{"manifest":') + GZ(b"{}") + GZ(b"}"), 100) == b'{"manifest":{}}'
    assert gunzip(GZ(b"ab") + GZ(b""), 100) == b"ab"


def test_the_ceiling_counts_every_member() -> None:
    assert gunzip(GZ(b"a" * 60) + GZ(b"b" * 40), 100) == b"a" * 60 + b"b" * 40
    with pytest.raises(ManifestTooLarge) as refused:
        gunzip(GZ(b"a" * 60) + GZ(b"b" * 41), 100)
    assert refused.value.message == "the request body inflates to more than 100 bytes"
    # A bomb in a later member is stopped as its output arrives, not after.
    with pytest.raises(ManifestTooLarge):
        gunzip(GZ(b"{}") + GZ(b" " * (64 * MIB)), 32 * MIB)


def test_zero_padding_after_the_last_member_is_skipped() -> None:
    # As `gzip -d` and Python's gzip module read it (tape blocks padded with zeros).
    assert gunzip(GZ(b"ab") + b"\0" * 512, 100) == b"ab"


@pytest.mark.parametrize(
    ("trailing", "says"),
    [
        (b"x", "has 1 bytes after its gzip data"),
        (b"\0\0x", "has 3 bytes after its gzip data"),
        (b'{"manifest":{"/evil":{"hash":"ab","size":1}}}', "neither another gzip member"),
        (b"\n", "has 1 bytes after its gzip data"),
    ],
)
def test_bytes_after_the_last_member_are_refused_not_dropped(trailing: bytes, says: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        gunzip(GZ(b'{"manifest":{}}') + trailing, 100)
    assert refused.value.code == 19000
    assert says in refused.value.message


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (GZ(b"ab") + GZ(b"cd")[:-3], "truncated gzip"),  # a second member cut short
        (GZ(b"ab") + b"\x1f\x8b", "truncated gzip"),  # only the next member's magic
        (GZ(b"ab") + b"\x1f\x8b\x08\x00not gzip at all", "not valid gzip"),
        (b"", "truncated gzip"),
        (GZ(b"") * 1001, "more than 1000 gzip members"),
    ],
)
def test_broken_members_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        gunzip(data, 100)
    assert says in refused.value.message


def test_many_members_inflate_in_linear_time_and_bounded_memory() -> None:
    """1,000 members in 6 MiB: zlib hands each member's leftovers back as a copy, so the input
    is fed a piece at a time (a copy of the whole rest per member would be 3 GB here)."""
    members = [GZ(bytes([65 + n % 26]) * 6000) for n in range(999)]
    wire = b"".join(members) + GZ(b"") + b"\0" * (5 * MIB)  # the rest: zero padding
    peak, out = traced_peak(lambda: gunzip(wire, 32 * MIB))
    assert out == b"".join(bytes([65 + n % 26]) * 6000 for n in range(999))
    assert peak < 2 * len(out) + MIB
