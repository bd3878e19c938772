"""The admin door's answers for people: aligned tables, durations, byte counts in binary units,
each operation's confirmation, and failures with every error, its pointer and the file line it
lands on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from assets_gateway_client.admin.errors import AdminRefused
from assets_gateway_client.answers import Locate, describe
from assets_gateway_client.sizes import format_bytes

__all__ = [
    "cell",
    "format_duration",
    "items_of",
    "mapping_of",
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
]


def cell(value: object) -> str:
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
    lines_of_rows = [[cell(value).splitlines() or [""] for value in row] for row in rows]
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


def _quantity(name: object, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and "bytes" in str(name):
        return format_bytes(value)
    return cell(value)


def _quota_cells(quota: Mapping[str, Any]) -> list[str]:
    name = quota.get("name")
    return [
        cell(name),
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
        [cell(team.get("team")), *_quota_cells(quota)]
        for team in items_of(result.get("teams"))
        for quota in items_of(team.get("quotas"))
    ]
    budget = result.get("cloudflare_budget")
    if isinstance(budget, Mapping):
        rows.append(["(org)", *_quota_cells({"name": "cloudflare budget", **budget})])
        if budget.get("name"):
            rows[-1][1] = f"cloudflare budget ({budget['name']})"
    if not rows:
        return "no usage recorded"
    return render_table(("TEAM", *_QUOTA_HEADERS), rows, right=(2, 3, 4))


def items_of(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def mapping_of(value: object) -> Mapping[str, Any]:
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
        f"# assets-gateway policy version {cell(version)}, published "
        f"{cell(result.get('published_at'))} by {cell(result.get('published_by'))}",
    ]
    if result.get("reason"):
        comments.append(f"# reason: {_one_line(result.get('reason'))}")
    comments.append(
        "# to publish an edited copy: assets-gateway admin policy publish FILE --reason TEXT "
        f"--if-match {cell(version)}"
    )
    return "\n".join(comments) + "\n" + body


def render_versions(result: Mapping[str, Any]) -> str:
    """`GET /admin/policy/versions`: newest first, the current one marked."""
    current = result.get("current")
    rows = [
        [
            f"{cell(v.get('version'))}{' (current)' if v.get('version') == current else ''}",
            cell(v.get("published_at")),
            cell(v.get("published_by")),
            _one_line(v.get("reason")),
            "\n".join(_strings(v.get("changes"))) or "-",
        ]
        for v in items_of(result.get("versions"))
    ]
    if not rows:
        return "no policy version published"
    return render_table(("VERSION", "PUBLISHED AT", "PUBLISHED BY", "REASON", "CHANGES"), rows)


def _bullets(title: str, lines: Sequence[str]) -> list[str]:
    return [title, *(f"  - {line}" for line in lines)] if lines else []


def render_validation(result: Mapping[str, Any], locate: Locate | None = None) -> str:
    """`POST /admin/policy:validate` answered 200: valid, with warnings and the changes."""
    changes = _strings(result.get("changes"))
    lines = ["policy is valid"]
    lines += _bullets("warnings:", [describe(w, locate) for w in items_of(result.get("warnings"))])
    lines += _bullets("changes against the current policy:", changes)
    if not changes:
        lines.append("no changes against the current policy")
    return "\n".join(lines)


def _unchanged(result: Mapping[str, Any], state: str) -> str | None:
    """A change that changed nothing (the door answers `"changed": false`, and the version is the
    current one) says so plainly; None when something changed (or the door predates `changed`)."""
    if result.get("changed") is not False:
        return None
    return f"unchanged: {state}; no new version published"


def render_publish(result: Mapping[str, Any], locate: Locate | None = None) -> str:
    version = cell(result.get("version"))
    if unchanged := _unchanged(result, f"version {version} is already the current policy"):
        return unchanged
    lines = [
        f"published policy version {cell(result.get('version'))} "
        f"(by {cell(result.get('published_by'))} at {cell(result.get('published_at'))})",
        f"reason: {_one_line(result.get('reason'))}",
    ]
    lines += _bullets("changes:", _strings(result.get("changes")))
    lines += _bullets("warnings:", [describe(w, locate) for w in items_of(result.get("warnings"))])
    return "\n".join(lines)


def render_simulation(result: Mapping[str, Any]) -> str:
    """`POST /admin/policy:simulate`: totals, one line per team, then the examples."""
    period = mapping_of(result.get("period"))
    lines = [
        f"period {cell(period.get('since'))} to {cell(period.get('until'))}: "
        f"{cell(result.get('decisions'))} decisions replayed, "
        f"{cell(result.get('changed'))} would change, "
        f"{cell(result.get('not_evaluable'))} not evaluable"
    ]
    teams = mapping_of(result.get("teams"))
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
                cell(example.get("at")),
                name,
                cell(example.get("principal")),
                cell(example.get("account_id")),
                cell(example.get("script_name")),
                f"{cell(example.get('was'))} -> {cell(example.get('now'))}",
                "\n".join(_strings(example.get("reasons"))) or "-",
                cell(example.get("request_id")),
            ]
            for example in items_of(team.get("examples"))
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
        f"policy version {cell(result.get('policy_version'))}"
    ]
    lines += _bullets("reasons:", [describe(r) for r in items_of(result.get("reasons"))])
    quotas = items_of(result.get("quotas"))
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
            shown = ", ".join(f"{k} {cell(v)}" for k, v in value.items())
        elif isinstance(value, list):
            shown = ", ".join(cell(v) for v in value)
        else:
            shown = cell(value)
        lines.append(f"  {key}: {shown}")
    return lines


def render_grant(team: str, result: Mapping[str, Any]) -> str:
    grant, version = result.get("grant"), cell(result.get("version"))
    unchanged = _unchanged(result, f"version {version} already holds this grant for team {team}")
    lines = [unchanged or f"grant recorded for team {team} (policy version {version})"]
    if isinstance(grant, Mapping):
        lines += _mapping_lines(grant)
    return "\n".join(lines)


def render_reset(result: Mapping[str, Any]) -> str:
    names = _strings(result.get("reset"))
    lines = [f"team {cell(result.get('team'))}: reset {', '.join(names) if names else 'nothing'}"]
    before = items_of(result.get("before"))
    if before:
        lines += ["before the reset:", _indent(render_quotas(before))]
    return "\n".join(lines)


def render_team_state(result: Mapping[str, Any]) -> str:
    team, version = cell(result.get("team")), cell(result.get("version"))
    state = "suspended" if result.get("suspended") is True else "not suspended"
    if unchanged := _unchanged(result, f"team {team} is already {state} in version {version}"):
        return unchanged
    if result.get("suspended") is True:
        return f"team {team} is suspended (policy version {version}): its callers get 19010"
    return f"team {team} is not suspended (policy version {version})"


def render_kill_switch(result: Mapping[str, Any]) -> str:
    switch = mapping_of(result.get("kill_switch"))
    version = cell(result.get("version"))
    state = "engaged" if switch.get("engaged") is True else "released"
    if unchanged := _unchanged(result, f"the kill switch is already {state} in version {version}"):
        return unchanged
    if switch.get("engaged") is True:
        head = f"kill switch ENGAGED (policy version {version}): the session door answers 503"
        head += " (19013) to every request"
    else:
        head = f"kill switch released (policy version {version}): the session door serves again"
    return "\n".join(
        [
            head,
            f"  by {cell(switch.get('by'))} at {cell(switch.get('at'))}",
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
    lines += [f"  error {describe(e, refusal.locate)}" for e in answer.errors]
    lines += [f"  - {describe(m, refusal.locate)}" for m in answer.messages]
    lines += [
        f"  hint: {hint}"
        for code, hint in _HINTS.items()
        if answer.has_code(code) and not (code == 10000 and answer.status != 403)
    ]
    if answer.request_id:
        lines.append(f"  request id {answer.request_id}")
    return "\n".join(lines)
