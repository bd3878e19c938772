"""The script upload `assets-gateway deploy` sends, as wrangler's createWorkerUploadForm builds it
(workers-sdk f830836): the metadata of a Worker with a module and of an assets-only one, the
multipart body, gzip from the threshold on, and the assets config read from the folder."""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import json
from email.message import EmailMessage
from pathlib import Path

from assets_gateway_client.deploy import (
    ESM_CONTENT_TYPE,
    WorkerModule,
    assets_config,
    upload_form,
    worker_metadata,
)

MODULE = WorkerModule("worker.js", b"export default { fetch() { return new Response('hi'); } };")


def parts_of(body: bytes, content_type: str) -> list[EmailMessage]:
    """The multipart body read back by the standard library's MIME parser."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert isinstance(message, EmailMessage)
    return [part for part in message.iter_parts() if isinstance(part, EmailMessage)]


def test_a_worker_with_a_module_names_it_and_binds_the_assets() -> None:
    metadata = worker_metadata(
        main=MODULE,
        assets_jwt="jwt",
        config={"_headers": "/*\n  X: y\n"},
        compatibility_date="2025-01-01",
        compatibility_flags=["nodejs_compat"],
        assets_binding="STATIC",
        message="release 7",
    )

    assert metadata == {
        "main_module": "worker.js",
        "bindings": [{"name": "STATIC", "type": "assets"}],
        "compatibility_date": "2025-01-01",
        "compatibility_flags": ["nodejs_compat"],
        "annotations": {"workers/message": "release 7"},
        "assets": {"jwt": "jwt", "config": {"_headers": "/*\n  X: y\n"}},
    }


def test_an_assets_only_worker_sends_no_module_no_binding() -> None:
    metadata = worker_metadata(
        main=None, assets_jwt="jwt", config={}, compatibility_date="2025-01-01"
    )
    assert metadata == {
        "assets": {"jwt": "jwt", "config": {}},
        "compatibility_date": "2025-01-01",
        "compatibility_flags": [],
    }

    form = upload_form(metadata, None)

    (part,) = parts_of(form.body, form.headers["Content-Type"])
    assert part.get_param("name", header="content-disposition") == "metadata"
    assert json.loads(part.get_content()) == metadata


def test_the_body_holds_the_metadata_first_then_the_module_with_its_type() -> None:
    metadata = worker_metadata(
        main=MODULE, assets_jwt="jwt", config={}, compatibility_date="2025-01-01"
    )

    form = upload_form(metadata, MODULE)

    assert form.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert "Content-Encoding" not in form.headers
    first, second = parts_of(form.body, form.headers["Content-Type"])
    assert first.get_param("name", header="content-disposition") == "metadata"
    assert first.get_param("filename", header="content-disposition") is None
    assert json.loads(first.get_content()) == metadata
    assert second.get_param("name", header="content-disposition") == "worker.js"
    assert second.get_content_type() == ESM_CONTENT_TYPE
    assert second.get_payload(decode=True) == MODULE.content
    assert form.size == len(form.body)


def test_a_body_from_the_threshold_on_is_gzipped() -> None:
    metadata = worker_metadata(
        main=MODULE, assets_jwt="jwt", config={}, compatibility_date="2025-01-01"
    )
    plain = upload_form(metadata, MODULE)

    at_threshold = upload_form(metadata, MODULE, gzip_threshold_bytes=plain.size)
    below = upload_form(metadata, MODULE, gzip_threshold_bytes=plain.size + 1)

    assert at_threshold.headers["Content-Encoding"] == "gzip"
    assert at_threshold.size == plain.size
    inflated = gzip.decompress(at_threshold.body)
    boundary = at_threshold.headers["Content-Type"].split("boundary=")[1]
    assert inflated.startswith(f"--{boundary}".encode())
    assert len(inflated) == plain.size
    assert "Content-Encoding" not in below.headers


def test_the_assets_config_carries_redirects_and_headers_from_the_folder(tmp_path: Path) -> None:
    assert assets_config(tmp_path) == {}
    (tmp_path / "_redirects").write_text("/old /new 301\n")
    (tmp_path / "_headers").write_text("/*\n  X-Frame-Options: DENY\n")

    assert assets_config(tmp_path) == {
        "_redirects": "/old /new 301\n",
        "_headers": "/*\n  X-Frame-Options: DENY\n",
    }


def test_a_module_from_a_file_is_named_by_the_file(tmp_path: Path) -> None:
    (tmp_path / "index.mjs").write_bytes(b"export default {};")
    assert WorkerModule.from_file(tmp_path / "index.mjs") == WorkerModule(
        "index.mjs", b"export default {};", ESM_CONTENT_TYPE
    )
