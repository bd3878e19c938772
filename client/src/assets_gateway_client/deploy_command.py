"""`assets-gateway deploy`: a build folder (and a bundled Worker module) deployed through the
gateway without Node, as `wrangler deploy` does it (`deploy`).

    assets-gateway deploy DIR --account ACCOUNT_ID --script NAME [--main worker.js]
        [--compatibility-date YYYY-MM-DD] [--compatibility-flag F]... [--assets-binding NAME]
        [--message TEXT] [--gateway URL] [--cloudflare-api URL] [--profile P] [--region R]
        [--json] [--dry-run] [--[no-]progress] [--quiet]

Without `--main` the Worker serves its assets only. stdout carries the result only: the version
id, or with `--json` one JSON object (`script`, `account`, `version_id`, `deployment_id` (null
for a new Worker, whose upload deploys it), `new_worker`, `uploaded_files`, `entries`, `bytes`).
Phases and counts go to stderr. Exit status: 0 deployed (for `--dry-run`, allowed); 1 refused or
failed, with the code, message and every reason of the refusal; 2 a usage or local problem; 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import re

from assets_gateway_client.console import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    UsageError,
    add_cloudflare_api_option,
    add_connection_options,
    add_output_options,
    gateway_connection,
    run_gateway_command,
)
from assets_gateway_client.deploy import (
    DEFAULT_ASSETS_BINDING,
    DeployResult,
    WorkerModule,
    deploy_manifest,
)
from assets_gateway_client.manifest_builder import build_manifest
from assets_gateway_client.upload_command import ProgressBar, decision_text, manifest_summary

__all__ = ["add_deploy_parser", "run_deploy"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_deploy_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `deploy` and its options to the console script's subcommands."""
    deploy = commands.add_parser(
        "deploy",
        help="deploy a Worker with static assets without Node (what `wrangler deploy` does)",
        description="Upload the folder's assets (only what Cloudflare is missing) and deploy a "
        "new version of the Worker through the gateway: a new Worker is created, an existing "
        "one gets a version deployed to 100%%. Without --main, an assets-only Worker.",
    )
    deploy.add_argument("directory", metavar="DIR", help="the build folder (the assets root)")
    deploy.add_argument("--account", metavar="ID", required=True, help="Cloudflare account id")
    deploy.add_argument("--script", metavar="NAME", required=True, help="the Worker's name")
    deploy.add_argument(
        "--main", metavar="FILE", help="the Worker's bundled ES module (default: assets only)"
    )
    deploy.add_argument(
        "--compatibility-date", metavar="YYYY-MM-DD", help="the Worker's (default: today, UTC)"
    )
    deploy.add_argument(
        "--compatibility-flag",
        metavar="F",
        action="append",
        default=[],
        help="a compatibility flag (repeat for more)",
    )
    deploy.add_argument(
        "--assets-binding",
        metavar="NAME",
        default=DEFAULT_ASSETS_BINDING,
        help=f"the assets binding's name in env, with --main (default: {DEFAULT_ASSETS_BINDING})",
    )
    deploy.add_argument("--message", metavar="TEXT", help="the version's and deployment's message")
    add_cloudflare_api_option(deploy)
    add_connection_options(deploy)
    deploy.add_argument("--json", action="store_true", help="print the result as JSON")
    deploy.add_argument(
        "--dry-run",
        action="store_true",
        help="show the gateway's decision on the assets session and what would be deployed; "
        "upload and deploy nothing",
    )
    add_output_options(deploy)
    deploy.set_defaults(run=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    """Run the `deploy` command parsed into `args`; the exit status."""
    console = Console(quiet=args.quiet)
    return run_gateway_command(
        lambda: _deploy(args, console),
        interrupted="interrupted; uploaded assets are kept, so the next run resumes",
    )


def _main_module(path: str | None) -> WorkerModule | None:
    if path is None:
        return None
    try:
        return WorkerModule.from_file(path)
    except OSError as error:
        raise UsageError(f"--main {path}: {error.strerror or error}") from error


def _deploy(args: argparse.Namespace, console: Console) -> int:
    date = args.compatibility_date
    if date is not None and not _DATE.fullmatch(date):
        raise UsageError(f"--compatibility-date must be YYYY-MM-DD (got {date!r})")
    main = _main_module(args.main)
    gateway_url, auth = gateway_connection(args)
    manifest = build_manifest(args.directory)
    console.info(manifest_summary(manifest))
    with ProgressBar.for_command(args) as bar:
        result = deploy_manifest(
            manifest,
            main=main,
            compatibility_date=date,
            compatibility_flags=args.compatibility_flag,
            assets_binding=args.assets_binding,
            message=args.message,
            account_id=args.account,
            script_name=args.script,
            gateway_url=gateway_url,
            auth=auth,
            cloudflare_api_url=args.cloudflare_api,
            progress=bar,
            say=console.info,
            dry_run=args.dry_run,
        )
    return _report(args, result)


def _report(args: argparse.Namespace, result: DeployResult) -> int:
    decision = result.dry_run
    if decision is not None:
        if args.json:
            print(json.dumps(result.to_json(), indent=2), flush=True)
        else:
            what = result.metadata.get("main_module") or "assets only, no script"
            date = result.metadata.get("compatibility_date")
            action = f"then deploy {result.script} ({what}, compatibility date {date})"
            print(f"{decision_text(decision)}\n  would {action}", flush=True)
        return EXIT_OK if decision.allowed else EXIT_FAILED
    if args.json:
        print(json.dumps(result.to_json(), indent=2), flush=True)
    else:
        print(result.version_id, flush=True)
    return EXIT_OK
