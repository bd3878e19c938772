"""The multipart/form-data reader: parts as offset ranges into the body, strict where readers
differ, bounded in memory whatever the body holds."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets_gateway.domain.errors import InvalidWorkerUpload, WorkerUploadTooLarge
from assets_gateway.domain.multipart import FormLimits, boundary_of, read_form_data

MIB = 1024 * 1024
BOUNDARY = "----formdata-undici-012345678901"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def escape(name: str) -> str:
    """undici's (and the HTML standard's) escaping of names in Content-Disposition."""
    return name.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


def form(
    parts: Sequence[tuple[str, bytes, str | None, str | None]],
    boundary: str = BOUNDARY,
    *,
    preamble: bytes = b"",
    epilogue: bytes = b"\r\n",
) -> bytes:
    """The body undici's FormData writes (what wrangler sends): (name, content, filename, type);
    a part without a filename is a string field (no Content-Type), as the metadata is."""
    out = [preamble + b"\r\n" if preamble else b""]
    for name, content, filename, content_type in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{escape(name)}"'
        if filename is not None:
            head += f'; filename="{escape(filename)}"\r\nContent-Type: {content_type}'
        out.append(head.encode() + b"\r\n\r\n" + content + b"\r\n")
    out.append(f"--{boundary}--".encode() + epilogue)
    return b"".join(out)


def test_reads_a_wrangler_shaped_body_as_ranges_of_its_own_bytes() -> None:
    wasm = b"\x00asm\x01\x00\x00\x00\r\n--" + BOUNDARY[:-1].encode() + b"\r\n\r\n\x00\xff"
    body = form(
        [
            ("metadata", b'{"main_module":"index.js"}', None, None),
            ("index.js", b"export default {}\r\n", "index.js", "application/javascript+module"),
            ("a.wasm", wasm, "a.wasm", "application/wasm"),
        ]
    )
    parsed = read_form_data(body, CONTENT_TYPE)
    assert parsed.body is body
    assert [(p.name, p.filename, p.media_type) for p in parsed.parts] == [
        ("metadata", None, None),
        ("index.js", "index.js", "application/javascript+module"),
        ("a.wasm", "a.wasm", "application/wasm"),
    ]
    assert parsed.content(parsed.parts[2]) == wasm
    assert parsed.content(parsed.parts[1]).obj is body  # a view, no copy
    assert parsed.parts[1].size == len(b"export default {}\r\n")
