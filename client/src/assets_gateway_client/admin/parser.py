"""`assets-gateway admin`'s command line: its commands, their options and argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from assets_gateway_client.admin.commands import run_admin
from assets_gateway_client.admin.inputs import QUOTA_OPTIONS, version_tag
from assets_gateway_client.console import add_connection_options

__all__ = ["add_admin_parser"]


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not 0 < value < 24 * 366:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 and less than a year")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    add_connection_options(group)
    group.add_argument("--json", action="store_true", help="print the answer's result as JSON")
    return common


_POLICY_FILE_HELP = "the policy document (YAML or JSON; -)"


@dataclass(frozen=True)
class _Adder:
    """Adds commands that share the connection and output options; each names its action."""

    subcommands: argparse._SubParsersAction[argparse.ArgumentParser]
    common: argparse.ArgumentParser
    prefix: str = ""  # "policy " for `policy get`, `policy publish`...

    def add(
        self,
        name: str,
        text: str,
        *,
        reason: bool = False,
        policy_file: bool = False,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        """`reason`: a change, recorded with why; `policy_file`: takes a policy FILE."""
        parser = self.subcommands.add_parser(
            name, parents=[self.common], help=text, description=description
        )
        parser.set_defaults(admin_action=self.prefix + name)
        if policy_file:
            parser.add_argument(
                "file", metavar="FILE", help="the policy document (YAML or JSON; -)"
            )
        if reason:
            parser.add_argument(
                "--reason", required=True, metavar="TEXT", help="why: recorded in the audit trail"
            )
        return parser


def _add_policy_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    policy = commands.add_parser(
        "policy",
        help="read, validate, publish, roll back and simulate the org's policy",
        description="The org's policy: who may use which accounts, scripts, namespaces and "
        "paths, with which limits and quotas. Files are YAML or JSON.",
    )
    actions = policy.add_subparsers(dest="policy_action", required=True, metavar="ACTION")
    adder = _Adder(actions, common, "policy ")

    get = adder.add("get", "print the current (or an earlier) policy document")
    get.add_argument("--version", type=_positive_int, metavar="N", help="an earlier version")
    get.add_argument("--output", metavar="FILE", help="write it to FILE, not stdout")
    get.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="the document's format"
    )

    versions = adder.add("versions", "the policy's history, newest first")
    versions.add_argument("--limit", type=_positive_int, default=20, metavar="N")
    versions.add_argument("--before", type=_positive_int, metavar="N", help="versions older than N")

    text = "check a policy file without publishing it (exit 1 when invalid)"
    adder.add("validate", text, policy_file=True)

    text = "publish a policy file as the next version (nothing when it changes nothing)"
    publish = adder.add("publish", text, policy_file=True, reason=True)
    publish.add_argument(
        "--if-match",
        type=version_tag,
        metavar="N",
        help="the version this file replaces; refused (409) if another was published since "
        "(default: the current version, read just before publishing)",
    )

    text = "publish an earlier version's policy again, as the next version"
    rollback = adder.add("rollback", text, reason=True)
    rollback.add_argument("version", type=_positive_int, metavar="VERSION")

    text = "replay recorded decisions against a policy file: what would change, by team"
    simulate = adder.add("simulate", text, policy_file=True)
    simulate.add_argument(
        "--since", metavar="WHEN", help="start: ISO 8601, or 6h, 7d ago (default: 24 hours ago)"
    )
    simulate.add_argument(
        "--until", metavar="WHEN", help="end: ISO 8601, or 1h ago (default: now; 30 days at most)"
    )


def _add_explain_parser(adder: _Adder) -> None:
    explain = adder.add(
        "explain",
        "the decision the gateway would make now for a caller's request (exit 1: refused)",
        description="Ask the gateway what it would decide now for this caller and request, "
        "with every reason, the team's rules and its quota state; nothing is forwarded or "
        "charged. Describe the request with --manifest FILE, or a summary (--entries, --bytes, "
        "--path), or neither (an empty manifest).",
    )
    explain.add_argument("--principal", required=True, metavar="ARN", help="the caller's ARN")
    explain.add_argument("--account", required=True, metavar="ID", help="Cloudflare account id")
    explain.add_argument("--script", required=True, metavar="NAME", help="the Worker's name")
    explain.add_argument("--namespace", metavar="NS", help="dispatch namespace")
    explain.add_argument(
        "--manifest",
        metavar="FILE",
        help='JSON: {"manifest": {...}} (upload --manifest-only writes it) or the bare '
        "manifest; - for stdin",
    )
    explain.add_argument("--entries", type=_non_negative_int, metavar="N", help="files")
    explain.add_argument("--bytes", type=_non_negative_int, metavar="N", help="total bytes")
    explain.add_argument(
        "--path", dest="paths", action="append", metavar="P", help="a path (repeatable)"
    )
    explain.add_argument(
        "--largest-file-bytes", type=_non_negative_int, metavar="N", help="the largest file"
    )


def _add_team_parsers(adder: _Adder) -> None:
    usage = adder.add("usage", "quota counters per team and window, and the org budget")
    usage.add_argument("--team", metavar="T", help="only this team")
    usage.add_argument("--window", choices=("minute", "hour", "day"), help="only this window")

    text = "a temporary quota increase (added to the team's quotas until it expires)"
    grant = adder.add("grant", text, reason=True)
    grant.add_argument("team", metavar="TEAM")
    until = grant.add_mutually_exclusive_group(required=True)
    until.add_argument("--expires", metavar="ISO", help="when it ends (ISO 8601)")
    until.add_argument("--hours", type=_positive_hours, metavar="H", help="ends in H hours")
    for name in QUOTA_OPTIONS:
        grant.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_positive_int,
            metavar="N",
            help=f"add N to {name}",
        )

    reset = adder.add("reset-usage", "reset a team's quota counters", reason=True)
    reset.add_argument("team", metavar="TEAM")
    reset.add_argument("--window", required=True, choices=("minute", "hour", "day", "all"))

    for action, text in (
        ("suspend", "refuse every request of a team (19010) until it is resumed"),
        ("resume", "lift a team's suspension"),
    ):
        adder.add(action, text, reason=True).add_argument("team", metavar="TEAM")

    text = "stop (engage) or restart (release) the session door for everyone"
    kill = adder.add("kill-switch", text, reason=True)
    kill.add_argument("switch_action", choices=("engage", "release"), metavar="engage|release")


def add_admin_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `admin` and its commands to the console script's subcommands."""
    admin = commands.add_parser(
        "admin",
        help="govern the gateway: policy, explain, usage, grants, suspensions, kill switch",
        description="The org admins' commands, signed with your AWS identity; only principals "
        "the gateway lists as admins may use them (others get 403, code 19050).",
        epilog="Exit status: 0 done; 1 refused or failed (explain: also a refused decision); "
        "2 a usage or local problem.",
    )
    admin.set_defaults(run=run_admin)
    common = _common_options()
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    _add_policy_parsers(admin_commands, common)
    _add_explain_parser(_Adder(admin_commands, common))
    _add_team_parsers(_Adder(admin_commands, common))
