"""`assets-gateway admin`: the org admins' command line for the gateway's admin door.

    assets-gateway admin policy get [--version N] [--output FILE] [--format yaml|json]
    assets-gateway admin policy versions [--limit N] [--before N]
    assets-gateway admin policy validate FILE
    assets-gateway admin policy publish FILE --reason TEXT [--if-match N]
    assets-gateway admin policy rollback VERSION --reason TEXT
    assets-gateway admin policy simulate FILE [--since ISO] [--until ISO]
    assets-gateway admin explain --principal ARN --account ID --script NAME [--namespace NS]
        [--manifest FILE | --entries N --bytes N [--path P ...] [--largest-file-bytes N]]
    assets-gateway admin usage [--team T] [--window minute|day]
    assets-gateway admin grant TEAM --reason TEXT (--expires ISO | --hours H)
        [--sessions-per-minute N] [--sessions-per-day N] [--entries-per-day N] [--bytes-per-day N]
    assets-gateway admin reset-usage TEAM --window minute|day|all --reason TEXT
    assets-gateway admin suspend TEAM --reason TEXT
    assets-gateway admin resume TEAM --reason TEXT
    assets-gateway admin kill-switch engage|release --reason TEXT

Every command takes `--gateway URL` (default: $ASSETS_GATEWAY_URL, the base URL teams use,
ending with /client/v4; the admin routes live at the stage root), `--profile`, `--region` and
`--json`. Requests are signed with SigV4 from the standard AWS credential chain.

Policy files hold the policy document itself (`{"defaults": ..., "teams": ...}`) as YAML or JSON
(`.json` files are read as JSON, anything else as YAML; `-` is stdin). Duplicate keys are refused,
and the gateway's JSON pointers are shown with the line of the file they point at.

stdout carries readable tables (or, with `--json`, the answer's `result` as JSON); errors, with
their codes and pointers, go to stderr. Exit status: 0 done; 1 refused or failed (any non-2xx
answer; also `explain` when the decision is a refusal); 2 a usage or local problem (unreadable
file, no gateway URL, no AWS credentials); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import yaml

from assets_gateway_client.upload import USER_AGENT, UploadError, profile_auth
from assets_gateway_common.json_pointer import pointer_tokens

if TYPE_CHECKING:
    from assets_gateway_client.sigv4 import SigV4Auth

__all__ = [
    "AdminAnswer",
    "AdminClient",
    "AdminRefused",
    "AdminUsageError",
    "PolicySource",
    "add_admin_parser",
    "admin_base_url",
    "explain_body",
    "format_duration",
    "grant_body",
    "load_manifest_text",
    "load_policy_text",
    "parse_instant",
    "pointer_line",
    "render_explain",
    "render_failure",
    "render_grant",
    "render_kill_switch",
    "render_policy_document",
    "render_publish",
    "render_quotas",
    "render_reset",
    "render_simulation",
    "render_table",
    "render_team_state",
    "render_usage",
    "render_validation",
    "render_versions",
    "run_admin",
]

GATEWAY_URL_ENV = "ASSETS_GATEWAY_URL"
CLIENT_PREFIX = "/client/v4"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
QUOTA_OPTIONS = ("sessions_per_minute", "sessions_per_day", "entries_per_day", "bytes_per_day")
# API Gateway answers within 29 s; a simulation over 30 days may use most of that.
_TIMEOUT = httpx.Timeout(35.0, connect=10.0)
MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
_RETRIES = 2
_BACKOFF_S = 1.0
_MAX_RETRY_AFTER_S = 10.0
_RETRYABLE_STATUS = frozenset({429, 502, 503})
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)

Sleep = Callable[[float], None]
Now = Callable[[], datetime]
Locate = Callable[[str], str | None]


# ----------------------------------------------------------------------------- errors


class AdminUsageError(Exception):
    """A problem with the command line, a local file or the machine's setup: exit 2."""


@dataclass(frozen=True)
class AdminAnswer:
    """One answer of the admin door: its status and the parts of Cloudflare's envelope."""

    status: int
    result: Any = None
    errors: tuple[Mapping[str, Any], ...] = ()
    messages: tuple[Mapping[str, Any], ...] = ()
    etag: str | None = None
    request_id: str | None = None
    text: str = ""  # the start of a body that is not an envelope

    @classmethod
    def from_response(cls, response: httpx.Response) -> AdminAnswer:
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            return cls(
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                text=response.text[:300],
            )
        return cls(
            status=response.status_code,
            result=envelope.get("result"),
            errors=tuple(e for e in envelope.get("errors") or [] if isinstance(e, dict)),
            messages=tuple(m for m in envelope.get("messages") or [] if isinstance(m, dict)),
            etag=response.headers.get("etag"),
            request_id=response.headers.get("x-request-id"),
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def has_code(self, code: int) -> bool:
        return any(error.get("code") == code for error in self.errors)


class AdminRefused(Exception):
    """The admin door answered something other than 2xx (or could not be reached): exit 1."""

    def __init__(self, what: str, answer: AdminAnswer | None, *, detail: str = "") -> None:
        super().__init__(f"{what}: {detail or (answer.status if answer else '')}")
        self.what = what
        self.answer = answer
        self.detail = detail
        self.locate: Locate | None = None


# ----------------------------------------------------------------------------- local input


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing duplicate keys (a second `web:` would silently replace the
    first team) and keeping timestamps as the text written (JSON has no dates)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable: construct_mapping reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_unique_mapping)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)


def _read_text(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AdminUsageError(f"cannot read {path}: {error}") from error


def _ensure_json_ready(document: Any, name: str) -> None:
    """The document must travel as strict JSON: no NaN/Infinity, no dates, bytes or sets."""
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AdminUsageError(f"{name} holds something JSON cannot carry: {error}") from error


def load_policy_text(text: str, name: str) -> dict[str, Any]:
    """The policy document in `text` (JSON when `name` ends with .json, else YAML)."""
    try:
        document = _load_json(text) if name.lower().endswith(".json") else _load_yaml(text)
    except json.JSONDecodeError as error:
        raise AdminUsageError(
            f"{name} line {error.lineno} column {error.colno}: {error.msg}"
        ) from error
    except (ValueError, yaml.YAMLError) as error:
        raise AdminUsageError(f"{name}: {error}") from error
    if not isinstance(document, dict):
        raise AdminUsageError(
            f"{name} must hold the policy document, a mapping with 'teams' "
            f"(found {type(document).__name__})"
        )
    if "policy" in document and "teams" not in document:
        raise AdminUsageError(
            f"{name} looks like the output of `policy get --json`; the file must hold the "
            "policy document itself (`assets-gateway admin policy get` prints it)"
        )
    _ensure_json_ready(document, name)
    return document


def load_manifest_text(text: str, name: str) -> dict[str, Any]:
    """A manifest from JSON: `{"manifest": {...}}` (what `upload --manifest-only` writes) or the
    bare `{"/path": {"hash", "size"}}` object."""
    try:
        document = _load_json(text)
    except json.JSONDecodeError as error:
        raise AdminUsageError(
            f"{name} line {error.lineno} column {error.colno}: {error.msg}"
        ) from error
    except ValueError as error:
        raise AdminUsageError(f"{name}: {error}") from error
    if isinstance(document, dict) and set(document) == {"manifest"}:
        document = document["manifest"]
    if not isinstance(document, dict):
        raise AdminUsageError(f'{name} must hold a manifest object or {{"manifest": {{...}}}}')
    return document


def pointer_line(text: str, pointer: str) -> int | None:
    """The 1-based line of `text` (YAML or JSON) where the JSON pointer's target is written, or
    of its deepest existing parent when the target itself is missing; None if unreadable."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for token in pointer_tokens(pointer):
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (key, value)
                    for key, value in node.value
                    if isinstance(key, yaml.ScalarNode) and key.value == token
                ),
                None,
            )
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and token.isdigit():
            if int(token) >= len(node.value):
                break
            node = node.value[int(token)]
            line = node.start_mark.line + 1
        else:
            break
    return line


@dataclass(frozen=True)
class PolicySource:
    """A policy file as read: its name, text and document."""

    name: str
    text: str
    document: dict[str, Any]

    @classmethod
    def read(cls, path: str) -> PolicySource:
        name = "stdin" if path == "-" else path
        text = _read_text(path)
        return cls(name, text, load_policy_text(text, name))

    def locate(self, pointer: str) -> str | None:
        """Where a pointer into the request body (`/policy/...`) lands in this file."""
        if pointer != "/policy" and not pointer.startswith("/policy/"):
            return None
        line = pointer_line(self.text, pointer.removeprefix("/policy"))
        return f"{self.name} line {line}" if line is not None else None


def parse_instant(text: str, option: str) -> str:
    """An ISO 8601 instant as the gateway wants it (UTC, `Z`); a time without zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise AdminUsageError(
            f"{option} {text!r} is not an ISO 8601 date and time (e.g. 2025-06-01T12:00:00Z)"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _iso(moment)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _version_tag(text: str) -> int:
    """`--if-match`: a version number, bare or quoted as the ETag shows it."""
    value = text.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a policy version (e.g. 7)")
    return int(value)


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


def explain_body(args: argparse.Namespace, manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """`POST /admin/explain`'s body from the command line (and the manifest file, if any)."""
    summary_given = args.entries is not None or args.bytes is not None
    details_given = bool(args.paths) or args.largest_file_bytes is not None
    if manifest is not None and (summary_given or details_given):
        raise AdminUsageError("pass --manifest FILE or a summary (--entries, --bytes), not both")
    if details_given and not summary_given:
        raise AdminUsageError("--path and --largest-file-bytes need --entries and --bytes")
    if summary_given and (args.entries is None or args.bytes is None):
        raise AdminUsageError("a summary needs both --entries N and --bytes N")
    body: dict[str, Any] = {
        "principal": args.principal,
        "account_id": args.account,
        "script_name": args.script,
    }
    if args.namespace:
        body["namespace"] = args.namespace
    if manifest is not None:
        body["manifest"] = dict(manifest)
    elif summary_given:
        summary: dict[str, Any] = {"entries": args.entries, "bytes": args.bytes}
        if args.paths:
            summary["paths"] = list(args.paths)
        if args.largest_file_bytes is not None:
            summary["largest_file_bytes"] = args.largest_file_bytes
        body["summary"] = summary
    return body


def grant_body(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """`POST /admin/teams/{team}/grants`'s body; `--hours` counts from `now`."""
    quotas = {name: value for name in QUOTA_OPTIONS if (value := getattr(args, name)) is not None}
    if not quotas:
        raise AdminUsageError(
            "a grant needs at least one of --sessions-per-minute, --sessions-per-day, "
            "--entries-per-day, --bytes-per-day"
        )
    if args.expires is not None:
        expires_at = parse_instant(args.expires, "--expires")
        if datetime.fromisoformat(expires_at) <= now:
            raise AdminUsageError(f"--expires {args.expires} is in the past")
    else:
        expires_at = _iso(now + timedelta(hours=args.hours))
    return {"quotas": quotas, "reason": args.reason, "expires_at": expires_at}


# ----------------------------------------------------------------------------- rendering


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, right: Iterable[int] = ()
) -> str:
    """Plain aligned columns; a cell holding several lines spans as many table lines; columns
    listed in `right` (numbers) are right-aligned."""
    right_aligned = set(right)
    lines_of_rows = [[_cell(value).splitlines() or [""] for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in lines_of_rows:
        for index, cell_lines in enumerate(row):
            widths[index] = max(widths[index], *(len(line) for line in cell_lines))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right_aligned else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers)]
    for row in lines_of_rows:
        height = max(len(cell_lines) for cell_lines in row)
        for n in range(height):
            out.append(line([cell_lines[n] if n < len(cell_lines) else "" for cell_lines in row]))
    return "\n".join(out)


def format_duration(seconds: object) -> str:
    """42 s, 3 min 5 s, 5 h 2 min, 2 d 3 h; '-' when unknown."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "-"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _window(seconds: object) -> str:
    return {60: "minute", 3600: "hour", 86400: "day"}.get(
        seconds if isinstance(seconds, int) else -1, format_duration(seconds)
    )


def _size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{value:,} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def _quantity(name: object, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and "bytes" in str(name):
        return _size(value)
    return _cell(value)


def _quota_cells(quota: Mapping[str, Any]) -> list[str]:
    name = quota.get("name")
    return [
        _cell(name),
        _quantity(name, quota.get("used")),
        _quantity(name, quota.get("limit")),
        _quantity(name, quota.get("remaining")),
        _window(quota.get("window_seconds")),
        format_duration(quota.get("reset_seconds")),
    ]


_QUOTA_HEADERS = ("QUOTA", "USED", "LIMIT", "REMAINING", "WINDOW", "RESETS IN")


def render_quotas(quotas: Iterable[Mapping[str, Any]]) -> str:
    return render_table(_QUOTA_HEADERS, [_quota_cells(q) for q in quotas], right=(1, 2, 3))


def render_usage(result: Mapping[str, Any]) -> str:
    """`GET /admin/usage`: one line per team and quota, then the org's Cloudflare budget."""
    rows = [
        [_cell(team.get("team")), *_quota_cells(quota)]
        for team in _items(result.get("teams"))
        for quota in _items(team.get("quotas"))
    ]
    budget = result.get("cloudflare_budget")
    if isinstance(budget, Mapping):
        rows.append(["(org)", *_quota_cells({"name": "cloudflare budget", **budget})])
        if budget.get("name"):
            rows[-1][1] = f"cloudflare budget ({budget['name']})"
    if not rows:
        return "no usage recorded"
    return render_table(("TEAM", *_QUOTA_HEADERS), rows, right=(2, 3, 4))


def _items(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _one_line(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def render_policy_document(
    result: Mapping[str, Any], output_format: str = "yaml", *, header: bool = True
) -> str:
    """The policy of a `GET /admin/policy` result as a file one can edit and publish again;
    YAML starts with comments saying which version it is."""
    policy = result.get("policy")
    if output_format == "json":
        return json.dumps(policy, indent=2, ensure_ascii=False) + "\n"
    body = yaml.safe_dump(
        policy, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    if not header:
        return body
    version = result.get("version")
    comments = [
        f"# assets-gateway policy version {_cell(version)}, published "
        f"{_cell(result.get('published_at'))} by {_cell(result.get('published_by'))}",
    ]
    if result.get("reason"):
        comments.append(f"# reason: {_one_line(result.get('reason'))}")
    comments.append(
        "# to publish an edited copy: assets-gateway admin policy publish FILE --reason TEXT "
        f"--if-match {_cell(version)}"
    )
    return "\n".join(comments) + "\n" + body


def render_versions(result: Mapping[str, Any]) -> str:
    """`GET /admin/policy/versions`: newest first, the current one marked."""
    current = result.get("current")
    rows = [
        [
            f"{_cell(v.get('version'))}{' (current)' if v.get('version') == current else ''}",
            _cell(v.get("published_at")),
            _cell(v.get("published_by")),
            _one_line(v.get("reason")),
            "\n".join(_strings(v.get("changes"))) or "-",
        ]
        for v in _items(result.get("versions"))
    ]
    if not rows:
        return "no policy version published"
    return render_table(("VERSION", "PUBLISHED AT", "PUBLISHED BY", "REASON", "CHANGES"), rows)


def _where(item: Mapping[str, Any], locate: Locate | None) -> str:
    source = item.get("source")
    pointer = source.get("pointer") if isinstance(source, Mapping) else item.get("pointer")
    if not pointer:
        return ""
    place = locate(str(pointer)) if locate is not None else None
    return f" ({pointer}; {place})" if place else f" ({pointer})"


def _describe(item: Mapping[str, Any], locate: Locate | None = None) -> str:
    code = item.get("code")
    text = f"{code} {item.get('message', '')}" if code is not None else str(item.get("message"))
    return text + _where(item, locate)


def _bullets(title: str, lines: Sequence[str]) -> list[str]:
    return [title, *(f"  - {line}" for line in lines)] if lines else []


def render_validation(result: Mapping[str, Any], locate: Locate | None = None) -> str:
    """`POST /admin/policy:validate` answered 200: valid, with warnings and the changes."""
    changes = _strings(result.get("changes"))
    lines = ["policy is valid"]
    lines += _bullets("warnings:", [_describe(w, locate) for w in _items(result.get("warnings"))])
    lines += _bullets("changes against the current policy:", changes)
    if not changes:
        lines.append("no changes against the current policy")
    return "\n".join(lines)


def render_publish(result: Mapping[str, Any], locate: Locate | None = None) -> str:
    lines = [
        f"published policy version {_cell(result.get('version'))} "
        f"(by {_cell(result.get('published_by'))} at {_cell(result.get('published_at'))})",
        f"reason: {_one_line(result.get('reason'))}",
    ]
    lines += _bullets("changes:", _strings(result.get("changes")))
    lines += _bullets("warnings:", [_describe(w, locate) for w in _items(result.get("warnings"))])
    return "\n".join(lines)


def render_simulation(result: Mapping[str, Any]) -> str:
    """`POST /admin/policy:simulate`: totals, one line per team, then the examples."""
    period = _mapping(result.get("period"))
    lines = [
        f"period {_cell(period.get('since'))} to {_cell(period.get('until'))}: "
        f"{_cell(result.get('decisions'))} decisions replayed, "
        f"{_cell(result.get('changed'))} would change, "
        f"{_cell(result.get('not_evaluable'))} not evaluable"
    ]
    teams = _mapping(result.get("teams"))
    team_rows = []
    examples = []
    for name, team in teams.items():
        if not isinstance(team, Mapping):
            continue
        team_rows.append(
            [
                name,
                team.get("decisions"),
                team.get("unchanged"),
                team.get("now_refused"),
                team.get("now_allowed"),
            ]
        )
        examples += [
            [
                _cell(example.get("at")),
                name,
                _cell(example.get("principal")),
                _cell(example.get("account_id")),
                _cell(example.get("script_name")),
                f"{_cell(example.get('was'))} -> {_cell(example.get('now'))}",
                "\n".join(_strings(example.get("reasons"))) or "-",
                _cell(example.get("request_id")),
            ]
            for example in _items(team.get("examples"))
        ]
    if team_rows:
        team_headers = ("TEAM", "DECISIONS", "UNCHANGED", "NOW REFUSED", "NOW ALLOWED")
        lines += ["", render_table(team_headers, team_rows, right=(1, 2, 3, 4))]
    if examples:
        headers = ("AT", "TEAM", "PRINCIPAL", "ACCOUNT", "SCRIPT", "CHANGE", "REASONS", "REQUEST")
        lines += ["", "examples of changed decisions:", render_table(headers, examples)]
    return "\n".join(lines)


def render_explain(result: Mapping[str, Any]) -> str:
    """`POST /admin/explain`: the decision, every reason, the quota state and the rules."""
    verdict = "ALLOWED" if result.get("allowed") is True else "REFUSED"
    team = result.get("team")
    lines = [
        f"{verdict}: team {team if team else '(none)'}, "
        f"policy version {_cell(result.get('policy_version'))}"
    ]
    lines += _bullets("reasons:", [_describe(r) for r in _items(result.get("reasons"))])
    quotas = _items(result.get("quotas"))
    if quotas:
        lines += ["quotas:", _indent(render_quotas(quotas))]
    rules = result.get("rules")
    if isinstance(rules, Mapping) and rules:
        dumped = yaml.safe_dump(dict(rules), sort_keys=False, allow_unicode=True, width=100)
        lines += [f"rules of team {team}:" if team else "rules:", _indent(dumped.rstrip("\n"))]
    return "\n".join(lines)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _mapping_lines(mapping: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            shown = ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
        elif isinstance(value, list):
            shown = ", ".join(_cell(v) for v in value)
        else:
            shown = _cell(value)
        lines.append(f"  {key}: {shown}")
    return lines


def render_grant(team: str, result: Mapping[str, Any]) -> str:
    grant = result.get("grant")
    lines = [f"grant recorded for team {team} (policy version {_cell(result.get('version'))})"]
    if isinstance(grant, Mapping):
        lines += _mapping_lines(grant)
    return "\n".join(lines)


def render_reset(result: Mapping[str, Any]) -> str:
    names = _strings(result.get("reset"))
    lines = [f"team {_cell(result.get('team'))}: reset {', '.join(names) if names else 'nothing'}"]
    before = _items(result.get("before"))
    if before:
        lines += ["before the reset:", _indent(render_quotas(before))]
    return "\n".join(lines)


def render_team_state(result: Mapping[str, Any]) -> str:
    team, version = _cell(result.get("team")), _cell(result.get("version"))
    if result.get("suspended") is True:
        return f"team {team} is suspended (policy version {version}): its callers get 19010"
    return f"team {team} is not suspended (policy version {version})"


def render_kill_switch(result: Mapping[str, Any]) -> str:
    switch = _mapping(result.get("kill_switch"))
    version = _cell(result.get("version"))
    if switch.get("engaged") is True:
        head = f"kill switch ENGAGED (policy version {version}): the session door answers 503"
        head += " (19013) to every request"
    else:
        head = f"kill switch released (policy version {version}): the session door serves again"
    return "\n".join(
        [
            head,
            f"  by {_cell(switch.get('by'))} at {_cell(switch.get('at'))}",
            f"  reason: {_one_line(switch.get('reason'))}",
        ]
    )


_HINTS = {
    10000: "API Gateway refused the call before the gateway saw it: check the gateway URL "
    "(the base URL ending with /client/v4), your AWS credentials and the region they sign for",
    19050: "only the org's admins may use the admin door; check which AWS identity you sign "
    "with (--profile, AWS_PROFILE)",
    19052: "someone published since that version: read the current policy "
    "(assets-gateway admin policy get), merge your change, then publish with its version",
}


def render_failure(refusal: AdminRefused) -> str:
    """What goes to stderr when the admin door refused or failed: every error and message,
    with codes, pointers (and where they land in the policy file) and the request id."""
    answer = refusal.answer
    if answer is None:
        return f"assets-gateway: error: {refusal.what}: {refusal.detail}"
    head = f"assets-gateway: error: {refusal.what}: HTTP {answer.status}"
    if refusal.detail:
        head += f" ({refusal.detail})"
    if answer.text and not answer.errors:
        head += f" {answer.text!r}"
    lines = [head]
    lines += [f"  error {_describe(e, refusal.locate)}" for e in answer.errors]
    lines += [f"  - {_describe(m, refusal.locate)}" for m in answer.messages]
    lines += [
        f"  hint: {hint}"
        for code, hint in _HINTS.items()
        if answer.has_code(code) and not (code == 10000 and answer.status != 403)
    ]
    if answer.request_id:
        lines.append(f"  request id {answer.request_id}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- HTTP


def admin_base_url(gateway_url: str) -> str:
    """The stage root where the admin routes live: the teams' base URL without `/client/v4`."""
    base = gateway_url.strip().rstrip("/")
    if base.endswith(CLIENT_PREFIX):
        base = base[: -len(CLIENT_PREFIX)]
    return base


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


@dataclass
class AdminClient:
    """Calls the admin door and reads its envelopes; non-2xx answers raise AdminRefused.

    Only reads (GET, validate, simulate, explain) are retried, on connection failures, 429,
    502 and 503 carrying Retry-After: a publish or a grant sent twice is not the same thing."""

    http: httpx.Client
    base_url: str
    sleep: Sleep = time.sleep
    retries: int = _RETRIES

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
        locate: Locate | None = None,
    ) -> AdminAnswer:
        answer = self.send(
            method, path, what=what, params=params, body=body, headers=headers, retry=retry
        )
        if not answer.ok:
            refusal = AdminRefused(what, answer)
            refusal.locate = locate
            raise refusal
        return answer

    def send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> AdminAnswer:
        """The answer whatever its status; AdminRefused only when there is none."""
        request_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
        request_headers.update(headers or {})
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self.http.request(
                    method, url, params=params, content=content, headers=request_headers
                )
            except _RETRYABLE_ERRORS as error:
                if not retry or attempt >= self.retries:
                    raise AdminRefused(
                        what, None, detail=f"cannot reach {url}: {type(error).__name__}: {error}"
                    ) from error
                delay = _BACKOFF_S * 2**attempt
            except httpx.HTTPError as error:
                raise AdminRefused(
                    what, None, detail=f"{url}: {type(error).__name__}: {error}"
                ) from error
            else:
                delay_or_none = self._retry_delay(response, attempt) if retry else None
                if delay_or_none is None:
                    return AdminAnswer.from_response(response)
                delay = delay_or_none
            self.sleep(delay)
            attempt += 1

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        if response.status_code not in _RETRYABLE_STATUS or attempt >= self.retries:
            return None
        retry_after = _retry_after(response)
        if response.status_code == 503 and retry_after is None:
            return None  # e.g. nothing published (19012): asking again changes nothing
        if retry_after is not None and retry_after > _MAX_RETRY_AFTER_S:
            return None
        return retry_after if retry_after is not None else _BACKOFF_S * 2**attempt


def _segment(value: str) -> str:
    return quote(value, safe="")


# ----------------------------------------------------------------------------- commands


@dataclass
class _Context:
    args: argparse.Namespace
    make_client: Callable[[], AdminClient]
    now: Now

    @cached_property
    def client(self) -> AdminClient:
        return self.make_client()

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def emit(self, result: Any, text: str) -> None:
        """stdout: the result as JSON with --json, else the readable text."""
        if self.args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print(text)


def _result_mapping(answer: AdminAnswer) -> Mapping[str, Any]:
    return _mapping(answer.result)


def _policy_get(ctx: _Context) -> int:
    args = ctx.args
    if args.version is not None:
        answer = ctx.client.call(
            "GET",
            f"/admin/policy/versions/{args.version}",
            what=f"reading policy version {args.version}",
            retry=True,
        )
    else:
        answer = ctx.client.call("GET", "/admin/policy", what="reading the policy", retry=True)
    result = _result_mapping(answer)
    if args.json:
        text = json.dumps(answer.result, indent=2, ensure_ascii=False) + "\n"
    else:
        text = render_policy_document(result, args.format)
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise AdminUsageError(f"cannot write {args.output}: {error}") from error
    ctx.note(
        f"policy version {_cell(result.get('version'))}, published "
        f"{_cell(result.get('published_at'))} by {_cell(result.get('published_by'))}"
        + (f"; written to {args.output}" if args.output else "")
    )
    return EXIT_OK


def _policy_versions(ctx: _Context) -> int:
    params: dict[str, str | int] = {"limit": ctx.args.limit}
    if ctx.args.before is not None:
        params["before"] = ctx.args.before
    answer = ctx.client.call(
        "GET",
        "/admin/policy/versions",
        what="reading the policy history",
        params=params,
        retry=True,
    )
    result = _result_mapping(answer)
    ctx.emit(answer.result, render_versions(result))
    versions = _items(result.get("versions"))
    if len(versions) >= ctx.args.limit and isinstance(versions[-1].get("version"), int):
        ctx.note(f"older versions: --before {versions[-1]['version']}")
    return EXIT_OK


def _policy_validate(ctx: _Context) -> int:
    source = PolicySource.read(ctx.args.file)
    answer = ctx.client.call(
        "POST",
        "/admin/policy:validate",
        what=f"validating {source.name}",
        body={"policy": source.document},
        retry=True,
        locate=source.locate,
    )
    ctx.emit(answer.result, render_validation(_result_mapping(answer), source.locate))
    return EXIT_OK


def _current_version(ctx: _Context) -> int:
    """The version a publish replaces: the current one, or 0 when nothing is published."""
    answer = ctx.client.send("GET", "/admin/policy", what="reading the current version", retry=True)
    if answer.status == 503 and answer.has_code(19012):
        ctx.note("no readable policy is published: publishing with If-Match 0")
        return 0
    if not answer.ok:
        raise AdminRefused("reading the current version", answer)
    version = _result_mapping(answer).get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if answer.etag is not None:
        try:
            return _version_tag(answer.etag)
        except argparse.ArgumentTypeError:
            pass
    raise AdminRefused("reading the current version", answer, detail="the answer holds no version")


def _publish(
    ctx: _Context, policy: Mapping[str, Any], reason: str, if_match: int, locate: Locate | None
) -> int:
    answer = ctx.client.call(
        "PUT",
        "/admin/policy",
        what="publishing the policy",
        body={"policy": policy, "reason": reason},
        headers={"If-Match": f'"{if_match}"'},
        locate=locate,
    )
    ctx.emit(answer.result, render_publish(_result_mapping(answer), locate))
    return EXIT_OK


_HEADER_VERSION = re.compile(r"^# assets-gateway policy version (\d+),", re.MULTILINE)


def edited_version(text: str) -> int | None:
    """The version `policy get` wrote in the file's header: the one this file was edited from."""
    match = _HEADER_VERSION.search(text)
    return int(match.group(1)) if match else None


def _policy_publish(ctx: _Context) -> int:
    source = PolicySource.read(ctx.args.file)
    if_match = ctx.args.if_match
    if if_match is None and (if_match := edited_version(source.text)) is not None:
        ctx.note(f"publishing over version {if_match}, the one {source.name} was read from")
    if if_match is None:
        if_match = _current_version(ctx)
        ctx.note(
            f"replacing the current version {if_match} (pass --if-match with the version you "
            "edited to refuse the publish if someone published since)"
        )
    return _publish(ctx, source.document, ctx.args.reason, if_match, source.locate)


def _policy_rollback(ctx: _Context) -> int:
    target = ctx.args.version
    answer = ctx.client.call(
        "GET",
        f"/admin/policy/versions/{target}",
        what=f"reading policy version {target}",
        retry=True,
    )
    policy = _result_mapping(answer).get("policy")
    if not isinstance(policy, Mapping):
        raise AdminRefused(f"reading policy version {target}", answer, detail="no policy in it")
    current = _current_version(ctx)
    if current == target:
        ctx.note(f"version {target} is the current policy already: nothing published")
        return EXIT_OK
    reason = f"rollback to version {target}: {ctx.args.reason}"
    return _publish(ctx, policy, reason, current, None)


def _policy_simulate(ctx: _Context) -> int:
    source = PolicySource.read(ctx.args.file)
    body: dict[str, Any] = {"policy": source.document}
    if ctx.args.since is not None:
        body["since"] = parse_instant(ctx.args.since, "--since")
    if ctx.args.until is not None:
        body["until"] = parse_instant(ctx.args.until, "--until")
    answer = ctx.client.call(
        "POST",
        "/admin/policy:simulate",
        what=f"simulating {source.name}",
        body=body,
        retry=True,
        locate=source.locate,
    )
    ctx.emit(answer.result, render_simulation(_result_mapping(answer)))
    return EXIT_OK


def _explain(ctx: _Context) -> int:
    manifest = None
    if ctx.args.manifest is not None:
        name = "stdin" if ctx.args.manifest == "-" else ctx.args.manifest
        manifest = load_manifest_text(_read_text(ctx.args.manifest), name)
    body = explain_body(ctx.args, manifest)
    size = len(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise AdminUsageError(
            f"the manifest makes a {size:,}-byte request, over the {MAX_BODY_BYTES:,} bytes the "
            "admin door accepts: describe it with --entries N --bytes N [--largest-file-bytes N]"
        )
    answer = ctx.client.call(
        "POST", "/admin/explain", what="explaining the decision", body=body, retry=True
    )
    result = _result_mapping(answer)
    ctx.emit(answer.result, render_explain(result))
    return EXIT_OK if result.get("allowed") is True else EXIT_FAILED


def _usage(ctx: _Context) -> int:
    params: dict[str, str | int] = {}
    if ctx.args.team:
        params["team"] = ctx.args.team
    if ctx.args.window:
        params["window"] = ctx.args.window
    answer = ctx.client.call("GET", "/admin/usage", what="reading usage", params=params, retry=True)
    ctx.emit(answer.result, render_usage(_result_mapping(answer)))
    return EXIT_OK


def _grant(ctx: _Context) -> int:
    body = grant_body(ctx.args, ctx.now())
    team = ctx.args.team
    answer = ctx.client.call(
        "POST", f"/admin/teams/{_segment(team)}/grants", what=f"granting team {team}", body=body
    )
    ctx.emit(answer.result, render_grant(team, _result_mapping(answer)))
    return EXIT_OK


def _reset_usage(ctx: _Context) -> int:
    team = ctx.args.team
    answer = ctx.client.call(
        "DELETE",
        f"/admin/teams/{_segment(team)}/usage",
        what=f"resetting team {team}'s usage",
        params={"window": ctx.args.window, "reason": ctx.args.reason},
    )
    ctx.emit(answer.result, render_reset(_result_mapping(answer)))
    return EXIT_OK


def _team_state(ctx: _Context) -> int:
    team, action = ctx.args.team, ctx.args.admin_action  # "suspend" or "resume"
    answer = ctx.client.call(
        "POST",
        f"/admin/teams/{_segment(team)}:{action}",
        what=f"{'suspending' if action == 'suspend' else 'resuming'} team {team}",
        body={"reason": ctx.args.reason},
    )
    ctx.emit(answer.result, render_team_state(_result_mapping(answer)))
    return EXIT_OK


def _kill_switch(ctx: _Context) -> int:
    action = ctx.args.switch_action  # "engage" or "release"
    answer = ctx.client.call(
        "POST",
        f"/admin/kill-switch:{action}",
        what=f"{'engaging' if action == 'engage' else 'releasing'} the kill switch",
        body={"reason": ctx.args.reason},
    )
    ctx.emit(answer.result, render_kill_switch(_result_mapping(answer)))
    return EXIT_OK


_ACTIONS: dict[str, Callable[[_Context], int]] = {
    "policy get": _policy_get,
    "policy versions": _policy_versions,
    "policy validate": _policy_validate,
    "policy publish": _policy_publish,
    "policy rollback": _policy_rollback,
    "policy simulate": _policy_simulate,
    "explain": _explain,
    "usage": _usage,
    "grant": _grant,
    "reset-usage": _reset_usage,
    "suspend": _team_state,
    "resume": _team_state,
    "kill-switch": _kill_switch,
}


# ----------------------------------------------------------------------------- the parser


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument(
        "--gateway",
        metavar="URL",
        help=f"the gateway's base URL, ending with /client/v4 (default: ${GATEWAY_URL_ENV})",
    )
    group.add_argument("--profile", metavar="P", help="AWS profile to sign with")
    group.add_argument(
        "--region",
        metavar="R",
        help="AWS region of the gateway (default: from its URL, else the profile's)",
    )
    group.add_argument("--json", action="store_true", help="print the answer's result as JSON")
    return common


def _reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason", required=True, metavar="TEXT", help="why: recorded in the audit trail"
    )


def _add_policy_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    policy = commands.add_parser(
        "policy",
        help="read, validate, publish, roll back and simulate the org's policy",
        description="The org's policy: who may use which accounts, scripts, namespaces and "
        "paths, with which limits and quotas. Files are YAML or JSON.",
    )
    actions = policy.add_subparsers(dest="policy_action", required=True, metavar="ACTION")

    get = actions.add_parser(
        "get", parents=[common], help="print the current (or an earlier) policy document"
    )
    get.add_argument("--version", type=_positive_int, metavar="N", help="an earlier version")
    get.add_argument("--output", metavar="FILE", help="write it to FILE, not stdout")
    get.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="the document's format"
    )
    get.set_defaults(admin_action="policy get")

    versions = actions.add_parser(
        "versions", parents=[common], help="the policy's history, newest first"
    )
    versions.add_argument("--limit", type=_positive_int, default=20, metavar="N")
    versions.add_argument("--before", type=_positive_int, metavar="N", help="versions older than N")
    versions.set_defaults(admin_action="policy versions")

    validate = actions.add_parser(
        "validate",
        parents=[common],
        help="check a policy file without publishing it (exit 1 when invalid)",
    )
    validate.add_argument("file", metavar="FILE", help="the policy document (YAML or JSON; -)")
    validate.set_defaults(admin_action="policy validate")

    publish = actions.add_parser(
        "publish", parents=[common], help="publish a policy file as the next version"
    )
    publish.add_argument("file", metavar="FILE", help="the policy document (YAML or JSON; -)")
    _reason(publish)
    publish.add_argument(
        "--if-match",
        type=_version_tag,
        metavar="N",
        help="the version this file replaces; refused (409) if another was published since "
        "(default: the current version, read just before publishing)",
    )
    publish.set_defaults(admin_action="policy publish")

    rollback = actions.add_parser(
        "rollback",
        parents=[common],
        help="publish an earlier version's policy again, as the next version",
    )
    rollback.add_argument("version", type=_positive_int, metavar="VERSION")
    _reason(rollback)
    rollback.set_defaults(admin_action="policy rollback")

    simulate = actions.add_parser(
        "simulate",
        parents=[common],
        help="replay recorded decisions against a policy file: what would change, by team",
    )
    simulate.add_argument("file", metavar="FILE", help="the policy document (YAML or JSON; -)")
    simulate.add_argument("--since", metavar="ISO", help="start (default: 24 hours ago)")
    simulate.add_argument("--until", metavar="ISO", help="end (default: now; 30 days at most)")
    simulate.set_defaults(admin_action="policy simulate")


def _add_explain_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="the decision the gateway would make now for a caller's request (exit 1: refused)",
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
    explain.set_defaults(admin_action="explain")


def _add_team_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    usage = commands.add_parser(
        "usage", parents=[common], help="quota counters per team and window, and the org budget"
    )
    usage.add_argument("--team", metavar="T", help="only this team")
    usage.add_argument("--window", choices=("minute", "day"), help="only this window")
    usage.set_defaults(admin_action="usage")

    grant = commands.add_parser(
        "grant",
        parents=[common],
        help="a temporary quota increase (added to the team's quotas until it expires)",
    )
    grant.add_argument("team", metavar="TEAM")
    _reason(grant)
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
    grant.set_defaults(admin_action="grant")

    reset = commands.add_parser(
        "reset-usage", parents=[common], help="reset a team's quota counters"
    )
    reset.add_argument("team", metavar="TEAM")
    reset.add_argument("--window", required=True, choices=("minute", "day", "all"))
    _reason(reset)
    reset.set_defaults(admin_action="reset-usage")

    for action, text in (
        ("suspend", "refuse every request of a team (19010) until it is resumed"),
        ("resume", "lift a team's suspension"),
    ):
        parser = commands.add_parser(action, parents=[common], help=text)
        parser.add_argument("team", metavar="TEAM")
        _reason(parser)
        parser.set_defaults(admin_action=action)

    kill = commands.add_parser(
        "kill-switch",
        parents=[common],
        help="stop (engage) or restart (release) the session door for everyone",
    )
    kill.add_argument("switch_action", choices=("engage", "release"), metavar="engage|release")
    _reason(kill)
    kill.set_defaults(admin_action="kill-switch")


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
    common = _common_options()
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    _add_policy_parsers(admin_commands, common)
    _add_explain_parser(admin_commands, common)
    _add_team_parsers(admin_commands, common)


# ----------------------------------------------------------------------------- running


def _gateway_url(args: argparse.Namespace) -> str:
    gateway = args.gateway or os.environ.get(GATEWAY_URL_ENV)
    if not gateway:
        raise AdminUsageError(
            f"no gateway URL: pass --gateway URL or set {GATEWAY_URL_ENV} "
            "(the stack's ApiBaseUrl, ending with /client/v4; locally, base_url in "
            ".local/stack.json)"
        )
    if not gateway.startswith(("https://", "http://")):
        raise AdminUsageError(f"the gateway URL must be an https:// URL (got {gateway!r})")
    return gateway


def _sigv4(args: argparse.Namespace, url: str) -> SigV4Auth:
    try:
        return profile_auth(url, profile=args.profile, region=args.region)
    except UploadError as error:
        raise AdminUsageError(str(error)) from error


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_admin(
    args: argparse.Namespace,
    *,
    auth: httpx.Auth | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Sleep = time.sleep,
    now: Now = _utc_now,
) -> int:
    """Run the `admin` command parsed into `args`; the exit status.

    `auth` replaces SigV4 from the AWS credential chain, `transport` httpx's network transport
    (tests pass both)."""
    base_url: list[str] = []
    clients: list[httpx.Client] = []

    def make_client() -> AdminClient:
        signer = auth if auth is not None else _sigv4(args, base_url[0])
        http = httpx.Client(auth=signer, timeout=_TIMEOUT, transport=transport)
        clients.append(http)
        return AdminClient(http, base_url[0], sleep=sleep)

    try:
        base_url.append(admin_base_url(_gateway_url(args)))
        return _ACTIONS[args.admin_action](_Context(args, make_client, now))
    except AdminUsageError as error:
        print(f"assets-gateway: error: {error}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except AdminRefused as refusal:
        print(render_failure(refusal), file=sys.stderr, flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("assets-gateway: error: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        for http in clients:
            http.close()
