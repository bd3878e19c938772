"""Shared fixtures: one embedded local stack (moto server, Cloudflare emulator, SigV4 API front)
for the whole run, all on 127.0.0.1, reached over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway_local.demo import demo_policy
from gateway_local.stack import LocalStack, StackOptions


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    # Policy cache 0: a test that publishes a policy sees it on the next request.
    # Visibility 0: a failed manifest record can be received again at once, without waiting.
    # The circuit breaker lives as long as a function instance, i.e. the whole test run here:
    # tests that inject failures must not open it for the tests after them (it has its own tests).
    local = LocalStack(
        StackOptions(
            gateway_port=0,
            policy_cache_seconds=0,
            manifest_visibility_timeout=0,
            extra_environment={"CIRCUIT_FAILURE_THRESHOLD": "100"},
        )
    )
    yield local
    local.stop()


@pytest.fixture(autouse=True)
def _clean_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that use the stack start from the demo policy and an emulator with no history."""
    if "stack" not in request.fixturenames:
        yield
        return
    local: LocalStack = request.getfixturevalue("stack")
    local.emulator.reset()
    local.clear_quotas()
    local.drain_queues()
    yield
    local.publish_policy(demo_policy())
