"""The deploy policy (pure): the rules in the policy document, their defaults and merge, and
every judgement of a Worker upload, a deployment, script settings and the subdomain, with the
messages and pointers a team reads. Uploads are read by the real `read_worker_upload` from
multipart bodies written as wrangler writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from form_bodies import CONTENT_TYPE, MIB, form

from assets_gateway.domain.deploy_policy import (
    BUILT_IN_BINDINGS,
    DeploymentRequest,
    DeploymentVersion,
    DeployRules,
    EffectiveDeployRules,
    deployment_reasons,
    effective_deploy_rules,
    parse_deployment,
    parse_json_object,
    script_settings_reasons,
    subdomain_reasons,
    upload_reasons,
)
from assets_gateway.domain.envelope import error_reply
from assets_gateway.domain.errors import (
    DeployDenied,
    DeployQuotaExceeded,
    GatewayError,
    InvalidDeployRequest,
    InvalidWorkerUpload,
    Problem,
    WorkerUploadTooLarge,
)
from assets_gateway.domain.globs import GlobSet
from assets_gateway.domain.policy import PolicyDocument
from assets_gateway.domain.policy_check import validate_policy
from assets_gateway.domain.worker_upload import UploadSummary, read_worker_upload

TEAM = "web"
OWN = GlobSet(["web-*"])
KV_ID = "0f2a6c1e9b8d4f7a8c3e5d1b2a4f6e8c"
OTHER_KV_ID = "ffffffffffffffffffffffffffffffff"
INDEX_JS = b"export default { fetch() { return new Response('hi') } }"
PRINCIPAL = "arn:aws:iam::111111111111:role/web-deployer"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def upload(*bindings: dict[str, Any], modules: bytes = INDEX_JS, **fields: Any) -> UploadSummary:
    """What wrangler sends for a module Worker with these bindings (fields added to the
    metadata), read by the real reader."""
    document = {
        "main_module": "index.js",
        "compatibility_date": "2026-11-01",
        "bindings": list(bindings),
        **fields,
    }
    body = form(
        [
            ("metadata", json.dumps(document).encode(), None, None),
            ("index.js", modules, "index.js", "application/javascript+module"),
        ]
    )
    return read_worker_upload(body, CONTENT_TYPE).summary


def rules(**deploy: Any) -> EffectiveDeployRules:
    """A team's effective rules when its `deploy` section says `deploy` and the defaults none."""
    return effective_deploy_rules(DeployRules.model_validate(deploy), DeployRules())


def judged(summary: UploadSummary, **deploy: Any) -> list[Problem]:
    return upload_reasons(TEAM, rules(**deploy), OWN, summary)


def pointers(problems: list[Problem]) -> list[str | None]:
    return [problem.pointer for problem in problems]


# -- rules: built-ins, defaults and the merge -----------------------------------------------


def test_the_built_in_rules_allow_values_and_assets_and_nothing_else() -> None:
    built_in = rules()
    assert built_in.bindings == BUILT_IN_BINDINGS
    assert built_in.bindings == ("assets", "plain_text", "json", "secret_text", "version_metadata")
    assert built_in.resources == {}
    assert built_in.tail_consumers == ()
    assert (built_in.logpush, built_in.migrations, built_in.unsafe) == (False, False, False)
    assert (built_in.workers_dev, built_in.preview_urls) == (False, False)
    assert built_in.gradual_deployments is True
    assert built_in.max_script_bytes == 64 * MIB


def test_a_team_value_wins_then_the_default_then_the_built_in() -> None:
    policy = PolicyDocument.model_validate(
        {
            "defaults": {
                "deploy": {
                    "bindings": ["assets", "ai"],
                    "resources": {"kv_namespace": [KV_ID], "r2_bucket": ["shared-*"]},
                    "tail_consumers": ["platform-tail"],
                    "logpush": True,
                    "max_script_bytes": 1000,
                }
            },
            "teams": {
                "web": {
                    "principals": [PRINCIPAL],
                    "deploy": {
                        "resources": {"r2_bucket": ["web-*"], "queue": ["web-jobs"]},
                        "logpush": False,
                        "workers_dev": True,
                    },
                },
                "docs": {"principals": ["arn:aws:iam::222222222222:role/docs"]},
                "quiet": {
                    "principals": ["arn:aws:iam::333333333333:role/quiet"],
                    "deploy": {"resources": {"kv_namespace": []}, "bindings": []},
                },
            },
        }
    )
    web = policy.limits_of("web").deploy
    assert web.bindings == ("assets", "ai")  # the default's list
    # Per binding type: the team's r2_bucket globs replace the default's; kv_namespace stays.
    assert web.resources == {
        "kv_namespace": (KV_ID,),
        "r2_bucket": ("web-*",),
        "queue": ("web-jobs",),
    }
    assert web.tail_consumers == ("platform-tail",)
    assert (web.logpush, web.workers_dev, web.max_script_bytes) == (False, True, 1000)
    assert web.preview_urls is False  # built-in
    docs = policy.limits_of("docs").deploy
    assert docs.resources == {"kv_namespace": (KV_ID,), "r2_bucket": ("shared-*",)}
    assert docs.logpush is True
    quiet = policy.limits_of("quiet").deploy
    assert quiet.resources == {"kv_namespace": (), "r2_bucket": ("shared-*",)}
    assert quiet.bindings == ()  # an empty list is a value: nothing, not the default
    kv = upload({"name": "KV", "type": "kv_namespace", "namespace_id": KV_ID})
    assert upload_reasons("docs", docs, OWN, kv) == []
    assert pointers(upload_reasons("quiet", quiet, OWN, kv)) == ["/bindings/0/namespace_id"]


def test_the_effective_rules_read_as_plain_json_for_an_explain() -> None:
    effective = rules(resources={"kv_namespace": [KV_ID]}, tail_consumers=["t"], unsafe=True)
    assert effective.as_dict() == {
        "bindings": list(BUILT_IN_BINDINGS),
        "resources": {"kv_namespace": [KV_ID]},
        "tail_consumers": ["t"],
        "logpush": False,
        "migrations": False,
        "unsafe": True,
        "workers_dev": False,
        "preview_urls": False,
        "gradual_deployments": True,
        "max_script_bytes": 64 * MIB,
    }
    json.dumps(effective.as_dict())  # plain values only


# -- rules: validation -------------------------------------------------------------------------


def team_with(deploy: Any) -> dict[str, Any]:
    return {"teams": {"web": {"principals": [PRINCIPAL], "deploy": deploy}}}


@pytest.mark.parametrize(
    ("deploy", "pointer", "words"),
    [
        (
            {"bindings": ["json", "kv_namespace"]},
            "/policy/teams/web/deploy/bindings/1",
            "kv_namespace is a resource binding: list the resources it may name under "
            "resources.kv_namespace",
        ),
        (
            {"bindings": ["plain_txt"]},
            "/policy/teams/web/deploy/bindings/0",
            "plain_txt is not a binding type the gateway knows",
        ),
        (
            {"bindings": ["assets", "inherit"]},
            "/policy/teams/web/deploy/bindings/1",
            "inherit bindings keep the previous version's binding and are always allowed",
        ),
        (
            {"resources": {"kv_namespace": [KV_ID], "plain_text": ["x"]}},
            "/policy/teams/web/deploy/resources/plain_text",
            "plain_text names no resource: list it under bindings",
        ),
        (
            {"resources": {"kv_namespaces": [KV_ID]}},
            "/policy/teams/web/deploy/resources/kv_namespaces",
            "kv_namespaces is not a resource binding type the gateway knows",
        ),
        (
            {"resources": {"kv_namespace": [""]}},
            "/policy/teams/web/deploy/resources/kv_namespace/0",
            "at least 1 character",
        ),
        (
            {"logpush": "yes"},
            "/policy/teams/web/deploy/logpush",
            "valid boolean",
        ),
        (
            {"max_script_bytes": 64 * MIB + 1},
            "/policy/teams/web/deploy/max_script_bytes",
            "less than or equal to 67108864",
        ),
        (
            {"canary": True},
            "/policy/teams/web/deploy/canary",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_rules_that_cannot_work_are_errors_pointing_at_the_item(
    deploy: dict[str, Any], pointer: str, words: str
) -> None:
    validation = validate_policy(team_with(deploy), global_budget=1000, now=NOW)
    assert not validation.valid
    assert pointers(list(validation.errors)) == [pointer]
    assert words in validation.errors[0].message


def test_every_bad_rule_is_reported_at_once_in_defaults_and_teams() -> None:
    raw = {
        "defaults": {"deploy": {"bindings": ["d1"]}},
        **team_with({"bindings": ["nope", "ai"], "resources": {"json": []}}),
    }
    validation = validate_policy(raw, global_budget=1000, now=NOW)
    assert sorted(str(problem.pointer) for problem in validation.errors) == [
        "/policy/defaults/deploy/bindings/0",
        "/policy/teams/web/deploy/bindings/0",
        "/policy/teams/web/deploy/resources/json",
    ]


def test_rules_that_open_too_much_are_warnings_with_pointers() -> None:
    raw = {
        "defaults": {"deploy": {"tail_consumers": ["*"]}},
        "teams": {
            "web": {
                "principals": [PRINCIPAL],
                "deploy": {
                    "resources": {"kv_namespace": [KV_ID], "r2_bucket": ["web-*", "**"]},
                    "unsafe": True,
                },
                "quotas": {"deploy_calls_per_minute": 250},
            }
        },
    }
    validation = validate_policy(raw, global_budget=1000, now=NOW)
    assert validation.valid
    deploy_warnings = {
        w.pointer: w.message for w in validation.warnings if "deploy" in (w.pointer or "")
    }
    assert deploy_warnings == {
        "/policy/defaults/deploy/tail_consumers/0": "every team (defaults) may send its tail "
        "events (logs, request URLs and headers) to any script ('*'), other teams' included",
        "/policy/teams/web/deploy/resources/r2_bucket/1": "team 'web' may bind any r2_bucket of "
        "the account ('**'), other teams' included",
        "/policy/teams/web/deploy/unsafe": "team 'web' may upload binding types and metadata "
        "fields the gateway does not know; they reach Cloudflare unchecked",
        "/policy/teams/web/quotas/deploy_calls_per_minute": "team 'web' may make 250 deploy door "
        "calls a minute: alone it may spend the org's Cloudflare budget (1000 per 5 minutes) "
        "and stop every team",
    }


def test_the_built_in_deploy_quota_stays_within_the_default_budget() -> None:
    validation = validate_policy(team_with({}), global_budget=1000, now=NOW)
    assert not [w for w in validation.warnings if "deploy" in w.message]


# -- uploads: bindings --------------------------------------------------------------------------


def test_an_upload_with_the_built_in_bindings_is_allowed() -> None:
    summary = upload(
        {"name": "ASSETS", "type": "assets"},
        {"name": "GREETING", "type": "plain_text", "text": "hello"},
        {"name": "CONFIG", "type": "json", "json": {"a": 1}},
        {"name": "API_KEY", "type": "secret_text", "text": "s3cr3t"},
        {"name": "CF_VERSION", "type": "version_metadata"},
        assets={"jwt": "completion.jwt.sig", "config": {}},
    )
    assert judged(summary) == []


def test_binding_types_the_rules_do_not_list_are_refused_each_with_its_pointer() -> None:
    summary = upload(
        {"name": "GREETING", "type": "plain_text", "text": "hello"},
        {"name": "AI", "type": "ai"},
        {"name": "BROWSER", "type": "browser"},
    )
    reasons = judged(summary)
    assert reasons == [
        Problem(
            "team 'web' may not attach binding 'AI' (ai) (allowed types: assets, plain_text, "
            "json, secret_text, version_metadata)",
            pointer="/bindings/1/type",
        ),
        Problem(
            "team 'web' may not attach binding 'BROWSER' (browser) (allowed types: assets, "
            "plain_text, json, secret_text, version_metadata)",
            pointer="/bindings/2/type",
        ),
    ]
    assert judged(summary, bindings=["plain_text", "ai", "browser"]) == []
    assert judged(summary, bindings=[])[0].message.endswith("(allowed types: none)")


def test_module_bindings_of_a_service_worker_are_listed_types_too() -> None:
    document = {
        "body_part": "worker.js",
        "bindings": [{"name": "WASM", "type": "wasm_module", "part": "worker.js"}],
    }
    body = form(
        [
            ("metadata", json.dumps(document).encode(), None, None),
            ("worker.js", INDEX_JS, "worker.js", "application/javascript"),
        ]
    )
    summary = read_worker_upload(body, CONTENT_TYPE).summary
    assert pointers(judged(summary)) == ["/bindings/0/type"]
    assert judged(summary, bindings=["wasm_module"]) == []


@pytest.mark.parametrize(
    ("binding", "field", "allowed", "refused"),
    [
        ({"type": "kv_namespace", "namespace_id": KV_ID}, "namespace_id", [KV_ID], [OTHER_KV_ID]),
        ({"type": "r2_bucket", "bucket_name": "web-media"}, "bucket_name", ["web-*"], ["api-*"]),
        ({"type": "d1", "id": "6b1f0e2d-db"}, "id", ["6b1f0e2d-*"], ["other"]),
        ({"type": "d1", "database_id": "6b1f0e2d-db"}, "database_id", ["6b1f*"], ["x"]),
        ({"type": "queue", "queue_name": "web-jobs"}, "queue_name", ["web-jobs"], ["jobs"]),
        ({"type": "analytics_engine", "dataset": "web_stats"}, "dataset", ["web_*"], ["api_*"]),
        ({"type": "hyperdrive", "id": "hd1"}, "id", ["hd1"], ["hd2"]),
        ({"type": "vectorize", "index_name": "web-idx"}, "index_name", ["web-?dx"], ["web"]),
        ({"type": "mtls_certificate", "certificate_id": "c1"}, "certificate_id", ["c1"], []),
        (
            {"type": "secrets_store_secret", "store_id": "st", "secret_name": "k"},
            "store_id",
            ["st"],
            ["k"],
        ),
        (
            {
                "type": "dispatch_namespace",
                "namespace": "customers",
                "outbound": {"worker": {"service": "outbound"}},
            },
            "namespace",
            ["customer*"],
            ["outbound"],
        ),
        ({"type": "ratelimit", "namespace_id": "1001"}, "namespace_id", ["1001"], ["1002"]),
        (
            {"type": "workflow", "workflow_name": "web-flow", "class_name": "Flow"},
            "workflow_name",
            ["web-flow"],
            ["Flow"],
        ),
    ],
)
def test_a_resource_binding_is_allowed_only_to_the_resources_listed_for_its_type(
    binding: dict[str, Any], field: str, allowed: list[str], refused: list[str]
) -> None:
    kind = binding["type"]
    summary = upload(
        {"name": "GREETING", "type": "plain_text", "text": "x"}, {"name": "R", **binding}
    )
    assert judged(summary, resources={kind: allowed}) == []
    refusing: list[dict[str, list[str]]] = [
        {},
        {kind: refused},
        {kind: []},
        {"queue" if kind != "queue" else "d1": ["*"]},  # another type's globs allow nothing
    ]
    for resources in refusing:
        reasons = judged(summary, resources=resources)
        assert pointers(reasons) == [f"/bindings/1/{field}"], resources
        listed = ", ".join(resources.get(kind, ())) or "none"
        assert reasons[0].message.startswith(
            f"team 'web' may not attach binding 'R' ({kind}) naming {field} "
            f"{binding[field]!r} (allowed {kind} resources: {listed}"
        )


def test_a_service_binding_to_a_script_of_the_team_needs_no_resource_rule() -> None:
    own = upload({"name": "API", "type": "service", "service": "web-api", "environment": "prod"})
    other = upload({"name": "AUTH", "type": "service", "service": "auth-api"})
    assert judged(own) == []
    assert judged(other) == [
        Problem(
            "team 'web' may not attach binding 'AUTH' (service) naming service 'auth-api' "
            "(allowed service resources: none; or a script of the team's own)",
            pointer="/bindings/0/service",
        )
    ]
    assert judged(other, resources={"service": ["auth-*"]}) == []


def test_durable_object_bindings_are_judged_by_the_worker_that_hosts_the_class() -> None:
    own_class = upload({"name": "ROOMS", "type": "durable_object_namespace", "class_name": "Room"})
    own_script = upload(
        {
            "name": "ROOMS",
            "type": "durable_object_namespace",
            "class_name": "Room",
            "script_name": "web-rooms",
        }
    )
    other = upload(
        {
            "name": "SESSIONS",
            "type": "durable_object_namespace",
            "class_name": "Session",
            "script_name": "sessions-do",
        }
    )
    by_id = upload(
        {"name": "NS", "type": "durable_object_namespace", "class_name": "X", "namespace_id": "n1"}
    )
    assert judged(own_class) == []  # the uploaded Worker's own class
    assert judged(own_script) == []
    assert judged(other) == [
        Problem(
            "team 'web' may not attach binding 'SESSIONS' (durable_object_namespace) naming "
            "script_name 'sessions-do' (allowed durable_object_namespace resources: none; or a "
            "script of the team's own)",
            pointer="/bindings/0/script_name",
        )
    ]
    assert judged(other, resources={"durable_object_namespace": ["sessions-*"]}) == []
    # The class name is code, not a resource: listing it allows nothing.
    assert judged(other, resources={"durable_object_namespace": ["Session"]}) != []
    assert pointers(judged(by_id)) == ["/bindings/0/namespace_id"]
    assert judged(by_id, resources={"durable_object_namespace": ["n1"]}) == []


def test_a_workflow_of_a_script_of_the_team_needs_no_resource_rule() -> None:
    hosted = upload(
        {
            "name": "FLOW",
            "type": "workflow",
            "workflow_name": "billing",
            "class_name": "Flow",
            "script_name": "web-flows",
        }
    )
    elsewhere = upload(
        {
            "name": "FLOW",
            "type": "workflow",
            "workflow_name": "billing",
            "class_name": "Flow",
            "script_name": "billing-worker",
        }
    )
    assert judged(hosted) == []
    assert pointers(judged(elsewhere)) == ["/bindings/0/workflow_name"]
    assert judged(elsewhere, resources={"workflow": ["billing"]}) == []


def test_a_resource_binding_naming_no_resource_passes_only_a_star() -> None:
    summary = upload({"name": "MAIL", "type": "send_email"})
    (refused,) = judged(summary, resources={"send_email": ["ops@example.com"]})
    assert refused.pointer == "/bindings/0/type"
    assert refused.message == (
        "team 'web' may not attach binding 'MAIL' (send_email) naming no resource "
        "(allowed send_email resources: ops@example.com)"
    )
    assert judged(summary, resources={"send_email": ["*"]}) == []


def test_inherited_and_kept_bindings_are_always_allowed() -> None:
    summary = upload(
        {"name": "KV", "type": "inherit"},
        {"name": "OLD", "type": "inherit", "old_name": "LEGACY", "version_id": "v1"},
        keep_bindings=["kv_namespace", "secret_text"],
        annotations={"workers/message": "keep"},
    )
    assert summary.keep_bindings == ("kv_namespace", "secret_text")
    assert judged(summary, bindings=[]) == []


def test_unknown_binding_types_and_metadata_fields_need_unsafe() -> None:
    summary = upload(
        {"name": "GREETING", "type": "plain_text", "text": "x"},
        {"name": "MYSTERY", "type": "some_unsafe_thing", "param": 1},
        capability_flags={"x": 1},
    )
    assert summary.unsafe
    assert judged(summary) == [
        Problem(
            "team 'web' may not attach binding 'MYSTERY' (some_unsafe_thing): the gateway does "
            "not know the type (unsafe bindings are off for this team)",
            pointer="/bindings/1/type",
        ),
        Problem(
            "team 'web' may not send the metadata field 'capability_flags', which the gateway "
            "does not know (unsafe metadata is off for this team)",
            pointer="/capability_flags",
        ),
    ]
    assert judged(summary, unsafe=True) == []


# -- uploads: tail consumers, logpush, migrations, size ----------------------------------------


def test_tail_consumers_must_be_the_teams_own_scripts_or_listed() -> None:
    summary = upload(
        tail_consumers=[{"service": "web-tail"}, {"service": "platform-tail"}],
        streaming_tail_consumers=[{"service": "elsewhere"}],
    )
    assert [p.message for p in judged(summary)] == [
        "team 'web' may not send its tail events to script 'platform-tail': not a script of "
        "the team's own (allowed outside it: none)",
        "team 'web' may not send its tail events to script 'elsewhere': not a script of the "
        "team's own (allowed outside it: none)",
    ]
    reasons = judged(summary, tail_consumers=["platform-*"])
    assert [p.message for p in reasons] == [
        "team 'web' may not send its tail events to script 'elsewhere': not a script of the "
        "team's own (allowed outside it: platform-*)"
    ]
    assert judged(summary, tail_consumers=["platform-*", "elsewhere"]) == []


def test_logpush_and_migrations_need_their_rules() -> None:
    migrations = {"new_tag": "v1", "new_sqlite_classes": ["Room"]}
    summary = upload(logpush=True, migrations=migrations)
    assert judged(summary) == [
        Problem(
            "team 'web' may not turn on logpush (deploy rule logpush is off for this team)",
            pointer="/logpush",
        ),
        Problem(
            "team 'web' may not run Durable Object migrations (deploy rule migrations is off "
            "for this team)",
            pointer="/migrations",
        ),
    ]
    assert pointers(judged(summary, logpush=True)) == ["/migrations"]
    assert judged(summary, logpush=True, migrations=True) == []
    assert judged(upload(logpush=False)) == []


def test_a_script_over_the_size_rule_is_refused_with_both_numbers() -> None:
    summary = upload(modules=b"x" * (2 * MIB + 5))
    assert judged(summary, max_script_bytes=2 * MIB + 5) == []
    assert judged(summary, max_script_bytes=MIB) == [
        Problem(
            "the Worker's modules total 2097157 bytes (2.0 MiB); team 'web' may upload at most "
            "1048576 bytes (1.0 MiB)"
        )
    ]
    small = upload(modules=b"x" * 10)
    assert judged(small, max_script_bytes=9)[0].message == (
        "the Worker's modules total 10 bytes; team 'web' may upload at most 9 bytes"
    )


def test_every_reason_is_given_at_once() -> None:
    summary = upload(
        {"name": "AI", "type": "ai"},
        {"name": "KV", "type": "kv_namespace", "namespace_id": OTHER_KV_ID},
        {"name": "X", "type": "mystery"},
        logpush=True,
        tail_consumers=[{"service": "elsewhere"}],
        surprise=1,
    )
    reasons = judged(summary, max_script_bytes=1)
    assert pointers(reasons) == [
        "/bindings/0/type",
        "/bindings/1/namespace_id",
        "/bindings/2/type",
        "/surprise",
        None,  # the tail consumer (tail_consumers and streaming_tail_consumers are one list)
        "/logpush",
        None,  # the size
    ]
    assert all("team 'web'" in reason.message for reason in reasons)


# -- deployments ---------------------------------------------------------------------------------


def deployment(**fields: Any) -> bytes:
    body = {
        "strategy": "percentage",
        "versions": [{"version_id": "v2", "percentage": 100}],
        "annotations": {"workers/message": "release"},
        "code_update_strategy": None,
        **fields,
    }
    return json.dumps(body).encode()


def split_between(*versions: tuple[str, float]) -> bytes:
    return deployment(versions=[{"version_id": v, "percentage": p} for v, p in versions])


def test_wranglers_deployment_body_is_read() -> None:
    assert parse_deployment(deployment()) == DeploymentRequest(
        "percentage", (DeploymentVersion("v2", 100.0),)
    )
    split = parse_deployment(
        deployment(
            versions=[
                {"version_id": "v2", "percentage": 33.3},
                {"version_id": "v1", "percentage": 66.7},
            ]
        )
    )
    assert split.versions == (DeploymentVersion("v2", 33.3), DeploymentVersion("v1", 66.7))
    assert split.splits_traffic


@pytest.mark.parametrize(
    ("body", "pointer", "words"),
    [
        (b"", None, "the deployment body is not valid JSON"),
        (b"\xff", None, "the deployment body is not UTF-8"),
        (b'["percentage"]', "", "the deployment body must be a JSON object"),
        (
            b'{"strategy": "percentage", "strategy": "x", "versions": []}',
            "/strategy",
            "the deployment body: duplicate key 'strategy'",
        ),
        (json.dumps({"versions": []}).encode(), "/strategy", "Field required"),
        (deployment(strategy="immediate"), "/strategy", "Cloudflare's only one is 'percentage'"),
        (deployment(strategy=1), "/strategy", "valid string"),
        (deployment(versions=[]), "/versions", "at least 1 item"),
        (deployment(versions={"v": 100}), "/versions", "valid list"),
        (
            deployment(versions=[{"version_id": str(n), "percentage": 25} for n in range(3)]),
            "/versions",
            "at most 2 items",
        ),
        (
            deployment(versions=[{"version_id": "", "percentage": 100}]),
            "/versions/0/version_id",
            "at least 1 character",
        ),
        (
            deployment(versions=[{"version_id": 7, "percentage": 100}]),
            "/versions/0/version_id",
            "valid string",
        ),
        (deployment(versions=[{"percentage": 100}]), "/versions/0/version_id", "Field required"),
        (
            deployment(versions=[{"version_id": "v", "percentage": True}]),
            "/versions/0/percentage",
            "valid number",
        ),
        (
            deployment(versions=[{"version_id": "v", "percentage": "100"}]),
            "/versions/0/percentage",
            "valid number",
        ),
        (
            deployment(versions=[{"version_id": "v", "percentage": 100.5}]),
            "/versions/0/percentage",
            "less than or equal to 100",
        ),
        (
            split_between(("a", -10), ("b", 110)),
            "/versions/0/percentage",
            "greater than or equal to 0",
        ),
        (
            b'{"strategy": "percentage", "versions": [{"version_id": "v", "percentage": 1e400}]}',
            "/versions/0/percentage",
            "less than or equal to 100",
        ),
        (
            split_between(("a", 50), ("b", 40)),
            "/versions",
            "the versions' percentages add up to 90, not 100",
        ),
        (
            split_between(("a", 50), ("a", 50)),
            "/versions/1/version_id",
            "version 'a' is listed twice",
        ),
        (deployment(versions=["v2"]), "/versions/0", "valid dictionary"),
    ],
)
def test_malformed_deployments_are_refused_with_a_pointer(
    body: bytes, pointer: str | None, words: str
) -> None:
    with pytest.raises(InvalidDeployRequest) as refused:
        parse_deployment(body)
    assert (refused.value.code, refused.value.status) == (19064, 400)
    assert refused.value.pointer == pointer
    assert words in refused.value.message
    reasons = refused.value.reasons
    assert not reasons or (reasons[0].message, reasons[0].pointer) == (
        refused.value.message,
        refused.value.pointer,
    )


def test_every_problem_of_a_deployment_is_listed() -> None:
    body = deployment(
        strategy="blue-green",
        versions=[{"version_id": "a", "percentage": 50}, {"version_id": "a", "percentage": 10}],
    )
    with pytest.raises(InvalidDeployRequest) as refused:
        parse_deployment(body)
    assert pointers(list(refused.value.reasons)) == [
        "/strategy",
        "/versions/1/version_id",
        "/versions",
    ]


def test_a_split_deployment_needs_gradual_deployments() -> None:
    whole = parse_deployment(deployment())
    split = DeploymentRequest(
        "percentage", (DeploymentVersion("v2", 10.0), DeploymentVersion("v1", 90.0))
    )
    assert deployment_reasons(TEAM, rules(), split) == []  # built-in: allowed
    assert deployment_reasons(TEAM, rules(gradual_deployments=False), whole) == []
    assert deployment_reasons(TEAM, rules(gradual_deployments=False), split) == [
        Problem(
            "team 'web' may not split traffic between versions (v2 10%, v1 90%): gradual "
            "deployments are off for this team; deploy one version at 100%",
            pointer="/versions",
        )
    ]
    zero = DeploymentRequest(
        "percentage", (DeploymentVersion("v2", 100.0), DeploymentVersion("v1", 0.0))
    )
    assert zero.splits_traffic  # two versions: a split, even at 0 %
    assert not whole.splits_traffic


def test_parse_json_object_names_what_it_read() -> None:
    assert parse_json_object(b'{"enabled": true}', "subdomain") == {"enabled": True}
    with pytest.raises(InvalidDeployRequest) as refused:
        parse_json_object(b"true", "subdomain")
    assert refused.value.message == "the subdomain body must be a JSON object"
    with pytest.raises(InvalidDeployRequest) as refused:
        parse_json_object(b'{"a": NaN}', "script settings")
    assert refused.value.message.startswith("the script settings body is not valid JSON: NaN")


# -- script settings and the subdomain ----------------------------------------------------------


def test_script_settings_judge_logpush_and_tail_consumers() -> None:
    settings = {
        "logpush": True,
        "tail_consumers": [{"service": "web-tail"}, {"service": "audit", "environment": "p"}],
        "observability": {"enabled": False},
        "tags": ["a"],
    }
    assert script_settings_reasons(TEAM, rules(), OWN, settings) == [
        Problem(
            "team 'web' may not turn on logpush (deploy rule logpush is off for this team)",
            pointer="/logpush",
        ),
        Problem(
            "team 'web' may not send its tail events to script 'audit': not a script of the "
            "team's own (allowed outside it: none)",
            pointer="/tail_consumers/1/service",
        ),
    ]
    allowing = rules(logpush=True, tail_consumers=["audit"])
    assert script_settings_reasons(TEAM, allowing, OWN, settings) == []
    quiet = {"logpush": False, "tail_consumers": None, "observability": {"enabled": False}}
    assert script_settings_reasons(TEAM, rules(), OWN, quiet) == []
    assert script_settings_reasons(TEAM, rules(), OWN, {"tags": []}) == []


@pytest.mark.parametrize(
    ("settings", "pointer"),
    [
        ({"logpush": "true"}, "/logpush"),
        ({"logpush": 1}, "/logpush"),
        ({"tail_consumers": {"service": "x"}}, "/tail_consumers"),
        ({"tail_consumers": ["web-tail"]}, "/tail_consumers/0/service"),
        ({"tail_consumers": [{"service": "a"}, {"environment": "p"}]}, "/tail_consumers/1/service"),
        ({"tail_consumers": [{"service": ""}]}, "/tail_consumers/0/service"),
    ],
)
def test_malformed_script_settings_are_refused(settings: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidDeployRequest) as refused:
        script_settings_reasons(TEAM, rules(), OWN, settings)
    assert refused.value.pointer == pointer


def test_enabling_workers_dev_or_previews_needs_the_rules_and_disabling_never_does() -> None:
    both = {"enabled": True, "previews_enabled": True}
    assert subdomain_reasons(TEAM, rules(), both) == [
        Problem(
            "team 'web' may not enable the Worker's workers.dev route (deploy rule workers_dev "
            "is off for this team)",
            pointer="/enabled",
        ),
        Problem(
            "team 'web' may not enable preview URLs (deploy rule preview_urls is off for this "
            "team)",
            pointer="/previews_enabled",
        ),
    ]
    assert pointers(subdomain_reasons(TEAM, rules(workers_dev=True), both)) == ["/previews_enabled"]
    assert subdomain_reasons(TEAM, rules(workers_dev=True, preview_urls=True), both) == []
    assert subdomain_reasons(TEAM, rules(), {"enabled": False, "previews_enabled": False}) == []
    assert subdomain_reasons(TEAM, rules(), {"enabled": False}) == []
    assert pointers(
        subdomain_reasons(TEAM, rules(), {"enabled": False, "previews_enabled": True})
    ) == ["/previews_enabled"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/enabled"),
        ({"enabled": None}, "/enabled"),
        ({"enabled": "true"}, "/enabled"),
        ({"enabled": 0}, "/enabled"),
        ({"enabled": False, "previews_enabled": "no"}, "/previews_enabled"),
    ],
)
def test_a_malformed_subdomain_body_is_refused(body: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidDeployRequest) as refused:
        subdomain_reasons(TEAM, rules(), body)
    assert refused.value.pointer == pointer
    assert "must be true or false" in refused.value.message


# -- codes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidWorkerUpload("x"), 19060, 400),
        (WorkerUploadTooLarge("x"), 19061, 413),
        (DeployDenied("x"), 19062, 403),
        (DeployQuotaExceeded("x", headers={"Retry-After": "30"}), 19063, 429),
        (InvalidDeployRequest("x"), 19064, 400),
    ],
)
def test_the_deploy_codes_answer_in_cloudflares_envelope(
    error: GatewayError, code: int, status: int
) -> None:
    reply = error_reply(error)
    assert reply.status == status
    assert json.loads(reply.body)["errors"][0]["code"] == code


def test_a_refusal_carries_every_reason_to_the_caller() -> None:
    summary = upload(
        {"name": "AI", "type": "ai"},
        {"name": "KV", "type": "kv_namespace", "namespace_id": OTHER_KV_ID},
    )
    reasons = judged(summary)
    envelope = json.loads(
        error_reply(DeployDenied("the deploy policy refuses this upload", reasons=reasons)).body
    )
    shown = json.dumps(envelope)
    assert envelope["errors"][0]["code"] == 19062
    for reason in reasons:
        assert reason.message in shown
