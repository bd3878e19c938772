"""Regenerate client/src/assets_gateway_client/content_type_table.py (the extension -> type table
`content_types.content_type_for` reads) from the `mime` npm package at the version wrangler uses,
so the team client uploads each file with the Content-Type wrangler would.

    python scripts/generate_content_types.py           # mime's tarball from the npm registry
    python scripts/generate_content_types.py --check   # exit 1 if the module is not what it writes

When `node_modules/mime` holds that version (`npm install mime@<version>`), it is read instead,
its integrity taken from `node_modules/.package-lock.json`.

Which version, and why: wrangler's asset upload (`@cloudflare/deploy-helpers`,
`deploy/helpers/assets.ts`) types each file with `@cloudflare/workers-shared`'s
`getContentType`, which is `mime.getType` plus `; charset=utf-8` on `text/*` types without a
charset, and `application/null` when mime knows no type. workers-shared depends on
`mime ^4.0.7`, which cloudflare/workers-sdk's pnpm-lock.yaml locks at 4.0.7 (workers-sdk
f8308360, wrangler 4.125.0; wrangler's own `mime ^3.0.0` serves only `wrangler pages` and
`wrangler dev`). Bump MIME_VERSION and MIME_INTEGRITY together, from that lockfile.

What the table holds is what `new Mime(standardTypes, otherTypes)` builds (mime's
src/index.ts and src/Mime.ts `define`): for each type, in order, each extension lowercased maps
to the type lowercased, except `*`-starred extensions, which never map; an extension claimed by
two types is an error, as it is in mime.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
import tarfile
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

MIME_VERSION = "4.0.7"
MIME_INTEGRITY = (
    "sha512-2OfDPL+e03E0LrXaGYOtTFIYhiuzep94NSsuhrNULq+stylcJedcHdzHtz0atMUuGwJfFYs0YL5xeC"
    "/Ca2x0eQ=="
)
REGISTRY = "https://registry.npmjs.org"
REPO_ROOT = Path(__file__).resolve().parents[1]
MODULE = REPO_ROOT / "client" / "src" / "assets_gateway_client" / "content_type_table.py"
NODE_MODULES_MIME = REPO_ROOT / "node_modules" / "mime"
SCRIPT = "scripts/generate_content_types.py"
# The order mime's index.ts defines them in: the standard types, then the others.
TYPE_FILES = ("dist/types/standard.js", "dist/types/other.js")
DOWNLOAD_TIMEOUT_SECONDS = 60

TypeMap = dict[str, list[str]]


class MimeSourceError(Exception):
    """The package is not the one pinned, or its type files are not what this script reads."""


def integrity_of(data: bytes) -> str:
    """npm's Subresource Integrity string (sha512) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


_TOKEN = re.compile(r"'([^'\\]*)'|\"([^\"\\]*)\"|([{}\[\]:,])|(\S)")


def parse_type_map(source: str) -> TypeMap:
    """The `{'type': ['ext', ...], ...}` object literal of one of mime's type files (its
    `const types = {...}`), read token by token: strings, braces, brackets, colons, commas."""
    start = source.find("{")
    if start < 0:
        raise MimeSourceError("no object literal in the type file")
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(source, start):
        single, double, punctuation, other = match.groups()
        if other is not None:
            break  # past the literal (`;` then `Object.freeze(types)`)
        if punctuation is not None:
            tokens.append(("p", punctuation))
        else:
            tokens.append(("s", single if single is not None else double or ""))
    return _TypeMapReader(tokens).read()


class _TypeMapReader:
    def __init__(self, tokens: Sequence[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._at = 0

    def _next(self, kind: str, text: str | None = None) -> str:
        if self._at >= len(self._tokens):
            raise MimeSourceError("the type file's object literal ends early")
        got_kind, got = self._tokens[self._at]
        if got_kind != kind or (text is not None and got != text):
            raise MimeSourceError(f"unexpected {got!r} in the type file's object literal")
        self._at += 1
        return got

    def _peek(self, text: str) -> bool:
        return self._at < len(self._tokens) and self._tokens[self._at] == ("p", text)

    def read(self) -> TypeMap:
        types: TypeMap = {}
        self._next("p", "{")
        while not self._peek("}"):
            name = self._next("s")
            self._next("p", ":")
            types[name] = self._extensions()
            if not self._peek("}"):
                self._next("p", ",")
        self._next("p", "}")
        return types

    def _extensions(self) -> list[str]:
        extensions: list[str] = []
        self._next("p", "[")
        while not self._peek("]"):
            extensions.append(self._next("s"))
            if not self._peek("]"):
                self._next("p", ",")
        self._next("p", "]")
        return extensions


def build_table(*type_maps: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """extension -> type, as mime's `define` builds it over the maps in order (pure)."""
    table: dict[str, str] = {}
    for type_map in type_maps:
        for name, extensions in type_map.items():
            content_type = name.lower()
            for extension in (ext.lower() for ext in extensions):
                if extension.startswith("*"):
                    continue  # starred: listed for the type, never mapped to it
                current = table.get(extension)
                if current is not None and current != content_type:
                    raise MimeSourceError(
                        f'"{content_type} -> {extension}" conflicts with "{current} -> {extension}"'
                    )
                table[extension] = content_type
    return dict(sorted(table.items()))


def type_maps_from_tarball(data: bytes, version: str) -> list[TypeMap]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:

        def read(name: str) -> str:
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise MimeSourceError(f"the tarball holds no package/{name}")
            return member.read().decode("utf-8")

        _check_version(json.loads(read("package.json")), version)
        return [parse_type_map(read(name)) for name in TYPE_FILES]


def type_maps_from_directory(package: Path, version: str) -> list[TypeMap]:
    _check_version(json.loads((package / "package.json").read_text(encoding="utf-8")), version)
    return [parse_type_map((package / name).read_text(encoding="utf-8")) for name in TYPE_FILES]


def _check_version(manifest: Mapping[str, object], version: str) -> None:
    if manifest.get("name") != "mime" or manifest.get("version") != version:
        found = f"{manifest.get('name')}@{manifest.get('version')}"
        raise MimeSourceError(f"expected mime@{version}, found {found}")


def node_modules_integrity(node_modules: Path) -> str | None:
    """What npm recorded for node_modules/mime when it installed it."""
    lock = node_modules / ".package-lock.json"
    if not lock.exists():
        return None
    entry = (
        json.loads(lock.read_text(encoding="utf-8"))
        .get("packages", {})
        .get("node_modules/mime", {})
    )
    integrity = entry.get("integrity")
    return integrity if isinstance(integrity, str) else None


def download(version: str) -> bytes:
    url = f"{REGISTRY}/mime/-/mime-{version}.tgz"
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as answer:  # noqa: S310 - fixed https URL
        data: bytes = answer.read()
    return data


def load_type_maps(version: str, integrity: str) -> list[TypeMap]:
    """mime's type maps at `version`, from node_modules when it holds that version, else from
    the registry; either way checked against `integrity`."""
    if (NODE_MODULES_MIME / "package.json").exists():
        recorded = node_modules_integrity(NODE_MODULES_MIME.parent)
        installed = json.loads((NODE_MODULES_MIME / "package.json").read_text(encoding="utf-8"))
        if installed.get("version") == version and recorded == integrity:
            return type_maps_from_directory(NODE_MODULES_MIME, version)
    data = download(version)
    if integrity_of(data) != integrity:
        raise MimeSourceError(f"mime-{version}.tgz does not match {integrity}")
    return type_maps_from_tarball(data, version)


def render_module(table: Mapping[str, str], *, version: str, integrity: str) -> str:
    """The table's module for `table` (extension -> type), naming where it came from."""
    lines = "\n".join(f"{extension} {content_type}" for extension, content_type in table.items())
    return _MODULE_TEMPLATE.format(
        script=SCRIPT,
        version=version,
        integrity=integrity,
        count=len(table),
        # A table edited by hand no longer matches its digest: the tests read it back.
        digest=hashlib.sha256(lines.encode("utf-8")).hexdigest(),
        table=lines,
    )


_MODULE_TEMPLATE = '''\
# Generated by {script} from the npm package mime@{version}, integrity
# {integrity}
# The table's sha256: {digest}
# Do not edit: change the script and run it again.
"""mime@{version}'s extensions and their types, as wrangler's asset upload reads them
(content_types.content_type_for): {count} extensions, one `extension type` a line."""

MIME_PACKAGE = "mime@{version}"

TABLE = """
{table}
"""
'''


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=MODULE, help="the module to write")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the module differs"
    )
    args = parser.parse_args(argv)
    table = build_table(*load_type_maps(MIME_VERSION, MIME_INTEGRITY))
    module = render_module(table, version=MIME_VERSION, integrity=MIME_INTEGRITY)
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != module:
            print(f"{args.output} is not what {SCRIPT} writes: run it", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date (mime@{MIME_VERSION}, {len(table)} extensions)")
        return 0
    args.output.write_text(module, encoding="utf-8")
    print(f"wrote {args.output} from mime@{MIME_VERSION} ({len(table)} extensions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
