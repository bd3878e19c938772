"""The real, pinned wrangler CLI deploys a Worker with static assets straight to the Cloudflare
emulator: proof that the emulator serves wrangler's deploy flow as Cloudflare does.

Given a project of 24 assets, when wrangler runs `deploy`, `deploy` again after one file changed,
`versions upload`, `versions deploy` and `rollback`, then each exits 0, the emulator holds what
Cloudflare would (the Worker, each version with its assets' manifest, each deployment), the
second deploy uploads exactly the changed file, and nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from cloudflare_stack import folder_files, uploaded_hashes, write_assets_project
from wrangler_cli import ConnectionTrap, WranglerRun, offline_env, run_wrangler

from gateway_local.cloudflare_emulator import CloudflareEmulator, Fault, RecordedCall
from gateway_local.emulator_workers import Script, ScriptKey
from gateway_local.http_server import BackgroundServer

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "dummy-wrangler-token"
WORKER = "assets-site"
ASSET_COUNT = 24
KEY = ScriptKey(ACCOUNT, WORKER)


@dataclass
class Project:
    emulator: CloudflareEmulator
    trap: ConnectionTrap
    root: Path
    env: dict[str, str]

    def wrangler(self, *args: str) -> tuple[WranglerRun, list[RecordedCall]]:
        """Run wrangler; its run and the API calls it made."""
        before = self.emulator.received
        run = run_wrangler(list(args), cwd=self.root, env=self.env)
        assert run.returncode == 0, run.output
        assert TOKEN not in run.output
        return run, self.emulator.calls[before:]

    def script(self) -> Script:
        script = self.emulator.workers.script(KEY)
        assert script is not None
        return script

    def assets(self) -> dict[str, bytes]:
        return folder_files(self.root / "public")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "site"
    write_assets_project(root, assets=ASSET_COUNT, module="index.js")
    (root / "wrangler.jsonc").write_text(
        "{\n"
        f'  "name": "{WORKER}",\n'
        '  "main": "index.js",\n'
        '  "compatibility_date": "2025-01-01",\n'
        "  // the Worker serves the files of ./public\n"
        '  "assets": {"directory": "public", "binding": "ASSETS"}\n'
        "}\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    emulator = CloudflareEmulator(tokens={TOKEN: [ACCOUNT]})
    with BackgroundServer(emulator, name="cloudflare") as server, closing(ConnectionTrap()) as trap:
        env = offline_env(
            api_base_url=f"{server.url}/client/v4",
            api_token=TOKEN,
            account_id=ACCOUNT,
            home=home,
            proxy_url=trap.url,
        )
        yield Project(emulator, trap, root, env)


def routes(calls: list[RecordedCall]) -> list[tuple[str, str, int | None]]:
    """(method, path under the account with the Worker's name as {s}, status), sorted: wrangler
    makes some calls concurrently, so their order is not part of the contract."""
    prefix = f"/client/v4/accounts/{ACCOUNT}"
    return sorted(
        (call.method, call.path.removeprefix(prefix).replace(WORKER, "{s}"), call.status)
        for call in calls
    )


def test_wrangler_deploys_versions_and_rolls_back_against_the_emulator(project: Project) -> None:
    # deploy of a new Worker: every asset uploaded, the Worker created and deployed
    _run, calls = project.wrangler("deploy")
    files = project.assets()
    script = project.script()
    (first,) = script.versions
    assert first.assets is not None
    assert set(first.assets) == set(files)
    for path, (file_hash, size) in first.assets.items():
        stored = project.emulator.stored_asset(ACCOUNT, file_hash)
        assert stored is not None
        assert (stored.content, size) == (files[path], len(files[path]))
    assert sorted(uploaded_hashes(calls)) == sorted(h for h, _ in first.assets.values())
    assert [d.versions for d in script.deployments] == [((first.id, 100.0),)]
    assert ("PUT", "/workers/scripts/{s}", 200) in routes(calls)
    assert ("GET", "/workers/services/{s}", 404) in routes(calls)  # 10007: a new Worker
    assert script.subdomain_enabled  # workers.dev, wrangler's default

    # one file changed: exactly that file is uploaded, a new version is deployed
    (project.root / "public" / "page-3.html").write_text("<h1>page 3, edited</h1>\n")
    _run, calls = project.wrangler("deploy")
    second = project.script().versions[-1]
    assert second.assets is not None
    assert second.assets["/page-3.html"] != first.assets["/page-3.html"]
    assert uploaded_hashes(calls) == [second.assets["/page-3.html"][0]]
    assert [d.versions[0][0] for d in project.script().deployments] == [first.id, second.id]
    assert ("POST", "/workers/scripts/{s}/versions", 200) in routes(calls)
    assert ("POST", "/workers/scripts/{s}/deployments", 200) in routes(calls)

    # versions upload: a version, no deployment
    _run, calls = project.wrangler("versions", "upload", "--message", "not yet")
    script = project.script()
    third = script.versions[-1]
    assert [v.id for v in script.versions] == [first.id, second.id, third.id]
    assert third.message == "not yet"
    assert len(script.deployments) == 2
    assert not any(call.path.endswith("/deployments") for call in calls if call.method == "POST")

    # versions deploy: a gradual split between the uploaded and the deployed version
    _run, calls = project.wrangler(
        "versions", "deploy", f"{third.id}@10%", f"{second.id}@90%", "--yes"
    )
    assert project.script().deployments[-1].versions == ((third.id, 10.0), (second.id, 90.0))

    # rollback to the first version
    _run, calls = project.wrangler("rollback", first.id, "--message", "back", "--yes")
    latest = project.script().deployments[-1]
    assert latest.versions == ((first.id, 100.0),)
    assert latest.message == "back"
    assert project.trap.requests == [], "wrangler tried to reach beyond 127.0.0.1"


def test_the_trap_sees_what_wrangler_sends_beyond_loopback(project: Project) -> None:
    """The guard above can fail: when wrangler cannot reach its API it asks npm for a newer
    wrangler (even with the banner hidden), and that request lands in the trap."""
    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = {**project.env, "CLOUDFLARE_API_BASE_URL": f"http://127.0.0.1:{closed_port}/client/v4"}

    run = run_wrangler(["deploy"], cwd=project.root, env=env)

    assert run.returncode != 0
    assert "fetch failed" in run.output
    assert "CONNECT registry.npmjs.org:443 HTTP/1.1" in project.trap.requests
    assert project.emulator.workers.script(KEY) is None


def test_a_10000_refusal_makes_wrangler_check_its_token_and_stop(project: Project) -> None:
    """Why the gateway must never refuse with 10000: wrangler takes it for a bad token, asks who
    the token is and prints an authentication error instead of the refusal's reasons."""
    refusal = {
        "success": False,
        "errors": [{"code": 10000, "message": "Authentication error"}],
        "messages": [],
        "result": None,
    }
    project.emulator.inject_fault(
        Fault(status=403, body=json.dumps(refusal).encode(), path_suffix=f"/services/{WORKER}")
    )

    run = run_wrangler(["deploy"], cwd=project.root, env=project.env)

    assert run.returncode != 0
    assert "Authentication error [code: 10000]" in run.output
    assert "/client/v4/user/tokens/verify" in [call.path for call in project.emulator.calls]
    assert project.emulator.workers.script(KEY) is None
    assert project.trap.requests == []
