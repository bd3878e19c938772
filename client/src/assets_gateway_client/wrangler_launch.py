"""How `assets-gateway wrangler` starts wrangler, apart from any I/O but the file lookups (pure):
which wrangler, with which environment, and what its exit means.

Which wrangler: `--wrangler PATH`; else the project's own, `node_modules/.bin/wrangler` in the
current folder or the nearest one above it (what `npx wrangler` would run); else `wrangler` on
PATH; else `npx --yes wrangler` (npm fetches it). The environment is the caller's, with
wrangler's API pointed at the signing proxy, a placeholder token (the proxy drops it), and none of
the caller's Cloudflare credentials: wrangler prefers a global API key to a token, and would send
a real token to the proxy, which has no use for it.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assets_gateway_client.answers import SetupError

__all__ = [
    "BASE_URL_VARIABLE",
    "FORWARDED_SIGNALS",
    "PLACEHOLDER_TOKEN",
    "Wrangler",
    "exit_code",
    "find_wrangler",
    "wrangler_environment",
]

BASE_URL_VARIABLE = "CLOUDFLARE_API_BASE_URL"  # what wrangler reads its API base URL from
TOKEN_VARIABLE = "CLOUDFLARE_API_TOKEN"  # noqa: S105 (a variable name)
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# wrangler needs some token to send; this one says what it is wherever it shows up.
PLACEHOLDER_TOKEN = "assets-gateway-placeholder-not-a-cloudflare-token"  # noqa: S105
# What wrangler reads credentials (or its API's URL) from, the deprecated CF_* names included.
_CLOUDFLARE_CREDENTIALS = (
    TOKEN_VARIABLE,
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CF_API_TOKEN",
    "CF_API_KEY",
    "CF_EMAIL",
    "CF_API_BASE_URL",
)


@dataclass(frozen=True)
class Wrangler:
    """The command line that runs wrangler (its arguments follow), and where it was found."""

    command: tuple[str, ...]
    origin: str  # for the one line said on stderr

    def argv(self, arguments: tuple[str, ...] | list[str]) -> list[str]:
        return [*self.command, *arguments]


def _project_wrangler(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "node_modules" / ".bin" / "wrangler"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_wrangler(explicit: str | None, *, cwd: Path, path: str | None) -> Wrangler:
    """The wrangler to run (see the module's docstring for the order); SetupError when none.
    `path` is the PATH searched for `wrangler` and `npx`."""
    if explicit is not None:
        given = Path(explicit)
        if not (given.is_file() and os.access(given, os.X_OK)):
            raise SetupError(f"--wrangler {explicit}: no executable file there")
        return Wrangler((str(given),), f"{given} (--wrangler)")
    project = _project_wrangler(cwd.resolve())
    if project is not None:
        return Wrangler((str(project),), f"{project} (the project's)")
    on_path = shutil.which("wrangler", path=path)
    if on_path is not None:
        return Wrangler((on_path,), f"{on_path} (on PATH)")
    npx = shutil.which("npx", path=path)
    if npx is not None:
        return Wrangler((npx, "--yes", "wrangler"), f"{npx} --yes wrangler (none installed)")
    raise SetupError(
        "no wrangler found: not in ./node_modules/.bin (nor above), not on PATH, and no npx to "
        "fetch it; install it (npm install --save-dev wrangler) or pass --wrangler PATH"
    )


def wrangler_environment(environ: Mapping[str, str], base_url: str) -> dict[str, str]:
    """wrangler's environment: `environ` without Cloudflare credentials, its API at `base_url`
    (the proxy's), and the placeholder token."""
    kept = {
        name: value
        for name, value in environ.items()
        if name not in _CLOUDFLARE_CREDENTIALS and name != BASE_URL_VARIABLE
    }
    return {**kept, BASE_URL_VARIABLE: base_url, TOKEN_VARIABLE: PLACEHOLDER_TOKEN}


def exit_code(returncode: int) -> int:
    """The shell's convention: a process killed by signal N exits 128 + N."""
    return 128 + (-returncode) if returncode < 0 else returncode
