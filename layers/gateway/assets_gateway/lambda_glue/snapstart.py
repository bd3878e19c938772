"""SnapStart: what one snapshot must not hand to every environment restored from it.

With SnapStart (template: `SnapStart: ApplyOn: PublishedVersions`) Lambda runs the function's
init once per published version and snapshots its memory; every environment restored from the
snapshot starts from the same memory. Init opens no connection and fetches no token or policy
(boto3 and httpx connect on first use, the token and the policy are read by the first request),
so what the environments would share is: the `random` generator's state (retry jitter would be
the same everywhere, retries in step), and the connection pools (the upstream httpx client, each
boto3 client's). `AfterRestore` re-creates them in each restored environment, through the
runtime's own hook (`snapshot_restore_py`, bundled in Lambda's Python runtimes, not in the
layer). Outside Lambda (tests, the local stack) there is no snapshot: nothing is registered and
the steps can be run directly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from assets_gateway.adapters.cloudflare import PooledHttp

Client = TypeVar("Client", bound="BaseClient")


def reseed_random() -> None:
    """A generator of this environment's own, from the OS's entropy."""
    random.seed()


class AfterRestore:
    """The steps one restored environment runs before its first request, in the order added."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], None]] = [reseed_random]

    @property
    def steps(self) -> tuple[Callable[[], None], ...]:
        return tuple(self._steps)

    def add(self, step: Callable[[], None]) -> None:
        if step not in self._steps:
            self._steps.append(step)

    def renew_http(self, pool: PooledHttp) -> PooledHttp:
        self.add(pool.renew)
        return pool

    def renew_connections(self, client: Client) -> Client:
        """botocore's `close` drops the client's connection pools; the client stays usable and
        opens new connections on its next call."""
        self.add(client.close)
        return client

    def __call__(self) -> None:
        for step in self._steps:
            step()

    def register_with_runtime(self) -> bool:
        """Ask Lambda's runtime to run these steps after each restore; False where there is no
        runtime to ask (outside Lambda)."""
        try:
            from snapshot_restore_py import register_after_restore  # noqa: PLC0415
        except ModuleNotFoundError:
            return False
        register_after_restore(self)
        return True
