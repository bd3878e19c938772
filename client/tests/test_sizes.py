"""One byte formatter, binary units (`assets_gateway_client.sizes`): a tebibyte reads `1.0 TiB`
wherever the client prints a size, never `1024.0 GiB` nor decimal `1.1 TB`."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from assets_gateway_client.admin.render import render_explain, render_usage
from assets_gateway_client.cli import main
from assets_gateway_client.gateway import DryRunDecision
from assets_gateway_client.manifest_builder import Asset, AssetManifest
from assets_gateway_client.sizes import format_bytes
from assets_gateway_client.upload_command import (
    ProgressBar,
    decision_text,
    manifest_summary,
    upload_summary,
)
from assets_gateway_client.uploader import UploadProgress, UploadResult

TEBIBYTE = 2**40


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1,023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),  # rounds up to the next unit, not to "1024.0 KiB"
        (25 * 1024**2, "25.0 MiB"),
        (TEBIBYTE - 1, "1.0 TiB"),
        (TEBIBYTE, "1.0 TiB"),
        (1536 * TEBIBYTE, "1.5 PiB"),
        (2048.0 / 3, "683 B"),  # a rate (bytes per second) is a float
    ],
)
def test_binary_units(size: float, text: str) -> None:
    assert format_bytes(size) == text


def quota(name: str, limit: int) -> dict[str, object]:
    return {"name": name, "limit": limit, "used": 0, "remaining": limit, "reset_seconds": 1,
            "window_seconds": 86400}  # fmt: skip


def test_a_tebibyte_reads_1_0_tib_wherever_a_size_is_printed() -> None:
    result = UploadResult(
        jwt="j", entries=1, total_bytes=TEBIBYTE, uploaded_files=1, uploaded_bytes=TEBIBYTE,
        sessions=1, upload_requests=1, retries=0, single_asset_uploads=False, duration_s=1.0,
    )  # fmt: skip
    decision = DryRunDecision(
        allowed=True, team="web", entries=1, bytes=TEBIBYTE, reasons=(), quotas=()
    )
    manifest = AssetManifest(
        Path("dist"), (Asset("/big.bin", Path("dist/big.bin"), "ab" * 16, TEBIBYTE, None),)
    )
    stream = io.StringIO()
    ProgressBar(stream, enabled=True)(UploadProgress(1, 1, TEBIBYTE, TEBIBYTE))
    big_quota = [quota("bytes-day", TEBIBYTE)]
    texts = {
        "manifest summary": manifest_summary(manifest),
        "dry run": decision_text(decision),
        "upload summary": upload_summary(result),
        "progress bar": stream.getvalue(),
        "admin usage": render_usage({"teams": [{"team": "web", "quotas": big_quota}]}),
        "admin explain": render_explain({"allowed": True, "quotas": big_quota}),
    }
    for where, text in texts.items():
        assert "1.0 TiB" in text, where
        assert "GiB" not in text, where
        assert " TB" not in text, where


def test_a_file_over_the_limit_is_named_with_its_size_in_binary_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "dist"
    site.mkdir()
    with (site / "huge.bin").open("wb") as huge:
        huge.truncate(TEBIBYTE)  # sparse: nothing is written, the size is what counts
    assert main(["upload", str(site), "--manifest-only", os.devnull]) == 2
    err = capsys.readouterr().err
    assert "/huge.bin (1.0 TiB)" in err
    assert "25.0 MiB (26,214,400 bytes)" in err
