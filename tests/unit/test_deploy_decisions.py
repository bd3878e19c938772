"""A deploy decision kept in the log is judged again exactly as the door judged it."""

from __future__ import annotations

import json

from form_bodies import CONTENT_TYPE, form

from assets_gateway.domain.deploy_decisions import DeployCall, JudgedDeploy, deploy_reasons
from assets_gateway.domain.policy import PolicyDocument
from assets_gateway.domain.worker_upload import read_worker_upload

TEAM = {
    "principals": ["arn:aws:iam::111111111111:role/web"],
    "accounts": ["0" * 32],
    "scripts": ["web-*"],
}


def judged_upload(**metadata: object) -> JudgedDeploy:
    document = {"main_module": "index.js", **metadata}
    body = form(
        [
            ("metadata", json.dumps(document).encode(), None, None),
            ("index.js", b"export default {}", "index.js", "application/javascript+module"),
        ]
    )
    summary = read_worker_upload(body, CONTENT_TYPE).summary
    return JudgedDeploy(DeployCall.WORKER_UPLOAD, upload=summary)


def reasons_under(deploy: dict[str, object], judged: JudgedDeploy) -> list[str]:
    policy = PolicyDocument.model_validate({"teams": {"web": {**TEAM, "deploy": deploy}}})
    rules = policy.limits_of("web").deploy
    found = deploy_reasons("web", rules, policy.teams["web"].script_globs, judged)
    return [problem.message for problem in found]


def test_an_upload_kept_and_read_back_is_judged_as_the_door_judged_it() -> None:
    judged = judged_upload(
        bindings=[
            {"type": "kv_namespace", "name": "CACHE", "namespace_id": "f" * 32},
            {"type": "secret_text", "name": "KEY", "text": "s3cret-value"},
            {"type": "mystery", "name": "X"},
        ],
        logpush=True,
        tail_consumers=[{"service": "docs"}],
        surprise=1,
    )
    record = json.loads(json.dumps(judged.as_record()))
    assert "s3cret-value" not in json.dumps(record)  # values are never kept
    again = JudgedDeploy.from_record(record)
    for deploy in ({}, {"logpush": True, "unsafe": True, "resources": {"kv_namespace": ["*"]}}):
        assert reasons_under(deploy, again) == reasons_under(deploy, judged)
    assert len(reasons_under({}, again)) == 5
    assert (
        reasons_under(
            {
                "logpush": True,
                "unsafe": True,
                "resources": {"kv_namespace": ["*"]},
                "tail_consumers": ["docs"],
            },
            again,
        )
        == []
    )


def test_json_writes_are_judged_again_from_their_body() -> None:
    split = {
        "strategy": "percentage",
        "versions": [{"version_id": "a", "percentage": 10}, {"version_id": "b", "percentage": 90}],
    }
    for judged, rule in (
        (JudgedDeploy(DeployCall.DEPLOYMENT, body=split), "gradual_deployments"),
        (JudgedDeploy(DeployCall.SUBDOMAIN, body={"enabled": True}), "workers_dev"),
        (JudgedDeploy(DeployCall.SCRIPT_SETTINGS, body={"logpush": True}), "logpush"),
    ):
        again = JudgedDeploy.from_record(json.loads(json.dumps(judged.as_record())))
        assert reasons_under({rule: False}, again)
        assert reasons_under({rule: True}, again) == []
    assert reasons_under({}, JudgedDeploy(DeployCall.READ)) == []
