"""The admin door over HTTP, as an admin's script or the CLI calls it: SigV4 through the local API
front, the admin function, moto and, for comparisons, the session door next to it."""

from __future__ import annotations

import copy
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assets_gateway.domain.policy import PolicyDocument
from gateway_local.api_front import LocalIdentity
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    DOCS_SCRIPT,
    OUTSIDER,
    PLATFORM_ADMIN,
    WEB_DEPLOYER,
    WEB_SCRIPT,
    demo_policy,
)
from gateway_local.stack import LocalStack
from helpers import every_log_record, in_one_window, manifest_of, signed_client

REASON = {"reason": "e2e test"}
GRANT = {
    "quotas": {"sessions_per_minute": 2},
    "reason": "release day",
    "expires_at": "2099-01-01T00:00:00Z",
}


def admin_url(stack: LocalStack, path: str) -> str:
    return f"{stack.front_server.url}/admin/{path}"


def session_url(stack: LocalStack, script: str) -> str:
    account = f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}"
    return f"{account}/workers/scripts/{script}/assets-upload-session"


@pytest.fixture
def admin() -> Iterator[httpx.Client]:
    with signed_client(PLATFORM_ADMIN) as client:
        yield client


def current_version(admin: httpx.Client, stack: LocalStack) -> int:
    answer = admin.get(admin_url(stack, "policy"))
    assert answer.status_code == 200
    version: int = answer.json()["result"]["version"]
    assert answer.headers["ETag"] == f'"{version}"'
    return version


def publish(
    admin: httpx.Client, stack: LocalStack, policy: dict[str, Any], if_match: int | None
) -> httpx.Response:
    headers = {} if if_match is None else {"If-Match": f'"{if_match}"'}
    return admin.put(
        admin_url(stack, "policy"), json={"policy": policy, "reason": "test"}, headers=headers
    )


def codes(answer: httpx.Response) -> list[int]:
    return [error["code"] for error in answer.json()["errors"]]


def explain(
    admin: httpx.Client, stack: LocalStack, caller: LocalIdentity, script: str, **what: Any
) -> httpx.Response:
    """Ask the admin door what the session door would decide (`what`: a manifest or a summary)."""
    return admin.post(
        admin_url(stack, "explain"),
        json={
            "principal": caller.principal_arn,
            "account_id": DEMO_ACCOUNT_ID,
            "script_name": script,
            **what,
        },
    )


def admin_audit_records(captured: io.StringIO) -> dict[str, dict[str, Any]]:
    """The admin door's audit records among captured log lines, by action (the last of each)."""
    return {
        record["action"]: record
        for record in (
            json.loads(line)["audit"]
            for line in captured.getvalue().splitlines()
            if line.startswith("{") and '"audit"' in line
        )
        if record.get("door") == "admin"
    }


def assert_no_new_version(answer: httpx.Response, version: int) -> None:
    """A change to what already is: 200, `changed` false, the current version, one message."""
    assert answer.status_code == 200
    envelope = answer.json()
    assert (envelope["result"]["changed"], envelope["result"]["version"]) == (False, version)
    (message,) = envelope["messages"]
    assert message["code"] == 19056
    assert "no new version" in message["message"]


def listed_versions(admin: httpx.Client, stack: LocalStack) -> tuple[int, list[int]]:
    history = admin.get(admin_url(stack, "policy/versions")).json()["result"]
    return history["current"], [v["version"] for v in history["versions"]]


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "policy", None),
    ("PUT", "policy", {"policy": {}, "reason": "x"}),
    ("GET", "policy/versions", None),
    ("GET", "policy/versions/1", None),
    ("POST", "policy:validate", {"policy": {}}),
    ("POST", "policy:simulate", {"policy": {}}),
    ("POST", "explain", {}),
    ("GET", "usage", None),
    ("POST", "teams/web/grants", {}),
    ("DELETE", "teams/web/usage?window=day&reason=x", None),
    ("POST", "teams/web:suspend", REASON),
    ("POST", "teams/web:resume", REASON),
    ("POST", "kill-switch:engage", REASON),
    ("POST", "kill-switch:release", REASON),
]


@pytest.mark.parametrize("identity", [WEB_DEPLOYER, OUTSIDER], ids=["team-caller", "outsider"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_everyone_but_admins_gets_403_19050_on_every_route(
    stack: LocalStack, identity: LocalIdentity, method: str, path: str, body: Any
) -> None:
    before = stack.policy_history.current()
    with signed_client(identity) as client:
        answer = client.request(method, admin_url(stack, path), json=body)
    assert answer.status_code == 403
    assert codes(answer) == [19050]
    assert answer.json()["success"] is False
    assert stack.policy_history.current() == before


def test_admins_named_by_the_policy_are_admins_too(stack: LocalStack) -> None:
    with signed_client(DOCS_CI) as docs:
        assert docs.get(admin_url(stack, "policy")).status_code == 403
        policy = demo_policy()
        policy["admins"] = ["arn:aws:iam::222222222222:user/docs-ci"]
        stack.publish_policy(policy)
        assert docs.get(admin_url(stack, "policy")).status_code == 200


def test_publish_needs_if_match_and_refuses_a_stale_version(
    stack: LocalStack, admin: httpx.Client
) -> None:
    version = current_version(admin, stack)
    missing = publish(admin, stack, demo_policy(), None)
    assert (missing.status_code, codes(missing)) == (428, [19053])
    stale = publish(admin, stack, demo_policy(), version - 1)
    assert (stale.status_code, codes(stale)) == (409, [19052])
    assert current_version(admin, stack) == version


def test_invalid_policy_is_400_with_pointers_and_nothing_is_published(
    stack: LocalStack, admin: httpx.Client
) -> None:
    version = current_version(admin, stack)
    policy = demo_policy()
    policy["teams"]["docs"]["scripts"] = ["docs.site"]
    policy["teams"]["web"]["accounts"] = ["not-hex"]
    policy["grants"] = [{**GRANT, "team": "ghosts"}]
    for answer in (
        admin.post(admin_url(stack, "policy:validate"), json={"policy": policy}),
        publish(admin, stack, policy, version),
    ):
        assert answer.status_code == 400
        errors = answer.json()["errors"]
        assert {e["code"] for e in errors} == {19051}
        # The schema error (the account id) hides neither the grant to an unknown team nor the
        # glob that matches nothing: one answer lists every problem.
        assert sorted(e["source"]["pointer"] for e in errors) == [
            "/policy/grants/0/team",
            "/policy/teams/docs/scripts/0",
            "/policy/teams/web/accounts/0",
        ]
    assert current_version(admin, stack) == version


def test_validate_reports_warnings_and_the_changes_it_would_make(
    stack: LocalStack, admin: httpx.Client
) -> None:
    policy = demo_policy()
    policy["teams"]["web"]["scripts"] = ["web-*", "shop-*"]
    policy["teams"]["web"]["quotas"]["sessions_per_minute"] = 300
    answer = admin.post(admin_url(stack, "policy:validate"), json={"policy": policy})
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert result["valid"] is True
    assert any(c.startswith("team 'web': scripts") for c in result["changes"])
    assert "/policy/teams/web/quotas/sessions_per_minute" in {
        w.get("pointer") for w in result["warnings"]
    }


def test_publish_history_and_rollback(stack: LocalStack, admin: httpx.Client) -> None:
    version = current_version(admin, stack)
    original = admin.get(admin_url(stack, "policy")).json()["result"]["policy"]
    changed = demo_policy()
    changed["teams"]["docs"]["scripts"] = ["docs", "docs-*", "handbook"]
    answer = publish(admin, stack, changed, version)
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert (result["version"], result["changed"]) == (version + 1, True)
    assert answer.json()["messages"] == []
    assert result["published_by"] == PLATFORM_ADMIN.principal_arn
    assert result["changes"] == [
        "team 'docs': scripts ['docs', 'docs-*'] → ['docs', 'docs-*', 'handbook']"
    ]
    history = admin.get(admin_url(stack, "policy/versions"), params={"limit": 2}).json()["result"]
    assert history["current"] == version + 1
    assert [v["version"] for v in history["versions"]] == [version + 1, version]
    assert history["versions"][0]["reason"] == "test"
    old = admin.get(admin_url(stack, f"policy/versions/{version}")).json()["result"]
    assert old["policy"] == original
    # Roll back: the old version's document, published over the current one.
    rolled = publish(admin, stack, old["policy"], version + 1)
    assert rolled.json()["result"]["version"] == version + 2
    assert admin.get(admin_url(stack, "policy")).json()["result"]["policy"] == original
    unknown = admin.get(admin_url(stack, "policy/versions/999999"))
    assert (unknown.status_code, codes(unknown)) == (404, [19054])


def test_concurrent_publishes_over_the_same_version_exactly_one_wins(
    stack: LocalStack, admin: httpx.Client
) -> None:
    version = current_version(admin, stack)
    racers = 8
    start = threading.Barrier(racers)
    statuses: list[int] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        policy = demo_policy()
        policy["teams"]["docs"]["description"] = f"racer {n}"
        with signed_client(PLATFORM_ADMIN) as client:
            start.wait()
            status = publish(client, stack, policy, version).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * (racers - 1)
    current = admin.get(admin_url(stack, "policy")).json()["result"]
    assert current["version"] == version + 1
    assert current["policy"]["teams"]["docs"]["description"].startswith("racer ")


def test_publishing_the_current_policy_again_publishes_no_version(
    stack: LocalStack, admin: httpx.Client
) -> None:
    # Given the current policy, read back as the CLI reads it
    version = current_version(admin, stack)
    same = admin.get(admin_url(stack, "policy")).json()["result"]["policy"]
    spelled_out = copy.deepcopy(same)
    spelled_out["teams"]["docs"]["suspended"] = False  # a default written out: the same policy
    captured = io.StringIO()
    with every_log_record(logging.StreamHandler(captured)):
        # When it is published again, as it is or with a default written out
        answers = [publish(admin, stack, policy, version) for policy in (same, spelled_out)]
    # Then no version is published: the answer, the history and the audit say so
    for answer in answers:
        assert_no_new_version(answer, version)
        assert answer.headers["ETag"] == f'"{version}"'
        assert answer.json()["result"]["changes"] == []
    current, versions = listed_versions(admin, stack)
    assert (current, versions[0]) == (version, version)
    assert current_version(admin, stack) == version
    audit = admin_audit_records(captured)["policy.publish"]
    assert (audit["outcome"], audit["status"], audit["code"]) == ("done", 200, 19056)
    assert (audit["policy_version"], audit["changes"]) == (version, [])
    assert "no new version" in audit["message"]
    # A stale If-Match is still refused, even for the same document.
    stale = publish(admin, stack, same, version - 1)
    assert (stale.status_code, codes(stale)) == (409, [19052])


# (route, body, whether the first call changes the policy); the second call never does.
CHANGES_TO_WHAT_IS = [
    ("teams/docs:suspend", REASON, True),
    ("teams/docs:resume", REASON, False),
    ("teams/docs/grants", GRANT, True),
    ("kill-switch:engage", REASON, True),
    ("kill-switch:release", REASON, False),
]


@pytest.mark.parametrize(
    ("path", "body", "first_changes"),
    CHANGES_TO_WHAT_IS,
    ids=[
        "suspend a suspended team",
        "resume an active team",
        "a grant the team has",
        "engage an engaged kill switch",
        "release a released kill switch",
    ],
)
def test_a_change_to_what_already_is_publishes_no_version(
    stack: LocalStack, admin: httpx.Client, path: str, body: dict[str, Any], first_changes: bool
) -> None:
    version = current_version(admin, stack)
    first = admin.post(admin_url(stack, path), json=body)
    assert first.status_code == 200
    now = version + 1 if first_changes else version
    assert (first.json()["result"]["changed"], first.json()["result"]["version"]) == (
        first_changes,
        now,
    )
    again = admin.post(admin_url(stack, path), json={**body, "reason": "once more"})
    assert_no_new_version(again, now)
    assert again.json()["result"] == {**first.json()["result"], "changed": False}
    current, versions = listed_versions(admin, stack)
    assert (current, versions[0]) == (now, now)
    assert current_version(admin, stack) == now


EXPLAINED = [
    ("allowed", DOCS_CI, DOCS_SCRIPT, {"/docs/a.html": b"a"}),
    ("path outside", DOCS_CI, DOCS_SCRIPT, {"/docs/a.html": b"a", "/private/x": b"x"}),
    ("script denied", DOCS_CI, WEB_SCRIPT, {"/docs/a.html": b"a"}),
    ("unmapped caller", OUTSIDER, DOCS_SCRIPT, {"/docs/a.html": b"a"}),
]


@pytest.mark.parametrize(
    ("caller", "script", "files"),
    [case[1:] for case in EXPLAINED],
    ids=[case[0] for case in EXPLAINED],
)
def test_explain_says_what_the_session_door_then_does(
    stack: LocalStack,
    admin: httpx.Client,
    caller: LocalIdentity,
    script: str,
    files: dict[str, bytes],
) -> None:
    manifest = manifest_of(files)
    explained = explain(admin, stack, caller, script, manifest=manifest)
    assert explained.status_code == 200
    decision = explained.json()["result"]
    assert stack.emulator.calls == []  # explained, not forwarded
    with signed_client(caller) as client:
        done = client.post(session_url(stack, script), json={"manifest": manifest})
    assert decision["allowed"] is (done.status_code == 200)
    if not decision["allowed"]:
        envelope = done.json()
        session_codes = {e["code"] for e in envelope["errors"]}
        assert {r["code"] for r in decision["reasons"]} == session_codes
        session_reasons = {m["message"] for m in envelope["messages"]} or {
            e["message"] for e in envelope["errors"]
        }
        assert {r["message"] for r in decision["reasons"]} == session_reasons
    else:
        assert decision["rules"]["matching_script_globs"] == ["docs"]
        assert decision["rules"]["account_listed"] is True
        # The deploy door's rules and quotas, resolved as the deploy door resolves them.
        expected = PolicyDocument.model_validate(demo_policy()).limits_of("docs")
        limits = decision["rules"]["limits"]
        assert limits["deploy"] == expected.deploy.as_dict()
        assert limits["deploy"]["bindings"] == list(expected.deploy.bindings)
        assert limits["quotas"]["deploys-hour"] == expected.quotas.deploys_per_hour
        assert limits["quotas"]["deploy-calls-minute"] == expected.quotas.deploy_calls_per_minute


def test_explain_from_a_summary_and_its_quota_state(stack: LocalStack, admin: httpx.Client) -> None:
    in_one_window(lambda: explain_from_a_summary_and_its_quota_state(stack, admin))


def explain_from_a_summary_and_its_quota_state(stack: LocalStack, admin: httpx.Client) -> None:
    stack.clear_quotas()
    policy = demo_policy()
    policy["teams"]["docs"]["quotas"]["sessions_per_minute"] = 1
    stack.publish_policy(policy)
    with signed_client(DOCS_CI) as docs:
        first = docs.post(
            session_url(stack, DOCS_SCRIPT), json={"manifest": manifest_of({"/docs/a": b"a"})}
        )
    assert first.status_code == 200
    summary = {"entries": 5000, "bytes": 10, "paths": ["/docs/a", "/other"]}
    explained = explain(admin, stack, DOCS_CI, DOCS_SCRIPT, summary=summary).json()["result"]
    assert explained["allowed"] is False
    reasons = {(r["code"], r.get("pointer")) for r in explained["reasons"]}
    assert (19011, "/manifest") in reasons  # 5000 entries > docs' 1000
    assert (19011, "/manifest/~1other") in reasons
    assert 19020 in {code for code, _ in reasons}  # the minute's one session is used
    minute = next(q for q in explained["quotas"] if q["name"] == "sessions-minute")
    assert (minute["limit"], minute["used"]) == (1, 1)
    assert explained["unchecked"] == ["file sizes"]


def test_suspend_refuses_the_team_with_19010_and_resume_lets_it_back(
    stack: LocalStack, admin: httpx.Client
) -> None:
    body = {"manifest": manifest_of({"/a.html": b"a"})}
    suspended = admin.post(admin_url(stack, "teams/web:suspend"), json={"reason": "incident 42"})
    assert suspended.status_code == 200
    assert suspended.json()["result"]["suspended"] is True
    # The test stack's policy cache age is 0 s: the next request sees the new version.
    with signed_client(WEB_DEPLOYER) as web:
        refused = web.post(session_url(stack, WEB_SCRIPT), json=body)
        assert (refused.status_code, codes(refused)) == (403, [19010])
        assert "incident 42" in refused.json()["errors"][0]["message"]
        assert admin.post(admin_url(stack, "teams/web:resume"), json=REASON).status_code == 200
        assert web.post(session_url(stack, WEB_SCRIPT), json=body).status_code == 200
    unknown = admin.post(admin_url(stack, "teams/nobody:suspend"), json=REASON)
    assert (unknown.status_code, codes(unknown)) == (404, [19054])
    no_reason = admin.post(admin_url(stack, "teams/web:suspend"), json={})
    assert (no_reason.status_code, codes(no_reason)) == (400, [19000])


def test_kill_switch_stops_the_session_door_while_admin_answers(
    stack: LocalStack, admin: httpx.Client
) -> None:
    engaged = admin.post(admin_url(stack, "kill-switch:engage"), json={"reason": "token leak"})
    assert engaged.status_code == 200
    assert engaged.json()["result"]["kill_switch"]["engaged"] is True
    body = {"manifest": manifest_of({"/a.html": b"a"})}
    with signed_client(WEB_DEPLOYER) as web:
        stopped = web.post(session_url(stack, WEB_SCRIPT), json=body)
        assert (stopped.status_code, codes(stopped)) == (503, [19013])
        assert "token leak" in stopped.json()["errors"][0]["message"]
        assert admin.get(admin_url(stack, "usage")).status_code == 200
        assert admin.post(admin_url(stack, "kill-switch:release"), json=REASON).status_code == 200
        assert web.post(session_url(stack, WEB_SCRIPT), json=body).status_code == 200
    assert len(stack.emulator.calls) == 1


def test_usage_grants_and_reset(stack: LocalStack, admin: httpx.Client) -> None:
    in_one_window(lambda: usage_grants_and_reset(stack, admin))


def usage_grants_and_reset(stack: LocalStack, admin: httpx.Client) -> None:
    stack.publish_policy(demo_policy())  # no grant from an earlier run
    stack.clear_quotas()
    body = {"manifest": manifest_of({"/docs/a": b"a"})}
    with signed_client(DOCS_CI) as docs:
        for _ in range(5):  # the demo's docs quota: 5 a minute
            assert docs.post(session_url(stack, DOCS_SCRIPT), json=body).status_code == 200
        assert docs.post(session_url(stack, DOCS_SCRIPT), json=body).status_code == 429
        usage = admin.get(admin_url(stack, "usage"), params={"team": "docs", "window": "minute"})
        (team,) = usage.json()["result"]["teams"]
        assert [(q["name"], q["used"], q["limit"]) for q in team["quotas"]] == [
            ("sessions-minute", 5, 5),
            ("deploy-calls-minute", 0, 120),  # the session door leaves the deploy counters be
        ]
        assert usage.json()["result"]["cloudflare_budget"]["used"] == 5

        granted = admin.post(admin_url(stack, "teams/docs/grants"), json=GRANT)
        assert granted.status_code == 200
        # The team's own usage route counts the grant, as its quota charge does.
        own = docs.get(f"{stack.base_url}/gateway/usage").json()["result"]["quotas"]
        assert {q["name"]: q["limit"] for q in own}["sessions-minute"] == 7
        assert docs.post(session_url(stack, DOCS_SCRIPT), json=body).status_code == 200

        reset = admin.delete(
            admin_url(stack, "teams/docs/usage"), params={"window": "minute", "reason": "ops"}
        )
        assert reset.status_code == 200
        assert [(q["name"], q["used"]) for q in reset.json()["result"]["before"]] == [
            ("sessions-minute", 6),
            ("deploy-calls-minute", 0),
        ]
        after = admin.get(admin_url(stack, "usage"), params={"team": "docs", "window": "day"})
        day = {q["name"]: q["used"] for q in after.json()["result"]["teams"][0]["quotas"]}
        assert day["sessions-day"] == 6  # only the minute was reset
        minute = admin.get(admin_url(stack, "usage"), params={"team": "docs"}).json()
        quotas = {q["name"]: q for q in minute["result"]["teams"][0]["quotas"]}
        assert (quotas["sessions-minute"]["used"], quotas["sessions-minute"]["limit"]) == (0, 7)


def test_simulate_replays_recorded_decisions_against_a_proposed_policy(
    stack: LocalStack, admin: httpx.Client
) -> None:
    stack.clear_decisions()
    sent: dict[str, str] = {}
    with signed_client(DOCS_CI) as docs:
        # A policy refusal writes nothing: its decision rides its execution environment's next
        # quota charge. Four admitted requests after it pass through each of the stack's four
        # environments (each serves one request at a time, in turn).
        for name in ("/private/x", "/assets/app.js", "/docs/a.html", "/docs/b.html", "/docs/c"):
            answer = docs.post(
                session_url(stack, DOCS_SCRIPT), json={"manifest": manifest_of({name: b"a"})}
            )
            sent[answer.headers["X-Request-Id"]] = name
    proposed = demo_policy()
    proposed["teams"]["docs"]["paths"] = ["/docs/**", "/private/**"]
    answer = admin.post(admin_url(stack, "policy:simulate"), json={"policy": proposed})
    assert answer.status_code == 200
    report = answer.json()["result"]
    docs_report = report["teams"]["docs"]
    # Decisions other tests' environments still held may ride along: count only these.
    assert report["decisions"] >= len(sent)
    changed = {
        (sent[e["request_id"]], e["was"], e["now"])
        for e in docs_report["examples"]
        if e["request_id"] in sent
    }
    assert changed == {
        ("/assets/app.js", "allowed", "refused"),
        ("/private/x", "refused", "allowed"),
    }
    too_far = admin.post(
        admin_url(stack, "policy:simulate"),
        json={"policy": proposed, "since": "2000-01-01T00:00:00Z"},
    )
    assert (too_far.status_code, codes(too_far)) == (400, [19000])


def test_every_admin_action_is_one_audit_record(stack: LocalStack, admin: httpx.Client) -> None:
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    with every_log_record(handler), signed_client(WEB_DEPLOYER) as web:
        admin.post(admin_url(stack, "teams/docs:suspend"), json={"reason": "audit me"})
        web.get(admin_url(stack, "policy"))
    by_action = admin_audit_records(captured)
    suspend = by_action["team.suspend"]
    assert (suspend["outcome"], suspend["status"], suspend["team"]) == ("done", 200, "docs")
    assert suspend["reason"] == "audit me"
    assert suspend["changes"] == [
        "team 'docs': suspended False → True",
        "team 'docs': suspended_reason '' → 'audit me'",
    ]
    refused = by_action["policy.get"]
    assert (refused["outcome"], refused["code"]) == ("refused", 19050)
    assert refused["principal"] == WEB_DEPLOYER.principal_arn


def test_a_publish_that_undoes_a_suspension_or_the_kill_switch_says_so(
    stack: LocalStack, admin: httpx.Client
) -> None:
    admin.post(admin_url(stack, "teams/docs:suspend"), json=REASON)
    admin.post(admin_url(stack, "kill-switch:engage"), json=REASON)
    stale_file = demo_policy()  # edited before either was set
    checked = admin.post(admin_url(stack, "policy:validate"), json={"policy": stale_file})
    published = publish(admin, stack, stale_file, current_version(admin, stack))
    for answer in (checked, published):
        warnings = {w["message"] for w in answer.json()["result"]["warnings"]}
        assert "this publish releases the engaged kill switch" in warnings
        assert "this publish resumes suspended team 'docs'" in warnings


def test_an_invalid_stored_policy_is_replaced_by_a_publish(
    stack: LocalStack, admin: httpx.Client
) -> None:
    version = current_version(admin, stack)
    # A hand edit left the current item unreadable: the session door answers 503 19012.
    stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url).put_item(
        TableName=stack.names.control_table,
        Item={
            "id": {"S": "policy#current"},
            "document": {"S": f'{{"version": {version}, "policy": {{"teams": 7}}}}'},
            "version": {"N": str(version)},
        },
    )
    with signed_client(WEB_DEPLOYER) as web:
        body = {"manifest": manifest_of({"/a.html": b"a"})}
        broken = web.post(session_url(stack, WEB_SCRIPT), json=body)
        assert (broken.status_code, codes(broken)) == (503, [19012])
        suspend = admin.post(admin_url(stack, "teams/docs:suspend"), json=REASON)
        assert (suspend.status_code, codes(suspend)) == (503, [19012])
        fixed = publish(admin, stack, demo_policy(), version)
        assert fixed.status_code == 200
        assert fixed.json()["result"]["changes"] == [
            f"replaces version {version}, which is invalid: 2 teams"
        ]
        assert web.post(session_url(stack, WEB_SCRIPT), json=body).status_code == 200
