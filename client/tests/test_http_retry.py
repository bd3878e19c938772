"""The upload client's retries (`http_retry.Retrying`) over an httpx MockTransport: the shared
loop with wrangler's numbers, `Retry-After` as seconds or as an HTTP date read on the injected
clock, a stop honoured before any wait. Nothing sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from assets_gateway_client.answers import UploadError
from assets_gateway_client.http_retry import Retrying

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def answers(
    *outcomes: httpx.Response | Exception,
) -> tuple[Callable[[], httpx.Response], list[int]]:
    """A sender answering in order, and the list of attempts it counts."""
    remaining, sent = list(outcomes), [0]
    client = httpx.Client(transport=httpx.MockTransport(lambda request: _next(remaining)))

    def send() -> httpx.Response:
        sent[0] += 1
        return client.get("https://gateway.example/x")

    return send, sent


def _next(remaining: list[httpx.Response | Exception]) -> httpx.Response:
    outcome = remaining.pop(0)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def retrying(slept: list[float]) -> Retrying:
    return Retrying(sleep=slept.append, clock=NOW.timestamp)


def test_an_http_date_is_waited_for_on_the_injected_clock() -> None:
    in_five_seconds = format_datetime(NOW.replace(second=5), usegmt=True)
    send, _sent = answers(
        httpx.Response(503, headers={"Retry-After": in_five_seconds}), httpx.Response(200)
    )
    slept: list[float] = []
    plan = retrying(slept)
    assert plan.send(send, what="x").status_code == 200
    assert (slept, plan.retries) == ([5.0], 1)


def test_wranglers_numbers_backoff_then_give_up_with_the_last_answer() -> None:
    send, sent = answers(*(httpx.Response(502) for _ in range(4)))
    slept: list[float] = []
    assert retrying(slept).send(send, what="x").status_code == 502
    assert (slept, sent[0]) == ([1.0, 2.0, 4.0], 4)


def test_a_wait_over_60_s_is_handed_back_and_a_lost_answer_explained() -> None:
    send, sent = answers(httpx.Response(429, headers={"Retry-After": "61"}))
    slept: list[float] = []
    assert retrying(slept).send(send, what="x").status_code == 429
    assert (slept, sent[0]) == ([], 1)
    send, sent = answers(*(httpx.ConnectError("refused") for _ in range(4)))
    with pytest.raises(UploadError, match=r"uploading: ConnectError: refused \(after 4 attempts\)"):
        retrying(slept).send(send, what="uploading")


def test_once_stopped_nothing_more_is_waited_for_or_sent() -> None:
    stop = threading.Event()
    stop.set()
    send, sent = answers(httpx.Response(503), httpx.Response(200))
    slept: list[float] = []
    assert retrying(slept).send(send, what="x", stop=stop).status_code == 503
    assert (slept, sent[0]) == ([], 1)
