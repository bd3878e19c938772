"""The team client end to end: a build folder → the gateway (SigV4) → only the missing files,
straight to the Cloudflare emulator → the completion JWT. Real HTTP on loopback throughout;
sleeps and clocks are injected, never waited for."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from assets_gateway.adapters.cloudflare import RetryPolicy
from assets_gateway_client.answers import CloudflareUploadError, GatewayError, UploadError
from assets_gateway_client.gateway import UploadSession, decode_jwt_payload
from assets_gateway_client.http_retry import Retrying
from assets_gateway_client.manifest_builder import AssetManifest, build_manifest
from assets_gateway_client.sigv4 import SigV4Auth
from assets_gateway_client.upload import upload_directory
from assets_gateway_client.uploader import UploadProgress, UploadResult, upload_assets
from gateway_local.cloudflare_emulator import CloudflareEmulator, Fault
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    WEB_DEPLOYER,
    WEB_NAMESPACE,
    WEB_SCRIPT,
)
from gateway_local.http_server import BackgroundServer
from gateway_local.stack import LocalStack
from helpers import HTTP_TIMEOUT, aws_session

UPLOAD_SUFFIX = "/workers/assets/upload"
HASH_PART = re.compile(rb'form-data; name="([0-9a-f]{32})"')
CLI = Path(sys.executable).with_name("assets-gateway")


def make_site(root: Path, count: int, *, seed: str = "") -> Path:
    """`count` files across nested folders, of several types, one duplicated content."""
    extensions = ["html", "css", "js", "json", "svg", "txt", "greg"]
    for i in range(count):
        folder = root / f"section-{i % 6}" / (f"part-{i % 4}" if i % 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{i}.{extensions[i % len(extensions)]}").write_text(f"{seed}content {i}")
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "copy-of-home.html").write_text("<h1>home</h1>")  # same hash as /index.html
    return root


def web_auth() -> SigV4Auth:
    return SigV4Auth.from_session(aws_session(WEB_DEPLOYER))


class Sleeps:
    """The client's sleep function: records each wait, waits for none."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def upload(stack: LocalStack, site: Path, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "account_id": DEMO_ACCOUNT_ID,
        "script_name": WEB_SCRIPT,
        "gateway_url": stack.base_url,
        "auth": web_auth(),
        "cloudflare_api_url": stack.cloudflare_url,
        "sleep": Sleeps(),
        **overrides,
    }
    return upload_directory(site, **options)


def uploaded_hashes(stack: LocalStack) -> list[str]:
    """Every hash sent in a bucket upload so far, in the order they arrived."""
    return [
        found.decode()
        for call in stack.emulator.calls_to(UPLOAD_SUFFIX)
        for found in HASH_PART.findall(call.body)
    ]


# ----------------------------------------------------------------------------- the whole flow


def test_folder_to_completion_jwt_uploading_only_what_is_missing(
    stack: LocalStack, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "site", 300)
    # An earlier deploy shipped 60 of these files (same content and extension, other paths).
    previous = tmp_path / "previous"
    for i in range(0, 300, 5):
        source = next(site.rglob(f"file-{i}.*"))
        target = previous / "old" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    first = upload(stack, previous)
    assert first.uploaded_files == 60
    stored_before = stack.emulator.stored_hashes(DEMO_ACCOUNT_ID)
    sent_before = len(uploaded_hashes(stack))
    requests_before = len(stack.emulator.calls_to(UPLOAD_SUFFIX))

    manifest = build_manifest(site)
    assert manifest.entries == 302
    missing = {a.hash for a in manifest.assets} - stored_before
    assert len(missing) == 300 - 60 + 1  # the two home pages share one hash
    seen: list[UploadProgress] = []
    result = upload(stack, site, progress=seen.append)

    sent = uploaded_hashes(stack)[sent_before:]
    assert sorted(sent) == sorted(missing)  # each missing file once, nothing already stored
    assert result.uploaded_files == len(missing)
    assert result.uploaded_bytes == sum(
        a.size for a in manifest.assets if a.hash in missing and a.key != "/copy-of-home.html"
    )
    assert result.already_uploaded == 302 - len(missing)
    assert (result.sessions, result.retries, result.single_asset_uploads) == (1, 0, False)
    assert result.upload_requests == len(stack.emulator.calls_to(UPLOAD_SUFFIX)) - requests_before
    assert result.upload_requests == -(-len(missing) // 10)  # the emulator's buckets hold 10
    assert stack.emulator.verify_token(result.jwt or "")["purpose"] == "completion"
    assert seen[-1] == UploadProgress(
        len(missing), len(missing), result.uploaded_bytes, result.uploaded_bytes
    )
    # Content, base64-decoded by Cloudflare, and the content types it will serve.
    by_key = {asset.key: asset for asset in manifest.assets}
    home = stack.emulator.stored_asset(DEMO_ACCOUNT_ID, by_key["/index.html"].hash)
    assert home is not None
    assert (home.content, home.content_type) == (b"<h1>home</h1>", "text/html; charset=utf-8")
    unknown = next(a for a in manifest.assets if a.key.endswith(".greg"))
    stored_unknown = stack.emulator.stored_asset(DEMO_ACCOUNT_ID, unknown.hash)
    assert stored_unknown is not None
    assert stored_unknown.content_type == "application/null"
    # Every upload went to Cloudflare with the session JWT, never with AWS credentials.
    for call in stack.emulator.calls_to(UPLOAD_SUFFIX):
        assert call.headers["authorization"].startswith("Bearer ey")
        assert call.query == "base64=true"

    calls_before_second = len(stack.emulator.calls)
    again = upload(stack, site)
    assert (again.uploaded_files, again.upload_requests) == (0, 0)
    new_calls = stack.emulator.calls[calls_before_second:]
    assert [c.path.rsplit("/", 1)[-1] for c in new_calls] == ["assets-upload-session"]
    assert stack.emulator.verify_token(again.jwt or "")["purpose"] == "completion"


def test_dispatch_namespace_sessions(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path, 5)
    result = upload(stack, site, dispatch_namespace=WEB_NAMESPACE)
    (session_call,) = stack.emulator.calls_to("/assets-upload-session")
    assert f"/dispatch/namespaces/{WEB_NAMESPACE}/scripts/{WEB_SCRIPT}/" in session_call.path
    assert stack.emulator.verify_token(result.jwt or "")["namespace"] == WEB_NAMESPACE


# ----------------------------------------------------------------------------- retries


def test_upload_retries_an_injected_503_honouring_retry_after(
    stack: LocalStack, tmp_path: Path
) -> None:
    site = make_site(tmp_path, 30)
    stack.emulator.inject_fault(
        Fault(status=503, headers={"Retry-After": "7"}, count=2, path_suffix=UPLOAD_SUFFIX)
    )
    sleeps = Sleeps()
    result = upload(stack, site, sleep=sleeps, concurrency=1)
    assert sleeps.calls == [7.0, 7.0]
    assert result.retries == 2
    calls = stack.emulator.calls_to(UPLOAD_SUFFIX)
    assert [c.status for c in calls[:3]] == [503, 503, 202]  # the first bucket, three times
    # The form is rendered once: each retry resends its bytes, boundary included.
    assert calls[0].body == calls[1].body == calls[2].body
    assert calls[-1].status == 201
    assert stack.emulator.verify_token(result.jwt or "")["purpose"] == "completion"


def test_upload_retries_resets_and_429_with_backoff(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path, 12)
    stack.emulator.inject_fault(Fault(reset=True, path_suffix=UPLOAD_SUFFIX))
    stack.emulator.inject_fault(Fault(status=429, path_suffix=UPLOAD_SUFFIX))
    stack.emulator.inject_fault(Fault(status=502, path_suffix=UPLOAD_SUFFIX))
    sleeps = Sleeps()
    result = upload(stack, site, sleep=sleeps, concurrency=1)
    assert sleeps.calls == [1.0, 2.0, 4.0]  # no Retry-After: exponential backoff
    assert result.retries == 3
    assert result.uploaded_files == 13  # 14 files, two of them equal


def test_upload_gives_up_after_three_retries(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path, 3)
    stack.emulator.inject_fault(Fault(status=500, count=4, path_suffix=UPLOAD_SUFFIX))
    sleeps = Sleeps()
    with pytest.raises(CloudflareUploadError, match="HTTP 500") as failed:
        upload(stack, site, sleep=sleeps)
    assert failed.value.status == 500
    assert sleeps.calls == [1.0, 2.0, 4.0]
    assert len(stack.emulator.calls_to(UPLOAD_SUFFIX)) == 4


def test_a_retry_after_beyond_60_s_is_reported_not_slept(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path, 3)
    stack.emulator.inject_fault(
        Fault(status=429, headers={"Retry-After": "300"}, path_suffix=UPLOAD_SUFFIX)
    )
    sleeps = Sleeps()
    with pytest.raises(CloudflareUploadError, match="retry after 300 s") as failed:
        upload(stack, site, sleep=sleeps)
    assert failed.value.retry_after == 300
    assert sleeps.calls == []


def test_a_failed_session_request_is_retried(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path, 4)
    # Cloudflare answers garbage to every attempt the gateway makes: it answers 502 19031, and
    # the client asks again (with the same Idempotency-Key).
    attempts = RetryPolicy().attempts
    stack.emulator.inject_fault(
        Fault(garbage=True, count=attempts, path_suffix="/assets-upload-session")
    )
    sleeps = Sleeps()
    result = upload(stack, site, sleep=sleeps)
    assert sleeps.calls == [1.0]
    assert result.retries == 1
    assert [c.status for c in stack.emulator.calls_to("/assets-upload-session")] == [200] * (
        attempts + 1
    )
    assert stack.emulator.verify_token(result.jwt or "")["purpose"] == "completion"


def test_a_throttled_session_waits_retry_after_then_explains(
    stack: LocalStack, tmp_path: Path
) -> None:
    site = make_site(tmp_path, 2)
    # Cloudflare answers 429: the gateway pauses every call for its Retry-After (19021).
    stack.emulator.inject_fault(
        Fault(status=429, headers={"Retry-After": "30"}, path_suffix="/assets-upload-session")
    )
    sleeps = Sleeps()
    with pytest.raises(GatewayError) as refused:
        upload(stack, site, sleep=sleeps)
    assert (refused.value.status, refused.value.code) == (429, 19021)
    assert len(sleeps.calls) == 3  # three retries, each after the gateway's Retry-After
    # The pause's remainder, by the gateway's clock: it shrinks as real time passes, by how
    # much depends on the machine's speed, so only its bounds and its order are asserted.
    assert all(1 <= s <= 30 for s in sleeps.calls), sleeps.calls
    assert sleeps.calls == sorted(sleeps.calls, reverse=True)
    assert "retry after" in str(refused.value)
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 1  # the pause held


def test_policy_refusal_lists_every_reason_and_nothing_reaches_cloudflare(
    stack: LocalStack, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    (site / "private").mkdir(parents=True)
    (site / "index.html").write_text("x")
    (site / "private" / "keys.txt").write_text("y")
    with pytest.raises(GatewayError) as refused:
        upload(
            stack,
            site,
            script_name="docs",
            auth=SigV4Auth.from_session(aws_session(DOCS_CI)),
        )
    message = str(refused.value)
    assert refused.value.status == 403
    assert refused.value.code == 19011
    assert "/manifest/~1private~1keys.txt" in message
    assert "request id " in message
    assert stack.emulator.calls == []


def test_unsigned_or_wrongly_addressed_calls_are_explained(
    stack: LocalStack, tmp_path: Path
) -> None:
    site = make_site(tmp_path, 2)
    with pytest.raises(GatewayError, match="check the gateway URL") as refused:
        upload(stack, site, gateway_url=stack.base_url.removesuffix("/client/v4"))
    assert refused.value.code == 10000


# ----------------------------------------------------------------------------- own emulators


TOKEN = "cf-test-token"


@pytest.fixture
def clock() -> list[float]:
    return [time.time()]


@pytest.fixture
def own_emulator(
    request: pytest.FixtureRequest, clock: list[float]
) -> Iterator[tuple[CloudflareEmulator, str]]:
    """An emulator of our own, for what the stack's cannot do: a clock we move, single-asset
    sessions. Sessions are created directly with its token, standing in for the gateway."""
    options: dict[str, Any] = getattr(request, "param", {})
    emulator = CloudflareEmulator(
        tokens={TOKEN: [DEMO_ACCOUNT_ID]}, clock=lambda: clock[0], bucket_size=5, **options
    )
    with BackgroundServer(emulator, name="own-emulator") as server:
        yield emulator, server.url + "/client/v4"


@dataclass
class DirectSessions:
    """Sessions for `manifest` opened on our own emulator with its token (standing in for the
    gateway), the JWTs they handed out, and uploads through them."""

    api_url: str
    manifest: AssetManifest
    jwts: list[str] = field(default_factory=list)

    def open(self) -> UploadSession:
        answer = httpx.post(
            f"{self.api_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}"
            "/assets-upload-session",
            json=self.manifest.to_request_body(),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=HTTP_TIMEOUT,
        )
        answer.raise_for_status()
        session = UploadSession.from_result(answer.json()["result"])
        self.jwts.append(session.jwt)
        return session

    def upload(self, **options: Any) -> UploadResult:
        """`upload_assets` through these sessions (one request at a time unless told)."""
        return upload_assets(
            self.manifest,
            open_session=self.open,
            account_id=DEMO_ACCOUNT_ID,
            cloudflare_api_url=self.api_url,
            **{"concurrency": 1, **options},
        )


SessionsFor = Callable[[int], DirectSessions]


@pytest.fixture
def sessions_for(own_emulator: tuple[CloudflareEmulator, str], tmp_path: Path) -> SessionsFor:
    """Direct sessions for a site of `count` files (and two home pages) on our own emulator."""

    def make(count: int) -> DirectSessions:
        return DirectSessions(own_emulator[1], build_manifest(make_site(tmp_path, count)))

    return make


@pytest.mark.parametrize("own_emulator", [{"single_asset_uploads": True}], indirect=True)
def test_single_asset_path_when_the_jwt_says_so(
    own_emulator: tuple[CloudflareEmulator, str], sessions_for: SessionsFor
) -> None:
    emulator = own_emulator[0]
    sessions = sessions_for(12)
    manifest = sessions.manifest
    result = sessions.upload(concurrency=None)
    assert decode_jwt_payload(sessions.jwts[0])["wrangler_single_asset_uploads"] is True
    assert result.single_asset_uploads
    calls = [c for c in emulator.calls if "/workers/assets/upload/" in c.path]
    assert sorted(c.path.rsplit("/", 1)[-1] for c in calls) == sorted(
        {a.hash for a in manifest.assets}
    )
    assert all(c.query == "" for c in calls)
    for asset in manifest.assets:
        stored = emulator.stored_asset(DEMO_ACCOUNT_ID, asset.hash)
        assert stored is not None
        assert stored.content == asset.file.read_bytes()  # raw bytes, not base64
        assert stored.content_type == (asset.content_type or "application/null")
    assert emulator.verify_token(result.jwt or "")["purpose"] == "completion"
    assert emulator.calls_to(UPLOAD_SUFFIX) == []  # no bucket uploads


def test_an_expired_jwt_gets_one_fresh_session_for_what_is_missing(
    own_emulator: tuple[CloudflareEmulator, str], sessions_for: SessionsFor, clock: list[float]
) -> None:
    emulator = own_emulator[0]
    sessions = sessions_for(28)  # 29 hashes: 6 buckets of up to 5

    def an_hour_passes_after_the_first_bucket(progress: UploadProgress) -> None:
        if progress.files_done == 5 and len(sessions.jwts) == 1:
            clock[0] += 3601  # Cloudflare's clock only: the client learns it from the 401

    result = sessions.upload(progress=an_hour_passes_after_the_first_bucket)
    assert result.sessions == 2
    assert [c.status for c in emulator.calls_to(UPLOAD_SUFFIX)] == [
        202,
        401,
        202,
        202,
        202,
        202,
        201,
    ]
    assert result.uploaded_files == 29
    assert emulator.stored_hashes(DEMO_ACCOUNT_ID) == {a.hash for a in sessions.manifest.assets}
    claims = emulator.verify_token(result.jwt or "")
    assert claims["purpose"] == "completion"
    assert claims["session_id"] == decode_jwt_payload(sessions.jwts[1])["session_id"]


def test_a_jwt_past_its_exp_is_not_even_sent(
    own_emulator: tuple[CloudflareEmulator, str], sessions_for: SessionsFor, clock: list[float]
) -> None:
    emulator = own_emulator[0]
    sessions = sessions_for(9)

    def an_hour_passes(progress: UploadProgress) -> None:
        if progress.files_done == 5 and len(sessions.jwts) == 1:
            clock[0] += 3600

    result = sessions.upload(
        progress=an_hour_passes,
        retrying=Retrying(clock=lambda: clock[0]),  # the client reads `exp` with this clock
    )
    assert result.sessions == 2
    assert 401 not in [c.status for c in emulator.calls_to(UPLOAD_SUFFIX)]
    assert emulator.verify_token(result.jwt or "")["purpose"] == "completion"


def test_a_second_expiry_stops_with_a_clear_error(
    sessions_for: SessionsFor, clock: list[float]
) -> None:
    sessions = sessions_for(20)

    def every_bucket_takes_an_hour(_progress: UploadProgress) -> None:
        clock[0] += 3601

    with pytest.raises(UploadError, match="the fresh upload session expired too"):
        sessions.upload(progress=every_bucket_takes_an_hour)
    assert len(sessions.jwts) == 2


def test_a_file_changed_after_the_manifest_is_never_sent(
    own_emulator: tuple[CloudflareEmulator, str], sessions_for: SessionsFor, tmp_path: Path
) -> None:
    sessions = sessions_for(3)
    (tmp_path / "section-1" / "part-1" / "file-1.css").write_text("CONTENT 1")  # same size
    with pytest.raises(UploadError, match=r"file-1\.css changed after the manifest was built"):
        sessions.upload()
    changed = sessions.manifest.to_manifest()["/section-1/part-1/file-1.css"]["hash"]
    assert own_emulator[0].stored_asset(DEMO_ACCOUNT_ID, str(changed)) is None


# ----------------------------------------------------------------------------- the CLI


def cli_environment(stack: LocalStack) -> dict[str, str]:
    """A caller's shell: the web deployer's keys, the gateway and Cloudflare URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASSETS_GATEWAY"))}
    env.update(
        AWS_ACCESS_KEY_ID=WEB_DEPLOYER.access_key_id,
        AWS_SECRET_ACCESS_KEY=WEB_DEPLOYER.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        ASSETS_GATEWAY_URL=stack.base_url,
        CLOUDFLARE_API_URL=stack.cloudflare_url,
    )
    return env


def run_cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "upload", *args],
        env=cli_environment(stack),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_uploads_and_prints_json(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path / "dist", 40)
    args = [str(site), "--account", DEMO_ACCOUNT_ID, "--script", WEB_SCRIPT]
    done = run_cli(stack, *args, "--json", "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["account_id"] == DEMO_ACCOUNT_ID
    assert result["script_name"] == WEB_SCRIPT
    assert (result["entries"], result["uploaded_files"], result["mode"]) == (42, 41, "buckets")
    assert stack.emulator.verify_token(result["jwt"])["purpose"] == "completion"
    assert "uploaded 41 files" in done.stderr

    # Plain mode prints the JWT alone; --output writes it to a private file instead.
    out = tmp_path / "assets.jwt"
    again = run_cli(stack, *args, "--output", str(out), "--quiet")
    assert again.returncode == 0, again.stderr
    assert (again.stdout, again.stderr) == ("", "")
    jwt = out.read_text().strip()
    assert stack.emulator.verify_token(jwt)["purpose"] == "completion"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_cli_dry_run_shows_the_gateways_decision(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path / "dist", 10)
    allowed = run_cli(
        stack, str(site), "--account", DEMO_ACCOUNT_ID, "--script", WEB_SCRIPT, "--dry-run"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith("dry run: ALLOWED (team web, 12 entries")
    assert "quota sessions-minute: 0/30 used" in allowed.stdout
    assert "12 files" in allowed.stderr

    refused = run_cli(
        stack, str(site), "--account", DEMO_ACCOUNT_ID, "--script", "docs", "--dry-run", "--json"
    )
    assert refused.returncode == 1, refused.stderr
    decision = json.loads(refused.stdout)["dry_run"]
    assert decision["allowed"] is False
    assert decision["reasons"][0]["code"] == 19011
    assert stack.emulator.calls == []  # nothing forwarded, nothing uploaded


def test_cli_refusal_exits_1_with_the_reasons(stack: LocalStack, tmp_path: Path) -> None:
    site = make_site(tmp_path / "dist", 2)
    refused = run_cli(stack, str(site), "--account", DEMO_ACCOUNT_ID, "--script", "other-script")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "assets-gateway: error: no upload session: HTTP 403 — 19011" in refused.stderr
    assert "may not use script 'other-script'" in refused.stderr


def test_jwt_payload_is_read_without_verification() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 5, "x": "ü"}).encode()).rstrip(b"=")
    assert decode_jwt_payload(f"h.{payload.decode()}.s") == {"exp": 5, "x": "ü"}
    assert decode_jwt_payload("not-a-jwt") == {}
    assert decode_jwt_payload("a.!!!.c") == {}


# ----------------------------------------------------------------------------- the README


README = Path(__file__).resolve().parents[2] / "README.md"
EXPORT = re.compile(r"([A-Z_][A-Z0-9_]*)=(\S+)")


def readme_block(section: str, after: str, language: str) -> str:
    """The first ```language block after `after` in the README's `## section`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    body = text[start : text.index("\n## ", start + 1)]
    fence = f"```{language}\n"
    opened = body.index(fence, body.index(after)) + len(fence)
    return body[opened : body.index("```", opened)]


def test_the_readmes_python_snippet_runs_as_written_against_the_local_stack(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Given the README's Python snippet and the environment its "Locally" block exports
    snippet = readme_block("The team client", "**Python API**", "python")
    exports = dict(
        EXPORT.findall(
            "\n".join(
                line.removeprefix("export ")
                for line in readme_block("The team client", "**Locally**", "sh").splitlines()
                if line.startswith("export ")
            )
        )
    )
    assert "gateway_url=" not in snippet.split("#")[0], "the snippet reads the environment"
    assert set(exports) == {
        "ASSETS_GATEWAY_URL",
        "CLOUDFLARE_API_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
    # make run's URLs are this stack's (its ports are free ones); the keys are the README's own
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASSETS_GATEWAY"))}
    env.update(exports, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(ASSETS_GATEWAY_URL=stack.base_url, CLOUDFLARE_API_URL=stack.cloudflare_url)
    make_site(tmp_path / "dist", 6)

    # When the snippet runs as written, from the folder holding dist/
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it prints the completion JWT and what it uploaded, signed as the web deployer
    assert done.returncode == 0, done.stderr
    jwt, uploaded, already = done.stdout.split()
    assert stack.emulator.verify_token(jwt)["purpose"] == "completion"
    assert (int(uploaded), int(already)) == (7, 1)  # 8 files, the two home pages alike
    (session_call,) = stack.emulator.calls_to("/assets-upload-session")
    assert f"/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}/" in session_call.path
