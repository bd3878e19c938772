"""`assets-gateway deploy` (no Node) and `assets-gateway wrangler -- …` (the real, pinned wrangler
through the signing proxy), run as their users run them: the console script in a subprocess.

Both run against the local stack: the SigV4 API front, the session and deploy functions and
the Cloudflare emulator, as the web team's deployer. Asset uploads go straight to the emulator
with the session JWT, as they go to Cloudflare. Real HTTP on 127.0.0.1 throughout; nothing else
reached (wrangler's stray requests land in a trap that must stay empty).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cloudflare_stack import folder_files, uploaded_hashes, write_assets_project
from wrangler_cli import ConnectionTrap, offline_env

from assets_gateway_client.deploy import WorkerModule, deploy_directory
from gateway_local.cloudflare_emulator import CloudflareEmulator, Fault
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT, demo_policy
from gateway_local.emulator_workers import Script, ScriptKey
from gateway_local.stack import LocalStack
from helpers import readme_section_blocks

if TYPE_CHECKING:
    pass

ACCOUNT = DEMO_ACCOUNT_ID
# A Cloudflare token the caller happens to have in their environment: it must not travel.
INHERITED_TOKEN = "inherited-cloudflare-token-must-not-travel"
PLACEHOLDER = "assets-gateway-placeholder-not-a-cloudflare-token"
WORKER = "web-site"  # the demo policy lets the web team deploy web-*
ASSET_COUNT = 24
CLI = Path(sys.executable).with_name("assets-gateway")
# A bound against a hung command only, never a duration a test relies on.
HANG_LIMIT_S = 300.0


@dataclass
class Site:
    """A project: ./public (the assets), ./worker.js, wrangler.jsonc; the local stack and the
    environment the CLI runs with (the web team's deployer)."""

    root: Path
    stack: LocalStack
    trap: ConnectionTrap
    env: dict[str, str]

    @property
    def emulator(self) -> CloudflareEmulator:
        return self.stack.emulator

    @property
    def public(self) -> Path:
        return self.root / "public"

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLI), *args],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=HANG_LIMIT_S,
            stdin=subprocess.DEVNULL,
        )

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("deploy", "public", "--account", ACCOUNT, "--script", WORKER, *args)

    def script(self, name: str = WORKER) -> Script:
        script = self.emulator.workers.script(ScriptKey(ACCOUNT, name))
        assert script is not None
        return script

    def files(self) -> dict[str, bytes]:
        return folder_files(self.public)


@pytest.fixture
def site(stack: LocalStack, tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    write_assets_project(root, assets=ASSET_COUNT, module="worker.js")
    (root / "wrangler.jsonc").write_text(
        json.dumps(
            {
                "name": WORKER,
                "account_id": ACCOUNT,
                "main": "worker.js",
                "compatibility_date": "2025-01-01",
                "assets": {"directory": "public", "binding": "ASSETS"},
            }
        )
    )
    home = tmp_path / "home"
    home.mkdir()
    with closing(ConnectionTrap()) as trap:
        env = offline_env(
            api_base_url="http://127.0.0.1:9/unused",  # `wrangler` sets its own
            api_token=INHERITED_TOKEN,
            account_id=ACCOUNT,
            home=home,
            proxy_url=trap.url,
        )
        env.update(
            ASSETS_GATEWAY_URL=stack.base_url,
            CLOUDFLARE_API_URL=stack.cloudflare_url,
            CLOUDFLARE_API_KEY="inherited-global-key",
            CLOUDFLARE_EMAIL="someone@example.com",
            AWS_ACCESS_KEY_ID=WEB_DEPLOYER.access_key_id,
            AWS_SECRET_ACCESS_KEY=WEB_DEPLOYER.secret_access_key,
            AWS_REGION="us-east-1",
            AWS_CONFIG_FILE=str(home / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        yield Site(root, stack, trap, env)
    assert trap.requests == [], "something tried to reach beyond 127.0.0.1"


def readme_commands(heading: str) -> list[list[str]]:
    """The `assets-gateway` command lines of a README section (shell blocks and the workflow's
    `run:` steps), as argument lists after the console script, the account id filled in."""
    lines = [
        line.strip().removeprefix("- run: ").removeprefix("run: ")
        for block in readme_section_blocks(heading, "sh") + readme_section_blocks(heading, "yaml")
        for line in block.splitlines()
    ]
    return [
        shlex.split(line.replace("<account id>", ACCOUNT))[1:]
        for line in lines
        if line.startswith("assets-gateway ")
    ]


def no_secret_travelled(site: Site, *outputs: str) -> None:
    """The caller's own Cloudflare credentials reached nobody; the placeholder never reached
    Cloudflare; every call but the asset uploads (which carry the session's JWT) reached it with
    the org's token, from the gateway; the org token appears in no output."""
    org = f"Bearer {site.stack.cloudflare_token}"
    for call in site.emulator.calls:
        authorization = call.headers.get("authorization", "")
        assert PLACEHOLDER not in authorization
        assert INHERITED_TOKEN not in authorization
        assert "x-auth-key" not in call.headers
        assert authorization == org or "/workers/assets/upload" in call.path, call.path
    for output in outputs:
        assert site.stack.cloudflare_token not in output
        assert INHERITED_TOKEN not in output


# ------------------------------------------------------------------ assets-gateway deploy


def test_deploy_creates_a_worker_then_a_new_version_uploading_only_the_changed_file(
    site: Site,
) -> None:
    # Given a new Worker, when it is deployed with --json
    done = site.deploy("--main", "worker.js", "--compatibility-date", "2025-01-01", "--json")

    # then the emulator holds it, with every asset, deployed, and the JSON says so
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    script = site.script()
    (first,) = script.versions
    files = site.files()
    assert first.assets is not None
    assert set(first.assets) == set(files)
    for path, (file_hash, size) in first.assets.items():
        stored = site.emulator.stored_asset(ACCOUNT, file_hash)
        assert stored is not None
        assert (stored.content, size) == (files[path], len(files[path]))
    assert first.main_module == "worker.js"
    assert [(m.name, m.content_type) for m in first.modules] == [
        ("worker.js", "application/javascript+module")
    ]
    assert first.bindings == ({"name": "ASSETS", "type": "assets"},)
    assert first.compatibility_date == "2025-01-01"
    assert [d.versions for d in script.deployments] == [((first.id, 100.0),)]
    assert result == {
        "script": WORKER,
        "account": ACCOUNT,
        "version_id": first.id,
        "deployment_id": None,
        "new_worker": True,
        "uploaded_files": ASSET_COUNT,
        "entries": ASSET_COUNT,
        "bytes": sum(len(content) for content in files.values()),
    }
    assert "a new Worker" in done.stderr
    new_calls = [(c.method, c.path.rsplit("/", 2)[-2:], c.query) for c in site.emulator.calls]
    assert ("GET", ["services", WORKER], "") in new_calls
    assert ("PUT", ["scripts", WORKER], "excludeScript=true&bindings_inherit=strict") in new_calls

    # Given one file changed, when deployed again (no --json: the version id alone on stdout)
    (site.public / "page-3.html").write_text("<h1>page 3, edited</h1>\n")
    before = len(site.emulator.calls)
    again = site.deploy("--main", "worker.js", "--compatibility-date", "2025-01-01")

    # then exactly that file is uploaded, and a new version is made and deployed at 100%
    assert again.returncode == 0, again.stderr
    script = site.script()
    second = script.versions[-1]
    assert again.stdout == f"{second.id}\n"
    assert second.assets is not None
    assert uploaded_hashes(site.emulator.calls[before:]) == [second.assets["/page-3.html"][0]]
    assert [d.versions for d in script.deployments] == [
        ((first.id, 100.0),),
        ((second.id, 100.0),),
    ]
    assert "1 of 24 files uploaded (23 already on Cloudflare)" in again.stderr
    assert "deployed to 100%" in again.stderr
    no_secret_travelled(site, done.stdout, done.stderr, again.stdout, again.stderr)


def test_an_assets_only_worker_has_no_module_and_no_binding(site: Site) -> None:
    (site.public / "_headers").write_text("/*\n  X-Frame-Options: DENY\n")

    done = site.deploy("--compatibility-date", "2025-01-01", "--json")

    assert done.returncode == 0, done.stderr
    (version,) = site.script().versions
    assert version.main_module is None
    assert version.modules == ()
    assert version.bindings == ()
    assert version.assets is not None
    assert "/page-0.html" in version.assets
    assert "/_headers" not in version.assets  # configuration, not an asset
    assert version.assets_config == {"_headers": "/*\n  X-Frame-Options: DENY\n"}
    assert json.loads(done.stdout)["version_id"] == version.id


def test_a_refusal_is_printed_with_its_code_and_every_reason_and_nothing_is_uploaded(
    site: Site,
) -> None:
    # A script outside the web team's allow-list: refused at the first call.
    outside = site.cli("deploy", "public", "--account", ACCOUNT, "--script", "docs")
    assert outside.returncode == 1
    assert "HTTP 403 — 19011 the org's policy denies this call (1 reason)" in outside.stderr
    assert "team 'web' may not use script 'docs'" in outside.stderr
    assert site.emulator.calls == []

    # A Worker whose binding the team's deploy policy no longer allows: the assets go up, the
    # version is refused before Cloudflare sees it.
    policy = demo_policy()
    policy["teams"]["web"]["deploy"] = {"bindings": ["plain_text"]}
    site.stack.publish_policy(policy)
    forbidden = site.deploy("--main", "worker.js")
    assert forbidden.returncode == 1
    assert "19062 the org's deploy policy denies this Worker upload" in forbidden.stderr
    assert "ASSETS" in forbidden.stderr
    assert site.emulator.workers.script(ScriptKey(ACCOUNT, WORKER)) is None
    assert not [call for call in site.emulator.calls if call.method == "PUT"]
    no_secret_travelled(site, outside.stderr, forbidden.stderr)


def test_the_python_api_retries_a_429_after_its_retry_after_and_deploys(site: Site) -> None:
    """`deploy_directory` with its clients injected: the signer, both URLs, the sleep. Here it
    talks to Cloudflare (the emulator) itself, with a bearer token, so that Cloudflare's 429
    reaches it unchanged (the gateway would retry it first)."""
    site.emulator.inject_fault(
        Fault(status=429, headers={"Retry-After": "3"}, path_suffix=f"/services/{WORKER}")
    )
    slept: list[float] = []
    said: list[str] = []

    result = deploy_directory(
        site.public,
        account_id=ACCOUNT,
        script_name=WORKER,
        main=WorkerModule.from_file(site.root / "worker.js"),
        compatibility_date="2025-01-01",
        message="from Python",
        gateway_url=site.stack.cloudflare_url,
        cloudflare_api_url=site.stack.cloudflare_url,
        auth=_Bearer(site.stack.cloudflare_token),
        sleep=slept.append,
        say=said.append,
    )

    assert slept == [3.0]
    (version,) = site.script().versions
    assert (result.version_id, result.new_worker, result.deployment_id) == (version.id, True, None)
    assert version.message == "from Python"
    assert result.upload.uploaded_files == ASSET_COUNT
    assert said[0] == f"{WORKER}: a new Worker"


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def test_a_dry_run_shows_the_real_gateways_decision_and_calls_cloudflare_for_nothing(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Through the real local gateway (SigV4 verified, the session door's dry run)."""
    write_assets_project(tmp_path, assets=ASSET_COUNT, module="worker.js")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASSETS_GATEWAY"))},
        "AWS_ACCESS_KEY_ID": WEB_DEPLOYER.access_key_id,
        "AWS_SECRET_ACCESS_KEY": WEB_DEPLOYER.secret_access_key,
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "ASSETS_GATEWAY_URL": stack.base_url,
        "CLOUDFLARE_API_URL": stack.cloudflare_url,
    }

    def dry_run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(str(CLI), "deploy", "public", "--account", DEMO_ACCOUNT_ID, "--script", script),
                *("--compatibility-date", "2025-01-01", "--dry-run", *args),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=HANG_LIMIT_S,
        )

    allowed = dry_run(WEB_SCRIPT, "--main", "worker.js")
    refused = dry_run("docs", "--json")

    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith(f"dry run: ALLOWED (team web, {ASSET_COUNT} entries")
    assert (
        f"would then deploy {WEB_SCRIPT} (worker.js, compatibility date 2025-01-01)"
        in allowed.stdout
    )
    assert refused.returncode == 1
    document = json.loads(refused.stdout)
    assert (document["version_id"], document["new_worker"]) == (None, None)
    assert document["dry_run"]["allowed"] is False
    assert document["dry_run"]["reasons"][0]["code"] == 19011
    assert stack.emulator.calls == []  # nothing forwarded, nothing uploaded


def test_the_readmes_commands_and_python_snippet_run_as_written(site: Site) -> None:
    # Given the README's two commands: a Worker with its module, then an assets-only version
    with_module, assets_only = readme_commands("## Deploying without Node")

    first = site.cli(*with_module)
    second = site.cli(*assets_only)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    versions = site.script().versions
    assert [v.main_module for v in versions] == ["worker.js", None]
    assert json.loads(second.stdout)["version_id"] == versions[1].id

    # and its Python snippet, run from the project with the environment the CLI had
    (snippet,) = readme_section_blocks("## Deploying without Node", "python")
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=site.root,
        env=site.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=HANG_LIMIT_S,
    )

    assert done.returncode == 0, done.stderr
    version_id, new_worker, uploaded = done.stdout.split()
    latest = site.script().versions[-1]
    assert (version_id, new_worker, uploaded) == (latest.id, "False", "0")
    assert latest.main_module == "worker.js"


@pytest.mark.parametrize(
    ("args", "unset", "expected"),
    [
        (("--compatibility-date", "1/1/2025"), (), "--compatibility-date must be YYYY-MM-DD"),
        (("--main", "missing.js"), (), "--main missing.js"),
        ((), ("ASSETS_GATEWAY_URL",), "no gateway URL"),
    ],
)
def test_usage_and_setup_problems_exit_2_before_any_call(
    site: Site, args: tuple[str, ...], unset: tuple[str, ...], expected: str
) -> None:
    env = {name: value for name, value in site.env.items() if name not in unset}

    done = site.cli("deploy", "public", "--account", ACCOUNT, "--script", WORKER, *args, env=env)

    assert done.returncode == 2
    assert expected in done.stderr
    assert site.emulator.calls == []


# ------------------------------------------------------------------ assets-gateway wrangler


def test_wrangler_deploys_through_the_proxy_and_its_exit_status_and_output_come_through(
    site: Site,
) -> None:
    # Given the project (account_id in wrangler.jsonc) and a shell as keyless CI has it, no
    # Cloudflare credential nor account id (CLOUDFLARE_API_URL, the emulator's, is no secret),
    # when the real wrangler deploys it through `assets-gateway wrangler`
    keyless = {
        name: value
        for name, value in site.env.items()
        if name.removeprefix("CLOUDFLARE_") not in ("API_TOKEN", "API_KEY", "EMAIL", "ACCOUNT_ID")
    }
    shell, workflow = readme_commands("## Deploying with wrangler")
    assert shell == workflow == ["wrangler", "--", "deploy"]
    done = site.cli(*shell, env=keyless)

    # then wrangler's output streams through, it exits 0 and the emulator holds the Worker
    assert done.returncode == 0, done.stdout + done.stderr
    assert "assets-gateway wrangler: running" in done.stderr
    assert "(on PATH)" in done.stderr  # no node_modules in the project: the one on PATH
    assert f"Deployed {WORKER} triggers" in done.stdout + done.stderr
    assert "assets-gateway proxy:" in done.stderr  # one line per call
    script = site.script()
    (version,) = script.versions
    assert version.assets is not None
    assert len(version.assets) == ASSET_COUNT
    assert len(script.deployments) == 1
    # the gateway's calls reached Cloudflare with the org token (the API front verified each
    # signature); uploads went to Cloudflare with the session JWT
    assert uploaded_hashes(site.emulator.calls)
    no_secret_travelled(site, done.stdout, done.stderr)

    # Given a refusal, when wrangler deploys again from a shell holding Cloudflare credentials
    # (which stay behind): it fails, showing our code, and so do we
    policy = demo_policy()
    policy["teams"]["web"]["deploy"] = {"bindings": ["plain_text"]}  # no assets binding
    site.stack.publish_policy(policy)
    (site.public / "page-1.html").write_text("<h1>page 1, edited</h1>\n")
    refused = site.cli("wrangler", "--quiet", "--", "deploy")

    assert refused.returncode == 1
    assert "[code: 19062]" in refused.stdout + refused.stderr
    assert "binding 'ASSETS' (assets)" in refused.stdout + refused.stderr
    assert "assets-gateway proxy:" not in refused.stderr  # --quiet
    assert len(site.script().versions) == 1
    no_secret_travelled(site, refused.stdout, refused.stderr)


FAKE_WRANGLER = """\
#!{python}
import json, os, signal, sys, time
print(json.dumps({{"args": sys.argv[1:], "env": {{
    name: os.environ.get(name) for name in (
        "CLOUDFLARE_API_BASE_URL", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY",
        "CLOUDFLARE_EMAIL", "CLOUDFLARE_ACCOUNT_ID")}}}}), flush=True)
if sys.argv[1:2] == ["wait"]:
    if sys.argv[2:3] == ["catch"]:
        signal.signal(signal.SIGINT, lambda *_: sys.exit(42))
    print("ready", flush=True)
    signal.pause()
sys.exit(int(sys.argv[2]) if sys.argv[1:2] == ["exit"] else 0)
"""


@pytest.fixture
def fake_wrangler(tmp_path: Path) -> Path:
    """A stand-in for wrangler that shows what it was given and exits or waits as told."""
    path = tmp_path / "fake-wrangler"
    path.write_text(FAKE_WRANGLER.format(python=sys.executable))
    path.chmod(0o755)
    return path


def test_wrangler_gets_the_proxy_a_placeholder_and_none_of_the_callers_credentials(
    site: Site, fake_wrangler: Path
) -> None:
    done = site.cli("wrangler", "--wrangler", str(fake_wrangler), "--", "exit", "7", "--x")

    assert done.returncode == 7
    shown: dict[str, Any] = json.loads(done.stdout.splitlines()[0])
    assert shown["args"] == ["exit", "7", "--x"]
    env = shown["env"]
    assert env["CLOUDFLARE_API_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["CLOUDFLARE_API_BASE_URL"].endswith("/client/v4")
    assert env["CLOUDFLARE_API_TOKEN"] == PLACEHOLDER
    assert env["CLOUDFLARE_API_KEY"] is None
    assert env["CLOUDFLARE_EMAIL"] is None
    assert env["CLOUDFLARE_ACCOUNT_ID"] == ACCOUNT
    assert f"running {fake_wrangler} (--wrangler)" in done.stderr


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "ready":
            return
    pytest.fail("the fake wrangler never got ready")


@pytest.mark.parametrize(
    ("signum", "how", "expected"),
    [
        (signal.SIGTERM, "die", 128 + signal.SIGTERM),  # killed by it: 128 + N
        (signal.SIGINT, "catch", 42),  # handled by wrangler: its own exit status
    ],
)
def test_signals_are_passed_on_to_wrangler(
    site: Site, fake_wrangler: Path, signum: int, how: str, expected: int
) -> None:
    process = subprocess.Popen(
        [str(CLI), "wrangler", "--quiet", "--wrangler", str(fake_wrangler), "--", "wait", how],
        cwd=site.root,
        env=site.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_ready(process)
        process.send_signal(signum)
        # A bound against a signal that never arrives, not a duration relied on.
        assert process.wait(timeout=60) == expected
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_no_wrangler_anywhere_exits_2(site: Site, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**site.env, "PATH": str(empty)}

    done = site.cli("wrangler", "--", "deploy", env=env)

    assert done.returncode == 2
    assert "no wrangler found" in done.stderr
    assert done.stdout == ""
