"""Build an assets manifest from a build folder exactly as wrangler does.

wrangler's rules (cloudflare/workers-sdk, `packages/deploy-helpers/src/deploy/helpers/assets.ts`
`buildAssetManifest` and `hash.ts`; `packages/workers-shared/utils/helpers.ts`):

- key: `/` + the path relative to the folder, with forward slashes;
- hash: the first 32 hex characters of BLAKE3(base64(content) + extension), the extension taken
  as Node's `path.extname` does, without its dot (`a.TXT` → `TXT`, `.env` → ``); size: bytes;
- `.assetsignore` (gitignore syntax, see `assets_ignore`) leaves files out, and `/.assetsignore`,
  `/_headers`, `/_redirects` are never uploaded (they are configuration, not assets);
- a file over 25 MiB (26,214,400 bytes) stops everything with a clear message;
- a `_worker.js` file or folder is refused when there is no `.assetsignore` (it would publish a
  Pages server bundle as a public asset).

Deliberate difference: symbolic links are skipped (and reported), files and folders alike.
wrangler means to skip them too, but calls `stat`, which follows a link to a file, so it uploads
the target; a link can lead out of the build folder (to `~/.aws/credentials`), so we do not.

Nothing here touches the network; BLAKE3 is imported on first use, so the Lambda layer that
ships this package never needs it.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from assets_gateway_client.assets_ignore import ASSETS_IGNORE_FILENAME, AssetsIgnore
from assets_gateway_client.content_types import content_type_for
from assets_gateway_client.sizes import format_bytes

__all__ = [
    "MAX_ASSET_COUNT",
    "MAX_ASSET_SIZE",
    "Asset",
    "AssetManifest",
    "ManifestError",
    "build_manifest",
    "hash_content",
    "hash_encoded",
    "node_extension",
]

MAX_ASSET_SIZE = 25 * 1024 * 1024  # Cloudflare's per-asset limit (wrangler's MAX_ASSET_SIZE)
MAX_ASSET_COUNT = 100_000  # files per Worker version on paid plans (wrangler's MAX_ASSET_COUNT)
HASH_LENGTH = 32
WORKER_JS = "_worker.js"


class ManifestError(ValueError):
    """The folder cannot become a manifest (missing, a file too large, too many files...)."""


@dataclass(frozen=True)
class Asset:
    """One file of the manifest."""

    key: str  # "/" + relative path with forward slashes
    file: Path  # where to read it
    hash: str
    size: int
    content_type: str | None  # None: unknown type, uploaded as `application/null`


@dataclass(frozen=True)
class AssetManifest:
    """The files to upload, keyed as Cloudflare wants them, and what was left out."""

    directory: Path
    assets: tuple[Asset, ...]  # sorted by key
    ignored: tuple[str, ...] = ()  # keys left out by .assetsignore and the metafile rule
    symlinks: tuple[str, ...] = ()  # keys of symbolic links, skipped
    assets_ignore_present: bool = False
    _by_hash: dict[str, Asset] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for asset in self.assets:
            self._by_hash.setdefault(asset.hash, asset)

    @property
    def entries(self) -> int:
        return len(self.assets)

    @property
    def total_bytes(self) -> int:
        return sum(asset.size for asset in self.assets)

    def to_manifest(self) -> dict[str, dict[str, str | int]]:
        """The `manifest` object of the session request."""
        return {asset.key: {"hash": asset.hash, "size": asset.size} for asset in self.assets}

    def to_request_body(self) -> dict[str, object]:
        """What the gateway (and the S3 door) take: `{"manifest": {...}}`."""
        return {"manifest": self.to_manifest()}

    def asset_for_hash(self, file_hash: str) -> Asset | None:
        """A file with that content hash (any one: equal hashes mean equal content)."""
        return self._by_hash.get(file_hash)


def node_extension(name: str) -> str:
    """Node's `path.extname(name)` without its dot, for a file name (no directory part).

    Unlike Python's `splitext`, Node gives `..txt` and `...txt` the extension `txt`, and `...`
    the extension `.` (so `` here); a name whose only dot leads it (`.env`) has none.
    """
    dot = name.rfind(".")
    if dot <= 0 or name == "..":
        return ""
    return name[dot + 1 :]


def hash_content(content: bytes, extension: str) -> str:
    """wrangler's asset hash: BLAKE3 of base64(content) followed by the extension (no dot),
    its first 32 hex characters."""
    return hash_encoded(base64.b64encode(content), extension)


def hash_encoded(encoded: bytes, extension: str) -> str:
    """`hash_content` for content already base64-encoded."""
    from blake3 import blake3  # noqa: PLC0415 - only the client needs it, not the Lambda layer

    hasher = blake3(encoded)
    hasher.update(extension.encode("utf-8"))  # no copy of the content to append the extension
    return hasher.hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class _Found:
    relative: str
    path: Path
    size: int


@dataclass
class _Walk:
    files: list[_Found] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)


def _walk(root: Path, ignore: AssetsIgnore) -> _Walk:
    """Every regular file under `root`, in no particular order; directories an ignore rule
    covers entirely are not entered."""
    walk = _Walk()
    pending = [("", root)]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = prefix + entry.name
                _check_utf8(relative)
                if entry.is_symlink():
                    if ignore.ignores(relative):
                        walk.ignored.append(relative)
                    else:
                        walk.symlinks.append(relative)
                elif entry.is_dir(follow_symlinks=False):
                    if ignore.ignores_directory(relative):
                        walk.ignored.append(relative + "/")
                    else:
                        pending.append((relative + "/", Path(entry.path)))
                elif entry.is_file(follow_symlinks=False):
                    if ignore.ignores(relative):
                        walk.ignored.append(relative)
                    else:
                        info = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(info.st_mode):
                            walk.files.append(_Found(relative, Path(entry.path), info.st_size))
                # sockets, FIFOs, devices: not files wrangler could read either
    return walk


def _check_utf8(relative: str) -> None:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError as error:  # os.fsdecode kept undecodable bytes as surrogates
        shown = relative.encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise ManifestError(
            f"the name of {shown!r} is not UTF-8: manifest keys must be UTF-8 text"
        ) from error


def _check_worker_js(files: list[_Found], ignore: AssetsIgnore) -> None:
    if ignore.file_present:
        return
    for found in files:
        kind = (
            "file"
            if found.relative == WORKER_JS
            else "directory"
            if found.relative.startswith(WORKER_JS + "/")
            else None
        )
        if kind is not None:
            raise ManifestError(
                f"Uploading a Pages {WORKER_JS} {kind} as an asset.\n"
                "This could expose your private server-side code to the public Internet. "
                "Is this intended?\n"
                f"If you do not want to upload this {kind}, either remove it or add an "
                f'"{ASSETS_IGNORE_FILENAME}" file, to the root of your asset directory, '
                f'containing "{WORKER_JS}" to avoid uploading.\n'
                f"If you do want to upload this {kind}, you can add an empty "
                f'"{ASSETS_IGNORE_FILENAME}" file, to the root of your asset directory, '
                "to hide this error."
            )


def _check_sizes(files: list[_Found], root: Path, max_file_bytes: int) -> None:
    too_large = sorted((f for f in files if f.size > max_file_bytes), key=lambda f: f.relative)
    if not too_large:
        return
    listed = "\n".join(f"  /{f.relative} ({format_bytes(f.size)})" for f in too_large[:20])
    more = f"\n  ... and {len(too_large) - 20} more" if len(too_large) > 20 else ""
    raise ManifestError(
        f"Asset too large: Cloudflare Workers accepts assets of up to "
        f"{format_bytes(max_file_bytes)} ({max_file_bytes:,} bytes), and {len(too_large)} "
        f"file{'s' if len(too_large) > 1 else ''} in {root} "
        f"{'are' if len(too_large) > 1 else 'is'} larger:\n{listed}{more}\n"
        f"Remove, split or compress {'them' if len(too_large) > 1 else 'it'}, or leave "
        f"{'them' if len(too_large) > 1 else 'it'} out with {ASSETS_IGNORE_FILENAME}. "
        "Nothing was sent."
    )


def _hash_file(found: _Found) -> Asset:
    content = found.path.read_bytes()
    if len(content) != found.size:
        raise ManifestError(f"/{found.relative} changed while the manifest was being built")
    name = found.path.name
    return Asset(
        key="/" + found.relative,
        file=found.path,
        hash=hash_content(content, node_extension(name)),
        size=found.size,
        content_type=content_type_for(name),
    )


def _read_assets_ignore(root: Path) -> AssetsIgnore:
    path = root / ASSETS_IGNORE_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path} is not UTF-8 text") from error
    return AssetsIgnore.from_text(text)


def build_manifest(
    directory: str | os.PathLike[str],
    *,
    max_file_bytes: int = MAX_ASSET_SIZE,
    max_entries: int = MAX_ASSET_COUNT,
    workers: int | None = None,
    on_file: Callable[[Asset], None] | None = None,
) -> AssetManifest:
    """Walk `directory` and hash every file to upload, as wrangler would.

    Raises ManifestError, before anything is hashed, when the folder is missing, holds a file
    over `max_file_bytes`, more than `max_entries` files, or an unignored `_worker.js`.
    `workers` threads read and hash (BLAKE3 releases the GIL); `on_file` sees each asset.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ManifestError(
            f"{root} is not a directory" if root.exists() else f"{root} does not exist"
        )
    ignore = _read_assets_ignore(root)
    walk = _walk(root, ignore)
    _check_worker_js(walk.files, ignore)
    _check_sizes(walk.files, root, max_file_bytes)
    if len(walk.files) > max_entries:
        raise ManifestError(
            f"{root} holds {len(walk.files):,} files to upload; a Worker version may have at "
            f"most {max_entries:,}. Leave some out with {ASSETS_IGNORE_FILENAME}. Nothing was sent."
        )
    assets = list(_hash_all(walk.files, workers, on_file))
    assets.sort(key=lambda asset: asset.key)
    return AssetManifest(
        directory=root,
        assets=tuple(assets),
        ignored=tuple(sorted("/" + path for path in walk.ignored)),
        symlinks=tuple(sorted("/" + path for path in walk.symlinks)),
        assets_ignore_present=ignore.file_present,
    )


def _hash_all(
    files: list[_Found], workers: int | None, on_file: Callable[[Asset], None] | None
) -> Iterator[Asset]:
    if len(files) < 64 or workers == 1:
        hashed: Iterator[Asset] = map(_hash_file, files)
        for asset in hashed:
            if on_file is not None:
                on_file(asset)
            yield asset
        return
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) + 2)) as pool:
        for asset in pool.map(_hash_file, files):
            if on_file is not None:
                on_file(asset)
            yield asset
