"""Which wrangler `assets-gateway wrangler` runs, with which environment, and what its exit
status becomes: the project's own before PATH's, PATH's before npx, npx last."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from assets_gateway_client.answers import SetupError
from assets_gateway_client.wrangler_launch import (
    PLACEHOLDER_TOKEN,
    exit_code,
    find_wrangler,
    wrangler_environment,
)


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A project nested two folders below its node_modules, and a bin folder with wrangler and
    npx, and one with npx only."""
    project = tmp_path / "repo" / "apps" / "site"
    project.mkdir(parents=True)
    return {
        "project": project,
        "installed": executable(tmp_path / "repo" / "node_modules" / ".bin" / "wrangler"),
        "path_wrangler": executable(tmp_path / "bin" / "wrangler"),
        "path_npx": executable(tmp_path / "bin" / "npx"),
        "npx_only": executable(tmp_path / "npx-bin" / "npx"),
        "explicit": executable(tmp_path / "tools" / "my-wrangler"),
    }


def test_an_explicit_wrangler_comes_first(layout: dict[str, Path]) -> None:
    found = find_wrangler(
        str(layout["explicit"]), cwd=layout["project"], path=str(layout["path_wrangler"].parent)
    )
    assert found.command == (str(layout["explicit"]),)
    assert found.argv(["deploy", "--dry-run"]) == [str(layout["explicit"]), "deploy", "--dry-run"]


def test_the_projects_own_wrangler_is_found_in_a_folder_above(layout: dict[str, Path]) -> None:
    found = find_wrangler(None, cwd=layout["project"], path=str(layout["path_wrangler"].parent))
    assert found.command == (str(layout["installed"].resolve()),)
    assert "the project's" in found.origin


def test_without_one_in_the_project_path_wins_over_npx(
    layout: dict[str, Path], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    bins = os.pathsep.join([str(layout["npx_only"].parent), str(layout["path_wrangler"].parent)])
    found = find_wrangler(None, cwd=outside, path=bins)
    assert found.command == (str(layout["path_wrangler"]),)
    assert "on PATH" in found.origin


def test_npx_fetches_it_when_there_is_no_wrangler(layout: dict[str, Path], tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    found = find_wrangler(None, cwd=outside, path=str(layout["npx_only"].parent))
    assert found.command == (str(layout["npx_only"]), "--yes", "wrangler")


def test_no_wrangler_and_no_npx_or_a_bad_path_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="no wrangler found"):
        find_wrangler(None, cwd=tmp_path, path=str(tmp_path))
    not_executable = tmp_path / "wrangler.txt"
    not_executable.write_text("")
    with pytest.raises(SetupError, match="no executable file"):
        find_wrangler(str(not_executable), cwd=tmp_path, path=None)


def test_the_environment_points_at_the_proxy_and_drops_every_cloudflare_credential() -> None:
    caller = {
        "PATH": "/usr/bin",
        "CLOUDFLARE_ACCOUNT_ID": "0123",
        "CLOUDFLARE_API_TOKEN": "real-token",
        "CLOUDFLARE_API_KEY": "global-key",
        "CLOUDFLARE_EMAIL": "me@example.com",
        "CF_API_TOKEN": "legacy-token",
        "CF_API_KEY": "legacy-key",
        "CF_EMAIL": "legacy@example.com",
        "CF_API_BASE_URL": "https://elsewhere.example",
        "CLOUDFLARE_API_BASE_URL": "https://api.cloudflare.com/client/v4",
    }

    env = wrangler_environment(caller, "http://127.0.0.1:5000/client/v4")

    assert env == {
        "PATH": "/usr/bin",
        "CLOUDFLARE_ACCOUNT_ID": "0123",
        "CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:5000/client/v4",
        "CLOUDFLARE_API_TOKEN": PLACEHOLDER_TOKEN,
    }
    assert caller["CLOUDFLARE_API_TOKEN"] == "real-token"  # the caller's own left alone


def test_exit_codes_follow_the_shell() -> None:
    assert exit_code(0) == 0
    assert exit_code(3) == 3
    assert exit_code(-signal.SIGTERM) == 143
    assert exit_code(-signal.SIGINT) == 130
