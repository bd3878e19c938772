"""What `assets-gateway upload` and `assets-gateway admin` share on the console: the options that
say where the gateway is and who signs, what is said to people (stderr), the exit statuses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from assets_gateway_client import environment
from assets_gateway_client.answers import SetupError, UploadError
from assets_gateway_client.environment import (
    CLOUDFLARE_API_URL_ENV,
    DEFAULT_CLOUDFLARE_API_URL,
    GATEWAY_URL_ENV,
)
from assets_gateway_client.manifest_builder import ManifestError
from assets_gateway_client.signing import profile_auth

if TYPE_CHECKING:
    from assets_gateway_client.sigv4 import SigV4Auth

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Console",
    "UsageError",
    "add_cloudflare_api_option",
    "add_connection_options",
    "add_output_options",
    "exit_status",
    "gateway_connection",
    "run_gateway_command",
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


# `--gateway`, `--profile` and `--region`: where the gateway is and who signs for it.
_CONNECTION_OPTIONS = (
    (
        "--gateway",
        "URL",
        f"the gateway's base URL, ending with /client/v4 (default: ${GATEWAY_URL_ENV})",
    ),
    ("--profile", "P", "AWS profile to sign with"),
    (
        "--region",
        "R",
        "AWS region of the gateway (default: from its URL, else the profile's, else $AWS_REGION)",
    ),
)


def add_connection_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    for flag, metavar, text in _CONNECTION_OPTIONS:
        parser.add_argument(flag, metavar=metavar, help=text)


def gateway_connection(args: argparse.Namespace) -> tuple[str, SigV4Auth]:
    """The gateway's URL and the signer for it that the connection options say; SetupError when
    there is no URL or no AWS credentials."""
    gateway_url = environment.gateway_url(args.gateway)
    return gateway_url, profile_auth(gateway_url, profile=args.profile, region=args.region)


def add_cloudflare_api_option(parser: argparse.ArgumentParser) -> None:
    """`--cloudflare-api`: where asset uploads go, straight to Cloudflare with the session JWT."""
    parser.add_argument(
        "--cloudflare-api",
        metavar="URL",
        help=f"where files are uploaded (default: ${CLOUDFLARE_API_URL_ENV}, else "
        f"{DEFAULT_CLOUDFLARE_API_URL})",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """`--progress` and `--quiet`: what a command that uploads says on stderr."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only errors on stderr")


def exit_status(
    command: Callable[[], int],
    *,
    failures: tuple[type[Exception], ...],
    explain: Callable[[Exception], str],
    interrupted: str,
) -> int:
    """Run `command`; its own exit status, or the one its error means, said on stderr: 2 for a
    usage or setup problem, 1 for one of `failures` (said by `explain`), 130 for Ctrl-C."""
    try:
        return command()
    except (UsageError, SetupError, ManifestError) as error:
        Console.error(str(error))
        return EXIT_USAGE
    except failures as error:
        print(explain(error), file=sys.stderr, flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        Console.error(interrupted)
        return EXIT_INTERRUPTED


def run_gateway_command(command: Callable[[], int], *, interrupted: str) -> int:
    """`exit_status` for a command that calls the gateway: a refusal or failure (UploadError,
    its message written for people: codes, reasons, request id) exits 1."""
    return exit_status(
        command,
        failures=(UploadError,),
        explain=lambda error: f"assets-gateway: error: {error}",
        interrupted=interrupted,
    )
