"""Keeping a secret out of an upstream answer, in any spelling a reader would decode (pure).

Cloudflare never echoes the token, but the gateway must not rely on that, and a byte search is
not enough: in JSON, `"\\u0074oken"` and `"t\\/ok"` read as `token` and `t/ok`; a message may
carry the token percent-encoded (`%74oken`, `%2574oken`) or as HTML character references; a body
may be UTF-16, which JSON readers detect; and of two duplicate keys, readers disagree on which
one wins. So the secret is looked for in the decoded text of every JSON string (keys included,
every duplicate), and the body is written again, still valid JSON, when one of them held it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from pydantic import SecretStr

REDACTED = "[REDACTED]"


def fingerprint(token: SecretStr) -> str:
    """All an audit record may say of the token: the first 12 hex digits of its SHA-256, enough
    to tell one version from another after a rotation."""
    return hashlib.sha256(token.get_secret_value().encode()).hexdigest()[:12]


_REDACTED_BYTES = REDACTED.encode()
# Without these bytes, JSON strings are their raw bytes and nothing percent- or entity-decodes:
# a body that has none of them needs only the byte search (a session's answer, typically).
_DECODING_MARKERS = (b"\\", b"%", b"&", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xfe")
# Layers of encoding undone before a string counts as too deep to prove clean.
_MAX_DECODING_ROUNDS = 8
# JSON escapes inside a string's text: a message may embed a JSON document of its own.
_JSON_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SIMPLE_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def redact_body(body: bytes, secret: str) -> bytes:
    """`body` with every occurrence of `secret` replaced, however it is spelt."""
    if not secret:
        return body
    raw = secret.encode()
    if raw in body:
        body = body.replace(raw, _REDACTED_BYTES)
    if not any(marker in body for marker in _DECODING_MARKERS):
        return body
    redactor = _Redactor(secret)
    try:
        document = redactor.value(json.loads(body, object_pairs_hook=redactor.pairs))
    except (ValueError, RecursionError):
        # Not JSON: such a body never reaches a caller (it is an upstream failure).
        return body
    if not redactor.changed:
        return body
    return json.dumps(document, separators=(",", ":")).encode()  # ASCII: lone surrogates too


def redact_text(text: str, secret: str) -> str:
    """`text` with `secret` replaced, also where percent-encoding, HTML character references or
    JSON escapes (of a JSON document inside the text) spell it; such a string comes back
    decoded (and redacted)."""
    if not secret:
        return text
    if secret in text:
        text = text.replace(secret, REDACTED)
    if "%" not in text and "&" not in text and "\\" not in text:
        return text
    current, exposed = text, False
    for _ in range(_MAX_DECODING_ROUNDS):
        decoded = _json_unescape(html.unescape(unquote(current)))
        if decoded == current:
            return current if exposed else text
        current = decoded
        if secret in current:
            exposed, current = True, current.replace(secret, REDACTED)
    return REDACTED  # still decoding: the gateway cannot tell what it holds


def _json_unescape(text: str) -> str:
    return _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else _SIMPLE_ESCAPES[m[2]], text)


class _Redactor:
    """Redacts while `json.loads` builds the document: `pairs` sees every key and value of every
    object, duplicates included, before a dict keeps only one of them."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self.changed = False

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {self.value(key): self.value(item) for key, item in pairs}

    def value(self, item: Any) -> Any:
        if isinstance(item, str):
            redacted = redact_text(item, self._secret)
            self.changed = self.changed or redacted != item
            return redacted
        if isinstance(item, list):
            return [self.value(element) for element in item]
        return item  # numbers, booleans, null; objects went through `pairs` already
