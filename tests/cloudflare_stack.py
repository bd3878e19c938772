"""A Cloudflare emulator on loopback for the unit tests, and helpers to drive it with httpx.

The fixtures that serve it (`shared_server`, `serve`, `cf`) are in this folder's conftest.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from gateway_local.cloudflare_emulator import CloudflareEmulator, RecordedCall
from gateway_local.emulator_wire import parse_multipart
from gateway_local.http_server import BackgroundServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ACCOUNT = "acc0000000000000000000000000000a"
OTHER_ACCOUNT = "acc0000000000000000000000000000b"
TOKEN = "org-token-secret-value"
OTHER_TOKEN = "other-token-value"
START = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stack:
    emulator: CloudflareEmulator
    server: BackgroundServer
    client: httpx.Client
    clock: FakeClock


Serve = Callable[..., Stack]


class AppSlot:
    """The WSGI app of the shared server: whichever emulator the running test plugged in."""

    def __init__(self) -> None:
        self.app: CloudflareEmulator | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None, "no emulator plugged in"
        return self.app(environ, start_response)


# ----------------------------------------------------------------------------- helpers


def uploaded_hashes(calls: Iterable[RecordedCall]) -> list[str]:
    """The file hashes that the bucket uploads among `calls` carried, one per multipart part."""
    return [
        part.name
        for call in calls
        if call.path.endswith("/workers/assets/upload")
        for part in parse_multipart(call.headers.get("content-type"), call.body)
    ]


def write_assets_project(root: Path, *, assets: int, module: str) -> None:
    """A Worker project: `assets` files in ./public (two of them in a subfolder or binary) and
    an ES module at ./`module` that serves them through its ASSETS binding."""
    public = root / "public"
    (public / "css").mkdir(parents=True)
    for index in range(assets - 2):
        (public / f"page-{index}.html").write_text(f"<h1>page {index}</h1>\n")
    (public / "css" / "site.css").write_text("h1 { color: teal }\n")
    (public / "logo.bin").write_bytes(bytes(range(256)))
    (root / module).write_text(
        "export default { fetch(request, env) { return env.ASSETS.fetch(request); } };\n"
    )


def folder_files(folder: Path) -> dict[str, bytes]:
    """The files below `folder` as a Worker's assets are keyed (`/css/site.css`), with their
    bytes."""
    return {
        f"/{path.relative_to(folder).as_posix()}": path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def session_path(account: str = ACCOUNT, script: str = "site") -> str:
    return f"/accounts/{account}/workers/scripts/{script}/assets-upload-session"


def create_session(
    cf: Stack,
    manifest: object,
    *,
    token: str | None = TOKEN,
    account: str = ACCOUNT,
    path: str | None = None,
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return cf.client.post(
        path or session_path(account), json={"manifest": manifest}, headers=headers
    )


def upload_bucket(
    cf: Stack,
    jwt: str,
    files: Mapping[str, bytes],
    *,
    account: str = ACCOUNT,
    content_type: str = "application/null",
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One multipart request, a part per file named by its hash, holding its base64."""
    parts = {name: (name, base64.b64encode(data), content_type) for name, data in files.items()}
    return cf.client.post(
        f"/accounts/{account}/workers/assets/upload",
        params={"base64": "true"} if params is None else params,
        files=parts,
        headers={"Authorization": f"Bearer {jwt}"},
    )


def jwt_claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def error_codes(response: httpx.Response) -> list[int]:
    body = response.json()
    assert body["success"] is False
    assert body["result"] is None
    assert response.headers["content-type"] == "application/json"
    return [error["code"] for error in body["errors"]]
