"""Parse and validate an assets manifest, Cloudflare's rules plus the org's hygiene (pure).

The parsed JSON is kept as it is (no per-entry objects): a 100,000-entry manifest is validated in
one pass over the dict.
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from assets_gateway.errors import InvalidManifest, MalformedRequest, ManifestTooLarge

MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_ENTRIES = 100_000
MAX_PATH_BYTES = 4096
MAX_HASH_CHARS = 32

_HASH = re.compile(r"[0-9a-f]{1,32}")
_FULL_HASH = re.compile(r"[0-9a-f]{32}")
# Control characters (C0, DEL, C1), lone surrogates (`"\ud800"` escapes decode to them: they are
# not Unicode and have no UTF-8 form), empty segments, "." and ".." segments, a trailing slash.
_BAD_PATH = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]|//|/\.\.?(?:/|$)|/$")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_JSON_TYPES = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
# What an error message or pointer shows of a caller's key: enough to find it, never megabytes
# (an answer must stay far below Lambda's 6 MB response limit, whatever the caller sent).
_SHOWN_KEY_CHARS = 100
_MAX_POINTER_TOKEN_CHARS = MAX_PATH_BYTES


@dataclass(frozen=True)
class ManifestLimits:
    max_entries: int = MAX_ENTRIES
    max_file_bytes: int = MAX_FILE_BYTES
    require_full_hash: bool = False


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: `entries` maps path → {"hash": str, "size": int}."""

    entries: Mapping[str, Mapping[str, Any]]
    total_bytes: int

    @property
    def count(self) -> int:
        return len(self.entries)

    def to_body(self) -> bytes:
        """The request body Cloudflare gets: exactly what was validated, nothing else."""
        return json.dumps({"manifest": self.entries}, separators=(",", ":")).encode()


def json_pointer(*tokens: str | int) -> str:
    """RFC 6901: `~` → `~0`, `/` → `~1`, so `/index.html` becomes `~1index.html`.

    Only refusals carry pointers, so what they echo is kept sane: a token longer than any valid
    path is cut (and ends with `…`), and lone surrogates become U+FFFD, which every JSON parser
    reads (some refuse a lone `\\ud800` escape).
    """
    return "".join("/" + _pointer_token(str(token)) for token in tokens)


def _pointer_token(token: str) -> str:
    if len(token) > _MAX_POINTER_TOKEN_CHARS:
        token = token[:_MAX_POINTER_TOKEN_CHARS] + "…"
    if _SURROGATES.search(token):
        token = _SURROGATES.sub("\ufffd", token)
    return token.replace("~", "~0").replace("/", "~1")


def _shown(key: str) -> str:
    """A caller's key for a message: quoted, escaped (repr), at most 100 characters of it."""
    if len(key) > _SHOWN_KEY_CHARS:
        return f"{key[:_SHOWN_KEY_CHARS]!r}… ({len(key)} characters)"
    return repr(key)


def gunzip(data: bytes, limit: int, *, what: str = "the request body") -> bytes:
    """gunzip with a ceiling: a small body must not inflate into gigabytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise MalformedRequest(f"{what} is not valid gzip") from None
    if len(out) > limit:
        raise ManifestTooLarge(f"{what} inflates to more than {limit} bytes")
    if not inflater.eof:
        raise MalformedRequest(f"{what} is truncated gzip")
    return out


def check_content_type(content_type: str | None) -> None:
    """JSON or nothing (some clients send no type); anything else is a caller mistake.

    A charset other than UTF-8 is refused too: the body is read as UTF-8 and nothing else.
    """
    if content_type is None or not content_type.strip():
        return
    media_type, *parameters = content_type.split(";")
    media_type = media_type.strip().lower()
    if not _JSON_TYPES.match(media_type):
        raise MalformedRequest(
            f"Content-Type must be application/json, not {_shown(media_type)}", pointer=None
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise MalformedRequest(
                f"the body must be UTF-8 JSON; Content-Type names charset {_shown(charset)}"
            )


class _NotJson(ValueError):
    """A literal Python's json module reads but JSON does not have (NaN, Infinity)."""


def _refuse_constant(literal: str) -> Any:
    raise _NotJson(literal)


def parse_json_body(body: bytes) -> Any:
    """Strict UTF-8 JSON (RFC 8259): no other encoding, no NaN or Infinity, no duplicate keys.

    A leading UTF-8 byte order mark is tolerated (RFC 8259 §8.1 allows ignoring it). Duplicate
    keys are refused rather than resolved silently: `json.loads` would keep the last one, and a
    manifest that says two things about one path is a mistake worth naming. The check is one
    length comparison per object; with the pairs it needs, parsing and validating a 20,000-entry
    (1.7 MB) body takes about 43 ms instead of 34 ms (x86_64, CPython 3.13).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequest(
            f"request body is not UTF-8: invalid byte at offset {error.start}"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    duplicated: list[tuple[dict[str, Any], list[tuple[str, Any]]]] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            duplicated.append((obj, pairs))
        return obj

    try:
        document = json.loads(text, object_pairs_hook=unique_keys, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedRequest("request body is nested too deeply") from None
    except _NotJson as literal:
        raise MalformedRequest(
            f"request body is not valid JSON: {literal} is not a JSON number"
        ) from None
    except json.JSONDecodeError as error:
        raise MalformedRequest(
            f"request body is not valid JSON: {error.msg} "
            f"(line {error.lineno}, column {error.colno})"
        ) from None
    except ValueError:
        # int() refuses numbers of more digits than the interpreter's limit (4,300 by default).
        raise MalformedRequest(
            "request body holds a number too long to read "
            f"(more than {sys.get_int_max_str_digits()} digits)"
        ) from None
    if duplicated:
        raise _duplicate_key(document, duplicated)
    return document


def _duplicate_key(
    document: Any, duplicated: list[tuple[dict[str, Any], list[tuple[str, Any]]]]
) -> InvalidManifest:
    """Name the first object (in document order) that repeats a key, and the repeated key."""
    repeated = {id(obj): pairs for obj, pairs in duplicated}
    for tokens, value in _walk(document):
        pairs = repeated.get(id(value))
        if pairs is not None:
            key = _first_repeated(pairs)
            return InvalidManifest(
                f"duplicate key {_shown(key)}: a key may appear only once in an object",
                pointer=json_pointer(*tokens, key),
            )
    # Unreachable: the outermost object holding a repeated key is always part of the document.
    return InvalidManifest("request body repeats a key in an object")


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no repeated key")  # pragma: no cover - only called with one


def _walk(document: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every object and array of the document with its pointer tokens, depth first, in order.

    Iterative: the document may be nested as deeply as the parser allowed.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        tokens, value = stack.pop()
        yield tokens, value
        if isinstance(value, dict):
            children: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        stack.extend(
            ((*tokens, k), child)
            for k, child in reversed(children)
            if isinstance(child, (dict, list))
        )


def parse_manifest(document: Any, limits: ManifestLimits = ManifestLimits()) -> Manifest:
    """Validate `{"manifest": {...}}`; the error names the first bad entry with a JSON pointer."""
    if not isinstance(document, dict):
        raise MalformedRequest("request body must be a JSON object")
    for key in document:
        if key != "manifest":
            raise InvalidManifest(
                f"unknown field {_shown(key)}: the body holds only 'manifest'",
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
    bad = _BAD_PATH.search(path)
    if bad:
        if _SURROGATES.match(bad.group()):
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
    if len(path) * 4 > MAX_PATH_BYTES and len(path.encode()) > MAX_PATH_BYTES:
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
                f"unknown field {_shown(key)}: an entry holds only 'hash' and 'size'",
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
