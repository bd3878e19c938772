"""AWS round trips per request of the session door, counted (not timed): one line per path,
`round_trips <path> <n>`, for what a warm execution environment does.

The session function's core is built exactly as `build_session_api` builds it (the same wiring
functions), on one boto3 session whose `before-call` event counts every botocore call its
clients make, against moto server and the Cloudflare emulator on loopback. The REST resolver in
front of it makes no AWS call. The first request warms the caches (the policy, the org token):
a cached read makes no call, so the warm figures count none; the cold request's count is printed
apart.

    .venv/bin/python bench/round_trips.py
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter

from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.ports.sessions import Outcome, SessionRequest
from bench_support import compact, generated_manifest
from gateway_local.aws_calls import counted_session_api
from gateway_local.demo import DEMO_ACCOUNT_ID, DOCS_CI, DOCS_SCRIPT, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack, StackOptions

WEB = Caller(WEB_DEPLOYER.principal_arn)
PATHS = ("admitted", "admitted_with_key", "replay", "refused_policy", "refused_quota", "dry_run")


class SessionFunction:
    """The session function's core on a counted boto3 session."""

    def __init__(self, stack: LocalStack) -> None:
        settings = Settings.from_environ(stack.handler_environment())
        self.counter, self.sessions = counted_session_api(settings)
        self._sequence = 0

    def request(
        self,
        *,
        caller: Caller = WEB,
        script: str = WEB_SCRIPT,
        prefix: str = "/assets",
        key: str | None = None,
        dry_run: bool = False,
        body: bytes | None = None,
    ) -> tuple[Outcome, Counter[str], bytes]:
        """One request (a fresh manifest unless `body` is given): its outcome, its calls, its
        body."""
        self._sequence += 1
        if body is None:
            files = generated_manifest(3)
            body = compact(
                {"manifest": {f"{prefix}/{self._sequence}{path}": e for path, e in files.items()}}
            )
        request = SessionRequest(
            caller=caller,
            target=SessionTarget(DEMO_ACCOUNT_ID, script),
            body=body,
            content_type="application/json",
            request_id=f"round-trips-{self._sequence}",
            dry_run=dry_run,
        )
        self.counter.take()
        result = self.sessions.create_session(request, key)
        return result.outcome, self.counter.take(), body


def count_paths(stack: LocalStack) -> tuple[dict[str, Counter[str]], Counter[str]]:
    """Each path's calls in a warm environment, and the calls of the environment's first
    request."""
    function = SessionFunction(stack)
    counted: dict[str, Counter[str]] = {}

    def expect(path: str, outcome: Outcome, found: tuple[Outcome, Counter[str], bytes]) -> bytes:
        if found[0] is not outcome:
            raise RuntimeError(f"{path}: expected {outcome.value}, got {found[0].value}")
        counted[path] = found[1]
        return found[2]

    outcome, cold, _ = function.request()  # warms the policy and token caches
    if outcome is not Outcome.ALLOWED:
        raise RuntimeError(f"the first request was {outcome.value}")
    expect("admitted", Outcome.ALLOWED, function.request())
    body = expect("admitted_with_key", Outcome.ALLOWED, function.request(key="round-trips-key"))
    expect("replay", Outcome.REPLAYED, function.request(key="round-trips-key", body=body))
    expect("refused_policy", Outcome.REFUSED_POLICY, function.request(script="not-a-web-script"))
    # The docs team may open 5 sessions a minute: the first refused one is counted.
    docs = Caller(DOCS_CI.principal_arn)
    for _ in range(10):
        found = function.request(caller=docs, script=DOCS_SCRIPT, prefix="/docs")
        if found[0] is not Outcome.ALLOWED:
            expect("refused_quota", Outcome.REFUSED_QUOTA, found)
            break
    expect("dry_run", Outcome.DRY_RUN, function.request(dry_run=True))
    return counted, cold


def main() -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the service's JSON logs
        stack = LocalStack(StackOptions(gateway_port=0))
        try:
            counted, cold = count_paths(stack)
        finally:
            stack.stop()
    for path in PATHS:
        calls = counted[path]
        detail = ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
        print(f"round_trips {path} {calls.total()}" + (f"  ({detail})" if detail else ""))
    detail = ", ".join(f"{name} {n}" for name, n in sorted(cold.items()))
    print(f"\ncold (the environment's first, admitted request): {cold.total()}  ({detail})")
    print("warm: the policy and the org token are cached (a cached read makes no call)")


if __name__ == "__main__":
    main()
