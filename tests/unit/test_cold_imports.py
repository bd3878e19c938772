"""What the session and S3 functions import (cold start, issue 15): not the Worker upload's
parser, not the deploy door, and the deploy requests' models unbuilt (`defer_build`); the deploy
function builds them at init (`build_request_models`), so SnapStart's snapshot holds them. Each
function builds only the settings model it validates at init.

Each check runs in a fresh interpreter: this process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


SETTINGS_PROBE = """
import json, sys
from assets_gateway.lambda_glue.settings import AdminSettings, ManifestDoorSettings, Settings
models = (Settings, ManifestDoorSettings, AdminSettings)
before = [model.__pydantic_complete__ for model in models]
chosen = models[int(sys.argv[1])]
chosen.from_environ({
    "CONTROL_TABLE_NAME": "ctl", "QUOTA_TABLE_NAME": "quota", "CLOUDFLARE_TOKEN_SECRET_ID": "t",
    "MANIFEST_BUCKET_NAME": "bucket", "IDEMPOTENCY_TABLE_NAME": "ctl",
})
print(json.dumps({"before": before, "after": [model.__pydantic_complete__ for model in models]}))
"""


@pytest.mark.parametrize("chosen", [0, 1, 2])
def test_each_function_builds_only_the_settings_model_it_validates(chosen: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE, str(chosen)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(done.stdout)
    assert result["before"] == [False, False, False]
    assert result["after"] == [index == chosen for index in range(3)]
