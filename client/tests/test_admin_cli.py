"""`assets-gateway admin`: argument parsing, local files, rendering (pure functions) and each
command's requests, answered by an httpx MockTransport. No network."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from assets_gateway_client import cli
from assets_gateway_client.admin.commands import run_admin
from assets_gateway_client.admin.errors import AdminRefused
from assets_gateway_client.admin.http import admin_base_url
from assets_gateway_client.admin.inputs import (
    PolicySource,
    edited_version,
    explain_body,
    grant_body,
    load_manifest_text,
    load_policy_text,
    parse_instant,
    pointer_line,
)
from assets_gateway_client.admin.parser import add_admin_parser
from assets_gateway_client.admin.render import (
    format_duration,
    render_explain,
    render_failure,
    render_grant,
    render_kill_switch,
    render_policy_document,
    render_publish,
    render_reset,
    render_simulation,
    render_table,
    render_team_state,
    render_usage,
    render_validation,
    render_versions,
)
from assets_gateway_client.answers import ApiAnswer
from assets_gateway_client.console import UsageError

GATEWAY = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1/client/v4"
ADMIN_ROOT = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1"
ADMIN_ARN = "arn:aws:sts::999999999999:assumed-role/platform-admin/alice"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

POLICY_YAML = """\
# the org's policy
defaults:
  max_entries: 20000
teams:
  web:
    principals:
      - arn:aws:iam::111111111111:role/web-deployer
    scripts: ["web-*"]
    paths:
      - /**
  docs:
    principals: [arn:aws:iam::222222222222:user/docs-ci]
    scripts:
      - docs
      - docs-*
"""
POLICY = load_policy_text(POLICY_YAML, "policy.yaml")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="assets-gateway")
    add_admin_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["admin", *argv])


def envelope(result: Any = None, *, errors: Any = (), messages: Any = ()) -> dict[str, Any]:
    return {
        "success": not errors,
        "errors": list(errors),
        "messages": list(messages),
        "result": result,
    }


class Door:
    """A scripted admin door: answers in order, keeps every request it was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    def route(self, index: int = -1) -> str:
        request = self.requests[index]
        return f"{request.method} {request.url.raw_path.decode()}"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def run(door: Door, *argv: str, sleeps: Callable[[float], None] | None = None) -> int:
    args = parse(*argv, "--gateway", GATEWAY)
    return run_admin(
        args,
        auth=httpx.Auth(),
        transport=httpx.MockTransport(door),
        sleep=sleeps if sleeps is not None else Sleeps(),
        now=lambda: NOW,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A policy file, as an admin writes it."""
    written = tmp_path / "policy.yaml"
    written.write_text(POLICY_YAML)
    return written


def policy_answer(version: int, policy: Any = None) -> httpx.Response:
    return httpx.Response(
        200,
        json=envelope(
            {
                "version": version,
                "policy": policy if policy is not None else POLICY,
                "published_by": ADMIN_ARN,
                "published_at": "2025-05-30T08:00:00Z",
                "reason": "seed",
            }
        ),
        headers={"ETag": f'"{version}"'},
    )


# ----------------------------------------------------------------------------- parsing


def test_common_options_follow_the_command() -> None:
    args = parse(
        "usage", "--team", "web", "--window", "day", "--json", "--profile", "p", "--region", "r"
    )
    assert (args.admin_action, args.team, args.window, args.json) == ("usage", "web", "day", True)
    assert (args.profile, args.region, args.gateway) == ("p", "r", None)


def test_publish_takes_a_file_a_reason_and_an_optional_if_match() -> None:
    args = parse("policy", "publish", "p.yaml", "--reason", "why", "--if-match", '"7"')
    assert (args.admin_action, args.file, args.reason, args.if_match) == (
        "policy publish",
        "p.yaml",
        "why",
        7,
    )
    assert parse("policy", "publish", "p.yaml", "--reason", "why").if_match is None


@pytest.mark.parametrize(
    "argv",
    [
        ["policy", "publish", "p.yaml"],  # no reason
        ["policy", "publish", "p.yaml", "--reason", "x", "--if-match", "seven"],
        ["policy", "get", "--format", "toml"],
        ["policy", "versions", "--limit", "0"],
        ["grant", "web", "--reason", "x", "--sessions-per-day", "5"],  # no expiry
        ["grant", "web", "--reason", "x", "--hours", "2", "--expires", "2030-01-01T00:00:00Z"],
        ["grant", "web", "--reason", "x", "--hours", "-1", "--sessions-per-day", "5"],
        ["grant", "web", "--reason", "x", "--hours", "1", "--sessions-per-day", "0"],
        ["reset-usage", "web", "--window", "week", "--reason", "x"],
        ["kill-switch", "pause", "--reason", "x"],
        ["usage", "--window", "week"],
        ["explain", "--principal", "arn", "--account", "a"],  # no script
        ["suspend", "--reason", "x"],  # no team
        ["policy"],
    ],
)
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_grant_quota_options_and_expiry() -> None:
    args = parse(
        "grant", "docs", "--reason", "launch", "--hours", "6", "--sessions-per-minute", "20",
        "--bytes-per-day", "1048576",
    )  # fmt: skip
    assert grant_body(args, NOW) == {
        "quotas": {"sessions_per_minute": 20, "bytes_per_day": 1048576},
        "reason": "launch",
        "expires_at": "2025-06-01T18:00:00Z",
    }
    later = parse("grant", "docs", "--reason", "r", "--expires", "2025-06-02T09:30:00+02:00",
                  "--entries-per-day", "5")  # fmt: skip
    assert grant_body(later, NOW)["expires_at"] == "2025-06-02T07:30:00Z"


def test_a_grant_needs_a_quota_and_a_future_expiry() -> None:
    with pytest.raises(UsageError, match="at least one"):
        grant_body(parse("grant", "docs", "--reason", "r", "--hours", "1"), NOW)
    past = parse("grant", "docs", "--reason", "r", "--expires", "2025-06-01T11:00:00Z",
                 "--sessions-per-day", "1")  # fmt: skip
    with pytest.raises(UsageError, match="in the past"):
        grant_body(past, NOW)


def explain_args(*extra: str) -> argparse.Namespace:
    return parse(
        "explain", "--principal", ADMIN_ARN, "--account", "0" * 32, "--script", "web-a", *extra
    )


def test_explain_body_from_a_summary_a_manifest_or_nothing() -> None:
    summary = explain_args(
        *("--namespace", "customer-x", "--entries", "2", "--bytes", "30"),
        *("--path", "/a", "--path", "/b", "--largest-file-bytes", "20"),
    )
    assert explain_body(summary, None) == {
        "principal": ADMIN_ARN,
        "account_id": "0" * 32,
        "script_name": "web-a",
        "namespace": "customer-x",
        "summary": {"entries": 2, "bytes": 30, "paths": ["/a", "/b"], "largest_file_bytes": 20},
    }
    manifest = {"/a": {"hash": "ab", "size": 1}}
    assert explain_body(explain_args(), manifest)["manifest"] == manifest
    bare = explain_body(explain_args(), None)
    assert "manifest" not in bare
    assert "summary" not in bare


@pytest.mark.parametrize(
    ("extra", "manifest", "message"),
    [
        (["--entries", "1", "--bytes", "2"], {"/a": {}}, "not both"),
        (["--entries", "1"], None, "both --entries"),
        (["--path", "/a"], None, "need --entries"),
    ],
)
def test_explain_refuses_mixed_or_partial_descriptions(
    extra: list[str], manifest: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        explain_body(explain_args(*extra), manifest)


@pytest.mark.parametrize(
    ("url", "root"),
    [
        (GATEWAY, ADMIN_ROOT),
        (GATEWAY + "/", ADMIN_ROOT),
        (ADMIN_ROOT, ADMIN_ROOT),
        ("http://127.0.0.1:8787/client/v4", "http://127.0.0.1:8787"),
        ("https://gateway.example.com", "https://gateway.example.com"),
    ],
)
def test_admin_routes_live_at_the_stage_root(url: str, root: str) -> None:
    assert admin_base_url(url) == root


def test_instants_are_sent_in_utc() -> None:
    assert parse_instant("2025-06-01T12:00:00Z", "--since") == "2025-06-01T12:00:00Z"
    assert parse_instant("2025-06-01T14:00:00+02:00", "--since") == "2025-06-01T12:00:00Z"
    assert parse_instant("2025-06-01", "--since") == "2025-06-01T00:00:00Z"
    with pytest.raises(UsageError, match="--until 'yesterday'"):
        parse_instant("yesterday", "--until")


# ----------------------------------------------------------------------------- files


def test_yaml_policy_keeps_order_and_reads_timestamps_as_text() -> None:
    assert list(POLICY["teams"]) == ["web", "docs"]
    assert POLICY["teams"]["web"]["scripts"] == ["web-*"]
    document = load_policy_text("teams: {}\ngrants:\n  - expires_at: 2025-06-01T00:00:00Z\n", "p")
    assert document["grants"][0]["expires_at"] == "2025-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("teams:\n  web: {}\n  web: {}\n", "p.yaml", "duplicate key 'web' \\(first at line 2\\)"),
        ('{"teams": {"web": {}, "web": {}}}', "p.json", "duplicate key 'web'"),
        ('{"teams": {}, "x": NaN}', "p.json", "NaN is not a JSON number"),
        ("teams: {}\nx: .inf\n", "p.yaml", "JSON cannot carry"),
        ("teams: {}\nx: !!binary aGk=\n", "p.yaml", "JSON cannot carry"),
        ("- a\n- b\n", "p.yaml", "must hold the policy document"),
        ('{"teams": ', "p.json", "p.json line 1 column 11"),
        ("teams: [\n", "p.yaml", "p.yaml"),
        ('{"version": 3, "policy": {"teams": {}}}', "p.json", "policy get --json"),
    ],
)
def test_bad_policy_files_are_refused_locally(text: str, name: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_policy_text(text, name)


def test_manifest_files_hold_the_request_body_or_the_bare_manifest() -> None:
    manifest = {"/index.html": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}
    assert load_manifest_text(json.dumps({"manifest": manifest}), "m") == manifest
    assert load_manifest_text(json.dumps(manifest), "m") == manifest
    with pytest.raises(UsageError, match="manifest object"):
        load_manifest_text("[]", "m")


def test_pointers_land_on_the_lines_of_the_file() -> None:
    assert pointer_line(POLICY_YAML, "/teams/web/scripts/0") == 8
    assert pointer_line(POLICY_YAML, "/teams/docs/scripts/1") == 15
    assert pointer_line(POLICY_YAML, "/teams/docs") == 11
    assert pointer_line(POLICY_YAML, "/teams/docs/accounts") == 11  # missing: its parent
    assert pointer_line(POLICY_YAML, "") == 2
    as_json = json.dumps(POLICY, indent=2)
    assert as_json.splitlines()[pointer_line(as_json, "/teams/web/paths/0") - 1].strip() == '"/**"'  # type: ignore[operator]
    assert pointer_line("{a: ]", "/a") is None


def test_a_policy_source_locates_pointers_into_the_request_body(path: Path) -> None:
    source = PolicySource.read(str(path))
    assert source.document == POLICY
    assert source.locate("/policy/teams/web/paths/0") == f"{path} line 10"
    assert source.locate("/reason") is None


# ----------------------------------------------------------------------------- rendering


def test_tables_align_columns_right_align_numbers_and_span_multi_line_cells() -> None:
    table = render_table(
        ("NAME", "COUNT", "NOTES"),
        [("web", 1234, "one\ntwo"), ("documentation", None, True)],
        right=(1,),
    )
    assert table.splitlines() == [
        "NAME           COUNT  NOTES",
        "web            1,234  one",
        "                      two",
        "documentation      -  yes",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (42, "42 s"), (60, "1 min"), (185, "3 min 5 s"), (18120, "5 h 2 min"),
     (7200, "2 h"), (183600, "2 d 3 h"), (None, "-")],
)  # fmt: skip
def test_durations_read_like_people_say_them(seconds: object, text: str) -> None:
    assert format_duration(seconds) == text


def quota(name: str, limit: int, used: int, reset: int, window: int) -> dict[str, Any]:
    return {
        "name": name,
        "limit": limit,
        "used": used,
        "remaining": limit - used,
        "reset_seconds": reset,
        "window_seconds": window,
    }


def test_usage_table() -> None:
    result = {
        "teams": [
            {
                "team": "web",
                "quotas": [
                    quota("sessions-minute", 30, 3, 42, 60),
                    quota("bytes-day", 500 * 1024 * 1024, 1536, 3600, 86400),
                ],
            },
            {"team": "docs", "quotas": [quota("sessions-day", 100, 0, 7200, 86400)]},
        ],
        "cloudflare_budget": quota("cloudflare-5min", 1200, 12, 190, 300),
    }
    assert render_usage(result).splitlines() == [
        "TEAM   QUOTA                                   USED      LIMIT  REMAINING  WINDOW"
        "  RESETS IN",
        "web    sessions-minute                            3         30         27  minute  42 s",
        "web    bytes-day                            1.5 KiB  500.0 MiB  500.0 MiB  day     1 h",
        "docs   sessions-day                               0        100        100  day     2 h",
        "(org)  cloudflare budget (cloudflare-5min)       12      1,200      1,188  5 min"
        "   3 min 10 s",
    ]
    assert render_usage({"teams": []}) == "no usage recorded"


def test_versions_table_marks_the_current_version_and_lists_changes() -> None:
    result = {
        "current": 3,
        "versions": [
            {"version": 3, "published_by": ADMIN_ARN, "published_at": "2025-06-01T10:00:00Z",
             "reason": "docs\nlaunch", "changes": ["team docs: quotas changed", "team x added"]},
            {"version": 2, "published_by": ADMIN_ARN, "published_at": "2025-05-01T10:00:00Z",
             "reason": "seed", "changes": []},
        ],
    }  # fmt: skip
    lines = render_versions(result).splitlines()
    assert lines[0].split() == [
        "VERSION",
        "PUBLISHED",
        "AT",
        "PUBLISHED",
        "BY",
        "REASON",
        "CHANGES",
    ]
    assert lines[1].startswith("3 (current)  2025-06-01T10:00:00Z  " + ADMIN_ARN + "  docs launch")
    assert lines[1].endswith("team docs: quotas changed")
    assert lines[2].strip() == "team x added"
    assert lines[3].startswith("2            2025-05-01T10:00:00Z")
    assert lines[3].split()[-2:] == ["seed", "-"]
    assert render_versions({"current": 0, "versions": []}) == "no policy version published"


def test_the_policy_document_prints_as_yaml_that_reads_back_the_same() -> None:
    result = {
        "version": 7,
        "policy": POLICY,
        "published_by": ADMIN_ARN,
        "published_at": "2025-06-01T10:00:00Z",
        "reason": "more\nquota",
    }
    text = render_policy_document(result)
    assert text.splitlines()[:3] == [
        f"# assets-gateway policy version 7, published 2025-06-01T10:00:00Z by {ADMIN_ARN}",
        "# reason: more quota",
        "# to publish an edited copy: assets-gateway admin policy publish FILE --reason TEXT "
        "--if-match 7",
    ]
    assert "  web:\n    principals:\n    - arn:aws:iam::111111111111:role/web-deployer\n" in text
    assert load_policy_text(text, "p.yaml") == POLICY
    assert json.loads(render_policy_document(result, "json")) == POLICY
    # A string that looks like a date stays a string through the round trip.
    dated = {"policy": {"teams": {}, "note": "2025-06-01"}}
    assert load_policy_text(render_policy_document(dated), "p")["note"] == "2025-06-01"


def test_validation_publish_and_failure_show_pointers_with_file_lines() -> None:
    source = PolicySource("policy.yaml", POLICY_YAML, POLICY)
    warning = {"message": "glob matches nothing", "pointer": "/policy/teams/docs/scripts/1"}
    valid = render_validation(
        {"valid": True, "warnings": [warning], "changes": ["x"]}, source.locate
    )
    assert valid.splitlines() == [
        "policy is valid",
        "warnings:",
        "  - glob matches nothing (/policy/teams/docs/scripts/1; policy.yaml line 15)",
        "changes against the current policy:",
        "  - x",
    ]
    assert "no changes against the current policy" in render_validation({"valid": True})
    published = render_publish(
        {"version": 8, "published_by": ADMIN_ARN, "published_at": "t", "reason": "r",
         "changes": ["team docs added"], "warnings": []}
    )  # fmt: skip
    assert published.splitlines() == [
        f"published policy version 8 (by {ADMIN_ARN} at t)",
        "reason: r",
        "changes:",
        "  - team docs added",
    ]
    answer = ApiAnswer(
        status=400,
        errors=(
            {"code": 19051, "message": "not a glob",
             "source": {"pointer": "/policy/teams/web/scripts/0"}},
            {"code": 19051, "message": "field required",
             "source": {"pointer": "/policy/teams/docs/accounts"}},
        ),
        messages=({"message": "unused team", "source": {"pointer": "/policy/teams/docs"}},),
        request_id="req-1",
    )  # fmt: skip
    refusal = AdminRefused("validating policy.yaml", answer)
    refusal.locate = source.locate
    assert render_failure(refusal).splitlines() == [
        "assets-gateway: error: validating policy.yaml: HTTP 400",
        "  error 19051 not a glob (/policy/teams/web/scripts/0; policy.yaml line 8)",
        "  error 19051 field required (/policy/teams/docs/accounts; policy.yaml line 11)",
        "  - unused team (/policy/teams/docs; policy.yaml line 11)",
        "  request id req-1",
    ]


def test_failures_carry_hints_and_bodies_that_are_not_envelopes() -> None:
    admin_only = ApiAnswer(status=403, errors=({"code": 19050, "message": "admins only"},))
    text = render_failure(AdminRefused("reading usage", admin_only))
    assert "error 19050 admins only" in text
    assert "hint: only the org's admins" in text
    garbled = render_failure(AdminRefused("reading usage", ApiAnswer(502, text="<html>")))
    assert garbled == "assets-gateway: error: reading usage: HTTP 502 '<html>'"
    unreachable = render_failure(AdminRefused("reading usage", None, detail="cannot reach x"))
    assert unreachable == "assets-gateway: error: reading usage: cannot reach x"


def test_explain_shows_the_verdict_reasons_quotas_and_rules() -> None:
    text = render_explain(
        {
            "allowed": False,
            "team": "docs",
            "policy_version": 4,
            "reasons": [
                {"code": 19011, "message": "script not allowed"},
                {"code": 19011, "message": "path outside", "pointer": "/manifest/~1x"},
            ],
            "rules": {"scripts": ["docs"], "max_entries": 1000},
            "quotas": [quota("sessions-minute", 5, 1, 30, 60)],
        }
    )
    assert text.splitlines() == [
        "REFUSED: team docs, policy version 4",
        "reasons:",
        "  - 19011 script not allowed",
        "  - 19011 path outside (/manifest/~1x)",
        "quotas:",
        "  QUOTA            USED  LIMIT  REMAINING  WINDOW  RESETS IN",
        "  sessions-minute     1      5          4  minute  30 s",
        "rules of team docs:",
        "  scripts:",
        "  - docs",
        "  max_entries: 1000",
    ]
    assert render_explain({"allowed": True, "team": None}).startswith("ALLOWED: team (none)")


def test_simulation_report() -> None:
    result = {
        "period": {"since": "2025-05-31T12:00:00Z", "until": "2025-06-01T12:00:00Z"},
        "decisions": 1500,
        "changed": 1,
        "not_evaluable": 2,
        "teams": {
            "docs": {
                "decisions": 1500,
                "unchanged": 1499,
                "now_refused": 1,
                "now_allowed": 0,
                "examples": [
                    {"request_id": "r1", "at": "2025-06-01T09:00:00Z", "principal": "arn:p",
                     "account_id": "acc", "script_name": "docs", "was": "allowed",
                     "now": "refused", "reasons": ["too many entries"]},
                ],
            }
        },
    }  # fmt: skip
    assert render_simulation(result).splitlines() == [
        "period 2025-05-31T12:00:00Z to 2025-06-01T12:00:00Z: 1,500 decisions replayed, "
        "1 would change, 2 not evaluable",
        "",
        "TEAM  DECISIONS  UNCHANGED  NOW REFUSED  NOW ALLOWED",
        "docs      1,500      1,499            1            0",
        "",
        "examples of changed decisions:",
        "AT                    TEAM  PRINCIPAL  ACCOUNT  SCRIPT  CHANGE              REASONS"
        "           REQUEST",
        "2025-06-01T09:00:00Z  docs  arn:p      acc      docs    allowed -> refused"
        "  too many entries  r1",
    ]


def test_team_reset_and_kill_switch_confirmations() -> None:
    assert (
        render_team_state({"version": 9, "team": "web", "suspended": True})
        == "team web is suspended (policy version 9): its callers get 19010"
    )
    assert (
        render_team_state({"version": 10, "team": "web", "suspended": False})
        == "team web is not suspended (policy version 10)"
    )
    reset = render_reset(
        {
            "team": "docs",
            "reset": ["sessions-minute"],
            "before": [quota("sessions-minute", 5, 5, 9, 60)],
        }
    )
    assert reset.splitlines()[0] == "team docs: reset sessions-minute"
    assert "sessions-minute     5      5          0  minute  9 s" in reset
    engaged = render_kill_switch(
        {
            "version": 11,
            "kill_switch": {"engaged": True, "reason": "incident", "by": "a", "at": "t"},
        }
    )
    assert engaged.splitlines() == [
        "kill switch ENGAGED (policy version 11): the session door answers 503 (19013) to every "
        "request",
        "  by a at t",
        "  reason: incident",
    ]


# ----------------------------------------------------------------------------- the commands


def test_publish_without_if_match_replaces_the_current_version(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = {"version": 4, "published_by": ADMIN_ARN, "published_at": "t", "reason": "why",
                 "changes": ["team docs added"], "warnings": []}  # fmt: skip
    door = Door(policy_answer(3), httpx.Response(200, json=envelope(published)))
    assert run(door, "policy", "publish", str(path), "--reason", "why") == 0
    assert [door.route(0), door.route(1)] == ["GET /v1/admin/policy", "PUT /v1/admin/policy"]
    assert door.requests[1].headers["If-Match"] == '"3"'
    assert door.requests[1].headers["Content-Type"] == "application/json"
    assert door.body(1) == {"policy": POLICY, "reason": "why"}
    out = capsys.readouterr()
    assert out.out.startswith("published policy version 4")
    assert "replacing the current version 3" in out.err


def test_publish_when_nothing_is_published_uses_if_match_0(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    nothing = httpx.Response(
        503, json=envelope(errors=[{"code": 19012, "message": "no policy is published"}])
    )
    door = Door(nothing, httpx.Response(200, json=envelope({"version": 1})))
    assert run(door, "policy", "publish", str(path), "--reason", "first", "--json") == 0
    assert door.requests[1].headers["If-Match"] == '"0"'
    assert len(door.requests) == 2  # the 503 without Retry-After is not retried


def test_a_stale_publish_exits_1_with_the_conflict(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conflict = httpx.Response(
        409,
        json=envelope(errors=[{"code": 19052, "message": "version 5 is current, not 4"}]),
        headers={"X-Request-Id": "req-9"},
    )
    door = Door(conflict)
    assert run(door, "policy", "publish", str(path), "--reason", "x", "--if-match", "4") == 1
    assert door.requests[0].headers["If-Match"] == '"4"'
    err = capsys.readouterr().err
    assert "publishing the policy: HTTP 409" in err
    assert "error 19052 version 5 is current, not 4" in err
    assert "hint: someone published since" in err
    assert "request id req-9" in err


def test_an_invalid_policy_exits_1_with_pointers_into_the_file(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invalid = httpx.Response(
        400,
        json=envelope(
            errors=[{"code": 19051, "message": "bad glob",
                     "source": {"pointer": "/policy/teams/docs/scripts/1"}}],
            messages=[{"message": "team docs has no accounts",
                       "source": {"pointer": "/policy/teams/docs"}}],
        ),
    )  # fmt: skip
    door = Door(invalid)
    assert run(door, "policy", "validate", str(path)) == 1
    assert door.route() == "POST /v1/admin/policy:validate"
    assert door.body() == {"policy": POLICY}
    out = capsys.readouterr()
    assert out.out == ""
    assert f"error 19051 bad glob (/policy/teams/docs/scripts/1; {path} line 15)" in out.err
    assert f"- team docs has no accounts (/policy/teams/docs; {path} line 11)" in out.err


def test_a_bad_file_exits_2_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    door = Door()
    assert run(door, "policy", "validate", str(tmp_path / "missing.yaml")) == 2
    path = tmp_path / "dup.yaml"
    path.write_text("teams:\n  web: {}\n  web: {}\n")
    assert run(door, "policy", "publish", str(path), "--reason", "x") == 2
    assert door.requests == []
    err = capsys.readouterr().err
    assert "cannot read" in err
    assert "duplicate key 'web'" in err


def test_rollback_publishes_the_old_policy_over_the_current_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = {"teams": {"web": POLICY["teams"]["web"]}}
    door = Door(
        policy_answer(2, old), policy_answer(5), httpx.Response(200, json=envelope({"version": 6}))
    )
    assert run(door, "policy", "rollback", "2", "--reason", "bad quota") == 0
    assert [door.route(i) for i in range(3)] == [
        "GET /v1/admin/policy/versions/2",
        "GET /v1/admin/policy",
        "PUT /v1/admin/policy",
    ]
    assert door.requests[2].headers["If-Match"] == '"5"'
    assert door.body(2) == {"policy": old, "reason": "rollback to version 2: bad quota"}
    assert capsys.readouterr().out.startswith("published policy version 6")


def test_rollback_to_the_current_version_publishes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    door = Door(policy_answer(5), policy_answer(5))
    assert run(door, "policy", "rollback", "5", "--reason", "x") == 0
    assert len(door.requests) == 2
    assert "nothing published" in capsys.readouterr().err


def test_policy_get_prints_yaml_or_writes_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    door = Door(policy_answer(7), policy_answer(3))
    assert run(door, "policy", "get") == 0
    out = capsys.readouterr()
    assert load_policy_text(out.out, "stdout") == POLICY
    assert "policy version 7, published 2025-05-30T08:00:00Z" in out.err
    target = tmp_path / "v3.json"
    assert run(door, "policy", "get", "--version", "3", "--format", "json", "--output",
               str(target)) == 0  # fmt: skip
    assert door.route() == "GET /v1/admin/policy/versions/3"
    assert json.loads(target.read_text()) == POLICY
    assert capsys.readouterr().out == ""


def test_versions_pass_limit_and_before_and_point_to_older_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    versions: list[dict[str, Any]] = [{"version": v, "changes": []} for v in (9, 8)]
    door = Door(httpx.Response(200, json=envelope({"current": 9, "versions": versions})))
    assert run(door, "policy", "versions", "--limit", "2", "--before", "10") == 0
    assert door.route() == "GET /v1/admin/policy/versions?limit=2&before=10"
    assert "older versions: --before 8" in capsys.readouterr().err


def test_simulate_reads_stdin_and_sends_the_period_in_utc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    door = Door(httpx.Response(200, json=envelope({"decisions": 0, "teams": {}})))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(POLICY)))
    assert run(door, "policy", "simulate", "-", "--since", "2025-05-01T02:00:00+02:00") == 0
    assert door.route() == "POST /v1/admin/policy:simulate"
    assert door.body() == {"policy": POLICY, "since": "2025-05-01T00:00:00Z"}


def test_simulate_reads_relative_times_from_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    door = Door(httpx.Response(200, json=envelope({"decisions": 0, "teams": {}})))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(POLICY)))
    assert run(door, "policy", "simulate", "-", "--since", "7d", "--until", "90m") == 0
    assert door.body() == {
        "policy": POLICY,
        "since": "2025-05-25T12:00:00Z",  # NOW less 7 days
        "until": "2025-06-01T10:30:00Z",  # NOW less 90 minutes
    }


def test_a_relative_time_is_no_instant_where_there_is_no_clock() -> None:
    with pytest.raises(UsageError, match="not an ISO 8601"):
        parse_instant("7d", "--expires")


def test_explain_exits_1_when_the_decision_is_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = {"/index.html": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"manifest": manifest}))
    reasons = [{"code": 19011, "message": "no"}]
    refused = {"allowed": False, "team": "docs", "policy_version": 3, "reasons": reasons}
    door = Door(
        httpx.Response(200, json=envelope(refused)),
        httpx.Response(200, json=envelope({**refused, "allowed": True, "reasons": []})),
    )
    argv = ["explain", "--principal", "arn:p", "--account", "a" * 32, "--script", "docs"]
    assert run(door, *argv, "--manifest", str(path)) == 1
    assert door.body() == {
        "principal": "arn:p",
        "account_id": "a" * 32,
        "script_name": "docs",
        "manifest": manifest,
    }
    assert run(door, *argv, "--json") == 0
    out = capsys.readouterr().out
    assert out.startswith("REFUSED: team docs")
    assert json.loads(out[out.index("{") :])["allowed"] is True


def test_explain_refuses_a_manifest_too_large_for_the_door(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({f"/assets/file-{i:06}.txt": entry for i in range(110_000)}))
    door = Door()
    argv = ["explain", "--principal", "arn:p", "--account", "a" * 32, "--script", "docs"]
    assert run(door, *argv, "--manifest", str(path)) == 2
    assert door.requests == []
    assert "describe it with --entries N --bytes N" in capsys.readouterr().err


def test_team_routes_methods_and_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    def ok(result: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=envelope(result))

    door = Door(
        ok({"version": 2, "team": "web", "suspended": True}),
        ok({"version": 3, "team": "web", "suspended": False}),
        ok({"team": "web", "reset": ["sessions-day"], "before": []}),
        ok({"version": 4, "grant": {"quotas": {"sessions_per_day": 5}}}),
        ok({"version": 5, "kill_switch": {"engaged": True}}),
        ok({"teams": [], "cloudflare_budget": None}),
    )
    assert run(door, "suspend", "web", "--reason", "incident 42") == 0
    assert run(door, "resume", "web", "--reason", "fixed") == 0
    assert run(door, "reset-usage", "web", "--window", "day", "--reason", "a b") == 0
    assert (
        run(door, "grant", "web", "--reason", "r", "--hours", "1", "--sessions-per-day", "5") == 0
    )
    assert run(door, "kill-switch", "engage", "--reason", "stop") == 0
    assert run(door, "usage", "--team", "web", "--window", "minute") == 0
    assert [door.route(i) for i in range(6)] == [
        "POST /v1/admin/teams/web:suspend",
        "POST /v1/admin/teams/web:resume",
        "DELETE /v1/admin/teams/web/usage?window=day&reason=a+b",
        "POST /v1/admin/teams/web/grants",
        "POST /v1/admin/kill-switch:engage",
        "GET /v1/admin/usage?team=web&window=minute",
    ]
    assert [door.body(i) for i in (0, 1, 4)] == [
        {"reason": "incident 42"},
        {"reason": "fixed"},
        {"reason": "stop"},
    ]
    assert door.body(3)["expires_at"] == "2025-06-01T13:00:00Z"
    out = capsys.readouterr().out
    assert "team web is suspended (policy version 2)" in out
    assert "grant recorded for team web (policy version 4)\n  quotas: sessions_per_day 5" in out


def test_reads_are_retried_and_changes_are_not(capsys: pytest.CaptureFixture[str]) -> None:
    busy = httpx.Response(429, json=envelope(errors=[{"code": 19021, "message": "busy"}]),
                          headers={"Retry-After": "3"})  # fmt: skip
    door = Door(
        httpx.ConnectError("refused"), busy, httpx.Response(200, json=envelope({"teams": []}))
    )
    sleeps = Sleeps()
    assert run(door, "usage", sleeps=sleeps) == 0
    assert sleeps == [1.0, 3.0]
    door = Door(httpx.Response(502, text="bad gateway"))
    assert run(door, "suspend", "web", "--reason", "x", sleeps=sleeps) == 1
    assert len(door.requests) == 1
    door = Door(*(httpx.ConnectError("refused") for _ in range(3)))
    assert run(door, "usage", sleeps=sleeps) == 1
    assert len(door.requests) == 3
    err = capsys.readouterr().err
    assert "suspending team web: HTTP 502 'bad gateway'" in err
    assert "reading usage: cannot reach " + ADMIN_ROOT + "/admin/usage: ConnectError" in err


def test_requests_are_signed_with_the_credential_chain_for_the_url_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNITTESTADMIN001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret")
    door = Door(httpx.Response(200, json=envelope({"teams": []})))
    args = parse("usage", "--gateway", GATEWAY)
    assert run_admin(args, transport=httpx.MockTransport(door)) == 0
    authorization = door.requests[0].headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIAUNITTESTADMIN001/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization


def test_missing_gateway_url_or_credentials_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ASSETS_GATEWAY_URL", raising=False)
    assert cli.main(["admin", "usage"]) == 2
    assert "no gateway URL" in capsys.readouterr().err
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("ASSETS_GATEWAY_URL", GATEWAY)
    assert cli.main(["admin", "usage"]) == 2
    assert "no AWS credentials" in capsys.readouterr().err
    assert cli.main(["admin", "usage", "--profile", "nobody"]) == 2
    assert "AWS credentials: The config profile (nobody) could not be found" in (
        capsys.readouterr().err
    )


def test_a_file_written_by_policy_get_publishes_over_the_version_it_came_from() -> None:
    header = "# assets-gateway policy version 12, published 2026-11-25T09:00:00Z by x\nteams: {}\n"
    assert edited_version(header) == 12
    assert edited_version("teams: {}\n") is None


# ------------------------------------------------------------------- changes that change nothing


def unchanged(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "version": 7, "changed": False}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            render_publish(unchanged({"published_by": ADMIN_ARN, "changes": []})),
            "unchanged: version 7 is already the current policy; no new version published",
        ),
        (
            render_team_state(unchanged({"team": "web", "suspended": True})),
            "unchanged: team web is already suspended in version 7; no new version published",
        ),
        (
            render_team_state(unchanged({"team": "web", "suspended": False})),
            "unchanged: team web is already not suspended in version 7; no new version published",
        ),
        (
            render_kill_switch(unchanged({"kill_switch": {"engaged": True}})),
            "unchanged: the kill switch is already engaged in version 7; no new version published",
        ),
        (
            render_grant("docs", unchanged({"grant": {"reason": "launch"}})).splitlines()[0],
            "unchanged: version 7 already holds this grant for team docs; no new version published",
        ),
    ],
)
def test_a_change_that_changes_nothing_says_so_plainly(text: str, expected: str) -> None:
    assert text.splitlines()[0] == expected


@pytest.mark.parametrize("changed", [True, None])
def test_a_change_made_reads_as_before(changed: bool | None) -> None:
    result: dict[str, Any] = {"version": 8, "team": "web", "suspended": True}
    if changed is not None:
        result["changed"] = changed
    assert render_team_state(result) == (
        "team web is suspended (policy version 8): its callers get 19010"
    )
    published = render_publish({**result, "published_by": "a", "published_at": "t"})
    assert published.startswith("published policy version 8 (by a at t)")


def test_publishing_the_current_policy_again_prints_unchanged(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_op = {"version": 7, "changed": False, "published_by": ADMIN_ARN, "changes": []}
    message = {"code": 19056, "message": "the policy is version 7's: no new version published"}
    door = Door(httpx.Response(200, json=envelope(no_op, messages=[message])))
    assert run(door, "policy", "publish", str(path), "--reason", "x", "--if-match", "7") == 0
    assert capsys.readouterr().out == (
        "unchanged: version 7 is already the current policy; no new version published\n"
    )
    door = Door(httpx.Response(200, json=envelope(no_op, messages=[message])))
    assert run(door, "suspend", "web", "--reason", "x", "--json") == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False  # --json: the result as is
