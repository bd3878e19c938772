"""Run the real, pinned wrangler CLI (package-lock.json; `make test` installs it) against a local
Cloudflare API, kept off the internet.

wrangler takes its API from `CLOUDFLARE_API_BASE_URL` and its token from `CLOUDFLARE_API_TOKEN`.
Metrics, error reports and the banner's npm update check are switched off, and every other
outbound request is sent through `HTTP(S)_PROXY`, pointed at a `ConnectionTrap` on loopback that
counts who tried (`NO_PROXY=127.0.0.1` lets the calls to the local API through): a test asserts
the trap saw nothing. `node_modules/.bin` goes first on PATH, so the Node.js 22 that wrangler needs
(installed from the registry with it) runs it, whatever node the machine has.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT, Popen

REPO = Path(__file__).resolve().parent.parent
NODE_BIN = REPO / "node_modules" / ".bin"
WRANGLER = NODE_BIN / "wrangler"
# A bound against a hung CLI only, never a duration a test relies on.
WRANGLER_HANG_LIMIT_S = 600.0


class ConnectionTrap:
    """A loopback listener that accepts and drops every connection, noting the request line
    each one opened with (`CONNECT host:443 HTTP/1.1` for HTTPS): the proxy every off-loopback
    request of wrangler is sent to."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._thread = threading.Thread(target=self._accept, name="connection-trap", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    @property
    def requests(self) -> list[str]:
        """The first line each caught connection sent (empty if it sent none)."""
        with self._lock:
            return list(self._requests)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _address = self._socket.accept()
            except OSError:  # closed by stop()
                return
            with connection:
                # A proxy client sends its request line at once; the timeout only bounds a
                # client that connects and says nothing.
                connection.settimeout(10)
                try:
                    first = connection.recv(1024).split(b"\r\n", 1)[0]
                except OSError:
                    first = b""
            with self._lock:
                self._requests.append(first.decode("latin-1"))

    def close(self) -> None:
        self._stopped.set()
        # accept() does not wake on close() alone on Linux: shut the socket down first.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)


def offline_env(
    *, api_base_url: str, api_token: str, account_id: str, home: Path, proxy_url: str
) -> dict[str, str]:
    """The whole environment of a wrangler run: nothing inherited but the system PATH."""
    return {
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TMPDIR": str(home),
        "CLOUDFLARE_API_BASE_URL": api_base_url,
        "CLOUDFLARE_API_TOKEN": api_token,
        "CLOUDFLARE_ACCOUNT_ID": account_id,
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_SEND_ERROR_REPORTS": "false",
        "WRANGLER_HIDE_BANNER": "true",  # the banner is what runs the npm update check
        "DO_NOT_TRACK": "1",
        "NO_UPDATE_NOTIFIER": "1",
        "CI": "true",  # never prompt
        "NO_COLOR": "1",
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }


@dataclass(frozen=True)
class WranglerRun:
    args: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr, interleaved as wrangler wrote them


def run_wrangler(
    args: list[str], *, cwd: Path, env: dict[str, str], launcher: Sequence[str] = ()
) -> WranglerRun:
    """Run wrangler to its end in its own process group, and leave none of its processes
    behind (esbuild's service included), whatever happens. `launcher`: the command that runs
    it (`assets-gateway wrangler --wrangler PATH --`), which then gets wrangler's path as well."""
    if not WRANGLER.exists():
        raise FileNotFoundError(f"{WRANGLER} is missing: run `npm ci` (make test does)")
    command = [*launcher, *args] if launcher else [str(WRANGLER), *args]
    # Its own session: one killpg ends wrangler and every process it started.
    process = Popen(
        command, cwd=cwd, env=env, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=WRANGLER_HANG_LIMIT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group has already ended
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return WranglerRun(tuple(args), process.returncode, output.decode("utf-8", "replace"))
