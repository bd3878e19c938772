"""Parse and validate an assets manifest, Cloudflare's rules plus the org's hygiene (pure).

A body is first held to what a manifest can hold at all: at most 3 JSON values per entry and a
few more (`check_structure`, counted over the bytes before anything is built; issue 12).

Two paths give the same answers. `parse_manifest_body` first tries the fast one: msgspec parses
the body against the manifest's shape (entries are objects with a string hash and an integer
size: no bool, no float), and the remaining checks run over whole columns at C speed (the
paths joined a few thousand at a time, every hash into one string, the sizes as one list)
instead of once per entry in Python; duplicate keys and unknown fields are ruled out by counting
the body's `:` separators. The moment anything is unusual (a parse error, an escape that could
hide a duplicate key, a path that needs a closer look, any invalid value) it steps aside, and
the strict path — the document stdlib `json` with the duplicate-key hook builds, then
`parse_manifest`'s checks in document order — decides and names the first problem. So the fast
path only ever accepts, and accepts only what the strict path accepts. The strict path does not
parse again what the fast path already read whole, and msgspec builds json's document when it
can tell it is the same (no str copy of the body).
`bench/manifest_parsers.py` measured the choice (msgspec against orjson, pydantic and the
stdlib).

Cloudflare always gets the manifest in one canonical form, compact ASCII JSON (what
`json.dumps(..., separators=(",", ":"))` writes). A body that already is exactly that (what
httpx, the Cloudflare SDKs and wrangler send for ASCII paths) is forwarded as the caller's own
bytes, not serialised again (`Manifest.to_body`). Such a body (ASCII, no escape, no blank) is
first decoded with each entry in two slots instead of a dict (`_PackedEntries`, a fifth less
time to decode; read, an entry is the same dict): nothing writes its entries again.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Annotated, Any, TypedDict

import msgspec

from assets_gateway.domain.errors import InvalidManifest, MalformedRequest, ManifestTooLarge
from assets_gateway.domain.json_values import holds_at_most
from assets_gateway.domain.request_body import parse_json_body, shown
from assets_gateway_common.json_pointer import json_pointer

MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_ENTRIES = 100_000
MAX_PATH_BYTES = 4096
MAX_HASH_CHARS = 32

_HASH = re.compile(r"[0-9a-f]{1,32}")
_FULL_HASH = re.compile(r"[0-9a-f]{32}")
# Control characters (C0, DEL, C1), lone surrogates (`"\ud800"` escapes decode to them: they are
# not Unicode and have no UTF-8 form); empty segments, "." and ".." segments, a trailing slash.
# Two patterns, not one alternation: each scans at C speed (the alternation tried every branch
# at every character, ~30 ns each: a second for a 32 MiB path).
_BAD_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_SEGMENT = re.compile(r"//|/\.\.?(?:/|$)|/$")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class ManifestLimits:
    max_entries: int = MAX_ENTRIES
    max_file_bytes: int = MAX_FILE_BYTES
    require_full_hash: bool = False


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: `entries` maps path → {"hash": str, "size": int}.

    `raw` is the caller's body when it is, byte for byte, what `to_body` would write.
    """

    entries: Mapping[str, Mapping[str, Any]]
    total_bytes: int
    raw: bytes | None = field(default=None, repr=False, compare=False)
    # Known when the fast path validated the sizes as one column.
    largest: int | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def largest_file_bytes(self) -> int:
        """The largest size in the manifest (0 when empty), without a pass when known."""
        if self.largest is not None:
            return self.largest
        return max((entry["size"] for entry in self.entries.values()), default=0)

    def to_body(self) -> bytes:
        """The request body Cloudflare gets: exactly what was validated, nothing else, as
        compact ASCII JSON (non-ASCII characters as \\u escapes), whoever wrote the body.

        The caller's own bytes when they already are exactly that; otherwise msgspec writes it
        (ten times json's speed) when all is ASCII, and json when an escape is needed.
        """
        if self.raw is not None:
            return self.raw
        document = {"manifest": self.entries}
        body = msgspec.json.encode(document, enc_hook=dict)
        if body.isascii():  # then byte for byte what json.dumps writes
            return body
        return json.dumps(document, separators=(",", ":"), default=dict).encode()


def parse_manifest_body(body: bytes, limits: ManifestLimits = ManifestLimits()) -> Manifest:
    """`parse_manifest(parse_json_body(body), limits)`, with the same answers, in fewer steps,
    in memory and time bounded by what a manifest within `limits` can hold.

    First, a body holding more JSON values than a manifest within `limits` can is refused
    unread (`check_structure`): 32 MiB of `[{},{},…]` before Python builds ten million objects
    out of it. Then the fast path (msgspec, checks over whole columns) accepts an ordinary
    manifest. When it refuses a body it read whole (nothing skipped, no key repeated), the strict
    parse would build the very same document: the strict checks judge that one, without reading
    the body again. Anything else goes to the strict path, which decides and names the first
    problem: msgspec builds the document json would (`_document_as_json_reads_it`) when it can
    tell, json itself when it cannot.

    A body without arrays that has no more colons than the ceiling allows values cannot hold too
    many values if it is JSON (every value but the body follows a colon): the structure is then
    counted only when the fast path does not accept it, so the refusal is the same and an
    ordinary manifest is not read three more times.
    """
    raw = body[len(_UTF8_BOM) :] if body.startswith(_UTF8_BOM) else body
    keys = raw.count(b":")
    # First: msgspec would build every entry before anything could count them, and skipping a
    # huge unknown field costs it as much as counting does. Three counts settle a valid body.
    counted_later = b"[" not in raw and 1 + keys <= value_ceiling(limits)
    if not counted_later:
        check_structure(raw, limits)
    decided = _fast_manifest(raw, keys, limits)
    if isinstance(decided, Manifest):
        return decided
    if counted_later:
        check_structure(raw, limits)
    if decided is not None:
        return parse_manifest(decided, limits)
    return parse_manifest(parse_json_body(body, parse_int=_size_or_stand_in), limits)


_ANY_DECODER = msgspec.json.Decoder()
# json.loads refuses documents nested deeper than the interpreter's recursion allows (~1,000
# levels, less the caller's own frames); msgspec reads deeper ones: those are left to json.
_SAFE_DEPTH = 100
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")


def _document_as_json_reads_it(raw: bytes) -> Any | None:
    """The document `parse_json_body` would build from `raw`, built by msgspec straight from the
    bytes (json needs the body as a str first: a copy as large as the body); or None whenever
    json might answer otherwise, for json to decide.

    msgspec refuses what json refuses (invalid UTF-8, syntax, NaN, control characters) and also
    a few things json reads (lone surrogates, 1e999): those go to json. What msgspec reads that
    json would not is ruled out here: a repeated key (a dict keeps one: the body then holds more
    `:` than the document has keys and colons in its strings; an escaped colon is left to json),
    nesting json refuses, an integer past the interpreter's digit limit. Long integers are left
    to json before msgspec converts them (quadratic in their digits; json's `parse_int` does not).
    """
    if b"\\u003" in raw or _has_long_digit_run(raw):
        return None
    try:
        document = _ANY_DECODER.decode(raw)
    except (ValueError, RecursionError):
        return None
    colons, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > _SAFE_DEPTH:
                return None
            colons += len(value) + sum(key.count(":") for key in value)
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            if depth > _SAFE_DEPTH:
                return None
            stack.extend((child, depth + 1) for child in value)
        elif isinstance(value, str):
            colons += value.count(":")
    return document if colons == raw.count(b":") else None


def _has_long_digit_run(raw: bytes) -> bool:
    """More than `_SIZE_DIGITS` digits in a row anywhere (strings included: then json decides),
    a megabyte at a time."""
    run = b"0" * (_SIZE_DIGITS + 1)
    step = 1024 * 1024
    return any(
        run in raw[start : start + step + _SIZE_DIGITS].translate(_DIGITS_TO_ZERO)
        for start in range(0, len(raw), step)
    )


# Longer integers than this are no size (25 MiB has 8 digits): they are all refused alike.
_SIZE_DIGITS = 20
_TOO_LONG_TO_BE_A_SIZE: int = 10**_SIZE_DIGITS


def _size_or_stand_in(literal: str) -> int:
    """`int(literal)`, except that an integer too long to be a size is not converted (quadratic
    in its digits: 8,000 numbers of 4,300 digits took seconds) but stands in as ±10^20, which
    every check refuses as `int` would have refused the real one. Beyond the interpreter's
    digit limit it is refused as `int` refuses it: the strict path's answers stay the same.
    """
    if len(literal) <= _SIZE_DIGITS:
        return int(literal)
    negative = literal.startswith("-")
    digits, limit = len(literal) - negative, sys.get_int_max_str_digits()
    if limit and digits > limit:
        raise ValueError("integer string too long")
    return -_TOO_LONG_TO_BE_A_SIZE if negative else _TOO_LONG_TO_BE_A_SIZE


# A manifest of n entries holds 3n + 2 JSON values: the body, the manifest, and per entry the
# entry, its hash and its size. A few more are allowed, so that a manifest a few entries over the
# limit still gets the answer that counts its entries.
_SPARE_VALUES = 16


def value_ceiling(limits: ManifestLimits) -> int:
    """The most JSON values a body may hold before it is refused unread."""
    return 3 * limits.max_entries + 2 + _SPARE_VALUES


def check_structure(raw: bytes, limits: ManifestLimits = ManifestLimits()) -> None:
    """Refuse (413) a body holding more JSON values than any manifest within `limits`, in time
    linear in its size and without building any of it (`json_values.holds_at_most`).

    A value is an object, array, string, number, true, false or null, at any depth; object keys
    are not values (a body holds fewer keys than values, so keys are bounded too).
    """
    ceiling = value_ceiling(limits)
    if holds_at_most(raw, ceiling):
        return
    raise ManifestTooLarge(
        f"request body holds more than {ceiling:,} JSON values (objects, arrays, strings, "
        f"numbers, literals; keys not counted): a manifest of at most {limits.max_entries:,} "
        f"entries holds at most {ceiling - _SPARE_VALUES:,}"
    )


def parse_manifest(document: Any, limits: ManifestLimits = ManifestLimits()) -> Manifest:
    """Validate `{"manifest": {...}}`; the error names the first bad entry with a JSON pointer."""
    if not isinstance(document, dict):
        raise MalformedRequest("request body must be a JSON object")
    for key in document:
        if key != "manifest":
            raise InvalidManifest(
                f"unknown field {shown(key)}: the body holds only 'manifest'",
                pointer=json_pointer(key),
            )
    entries = document.get("manifest")
    if not isinstance(entries, dict):
        raise InvalidManifest(
            "'manifest' is required and must be an object of path → {hash, size}",
            pointer="/manifest",
        )
    if len(entries) > limits.max_entries:
        raise ManifestTooLarge(
            f"manifest has {len(entries)} entries; at most {limits.max_entries} are allowed",
            pointer="/manifest",
        )
    hash_pattern = _FULL_HASH if limits.require_full_hash else _HASH
    total_bytes = 0
    for path, entry in entries.items():
        _check_path(path)
        total_bytes += _check_entry(path, entry, hash_pattern, limits.max_file_bytes)
    return Manifest(entries=entries, total_bytes=total_bytes)


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise InvalidManifest(
            "manifest paths must start with '/'", pointer=json_pointer("manifest", path)
        )
    char, segment = _BAD_CHAR.search(path), _BAD_SEGMENT.search(path)
    if char or segment:
        # The first problem in the path is named (a segment starts with "/", never a bad char).
        if (
            char
            and (segment is None or char.start() < segment.start())
            and (_SURROGATES.match(char.group()))
        ):
            raise InvalidManifest(
                "manifest paths must be valid Unicode: a lone surrogate (an escape such as "
                "\\ud800 without its pair) has no UTF-8 form",
                pointer=json_pointer("manifest", path),
            )
        raise InvalidManifest(
            "manifest paths must not hold control characters, empty, '.' or '..' segments, "
            "or end with '/'",
            pointer=json_pointer("manifest", path),
        )
    # Each character is 1 to 4 bytes: encode (a copy) only when the length alone cannot tell.
    if len(path) > MAX_PATH_BYTES or (
        len(path) * 4 > MAX_PATH_BYTES and len(path.encode()) > MAX_PATH_BYTES
    ):
        raise InvalidManifest(
            f"manifest paths are at most {MAX_PATH_BYTES} bytes of UTF-8",
            pointer=json_pointer("manifest", path),
        )


def _check_entry(path: str, entry: Any, hash_pattern: re.Pattern[str], max_size: int) -> int:
    if not isinstance(entry, dict):
        raise InvalidManifest(
            "each manifest entry must be an object {hash, size}",
            pointer=json_pointer("manifest", path),
        )
    for key in entry:
        if key not in ("hash", "size"):
            raise InvalidManifest(
                f"unknown field {shown(key)}: an entry holds only 'hash' and 'size'",
                pointer=json_pointer("manifest", path, key),
            )
    digest = entry.get("hash")
    if not isinstance(digest, str) or not hash_pattern.fullmatch(digest):
        expected = "32" if hash_pattern is _FULL_HASH else "1 to 32"
        raise InvalidManifest(
            f"hash must be {expected} lowercase hexadecimal characters",
            pointer=json_pointer("manifest", path, "hash"),
        )
    size = entry.get("size")
    # bool is an int subclass and floats like 1.0 are not sizes: compare the exact type.
    if type(size) is not int or not 0 <= size <= max_size:
        raise InvalidManifest(
            f"size must be a whole number of bytes from 0 to {max_size}",
            pointer=json_pointer("manifest", path, "size"),
        )
    return size


# ----------------------------------------------------------------------------- the fast path

_UTF8_BOM = b"\xef\xbb\xbf"
_HASH_OF, _SIZE_OF = itemgetter("hash"), itemgetter("size")
_HEX_DIGITS = b"0123456789abcdef"


class _Entry(TypedDict):
    hash: str
    size: int


# Decodes into plain dicts, in the body's order; fields the shape does not name are skipped
# (the separator count then refuses them), missing ones and other types are errors. A path of
# more than a quarter of `MAX_PATH_BYTES` characters is refused here too (a check at C speed
# instead of a pass over every path's length): only those may be over the limit in UTF-8 bytes,
# and they are judged on json's own document instead.
_SHORT_PATH = Annotated[str, msgspec.Meta(max_length=MAX_PATH_BYTES // 4)]


class _Body(TypedDict):
    manifest: dict[_SHORT_PATH, _Entry]


_BODY_DECODER = msgspec.json.Decoder(_Body)


class _PackedEntry(msgspec.Struct, gc=False):
    """An entry in two slots instead of a dict: a fifth less time to decode an ordinary body."""

    hash: str
    size: int


class _PackedBody(msgspec.Struct):
    manifest: dict[_SHORT_PATH, _PackedEntry]


# The same shape and the same refusals as `_BODY_DECODER`, for bodies that may be forwarded as
# they were sent: the order of an entry's fields is then never written again.
_PACKED_DECODER = msgspec.json.Decoder(_PackedBody)


class _PackedEntries(Mapping[str, Mapping[str, Any]]):
    """The entries of a manifest forwarded as its caller sent it: each read as the
    {"hash", "size"} dict the other paths build (equal to theirs), none built until read."""

    __slots__ = ("_packed",)

    def __init__(self, packed: dict[str, _PackedEntry]) -> None:
        self._packed = packed

    def __getitem__(self, path: str) -> Mapping[str, Any]:
        entry = self._packed[path]
        return {"hash": entry.hash, "size": entry.size}

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


# A path worth a closer look: "//", "/." (".", ".." or just a dotfile), "/" ending a path.
_SEGMENT_HINT = re.compile(r"/[/.\n]")
# A joined path that does not start with "/" (the first one is looked at on its own).
_NO_LEADING_SLASH = re.compile(r"\n(?!/)")
# What a path may not hold beyond ASCII: C1 control characters, lone surrogates.
_NON_ASCII_BAD = re.compile(r"[\x80-\x9f\ud800-\udfff]")


def _fast_manifest(raw: bytes, keys: int, limits: ManifestLimits) -> Manifest | Any | None:
    """The manifest; or, when the body is not one, the document the strict parse would build
    for the strict checks to judge; or None whenever the strict path must read the body.

    When the typed decode refused nothing and skipped nothing (the body's `:` count, `keys`, is
    exactly what the decoded document accounts for: one per key, and the paths' own), every
    string was decoded (as UTF-8, escapes checked) and every number is an integer msgspec could
    read: the strict parse would build this very document, in order. When the typed decode
    refuses, json's own document (when msgspec can build it) gets the same checks, untyped: a
    manifest with a long path is still accepted without the strict path's pass per entry.
    """
    if _forwardable(raw):
        manifest = _packed_manifest(raw, keys, limits)
        if manifest is not None:
            return manifest
    try:
        typed = _BODY_DECODER.decode(raw)
    except (ValueError, RecursionError):  # msgspec errors, invalid UTF-8, deep nesting
        document = _document_as_json_reads_it(raw)
        if document is None:
            return None
        manifest = _accept_decoded(document, raw, limits, keys=keys)
        return document if manifest is None else manifest
    manifest = _accept_decoded(typed, raw, limits, typed=True, keys=keys)
    if manifest is not None:
        return manifest
    entries = typed["manifest"]
    # An escaped colon (\u003a) decodes to a colon the count outside strings cannot see.
    if b"\\u003" in raw:
        return None
    if keys != 1 + 3 * len(entries) + sum(path.count(":") for path in entries):
        # Repeated keys or fields the shape does not name: json's document tells which.
        return _document_as_json_reads_it(raw)
    return typed


def _ascii_without_control_blanks(raw: bytes) -> bool:
    """ASCII, and no newline, tab or carriage return: none may stand outside a string of what
    `Manifest.to_body` writes, and no string of a valid manifest holds one raw."""
    return raw.isascii() and b"\n" not in raw and b"\t" not in raw and b"\r" not in raw


def _forwardable(raw: bytes) -> bool:
    """Whether `raw` may be what `Manifest.to_body` writes, by bytes that are usually absent:
    ASCII, no escape, no blank (nor a path holding a space: those bodies take the dict path)."""
    return _ascii_without_control_blanks(raw) and b"\\" not in raw and b" " not in raw


def _packed_manifest(raw: bytes, keys: int, limits: ManifestLimits) -> Manifest | None:
    """The manifest of a body forwarded as it was sent, its entries decoded packed; None for
    any other body (its packed document is gone before another decoder reads it)."""
    try:
        body = _PACKED_DECODER.decode(raw)
    except (ValueError, RecursionError):
        return None
    return _accept_entries(body.manifest, raw, limits, typed=True, keys=keys, packed=True)


def _accept_decoded(
    document: Any,
    raw: bytes,
    limits: ManifestLimits,
    *,
    typed: bool = False,
    keys: int | None = None,
) -> Manifest | None:
    """The checks of the fast path over a document decoded from `raw` by a JSON parser that,
    like msgspec, refuses what JSON does not allow (`bench/manifest_parsers.py` plugs in others;
    `typed`: the parser already made every hash a str and every size an int, not a bool, and
    refused paths of more than a quarter of `MAX_PATH_BYTES` characters; `keys`:
    `raw.count(b":")`, when the caller counted already).
    """
    if type(document) is not dict or len(document) != 1:
        return None
    entries = document.get("manifest")
    if type(entries) is not dict:
        return None
    return _accept_entries(entries, raw, limits, typed=typed, keys=keys)


def _accept_entries(
    entries: dict[str, Any],
    raw: bytes,
    limits: ManifestLimits,
    *,
    typed: bool,
    keys: int | None,
    packed: bool = False,
) -> Manifest | None:
    """`_accept_decoded` once the body is an object holding only `manifest`, an object of
    `entries` (`packed`: `_PackedEntry` values of a `_forwardable` body, accepted only when
    forwarded as sent)."""
    if len(entries) > limits.max_entries:
        return None
    count = len(entries)
    # Without a backslash no string holds an escape, so none holds a control character and
    # "\n" separates joined paths unambiguously. With one, an escaped colon (\u003a) would
    # blur the separator count below: leave those bodies to the strict path.
    escaped = b"\\" in raw
    if escaped and b"\\u003" in raw:
        return None
    paths = _path_facts(entries)
    # Duplicate keys, and entries with other fields than hash and size: every key in the body
    # is followed by one `:` outside strings. A valid manifest has 1 + 3 per entry of them, and
    # the strings hold the paths' own colons (hashes are hex). A key that was overwritten by a
    # duplicate, or any other key, makes the body's count larger than that.
    if (raw.count(b":") if keys is None else keys) != 1 + 3 * count + paths.colons:
        return None
    if not _paths_look_valid(entries, paths, escaped=escaped, short=typed):
        return None
    columns = _packed_columns if packed else _columns
    sizes = _entry_columns(entries.values(), count, limits, typed=typed, columns=columns)
    if sizes is None:
        return None
    total_bytes, largest, smallest = sizes
    canonical = not escaped and _canonical(raw, entries, smallest, forwardable=packed)
    if packed and not canonical:
        return None
    return Manifest(
        entries=_PackedEntries(entries) if packed else entries,
        total_bytes=total_bytes,
        raw=raw if canonical else None,
        largest=largest,
    )


@dataclass(frozen=True)
class _PathFacts:
    """What the fast path needs to know of all the paths, gathered over a few thousand paths
    joined at a time: checks at C speed, without a copy of every path at once (a valid body of
    32 MiB may be mostly paths)."""

    colons: int
    # Every path starts with "/" and nothing in any of them is worth a closer look (see below).
    plain: bool


_PATHS_PER_BATCH = 4096


def _joined_paths(entries: Iterable[str]) -> Iterator[str]:
    """The paths joined by "\n", a few thousand at a time (without escapes no path holds "\n":
    it separates them unambiguously)."""
    remaining = iter(entries)
    while batch := list(islice(remaining, _PATHS_PER_BATCH)):
        yield "\n".join(batch)


def _path_facts(entries: Iterable[str]) -> _PathFacts:
    colons = 0
    plain = True
    for paths in _joined_paths(entries):
        colons += paths.count(":")
        plain = plain and not (
            not paths.startswith("/")
            or _NO_LEADING_SLASH.search(paths)
            or _SEGMENT_HINT.search(paths)
            or paths.endswith("/")
            or "\x7f" in paths
            or (not paths.isascii() and _NON_ASCII_BAD.search(paths))
        )
    return _PathFacts(colons, plain)


def _count_in_paths(entries: Iterable[str], character: str) -> int:
    return sum(paths.count(character) for paths in _joined_paths(entries))


def _paths_look_valid(
    entries: Mapping[str, Any], paths: _PathFacts, *, escaped: bool, short: bool
) -> bool:
    """Every path valid; path by path only when one needs a closer look: a path that holds an
    escape (it may hold "\n" or another control character), a segment starting with "/" or ".",
    a "/" at its end, DEL, C1 characters or lone surrogates, or one long enough to be over 4,096
    bytes of UTF-8 (`short`: the decoder already refused those)."""
    if not entries:
        return True
    if escaped or not paths.plain or (not short and max(map(len, entries)) * 4 > MAX_PATH_BYTES):
        return _each_path_valid(entries)
    return True


def _each_path_valid(paths: Iterable[str]) -> bool:
    try:
        for path in paths:
            if len(path) > MAX_PATH_BYTES:  # invalid whatever else it holds: no scan
                return False
            _check_path(path)
    except InvalidManifest:
        return False
    return True


def _columns(values: Collection[Any]) -> tuple[list[Any], str]:
    return list(map(_SIZE_OF, values)), "\n".join(map(_HASH_OF, values))


def _packed_columns(values: Collection[_PackedEntry]) -> tuple[list[Any], str]:
    # The interpreter specialises a comprehension's attribute reads: twice map(attrgetter)'s pace.
    return [entry.size for entry in values], "\n".join([entry.hash for entry in values])


def _entry_columns(
    values: Collection[Any],
    count: int,
    limits: ManifestLimits,
    *,
    typed: bool,
    columns: Callable[[Collection[Any]], tuple[list[Any], str]] = _columns,
) -> tuple[int, int, int] | None:
    """(total bytes, largest size, smallest size), when every entry's hash and size are valid
    (`columns` reads the sizes and the hashes joined by "\n").

    The key count in `_fast_manifest` already made each entry exactly {hash, size} once both
    are found here.
    """
    if not count:
        return 0, 0, 0
    try:
        sizes, hashes = columns(values)
    except (KeyError, TypeError):  # not an object, a field missing, a hash that is no string
        return None
    if not hashes.isascii():  # not hex (and `encode` below cannot meet a lone surrogate)
        return None
    # All 32 characters long, the usual case, is checked without a length per hash.
    full = len(hashes) == 33 * count - 1 and hashes[32::33] == "\n" * (count - 1)
    if not full:
        if limits.require_full_hash:
            return None
        lengths = set(map(len, hashes.split("\n")))
        if min(lengths) < 1 or max(lengths) > MAX_HASH_CHARS:
            return None
    # Lowercase hex, and no "\n" of their own: only the n - 1 separators are left.
    if hashes.encode().translate(None, _HEX_DIGITS) != b"\n" * (count - 1):
        return None
    # bool is an int subclass and floats like 1.0 are not sizes: exact types only.
    if not typed and set(map(type, sizes)) != {int}:
        return None
    largest: int = max(sizes)
    smallest: int = min(sizes)
    if smallest < 0 or largest > limits.max_file_bytes:
        return None
    total: int = sum(sizes)
    return total, largest, smallest


def _canonical(raw: bytes, paths: Iterable[str], smallest: int, *, forwardable: bool) -> bool:
    """`raw`, a valid manifest without escapes, is byte for byte what `Manifest.to_body`
    writes: ASCII, no blank outside a string (the only strings that may hold a space are paths;
    no string holds a raw tab or newline), no size written -0 (json writes 0; a minus sign
    outside strings can only start a number, and -0 is the only valid size that has one: with
    no size 0, `smallest` > 0, none is written -0, uncounted).

    Each check looks for a byte that is usually absent (fast) before counting; the paths are
    counted only then (`forwardable`: `_forwardable(raw)` already said there is no blank)."""
    return (
        forwardable
        or (
            _ascii_without_control_blanks(raw)
            and (b" " not in raw or raw.count(b" ") == _count_in_paths(paths, " "))
        )
    ) and (b"-0" not in raw or smallest > 0 or raw.count(b"-") == _count_in_paths(paths, "-"))
