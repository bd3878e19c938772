"""Parse and validate an assets manifest, Cloudflare's rules plus the org's hygiene (pure).

The parsed JSON is kept as it is (no per-entry objects): a 100,000-entry manifest is validated in
one pass over the dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assets_gateway.errors import InvalidManifest, MalformedRequest, ManifestTooLarge

MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_ENTRIES = 100_000
MAX_PATH_BYTES = 4096
MAX_HASH_CHARS = 32

_HASH = re.compile(r"[0-9a-f]{1,32}")
_FULL_HASH = re.compile(r"[0-9a-f]{32}")
# Control characters (C0, DEL, C1), empty segments, "." and ".." segments, a trailing slash.
_BAD_PATH = re.compile(r"[\x00-\x1f\x7f-\x9f]|//|/\.\.?(?:/|$)|/$")
_JSON_TYPES = re.compile(r"^application/(?:[\w.+-]+\+)?json$")


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


def json_pointer(*tokens: str) -> str:
    """RFC 6901: `~` → `~0`, `/` → `~1`, so `/index.html` becomes `~1index.html`."""
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def check_content_type(content_type: str | None) -> None:
    """JSON or nothing (some clients send no type); anything else is a caller mistake."""
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not _JSON_TYPES.match(media_type):
        raise MalformedRequest(
            f"Content-Type must be application/json, not {media_type!r}",
            pointer=None,
        )


def parse_json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise MalformedRequest("request body is nested too deeply") from None
    except ValueError:
        # UnicodeDecodeError is a ValueError too: the body must be UTF-8 JSON.
        raise MalformedRequest("request body is not valid UTF-8 JSON") from None


def parse_manifest(document: Any, limits: ManifestLimits = ManifestLimits()) -> Manifest:
    """Validate `{"manifest": {...}}`; the error names the first bad entry with a JSON pointer."""
    if not isinstance(document, dict):
        raise MalformedRequest("request body must be a JSON object")
    for key in document:
        if key != "manifest":
            raise InvalidManifest(
                f"unknown field {key!r}: the body holds only 'manifest'", pointer=json_pointer(key)
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
    if _BAD_PATH.search(path):
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
                f"unknown field {key!r}: an entry holds only 'hash' and 'size'",
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
