"""The token in an upstream answer is redacted however it is spelt (issue 12 #13)."""

from __future__ import annotations

import contextlib
import html
import json
from typing import Any
from urllib.parse import unquote

import pytest

from assets_gateway.domain.redaction import REDACTED, redact_body, redact_text

SECRET = "tok/en_Secret-0123456789abcdef"  # with a '/' so that '\/' has something to escape


def json_escaped(text: str, positions: range | None = None) -> str:
    """`text` with the characters at `positions` (all by default) written as \\uXXXX."""
    chosen = range(len(text)) if positions is None else positions
    return "".join(f"\\u{ord(c):04x}" if i in chosen else c for i, c in enumerate(text))


def percent(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


def envelope_with(message_json: str) -> bytes:
    """An error envelope whose one message is `message_json`, a JSON string literal as written."""
    return (
        '{"success":false,"errors":[{"code":10000,"message":' + message_json + "}],"
        '"messages":[],"result":null}'
    ).encode()


def every_reading(document: Any) -> list[str]:
    """Every string of a JSON document (keys too), as written and percent/entity/JSON-decoded."""
    found: list[str] = []
    if isinstance(document, str):
        text = document
        for _ in range(10):
            found.append(text)
            text = html.unescape(unquote(text))
            with contextlib.suppress(ValueError):
                text = json.loads(f'"{text}"')
            with contextlib.suppress(ValueError):
                found.extend(every_reading(json.loads(text)))
    elif isinstance(document, list):
        for item in document:
            found.extend(every_reading(item))
    elif isinstance(document, dict):
        for key, value in document.items():
            found.extend(every_reading(key) + every_reading(value))
    return found


def assert_clean(body: bytes) -> None:
    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
        assert SECRET.encode(encoding) not in body
    document = json.loads(body)  # still valid JSON
    assert all(SECRET not in text for text in every_reading(document))


SPELLINGS = {
    "raw": f'"bad token {SECRET}"',
    "one character \\u-escaped": f'"bad token {json_escaped(SECRET, range(3, 4))}"',
    "every character \\u-escaped": f'"bad {json_escaped(SECRET)}"',
    "slash escaped": '"bad ' + SECRET.replace("/", "\\/") + '"',
    "percent-encoded": f'"https://x.test/?t={percent(SECRET)}"',
    "percent-encoded twice": f'"t={percent(SECRET).replace("%", "%25")}"',
    "one character percent-encoded": f'"t={SECRET[:5]}%{ord(SECRET[5]):02x}{SECRET[6:]}"',
    "HTML references": '"<b>' + "".join(f"&#x{ord(c):x};" for c in SECRET) + '</b>"',
    "escaped percent-encoding": f'"{json_escaped(percent(SECRET))}"',
    # A message embedding a JSON document of its own: its escapes are escaped once more.
    "JSON inside the message": '"{\\"t\\":\\"'
    + json_escaped(SECRET).replace("\\", "\\\\")
    + '\\"}"',
}


@pytest.mark.parametrize("message", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_the_secret_is_redacted_in_every_spelling(message: str) -> None:
    body = envelope_with(message)
    assert SECRET in json.dumps(every_reading(json.loads(body)))  # the reader would see it
    redacted = redact_body(body, SECRET)
    assert_clean(redacted)
    document = json.loads(redacted)
    assert REDACTED in document["errors"][0]["message"]
    assert document["errors"][0]["code"] == 10000  # the envelope is still Cloudflare's


def test_a_duplicate_key_cannot_hide_the_secret() -> None:
    # Readers that keep the first of two duplicate keys would show the escaped secret.
    body = envelope_with(f'"{json_escaped(SECRET)}","message":"harmless"')
    assert_clean(redact_body(body, SECRET))


def test_a_key_holding_the_secret_is_redacted() -> None:
    body = ('{"success":false,"errors":[],"result":{"' + json_escaped(SECRET) + '":1}}').encode()
    assert_clean(redact_body(body, SECRET))


def test_a_utf16_body_is_redacted() -> None:
    body = json.dumps({"success": False, "errors": [{"code": 1, "message": SECRET}]}).encode(
        "utf-16"
    )
    assert_clean(redact_body(body, SECRET))


def test_a_clean_body_passes_byte_for_byte() -> None:
    body = envelope_with('"caf\\u00e9 100% &amp; \\"quoted\\""')
    assert redact_body(body, SECRET) is body


def test_strings_encoded_too_deep_to_check_are_redacted_whole() -> None:
    deep = "a%41"
    for _ in range(12):
        deep = deep.replace("%", "%25")
    assert redact_text(deep, SECRET) == REDACTED
    assert redact_text("100%25 sure", SECRET) == "100%25 sure"  # decoded text left as it was


def test_an_empty_secret_redacts_nothing() -> None:
    assert redact_body(b'{"a":"b"}', "") == b'{"a":"b"}'


def test_a_body_with_a_lone_surrogate_is_still_written_as_json() -> None:
    body = envelope_with(f'"\\ud800 {json_escaped(SECRET)}"')
    redacted = redact_body(body, SECRET)
    assert_clean(redacted)
    assert json.loads(redacted)["errors"][0]["message"] == f"\ud800 {REDACTED}"
