"""Fixtures of the unit tests that drive the Cloudflare emulator over loopback HTTP.

One werkzeug server per test module (stopping one waits out its poll), into which each test plugs
a fresh `CloudflareEmulator` with a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from cloudflare_stack import (
    ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_TOKEN,
    TOKEN,
    AppSlot,
    FakeClock,
    Serve,
    Stack,
)

from gateway_local.cloudflare_emulator import CloudflareEmulator
from gateway_local.http_server import BackgroundServer
from helpers import HTTP_TIMEOUT


@pytest.fixture(scope="module")
def shared_server() -> Iterator[tuple[AppSlot, BackgroundServer]]:
    # One server for the module: stopping a werkzeug server waits out its 0.5 s poll.
    slot = AppSlot()
    with BackgroundServer(slot, name="cloudflare") as server:
        yield slot, server


@pytest.fixture
def serve(shared_server: tuple[AppSlot, BackgroundServer]) -> Iterator[Serve]:
    """Plug a fresh emulator (with the given constructor options) into the loopback server."""
    slot, server = shared_server
    with ExitStack() as stack:

        def start(**options: Any) -> Stack:
            clock = FakeClock()
            options.setdefault("tokens", {TOKEN: [ACCOUNT], OTHER_TOKEN: [OTHER_ACCOUNT]})
            emulator = CloudflareEmulator(clock=clock, **options)
            slot.app = emulator
            client = stack.enter_context(
                httpx.Client(base_url=f"{server.url}/client/v4", timeout=HTTP_TIMEOUT)
            )
            return Stack(emulator, server, client, clock)

        yield start
        slot.app = None


@pytest.fixture
def cf(serve: Serve) -> Stack:
    return serve()
