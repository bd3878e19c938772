"""`assets-gateway proxy`: the signing proxy (`proxy`) on 127.0.0.1, for any Cloudflare API client.

    assets-gateway proxy [--port N] [--gateway URL] [--cloudflare-api URL] [--profile P]
        [--region R]

stdout carries one line, `CLOUDFLARE_API_BASE_URL=http://127.0.0.1:PORT/client/v4`, as soon as
the proxy listens, for a script to read; stderr one line per request. It runs until Ctrl-C or
SIGTERM and then exits 0; 2 when it cannot start (no gateway URL, no AWS credentials, the port
taken).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING

from assets_gateway_client import console, environment
from assets_gateway_client.wrangler_launch import BASE_URL_VARIABLE

if TYPE_CHECKING:
    from assets_gateway_client.proxy import ProxyConfig

__all__ = ["add_proxy_parser", "proxy_config", "run_proxy"]


_DESCRIPTION = (
    "Listen on 127.0.0.1 and forward Cloudflare API calls to the gateway, signed with your AWS "
    "identity (the client's own token is a placeholder and is dropped); asset uploads, which "
    f"carry the session's JWT, go straight to Cloudflare. Prints {BASE_URL_VARIABLE}=... on "
    "stdout; runs until Ctrl-C or SIGTERM."
)


def add_proxy_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `proxy` subcommand of the console script."""
    help_text = "run a local signing proxy for wrangler, the Cloudflare SDKs or curl"
    proxy = commands.add_parser("proxy", help=help_text, description=_DESCRIPTION)
    proxy.add_argument(
        "--port", metavar="N", type=int, default=0, help="port to listen on (default: any free)"
    )
    console.add_cloudflare_api_option(proxy)
    console.add_connection_options(proxy)
    proxy.set_defaults(run=run_proxy)


def run_proxy(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 0); 2 when the proxy cannot start."""
    return console.exit_status(
        lambda: _proxy(args, console.Console()), failures=(), explain=str, interrupted="interrupted"
    )


def proxy_config(
    args: argparse.Namespace, *, port: int, log: Callable[[str], None] | None = None
) -> ProxyConfig:
    """The proxy that the connection options (`add_connection_options`, `--cloudflare-api`)
    describe, on `port` (0: any free), its lines to `log` (default: stderr). SetupError when
    there is no gateway URL or no AWS credentials."""
    # The server's modules load only for the commands that serve: `upload` starts no slower.
    from assets_gateway_client.proxy import ProxyConfig  # noqa: PLC0415

    gateway_url, auth = console.gateway_connection(args)
    config = ProxyConfig(
        gateway_url=gateway_url,
        cloudflare_api_url=environment.cloudflare_api_url(args.cloudflare_api),
        auth=auth,
        port=port,
    )
    return config if log is None else replace(config, log=log)


def _proxy(args: argparse.Namespace, people: console.Console) -> int:
    from assets_gateway_client.proxy import running_proxy  # noqa: PLC0415

    if not 0 <= args.port <= 65535:
        raise console.UsageError(f"--port must be between 0 and 65535 (got {args.port})")
    config = proxy_config(args, port=args.port)
    gateway_url = config.gateway_url
    stop = threading.Event()

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with contextlib.ExitStack() as serving:
            try:
                base_url = serving.enter_context(running_proxy(config))
            except OSError as error:
                message = f"cannot listen on 127.0.0.1:{args.port}: {error}"
                raise console.UsageError(message) from error
            print(f"{BASE_URL_VARIABLE}={base_url}", flush=True)
            people.info(
                f"assets-gateway proxy: listening on {base_url}, signing for {gateway_url}; "
                f"uploads go to {config.cloudflare_api_url}. Give clients any placeholder "
                "token (CLOUDFLARE_API_TOKEN=placeholder). Ctrl-C stops."
            )
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    people.info("assets-gateway proxy: stopped")
    return console.EXIT_OK
