"""The admin commands: each reads its input, calls the admin door once or twice, prints the
result (a readable text, or the answer's `result` as JSON with `--json`) and returns the exit
status; `run_admin` runs the one parsed."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from assets_gateway_client import environment
from assets_gateway_client.admin import render
from assets_gateway_client.admin.errors import AdminRefused
from assets_gateway_client.admin.http import TIMEOUT, AdminClient, Sleep, admin_base_url
from assets_gateway_client.admin.inputs import (
    PolicySource,
    edited_version,
    explain_body,
    grant_body,
    load_manifest_text,
    parse_instant,
    read_text,
    version_tag,
)
from assets_gateway_client.admin.render import cell, items_of, mapping_of
from assets_gateway_client.answers import ApiAnswer, Locate
from assets_gateway_client.console import EXIT_FAILED, EXIT_OK, UsageError, exit_status
from assets_gateway_client.signing import profile_auth

__all__ = ["run_admin"]
MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
Now = Callable[[], datetime]  # the wall clock, for grants counted in hours from now


def _segment(value: str) -> str:
    return quote(value, safe="")


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

    def show(self, answer: ApiAnswer, render: Callable[[Mapping[str, Any]], str]) -> int:
        """Print a 2xx answer (`render` reads its result); the exit status: done."""
        self.emit(answer.result, render(mapping_of(answer.result)))
        return EXIT_OK

    def emit(self, result: Any, text: str) -> None:
        """stdout: the result as JSON with --json, else the readable text."""
        if self.args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print(text)


def _read_version(ctx: _Context, version: int) -> ApiAnswer:
    path = f"/admin/policy/versions/{version}"
    return ctx.client.call("GET", path, what=f"reading policy version {version}", retry=True)


def _policy_get(ctx: _Context) -> int:
    args = ctx.args
    if args.version is not None:
        answer = _read_version(ctx, args.version)
    else:
        answer = ctx.client.call("GET", "/admin/policy", what="reading the policy", retry=True)
    result = mapping_of(answer.result)
    if args.json:
        text = json.dumps(answer.result, indent=2, ensure_ascii=False) + "\n"
    else:
        text = render.render_policy_document(result, args.format)
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error}") from error
    ctx.note(
        f"policy version {cell(result.get('version'))}, published "
        f"{cell(result.get('published_at'))} by {cell(result.get('published_by'))}"
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
    result = mapping_of(answer.result)
    ctx.emit(answer.result, render.render_versions(result))
    versions = items_of(result.get("versions"))
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
    return ctx.show(answer, lambda result: render.render_validation(result, source.locate))


def _current_version(ctx: _Context) -> int:
    """The version a publish replaces: the current one, or 0 when nothing is published."""
    answer = ctx.client.send("GET", "/admin/policy", what="reading the current version", retry=True)
    if answer.status == 503 and answer.has_code(19012):
        ctx.note("no readable policy is published: publishing with If-Match 0")
        return 0
    if not answer.ok:
        raise AdminRefused("reading the current version", answer)
    version = mapping_of(answer.result).get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if answer.etag is not None:
        try:
            return version_tag(answer.etag)
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
    return ctx.show(answer, lambda result: render.render_publish(result, locate))


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
    answer = _read_version(ctx, target)
    policy = mapping_of(answer.result).get("policy")
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
    now = ctx.now()
    if ctx.args.since is not None:
        body["since"] = parse_instant(ctx.args.since, "--since", now)
    if ctx.args.until is not None:
        body["until"] = parse_instant(ctx.args.until, "--until", now)
    answer = ctx.client.call(
        "POST",
        "/admin/policy:simulate",
        what=f"simulating {source.name}",
        body=body,
        retry=True,
        locate=source.locate,
    )
    return ctx.show(answer, render.render_simulation)


def _explain(ctx: _Context) -> int:
    manifest = None
    if ctx.args.manifest is not None:
        name = "stdin" if ctx.args.manifest == "-" else ctx.args.manifest
        manifest = load_manifest_text(read_text(ctx.args.manifest), name)
    body = explain_body(ctx.args, manifest)
    size = len(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise UsageError(
            f"the manifest makes a {size:,}-byte request, over the {MAX_BODY_BYTES:,} bytes the "
            "admin door accepts: describe it with --entries N --bytes N [--largest-file-bytes N]"
        )
    answer = ctx.client.call(
        "POST", "/admin/explain", what="explaining the decision", body=body, retry=True
    )
    result = mapping_of(answer.result)
    ctx.emit(answer.result, render.render_explain(result))
    return EXIT_OK if result.get("allowed") is True else EXIT_FAILED


def _usage(ctx: _Context) -> int:
    params: dict[str, str | int] = {}
    if ctx.args.team:
        params["team"] = ctx.args.team
    if ctx.args.window:
        params["window"] = ctx.args.window
    answer = ctx.client.call("GET", "/admin/usage", what="reading usage", params=params, retry=True)
    return ctx.show(answer, render.render_usage)


def _grant(ctx: _Context) -> int:
    body = grant_body(ctx.args, ctx.now())
    team = ctx.args.team
    answer = ctx.client.call(
        "POST", f"/admin/teams/{_segment(team)}/grants", what=f"granting team {team}", body=body
    )
    return ctx.show(answer, lambda result: render.render_grant(team, result))


def _reset_usage(ctx: _Context) -> int:
    team = ctx.args.team
    answer = ctx.client.call(
        "DELETE",
        f"/admin/teams/{_segment(team)}/usage",
        what=f"resetting team {team}'s usage",
        params={"window": ctx.args.window, "reason": ctx.args.reason},
    )
    return ctx.show(answer, render.render_reset)


def _post_reason(ctx: _Context, path: str, what: str) -> ApiAnswer:
    """The changes whose only body is their reason: suspend, resume, the kill switch."""
    return ctx.client.call("POST", path, what=what, body={"reason": ctx.args.reason})


def _team_state(ctx: _Context) -> int:
    team, action = ctx.args.team, ctx.args.admin_action  # "suspend" or "resume"
    doing = "suspending" if action == "suspend" else "resuming"
    answer = _post_reason(ctx, f"/admin/teams/{_segment(team)}:{action}", f"{doing} team {team}")
    return ctx.show(answer, render.render_team_state)


def _kill_switch(ctx: _Context) -> int:
    action = ctx.args.switch_action  # "engage" or "release"
    doing = "engaging" if action == "engage" else "releasing"
    answer = _post_reason(ctx, f"/admin/kill-switch:{action}", f"{doing} the kill switch")
    return ctx.show(answer, render.render_kill_switch)


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
        signer = auth or profile_auth(base_url[0], profile=args.profile, region=args.region)
        http = httpx.Client(auth=signer, timeout=TIMEOUT, transport=transport)
        clients.append(http)
        return AdminClient(http, base_url[0], sleep=sleep)

    def run() -> int:
        base_url.append(admin_base_url(environment.gateway_url(args.gateway)))
        return _ACTIONS[args.admin_action](_Context(args, make_client, now))

    try:
        return exit_status(
            run, failures=(AdminRefused,), explain=_failure_text, interrupted="interrupted"
        )
    finally:
        for http in clients:
            http.close()


def _failure_text(error: Exception) -> str:
    return render.render_failure(error) if isinstance(error, AdminRefused) else str(error)
