"""`assets-gateway`: the team client's command line, and the org admins' (`admin`).

    assets-gateway upload DIST --account ACCOUNT_ID --script NAME ...   (see `upload_command`)
    assets-gateway deploy DIR --account ACCOUNT_ID --script NAME [--main worker.js] ...
                                          deploy a Worker without Node (see `deploy_command`)
    assets-gateway proxy [--port N] ...   a signing proxy for wrangler, SDKs, curl (see `proxy`)
    assets-gateway wrangler [...] -- ARGS   wrangler through that proxy (see `wrangler_command`)
    assets-gateway admin policy|explain|usage|grant|reset-usage|suspend|resume|kill-switch ...
                                                                        (see `admin`)

All read the gateway's URL from `--gateway` or $ASSETS_GATEWAY_URL, sign with the standard AWS
credential chain (`--profile`, `--region`), print results on stdout and everything for people on
stderr, and exit 0 (done), 1 (refused or failed), 2 (a usage or local problem) or 130
(interrupted).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from assets_gateway_client.admin.parser import add_admin_parser
from assets_gateway_client.deploy_command import add_deploy_parser
from assets_gateway_client.proxy_command import add_proxy_parser
from assets_gateway_client.upload_command import add_upload_parser
from assets_gateway_client.wrangler_command import add_wrangler_parser

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assets-gateway",
        description="Upload a build folder as Cloudflare Workers assets through the org's "
        "assets gateway (your AWS identity; no Cloudflare token needed).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_upload_parser(commands)
    add_deploy_parser(commands)
    add_proxy_parser(commands)
    add_wrangler_parser(commands)
    add_admin_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
