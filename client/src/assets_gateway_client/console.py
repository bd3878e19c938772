"""What `assets-gateway upload` and `assets-gateway admin` share on the console: the options that
say where the gateway is and who signs, what is said to people (stderr), the exit statuses."""

from __future__ import annotations

import argparse
import sys

from assets_gateway_client.environment import GATEWAY_URL_ENV

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Console",
    "UsageError",
    "add_connection_options",
]

# 0 done; 1 refused or failed; 2 a usage or local problem; 130 interrupted (Ctrl-C).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Console:
    """stderr: notes for people (silenced by --quiet) and errors (never silenced)."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet

    def info(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    @staticmethod
    def error(text: str) -> None:
        print(f"assets-gateway: error: {text}", file=sys.stderr, flush=True)


class UsageError(Exception):
    """A problem with the command line or a local file, found before any call: exit 2."""


def add_connection_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--gateway`, `--profile` and `--region`: where the gateway is and who signs for it."""
    parser.add_argument(
        "--gateway",
        metavar="URL",
        help=f"the gateway's base URL, ending with /client/v4 (default: ${GATEWAY_URL_ENV})",
    )
    parser.add_argument("--profile", metavar="P", help="AWS profile to sign with")
    parser.add_argument(
        "--region",
        metavar="R",
        help="AWS region of the gateway (default: from its URL, else the profile's, else "
        "$AWS_REGION)",
    )
