"""`assets-gateway wrangler`: the team's wrangler, its API calls signed with the caller's AWS
identity through a signing proxy (`proxy`) on an ephemeral 127.0.0.1 port.

    assets-gateway wrangler [--profile P] [--region R] [--gateway URL] [--cloudflare-api URL]
        [--wrangler PATH] [--quiet] -- <wrangler arguments>

wrangler (found as `wrangler_launch` says, named in one line on stderr) inherits this process's
stdin, stdout and stderr, so its output streams through unchanged; the proxy says one line per
call on stderr (`--quiet`: none). SIGTERM, and SIGINT when the terminal has not already sent it to
wrangler too, are passed on to wrangler. The exit status is wrangler's (128 + N when signal N
killed it); 2 when there is no gateway URL, no AWS credentials or no wrangler.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from assets_gateway_client import console
from assets_gateway_client.proxy_command import proxy_config
from assets_gateway_client.wrangler_launch import (
    FORWARDED_SIGNALS,
    exit_code,
    find_wrangler,
    wrangler_environment,
)

__all__ = ["add_wrangler_parser", "run_forwarding_signals", "run_wrangler"]

_DESCRIPTION = (
    "Run wrangler (the project's node_modules/.bin/wrangler, else wrangler on PATH, else npx) "
    "with its Cloudflare API calls signed with your AWS identity by a local proxy and sent to "
    "the gateway: no Cloudflare token needed. Put wrangler's own arguments after `--`."
)


def add_wrangler_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `wrangler` subcommand of the console script."""
    command = commands.add_parser(
        "wrangler",
        help="run wrangler through the gateway (e.g. `assets-gateway wrangler -- deploy`)",
        description=_DESCRIPTION,
    )
    console.add_cloudflare_api_option(command)
    console.add_connection_options(command)
    command.add_argument(
        "--wrangler", metavar="PATH", help="the wrangler executable to run (default: found)"
    )
    command.add_argument(
        "--quiet", "-q", action="store_true", help="no proxy lines on stderr (wrangler's stay)"
    )
    command.add_argument(
        "wrangler_args", nargs="*", metavar="-- ARGS", help="wrangler's arguments, after --"
    )
    command.set_defaults(run=run_wrangler)


def run_wrangler(args: argparse.Namespace) -> int:
    """wrangler's exit status; 2 when it cannot be started."""
    return console.exit_status(
        lambda: _wrangler(args, console.Console(quiet=args.quiet)),
        failures=(),
        explain=str,
        interrupted="interrupted",
    )


def _discard(_line: str) -> None:
    """The proxy's log under --quiet."""


def _wrangler(args: argparse.Namespace, people: console.Console) -> int:
    from assets_gateway_client.proxy import running_proxy  # noqa: PLC0415

    config = proxy_config(args, port=0, log=_discard if args.quiet else None)
    wrangler = find_wrangler(args.wrangler, cwd=Path.cwd(), path=os.environ.get("PATH"))
    with contextlib.ExitStack() as serving:
        try:
            base_url = serving.enter_context(running_proxy(config))
        except OSError as error:
            raise console.UsageError(f"cannot start the signing proxy: {error}") from error
        people.info(
            f"assets-gateway wrangler: running {wrangler.origin}; its API calls go through "
            f"{base_url}, signed for {config.gateway_url}"
        )
        environment = wrangler_environment(os.environ, base_url)
        return run_forwarding_signals(wrangler.argv(args.wrangler_args), environment)


def _terminal_sent_it_too() -> bool:
    """Ctrl-C in a terminal signals the whole foreground process group, wrangler included: a
    second SIGINT from us could cut its own clean-up short."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):  # no terminal (CI, a pipe): nobody else sends it
        return False


def run_forwarding_signals(argv: Sequence[str], environment: dict[str, str]) -> int:
    """Run `argv` with this process's standard streams, passing SIGINT and SIGTERM on to it; its
    exit status (128 + N when signal N killed it)."""
    process: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _terminal_sent_it_too():
            return
        if not process:  # arrived while it was being started: sent once it runs
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            process[0].send_signal(signum)

    previous = {number: signal.signal(number, forward) for number in FORWARDED_SIGNALS}
    try:
        try:
            # The command is the one the caller asked for (wrangler and its arguments).
            process.append(subprocess.Popen(list(argv), env=environment))  # noqa: S603
        except OSError as error:
            raise console.UsageError(f"cannot run {argv[0]}: {error}") from error
        for signum in pending:
            with contextlib.suppress(ProcessLookupError):
                process[0].send_signal(signum)
        return exit_code(process[0].wait())
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
