"""Child process of test_tracing.py: one session request through functions/session_api/app.py
with X-Ray tracing on, as in Lambda, writing the answer and every entity the X-Ray SDK sends to
a JSON file (stdout is the function's log).

A process of its own because tracing is process-wide (the SDK's global recorder, Powertools'
shared Tracer configuration, module patches): the test run's other handlers stay untraced.
The environment (Lambda's variables, the trace header, the local stack's endpoints) comes from
the parent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_xray_sdk.core import patcher, xray_recorder

from gateway_local.api_front import lambda_context
from gateway_local.stack import SESSION_API_APP, load_handler_module


class KeptEntities:
    """An X-Ray emitter that keeps what it would send to the daemon."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address: str) -> None:
        del address


def main(event_path: str, output_path: str) -> None:
    emitter = KeptEntities()
    xray_recorder.configure(emitter=emitter)
    app = load_handler_module(SESSION_API_APP, "traced_session_api")
    loaded_at_import = app.tracer.provider.loaded
    event = json.loads(Path(event_path).read_text())
    answer = app.lambda_handler(event, lambda_context("SessionApiFunction"))
    traced = {
        "answer": answer,
        "entities": emitter.sent,
        # The X-Ray SDK loaded (and the libraries patched) only when the first trace started.
        "loaded_at_import": loaded_at_import,
        "loaded_after_invocation": app.tracer.provider.loaded,
        "patched": sorted(patcher._PATCHED_MODULES),
    }
    Path(output_path).write_text(json.dumps(traced))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
