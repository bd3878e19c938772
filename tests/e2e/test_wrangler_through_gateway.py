"""The real, pinned wrangler CLI deploys through the gateway with `assets-gateway wrangler --`:
the team holds no Cloudflare token, the local signing proxy signs each call with the team's AWS
identity, the gateway governs it and forwards it with the org's token.

Given a project of 24 assets, `deploy` (a new Worker), `deploy` after one file changed,
`versions upload`, `versions deploy` (a split) and `rollback` each exit 0 and leave in the
emulator what Cloudflare would hold; a binding the deploy policy forbids and a script outside the
team each make wrangler exit non-zero showing our code and every reason, with nothing of the
refused call reaching Cloudflare; a 429 with a short Retry-After is retried by wrangler and one
with a long one fails fast. The org token appears in no output, and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from cloudflare_stack import uploaded_hashes, write_assets_project
from wrangler_cli import WRANGLER, ConnectionTrap, WranglerRun, offline_env, run_wrangler

from gateway_local.aws_resources import REPO_ROOT
from gateway_local.cloudflare_emulator import Fault, RecordedCall
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, demo_policy
from gateway_local.emulator_workers import Script, ScriptKey
from gateway_local.stack import LocalStack

WORKER = "web-wrangler-site"
ASSET_COUNT = 24
KEY = ScriptKey(DEMO_ACCOUNT_ID, WORKER)
CLIENT = REPO_ROOT / ".venv" / "bin" / "assets-gateway"


@dataclass
class Project:
    stack: LocalStack
    trap: ConnectionTrap
    root: Path
    env: dict[str, str]

    def wrangler(self, *args: str) -> tuple[WranglerRun, list[RecordedCall]]:
        """Run wrangler through the gateway; its run and the calls that reached Cloudflare."""
        before = self.stack.emulator.received
        launcher = [str(CLIENT), "wrangler", "--wrangler", str(WRANGLER), "--"]
        run = run_wrangler(list(args), cwd=self.root, env=self.env, launcher=launcher)
        assert self.stack.cloudflare_token not in run.output
        return run, self.stack.emulator.calls[before:]

    def script(self) -> Script:
        script = self.stack.emulator.workers.script(KEY)
        assert script is not None
        return script

    def configure(self, name: str = WORKER, extra: str = "") -> None:
        (self.root / "wrangler.jsonc").write_text(
            "{\n"
            f'  "name": "{name}",\n'
            '  "main": "index.js",\n'
            '  "compatibility_date": "2025-01-01",\n'
            f"{extra}"
            '  "assets": {"directory": "public", "binding": "ASSETS"}\n'
            "}\n"
        )


@pytest.fixture
def project(stack: LocalStack, tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "site"
    write_assets_project(root, assets=ASSET_COUNT, module="index.js")
    home = tmp_path / "home"
    home.mkdir()
    with closing(ConnectionTrap()) as trap:
        env = {
            **offline_env(
                api_base_url="http://127.0.0.1:9/unused",  # the client points wrangler at its proxy
                api_token="",
                account_id=DEMO_ACCOUNT_ID,
                home=home,
                proxy_url=trap.url,
            ),
            "ASSETS_GATEWAY_URL": stack.base_url,
            "CLOUDFLARE_API_URL": stack.cloudflare_url,
            "AWS_ACCESS_KEY_ID": WEB_DEPLOYER.access_key_id,
            "AWS_SECRET_ACCESS_KEY": WEB_DEPLOYER.secret_access_key,
            "AWS_REGION": "us-east-1",
        }
        project = Project(stack, trap, root, env)
        project.configure()
        yield project
        assert trap.requests == [], "wrangler tried to reach beyond 127.0.0.1"


def governed(calls: list[RecordedCall]) -> list[RecordedCall]:
    """The calls that carried the org token (the asset uploads carry the session's JWT)."""
    return [call for call in calls if not call.path.endswith("/workers/assets/upload")]


def test_wrangler_deploys_versions_and_rolls_back_through_the_gateway(project: Project) -> None:
    token = f"Bearer {project.stack.cloudflare_token}"
    run, calls = project.wrangler("deploy")
    assert run.returncode == 0, run.output
    script = project.script()
    (first,) = script.versions
    assert first.assets is not None
    assert len(first.assets) == ASSET_COUNT
    assert len(uploaded_hashes(calls)) == ASSET_COUNT
    assert [d.versions for d in script.deployments] == [((first.id, 100.0),)]
    assert all(call.headers["authorization"] == token for call in governed(calls))

    (project.root / "public" / "page-3.html").write_text("<h1>page 3, edited</h1>\n")
    run, calls = project.wrangler("deploy")
    assert run.returncode == 0, run.output
    second = project.script().versions[-1]
    assert second.assets is not None
    assert uploaded_hashes(calls) == [second.assets["/page-3.html"][0]]
    assert [d.versions[0][0] for d in project.script().deployments] == [first.id, second.id]

    run, calls = project.wrangler("versions", "upload", "--message", "not yet")
    assert run.returncode == 0, run.output
    third = project.script().versions[-1]
    assert third.id not in (first.id, second.id)
    assert len(project.script().deployments) == 2

    run, _calls = project.wrangler(
        "versions", "deploy", f"{third.id}@10%", f"{second.id}@90%", "--yes"
    )
    assert run.returncode == 0, run.output
    assert project.script().deployments[-1].versions == ((third.id, 10.0), (second.id, 90.0))

    run, _calls = project.wrangler("rollback", first.id, "--message", "back", "--yes")
    assert run.returncode == 0, run.output
    assert project.script().deployments[-1].versions == ((first.id, 100.0),)


def test_a_forbidden_binding_stops_wrangler_with_our_code_and_every_reason(
    project: Project,
) -> None:
    project.configure(
        extra=(
            '  "kv_namespaces": [{"binding": "CACHE", "id": "' + "f" * 32 + '"}],\n'
            '  "logpush": true,\n'
        )
    )
    run, calls = project.wrangler("deploy")
    assert run.returncode != 0
    assert "[code: 19062]" in run.output, run.output
    assert "CACHE" in run.output
    assert "logpush" in run.output
    assert project.stack.emulator.workers.script(KEY) is None
    # The session and the asset uploads went through; the refused upload never left.
    assert not [call for call in calls if call.method == "PUT"]


def test_a_script_outside_the_team_stops_wrangler_before_cloudflare(project: Project) -> None:
    project.configure(name="docs")
    run, calls = project.wrangler("deploy")
    assert run.returncode != 0
    assert "[code: 19011]" in run.output, run.output
    assert "may not use script 'docs'" in run.output
    assert calls == []


def test_wrangler_retries_a_short_retry_after_and_fails_fast_on_a_long_one(
    project: Project,
) -> None:
    # Cloudflare limits the org token for a second: the gateway pauses and answers 429 19021
    # with Retry-After 1, which wrangler waits out and retries.
    project.stack.emulator.inject_fault(
        Fault(
            status=429, headers={"Retry-After": "1"}, count=3, path_suffix="/assets-upload-session"
        )
    )
    run, _calls = project.wrangler("deploy")
    assert run.returncode == 0, run.output
    assert 'Received a "Retry-After" header' in run.output
    # The team's hourly deploys are spent: 429 19063 with a Retry-After past wrangler's 60 s.
    policy = demo_policy()
    policy["teams"]["web"]["quotas"]["deploys_per_hour"] = 2  # the deploy above took 1
    project.stack.publish_policy(policy)
    (project.root / "public" / "page-1.html").write_text("<h1>page 1, edited</h1>\n")
    run, calls = project.wrangler("deploy")
    assert run.returncode != 0
    assert "[code: 19063]" in run.output, run.output
    assert not [
        call for call in calls if call.path.endswith("/deployments") and call.method == "POST"
    ]
