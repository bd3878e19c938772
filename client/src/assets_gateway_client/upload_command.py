"""`assets-gateway upload`: a build folder to a completion JWT, for people and for scripts.

    assets-gateway upload DIST --account ACCOUNT_ID --script NAME [--namespace NS]
        [--gateway URL] [--cloudflare-api URL] [--profile P] [--region R] [--concurrency N]
        [--json] [--output FILE] [--dry-run] [--manifest-only FILE] [--[no-]progress] [--quiet]

stdout carries only the result — the completion JWT, or with `--json` a JSON object — so
`JWT=$(assets-gateway upload dist ...)` works; `--output FILE` writes it to FILE (mode 0600)
instead. Everything for people (summary, progress bar, errors) goes to stderr.

Exit status: 0 done (or, for `--dry-run`, allowed); 1 refused or failed (the gateway's or
Cloudflare's reasons are printed); 2 a usage or local problem (bad folder, file too large,
no gateway URL, no AWS credentials); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from assets_gateway_client.answers import describe
from assets_gateway_client.console import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    UsageError,
    add_cloudflare_api_option,
    add_connection_options,
    add_output_options,
    gateway_connection,
    run_gateway_command,
)
from assets_gateway_client.gateway import DryRunDecision
from assets_gateway_client.manifest_builder import AssetManifest, build_manifest
from assets_gateway_client.sizes import format_bytes
from assets_gateway_client.upload import upload_manifest
from assets_gateway_client.uploader import UploadProgress, UploadResult

__all__ = [
    "ProgressBar",
    "add_upload_parser",
    "decision_text",
    "manifest_summary",
    "run_upload",
    "upload_summary",
]


def add_upload_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `upload` and its options to the console script's subcommands."""
    upload = commands.add_parser(
        "upload",
        help="upload a build folder's assets and print the completion JWT",
        description="Build the manifest as wrangler does, create the upload session through "
        "the gateway, upload only what Cloudflare is missing, print the completion JWT "
        "(the script upload's assets.jwt).",
    )
    upload.add_argument("directory", metavar="DIR", help="the build folder (the assets root)")
    upload.add_argument("--account", metavar="ID", help="Cloudflare account id (32 hex)")
    upload.add_argument("--script", metavar="NAME", help="the Worker's script name")
    upload.add_argument(
        "--namespace", metavar="NS", help="Workers for Platforms dispatch namespace"
    )
    add_cloudflare_api_option(upload)
    add_connection_options(upload)
    upload.add_argument(
        "--concurrency",
        metavar="N",
        type=int,
        help="parallel upload requests (default: wrangler's, 3 buckets or 50 single files)",
    )
    upload.add_argument("--json", action="store_true", help="print the result as JSON")
    upload.add_argument("--output", metavar="FILE", help="write the result to FILE, not stdout")
    modes = upload.add_mutually_exclusive_group()
    modes.add_argument(
        "--dry-run",
        action="store_true",
        help="show the manifest summary and the gateway's decision; create no session",
    )
    modes.add_argument(
        "--manifest-only",
        metavar="FILE",
        help='write {"manifest": ...} to FILE ("-": stdout) for the S3 door; call nothing',
    )
    add_output_options(upload)
    upload.set_defaults(run=run_upload)


def run_upload(args: argparse.Namespace) -> int:
    """Run the `upload` command parsed into `args`; the exit status."""
    console = Console(quiet=args.quiet)
    return run_gateway_command(
        lambda: _upload(args, console),
        interrupted="interrupted; what was uploaded is kept, so the next run resumes",
    )


class ProgressBar:
    """A self-drawn bar on one terminal line: files, bytes and throughput."""

    WIDTH = 24
    INTERVAL_S = 0.1

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    @classmethod
    def for_command(cls, args: argparse.Namespace) -> ProgressBar:
        """The bar a command's `--progress`, `--quiet` and `--dry-run` ask for, on stderr."""
        shown = args.progress if args.progress is not None else sys.stderr.isatty()
        return cls(sys.stderr, enabled=bool(shown) and not args.quiet and not args.dry_run)

    def __call__(self, progress: UploadProgress) -> None:
        if not self._enabled:
            return
        with self._lock:
            now = time.monotonic()
            final = progress.files_done >= progress.files_total
            if not final and now - self._drawn_at < self.INTERVAL_S:
                return
            self._drawn_at = now
            self._draw(progress, now)

    def _draw(self, progress: UploadProgress, now: float) -> None:
        share = progress.bytes_done / progress.bytes_total if progress.bytes_total else 1.0
        filled = round(share * self.WIDTH)
        rate = progress.bytes_done / max(now - self._started, 1e-6)
        line = (
            f"\ruploading [{'#' * filled}{'-' * (self.WIDTH - filled)}] "
            f"{progress.files_done}/{progress.files_total} files  "
            f"{format_bytes(progress.bytes_done)}/{format_bytes(progress.bytes_total)}  "
            f"{format_bytes(rate)}/s"
        )
        self._stream.write(line.ljust(90))
        self._stream.flush()
        self._drawn = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._drawn:
                self._stream.write("\n")
                self._stream.flush()
                self._drawn = False


def manifest_summary(manifest: AssetManifest) -> str:
    files = "file" if manifest.entries == 1 else "files"
    lines = [
        f"{manifest.entries:,} {files}, {format_bytes(manifest.total_bytes)} "
        f"in {manifest.directory}"
    ]
    if manifest.ignored:
        shown = ", ".join(manifest.ignored[:5]) + (" ..." if len(manifest.ignored) > 5 else "")
        lines.append(f"  left out by .assetsignore and wrangler's rules: {shown}")
    if manifest.symlinks:
        shown = ", ".join(manifest.symlinks[:5]) + (" ..." if len(manifest.symlinks) > 5 else "")
        lines.append(f"  symbolic links skipped: {shown}")
    return "\n".join(lines)


def decision_text(decision: DryRunDecision) -> str:
    verdict = "ALLOWED" if decision.allowed else "REFUSED"
    lines = [
        f"dry run: {verdict} (team {decision.team or '-'}, "
        f"{decision.entries if decision.entries is not None else '-'} entries, "
        f"{format_bytes(decision.bytes) if decision.bytes is not None else '-'})"
    ]
    lines.extend(f"  - {describe(reason)}" for reason in decision.reasons)
    for quota in decision.quotas:
        lines.append(
            f"  quota {quota.get('name')}: {quota.get('used')}/{quota.get('limit')} used, "
            f"{quota.get('remaining')} left, resets in {quota.get('reset_seconds')} s"
        )
    return "\n".join(lines)


def upload_summary(result: UploadResult) -> str:
    files = "file" if result.uploaded_files == 1 else "files"
    return (
        f"uploaded {result.uploaded_files:,} {files} ({format_bytes(result.uploaded_bytes)}) "
        f"in {result.duration_s:.1f} s; {result.already_uploaded:,} already on Cloudflare"
        + (f"; {result.sessions} sessions (the first expired)" if result.sessions > 1 else "")
        + (f"; {result.retries} retries" if result.retries else "")
    )


def _write_result(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(output)
    # The completion JWT authorises attaching these assets: keep it private to its owner.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _upload(args: argparse.Namespace, console: Console) -> int:
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.manifest_only is None and (not args.account or not args.script):
        raise UsageError("--account and --script are required (except with --manifest-only)")
    manifest = build_manifest(args.directory)
    console.info(manifest_summary(manifest))
    if args.manifest_only is not None:
        text = json.dumps(manifest.to_request_body(), separators=(",", ":")) + "\n"
        if args.manifest_only == "-":
            sys.stdout.write(text)
        else:
            Path(args.manifest_only).write_text(text, encoding="utf-8")
            console.info(f"manifest written to {args.manifest_only}")
        return EXIT_OK
    gateway_url, auth = gateway_connection(args)
    with ProgressBar.for_command(args) as bar:
        result = upload_manifest(
            manifest,
            account_id=args.account,
            script_name=args.script,
            gateway_url=gateway_url,
            auth=auth,
            dispatch_namespace=args.namespace,
            cloudflare_api_url=args.cloudflare_api,
            concurrency=args.concurrency,
            progress=bar,
            dry_run=args.dry_run,
        )
    return _report(args, console, result)


def _report(args: argparse.Namespace, console: Console, result: UploadResult) -> int:
    document = {
        "account_id": args.account,
        "script_name": args.script,
        "dispatch_namespace": args.namespace,
        **result.to_json(),
    }
    if result.dry_run is not None:
        if args.json:
            _write_result(json.dumps(document, indent=2) + "\n", args.output)
        else:
            _write_result(decision_text(result.dry_run) + "\n", args.output)
        return EXIT_OK if result.dry_run.allowed else EXIT_FAILED
    console.info(upload_summary(result))
    text = json.dumps(document, indent=2) + "\n" if args.json else f"{result.jwt}\n"
    _write_result(text, args.output)
    if args.output is not None:
        console.info(f"completion token written to {args.output}")
    return EXIT_OK
