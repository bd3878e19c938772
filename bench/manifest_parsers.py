"""Which parser for the manifest: the numbers behind `assets_gateway.domain.manifest`'s fast path.

Each candidate turns the same body into a validated manifest and the body Cloudflare gets, with
the same answers (tests/unit/test_manifest.py holds every candidate the gateway uses to the
strict path's answers):

- stdlib json, strict: the duplicate-key hook, then one Python check per entry, json.dumps —
  what the gateway did before issue #7, and still does when the fast path steps aside;
- orjson / msgspec (untyped) / msgspec (typed, the TypedDict shape): the parse, then the fast
  path's column checks (`manifest._accept_decoded`); the typed parse already refuses wrong types.
  The gateway's own (`parse_manifest_body`) decodes a body it may forward as sent (ASCII, no
  escape, no blank: these bodies) into packed entries, Structs of two slots read as dicts;
- lower bounds of designs not taken, which would still need the path checks and the duplicate
  key count on top: msgspec into Structs with a hash pattern and size range (entries would no
  longer be dicts), pydantic's TypeAdapter over TypedDicts with the same constraints.

Next to the raw limit, `orjson.loads` + `orjson.dumps` of the body. Bodies are compact JSON
(what httpx, the Cloudflare SDKs and wrangler send). Prints figures; asserts nothing.

    .venv/bin/python bench/manifest_parsers.py [--repeat N]
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import timeit
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import msgspec
import orjson
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, with_config

from assets_gateway.domain.manifest import (
    MAX_FILE_BYTES,
    ManifestLimits,
    _accept_decoded,
    parse_manifest,
    parse_manifest_body,
)
from assets_gateway.domain.request_body import parse_json_body
from bench_support import manifest_body

SIZES = (1_000, 20_000, 100_000)
LIMITS = ManifestLimits()


class _StructEntry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    hash: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{1,32}$")]
    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_FILE_BYTES)]


class _StructBody(msgspec.Struct, forbid_unknown_fields=True):
    manifest: dict[str, _StructEntry]


@with_config(ConfigDict(extra="forbid", strict=True))
class _PydanticEntry(TypedDict):
    hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{1,32}$")]
    size: Annotated[int, Field(ge=0, le=MAX_FILE_BYTES)]


@with_config(ConfigDict(extra="forbid", strict=True))
class _PydanticBody(TypedDict):
    manifest: dict[str, _PydanticEntry]


def _checked(document: Any, body: bytes) -> bytes:
    manifest = _accept_decoded(document, body, LIMITS)
    if manifest is None:
        raise RuntimeError("the fast path stepped aside on a valid body")
    return manifest.to_body()


def candidates() -> dict[str, Callable[[bytes], object]]:
    untyped = msgspec.json.Decoder()
    structs = msgspec.json.Decoder(_StructBody)
    pydantic = TypeAdapter(_PydanticBody)

    def strict(body: bytes) -> bytes:
        entries = parse_manifest(parse_json_body(body), LIMITS).entries
        return json.dumps({"manifest": entries}, separators=(",", ":")).encode()

    return {
        "raw limit: orjson.loads + dumps": lambda body: orjson.dumps(orjson.loads(body)),
        "stdlib json, strict (before #7)": strict,
        "orjson + column checks": lambda body: _checked(orjson.loads(body), body),
        "msgspec untyped + column checks": lambda body: _checked(untyped.decode(body), body),
        "msgspec packed + column checks *": lambda body: parse_manifest_body(
            body, LIMITS
        ).to_body(),
        "(bound) msgspec Structs, constraints": structs.decode,
        "(bound) pydantic TypedDicts, constraints": pydantic.validate_json,
    }


def best_ms(action: Callable[[], object], repeat: int, budget_s: float = 0.2) -> float:
    """The fastest of `repeat` rounds (each long enough to time), in ms per call."""
    action()
    started = timeit.default_timer()
    action()
    once = max(timeit.default_timer() - started, 1e-6)
    number = max(1, int(budget_s / once))
    return min(timeit.repeat(action, number=number, repeat=repeat)) / number * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bodies = {entries: manifest_body(entries) for entries in SIZES}
    rows = {
        name: [best_ms(functools.partial(run, body), args.repeat) for body in bodies.values()]
        for name, run in candidates().items()
    }
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {python}; best of {args.repeat} rounds\n")
    header = "".join(f"{f'{n:,} entries':>22}" for n in SIZES)
    print(f"{'parse + validate + body to forward':<42}{header}")
    print(f"{'(ms, and x the raw limit)':<42}" + "".join(f"{'':>22}" for _ in SIZES))
    raw = rows["raw limit: orjson.loads + dumps"]
    for name, figures in rows.items():
        cells = "".join(
            f"{ms:>12.2f} ({ms / base:>4.1f}x)" for ms, base in zip(figures, raw, strict=True)
        )
        print(f"{name:<42}{cells}")
    kb = ", ".join(f"{len(body) / 1024:,.0f} KB" for body in bodies.values())
    print(
        f"\nbodies: {kb}. * the gateway's choice. (bound): the parse alone, paths and duplicate"
        "\nkeys still unchecked, entries not dicts (Structs): a floor, not a candidate."
    )


if __name__ == "__main__":
    main()
