"""The shared Retry-After reader and retry loop (assets_gateway_common.retry): pure, with the
clock and the sleep injected; nothing waits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from assets_gateway_common.retry import (
    MAX_DELTA_SECONDS,
    RetryRule,
    RetrySchedule,
    call_with_retries,
    parse_retry_after,
)

# Wed, 21 Oct 2026 07:28:00 GMT
NOW = 1_792_567_680.0


def at_now() -> float:
    return NOW


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", 0.0),  # a wait already over
        ("1.5", None),  # delay-seconds are whole (RFC 9110 §10.2.3)
        ("soon", None),
        ("", None),
        ("9" * 40, float(MAX_DELTA_SECONDS)),  # RFC 9111 §1.2.2
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-26 07:29:00 GMT", 60.0),  # RFC 850
        ("Wed Oct 21 07:28:10 2026", 10.0),  # asctime: no zone written, UTC all the same
        ("Wed, 21 Oct 2026 07:00:00 GMT", 0.0),  # in the past: retry now
        ("Wed, 21 Oct 2026 07:28:00 +0200", 0.0),
        ("Wed, 32 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_retry_after_reads_delay_seconds_and_http_dates(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, clock=at_now) == seconds


def test_without_a_clock_an_http_date_is_no_advice() -> None:
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT") is None
    assert parse_retry_after("30") == 30.0


def test_backoff_doubles_up_to_its_ceiling_through_the_callers_jitter() -> None:
    exact = RetrySchedule(attempts=5, base_delay_seconds=1.0, max_delay_seconds=5.0)
    assert [exact.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    halved = RetrySchedule(attempts=5, base_delay_seconds=1.0, jitter=lambda c: c / 2)
    assert [halved.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


@dataclass
class Answer:
    status: int
    retry_after: str | None = None


@dataclass
class Script:
    """A sender answering in order (an exception is raised), with a fake clock moved by sleeps."""

    outcomes: list[Answer | Exception]
    now: float = NOW
    sent: int = 0
    slept: list[float] = field(default_factory=list)

    def send(self) -> Answer:
        outcome = self.outcomes[self.sent]
        self.sent += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def busy(answer: Answer) -> bool:
    return answer.status == 429 or answer.status >= 500


def advice(answer: Answer) -> float | None:
    return parse_retry_after(answer.retry_after)


SCHEDULE = RetrySchedule(attempts=4, base_delay_seconds=1.0, max_wait_seconds=60.0)


RULE = RetryRule(retryable=busy, retry_after=advice, errors=(ConnectionError,))


def run(script: Script, schedule: RetrySchedule = SCHEDULE, **options: object) -> Answer:
    return call_with_retries(script.send, RULE, schedule, sleep=script.sleep, **options)  # type: ignore[arg-type]


def test_a_final_answer_comes_back_at_once() -> None:
    script = Script([Answer(404)])
    assert run(script) == Answer(404)
    assert (script.sent, script.slept) == (1, [])


def test_errors_and_busy_answers_are_retried_with_backoff_or_retry_after() -> None:
    script = Script([ConnectionError("reset"), Answer(503), Answer(429, "7"), Answer(200)])
    retries: list[float] = []
    assert run(script, on_retry=retries.append) == Answer(200)
    assert script.slept == [1.0, 2.0, 7.0]
    assert retries == [1.0, 2.0, 7.0]


def test_the_last_answer_stands_when_attempts_run_out() -> None:
    script = Script([Answer(500)] * 4)
    assert run(script) == Answer(500)
    assert (script.sent, script.slept) == (4, [1.0, 2.0, 4.0])


def test_the_last_error_is_raised_again_when_attempts_run_out() -> None:
    last = ConnectionError("third")
    script = Script([ConnectionError("first"), ConnectionError("second"), last])
    with pytest.raises(ConnectionError) as raised:
        run(script, RetrySchedule(attempts=3, base_delay_seconds=0.5))
    assert raised.value is last
    assert script.slept == [0.5, 1.0]


def test_other_errors_are_not_retried() -> None:
    script = Script([ValueError("a bug"), Answer(200)])
    with pytest.raises(ValueError, match="a bug"):
        run(script)
    assert script.sent == 1


def test_a_wait_beyond_the_longest_one_is_handed_back_not_slept() -> None:
    script = Script([Answer(429, "61"), Answer(200)])
    assert run(script) == Answer(429, "61")
    assert script.slept == []
    script = Script([Answer(429, "60"), Answer(200)])
    assert run(script) == Answer(200)
    assert script.slept == [60.0]


def test_no_wait_may_end_at_or_past_the_deadline() -> None:
    script = Script([Answer(503, "8")] * 5)
    deadline = script.now + 20
    answer = run(script, RetrySchedule(attempts=5, base_delay_seconds=1.0), clock=script.clock,
                 deadline=deadline)  # fmt: skip
    assert answer == Answer(503, "8")
    assert script.slept == [8.0, 8.0]  # a third wait would end at 24 s
    with pytest.raises(ValueError, match="needs a clock"):
        run(Script([Answer(200)]), deadline=deadline)


def test_may_retry_is_asked_after_the_wait_right_before_each_retry() -> None:
    script = Script([Answer(503), ConnectionError("reset"), Answer(200)])
    asked: list[int] = []

    def budget() -> bool:
        asked.append(len(script.slept))
        return len(asked) < 2

    with pytest.raises(ConnectionError, match="reset"):
        run(script, may_retry=budget)
    assert asked == [1, 2]  # each time after its sleep
    assert script.sent == 2
    refused = Script([Answer(429, "3"), Answer(200)])
    assert run(refused, may_retry=lambda: False) == Answer(429, "3")
    assert refused.slept == [3.0]


def test_jitter_spreads_the_backoff_but_not_retry_after() -> None:
    draws: list[float] = []

    def jitter(ceiling: float) -> float:
        draws.append(ceiling)
        return ceiling / 4

    schedule = RetrySchedule(attempts=3, base_delay_seconds=0.2, max_delay_seconds=2.0,
                             jitter=jitter)  # fmt: skip
    script = Script([Answer(502), Answer(503, "3"), Answer(200)])
    assert run(script, schedule) == Answer(200)
    assert script.slept == [0.05, 3.0]
    assert draws == [0.2]


def test_one_attempt_means_no_retry() -> None:
    script = Script([Answer(503), Answer(200)])
    assert run(script, RetrySchedule(attempts=1, base_delay_seconds=1.0)) == Answer(503)
    assert math.isclose(sum(script.slept), 0.0)


def test_an_error_the_rule_does_not_accept_propagates_at_once() -> None:
    calls: list[int] = []

    class Sent(Exception):
        pass

    class Unsent(Exception):
        pass

    def send() -> int:
        calls.append(1)
        raise (Unsent if len(calls) == 1 else Sent)()

    rule: RetryRule[int] = RetryRule(
        retryable=lambda _answer: False,
        errors=(Sent, Unsent),
        retryable_error=lambda error: isinstance(error, Unsent),
    )
    with pytest.raises(Sent):
        call_with_retries(
            send, rule, RetrySchedule(attempts=5, base_delay_seconds=0.0), sleep=lambda _s: None
        )
    assert len(calls) == 2  # the unsent one was tried again, the sent one was final
