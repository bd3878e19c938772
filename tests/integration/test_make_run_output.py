"""What `make run` shows: the banner, then one readable line per request (method, path, the
caller's team, status, code, ms), never a JSON record or the Cloudflare token; the functions'
JSON records land in one log file per function under GATEWAY_LOCAL_DIR/logs.

The stack runs as `make run` runs it (`python -m gateway_local`, its own process, its real
stdout), on a free port and with its files in a temporary directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    OUTSIDER,
    PLATFORM_ADMIN,
    WEB_DEPLOYER,
    WEB_SCRIPT,
)
from helpers import HTTP_TIMEOUT, manifest_of, signed_client

BANNER_END = "Ctrl-C stops everything."
PUT_DOCS_MANIFEST_FROM_STDIN = ("-", "--team", "docs", "--script", "docs")
# The stack draws a fresh Cloudflare token per run, always with this prefix (stack.py).
TOKEN_PREFIX = "local-cf-"
LINE = re.compile(
    r"(?P<method>[A-Z0-9]+) (?P<path>\S+)  (?P<who>team=\S+|admin)  (?P<status>\d{3})  "
    r"(?P<code>\d+|-)  (?P<ms>\d+) ms"
)


@dataclass
class Run:
    process: subprocess.Popen[str]
    local_dir: Path
    env: dict[str, str]
    base_url: str
    banner: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    local_dir = tmp_path_factory.mktemp("local")
    # A clean environment: nothing of this test process's own stack (AWS endpoint, settings).
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_"))
    }
    env |= {
        "GATEWAY_PORT": "0",
        "GATEWAY_LOCAL_DIR": str(local_dir),
        "PYTHONPATH": os.pathsep.join(
            str(REPO_ROOT / part) for part in ("layers/gateway", "client/src", "local")
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway_local"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:  # blocks until the stack prints; ends if it dies
        banner.append(line)
        if line.strip() == BANNER_END:
            break
    assert banner[-1:] == [BANNER_END + "\n"], "".join(banner)
    stack = json.loads((local_dir / "stack.json").read_text())
    try:
        yield Run(process, local_dir, env, stack["base_url"], "".join(banner))
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def session_url(base_url: str, script: str = WEB_SCRIPT) -> str:
    return f"{base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{script}/assets-upload-session"


def banner_block(banner: str, first: str, end: str) -> str:
    """The shell lines of the banner from the line after the one holding `first` to the one
    starting with `end`, as one script."""
    lines = banner.splitlines()
    start = next(i for i, line in enumerate(lines) if first in line) + 1
    stop = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(end))
    return "\n".join(line.strip() for line in lines[start:stop])


def log_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_terminal_shows_one_line_per_request_and_the_logs_keep_the_records(run: Run) -> None:
    base = run.base_url
    manifest = {"manifest": manifest_of({"/index.html": b"<h1>hello</h1>"})}
    docs_only = {"manifest": manifest_of({"/index.html": b"x"})}
    with (
        signed_client(WEB_DEPLOYER) as web,
        signed_client(DOCS_CI) as docs,
        signed_client(OUTSIDER) as outsider,
        signed_client(PLATFORM_ADMIN) as admin,
        httpx.Client(timeout=HTTP_TIMEOUT) as unsigned,
    ):
        answers = [
            web.post(session_url(base), json=manifest),  # allowed
            outsider.post(session_url(base), json=manifest),  # in no team: 19010
            docs.post(session_url(base), json=docs_only),  # docs may not use web-*: 19011
            unsigned.post(session_url(base), json=manifest),  # API Gateway refuses: 10000
            admin.get(base.removesuffix("/client/v4") + "/admin/policy"),  # the admin door
            web.get(f"{base}/gateway/usage"),  # no audit: the answer names the team
        ]
    assert [answer.status_code for answer in answers] == [200, 403, 403, 403, 200, 200]
    # The S3 door, as the README drops a manifest: put_manifest waits for its result.
    dropped = subprocess.run(
        [sys.executable, "-m", "gateway_local.put_manifest", *PUT_DOCS_MANIFEST_FROM_STDIN],
        input=json.dumps(docs_only),
        cwd=REPO_ROOT,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT,
        check=False,
    )
    assert dropped.returncode == 0, dropped.stderr
    assert json.loads(dropped.stdout)["success"] is True

    # The manifest's line comes from the poller's thread once its batch ends: read up to it.
    assert run.process.stdout is not None
    shown: list[str] = []
    for line in run.process.stdout:  # blocks until the stack prints; ends if it dies
        shown.append(line)
        if line.startswith("S3 "):
            break
    # The banner's deploy, run as printed: a static site through the deploy door.
    deployed = subprocess.run(
        ["bash", "-c", banner_block(run.banner, "Deploy a Worker", "# with Node")],
        cwd=REPO_ROOT,
        env={**run.env, "TMPDIR": str(run.local_dir)},
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT,
        check=False,
    )
    assert deployed.returncode == 0, deployed.stderr
    for line in run.process.stdout:  # the deploy's lines, up to the Worker's upload
        shown.append(line)
        if line.startswith("PUT "):
            break
    run.process.send_signal(signal.SIGINT)
    rest, errors = run.process.communicate(timeout=HTTP_TIMEOUT)
    assert run.process.returncode == 0, errors
    rest = "".join(shown) + rest
    lines = [line for line in rest.splitlines() if line and line != "stopping…"]
    manifest_lines = [line for line in lines if line.startswith("S3 ")]
    assert len(manifest_lines) == 1, rest
    assert LINE.fullmatch(manifest_lines[0])
    assert manifest_lines[0].startswith(
        f"S3 incoming/docs/{DEMO_ACCOUNT_ID[:4]}…/docs/…  team=docs  200  -  "
    )
    request_lines = [line for line in lines if not line.startswith("S3 ")]

    assert len(request_lines) == len(answers) + 3, rest
    parsed = [LINE.fullmatch(line) for line in request_lines]
    assert all(parsed), request_lines
    seen = [(m["method"], m["who"], int(m["status"]), m["code"]) for m in parsed if m]
    assert seen == [
        ("POST", "team=web", 200, "-"),
        ("POST", "team=-", 403, "19010"),
        ("POST", "team=docs", 403, "19011"),
        ("POST", "team=-", 403, "10000"),
        ("GET", "admin", 200, "-"),
        ("GET", "team=web", 200, "-"),
        # the banner's deploy: a new Worker (Cloudflare's 10007), its session, the Worker
        ("GET", "team=web", 404, "10007"),
        ("POST", "team=web", 200, "-"),
        ("PUT", "team=web", 200, "-"),
    ]
    first = parsed[0]
    assert first is not None
    # The account id is shortened; the rest of the path is as requested.
    assert first["path"] == (
        f"/client/v4/accounts/{DEMO_ACCOUNT_ID[:4]}…/workers/scripts/{WEB_SCRIPT}"
        "/assets-upload-session"
    )

    # The terminal: no JSON record, no token, on either stream.
    for line in (run.banner + rest + errors).splitlines():
        assert not line.lstrip().startswith("{"), line
    assert TOKEN_PREFIX not in run.banner + rest + errors

    # The logs: one JSON file per function, each line a record; the audit records are there.
    logs = run.local_dir / "logs"
    session_records = log_records(logs / "session-api.log")
    admin_records = log_records(logs / "admin-api.log")
    manifest_records = log_records(logs / "manifest-events.log")
    assert [r["audit"]["door"] for r in manifest_records if "audit" in r] == ["s3"]
    audits = [record["audit"] for record in session_records if "audit" in record]
    assert [(a["team"], a["status"], a["code"]) for a in audits] == [
        ("web", 200, None),
        (None, 403, 19010),
        ("docs", 403, 19011),
        ("web", 200, None),  # the banner's deploy: its assets session
    ]
    # Powertools' records name their function; the EMF metrics (no level) are there too.
    assert {r["function_name"] for r in session_records if "level" in r} == {"session-api"}
    assert any("audit" in record and record["audit"]["door"] == "admin" for record in admin_records)
    deploy_audits = [r["audit"] for r in log_records(logs / "deploy-api.log") if "audit" in r]
    assert [(a["team"], a["route"].split()[0], a["status"]) for a in deploy_audits] == [
        ("web", "GET", 404),
        ("web", "PUT", 200),
    ]
    assert any("_aws" in record for record in session_records)
    for path in logs.iterdir():
        assert TOKEN_PREFIX not in path.read_text(), path
