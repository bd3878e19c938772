"""SnapStart in template.yaml, read from the template SAM deploys (transformed by SAM's own
translator, offline): every function is python3.13 on arm64 (SnapStart supports Python 3.12 and
later on both architectures), publishes a version with SnapStart under the alias `live`, and
everything that invokes it (API Gateway's integrations and permissions, the SQS mapping) invokes
the alias, never $LATEST (which SnapStart does not apply to)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from gateway_local.aws_resources import load_template

API_FUNCTIONS = ("SessionApiFunction", "DeployApiFunction", "AdminApiFunction")
FUNCTIONS = (*API_FUNCTIONS, "ManifestEventsFunction")


class _NoManagedPolicies:
    """The template names no AWS managed policy by name: nothing to look up."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def deployed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    template = load_template()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for local_path in ("CodeUri", "ContentUri"):
            if local_path in properties:  # what `sam package` replaces with the upload's URI
                properties[local_path] = "s3://artifacts/key"
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    resources: dict[str, Any] = transform(template, {}, _NoManagedPolicies())["Resources"]
    return resources


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == kind}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_snapshots_its_published_versions(
    deployed: dict[str, Any], function: str
) -> None:
    properties = deployed[function]["Properties"]
    assert (properties["Runtime"], properties["Architectures"]) == ("python3.13", ["arm64"])
    assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    aliases = of_type(deployed, "AWS::Lambda::Alias")
    alias = aliases[f"{function}Aliaslive"]
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == {"Ref": function}
    version = alias["FunctionVersion"]["Fn::GetAtt"][0]
    assert of_type(deployed, "AWS::Lambda::Version")[version]["FunctionName"] == {"Ref": function}


def test_api_gateway_invokes_the_aliases(deployed: dict[str, Any]) -> None:
    body = json.dumps(deployed["SessionApi"]["Properties"]["Body"])
    targets = set(re.findall(r"functions/\$\{(\w+?)(?:\.Arn)?\}/invocations", body))
    assert targets == {f"{function}Aliaslive" for function in API_FUNCTIONS}
    permissions = of_type(deployed, "AWS::Lambda::Permission").values()
    invoked = [
        p["FunctionName"] for p in permissions if p["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(invoked) >= len(API_FUNCTIONS)
    assert {name["Ref"] for name in invoked} == {f"{f}Aliaslive" for f in API_FUNCTIONS}


def test_the_manifest_queue_feeds_the_alias(deployed: dict[str, Any]) -> None:
    [mapping] = of_type(deployed, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["FunctionName"] == {"Ref": "ManifestEventsFunctionAliaslive"}
