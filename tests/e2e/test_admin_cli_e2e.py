"""`assets-gateway admin` end to end: the console script's `main`, in process, signing with the
demo identities' keys from the environment (the standard credential chain) or a profile, over
real HTTP to the local stack's SigV4 front and the admin door behind it.

The stack's functions run in this process and were built when it started (their boto3 clients
hold the stack's own `local` keys and its AWS_ENDPOINT_URL), so a test only swaps the signing keys
for the CLI; AWS_ENDPOINT_URL is left alone (the CLI calls no AWS service, it only signs)."""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest
import yaml

from assets_gateway_client.cli import main
from gateway_local import demo
from gateway_local.api_front import LocalIdentity
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_CI, PLATFORM_ADMIN, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack
from helpers import in_one_window, manifest_of, signed_client

Admin = Callable[..., tuple[int, str, str]]
SignAs = Callable[[LocalIdentity], None]


@pytest.fixture
def sign_as(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> SignAs:
    """The CLI's environment: the gateway URL and one identity's keys (the platform admin's
    unless a test switches); monkeypatch restores the stack's own values afterwards."""
    monkeypatch.setenv("ASSETS_GATEWAY_URL", stack.base_url)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def use(identity: LocalIdentity) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", identity.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", identity.secret_access_key)

    use(PLATFORM_ADMIN)
    return use


class ThisThreadOnly(io.TextIOBase):
    """A stand-in for sys.stdout or sys.stderr that keeps what this thread writes and passes the
    rest on: the stack's functions serve requests on other threads of this process, and their
    log lines and metrics go to stdout too."""

    def __init__(self, others: TextIO) -> None:
        self.kept = io.StringIO()
        self._others = others
        self._thread = threading.get_ident()

    def write(self, text: str) -> int:
        if threading.get_ident() == self._thread:
            return self.kept.write(text)
        return self._others.write(text)

    def flush(self) -> None:
        self._others.flush()


@pytest.fixture
def admin(sign_as: SignAs) -> Admin:
    """Run `assets-gateway admin ARGS...` in process: exit status, stdout, stderr."""

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = ThisThreadOnly(sys.stdout), ThisThreadOnly(sys.stderr)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            patch.setattr(sys, "stderr", err)
            code = main(["admin", *argv])
        return code, out.kept.getvalue(), err.kept.getvalue()

    return run


def session_url(stack: LocalStack) -> str:
    account = f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}"
    return f"{account}/workers/scripts/{WEB_SCRIPT}/assets-upload-session"


def web_session(stack: LocalStack) -> httpx.Response:
    """A session request by the web team through the session door."""
    with signed_client(WEB_DEPLOYER) as web:
        return web.post(
            session_url(stack), json={"manifest": manifest_of({"/index.html": b"<h1>hi</h1>"})}
        )


def current_version(admin: Admin) -> int:
    code, out, err = admin("policy", "get", "--json")
    assert code == 0, err
    version: int = json.loads(out)["version"]
    return version


def write_policy(path: Path, policy: dict[str, Any]) -> Path:
    path.write_text(
        "# written by hand: the docs team may send two files at most\n"
        + yaml.safe_dump(policy, sort_keys=False),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def small_docs_policy(tmp_path: Path) -> Path:
    policy = demo.demo_policy()
    policy["teams"]["docs"]["max_entries"] = 2
    return write_policy(tmp_path / "policy.yaml", policy)


def test_publish_a_yaml_file_then_the_gateway_decides_by_it(
    admin: Admin, small_docs_policy: Path
) -> None:
    # Given the current version
    before = current_version(admin)
    # When an admin publishes the YAML file
    code, out, err = admin(
        "policy", "publish", str(small_docs_policy), "--reason", "docs: two files at most"
    )
    # Then it is the next version, and it is what the gateway serves and decides by
    assert code == 0, err
    assert f"published policy version {before + 1}" in out
    assert f"replacing the current version {before}" in err
    code, out, err = admin("policy", "get", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["teams"]["docs"]["max_entries"] == 2
    code, out, err = admin(
        "explain", "--principal", DOCS_CI.principal_arn, "--account", DEMO_ACCOUNT_ID,
        "--script", "docs", "--entries", "3", "--bytes", "30", "--json",
    )  # fmt: skip
    assert code == 1, err
    decision = json.loads(out)
    assert decision["allowed"] is False
    assert decision["policy_version"] == before + 1
    # And the history lists it with its reason
    code, out, err = admin("policy", "versions", "--limit", "5")
    assert code == 0, err
    newest = out.splitlines()[1]
    assert newest.startswith(f"{before + 1} (current)")
    assert "docs: two files at most" in newest
    assert PLATFORM_ADMIN.principal_arn in newest


def test_a_publish_over_a_stale_version_is_refused(admin: Admin, small_docs_policy: Path) -> None:
    stale = current_version(admin) - 1
    code, out, err = admin(
        "policy", "publish", str(small_docs_policy), "--reason", "late", "--if-match", str(stale)
    )
    assert code == 1
    assert out == ""
    assert "HTTP 409" in err
    assert "19052" in err
    assert current_version(admin) == stale + 1  # nothing published


def test_an_invalid_policy_is_refused_with_pointers_into_the_file(
    admin: Admin, tmp_path: Path
) -> None:
    policy = demo.demo_policy()
    policy["teams"]["docs"]["accounts"] = ["not-an-account"]
    path = write_policy(tmp_path / "invalid.yaml", policy)
    line = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if "not-an-account" in text
    )
    before = current_version(admin)
    for command in (["validate"], ["publish", "--reason", "broken"]):
        code, out, err = admin("policy", command[0], str(path), *command[1:])
        assert code == 1
        assert out == ""
        assert "HTTP 400" in err
        assert "19051" in err
        assert f"/policy/teams/docs/accounts/0; {path} line {line})" in err
    assert current_version(admin) == before  # nothing published


def test_validate_a_good_file(admin: Admin, small_docs_policy: Path) -> None:
    code, out, err = admin("policy", "validate", str(small_docs_policy))
    assert code == 0, err
    assert out.startswith("policy is valid")
    assert "docs" in out  # the change against the current policy


def test_rollback_publishes_an_earlier_version_again(admin: Admin, small_docs_policy: Path) -> None:
    original = current_version(admin)
    assert admin("policy", "publish", str(small_docs_policy), "--reason", "tighten")[0] == 0
    code, out, err = admin("policy", "rollback", str(original), "--reason", "too tight")
    assert code == 0, err
    assert f"published policy version {original + 2}" in out
    code, out, err = admin("policy", "get", "--json")
    assert json.loads(out)["reason"] == f"rollback to version {original}: too tight"
    assert json.loads(out)["policy"]["teams"]["docs"]["max_entries"] == 1_000


def test_explain_allowed_and_refused(admin: Admin, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"manifest": manifest_of({"/index.html": b"x"})}))
    code, out, err = admin(
        "explain", "--principal", WEB_DEPLOYER.principal_arn, "--account", DEMO_ACCOUNT_ID,
        "--script", WEB_SCRIPT, "--manifest", str(manifest),
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("ALLOWED: team web, policy version")
    assert "sessions-minute" in out  # the quota table
    # The team's effective deploy rules, printed with its other limits.
    assert "\n    deploy:\n      bindings:\n      - assets\n" in out
    assert "\n      workers_dev: true\n" in out  # the demo's web team may enable workers.dev
    assert "\n      deploys-hour: " in out
    code, out, err = admin(
        "explain", "--principal", DOCS_CI.principal_arn, "--account", DEMO_ACCOUNT_ID,
        "--script", WEB_SCRIPT, "--entries", "1", "--bytes", "1", "--path", "/secret.txt",
    )  # fmt: skip
    assert code == 1, err
    assert out.startswith("REFUSED: team docs")
    assert "19011" in out
    assert "web-storefront" in out


def test_usage_shows_what_the_team_used(admin: Admin, stack: LocalStack) -> None:
    in_one_window(lambda: usage_shows_what_the_team_used(admin, stack))


def usage_shows_what_the_team_used(admin: Admin, stack: LocalStack) -> None:
    stack.clear_quotas()
    assert web_session(stack).status_code == 200
    code, out, err = admin("usage", "--team", "web", "--json")
    assert code == 0, err
    result = json.loads(out)
    (web,) = result["teams"]
    assert web["team"] == "web"
    used = {quota["name"]: quota["used"] for quota in web["quotas"]}
    assert used["sessions-minute"] == 1
    assert result["cloudflare_budget"]["used"] >= 1
    code, out, err = admin("usage")
    assert code == 0, err
    assert any(line.split()[:2] == ["web", "sessions-minute"] for line in out.splitlines())
    assert "(org)" in out


def test_grant_and_reset_usage(admin: Admin, stack: LocalStack) -> None:
    code, out, err = admin(
        "grant", "web", "--reason", "launch day", "--hours", "2", "--sessions-per-minute", "70"
    )
    assert code == 0, err
    assert out.startswith("grant recorded for team web")
    limits = {
        q["name"]: q["limit"]
        for q in json.loads(admin("usage", "--team", "web", "--json")[1])["teams"][0]["quotas"]
    }
    assert limits["sessions-minute"] == 30 + 70
    assert web_session(stack).status_code == 200
    code, out, err = admin("reset-usage", "web", "--window", "minute", "--reason", "test")
    assert code == 0, err
    assert "sessions-minute" in out.splitlines()[0]
    quotas = json.loads(admin("usage", "--team", "web", "--json")[1])["teams"][0]["quotas"]
    assert {q["name"]: q["used"] for q in quotas}["sessions-minute"] == 0


@pytest.fixture
def resume_web(admin: Admin) -> Iterator[None]:
    yield
    admin("resume", "web", "--reason", "test cleanup")


@pytest.mark.usefixtures("resume_web")
def test_suspend_refuses_the_team_until_it_is_resumed(admin: Admin, stack: LocalStack) -> None:
    # When an admin suspends the web team
    code, out, err = admin("suspend", "web", "--reason", "incident 42")
    assert code == 0, err
    assert out.startswith("team web is suspended")
    # Then the session door refuses its callers with 19010 (the stack's policy cache is 0 s)
    answer = web_session(stack)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == 19010
    # And after resuming, the team is served again
    code, out, err = admin("resume", "web", "--reason", "incident 42 closed")
    assert code == 0, err
    assert out.startswith("team web is not suspended")
    assert web_session(stack).status_code == 200


def test_a_change_that_changes_nothing_publishes_nothing_and_says_so(
    admin: Admin, small_docs_policy: Path
) -> None:
    # Given a policy just published from a file
    code, _, err = admin("policy", "publish", str(small_docs_policy), "--reason", "first")
    assert code == 0, err
    version = current_version(admin)
    # When the same file is published again, and an active team is resumed
    code, out, err = admin("policy", "publish", str(small_docs_policy), "--reason", "again")
    assert code == 0, err
    assert out.startswith(f"unchanged: version {version} is already the current policy"), out
    code, out, err = admin("resume", "web", "--reason", "nothing to resume")
    assert code == 0, err
    assert out.startswith("unchanged: team web is already not suspended"), out
    assert f"in version {version}; no new version published" in out
    # Then no version was published
    assert current_version(admin) == version


@pytest.fixture
def release_kill_switch(admin: Admin) -> Iterator[None]:
    yield
    admin("kill-switch", "release", "--reason", "test cleanup")


@pytest.mark.usefixtures("release_kill_switch")
def test_the_kill_switch_stops_the_session_door_not_the_admin_door(
    admin: Admin, stack: LocalStack
) -> None:
    code, out, err = admin("kill-switch", "engage", "--reason", "incident 43")
    assert code == 0, err
    assert out.startswith("kill switch ENGAGED")
    answer = web_session(stack)
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["code"] == 19013
    assert admin("usage")[0] == 0
    code, out, err = admin("kill-switch", "release", "--reason", "incident 43 closed")
    assert code == 0, err
    assert out.startswith("kill switch released")
    assert web_session(stack).status_code == 200


def test_a_team_caller_is_refused_with_19050(admin: Admin, sign_as: SignAs) -> None:
    sign_as(WEB_DEPLOYER)
    code, out, err = admin("usage")
    assert code == 1
    assert out == ""
    assert "HTTP 403" in err
    assert "19050" in err
    assert "hint: only the org's admins" in err


def test_signing_with_a_named_profile(
    admin: Admin, sign_as: SignAs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Environment keys of a team caller, but an explicit profile wins (botocore drops the
    # environment from the chain when a profile is named).
    sign_as(WEB_DEPLOYER)
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[platform-admin]\n"
        f"aws_access_key_id = {PLATFORM_ADMIN.access_key_id}\n"
        f"aws_secret_access_key = {PLATFORM_ADMIN.secret_access_key}\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile platform-admin]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    code, out, err = admin("usage", "--profile", "platform-admin", "--region", "us-east-1")
    assert code == 0, err
    assert out.startswith("TEAM")
