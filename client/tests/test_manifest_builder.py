"""The manifest a build folder becomes, checked against wrangler's own vectors and behaviour.

Hash vectors come from wrangler's tests (cloudflare/workers-sdk,
`packages/wrangler/src/__tests__/deploy/assets.test.ts`). The `.assetsignore` expectations were
produced by the npm package wrangler uses, `ignore@5.3.1`, run under Node on these very inputs.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from assets_gateway_client.assets_ignore import AssetsIgnore
from assets_gateway_client.cli import main
from assets_gateway_client.content_types import content_type_for
from assets_gateway_client.manifest_builder import (
    MAX_ASSET_SIZE,
    ManifestError,
    build_manifest,
    hash_content,
    node_extension,
)
from assets_gateway_client.upload import upload_directory

ACCOUNT = "0123456789abcdef0123456789abcdef"


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


# ----------------------------------------------------------------------------- hashes


@pytest.mark.parametrize(
    ("content", "extension", "expected"),
    [
        (b"Content of file-1", "txt", "0de3dd5df907418e9730fd2bd747bd5e"),
        (b"Content of file-3", "txt", "ff5016e92f039aa743a4ff7abb3180fa"),
        (b"something-binary", "greg", "80e40c1f2422528cb2fba3f9389ce315"),
    ],
)
def test_wranglers_hash_vectors(content: bytes, extension: str, expected: str) -> None:
    assert hash_content(content, extension) == expected


def test_wranglers_test_vector_from_a_folder(tmp_path: Path) -> None:
    write(tmp_path, {"file-1.txt": "Content of file-1"})
    manifest = build_manifest(tmp_path)
    assert manifest.to_manifest() == {
        "/file-1.txt": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}
    }
    assert manifest.to_request_body() == {"manifest": manifest.to_manifest()}
    assert (manifest.entries, manifest.total_bytes) == (1, 17)


@pytest.mark.parametrize(
    ("name", "extension"),
    # Node's path.extname on these names (checked with node 20), without the dot
    [
        ("a.txt", "txt"),
        ("x.TXT", "TXT"),
        ("a b.tar.gz", "gz"),
        (".txt", ""),
        (".assetsignore", ""),
        ("_headers", ""),
        ("..txt", "txt"),
        ("...txt", "txt"),
        ("a..txt", "txt"),
        ("a.", ""),
        ("...", ""),
        ("..", ""),
        (".a.b", "b"),
    ],
)
def test_extension_is_nodes(name: str, extension: str) -> None:
    assert node_extension(name) == extension


def test_the_extension_is_part_of_the_hash_and_keeps_its_case(tmp_path: Path) -> None:
    write(tmp_path, {"a.txt": "same", "b.TXT": "same", "c": "same", ".env": "same"})
    hashes = {key: entry["hash"] for key, entry in build_manifest(tmp_path).to_manifest().items()}
    assert hashes["/a.txt"] == hash_content(b"same", "txt")
    assert hashes["/b.TXT"] == hash_content(b"same", "TXT")
    assert hashes["/c"] == hashes["/.env"] == hash_content(b"same", "")
    assert len({hashes["/a.txt"], hashes["/b.TXT"], hashes["/c"]}) == 3


# ----------------------------------------------------------------------------- walking


def test_nested_paths_become_slash_keys_sorted(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "index.html": "<h1>hi</h1>",
            "assets/js/app.js": "console.log(1)",
            "assets/css/site.css": "body{}",
            "deep/a/b/c/d/e.json": "{}",
            "with space/é ü.txt": "unicode",
            "empty.txt": b"",
        },
    )
    (tmp_path / "an-empty-dir").mkdir()
    manifest = build_manifest(tmp_path)
    keys = list(manifest.to_manifest())
    assert keys == [
        "/assets/css/site.css",
        "/assets/js/app.js",
        "/deep/a/b/c/d/e.json",
        "/empty.txt",
        "/index.html",
        "/with space/é ü.txt",
    ]
    entries = manifest.to_manifest()
    assert entries["/empty.txt"] == {"hash": hash_content(b"", "txt"), "size": 0}
    assert entries["/with space/é ü.txt"]["size"] == 7
    assert all(len(str(entry["hash"])) == 32 for entry in entries.values())


def test_symlinks_are_skipped_files_and_folders(tmp_path: Path) -> None:
    site = write(tmp_path / "site", {"real.txt": "real", "dir/inner.txt": "inner"})
    outside = write(tmp_path / "outside", {"secret.txt": "do not publish"})
    (site / "link.txt").symlink_to(site / "real.txt")
    (site / "leak.txt").symlink_to(outside / "secret.txt")
    (site / "linked-dir").symlink_to(outside, target_is_directory=True)
    (site / "dangling").symlink_to(tmp_path / "nowhere")
    manifest = build_manifest(site)
    assert list(manifest.to_manifest()) == ["/dir/inner.txt", "/real.txt"]
    assert manifest.symlinks == ("/dangling", "/leak.txt", "/link.txt", "/linked-dir")


def test_missing_or_non_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        build_manifest(tmp_path / "nope")
    write(tmp_path, {"file.txt": "x"})
    with pytest.raises(ManifestError, match="is not a directory"):
        build_manifest(tmp_path / "file.txt")


def test_too_many_files_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {f"f{i}.txt": str(i) for i in range(4)})
    with pytest.raises(
        ManifestError, match="4 files to upload; a Worker version may have at most 3"
    ):
        build_manifest(tmp_path, max_entries=3)


def test_many_files_hash_in_parallel_to_the_same_manifest(tmp_path: Path) -> None:
    write(tmp_path, {f"d{i % 5}/f{i}.txt": f"content {i}" for i in range(200)})
    serial = build_manifest(tmp_path, workers=1)
    parallel = build_manifest(tmp_path, workers=4)
    assert serial.to_manifest() == parallel.to_manifest()
    assert serial.to_manifest()["/d3/f8.txt"]["hash"] == hash_content(b"content 8", "txt")


# ----------------------------------------------------------------------------- size limit


@pytest.fixture
def listening_port() -> Iterator[socket.socket]:
    """A loopback socket that listens but never accepts: any connection attempt queues up."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener


def test_an_oversize_file_is_refused_before_any_call(
    tmp_path: Path, listening_port: socket.socket
) -> None:
    site = write(tmp_path, {"index.html": "<p>ok</p>"})
    with (site / "video.mp4").open("wb") as sparse:
        sparse.truncate(MAX_ASSET_SIZE + 1)
    url = f"http://127.0.0.1:{listening_port.getsockname()[1]}/client/v4"
    with pytest.raises(ManifestError) as refused:
        upload_directory(
            site,
            account_id=ACCOUNT,
            script_name="web-storefront",
            gateway_url=url,
            cloudflare_api_url=url,
            auth=None,
            region="us-east-1",
        )
    message = str(refused.value)
    assert "Asset too large" in message
    assert "/video.mp4 (25.0 MiB)" in message
    assert "26,214,400 bytes" in message
    assert "Nothing was sent" in message
    with pytest.raises(BlockingIOError):
        listening_port.accept()  # nobody ever connected


def test_a_file_of_exactly_25_mib_is_accepted(tmp_path: Path) -> None:
    with (tmp_path / "big.bin").open("wb") as sparse:
        sparse.truncate(MAX_ASSET_SIZE)
    assert build_manifest(tmp_path).to_manifest()["/big.bin"]["size"] == MAX_ASSET_SIZE


def test_every_oversize_file_is_listed(tmp_path: Path) -> None:
    for name in ("a.bin", "b/c.bin"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        with (tmp_path / name).open("wb") as sparse:
            sparse.truncate(MAX_ASSET_SIZE + 10)
    with pytest.raises(ManifestError, match=r"2 files in .* are larger:\n  /a.bin .*\n  /b/c.bin"):
        build_manifest(tmp_path)


def test_an_ignored_oversize_file_does_not_matter(tmp_path: Path) -> None:
    write(tmp_path, {".assetsignore": "*.mp4\n", "index.html": "x"})
    with (tmp_path / "video.mp4").open("wb") as sparse:
        sparse.truncate(MAX_ASSET_SIZE + 1)
    assert list(build_manifest(tmp_path).to_manifest()) == ["/index.html"]


# ----------------------------------------------------------------------------- .assetsignore


def test_wranglers_assetsignore_fixture(tmp_path: Path) -> None:
    """wrangler's 'should ignore assets that match patterns in an .assetsignore file' test."""
    write(
        tmp_path,
        {
            ".assetsignore": "*.bak\nsub-dir",
            "_redirects": "/foo /bar",
            "_headers": "/some-path\nX-Header: Custom-Value",
            "file-1.txt": "Content of file-1",
            "file-2.bak": "Content of file-2",
            "file-3.txt": "Content of file-3",
            "sub-dir/file-4.bak": "Content of file-4",
            "sub-dir/file-5.txt": "Content of file-5",
        },
    )
    manifest = build_manifest(tmp_path)
    assert manifest.to_manifest() == {
        "/file-1.txt": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17},
        "/file-3.txt": {"hash": "ff5016e92f039aa743a4ff7abb3180fa", "size": 17},
    }
    assert manifest.ignored == (
        "/.assetsignore",
        "/_headers",
        "/_redirects",
        "/file-2.bak",
        "/sub-dir/",
    )
    assert manifest.assets_ignore_present


def test_metafiles_are_left_out_only_at_the_root_even_without_assetsignore(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "_headers": "h",
            "_redirects": "r",
            "docs/_headers": "nested: an ordinary asset",
            "docs/.assetsignore": "*",  # only the root's file counts
            "node_modules/pkg/index.js": "kept: wrangler has no default ignores for Workers",
            ".DS_Store": "kept too",
        },
    )
    manifest = build_manifest(tmp_path)
    assert list(manifest.to_manifest()) == [
        "/.DS_Store",
        "/docs/.assetsignore",
        "/docs/_headers",
        "/node_modules/pkg/index.js",
    ]
    assert not manifest.assets_ignore_present


def test_negation_cannot_reinclude_below_an_ignored_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".assetsignore": "# build output we do not serve\nprivate/\n!private/ok.txt\n"
            "*.map\n!keep.map\n/root-only.txt\n",
            "private/ok.txt": "still ignored",
            "app.js.map": "ignored",
            "keep.map": "re-included",
            "sub/keep.map": "re-included at any depth",
            "root-only.txt": "ignored",
            "sub/root-only.txt": "kept: the pattern is anchored",
            "index.html": "kept",
        },
    )
    assert list(build_manifest(tmp_path).to_manifest()) == [
        "/index.html",
        "/keep.map",
        "/sub/keep.map",
        "/sub/root-only.txt",
    ]


# (patterns, {path: ignored?}) as ignore@5.3.1 answers them
IGNORE_VECTORS: list[tuple[list[str], dict[str, bool]]] = [
    (
        ["*.bak", "sub-dir"],
        {
            "file-2.bak": True,
            "FILE.BAK": True,
            "a/b/x.Bak": True,
            "sub-dir/file-5.txt": True,
            "sub-dir": True,
            "sub-dir-2/a.txt": False,
            "file-1.txt": False,
        },
    ),
    (["/root.txt"], {"root.txt": True, "sub/root.txt": False}),
    (
        ["docs/*.md"],
        {"docs/a.md": True, "docs/sub/a.md": False, "x/docs/a.md": False, "docs/a.mdx": False},
    ),
    (
        ["**/cache/**"],
        {"cache/a": True, "a/cache/b/c.txt": True, "a/cache": False, "cachex/a": False},
    ),
    (["a/**/b.txt"], {"a/b.txt": True, "a/x/y/b.txt": True, "x/a/b.txt": False}),
    (
        ["build/", "!build/keep.txt"],
        {"build/keep.txt": True, "build/x.txt": True, "build": False, "x/build/y.txt": True},
    ),
    (
        ["*.log", "!important.log"],
        {
            "debug.log": True,
            "important.log": False,
            "logs/important.log": False,
            "logs/debug.log": True,
        },
    ),
    (["\\#hash.txt", "# a comment", "", "   "], {"#hash.txt": True, "# a comment": False}),
    (["\\!bang.txt"], {"!bang.txt": True, "bang.txt": False}),
    (
        ["[!a].txt", "[0-9]*.png"],
        {"!.txt": True, "a.txt": True, "b.txt": False, "7up.png": True, "x7.png": False},
    ),
    (["file?.txt"], {"file1.txt": True, "file12.txt": False, "file/.txt": False}),
    (["*.txt\r", "trailing.md   "], {"a.txt": True, "trailing.md": True}),
    (
        ["/_headers", "/_redirects", "/.assetsignore"],
        {
            "_headers": True,
            "sub/_headers": False,
            "_redirects": True,
            ".assetsignore": True,
            "_HEADERS": True,
        },
    ),
    (
        ["node_modules", ".DS_Store"],
        {"node_modules/x/index.js": True, "a/node_modules/x.js": True, "a/.DS_Store": True},
    ),
    (["*"], {"a.txt": True, "a/b.txt": True}),
    (["*", "!*.html"], {"index.html": False, "a/index.html": True, "a.css": True}),
    (["*/", "!*.html"], {"index.html": False, "a/index.html": True, "a/b.css": True}),
]


@pytest.mark.parametrize(("patterns", "expected"), IGNORE_VECTORS)
def test_assetsignore_matches_like_wranglers_ignore_package(
    patterns: list[str], expected: dict[str, bool]
) -> None:
    ignore = AssetsIgnore(patterns)
    assert {path: ignore.ignores(path) for path in expected} == expected


# ----------------------------------------------------------------------------- _worker.js


def test_worker_js_is_refused_without_an_assetsignore(tmp_path: Path) -> None:
    write(tmp_path, {"_worker.js": "// server code", "index.html": "x"})
    with pytest.raises(ManifestError, match=r"Uploading a Pages _worker\.js file as an asset"):
        build_manifest(tmp_path)
    (tmp_path / "_worker.js").unlink()
    write(tmp_path, {"_worker.js/index.js": "// server code"})
    with pytest.raises(ManifestError, match=r"_worker\.js directory"):
        build_manifest(tmp_path)
    write(tmp_path, {".assetsignore": ""})  # an empty one says "I meant it"
    assert "/_worker.js/index.js" in build_manifest(tmp_path).to_manifest()


# ----------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("name", "content_type"),
    # mime@4.0.7, as @cloudflare/workers-shared's getContentType uses it
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.mjs", "text/javascript; charset=utf-8"),
        ("site.css", "text/css; charset=utf-8"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("data.json", "application/json"),
        ("app.js.map", "application/json"),
        ("module.wasm", "application/wasm"),
        ("logo.svg", "image/svg+xml"),
        ("photo.JPG", "image/jpeg"),
        ("font.woff2", "font/woff2"),
        ("site.webmanifest", "application/manifest+json"),
        ("feed.xml", "application/xml"),
        ("clip.ts", "video/mp2t"),
        ("foobar.greg", None),
        (".env", None),
        ("LICENSE", None),
        ("dir/.htaccess", None),
        ("a.", None),
    ],
)
def test_content_types_are_wranglers(name: str, content_type: str | None) -> None:
    assert content_type_for(name) == content_type


def test_each_asset_carries_its_content_type(tmp_path: Path) -> None:
    write(tmp_path, {"index.html": "x", "blob.greg": "y"})
    types = {a.key: a.content_type for a in build_manifest(tmp_path).assets}
    assert types == {"/blob.greg": None, "/index.html": "text/html; charset=utf-8"}


# ----------------------------------------------------------------------------- --manifest-only


def test_manifest_only_writes_the_s3_door_body_without_any_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ASSETS_GATEWAY_URL", raising=False)
    site = write(tmp_path / "site", {"file-1.txt": "Content of file-1", "_headers": "h"})
    out = tmp_path / "manifest.json"
    assert main(["upload", str(site), "--manifest-only", str(out)]) == 0
    assert json.loads(out.read_text()) == {
        "manifest": {"/file-1.txt": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}
    }
    assert main(["upload", str(site), "--manifest-only", "-", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads(out.read_text())


def test_cli_usage_problems_exit_2_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ASSETS_GATEWAY_URL", raising=False)
    site = write(tmp_path, {"index.html": "x"})
    args = ["upload", str(site), "--account", ACCOUNT, "--script", "web-storefront"]
    assert main(args) == 2
    assert "no gateway URL: pass --gateway URL or set ASSETS_GATEWAY_URL" in capsys.readouterr().err
    assert main(["upload", str(site)]) == 2
    assert "--account and --script are required" in capsys.readouterr().err
    assert main(["upload", str(tmp_path / "missing"), "--manifest-only", "-"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*args, "--gateway", "http://127.0.0.1:9/client/v4", "--concurrency", "0"]) == 2
    assert "--concurrency must be at least 1" in capsys.readouterr().err
    assert os.environ.get("ASSETS_GATEWAY_URL") is None
