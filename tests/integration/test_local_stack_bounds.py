"""What the local stand-ins keep stays bounded under load (issue 12, finding 19d): moto keeps
no history of the model objects it made, so the copies of the tables each quota transaction
takes for its rollback are freed, and only the items DynamoDB itself would hold stay alive.
(The emulator's own bounds are tested in tests/unit/test_cloudflare_emulator.py; the figures
per request are printed by bench/local_stack_memory.py.)"""

from __future__ import annotations

import gc

import httpx
import pytest
from moto.dynamodb.models.dynamo_type import Item

from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER, WEB_SCRIPT
from gateway_local.stack import LocalStack
from helpers import manifest_of, signed_client

REQUESTS = 20


@pytest.fixture
def web() -> httpx.Client:
    return signed_client(WEB_DEPLOYER)


def live_moto_items() -> int:
    gc.collect()  # a table copy and its items can sit in a reference cycle
    return sum(1 for thing in gc.get_objects() if isinstance(thing, Item))


def test_moto_keeps_no_copies_of_items_across_requests(
    stack: LocalStack, web: httpx.Client
) -> None:
    url = (
        f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}"
        "/assets-upload-session"
    )
    for n in range(REQUESTS):  # each one charges the quota in a TransactWriteItems
        answer = web.post(url, json={"manifest": manifest_of({f"/{n}.html": b"x"})})
        assert answer.status_code == 200, answer.text

    retained = stack.moto.retained()
    assert retained["tracked_model_instances"] == 0
    # Every live item is one a table holds: no rollback copy outlived its transaction (before:
    # every request left a copy of each item of the quota table behind).
    assert live_moto_items() <= retained["dynamodb_items"]
