"""multipart/form-data bodies written the way wrangler's FormData (undici) writes them, with the
range of each part's content: the reference the reader's tests compare against."""

from __future__ import annotations

import re
from collections.abc import Sequence

MIB = 1024 * 1024
BOUNDARY = "----formdata-undici-012345678901"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
BOUNDARY_SYNTAX = r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]"  # RFC 2046
FormPart = tuple[str, bytes, str | None, str | None]  # name, content, filename, content type


def escape(name: str) -> str:
    """undici's (and the HTML standard's) escaping of names in Content-Disposition."""
    return name.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


def field_name(name: str) -> str:
    """A field's name as undici writes it: line breaks made CRLF first, then escaped."""
    return escape(re.sub(r"\r?\n|\r", "\r\n", name))


def built(
    parts: Sequence[FormPart],
    boundary: str = BOUNDARY,
    *,
    preamble: bytes = b"",
    epilogue: bytes = b"\r\n",
) -> tuple[bytes, list[tuple[int, int]]]:
    """The body undici's FormData writes (what wrangler sends), and each content's range.

    A part without a filename is a string field (no Content-Type), as wrangler's metadata is.
    """
    out = bytearray(preamble + b"\r\n" if preamble else b"")
    ranges = []
    for name, content, filename, content_type in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name(name)}"'
        if filename is not None:
            head += f'; filename="{escape(filename)}"\r\nContent-Type: {content_type}'
        out += head.encode() + b"\r\n\r\n"
        ranges.append((len(out), len(out) + len(content)))
        out += content + b"\r\n"
    out += f"--{boundary}--".encode() + epilogue
    return bytes(out), ranges


def form(parts: Sequence[FormPart], boundary: str = BOUNDARY, **kwargs: bytes) -> bytes:
    return built(parts, boundary, **kwargs)[0]
