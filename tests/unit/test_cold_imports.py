"""What the session and S3 functions import (cold start, issue 15): not the Worker upload's
parser, not the deploy door, and the deploy requests' models unbuilt (`defer_build`); the deploy
function builds them at init (`build_request_models`), so SnapStart's snapshot holds them.

Each check runs in a fresh interpreter: this process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import assets_gateway.lambda_glue.wiring
from assets_gateway.domain import deploy_policy, worker_metadata
loaded = sorted(name for name in sys.modules if name.startswith("assets_gateway"))
before = [worker_metadata.WorkerMetadata.__pydantic_complete__,
          deploy_policy._Deployment.__pydantic_complete__]
deploy_policy.build_request_models()
after = [worker_metadata.WorkerMetadata.__pydantic_complete__,
         deploy_policy._Deployment.__pydantic_complete__]
print(json.dumps({"loaded": loaded, "before": before, "after": after}))
"""


def probe() -> dict[str, list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, list[object]] = json.loads(done.stdout)
    return result


def test_the_shared_wiring_leaves_the_deploy_path_unloaded_and_its_models_unbuilt() -> None:
    result = probe()
    loaded = result["loaded"]
    assert "assets_gateway.domain.policy" in loaded  # the probe did load the policy
    for deploy_only in (
        "assets_gateway.doors.deploy",
        "assets_gateway.domain.worker_upload",
        "assets_gateway.domain.multipart",
    ):
        assert deploy_only not in loaded
    assert result["before"] == [False, False]
    assert result["after"] == [True, True]
