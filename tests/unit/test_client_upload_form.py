"""The script upload `assets-gateway deploy` builds is one the gateway reads as it reads
wrangler's: the client's form, plain and gzipped, read back by the core's `read_worker_upload`
(here, where the client and the core are both importable)."""

from __future__ import annotations

import gzip

import pytest

from assets_gateway.domain.worker_upload import read_worker_upload
from assets_gateway_client.deploy import WorkerModule, upload_form, worker_metadata

MODULE = WorkerModule("worker.js", b"export default { fetch() { return new Response('hi'); } };")
JWT = "eyJhbGciOiJIUzI1NiJ9.completion-token.sig"


@pytest.mark.parametrize("gzip_threshold_bytes", [1024 * 1024, 1], ids=["plain", "gzip"])
def test_the_gateway_reads_the_clients_worker_upload(gzip_threshold_bytes: int) -> None:
    metadata = worker_metadata(
        main=MODULE,
        assets_jwt=JWT,
        config={},
        compatibility_date="2025-01-01",
        compatibility_flags=["nodejs_compat"],
    )
    form = upload_form(metadata, MODULE, gzip_threshold_bytes=gzip_threshold_bytes)

    upload = read_worker_upload(
        form.body, form.headers["Content-Type"], form.headers.get("Content-Encoding")
    )

    summary = upload.summary
    assert summary.main_module == "worker.js"
    assert [(m.name, m.content_type, m.size) for m in summary.modules] == [
        ("worker.js", "application/javascript+module", len(MODULE.content))
    ]
    assert [(b.type, b.name) for b in summary.bindings] == [("assets", "ASSETS")]
    assert summary.compatibility_date == "2025-01-01"
    assert summary.compatibility_flags == ("nodejs_compat",)
    assert summary.assets_jwt is not None
    assert summary.assets_jwt.get_secret_value() == JWT
    assert summary.unknown_fields == ()
    # What the gateway forwards is the body it judged: the form itself, inflated if gzipped.
    plain = gzip.decompress(form.body) if form.headers.get("Content-Encoding") else form.body
    assert upload.forward_body() == plain


def test_the_gateway_reads_an_assets_only_upload() -> None:
    metadata = worker_metadata(
        main=None, assets_jwt=JWT, config={}, compatibility_date="2025-01-01"
    )
    form = upload_form(metadata, None)

    summary = read_worker_upload(form.body, form.headers["Content-Type"]).summary

    assert summary.main_module is None
    assert summary.modules == ()
    assert summary.bindings == ()
    assert summary.assets_jwt is not None
