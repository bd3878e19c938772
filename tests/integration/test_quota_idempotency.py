"""A quota write applied once, even when DynamoDB answers late and botocore sends it again.

`LateFront` is a loopback HTTP proxy in front of moto server. The write it is told to hold goes
to moto (which applies it), but its answer is kept until the client gives up and closes the
connection (its read timeout); botocore then retries the very same request, which the front lets
through. Nothing races: the front waits for the client to leave, not for a clock. Everything
else passes through untouched.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import httpx
import pytest
from botocore.config import Config

from assets_gateway.adapters.quota_store import BUDGET_KEY, QuotaStore
from assets_gateway.domain.quota import MICROS, CallBudget, Charge, TeamQuotas
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from gateway_local.demo import web_session_request
from gateway_local.stack import LocalStack
from helpers import manifest_of, numbers_of, quota_items

TRANSACT = "DynamoDB_20120810.TransactWriteItems"
NOW = 1_795_608_010.0
# The longest the front keeps an answer: far past any client timeout used here; reaching it
# means the client never gave up, and the test fails on the retry count.
HOLD_AT_MOST_S = 60


class LateFront:
    def __init__(self, upstream: str) -> None:
        self._upstream = httpx.Client(base_url=upstream, timeout=30)
        self._lock = threading.Lock()
        self._hold: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.held: Counter[str] = Counter()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target = self.headers.get("X-Amz-Target", "")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = front._upstream.post(self.path, content=body, headers=headers)
                if front._take_hold(target):
                    front._until_client_leaves(self.connection)
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name in ("Content-Type", "x-amzn-RequestId", "x-amz-crc32"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold_next(self, target: str) -> None:
        """The next `target` call is applied by moto and answered never."""
        with self._lock:
            self._hold[target] += 1

    def _take_hold(self, target: str) -> bool:
        with self._lock:
            self.seen[target] += 1
            if self._hold[target] > 0:
                self._hold[target] -= 1
                self.held[target] += 1
                return True
            return False

    @staticmethod
    def _until_client_leaves(connection: socket.socket) -> None:
        """Block until the client closes its end (readable with nothing to read)."""
        readable, _, _ = select.select([connection], [], [], HOLD_AT_MOST_S)
        if readable:
            connection.recv(1, socket.MSG_PEEK)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


@pytest.fixture
def front(stack: LocalStack) -> Iterator[LateFront]:
    late = LateFront(stack.moto.endpoint_url)
    yield late
    late.stop()


def table_items(stack: LocalStack) -> dict[str, dict[str, int]]:
    """Numeric attributes of every team window, the calls counter and the budget item."""
    return {
        item["pk"]["S"]: numbers_of(item, ("sessions", "entries", "bytes", "calls", "tat"))
        for item in quota_items(stack)
        if item["pk"]["S"] != "global#cooldown"
    }


def test_a_late_answer_to_the_charge_does_not_charge_twice(
    stack: LocalStack, front: LateFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the service as the handler builds it (botocore's standard retries, its 5 s read
    timeout): the charge's answer never comes, botocore sends the same transaction again."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", front.url)
    service = build_session_service(
        Settings.from_environ(stack.handler_environment()), aws=stack.aws, now=lambda: NOW
    )
    body = json.dumps({"manifest": manifest_of({"/a": b"abc", "/b": b"defg"})}).encode()
    front.hold_next(TRANSACT)

    result = service.create_session(web_session_request(body, request_id="late-charge"))

    assert result.reply.status == 200
    assert front.held[TRANSACT] == 1
    assert front.seen[TRANSACT] >= 2  # the held one, and botocore's retry of it
    interval = CallBudget.for_ceiling(1000).interval_us
    assert table_items(stack) == {
        "team#web#60#1795608000": {"sessions": 1},
        "team#web#86400#1795564800": {"sessions": 1, "entries": 2, "bytes": 7},
        "global#300#1795608000": {"calls": 1},
        BUDGET_KEY: {"tat": round(NOW * MICROS) + interval},
    }


LIMITS = TeamQuotas(30, 1000, 10_000, 10**9, 120, 30, 200).limits()


def quick_store(stack: LocalStack, front: LateFront) -> QuotaStore:
    """The real store, with a client that gives up on an answer after 1 s (then retries)."""
    client = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    ).client(
        "dynamodb",
        endpoint_url=front.url,
        config=Config(read_timeout=1, retries={"mode": "standard", "max_attempts": 3}),
    )
    return QuotaStore(
        table_name=stack.names.quota_table, dynamodb=client, budget=CallBudget.for_ceiling(1000)
    )


def test_a_late_answer_to_the_refund_does_not_refund_twice(
    stack: LocalStack, front: LateFront
) -> None:
    store = quick_store(stack, front)
    ticket = store.charge("web", LIMITS, Charge(entries=2, bytes=7), NOW, "late-refund")
    front.hold_next(TRANSACT)

    store.refund(ticket)

    assert front.held[TRANSACT] == 1
    assert front.seen[TRANSACT] >= 3  # the charge, the held refund, its retry
    team = {key: value for key, value in table_items(stack).items() if key.startswith("team#")}
    assert team == {
        "team#web#60#1795608000": {"sessions": 0},
        "team#web#86400#1795564800": {"sessions": 0, "entries": 0, "bytes": 0},
    }


def test_a_late_answer_to_a_take_back_does_not_take_back_twice(
    stack: LocalStack, front: LateFront
) -> None:
    store = quick_store(stack, front)
    first = store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW, "kept")
    second = store.charge("web", LIMITS, Charge(entries=1, bytes=1), NOW, "never-left")
    front.hold_next(TRANSACT)

    assert store.take_back(second.call_id, NOW) is True
    assert store.take_back(second.call_id, NOW) is True  # said again: nothing more moves

    assert front.held[TRANSACT] == 1
    items = table_items(stack)
    assert items["global#300#1795608000"] == {"calls": 1}
    interval = CallBudget.for_ceiling(1000).interval_us
    assert items[BUDGET_KEY] == {"tat": round(NOW * MICROS) + interval}
    assert first.call_id != second.call_id
