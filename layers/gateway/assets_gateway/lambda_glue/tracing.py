"""X-Ray tracing that costs nothing until a trace is written.

Powertools' Tracer imports the X-Ray SDK (its recorder, sampling, plugins) and patches every
library the SDK knows (sqlite3, requests, pymongo…) when it is built, at module scope: over
100 ms of each cold start before the first request. Here the Tracer gets a provider that loads
the SDK's recorder and patches only what the gateway calls (botocore, httpx) the first time a
subsegment is opened, which the handler's decorator does first thing in every invocation: every
invocation is traced as before, and an execution environment loads the SDK once.

Tracing stays on in production (template: `Tracing: Active`); outside Lambda Powertools turns
it off as it always did (no LAMBDA_TASK_ROOT, or POWERTOOLS_TRACE_DISABLED).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider

if TYPE_CHECKING:
    import numbers
    from collections.abc import Generator, Sequence
    from contextlib import AbstractAsyncContextManager

    from aws_lambda_powertools.tracing.base import BaseSegment

# What the gateway calls out through: AWS (botocore) and Cloudflare (httpx).
TRACED_LIBRARIES = ("botocore", "httpx")


class DeferredXRayProvider(BaseProvider):
    """The X-Ray SDK's recorder, loaded (and the libraries patched) on first use."""

    def __init__(self) -> None:
        self._recorder: Any = None
        self._patches: list[str] = []
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._recorder is not None

    def recorder(self) -> Any:
        """The SDK's global recorder, with the patches asked for applied before any use."""
        if self._recorder is None:
            with self._lock:
                if self._recorder is None:
                    from aws_xray_sdk.core import patch, xray_recorder  # noqa: PLC0415

                    if self._patches:
                        patch(tuple(self._patches))
                    # Each subsegment sent on its own, as Powertools sets it for its own
                    # provider (powertools-lambda-python issue 283).
                    xray_recorder.configure(streaming_threshold=0)
                    self._recorder = xray_recorder
        return self._recorder

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment]:
        with self.recorder().in_subsegment(name=name, **kwargs) as subsegment:
            yield subsegment

    def in_subsegment_async(
        self, name: str | None = None, **kwargs: Any
    ) -> AbstractAsyncContextManager[BaseSegment]:
        subsegment: AbstractAsyncContextManager[BaseSegment] = self.recorder().in_subsegment_async(
            name=name, **kwargs
        )
        return subsegment

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        self.recorder().put_annotation(key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.recorder().put_metadata(key=key, value=value, namespace=namespace)

    def patch(self, modules: Sequence[str]) -> None:
        """Remembered; applied when the recorder is loaded (before its first subsegment)."""
        if self.loaded:
            from aws_xray_sdk.core import patch  # noqa: PLC0415

            patch(tuple(modules))
            return
        self._patches.extend(m for m in modules if m not in self._patches)

    def patch_all(self) -> None:
        """The gateway's own libraries only: patching all would import sqlite3, requests…"""
        self.patch(TRACED_LIBRARIES)


def deferred_tracer() -> Tracer:
    """The function's Tracer: on in Lambda, the X-Ray SDK loaded when the first trace starts."""
    # Powertools keeps the provider in class-wide configuration: the first Tracer built in the
    # process chooses it, and every later Tracer() (the adapters' too) shares it.
    return Tracer(provider=DeferredXRayProvider(), patch_modules=TRACED_LIBRARIES)
