"""The alarms on the gateway's own metrics watch names the code really emits: an outcome renamed
in the code would otherwise leave its alarm silent forever."""

from __future__ import annotations

from typing import Any

from assets_gateway.ports.sessions import Outcome
from gateway_local.aws_resources import load_template


def watched_gateway_metrics(template: dict[str, Any]) -> dict[str, set[str]]:
    watched: dict[str, set[str]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        metrics = [properties] + [
            query["MetricStat"]["Metric"]
            for query in properties.get("Metrics", [])
            if "MetricStat" in query
        ]
        for metric in metrics:
            if metric.get("Namespace") == "AssetsGateway":
                watched.setdefault(name, set()).add(metric["MetricName"])
    return watched


def test_every_gateway_metric_an_alarm_watches_is_an_outcome_the_code_emits() -> None:
    watched = watched_gateway_metrics(load_template())
    outcomes = {outcome.value for outcome in Outcome}
    assert watched, "no alarm watches the AssetsGateway namespace"
    assert {name: names - outcomes for name, names in watched.items() if names - outcomes} == {}
    assert watched["GatewayStoppedAlarm"] == {"stopped"}
    assert {"refused_quota", "refused_budget"} <= watched["QuotaRefusalsAlarm"]


def test_every_function_has_an_errors_alarm() -> None:
    template = load_template()
    functions = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    alarmed: set[str] = set()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if (
            resource["Type"] == "AWS::CloudWatch::Alarm"
            and properties.get("MetricName") == "Errors"
        ):
            alarmed |= {
                dimension["Value"]["Ref"]
                for dimension in properties["Dimensions"]
                if dimension["Name"] == "FunctionName"
            }
    assert alarmed == functions
