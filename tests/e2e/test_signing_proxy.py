"""`assets-gateway proxy` end to end: plain HTTP clients and the official `cloudflare` SDK, holding
only a placeholder token, call the local stack through the signing proxy. The proxy signs what
goes to the gateway (the API front verifies SigV4) and sends asset uploads, with their session
JWT, straight to the Cloudflare emulator. Real HTTP on 127.0.0.1 throughout; faults are injected
so that no test races a timeout."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import CredentialRetrievalError

from assets_gateway_client.proxy import PROXY_ID_HEADER, ProxyConfig, running_proxy
from assets_gateway_client.sigv4 import SigV4Auth
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_SCRIPT, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack
from helpers import HTTP_TIMEOUT, aws_session, content_hash, numbered_files, signed_client

PLACEHOLDER = "placeholder-token-not-a-secret-0123456789"
CLI = Path(sys.executable).with_name("assets-gateway")
SESSION_PATH = f"/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}/assets-upload-session"
UPLOAD_PATH = f"/accounts/{DEMO_ACCOUNT_ID}/workers/assets/upload"


def web_auth() -> SigV4Auth:
    return SigV4Auth.from_session(aws_session(WEB_DEPLOYER))


class Proxy:
    """One in-process proxy for the stack, signing as the web deployer; its log lines kept."""

    def __init__(self, base_url: str, lines: list[str]) -> None:
        self.base_url = base_url
        self.lines = lines

    def client(self, **options: Any) -> httpx.Client:
        """Plain httpx holding the placeholder token, as any Cloudflare client would."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {PLACEHOLDER}"},
            timeout=HTTP_TIMEOUT,
            **options,
        )

    @property
    def port(self) -> int:
        return httpx.URL(self.base_url).port or 0


@contextlib.contextmanager
def proxy_for(stack: LocalStack, **overrides: Any) -> Iterator[Proxy]:
    lines: list[str] = []
    config = ProxyConfig(
        gateway_url=stack.base_url,
        cloudflare_api_url=stack.cloudflare_url,
        auth=web_auth(),
        log=lines.append,
    )
    with running_proxy(replace(config, **overrides)) as base_url:
        yield Proxy(base_url, lines)


@pytest.fixture
def proxy(stack: LocalStack) -> Iterator[Proxy]:
    with proxy_for(stack) as running:
        yield running


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections while the block runs (bound, not listening),
    so nothing else can take it meanwhile."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        yield int(holder.getsockname()[1])


def create_session(client: httpx.Client, files: dict[str, bytes]) -> dict[str, Any]:
    manifest = {
        path: {"hash": content_hash(data), "size": len(data)} for path, data in files.items()
    }
    response = client.post(SESSION_PATH, json={"manifest": manifest})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def upload_buckets(
    client: httpx.Client, session: dict[str, Any], files: dict[str, bytes]
) -> list[httpx.Response]:
    by_hash = {content_hash(data): data for data in files.values()}
    answers = []
    for bucket in session["buckets"]:
        parts = [
            (h, (h, base64.b64encode(by_hash[h]), "text/plain; charset=utf-8")) for h in bucket
        ]
        answers.append(
            client.post(
                UPLOAD_PATH,
                params={"base64": "true"},
                files=parts,
                headers={"Authorization": f"Bearer {session['jwt']}"},
            )
        )
    return answers


def test_session_through_the_proxy_then_uploads_straight_to_cloudflare(
    stack: LocalStack, proxy: Proxy
) -> None:
    files = numbered_files(12)
    with proxy.client() as client:
        # (a) signed by the proxy: the API front verified SigV4 and the gateway answered
        session = create_session(client, files)
        assert session["jwt"]
        hashes = sorted(h for bucket in session["buckets"] for h in bucket)
        assert hashes == sorted(content_hash(data) for data in files.values())
        # (b) the uploads carry the session JWT and go to the emulator, not the gateway
        answers = upload_buckets(client, session, files)
    assert [a.status_code for a in answers][-1] == 201
    completion = answers[-1].json()["result"]["jwt"]
    assert completion
    assert completion != session["jwt"]
    assert stack.emulator.stored_hashes(DEMO_ACCOUNT_ID) >= set(hashes)
    uploads = stack.emulator.calls_to("/workers/assets/upload")
    assert len(uploads) == len(session["buckets"])
    assert all(c.headers["authorization"] == f"Bearer {session['jwt']}" for c in uploads)
    for answer in answers:  # the API front stamps every answer it gives; none came from it
        assert "x-amzn-requestid" not in answer.headers
        assert "cf-ray" in answer.headers
    (session_call,) = stack.emulator.calls_to("/assets-upload-session")
    assert session_call.headers["authorization"] == f"Bearer {stack.cloudflare_token}"
    every_token = [c.headers.get("authorization", "") for c in stack.emulator.calls]
    assert not any(PLACEHOLDER in token for token in every_token)
    # one line per request, saying where it went
    assert len(proxy.lines) == 1 + len(answers)
    assert " -> gateway 200 " in proxy.lines[0]
    assert "assets-upload-session" in proxy.lines[0]
    assert all(" -> cloudflare 20" in line for line in proxy.lines[1:])


def test_single_asset_uploads_go_straight_to_cloudflare(stack: LocalStack, proxy: Proxy) -> None:
    files = numbered_files(2, prefix="/single/file")
    with proxy.client() as client:
        session = create_session(client, files)
        by_hash = {content_hash(data): data for data in files.values()}
        answers = [
            client.post(
                f"{UPLOAD_PATH}/{h}",
                content=by_hash[h],
                headers={"Authorization": f"Bearer {session['jwt']}", "Content-Type": "text/plain"},
            )
            for bucket in session["buckets"]
            for h in bucket
        ]
    assert {a.status_code for a in answers} <= {200, 201, 202}
    assert len(stack.emulator.calls_to(f"{UPLOAD_PATH}/{next(iter(by_hash))}")) == 1
    assert all(" -> cloudflare " in line for line in proxy.lines[1:])


def test_a_refusal_passes_through_unchanged(stack: LocalStack, proxy: Proxy) -> None:
    manifest = {"manifest": {"/a.txt": {"hash": content_hash(b"a"), "size": 1}}}
    path = f"/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{DOCS_SCRIPT}/assets-upload-session"
    with proxy.client() as client:
        through = client.post(path, json=manifest)
    with signed_client(WEB_DEPLOYER) as gateway:
        direct = gateway.post(stack.base_url + path, json=manifest)
    assert through.status_code == direct.status_code == 403
    assert through.json()["errors"][0]["code"] == 19011
    assert through.json()["errors"] == direct.json()["errors"]
    assert through.json()["messages"] == direct.json()["messages"]
    assert through.headers["content-type"] == direct.headers["content-type"]
    assert " -> gateway 403 " in proxy.lines[0]
    assert stack.emulator.calls == []


def test_an_oversized_body_gets_a_413_envelope(stack: LocalStack) -> None:
    with proxy_for(stack, max_request_bytes=64 * 1024) as small, small.client() as client:
        answer = client.post(
            SESSION_PATH, content=b"x" * (200 * 1024), headers={"Content-Type": "application/json"}
        )
        chunked = client.post(
            SESSION_PATH,
            content=iter([b"y" * 50_000] * 4),
            headers={"Content-Type": "application/json"},
        )
    for refused in (answer, chunked):
        assert refused.status_code == 413
        body = refused.json()
        assert body["success"] is False
        assert body["result"] is None
        assert body["errors"][0]["code"] == 19002
        assert "over the proxy's limit of 64.0 KiB" in body["errors"][0]["message"]
        assert refused.headers["connection"] == "close"
    assert all(" -> proxy 413 " in line for line in small.lines)
    assert stack.emulator.calls == []


def test_expect_100_continue(stack: LocalStack, proxy: Proxy) -> None:
    """Over the limit: the 413 comes before the body is sent. Under it: `100 Continue`, then
    the request goes on as usual."""
    body = json.dumps({"manifest": {"/e.txt": {"hash": content_hash(b"e"), "size": 1}}}).encode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=HTTP_TIMEOUT) as raw:
        raw.sendall(
            f"POST /client/v4{SESSION_PATH} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10**12}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        refused = raw.makefile("rb").read()  # the proxy closes after answering
    assert refused.startswith(b"HTTP/1.1 413 ")
    assert b'"code": 19002' in refused
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=HTTP_TIMEOUT) as raw:
        reader = raw.makefile("rb")
        raw.sendall(
            f"POST /client/v4{SESSION_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        assert reader.readline().startswith(b"HTTP/1.1 100 ")
        assert reader.readline() == b"\r\n"
        raw.sendall(body)
        answered = reader.read()
    assert answered.startswith(b"HTTP/1.1 200 ")


def test_keep_alive_reuses_one_connection(stack: LocalStack, proxy: Proxy) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=HTTP_TIMEOUT)
    try:
        statuses = []
        sockets = []
        for script in (WEB_SCRIPT, DOCS_SCRIPT, WEB_SCRIPT):
            body = json.dumps({"manifest": {"/k.txt": {"hash": content_hash(b"k"), "size": 1}}})
            path = f"/client/v4/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{script}"
            connection.request(
                "POST",
                path + "/assets-upload-session",
                body=body,
                headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
            )
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert statuses == [200, 403, 200]
    assert sockets[0] is not None
    assert sockets[0] is sockets[1] is sockets[2]


def test_parallel_requests(stack: LocalStack, proxy: Proxy) -> None:
    def one(n: int) -> int:
        manifest = {f"/parallel/{n}.txt": {"hash": content_hash(b"%d" % n), "size": 1}}
        with proxy.client() as client:
            return client.post(SESSION_PATH, json={"manifest": manifest}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(one, range(6))) == [200] * 6
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 6
    assert len({line.split()[2] for line in proxy.lines}) == 6  # a distinct id each


def test_large_bodies_reach_the_gateway_gzipped(stack: LocalStack) -> None:
    files = numbered_files(300, prefix="/gzipped/file")
    with proxy_for(stack, gzip_threshold_bytes=4096) as zipping, zipping.client() as client:
        session = create_session(client, files)
        one = {"/one.txt": {"hash": content_hash(b"one"), "size": 3}}
        already = gzip.compress(json.dumps({"manifest": one}).encode())
        encoded = client.post(
            SESSION_PATH,
            content=already + b"\0" * 8192,  # over the threshold, yet already encoded
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        manifest = {p: {"hash": content_hash(d), "size": len(d)} for p, d in files.items()}
        identity = client.post(  # "identity" is no encoding: gzipped, and said once
            SESSION_PATH,
            json={"manifest": manifest},
            headers={"Content-Encoding": "identity"},
        )
    assert len(session["buckets"][0]) > 0
    assert "(gzip " in zipping.lines[0]
    assert identity.status_code == 200
    assert "(gzip " in zipping.lines[2]
    # the client's own encoding is left alone (gzipped twice, the gateway would refuse it)
    assert encoded.status_code == 200
    assert "(gzip " not in zipping.lines[1]
    forwarded = stack.emulator.calls_to("/assets-upload-session")
    assert [len(json.loads(call.body)["manifest"]) for call in forwarded] == [300, 1, 300]


def test_gateway_down_is_a_502_envelope(stack: LocalStack) -> None:
    with refusing_port() as port:
        gateway = f"http://127.0.0.1:{port}/client/v4"
        with proxy_for(stack, gateway_url=gateway) as broken, broken.client() as client:
            answer = client.post(SESSION_PATH, json={"manifest": {}})
    assert answer.status_code == 502
    error = answer.json()["errors"][0]
    assert error["code"] == 19031
    assert error["message"].startswith(
        f"assets-gateway proxy: cannot reach the gateway at {gateway}"
    )
    assert "Traceback" not in answer.text
    assert answer.headers[PROXY_ID_HEADER] in broken.lines[0]
    assert " -> gateway 502 " in broken.lines[0]


def test_upstream_silence_is_a_504_envelope(stack: LocalStack) -> None:
    stack.emulator.inject_fault(Fault(hold=True, path_suffix="/workers/assets/upload"))
    with silent_port() as port:
        overrides = {
            "gateway_url": f"http://127.0.0.1:{port}/client/v4",
            "gateway_timeout": httpx.Timeout(0.5),
            "cloudflare_timeout": httpx.Timeout(0.5),
        }
        with proxy_for(stack, **overrides) as slow, slow.client() as client:
            to_gateway = client.get(f"/accounts/{DEMO_ACCOUNT_ID}/workers/services/{WEB_SCRIPT}")
            to_cloudflare = client.post(UPLOAD_PATH, params={"base64": "true"}, files={"a": b"a"})
    for answer in (to_gateway, to_cloudflare):
        assert answer.status_code == 504
        assert answer.json()["errors"][0]["code"] == 19031
        assert "did not answer in time" in answer.json()["errors"][0]["message"]


def test_paths_outside_the_api_are_not_forwarded(stack: LocalStack, proxy: Proxy) -> None:
    with proxy.client() as client:
        answer = client.get(f"http://127.0.0.1:{proxy.port}/admin/policy")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == 7000
    assert " -> proxy 404 " in proxy.lines[0]


def test_official_sdk_with_a_placeholder_token(stack: LocalStack, proxy: Proxy) -> None:
    import cloudflare  # the SDK is large: only this test pays for the import

    files = numbered_files(5, prefix="/sdk/file")
    sdk = cloudflare.Cloudflare(api_token=PLACEHOLDER, base_url=proxy.base_url, max_retries=0)
    session = sdk.workers.scripts.assets.upload.create(
        WEB_SCRIPT,
        account_id=DEMO_ACCOUNT_ID,
        manifest={p: {"hash": content_hash(d), "size": len(d)} for p, d in files.items()},
    )
    assert session is not None
    assert session.jwt
    assert sorted(h for b in session.buckets or [] for h in b) == sorted(
        content_hash(d) for d in files.values()
    )
    assert " -> gateway 200 " in proxy.lines[0]


def test_secrets_appear_in_no_log_line_nor_answer(stack: LocalStack, proxy: Proxy) -> None:
    files = numbered_files(3, prefix="/secret/file")
    with proxy.client() as client:
        session = create_session(client, files)
        answers = upload_buckets(client, session, files)
        refused = client.post(SESSION_PATH, content=b"{", headers={"Content-Type": "text/plain"})
    completion = answers[-1].json()["result"]["jwt"]
    log = "\n".join(proxy.lines)
    secrets = [WEB_DEPLOYER.secret_access_key, PLACEHOLDER, session["jwt"], completion]
    assert not [s for s in secrets if s in log]
    assert "Signature=" not in log
    assert "Bearer" not in log
    for answer in [*answers, refused]:
        text = answer.text + str(answer.headers)
        assert WEB_DEPLOYER.secret_access_key not in text
        assert PLACEHOLDER not in text


def test_binds_127_0_0_1_only(proxy: Proxy) -> None:
    assert proxy.base_url.startswith("http://127.0.0.1:")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=HTTP_TIMEOUT):
        pass
    # Another loopback address reaches every socket bound to 0.0.0.0, and none bound to 127.0.0.1.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", proxy.port), timeout=HTTP_TIMEOUT).close()


def test_the_command_prints_its_url_serves_and_stops_on_sigterm(stack: LocalStack) -> None:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "ASSETS_GATEWAY_URL": stack.base_url,
        "CLOUDFLARE_API_URL": stack.cloudflare_url,
        "AWS_ACCESS_KEY_ID": WEB_DEPLOYER.access_key_id,
        "AWS_SECRET_ACCESS_KEY": WEB_DEPLOYER.secret_access_key,
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    process = subprocess.Popen(
        [str(CLI), "proxy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        name, _, base_url = line.partition("=")
        assert name == "CLOUDFLARE_API_BASE_URL"
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/client/v4")
        files = {"/cli.txt": b"through the command"}
        with httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {PLACEHOLDER}"},
            timeout=HTTP_TIMEOUT,
        ) as client:
            session = create_session(client, files)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=HTTP_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert stdout == ""  # only the one line, read above
    request_lines = [ln for ln in stderr.splitlines() if " -> " in ln]
    assert len(request_lines) == 1
    assert " -> gateway 200 " in request_lines[0]
    for secret in (WEB_DEPLOYER.secret_access_key, PLACEHOLDER, session["jwt"]):
        assert secret not in stderr


def test_the_command_refuses_to_start_without_a_gateway() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "ASSETS_GATEWAY_URL"}
    done = subprocess.run(
        [str(CLI), "proxy"], check=False, capture_output=True, text=True, env=environment
    )
    assert done.returncode == 2
    assert "no gateway URL" in done.stderr
    assert done.stdout == ""


def test_a_port_in_use_is_a_usage_error(
    stack: LocalStack,
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assets_gateway_client.cli import main  # in process: the port is this test's proxy's

    monkeypatch.setenv("ASSETS_GATEWAY_URL", stack.base_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", WEB_DEPLOYER.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WEB_DEPLOYER.secret_access_key)
    status = main(["proxy", "--port", str(proxy.port), "--region", "us-east-1"])
    assert status == 2
    assert f"cannot listen on 127.0.0.1:{proxy.port}" in capsys.readouterr().err


def test_credentials_that_cannot_refresh_get_a_500_envelope(stack: LocalStack) -> None:
    def refresh() -> dict[str, str]:
        raise CredentialRetrievalError(provider="sso", error_msg="the SSO session has expired")

    expired = RefreshableCredentials(
        WEB_DEPLOYER.access_key_id,
        WEB_DEPLOYER.secret_access_key,
        "a-session-token",
        datetime.now(UTC) - timedelta(minutes=1),
        refresh,
        "sso",
    )
    with proxy_for(stack, auth=SigV4Auth(expired, "us-east-1")) as stale, stale.client() as client:
        answer = client.post(SESSION_PATH, json={"manifest": {}})
    assert answer.status_code == 500
    error = answer.json()["errors"][0]
    assert error["code"] == 19099
    assert "cannot sign for the gateway: CredentialRetrievalError" in error["message"]
    assert "the SSO session has expired" in error["message"]
    assert stack.emulator.calls == []


def test_malformed_requests_get_an_envelope(stack: LocalStack, proxy: Proxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=HTTP_TIMEOUT) as raw:
        raw.sendall(b"NOT A REQUEST LINE AT ALL\r\n\r\n")
        answer = raw.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'"success": false' in answer
    assert b'"code": 19000' in answer


def test_a_client_that_stops_sending_gets_a_408(stack: LocalStack) -> None:
    with (
        proxy_for(stack, idle_timeout_s=0.3) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=HTTP_TIMEOUT) as raw,
    ):
        raw.sendall(
            f"POST /client/v4{SESSION_PATH} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
        answer = raw.makefile("rb").read()  # the proxy answers, then closes
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 0.3 s" in answer
    assert stack.emulator.calls == []


def test_a_client_that_hangs_up_midway_leaves_one_line_and_no_traceback(
    stack: LocalStack, capfd: pytest.CaptureFixture[str]
) -> None:
    said = threading.Event()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        said.set()

    with proxy_for(stack, log=log) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=HTTP_TIMEOUT) as raw:
            raw.sendall(
                f"POST /client/v4{SESSION_PATH} HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 1000\r\n\r\n{".encode()
            )
        assert said.wait(HTTP_TIMEOUT)
    assert len(lines) == 1
    assert " -> client hung up: the request body ended before its length " in lines[0]
    assert "Traceback" not in capfd.readouterr().err
    assert stack.emulator.calls == []


README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### A signing proxy for other tools\n"


def readme_blocks(language: str) -> list[str]:
    """The ```language blocks of the README's proxy subsection."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    body = text[start : text.index("\n## ", start)]
    fence = f"```{language}\n"
    return [part.split("```", 1)[0] for part in body.split(fence)[1:]]


def test_the_readmes_example_runs_as_written(stack: LocalStack) -> None:
    # Given the README's shell example, with the demo's account and script, and its Python
    # snippet run where the shell example has the proxy going
    (shell,) = readme_blocks("sh")
    (snippet,) = readme_blocks("python")
    shell = shell.replace("<account id>", DEMO_ACCOUNT_ID).replace("my-worker", WEB_SCRIPT)
    snippet = snippet.replace("<account id>", DEMO_ACCOUNT_ID).replace("my-worker", WEB_SCRIPT)
    assert shell.rstrip().endswith("kill $PROXY_PID")
    script = shell.replace("kill $PROXY_PID", '"$PYTHON" -c "$SNIPPET"\nkill $PROXY_PID')
    script += "wait $PROXY_PID\n"  # the proxy's own exit status
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{CLI.parent}{os.pathsep}{os.environ['PATH']}",
        PYTHON=sys.executable,
        SNIPPET=snippet,
        ASSETS_GATEWAY_URL=stack.base_url,
        CLOUDFLARE_API_URL=stack.cloudflare_url,
        AWS_ACCESS_KEY_ID=WEB_DEPLOYER.access_key_id,
        AWS_SECRET_ACCESS_KEY=WEB_DEPLOYER.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )

    # When bash runs it (its own process group, so nothing it starts can outlive the test)
    process = subprocess.Popen(
        ["bash", "-e", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=HTTP_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    # Then curl and the SDK each got a session through the proxy, which then stopped cleanly
    assert process.returncode == 0, stderr
    assert json.loads(stdout)["success"] is True
    assert len(stack.emulator.calls_to("/assets-upload-session")) == 2
    assert stderr.count(" -> gateway 200 ") == 2
