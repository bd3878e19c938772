"""The upstream client against the Cloudflare emulator over HTTP: retries within a deadline,
Retry-After, the circuit breaker, and token rotation. Sleep and clock are injected."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
from pydantic import SecretStr

from assets_gateway.adapters.cloudflare import (
    CloudflareClient,
    RetryPolicy,
    build_http_client,
)
from assets_gateway.domain.circuit import CircuitBreaker
from assets_gateway.domain.errors import CircuitOpen, UpstreamFailure
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.lambda_glue.settings import Settings
from assets_gateway.lambda_glue.wiring import build_session_service
from assets_gateway.ports.upstream import UpstreamAnswer
from gateway_local.cloudflare_emulator import Fault
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_SCRIPT, web_session_request
from gateway_local.stack import LocalStack
from helpers import manifest_of

TARGET = SessionTarget(DEMO_ACCOUNT_ID, WEB_SCRIPT)
BODY = json.dumps({"manifest": manifest_of({"/a.html": b"a"})}).encode()


@dataclass
class FakeTime:
    """A monotonic clock that moves only when the client sleeps (or a test advances it)."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@dataclass(frozen=True)
class Upstream:
    """The client under test and its breaker, sending the one request every test sends."""

    client: CloudflareClient
    breaker: CircuitBreaker
    token: SecretStr

    def create_session(self) -> UpstreamAnswer:
        return self.client.create_upload_session(TARGET, BODY, self.token)


def upstream_client(
    stack: LocalStack, fake_time: FakeTime, breaker: CircuitBreaker | None = None, **retry: float
) -> Upstream:
    """A client of the emulator on the fake clock (the default breaker and retry policy unless
    told otherwise)."""
    breaker = breaker or CircuitBreaker(clock=fake_time.clock)
    client = CloudflareClient(
        base_url=stack.cloudflare_url,
        http=build_http_client(connect_timeout=2, read_timeout=5),
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
        breaker=breaker,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    return Upstream(client, breaker, SecretStr(stack.cloudflare_token))


def breaker_one_failure_opens(fake_time: FakeTime) -> CircuitBreaker:
    """A breaker that one failure opens, for 10 s."""
    return CircuitBreaker(failure_threshold=1, open_seconds=10, clock=fake_time.clock)


def calls(stack: LocalStack) -> int:
    return len(stack.emulator.calls_to("/assets-upload-session"))


def test_5xx_and_resets_are_retried_until_an_answer(stack: LocalStack, fake_time: FakeTime) -> None:
    stack.emulator.inject_fault(Fault(status=503))
    stack.emulator.inject_fault(Fault(reset=True))
    answer = upstream_client(stack, fake_time).create_session()
    assert answer.status == 200
    assert calls(stack) == 3
    assert len(fake_time.slept) == 2
    assert all(0 <= pause <= 0.4 for pause in fake_time.slept)


def test_retry_after_is_honoured_within_the_deadline(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    stack.emulator.inject_fault(Fault(status=503, headers={"Retry-After": "3"}))
    answer = upstream_client(stack, fake_time).create_session()
    assert answer.status == 200
    assert fake_time.slept == [3.0]


def test_a_429_longer_than_the_deadline_is_handed_back_at_once(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    stack.emulator.inject_fault(Fault(status=429, headers={"Retry-After": "300"}))
    answer = upstream_client(stack, fake_time).create_session()
    assert (answer.status, answer.headers["retry-after"]) == (429, "300")
    assert calls(stack) == 1
    assert fake_time.slept == []


def test_retries_stop_at_the_deadline(stack: LocalStack, fake_time: FakeTime) -> None:
    stack.emulator.inject_fault(Fault(status=503, headers={"Retry-After": "8"}, count=5))
    upstream = upstream_client(stack, fake_time, attempts=5, deadline_seconds=20)
    with pytest.raises(UpstreamFailure) as failed:
        upstream.create_session()
    assert failed.value.status == 502
    assert fake_time.slept == [8.0, 8.0]  # a third wait would end past the 20 s deadline
    assert calls(stack) == 3


def test_4xx_answers_are_not_retried(stack: LocalStack, fake_time: FakeTime) -> None:
    stack.emulator.inject_fault(Fault(status=400))
    answer = upstream_client(stack, fake_time).create_session()
    assert answer.status == 400
    assert calls(stack) == 1


def test_circuit_opens_answers_fast_then_closes_after_a_good_trial(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    breaker = CircuitBreaker(failure_threshold=2, open_seconds=30, clock=fake_time.clock)
    upstream = upstream_client(stack, fake_time, breaker, attempts=1)
    stack.emulator.inject_fault(Fault(status=500, count=2))
    for _ in range(2):
        with pytest.raises(UpstreamFailure):
            upstream.create_session()
    with pytest.raises(CircuitOpen) as refused:
        upstream.create_session()
    assert (refused.value.status, refused.value.code) == (503, 19031)
    assert refused.value.headers["Retry-After"] == "30"
    assert calls(stack) == 2  # the open circuit sent nothing
    fake_time.now += 30
    assert upstream.create_session().status == 200
    assert not breaker.is_open


def test_a_failed_trial_reopens_the_circuit(stack: LocalStack, fake_time: FakeTime) -> None:
    upstream = upstream_client(stack, fake_time, breaker_one_failure_opens(fake_time), attempts=1)
    stack.emulator.inject_fault(Fault(status=500, count=2))
    with pytest.raises(UpstreamFailure):
        upstream.create_session()
    fake_time.now += 10
    with pytest.raises(UpstreamFailure):
        upstream.create_session()
    with pytest.raises(CircuitOpen):
        upstream.create_session()


@pytest.fixture
def rotation(stack: LocalStack) -> Iterator[str]:
    """Roll the org token (in Cloudflare and in Secrets Manager), and roll it back afterwards."""
    secrets = stack.aws.client("secretsmanager", endpoint_url=stack.moto.endpoint_url)
    old, new = stack.cloudflare_token, stack.cloudflare_token + "-rolled"
    yield new
    stack.emulator.roll_token(new, old)
    secrets.put_secret_value(SecretId=stack.names.token_secret, SecretString=old)


def test_token_rotated_between_two_requests(stack: LocalStack, rotation: str) -> None:
    service = build_session_service(
        Settings.from_environ(stack.handler_environment()), aws=stack.aws
    )
    request = web_session_request(BODY, request_id="rotation")
    assert service.create_session(request).reply.status == 200
    secrets = stack.aws.client("secretsmanager", endpoint_url=stack.moto.endpoint_url)
    stack.emulator.roll_token(stack.cloudflare_token, rotation)
    secrets.put_secret_value(SecretId=stack.names.token_secret, SecretString=rotation)

    # The cached token is refused (400 9109); the gateway reads the secret again and retries.
    second = service.create_session(request)
    assert second.reply.status == 200
    authorizations = [
        c.headers["authorization"] for c in stack.emulator.calls_to("/assets-upload-session")
    ]
    assert authorizations == [
        f"Bearer {stack.cloudflare_token}",
        f"Bearer {stack.cloudflare_token}",
        f"Bearer {rotation}",
    ]


# --- issue 12 #1: every way out of a half-open trial settles the breaker ----------------------

# A 2xx whose body claims gzip but is not: httpx raises DecodingError reading it.
UNDECODABLE = Fault(body=b"this is not gzip", headers={"Content-Encoding": "gzip"})


def half_open_breaker(stack: LocalStack, fake_time: FakeTime) -> Upstream:
    """A client whose breaker one failure opened for 10 s, with the clock moved on to the
    moment it half-opens: its next call is the trial."""
    upstream = upstream_client(stack, fake_time, breaker_one_failure_opens(fake_time), attempts=1)
    stack.emulator.inject_fault(Fault(status=500))
    with pytest.raises(UpstreamFailure):
        upstream.create_session()
    with pytest.raises(CircuitOpen):
        upstream.create_session()
    fake_time.now += 10
    return upstream


def assert_cloudflare_called_again(
    stack: LocalStack, fake_time: FakeTime, upstream: Upstream
) -> None:
    """Ten seconds on (one open interval), a call reaches Cloudflare, and succeeds."""
    fake_time.now += 10
    before = calls(stack)
    assert upstream.create_session().status == 200
    assert calls(stack) == before + 1


def test_a_trial_that_meets_a_429_settles_the_breaker(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    upstream = half_open_breaker(stack, fake_time)
    stack.emulator.inject_fault(Fault(status=429, headers={"Retry-After": "300"}))
    assert upstream.create_session().status == 429

    # Cloudflare answered: it is up, and its limit is the cool-down's business, not the breaker's.
    assert_cloudflare_called_again(stack, fake_time, upstream)


def test_a_trial_that_meets_an_undecodable_body_reopens_then_recovers(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    upstream = half_open_breaker(stack, fake_time)
    stack.emulator.inject_fault(UNDECODABLE)
    with pytest.raises(UpstreamFailure) as failed:
        upstream.create_session()
    assert (failed.value.status, failed.value.code) == (502, 19031)
    with pytest.raises(CircuitOpen):  # the failed trial re-opened the circuit ...
        upstream.create_session()
    # ... for one more interval, after which Cloudflare is called again
    assert_cloudflare_called_again(stack, fake_time, upstream)


def test_an_undecodable_2xx_is_retried_and_counted_as_a_failure(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    upstream = upstream_client(stack, fake_time, breaker_one_failure_opens(fake_time), attempts=3)
    stack.emulator.inject_fault(UNDECODABLE)
    assert upstream.create_session().status == 200
    assert calls(stack) == 2  # retried once, then answered
    assert not upstream.breaker.is_open

    stack.emulator.inject_fault(dataclasses.replace(UNDECODABLE, count=3))
    with pytest.raises(UpstreamFailure) as failed:
        upstream.create_session()
    assert (failed.value.status, failed.value.code) == (502, 19031)
    assert calls(stack) == 5
    assert upstream.breaker.is_open


def test_an_unforeseen_exception_still_settles_the_trial(fake_time: FakeTime) -> None:
    breaker = breaker_one_failure_opens(fake_time)
    with pytest.raises(RuntimeError), breaker.admit() or pytest.fail("closed circuit refused"):
        raise RuntimeError("a bug, or an error nobody has seen yet")
    assert breaker.admit() is None  # that failure opened it
    fake_time.now += 10
    trial = breaker.admit()
    assert trial is not None
    assert trial.trial
    with pytest.raises(KeyError), trial:
        raise KeyError("anything")
    fake_time.now += 10
    assert breaker.admit() is not None, "the trial was settled: a new one may start"


def test_a_lost_trial_expires_after_its_lease(fake_time: FakeTime) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, open_seconds=10, trial_lease_seconds=60, clock=fake_time.clock
    )
    with pytest.raises(RuntimeError), breaker.admit() or pytest.fail("closed circuit refused"):
        raise RuntimeError("fail")
    fake_time.now += 10
    assert breaker.admit() is not None  # a trial that is never settled (lost thread)
    assert breaker.admit() is None  # blocks others while it may still be running ...
    fake_time.now += 60
    assert breaker.admit() is not None  # ... but not for longer than any call can last


def test_the_service_answers_an_undecodable_2xx_with_502_19031(stack: LocalStack) -> None:
    service = build_session_service(
        Settings.from_environ({**stack.handler_environment(), "UPSTREAM_ATTEMPTS": "2"}),
        aws=stack.aws,
    )
    stack.emulator.inject_fault(dataclasses.replace(UNDECODABLE, count=2))
    reply = service.create_session(web_session_request(BODY, request_id="undecodable")).reply
    assert (reply.status, reply.json()["errors"][0]["code"]) == (502, 19031)
    assert calls(stack) == 2


def test_a_2xx_nested_deeper_than_json_can_read_is_garbage(
    stack: LocalStack, fake_time: FakeTime
) -> None:
    upstream = upstream_client(stack, fake_time, breaker_one_failure_opens(fake_time), attempts=1)
    stack.emulator.inject_fault(Fault(body=b"[" * 100_000))
    with pytest.raises(UpstreamFailure) as failed:
        upstream.create_session()
    assert (failed.value.status, failed.value.code) == (502, 19031)
    assert upstream.breaker.is_open


# --- issue 12 #13: the token is redacted in whatever spelling Cloudflare echoes it -------------


def _spellings(secret: str) -> dict[str, str]:
    escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
    return {
        "raw": secret,
        "one character escaped": f"{secret[:4]}\\u{ord(secret[4]):04x}{secret[5:]}",
        "all escaped": escaped,
        "percent-encoded": "".join(f"%{ord(c):02x}" for c in secret),
        "HTML references": "".join(f"&#{ord(c)};" for c in secret),
    }


@pytest.mark.parametrize(
    "spelling",
    ["raw", "one character escaped", "all escaped", "percent-encoded", "HTML references"],
)
def test_an_echoed_token_never_reaches_the_caller(stack: LocalStack, spelling: str) -> None:
    secret = stack.cloudflare_token
    echoed = _spellings(secret)[spelling]
    body = (
        '{"success":false,"errors":[{"code":10000,"message":"bad token ' + echoed + '"},'
        '{"code":10000,"message":"' + echoed + '"}],"messages":[],"result":null}'
    ).encode()
    assert secret not in body.decode() or spelling == "raw"
    stack.emulator.inject_fault(Fault(status=400, body=body, headers={"Retry-After": echoed}))
    service = build_session_service(
        Settings.from_environ(stack.handler_environment()), aws=stack.aws
    )
    reply = service.create_session(web_session_request(BODY, request_id="echo")).reply

    assert reply.status == 400
    assert secret.encode() not in reply.body
    envelope = reply.json()  # still Cloudflare's envelope, valid JSON
    assert [error["code"] for error in envelope["errors"]] == [10000, 10000]
    readings = [
        reading
        for error in envelope["errors"]
        for reading in (
            error["message"],
            unquote(error["message"]),
            html.unescape(error["message"]),
        )
    ]
    assert all(secret not in reading for reading in readings)
    assert "[REDACTED]" in envelope["errors"][1]["message"]
    assert "retry-after" in {name.lower() for name in reply.headers}
    assert all(secret not in html.unescape(unquote(value)) for value in reply.headers.values())
