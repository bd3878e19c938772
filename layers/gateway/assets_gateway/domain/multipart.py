"""A multipart/form-data body read as offset ranges into its own bytes (pure; RFC 7578, 2046).

The deploy door judges a Worker upload and forwards the very bytes it judged, so nothing here
copies a part's content: a `Part` is its headers' meaning plus `start`/`end` offsets into the
body, and `FormData.content(part)` is a memoryview. What is built beyond the body is the part
table (at most `FormLimits.max_parts` entries) and each part's header block (at most
`FormLimits.max_header_bytes`), whatever the body holds; the scans are `bytes.find` at C speed,
each byte looked at a bounded number of times.

Strict where readers are known to differ, because the gateway and Cloudflare must see the same
parts in the same bytes:
- every occurrence of `--boundary` in the body must be a delimiter line (at the start of the
  body or after CRLF, then optional transport padding and CRLF, or `--` for the last): RFC 2046
  §5.1.1 forbids the boundary inside a part, and readers that split on it mid-line exist;
- header lines end in CRLF, without folding (obsolete since RFC 7230 §3.2.4) or bare CR/LF;
- each part has one `Content-Disposition: form-data` with a `name` (RFC 7578 §4.2), at most one
  `Content-Type`, no `name*`/`filename*` (RFC 7578 §4.2: MUST NOT), no transfer encoding other
  than the identity ones (§4.7: senders MUST NOT send one; a reader may or may not decode it);
- two parts may not share a name, nor names equal once percent-decoded: browsers and undici
  (wrangler's FormData) write `"` as `%22`, Go and older curl as `\\"`, and a reader that
  decodes one way or the other must not find a second `metadata` where the gateway found one.
- a backslash in a quoted value is refused: RFC 2045 reads `\\"` as a quoted pair, the HTML
  standard (which undici follows) as a backslash then the end of the value.
Parameter values are tokens or quoted strings (RFC 2045 §5.1, RFC 2183), read by the regular
expressions below rather than the `email` package, whose header parser repairs what it cannot
read (recording "defects") and decodes RFC 2231 continuations.
Preamble and epilogue (RFC 2046 §5.1.1) are allowed and ignored, but they are forwarded too, so
they may not hold the boundary either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from assets_gateway.domain.errors import InvalidWorkerUpload, WorkerUploadTooLarge
from assets_gateway.domain.request_body import shown

CRLF = b"\r\n"
MAX_BOUNDARY_CHARS = 70  # RFC 2046 §5.1.1
MAX_PARTS = 2_000
MAX_HEADER_BYTES = 8 * 1024

_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# A quoted string: any character but `"`, `\` and controls (HT allowed), or a quoted pair.
_QUOTED = r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)"'
_PARAMETER = re.compile(rf"[ \t]*;[ \t]*({_TCHARS})[ \t]*=[ \t]*(?:({_TCHARS})|{_QUOTED})")
_TRAILING = re.compile(r"[ \t]*;?[ \t]*\Z")
_MEDIA_TYPE = re.compile(rf"[ \t]*({_TCHARS}/{_TCHARS})")
_DISPOSITION = re.compile(rf"[ \t]*({_TCHARS})")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PADDING = re.compile(rb"[ \t]*")  # a regular expression: megabytes of it at C speed
_IDENTITY_TRANSFER = frozenset({"7bit", "8bit", "binary"})


@dataclass(frozen=True)
class FormLimits:
    max_parts: int = MAX_PARTS
    max_header_bytes: int = MAX_HEADER_BYTES  # one part's header block


@dataclass(frozen=True, slots=True)
class Part:
    """One part: what its headers say and where its content lies in the body, `[start, end)`."""

    index: int
    name: str
    filename: str | None
    content_type: str | None  # as sent (None: RFC 7578 §4.4 reads it as text/plain)
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def media_type(self) -> str | None:
        """The content type's `type/subtype`, lowercased, without parameters."""
        if self.content_type is None:
            return None
        return self.content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class FormData:
    """The parts of `body`, in body order; `body` is the very object that was read."""

    body: bytes = field(repr=False)
    boundary: str
    parts: tuple[Part, ...]

    def content(self, part: Part) -> memoryview:
        """The part's content, without a copy."""
        return memoryview(self.body)[part.start : part.end]

    def get(self, name: str) -> Part | None:
        return next((part for part in self.parts if part.name == name), None)


def parse_parameters(text: str, position: int, what: str) -> dict[str, str]:
    """`; name=value` pairs from `position` to the end (names lowercased, values unquoted).

    A parameter named twice is refused: readers keep the first or the last.
    """
    parameters: dict[str, str] = {}
    while match := _PARAMETER.match(text, position):
        name = match[1].lower()
        if name in parameters:
            raise InvalidWorkerUpload(f"{what} names the parameter {name!r} twice")
        value: str = match[2] if match[2] is not None else match[3]
        if "\\" in value:
            raise InvalidWorkerUpload(
                f"{what} has a backslash in its {name!r}: RFC 2045 readers take it for an "
                "escape, HTML-standard ones (undici, browsers) for itself; rename without it"
            )
        parameters[name] = value
        position = match.end()
    if not _TRAILING.match(text, position):
        raise InvalidWorkerUpload(
            f"{what} cannot be read from {shown(text[position:])} on (RFC 7578 and 2045 syntax: "
            '`; name=value` or `; name="quoted value"`)'
        )
    return parameters


def boundary_of(content_type: str | None) -> str:
    """The boundary a `multipart/form-data` Content-Type names (quoted or not, RFC 2046)."""
    if content_type is None or not (media := _MEDIA_TYPE.match(content_type)):
        raise InvalidWorkerUpload(
            "a Worker upload is multipart/form-data; the request has "
            + ("no Content-Type" if not content_type else f"Content-Type {shown(content_type)}")
        )
    if media[1].lower() != "multipart/form-data":
        raise InvalidWorkerUpload(
            f"a Worker upload is multipart/form-data, not {shown(media[1].lower())}"
        )
    boundary = parse_parameters(content_type, media.end(), "the Content-Type").get("boundary")
    if boundary is None:
        raise InvalidWorkerUpload("the Content-Type names no boundary (`; boundary=…`)")
    if not _BOUNDARY.fullmatch(boundary):
        raise InvalidWorkerUpload(
            f"the boundary {shown(boundary)} is not one RFC 2046 allows: 1 to "
            f"{MAX_BOUNDARY_CHARS} characters of letters, digits and '()+_,-./:=? (spaces "
            "inside only)"
        )
    return boundary


def read_form_data(
    body: bytes, content_type: str | None, limits: FormLimits = FormLimits()
) -> FormData:
    """The parts of a multipart/form-data `body`; refuses what the module docstring says."""
    if not isinstance(body, bytes):  # a bytearray could change after it was judged
        raise TypeError("read_form_data reads bytes")
    boundary = boundary_of(content_type)
    dash = b"--" + boundary.encode("ascii")
    position = body.find(dash)
    if position == -1:
        raise InvalidWorkerUpload(
            f"the body never holds its boundary line {shown('--' + boundary)}"
        )
    if position != 0 and not body.startswith(CRLF, position - 2):
        raise InvalidWorkerUpload(
            f"the boundary appears at offset {position} in the middle of a line of the preamble"
        )
    parts: list[Part] = []
    names: dict[bytes, str] = {}
    while True:
        after = position + len(dash)
        if body.startswith(b"--", after):
            if not parts:
                raise InvalidWorkerUpload("the body closes its boundary before any part")
            _check_epilogue(body, after + 2, dash)
            return FormData(body, boundary, tuple(parts))
        if len(parts) == limits.max_parts:
            raise WorkerUploadTooLarge(f"the body holds more than {limits.max_parts} parts")
        headers_start = _after_line_end(body, after, f"boundary line {len(parts) + 1}")
        position = body.find(dash, headers_start)
        if position == -1:
            raise InvalidWorkerUpload(
                f"the body ends inside part {len(parts) + 1}, without its closing boundary "
                f"line {shown('--' + boundary + '--')}: was it cut short?"
            )
        if position == headers_start:
            raise InvalidWorkerUpload(f"part {len(parts) + 1} is empty: not even headers")
        if not body.startswith(CRLF, position - 2):
            raise InvalidWorkerUpload(
                f"part {len(parts) + 1} holds its boundary at offset {position}, in the middle "
                "of a line: a boundary must not appear inside a part (RFC 2046 §5.1.1)"
            )
        part = _part(body, len(parts) + 1, headers_start, position - 2, limits)
        key = unquote_to_bytes(part.name)
        if key in names:
            same = names[key] == part.name
            raise InvalidWorkerUpload(
                f"two parts are named {shown(part.name)}"
                + ("" if same else f" (once written {shown(names[key])})")
                + ": each name may appear once"
            )
        names[key] = part.name
        parts.append(part)


def _after_line_end(body: bytes, position: int, what: str) -> int:
    """Past optional transport padding (RFC 2046: receivers must accept it) and the CRLF."""
    padding = _PADDING.match(body, position)
    end = padding.end() if padding else position
    if not body.startswith(CRLF, end):
        rest = body[end : end + 20]
        raise InvalidWorkerUpload(
            f"{what} does not end after the boundary"
            + (f": {shown(rest.decode('latin-1'))} follows it" if rest else " (the body ends)")
        )
    return end + 2


def _check_epilogue(body: bytes, position: int, dash: bytes) -> None:
    """After `--boundary--`: padding, then the end or CRLF and an epilogue without the boundary."""
    if position == len(body):
        return
    epilogue = _after_line_end(body, position, "the closing boundary line")
    stray = body.find(dash, epilogue)
    if stray != -1:
        raise InvalidWorkerUpload(
            f"the boundary appears again at offset {stray}, after the closing boundary line"
        )


def _part(body: bytes, index: int, start: int, end: int, limits: FormLimits) -> Part:
    """Part `index`, whose header block starts at `start` and whose content ends at `end`."""
    if body.startswith(CRLF, start):  # no header line at all
        header_end, content_start = start, start + 2
    else:
        header_end = body.find(b"\r\n\r\n", start, end + 2)
        if header_end == -1:
            if end - start > limits.max_header_bytes:
                raise WorkerUploadTooLarge(
                    f"part {index}'s headers exceed {limits.max_header_bytes} bytes"
                )
            raise InvalidWorkerUpload(
                f"part {index} has no blank line ending its headers before the next boundary"
            )
        content_start = header_end + 4
    if header_end - start > limits.max_header_bytes:
        raise WorkerUploadTooLarge(f"part {index}'s headers exceed {limits.max_header_bytes} bytes")
    headers = _headers(body[start:header_end], index)
    name, filename = _disposition(headers.get("content-disposition"), index)
    what = f"part {index} ({shown(name)})"
    transfer = headers.get("content-transfer-encoding")
    if transfer is not None and transfer.strip().lower() not in _IDENTITY_TRANSFER:
        raise InvalidWorkerUpload(
            f"{what} has Content-Transfer-Encoding {shown(transfer)}: form-data parts are sent "
            "as they are (RFC 7578 §4.7)"
        )
    content_type = headers.get("content-type")
    if content_type is not None and not _MEDIA_TYPE.match(content_type):
        raise InvalidWorkerUpload(f"{what} has Content-Type {shown(content_type)}, no media type")
    return Part(index, name, filename, content_type, min(content_start, end), end)


def _headers(block: bytes, index: int) -> dict[str, str]:
    """Header lines (CRLF-separated, no folding) → lowercased name: value; one of each name.

    Only the three headers RFC 7578 gives a meaning may not repeat; others are ignored (§4.8),
    but they must still be well-formed lines.
    """
    headers: dict[str, str] = {}
    if not block:
        return headers
    for line in _lines(block, index):
        name, colon, raw_value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise InvalidWorkerUpload(
                f"part {index} has a header line that is no `Name: value` "
                f"({shown(line[:60].decode('latin-1'))}; lines may not be folded)"
            )
        try:
            value = raw_value.decode("utf-8").strip(" \t")
        except UnicodeDecodeError:
            raise InvalidWorkerUpload(f"part {index} has a header that is not UTF-8") from None
        if _CONTROL.search(value):
            raise InvalidWorkerUpload(f"part {index} has a control character in a header")
        key = name.decode("ascii").lower()
        if key in headers:
            raise InvalidWorkerUpload(f"part {index} repeats its {name.decode('ascii')} header")
        headers[key] = value
    return headers


def _lines(block: bytes, index: int) -> Iterator[bytes]:
    for line in block.split(CRLF):
        if b"\r" in line or b"\n" in line:
            raise InvalidWorkerUpload(
                f"part {index} has a header line ending in a bare CR or LF (lines end in CRLF)"
            )
        yield line


def _disposition(value: str | None, index: int) -> tuple[str, str | None]:
    """name and filename of a `form-data` Content-Disposition (RFC 7578 §4.2)."""
    what = f"part {index}'s Content-Disposition"
    if value is None:
        raise InvalidWorkerUpload(f"part {index} has no Content-Disposition header")
    disposition = _DISPOSITION.match(value)
    if not disposition or disposition[1].lower() != "form-data":
        raise InvalidWorkerUpload(f"{what} is {shown(value)}, not `form-data; name=…`")
    parameters = parse_parameters(value, disposition.end(), what)
    if "name*" in parameters or "filename*" in parameters:
        raise InvalidWorkerUpload(
            f"{what} uses `name*` or `filename*`, which RFC 7578 §4.2 forbids: write the name "
            "in UTF-8 in `name` or `filename`"
        )
    name = parameters.get("name")
    if not name:
        raise InvalidWorkerUpload(f'{what} has no name (`form-data; name="…"`)')
    return name, parameters.get("filename")
