"""The org's Cloudflare budget under load across window edges: does any 300 s hold more calls
than the budget allows, and does Cloudflare (the emulator, which counts any 5 minutes, 1,200 per
token, as Cloudflare does) ever answer 429?

The session service is built as the handler builds it (the real quota store on moto server, the
real Cloudflare client) with a simulated clock shared with a Cloudflare emulator of its own, so
hours of traffic run in minutes. The schedule is the one that defeated the fixed windows: at each
of `--edges` clock-aligned 300 s edges, `--burst` requests in the last second before it and as
many in the first second after it, and `--steady` requests a second in between; `--faults` makes
every 10th call Cloudflare receives answer 503, so retries (which the budget must count) join
the traffic.

Every request Cloudflare received is noted at its simulated arrival time (retries included);
the figures are over those, next to what the old fixed windows would have let through for the
same arrivals. Prints figures; asserts nothing.

    .venv/bin/python bench/budget_edges.py [--budget 1000] [--edges 2] [--burst 1300]
                                           [--steady 5] [--faults]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assets_gateway.domain.quota import MICROS, CallBudget
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from bench_support import roomy_policy
from gateway_local.cloudflare_emulator import CloudflareEmulator, Fault, busiest_window
from gateway_local.demo import DEMO_ACCOUNT_ID, web_session_request
from gateway_local.http_server import BackgroundServer
from gateway_local.stack import LocalStack, StackOptions
from window_edges import EDGE, edge_schedule, fixed_windows

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BODY = b'{"manifest": {"/index.html": {"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}}'


@dataclass
class SimClock:
    now: float = EDGE

    def __call__(self) -> float:
        return self.now


@dataclass
class Arrivals:
    """A WSGI layer in front of the emulator noting when (simulated) each session call came."""

    app: CloudflareEmulator
    clock: SimClock
    faults: bool = False
    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).endswith("/assets-upload-session"):
            with self.lock:
                self.times.append(self.clock())
                if self.faults and len(self.times) % 10 == 0:  # this very call answers 503
                    self.app.inject_fault(Fault(status=503, headers={"Retry-After": "0"}))
        return self.app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=2)
    parser.add_argument("--burst", type=int, default=1300)
    parser.add_argument("--steady", type=float, default=5.0)
    parser.add_argument("--faults", action="store_true")
    args = parser.parse_args()
    moments = edge_schedule(args.edges, args.burst, args.steady)
    clock = SimClock(moments[0])
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's JSON logs and EMF metrics
        stack = LocalStack(StackOptions(gateway_port=0))
        emulator = CloudflareEmulator(
            tokens={stack.cloudflare_token: [DEMO_ACCOUNT_ID]}, clock=clock
        )
        arrivals = Arrivals(emulator, clock, faults=args.faults)
        server = BackgroundServer(arrivals, name="bench-cloudflare")
        try:
            stack.publish_policy(roomy_policy())
            environment: dict[str, Any] = {
                **stack.handler_environment(),
                "GLOBAL_BUDGET_PER_5_MINUTES": str(args.budget),
                "CLOUDFLARE_API_BASE_URL": f"{server.url}/client/v4",
            }
            service = build_session_service(
                Settings.from_environ(environment), aws=stack.aws, now=clock
            )
            request = web_session_request(BODY, request_id="bench-edges")
            for moment in moments:
                clock.now = moment
                status = service.create_session(request).reply.status
                statuses[status] = statuses.get(status, 0) + 1
            limited = emulator.limited
        finally:
            server.stop()
            stack.stop()
    elapsed = time.perf_counter() - started

    budget = CallBudget.for_ceiling(args.budget)
    forwarded = sorted(arrivals.times)
    span = moments[-1] - moments[0]
    print(
        f"budget {args.budget} per 300 s: burst {budget.burst}, then one call every"
        f" {budget.interval_us / MICROS * 1000:.3f} ms"
    )
    faults = "; every 10th call Cloudflare receives answered 503" if args.faults else ""
    print(
        f"schedule: {len(moments):,} requests over {span:,.0f} simulated s across {args.edges}"
        f" window edges ({args.burst} in the second before each edge and {args.burst} in the"
        f" second after, {args.steady:g}/s between){faults}"
    )
    print(f"answers: {dict(sorted(statuses.items()))}  (ran in {elapsed:,.0f} s)")
    print(f"calls Cloudflare received (retries included): {len(forwarded):,}")
    print(
        f"max forwarded calls in any 300 s interval: {busiest_window(forwarded, 300)}"
        f" (ceiling {args.budget})"
    )
    print(f"max forwarded calls in any 105 s interval: {busiest_window(forwarded, 105)}")
    print(f"emulator (Cloudflare: 1,200 in any 300 s) answered 429: {limited} times")
    old = fixed_windows(args.budget, moments)
    print(
        f"the old fixed windows on the same arrivals: max {busiest_window(old, 300)} in any 300 s,"
        f" {busiest_window(old, 105)} in any 105 s (first attempts only)"
    )


if __name__ == "__main__":
    main()
