"""Which multipart/form-data reader for Worker uploads: ours against the standard library's.

`assets_gateway.domain.multipart.read_form_data` (offset ranges into the body, no copy of any
part) against `email.parser.BytesParser` with the HTTP policy (what the standard library offers
since `cgi` left in 3.13): it builds a Message per part and copies every line, and a part's
content is one more copy (`get_payload(decode=True)`). python-multipart (0.0.34 in our package
lists) is not in the layer's requirements nor installed here: a streaming parser that hands
content to callbacks piece by piece, for a body the gateway already holds whole, it would add a
dependency to the layer for what two `bytes.find` loops do.

Bodies are written by urllib3's `encode_multipart_formdata` (an independent writer, shipped
with botocore), in wrangler's shape (a JSON `metadata` part, then module parts):
- `wrangler 10 MB`: metadata, 4 JS modules, a 9 MB Wasm module, a source map;
- `2,000 small parts (32 MiB)`: the part cap, 16 KiB each;
- `tiny parts (5 MiB)`: ~60,000 empty parts, near the wire limit (refused at the cap by ours; the
  email parser reads them all, ours is also timed with the cap lifted).

Each figure: best wall time of `--repeat` runs, and tracemalloc's peak during one run (the body
excluded). Prints figures; asserts nothing (tests/unit/test_multipart.py holds the bounds).

    .venv/bin/python bench/multipart_readers.py [--repeat N]
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable

from urllib3.filepost import encode_multipart_formdata

from assets_gateway.domain.errors import GatewayError
from assets_gateway.domain.multipart import FormLimits, read_form_data

MIB = 1024 * 1024
Body = tuple[bytes, str]


def wrangler_body() -> Body:
    metadata = {"main_module": "index.js", "bindings": [], "compatibility_date": "2026-11-01"}
    fields: list[tuple[str, str | tuple[str, bytes, str]]] = [("metadata", json.dumps(metadata))]
    for n in range(4):
        name = "index.js" if n == 0 else f"chunk-{n}.js"
        js = (b"export const x = 'abc';\r\n" * 8_000)[:200_000]
        fields.append((name, (name, js, "application/javascript+module")))
    fields.append(
        ("app.wasm", ("app.wasm", bytes(range(256)) * (9_000_000 // 256), "application/wasm"))
    )
    fields.append(
        ("index.js.map", ("index.js.map", b'{"version":3}' * 1000, "application/source-map"))
    )
    return encode_multipart_formdata(fields)


def many_parts(count: int, size: int) -> Body:
    content = b"x" * size
    fields = [
        (f"m{n}.js", (f"m{n}.js", content, "application/javascript+module")) for n in range(count)
    ]
    return encode_multipart_formdata([("metadata", "{}"), *fields])


def tiny_parts(total: int) -> Body:
    unit = len(encode_multipart_formdata([("m0", "")])[0]) - 20
    return encode_multipart_formdata([(f"m{n}", "") for n in range(total // unit)])


def ours(limits: FormLimits) -> Callable[[Body], int]:
    def read(body: Body) -> int:
        try:
            return len(read_form_data(body[0], body[1], limits).parts)
        except GatewayError:
            return -1

    return read


def stdlib_email(body: Body) -> int:
    head = f"Content-Type: {body[1]}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body[0])
    return sum(len(part.get_payload(decode=True) or b"") >= 0 for part in message.iter_parts())


def measure(read: Callable[[Body], int], body: Body, repeat: int) -> tuple[float, float, int]:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        parts = read(body)
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    try:
        read(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return best * 1000, peak / MIB, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    bodies = {
        "wrangler 10 MB": wrangler_body(),
        "2,000 small parts (32 MiB)": many_parts(1_999, 16 * 1024),
        "tiny parts (5 MiB)": tiny_parts(6_000_000),
    }
    readers = {
        "ours": ours(FormLimits()),
        "ours, no part cap": ours(FormLimits(max_parts=10**7)),
        "stdlib email": stdlib_email,
    }
    print(f"Python {sys.version.split()[0]} on {platform.machine()}, best of {repeat}")
    print(f"{'body':28} {'MiB':>6} {'reader':18} {'ms':>9} {'peak MiB':>9} {'parts':>7}")
    for name, body in bodies.items():
        for reader, read in readers.items():
            ms, peak, parts = measure(read, body, repeat)
            shown = "refused" if parts < 0 else str(parts)
            print(
                f"{name:28} {len(body[0]) / MIB:6.1f} {reader:18} {ms:9.1f} {peak:9.2f} {shown:>7}"
            )


if __name__ == "__main__":
    main()
