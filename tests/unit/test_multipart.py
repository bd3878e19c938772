"""The multipart/form-data reader: parts as offset ranges into the body, strict where readers
differ, bounded in memory whatever the body holds."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable

import pytest
from form_bodies import (
    BOUNDARY,
    BOUNDARY_SYNTAX,
    CONTENT_TYPE,
    MIB,
    FormPart,
    built,
    escape,
    field_name,
    form,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assets_gateway.domain.errors import GatewayError, InvalidWorkerUpload, WorkerUploadTooLarge
from assets_gateway.domain.multipart import (
    MAX_HEADER_BYTES,
    MAX_PARTS,
    FormLimits,
    boundary_of,
    read_form_data,
)
from helpers import traced_peak

METADATA: FormPart = ("metadata", b'{"main_module":"index.js"}', None, None)
MODULE: FormPart = ("index.js", b"export default {}", "index.js", "application/javascript+module")


def refusal(body: bytes, content_type: str = CONTENT_TYPE, **limits: int) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        read_form_data(body, content_type, FormLimits(**limits))
    return refused.value


# -- what wrangler sends --------------------------------------------------------------------


def test_reads_a_wrangler_shaped_body_as_ranges_of_its_own_bytes() -> None:
    # Wasm with CRLFs, blank lines and near-boundaries inside: none of them ends the part.
    wasm = (
        b"\x00asm\x01\x00\x00\x00\r\n--"
        + BOUNDARY[:-1].encode()
        + b"\r\n\r\n\x00\xff\r\n-"
        + BOUNDARY.encode()
        + b"\r\n\r\n--"
        + BOUNDARY[:-1].encode()
        + b"X\r\n"
    )
    body = form(
        [
            METADATA,
            ("index.js", b"export default {}\r\n", "index.js", "application/javascript+module"),
            ("a.wasm", wasm, "a.wasm", "application/wasm"),
            ("empty.txt", b"", "empty.txt", "text/plain"),
        ]
    )
    parsed = read_form_data(body, CONTENT_TYPE)
    assert parsed.body is body
    assert parsed.boundary == BOUNDARY
    assert [(p.index, p.name, p.filename, p.media_type) for p in parsed.parts] == [
        (1, "metadata", None, None),
        (2, "index.js", "index.js", "application/javascript+module"),
        (3, "a.wasm", "a.wasm", "application/wasm"),
        (4, "empty.txt", "empty.txt", "text/plain"),
    ]
    assert parsed.content(parsed.parts[2]) == wasm
    assert parsed.parts[3].size == 0
    view = parsed.content(parsed.parts[1])
    assert view.obj is body  # a view of the body: no copy
    assert parsed.parts[1].size == len(b"export default {}\r\n")
    assert parsed.get("a.wasm") is parsed.parts[2]
    assert parsed.get("nope") is None


# What wrangler's FormData writes, by Node's own undici (Node 20 is on every machine here).
_NODE_FORM = """
const form = new FormData();
form.set("metadata", JSON.stringify({main_module: "index.js", bindings: []}));
form.set("index.js", new File(["export default {}\\r\\n"], "index.js",
  {type: "application/javascript+module"}));
form.set('we"ird\\nname.wasm', new File([new Uint8Array([0, 13, 10, 45, 45, 13, 10, 255])],
  'we"ird.wasm', {type: "application/wasm"}));
const response = new Response(form);
const body = Buffer.from(await response.arrayBuffer());
process.stdout.write(JSON.stringify({type: response.headers.get("content-type"),
  body: body.toString("base64")}));
"""


def test_reads_what_nodes_undici_formdata_writes() -> None:
    written = subprocess.run(
        ["node", "--input-type=module", "-e", _NODE_FORM],
        capture_output=True,
        check=True,
        timeout=60,
    )
    sent = json.loads(written.stdout)
    body = base64.b64decode(sent["body"])
    parsed = read_form_data(body, sent["type"])
    assert parsed.boundary.startswith("----formdata-undici-0")
    assert [(p.name, p.filename, p.content_type) for p in parsed.parts] == [
        ("metadata", None, None),
        ("index.js", "index.js", "application/javascript+module"),
        ("we%22ird%0D%0Aname.wasm", "we%22ird.wasm", "application/wasm"),
    ]
    assert [bytes(parsed.content(p)) for p in parsed.parts] == [
        b'{"main_module":"index.js","bindings":[]}',
        b"export default {}\r\n",
        bytes([0, 13, 10, 45, 45, 13, 10, 255]),
    ]


@given(
    boundary=st.from_regex(BOUNDARY_SYNTAX, fullmatch=True),
    parts=st.lists(
        st.tuples(
            st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30),
            st.binary(max_size=300),
            st.none() | st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30),
            st.sampled_from(["application/wasm", "text/plain; charset=utf-8", "a/b"]),
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda part: part[0],
    ),
    preamble=st.binary(max_size=40),
    epilogue=st.sampled_from([b"", b"\r\n", b"\r\nsome epilogue\r\n", b" \t\r\nx"]),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_a_body_built_by_the_reference_builder_reads_back_to_its_parts_and_ranges(
    boundary: str,
    parts: list[FormPart],
    preamble: bytes,
    epilogue: bytes,
) -> None:
    dash = b"--" + boundary.encode()
    assume(all(dash not in part[1] for part in parts))
    assume(dash not in preamble and dash not in epilogue)
    # Names equal once percent-decoded are refused (tested below): keep them apart here.
    assume(len({field_name(p[0]) for p in parts}) == len(parts))
    assume(all("%" not in p[0] and "\\" not in p[0] for p in parts))
    assume(all(p[2] is None or "\\" not in p[2] for p in parts))
    parts = [(n, c, f, t if f is not None else None) for n, c, f, t in parts]
    body, ranges = built(parts, boundary, preamble=preamble, epilogue=epilogue)
    parsed = read_form_data(body, f'multipart/form-data; boundary="{boundary}"')
    assert [(p.start, p.end) for p in parsed.parts] == ranges
    assert [bytes(parsed.content(p)) for p in parsed.parts] == [p[1] for p in parts]
    assert [p.name for p in parsed.parts] == [field_name(p[0]) for p in parts]
    assert [p.filename for p in parsed.parts] == [
        None if p[2] is None else escape(p[2]) for p in parts
    ]
    assert [p.content_type for p in parsed.parts] == [p[3] for p in parts]


# -- the boundary ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('multipart/form-data; boundary="a b:c?"', "a b:c?"),
        ("Multipart/Form-Data;BOUNDARY=abc ; charset=utf-8", "abc"),
        ('multipart/form-data; charset="x;y"; boundary=abc;', "abc"),
        ("multipart/form-data; boundary=" + "b" * 70, "b" * 70),
    ],
)
def test_the_boundary_is_read_quoted_or_not(content_type: str, boundary: str) -> None:
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    ("content_type", "words"),
    [
        (None, "no Content-Type"),
        ("", "no Content-Type"),
        ("application/json", "not 'application/json'"),
        ("multipart/mixed; boundary=abc", "not 'multipart/mixed'"),
        ("multipart/form-data", "no boundary"),
        ("multipart/form-data; boundary=", "cannot be read"),
        ('multipart/form-data; boundary=""', "not one RFC 2046 allows"),
        ("multipart/form-data; boundary=" + "b" * 71, "not one RFC 2046 allows"),
        ('multipart/form-data; boundary="ab "', "not one RFC 2046 allows"),
        ('multipart/form-data; boundary="a@b"', "not one RFC 2046 allows"),
        ("multipart/form-data; boundary=a; boundary=b", "parameter 'boundary' twice"),
        ('multipart/form-data; boundary="abc', "cannot be read"),
        ("multipart/form-data boundary=abc", "cannot be read"),
    ],
)
def test_a_content_type_without_a_usable_boundary_is_refused(
    content_type: str | None, words: str
) -> None:
    with pytest.raises(InvalidWorkerUpload) as refused:
        boundary_of(content_type)
    assert words in refused.value.message
    assert (refused.value.status, refused.value.code) == (400, 19060)


# -- preamble, epilogue, delimiters ---------------------------------------------------------


def test_preamble_epilogue_and_transport_padding_are_read_as_rfc_2046_says() -> None:
    body = form([METADATA], preamble=b"This is a preamble.\r\nIgnored.", epilogue=b"  \r\nbye")
    body = body.replace(f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY} \t\r\n".encode())
    parsed = read_form_data(body, CONTENT_TYPE)
    assert [bytes(parsed.content(p)) for p in parsed.parts] == [METADATA[1]]


def test_a_body_without_trailing_crlf_after_the_close_is_read() -> None:
    assert len(read_form_data(form([METADATA], epilogue=b""), CONTENT_TYPE).parts) == 1


def _cut(body: bytes) -> bytes:
    return body[: body.rindex(b"--" + BOUNDARY.encode())]


HOSTILE: dict[str, tuple[Callable[[], bytes], type[GatewayError], str]] = {
    "no boundary at all": (lambda: b"just text", InvalidWorkerUpload, "never holds"),
    "empty body": (lambda: b"", InvalidWorkerUpload, "never holds"),
    "boundary mid-line in the preamble": (
        lambda: b"junk" + form([METADATA]),
        InvalidWorkerUpload,
        "middle of a line of the preamble",
    ),
    "cut short (no closing line)": (
        lambda: _cut(form([METADATA, MODULE])),
        InvalidWorkerUpload,
        "was it cut short",
    ),
    "cut inside the headers": (
        lambda: form([METADATA])[:60],
        InvalidWorkerUpload,
        "was it cut short",
    ),
    "closed before any part": (
        f"--{BOUNDARY}--\r\n".encode,
        InvalidWorkerUpload,
        "before any part",
    ),
    "boundary inside a part, mid-line": (
        lambda: form([("x.wasm", b"abc--" + BOUNDARY.encode() + b"def", "x", "a/b"), METADATA]),
        InvalidWorkerUpload,
        "boundary must not appear inside a part",
    ),
    "boundary line followed by other bytes": (
        lambda: form([("x.wasm", b"\r\n--" + BOUNDARY.encode() + b"X", "x", "a/b"), METADATA]),
        InvalidWorkerUpload,
        "does not end after the boundary",
    ),
    "bytes after the closing line": (
        lambda: form([METADATA], epilogue=b"trailing"),
        InvalidWorkerUpload,
        "closing boundary line does not end",
    ),
    "boundary in the epilogue": (
        lambda: form([METADATA]) + form([MODULE]),
        InvalidWorkerUpload,
        "after the closing boundary line",
    ),
    "no blank line after the headers": (
        lambda: form([METADATA]).replace(b'"\r\n\r\n', b'"\r\n'),
        InvalidWorkerUpload,
        "no blank line ending its headers",
    ),
    "no headers at all": (
        f"--{BOUNDARY}\r\n\r\ncontent\r\n--{BOUNDARY}--".encode,
        InvalidWorkerUpload,
        "no Content-Disposition",
    ),
    "delimiter right after the delimiter": (
        f"--{BOUNDARY}\r\n--{BOUNDARY}--".encode,
        InvalidWorkerUpload,
        "is empty: not even headers",
    ),
    "duplicate names": (
        lambda: form([METADATA, MODULE, METADATA]),
        InvalidWorkerUpload,
        "two parts are named 'metadata'",
    ),
    "duplicate names once percent-decoded": (
        lambda: form([METADATA, ("%6Detadata", b"{}", None, None)]),
        InvalidWorkerUpload,
        "(once written 'metadata')",
    ),
    "name* (RFC 2231)": (
        lambda: form([METADATA]).replace(b'name="metadata"', b"name*=UTF-8''metadata"),
        InvalidWorkerUpload,
        "RFC 7578 §4.2 forbids",
    ),
    "filename*": (
        lambda: form([MODULE]).replace(b'filename="index.js"', b"filename*=UTF-8''x.js"),
        InvalidWorkerUpload,
        "RFC 7578 §4.2 forbids",
    ),
    "no name": (
        lambda: form([METADATA]).replace(b'; name="metadata"', b""),
        InvalidWorkerUpload,
        "has no name",
    ),
    "empty name": (
        lambda: form([METADATA]).replace(b'name="metadata"', b'name=""'),
        InvalidWorkerUpload,
        "has no name",
    ),
    "name given twice": (
        lambda: form([METADATA]).replace(b'name="metadata"', b'name="metadata"; name="x"'),
        InvalidWorkerUpload,
        "parameter 'name' twice",
    ),
    "unterminated quoted name": (
        lambda: form([METADATA]).replace(b'name="metadata"', b'name="metadata'),
        InvalidWorkerUpload,
        "cannot be read",
    ),
    "attachment, not form-data": (
        lambda: form([METADATA]).replace(b"form-data;", b"attachment;"),
        InvalidWorkerUpload,
        "not `form-data",
    ),
    "Content-Disposition twice": (
        lambda: form([METADATA]).replace(
            b'"metadata"\r\n', b'"metadata"\r\ncontent-disposition: form-data; name="x"\r\n'
        ),
        InvalidWorkerUpload,
        "repeats its content-disposition header",
    ),
    "Content-Type twice": (
        lambda: form([MODULE]).replace(b"Content-Type:", b"Content-Type: a/b\r\nContent-Type:"),
        InvalidWorkerUpload,
        "repeats its Content-Type header",
    ),
    "Content-Type without a media type": (
        lambda: form([("x", b"", "x", "nonsense")]),
        InvalidWorkerUpload,
        "no media type",
    ),
    "folded header": (
        lambda: form([METADATA]).replace(b'; name="metadata"', b';\r\n name="metadata"'),
        InvalidWorkerUpload,
        "lines may not be folded",
    ),
    "bare LF in the headers": (
        lambda: form([MODULE]).replace(b'"index.js"\r\nContent', b'"index.js"\nContent'),
        InvalidWorkerUpload,
        "bare CR or LF",
    ),
    "space before the colon": (
        lambda: form([METADATA]).replace(b"Content-Disposition:", b"Content-Disposition :"),
        InvalidWorkerUpload,
        "no `Name: value`",
    ),
    "header not UTF-8": (
        lambda: form([METADATA]).replace(b'name="metadata"', b'name="metadata\xff"'),
        InvalidWorkerUpload,
        "not UTF-8",
    ),
    "control character in a header": (
        lambda: form([MODULE]).replace(b"Content-Type: ", b"Content-Type: \x01"),
        InvalidWorkerUpload,
        "control character",
    ),
    "base64 transfer encoding": (
        lambda: form([MODULE]).replace(
            b"Content-Type:", b"Content-Transfer-Encoding: base64\r\nContent-Type:"
        ),
        InvalidWorkerUpload,
        "RFC 7578 §4.7",
    ),
    "headers over the cap": (
        lambda: form([MODULE]).replace(
            b"Content-Type:", b"X-Pad: " + b"p" * MAX_HEADER_BYTES + b"\r\nContent-Type:"
        ),
        WorkerUploadTooLarge,
        f"headers exceed {MAX_HEADER_BYTES} bytes",
    ),
    "headers over the cap, never ended": (
        lambda: form([METADATA]).replace(b'"\r\n\r\n', b'"\r\nX: ' + b"p" * MAX_HEADER_BYTES),
        WorkerUploadTooLarge,
        f"headers exceed {MAX_HEADER_BYTES} bytes",
    ),
    "more parts than the cap": (
        lambda: form([(f"m{i}", b"", None, None) for i in range(MAX_PARTS + 1)]),
        WorkerUploadTooLarge,
        f"more than {MAX_PARTS} parts",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_malformed_bodies_are_refused_with_a_message_naming_the_fault(case: str) -> None:
    make, kind, words = HOSTILE[case]
    refused = refusal(make())
    assert type(refused) is kind
    assert words in refused.message
    assert (refused.status, refused.code) == (
        (413, 19061) if kind is WorkerUploadTooLarge else (400, 19060)
    )


def test_identity_transfer_encodings_and_unknown_headers_are_accepted() -> None:
    body = form([MODULE]).replace(
        b"Content-Type:", b"Content-Transfer-Encoding: binary\r\nX-Other: 1\r\nContent-Type:"
    )
    assert read_form_data(body, CONTENT_TYPE).parts[0].name == "index.js"


def test_tokens_are_read_and_backslashes_refused_as_readers_differ_on_them() -> None:
    body = form([METADATA]).replace(b'name="metadata"', b"name=metadata; filename=plain.js")
    part = read_form_data(body, CONTENT_TYPE).parts[0]
    assert (part.name, part.filename) == ("metadata", "plain.js")
    # Go's multipart writer escapes `"` as `\"`; undici writes `\` as it is: `a\` would end
    # a value for one reader and escape its closing quote for the other.
    for name in (b'"a\\"b"', b'"a\\b"', b'"a\\"'):
        refused = refusal(form([METADATA]).replace(b'"metadata"', name))
        assert "backslash" in refused.message or "cannot be read" in refused.message


def test_utf8_names_are_read_as_rfc_7578_sends_them() -> None:
    body = form([("módulo/ñ.js", b"x", "módulo/ñ.js", "application/javascript+module")])
    assert read_form_data(body, CONTENT_TYPE).parts[0].name == "módulo/ñ.js"


def test_the_caps_are_the_callers_to_choose() -> None:
    body = form([METADATA, MODULE])
    assert "more than 1 parts" in refusal(body, max_parts=1).message
    assert "exceed 10 bytes" in refusal(body, max_header_bytes=10).message
    assert len(read_form_data(body, CONTENT_TYPE, FormLimits(max_parts=2)).parts) == 2


def test_only_immutable_bytes_are_read() -> None:
    with pytest.raises(TypeError):
        read_form_data(bytearray(form([METADATA])), CONTENT_TYPE)  # type: ignore[arg-type]


# -- bounded memory -------------------------------------------------------------------------


def _peak(body: bytes, limits: FormLimits | None = None) -> tuple[int, object]:
    return traced_peak(lambda: read_form_data(body, CONTENT_TYPE, limits or FormLimits()))


def _tiny_parts(size: int) -> bytes:
    unit = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="p{{}}"\r\n\r\n\r\n'
    parts, total, n = [], 0, 0
    while total < size - 100:
        parts.append(unit.format(n).encode())
        total += len(parts[-1])
        n += 1
    return b"".join(parts) + f"--{BOUNDARY}--".encode()


def test_a_32_mib_body_of_tiny_parts_is_refused_in_bounded_memory() -> None:
    body = _tiny_parts(32 * MIB)
    peak, outcome = _peak(body)
    assert isinstance(outcome, WorkerUploadTooLarge)
    assert peak < 2 * MIB, f"{peak / MIB:.2f} MiB"


def test_a_body_of_tiny_parts_costs_o_parts_when_the_cap_allows_them() -> None:
    body = _tiny_parts(1 * MIB)  # ~12,000 parts (32 MiB: ~380,000, 25 s under tracemalloc)
    count = body.count(b"Content-Disposition")
    peak, outcome = _peak(body, FormLimits(max_parts=count))
    assert not isinstance(outcome, GatewayError), outcome
    # The part table: well under 1 KiB a part (Part objects, names, the duplicate check).
    assert peak < count * 600, f"{count} parts, {peak / MIB:.1f} MiB"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\nX: '.encode()
            + b"h" * (32 * MIB)
            + f"\r\n\r\n\r\n--{BOUNDARY}--".encode(),
            id="one 32 MiB header",
        ),
        pytest.param(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\nX: '.encode()
            + b"h" * (32 * MIB),
            id="one 32 MiB header, never ended",
        ),
        pytest.param(
            f"--{BOUNDARY}".encode() + b" " * (32 * MIB) + b"x",
            id="32 MiB of transport padding",
        ),
    ],
)
def test_a_huge_header_or_padding_is_refused_without_copying_it(body: bytes) -> None:
    peak, outcome = _peak(body)
    assert isinstance(outcome, GatewayError)
    assert peak < 256 * 1024, f"{peak / 1024:.0f} KiB"


def test_a_32_mib_module_is_read_without_a_copy() -> None:
    body = form([METADATA, ("big.wasm", b"\x00\r\n" * (11 * MIB), "big.wasm", "a/b")])
    peak, outcome = _peak(body)
    assert not isinstance(outcome, GatewayError), outcome
    assert peak < 64 * 1024, f"{peak / 1024:.0f} KiB"
