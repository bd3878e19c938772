"""What template.yaml promises about who may read what, tracing and throttling, checked against
the code that relies on it. moto enforces no IAM, so the IAM conditions are held here, on the
template, and tied to the keys the code really uses (tests/e2e/test_idempotency_key.py also
checks the records the running door writes)."""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase
from typing import Any

import pytest

from assets_gateway.adapters.policy_history import version_id
from assets_gateway.adapters.policy_store import CURRENT_POLICY_ID
from assets_gateway.lambda_glue import api_idempotency, manifest_records
from gateway_local.aws_resources import REPO_ROOT, load_template

CONTROL_TABLE_ARN = {"Fn::GetAtt": "ControlTable.Arn"}
# Each function's ControlTable keys: the session door's Idempotency-Key records hold session
# JWTs, the S3 door's hold outcomes, and neither may read the other's.
ALLOWED_KEYS = {
    "SessionApiFunction": {"policy#current", "api-session#*"},
    "ManifestEventsFunction": {"policy#current", "manifest-object#*"},
    "AdminApiFunction": {"policy#*"},
    # The deploy door keeps no records: it reads the current policy and nothing else.
    "DeployApiFunction": {"policy#current"},
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def control_table_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    policies = template["Resources"][function]["Properties"]["Policies"]
    return [
        statement
        for policy in policies
        for statement in policy["Statement"]
        if CONTROL_TABLE_ARN in _as_list(statement["Resource"])
    ]


def leading_keys(statement: dict[str, Any]) -> set[str]:
    condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
    return set(_as_list(condition.get("dynamodb:LeadingKeys", [])))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(patterns: set[str], key: str) -> bool:
    return any(fnmatchcase(key, pattern) for pattern in patterns)


@pytest.mark.parametrize("function", sorted(ALLOWED_KEYS))
def test_every_control_table_grant_is_scoped_to_the_functions_own_keys(
    template: dict[str, Any], function: str
) -> None:
    statements = control_table_statements(template, function)
    assert statements, f"{function} has no ControlTable statement"
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert leading_keys(statement), f"{function}/{statement['Sid']} is not scoped by key"
        assert leading_keys(statement) <= ALLOWED_KEYS[function], statement["Sid"]
        # Only key-based actions: each request names its key, so LeadingKeys is always there.
        actions = set(_as_list(statement["Action"]))
        assert actions <= {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        }, statement["Sid"]


def test_no_door_may_read_the_other_doors_records(template: dict[str, Any]) -> None:
    session = set().union(
        *map(leading_keys, control_table_statements(template, "SessionApiFunction"))
    )
    manifest = set().union(
        *map(leading_keys, control_table_statements(template, "ManifestEventsFunction"))
    )
    assert not allows(session, "manifest-object#0123")
    assert not allows(manifest, "api-session#0123")
    assert not allows(session | manifest, version_id(7))


def test_the_keys_the_code_uses_are_the_keys_the_template_allows(
    template: dict[str, Any],
) -> None:
    def granted(function: str, action: str) -> set[str]:
        return set().union(
            *(
                leading_keys(statement)
                for statement in control_table_statements(template, function)
                if action in _as_list(statement["Action"])
            )
        )

    # Powertools idempotency keys its records `<key_prefix>#<hash>`.
    session_record = f"{api_idempotency.KEY_PREFIX}#0123abcd"
    manifest_record = f"{manifest_records.KEY_PREFIX}#0123abcd"
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert allows(granted("SessionApiFunction", action), session_record), action
        assert allows(granted("ManifestEventsFunction", action), manifest_record), action
    for door in ALLOWED_KEYS:
        assert allows(granted(door, "dynamodb:GetItem"), CURRENT_POLICY_ID), door
    assert allows(granted("AdminApiFunction", "dynamodb:BatchGetItem"), version_id(12))


def test_no_function_traces_its_answers(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            own = resource["Properties"].get("Environment", {}).get("Variables", {})
            assert own.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false") == "false"


@pytest.mark.parametrize("function", ["session_api", "admin_api", "deploy_api"])
def test_the_api_handlers_say_so_in_code_too(function: str) -> None:
    """The template's variable could be dropped or overridden; the handlers whose answers hold
    session JWTs or policies pass capture_response=False themselves."""
    tree = ast.parse((REPO_ROOT / "functions" / function / "app.py").read_text())
    handler = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "lambda_handler"
    )
    tracer_calls = [
        decorator
        for decorator in handler.decorator_list
        if "capture_lambda_handler" in ast.unparse(decorator)
    ]
    assert len(tracer_calls) == 1
    [call] = tracer_calls
    assert isinstance(call, ast.Call)
    options = {keyword.arg: keyword.value for keyword in call.keywords}
    capture = options.get("capture_response")
    assert isinstance(capture, ast.Constant)
    assert capture.value is False


def method_settings(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    settings = template["Resources"]["SessionApi"]["Properties"]["MethodSettings"]
    return {f"{s['ResourcePath']} {s['HttpMethod']}": s for s in settings}


def method_setting_path(path: str) -> str:
    """A resource path as a stage's method settings write it (AWS: /resource/subresource is
    written /~1resource~1subresource): every "/" becomes ~1, after a leading "/"."""
    return "/" + path.replace("/", "~1")


def test_the_admin_routes_have_a_throttle_of_their_own(template: dict[str, Any]) -> None:
    settings = method_settings(template)
    admin_event = template["Resources"]["AdminApiFunction"]["Properties"]["Events"]["Admin"]
    admin_path = method_setting_path(admin_event["Properties"]["Path"])
    assert admin_path == "/~1admin~1{proxy+}"
    admin = settings[f"{admin_path} *"]
    assert admin["ThrottlingRateLimit"] == {"Ref": "AdminThrottlingRateLimit"}
    assert admin["ThrottlingBurstLimit"] == {"Ref": "AdminThrottlingBurstLimit"}
    sessions = settings["/* *"]
    assert sessions["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert sessions["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    for setting in settings.values():
        assert setting["DataTraceEnabled"] is False


def test_throttle_defaults_fit_the_functions_concurrency(template: dict[str, Any]) -> None:
    """A burst larger than the function can run at once is throttled by Lambda instead, which
    callers see as a 5XX rather than API Gateway's 429 19021 with Retry-After."""
    parameters = template["Parameters"]
    admin_function = template["Resources"]["AdminApiFunction"]["Properties"]
    assert (
        parameters["AdminThrottlingBurstLimit"]["Default"]
        <= admin_function["ReservedConcurrentExecutions"]
    )
    assert (
        parameters["ApiThrottlingBurstLimit"]["Default"]
        <= parameters["ReservedConcurrency"]["Default"]
    )
    # Room for every team's dry runs, usage reads and retries besides the ~4/s Cloudflare takes.
    assert parameters["ApiThrottlingRateLimit"]["Default"] >= 20
