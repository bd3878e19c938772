"""The worst bodies a caller can send each door: time and peak memory of the answer.

Every body is at most 6 MiB on the wire (Lambda's payload limit for the API door), gzip that
inflates up to the door's ceiling: 32 MiB for the API door (`MAX_INFLATED_BODY_BYTES`), 64 MiB
for the S3 door (`MAX_MANIFEST_OBJECT_BYTES`). Each door runs as it does in Lambda, in process:

- API door: `SessionService.create_session` on a gzip dry run (no quota is charged, so any
  mapped caller can repeat it), with in-memory policy, quota gate and token;
- S3 door: what `ManifestDoor` does with an object it read: `gunzip` with the object ceiling,
  then the same service on the inflated body.

Each body runs in a forked child, so one figure does not inherit another's heap:
- `ms`: wall time of the answer (no tracing);
- `RSS MiB`: the child's peak resident memory above what it held before the call (VmHWM reset
  through /proc/self/clear_refs), the inflated body included;
- `traced MiB`: tracemalloc's peak of Python allocations during the call, inflated body included
  (`--no-trace` skips it: tracing slows an unbounded parse by ~10x).

Prints figures; asserts nothing (tests/unit/test_manifest.py holds the memory bound).

    .venv/bin/python bench/hostile_bodies.py [--door api|s3] [--only NAME] [--no-trace]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import platform
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assets_gateway.domain.errors import GatewayError
from assets_gateway.domain.policy import PolicyDocument
from assets_gateway.domain.request_body import gunzip
from assets_gateway.doors.session import SessionService
from assets_gateway.ports.policy_source import StoredPolicy
from bench_support import (
    AdmitAll,
    FixedCloudflare,
    FixedPolicy,
    FixedToken,
    Records,
    generated_manifest,
    roomy_policy,
)
from gateway_local.demo import web_session_request

MIB = 1024 * 1024
WIRE_LIMIT = 6 * MIB
CEILINGS = {"api": 32 * MIB, "s3": 64 * MIB}
HASH = "0de3dd5df907418e9730fd2bd747bd5e"
ENTRY = f'{{"hash":"{HASH}","size":1}}'


def _repeat(head: str, unit: str, tail: str, ceiling: int, *, sep: str = ",") -> bytes:
    """head + unit, unit, … + tail, as many units as fit the ceiling."""
    count = (ceiling - len(head) - len(tail)) // (len(unit) + len(sep))
    return (head + sep.join([unit] * count) + tail).encode()


def _numbered(head: str, unit: str, tail: str, ceiling: int) -> bytes:
    """Like `_repeat`, but `unit` holds `{n}`: every key distinct (a dict keeps them all)."""
    parts, size, n = [head], len(head) + len(tail), 0
    while True:
        part = ("," if n else "") + unit.format(n=n)
        if size + len(part) > ceiling:
            break
        parts.append(part)
        size += len(part)
        n += 1
    parts.append(tail)
    return "".join(parts).encode()


def _long_paths(ceiling: int) -> bytes:
    """100,000 valid entries whose paths fill the ceiling: the largest valid manifest."""
    count = 100_000
    room = (ceiling - 64) // count - len(ENTRY) - 16
    entries = ",".join(f'"/{"a" * room}/{n}":{ENTRY}' for n in range(count))
    return f'{{"manifest":{{{entries}}}}}'.encode()


def _invalid_at_the_end(body: bytes) -> bytes:
    """A valid body whose last entry has a bad hash: the strict path must name it."""
    at = body.rindex(b'"hash":"') + len(b'"hash":"')
    return body[:at] + b"XYZ" + body[at + 3 :]


VALID_100K = json.dumps({"manifest": generated_manifest(100_000)}, separators=(",", ":"))
CASES: dict[str, Callable[[int], bytes]] = {
    # The review's body: a valid manifest, then an unknown field of empty objects.
    "unknown field of {}": lambda c: _repeat(
        '{"manifest":{"/a":' + ENTRY + '},"x":[', "{}", "]}", c
    ),
    "unknown field of []": lambda c: _repeat('{"manifest":{},"x":[', "[]", "]}", c),
    "unknown field of 0": lambda c: _repeat('{"manifest":{},"x":[', "0", "]}", c),
    'unknown field of ""': lambda c: _repeat('{"manifest":{},"x":[', '""', "]}", c),
    "unknown field of 1e999": lambda c: _repeat('{"manifest":{},"x":[', "1e999", "]}", c),
    "unknown field of 4300-digit ints": lambda c: _repeat(
        '{"manifest":{},"x":[', "9" * 4300, "]}", c
    ),
    "unknown field, one long string": lambda c: _repeat(
        '{"manifest":{},"x":"', "a", '"}', c, sep=""
    ),
    "many top-level keys": lambda c: _numbered('{"manifest":{},', '"k{n}":0', "}", c),
    "one top-level key repeated": lambda c: _repeat('{"manifest":{},', '"k":0', "}", c),
    "entries of {}": lambda c: _numbered('{"manifest":{', '"/{n}":{{}}', "}}", c),
    "one entry repeated": lambda c: _repeat('{"manifest":{', '"/a":{}', "}}", c),
    "valid entries, far too many": lambda c: _numbered(
        '{"manifest":{', '"/{n}":' + ENTRY.replace("{", "{{").replace("}", "}}"), "}}", c
    ),
    "entries, each an array of 0": lambda c: _repeat('{"manifest":{"/a":[', "0", "]}}", c),
    "deep nesting": lambda c: b'{"manifest":{"/a":' + b"[" * (c - 32) + b"}}",
    "one long path": lambda c: _repeat('{"manifest":{"/', "a", '":' + ENTRY + "}}", c, sep=""),
    "100k valid entries (9 MB)": lambda c: VALID_100K.encode(),
    "100k entries, last invalid": lambda c: _invalid_at_the_end(VALID_100K.encode()),
    "100k valid, long paths": _long_paths,
    "100k long paths, last invalid": lambda c: _invalid_at_the_end(_long_paths(c)),
}


def _service(max_body: int, max_inflated: int) -> SessionService:
    return SessionService(
        policies=FixedPolicy(
            StoredPolicy(version=1, policy=PolicyDocument.model_validate(roomy_policy()))
        ),
        quotas=AdmitAll(),
        tokens=FixedToken(),
        upstream=FixedCloudflare(b'{"success":true}'),
        audit=Records(),
        max_request_body_bytes=max_body,
        max_inflated_body_bytes=max_inflated,
    )


def answer(door: str, wire: bytes) -> tuple[int, int | None]:
    """The door's answer to one gzip body: (status, first error code)."""
    if door == "api":
        request = replace(
            web_session_request(wire, request_id="bench"), content_encoding="gzip", dry_run=True
        )
        reply = _service(WIRE_LIMIT, CEILINGS["api"]).create_session(request).reply
    else:
        service = _service(CEILINGS["s3"], CEILINGS["s3"])
        try:
            body = gunzip(wire, CEILINGS["s3"], what="the .json.gz object")
        except GatewayError as error:  # the door writes this refusal as the result
            return error.status, error.code
        reply = service.create_session(web_session_request(body, request_id="bench")).reply
    envelope: dict[str, Any] = json.loads(reply.body)
    # A dry run answers 200 and reports the refusal it would meet among its reasons.
    errors = envelope.get("errors") or (envelope.get("result") or {}).get("reasons") or [{}]
    return reply.status, errors[0].get("code")


def _status_value(path: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(path):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {path} in /proc/self/status")


def _measure(door: str, wire: bytes, trace: bool, out: Any) -> None:
    """In a forked child: time and RSS peak of one answer, then (again) its traced peak."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_value("VmRSS:")
    started = time.perf_counter()
    status, code = answer(door, wire)
    elapsed = time.perf_counter() - started
    rss = _status_value("VmHWM:") - before
    traced = None
    if trace:
        tracemalloc.start()
        answer(door, wire)
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    out.send((status, code, elapsed, rss, traced))


@dataclass(frozen=True)
class Row:
    door: str
    name: str
    wire: int
    inflated: int
    status: int
    code: int | None
    ms: float
    rss: int
    traced: int | None


def run(door: str, name: str, trace: bool) -> Row | None:
    inflated = CASES[name](CEILINGS[door])
    if len(inflated) > CEILINGS[door]:
        raise RuntimeError(f"{name}: {len(inflated)} bytes, over the {door} ceiling")
    wire = gzip.compress(inflated, compresslevel=9)
    size = len(inflated)
    del inflated
    if len(wire) > WIRE_LIMIT:
        return None  # does not fit the wire: not a body a caller can send this way
    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_measure, args=(door, wire, trace, send)
    )
    child.start()
    status, code, elapsed, rss, traced = receive.recv()
    child.join()
    return Row(door, name, len(wire), size, status, code, elapsed * 1000, rss, traced)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--door", choices=sorted(CEILINGS), action="append")
    parser.add_argument("--only", action="append", help="a case name (repeatable)")
    parser.add_argument("--no-trace", dest="trace", action="store_false")
    args = parser.parse_args()
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {python}, zlib {zlib.ZLIB_RUNTIME_VERSION}")
    print(
        f"{'door':<4} {'body':<34} {'wire KiB':>9} {'inflated MiB':>12} {'answer':>10} "
        f"{'ms':>8} {'RSS MiB':>8} {'traced MiB':>10}"
    )
    worst: dict[str, tuple[float, int, int]] = {}
    for door in args.door or sorted(CEILINGS):
        for name in args.only or CASES:
            row = run(door, name, args.trace)
            if row is None:
                print(f"{door:<4} {name:<34} {'(over 6 MiB on the wire)':>30}")
                continue
            traced = "-" if row.traced is None else f"{row.traced / MIB:.1f}"
            answered = f"{row.status} {row.code or ''}"
            print(
                f"{row.door:<4} {row.name:<34} {row.wire / 1024:>9,.0f} "
                f"{row.inflated / MIB:>12.1f} {answered:>10} "
                f"{row.ms:>8,.0f} {row.rss / MIB:>8.1f} {traced:>10}",
                flush=True,
            )
            ms, rss, peak = worst.get(door, (0.0, 0, 0))
            worst[door] = (max(ms, row.ms), max(rss, row.rss), max(peak, row.traced or 0))
    for door, (ms, rss, peak) in worst.items():
        print(f"worst {door}: {ms:,.0f} ms, RSS +{rss / MIB:.1f} MiB, traced {peak / MIB:.1f} MiB")


if __name__ == "__main__":
    main()
