"""Throughput of the team client on a 5,000-file build folder against the local stack.

Generates the folder (nested, sizes 200 B to 40 KB, a mix of web file types), then measures:
building the manifest (walk + read + base64 + BLAKE3), a first upload of everything through
the gateway to the Cloudflare emulator (session + every bucket), and a second upload that
finds nothing missing. Everything runs on loopback on this machine: the figures say what the
client and the local stack cost, not what the Internet does. Prints figures; asserts nothing.

    .venv/bin/python bench/upload.py [--files N] [--concurrency N ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3

from assets_gateway_client.manifest_builder import build_manifest
from assets_gateway_client.sigv4 import SigV4Auth
from assets_gateway_client.upload import upload_manifest
from assets_gateway_client.uploader import BULK_CONCURRENCY, UploadResult
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack, StackOptions

EXTENSIONS = ("html", "css", "js", "json", "svg", "png", "woff2", "txt")


def make_folder(root: Path, files: int, seed: int = 8) -> int:
    """`files` files of 200 B to 40 KB under nested folders; their total size."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        folder = root / f"section-{i % 20}" / f"chunk-{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        content = rng.randbytes(rng.randint(200, 40_000))
        (folder / f"asset-{i}.{EXTENSIONS[i % len(EXTENSIONS)]}").write_bytes(content)
        total += len(content)
    return total


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The in-process gateway logs JSON and EMF metrics to stdout on every request."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def run(stack: LocalStack, folder: Path, concurrency: int | None) -> dict[str, float]:
    auth = SigV4Auth.from_session(
        boto3.Session(
            aws_access_key_id=WEB_DEPLOYER.access_key_id,
            aws_secret_access_key=WEB_DEPLOYER.secret_access_key,
            region_name="us-east-1",
        )
    )
    stack.emulator.reset()  # Cloudflare forgets every stored file: the first run sends all
    stack.clear_quotas()
    started = time.perf_counter()
    manifest = build_manifest(folder)
    built = time.perf_counter() - started

    def upload() -> UploadResult:
        return upload_manifest(
            manifest,
            account_id=DEMO_ACCOUNT_ID,
            script_name=WEB_SCRIPT,
            gateway_url=stack.base_url,
            auth=auth,
            cloudflare_api_url=stack.cloudflare_url,
            concurrency=concurrency,
        )

    with quiet():
        first = upload()
        second = upload()
    if first.uploaded_files != manifest.entries or second.uploaded_files != 0:
        raise RuntimeError(f"unexpected results: {first.to_json()} / {second.to_json()}")
    return {
        "concurrency": float(concurrency or BULK_CONCURRENCY),
        "files": float(manifest.entries),
        "mb": manifest.total_bytes / 1e6,
        "build_s": built,
        "first_s": first.duration_s,
        "requests": float(first.upload_requests),
        "second_s": second.duration_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[BULK_CONCURRENCY, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assets-bench-") as directory:
        folder = Path(directory)
        total = make_folder(folder, args.files)
        with quiet():
            stack = LocalStack(StackOptions(gateway_port=0))
        try:
            rows = [run(stack, folder, concurrency) for concurrency in args.concurrency]
        finally:
            stack.stop()
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {python}")
    print(f"folder: {args.files:,} files, {total / 1e6:.1f} MB; emulator buckets of 10 files\n")
    print(
        f"{'conc.':>5} {'manifest s':>10} {'files/s':>8} {'MB/s':>6} | {'upload s':>8} "
        f"{'requests':>8} {'files/s':>8} {'MB/s':>6} | {'re-run s':>8}"
    )
    for row in rows:
        print(
            f"{row['concurrency']:>5.0f} {row['build_s']:>10.2f} "
            f"{row['files'] / row['build_s']:>8,.0f} {row['mb'] / row['build_s']:>6.1f} | "
            f"{row['first_s']:>8.2f} {row['requests']:>8,.0f} "
            f"{row['files'] / row['first_s']:>8,.0f} {row['mb'] / row['first_s']:>6.1f} | "
            f"{row['second_s']:>8.2f}"
        )
    print(
        "\nmanifest: walk, read, base64 and BLAKE3 every file (wrangler's hash);"
        "\nupload: session through the gateway (SigV4, policy, quota, emulator) and every bucket"
        " sent to the emulator;\nre-run: the same folder again, nothing missing (manifest"
        " already built: one session call)."
    )


if __name__ == "__main__":
    main()
