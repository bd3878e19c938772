"""SnapStart: every environment restored from one snapshot renews what it must not share with
the others (the `random` state, the upstream httpx pool, each boto3 client's connections), and
serves the next request. The restore steps are run the way Lambda's runtime runs them: from
`snapshot_restore_py`'s registry, which the functions' modules filled when they were loaded."""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import pytest
from botocore.client import BaseClient
from snapshot_restore_py import get_after_restore

from assets_gateway.adapters.cloudflare import PooledHttp
from assets_gateway.lambda_glue.snapstart import AfterRestore, reseed_random
from gateway_local.api_front import lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.stack import LocalStack

EVENT = REPO_ROOT / "events" / "session_api" / "create_session.json"


def create_session(app: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.lambda_handler(
        json.loads(EVENT.read_text()), lambda_context("SessionApiFunction")
    )
    return result


def restore_as_the_runtime_does() -> None:
    for step, args, kwargs in get_after_restore():
        step(*args, **kwargs)


def owners(after_restore: AfterRestore) -> list[object]:
    return [getattr(step, "__self__", None) for step in after_restore.steps]


@pytest.mark.parametrize("app_name", ["session_api", "deploy_api", "admin_api", "manifest_events"])
def test_each_function_registers_its_restore_steps_with_the_runtime(
    stack: LocalStack, app_name: str
) -> None:
    app = getattr(stack, app_name)
    registered = [step for step, _, _ in get_after_restore()]
    assert any(step is app.after_restore for step in registered)
    steps = app.after_restore.steps
    assert steps[0] is reseed_random
    # Every boto3 client the function built closes its pools; its one upstream pool renews.
    closes = [step for step in steps if isinstance(getattr(step, "__self__", None), BaseClient)]
    assert closes
    assert {step.__name__ for step in closes} == {"close"}
    assert sum(isinstance(owner, PooledHttp) for owner in owners(app.after_restore)) == 1


def test_a_restored_environment_renews_its_pools_and_seed_and_serves(stack: LocalStack) -> None:
    app = stack.session_api
    # Given an environment that served a request: its pools hold open connections.
    assert create_session(app)["statusCode"] == 200
    [pool] = [owner for owner in owners(app.after_restore) if isinstance(owner, PooledHttp)]
    before = pool()
    random.seed(20261130)
    snapshot_state = random.getstate()
    # When Lambda restores it (every restored environment starts from the same memory).
    restore_as_the_runtime_does()
    # Then the upstream pool is a new one, the old closed; the generator left the shared state.
    assert before.is_closed
    assert pool() is not before
    assert random.getstate() != snapshot_state
    # And the environment serves with new connections (AWS and Cloudflare reached again).
    calls = len(stack.emulator.calls_to("/assets-upload-session"))
    assert create_session(app)["statusCode"] == 200
    assert len(stack.emulator.calls_to("/assets-upload-session")) == calls + 1


def test_a_closed_boto3_client_opens_new_connections(stack: LocalStack) -> None:
    """What the restore step relies on: botocore's `close` drops the pools, not the client."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    restore = AfterRestore()
    restore.renew_connections(dynamodb)
    assert dynamodb.list_tables()["TableNames"]
    restore()
    assert stack.names.control_table in dynamodb.list_tables()["TableNames"]


def test_outside_lambda_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the runtime's module (a machine without it installed) the steps stay unregistered
    and the function still loads."""
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    registered = len(get_after_restore())
    assert AfterRestore().register_with_runtime() is False
    assert len(get_after_restore()) == registered


def test_a_step_is_added_once() -> None:
    restore = AfterRestore()
    pool = PooledHttp(lambda: pytest.fail("never built: nothing asked for a client"))
    restore.renew_http(pool)
    restore.renew_http(pool)
    assert restore.steps == (reseed_random, pool.renew)
    restore()  # renewing a pool that was never built builds nothing
