"""The emulator's Workers deploy flow (scripts, versions, deployments, settings, subdomains), driven
over real loopback HTTP with httpx, as wrangler drives it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cloudflare_stack import (
    ACCOUNT,
    OTHER_ACCOUNT,
    TOKEN,
    create_session,
    error_codes,
    upload_bucket,
)

from gateway_local.cloudflare_emulator import TOKEN_LIFETIME_S, Fault, encode_jwt
from gateway_local.emulator_workers import ScriptKey
from helpers import content_hash, manifest_of

if TYPE_CHECKING:
    from cloudflare_stack import Serve, Stack

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCRIPT = f"/accounts/{ACCOUNT}/workers/scripts/site"
DISPATCH = f"/accounts/{ACCOUNT}/workers/dispatch/namespaces/tenants/scripts/site"
MODULE = b"export default { fetch() { return new Response('hi'); } };"
FILES = {f"/page-{index}.html": f"<p>{index}</p>".encode() for index in range(3)}
MAIN = {"main_module": "index.js"}


def metadata(assets_jwt: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "main_module": "index.js",
        "compatibility_date": "2025-01-01",
        "bindings": [{"name": "ASSETS", "type": "assets"}] if assets_jwt else [],
    }
    if assets_jwt is not None:
        body["assets"] = {"jwt": assets_jwt, "config": {"html_handling": "auto-trailing-slash"}}
    body.update(fields)
    return body


def upload(
    cf: Stack,
    meta: dict[str, Any] | None,
    *,
    path: str = SCRIPT,
    method: str = "PUT",
    modules: dict[str, bytes] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """A script upload as wrangler sends it: a `metadata` part and one part per module."""
    parts: list[tuple[str, tuple[str | None, bytes, str]]] = []
    if meta is not None:
        parts.append(("metadata", (None, json.dumps(meta).encode(), "application/json")))
    for name, content in (modules if modules is not None else {"index.js": MODULE}).items():
        parts.append((name, (name, content, "application/javascript+module")))
    return cf.client.request(
        method,
        path,
        files=parts,
        headers={**AUTH, "User-Agent": "wrangler/4.164.0"},
        params=params if params is not None else {"bindings_inherit": "strict"},
    )


def completion_jwt(
    cf: Stack, files: dict[str, bytes] = FILES, script: str = "site", script_path: str = ""
) -> str:
    """Phases 1 and 2: a session for `files`, every bucket uploaded, the completion JWT."""
    script_path = script_path or f"/accounts/{ACCOUNT}/workers/scripts/{script}"
    path = f"{script_path}/assets-upload-session"
    session = create_session(cf, manifest_of(files), path=path).json()["result"]
    by_hash = {content_hash(data): data for data in files.values()}
    jwt: str = session["jwt"]
    for bucket in session["buckets"]:
        jwt = (
            upload_bucket(cf, session["jwt"], {h: by_hash[h] for h in bucket}).json()["result"][
                "jwt"
            ]
            or jwt
        )
    return jwt


def deploy_new(cf: Stack) -> dict[str, Any]:
    answer = upload(cf, metadata(completion_jwt(cf)))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


def get(cf: Stack, path: str, **params: str) -> httpx.Response:
    return cf.client.get(path, headers=AUTH, params=params)


def result_of(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert body["errors"] == []
    return body["result"]


def error(answer: httpx.Response) -> tuple[int, int, str | None]:
    """(status, first code, its JSON pointer) of a refusal."""
    codes = error_codes(answer)
    pointer = answer.json()["errors"][0].get("source", {}).get("pointer")
    return answer.status_code, codes[0], pointer


# ----------------------------------------------------------------------------- unknown Workers


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", "/deployments"),
        ("GET", "/settings"),
        ("GET", "/versions"),
        ("GET", "/versions/0f6b5b0e-0000-4000-8000-000000000000"),
        ("GET", "/subdomain"),
        ("POST", "/subdomain"),
        ("POST", "/deployments"),
        ("PATCH", "/script-settings"),
    ],
)
def test_every_route_of_an_unknown_worker_is_cloudflares_10007(
    cf: Stack, method: str, suffix: str
) -> None:
    answer = cf.client.request(method, f"{SCRIPT}{suffix}", headers=AUTH, json={})
    assert error(answer)[:2] == (404, 10007)
    assert answer.json()["errors"][0]["message"] == "This Worker does not exist on your account."


def test_unknown_worker_reads_as_10007_where_wrangler_asks_first(cf: Stack) -> None:
    services = get(cf, f"/accounts/{ACCOUNT}/workers/services/site")
    workers = get(cf, f"/accounts/{ACCOUNT}/workers/workers/site")
    versions = upload(cf, metadata(), path=f"{SCRIPT}/versions", method="POST")

    assert error(services)[:2] == (404, 10007)
    assert error(workers)[:2] == (404, 10007)
    assert error(versions)[:2] == (404, 10007)  # a version needs an existing Worker
    assert error(get(cf, DISPATCH))[:2] == (404, 10092)  # wrangler's code in a namespace


# ----------------------------------------------------------------------------- PUT: a new Worker


def test_put_creates_the_worker_a_version_deployed_at_100_and_binds_the_manifest(
    cf: Stack,
) -> None:
    result = deploy_new(cf)

    script = cf.emulator.workers.script(ScriptKey(ACCOUNT, "site"))
    assert script is not None
    (version,) = script.versions
    assert result["deployment_id"] == version.id  # wrangler reads the version id from here
    assert version.assets == {path: (content_hash(data), len(data)) for path, data in FILES.items()}
    assert version.assets_config == {"html_handling": "auto-trailing-slash"}
    assert [(m.name, m.size) for m in version.modules] == [("index.js", len(MODULE))]
    assert version.source == "wrangler"
    service = result_of(get(cf, f"/accounts/{ACCOUNT}/workers/services/site"))
    assert service["default_environment"]["script"]["has_assets"] is True
    assert service["default_environment"]["script"]["tag"] == script.tag
    (deployment,) = result_of(get(cf, f"{SCRIPT}/deployments"))["deployments"]
    assert deployment["strategy"] == "percentage"
    assert deployment["versions"] == [{"version_id": version.id, "percentage": 100.0}]


def test_completion_jwt_is_redeemable_once(cf: Stack) -> None:
    jwt = completion_jwt(cf)
    assert upload(cf, metadata(jwt)).status_code == 200

    again = upload(cf, metadata(jwt))

    assert error(again)[:2] == (400, 10333)
    script = cf.emulator.workers.script(ScriptKey(ACCOUNT, "site"))
    assert script is not None
    assert len(script.versions) == 1


def test_completion_jwt_is_bound_to_account_script_and_kind(cf: Stack) -> None:
    for_other_script = completion_jwt(cf, script="other")
    session = create_session(cf, manifest_of({"/new.txt": b"new"})).json()["result"]
    upload_token = session["jwt"]  # a session JWT, not yet a completion JWT
    forged = encode_jwt({"purpose": "completion", "exp": 2**40}, b"not the emulator's secret")

    for jwt in (for_other_script, upload_token, forged):
        assert error(upload(cf, metadata(jwt)))[:2] == (401, 10000)
    assert cf.emulator.workers.script(ScriptKey(ACCOUNT, "site")) is None
    # A refusal never spends it: the right script redeems it still.
    other = f"/accounts/{ACCOUNT}/workers/scripts/other"
    assert upload(cf, metadata(for_other_script), path=other).status_code == 200


def test_completion_jwt_lives_one_hour(cf: Stack) -> None:
    jwt = completion_jwt(cf)
    cf.clock.advance(TOKEN_LIFETIME_S)

    assert error(upload(cf, metadata(jwt)))[:2] == (401, 10000)


def test_a_refused_upload_does_not_spend_the_completion_jwt(cf: Stack) -> None:
    jwt = completion_jwt(cf)
    bad = upload(cf, metadata(jwt, compatibility_date="2025-13-01"))

    assert error(bad)[:2] == (400, 10021)
    assert upload(cf, metadata(jwt)).status_code == 200


def test_an_upload_whose_files_are_all_stored_redeems_the_session_jwt_itself(cf: Stack) -> None:
    completion_jwt(cf)  # the files are now stored
    again = create_session(cf, manifest_of(FILES)).json()["result"]
    assert again["buckets"] == []

    assert upload(cf, metadata(again["jwt"])).status_code == 200


# ----------------------------------------------------------------------------- metadata validation


@pytest.mark.parametrize(
    ("meta", "pointer"),
    [
        (None, None),  # no metadata part
        ({"compatibility_date": "2025-01-01"}, "/main_module"),
        ({"main_module": "missing.js"}, None),
        (
            {**MAIN, "compatibility_date": "2025-1-1"},
            "/compatibility_date",
        ),
        (
            {**MAIN, "compatibility_date": "2025-02-30"},
            "/compatibility_date",
        ),
        (
            {**MAIN, "compatibility_date": "2099-01-01"},
            "/compatibility_date",
        ),
        ({**MAIN, "compatibility_flags": "nodejs_compat"}, "/compatibility_flags"),
        ({**MAIN, "bindings": {"A": 1}}, "/bindings"),
        (
            {**MAIN, "bindings": [{"type": "plain_text"}]},
            "/bindings/0/name",
        ),
        (
            {**MAIN, "bindings": [{"name": "A", "type": "nonsense"}]},
            "/bindings/0/type",
        ),
        (
            {**MAIN, "bindings": [{"name": "KV", "type": "kv_namespace"}]},
            "/bindings/0/namespace_id",
        ),
        (
            {
                "main_module": "index.js",
                "bindings": [{"name": "T", "type": "plain_text", "text": 1}],
            },
            "/bindings/0/text",
        ),
        (
            {
                "main_module": "index.js",
                "bindings": [
                    {"name": "A", "type": "plain_text", "text": "x"},
                    {"name": "A", "type": "json", "json": {}},
                ],
            },
            "/bindings/1/name",
        ),
        (
            {**MAIN, "bindings": [{"name": "ASSETS", "type": "assets"}]},
            "/assets/jwt",
        ),
        ({**MAIN, "assets": {"config": {}}}, "/assets/jwt"),
        ({**MAIN, "keep_bindings": "secret_text"}, "/keep_bindings"),
    ],
)
def test_metadata_is_validated_as_cloudflare_does(
    cf: Stack, meta: dict[str, Any] | None, pointer: str | None
) -> None:
    answer = upload(cf, meta)

    assert error(answer) == (400, 10021, pointer)
    assert cf.emulator.workers.script(ScriptKey(ACCOUNT, "site")) is None


def test_an_assets_only_worker_has_no_module_part(cf: Stack) -> None:
    """wrangler's upload without `main`: metadata `{assets, compatibility_date, ...}` alone."""
    only_assets = {
        "assets": {"jwt": completion_jwt(cf), "config": {}},
        "compatibility_date": "2025-01-01",
    }

    with_a_stray_part = upload(cf, only_assets)
    created = upload(cf, only_assets, modules={})

    assert error(with_a_stray_part) == (400, 10021, "/main_module")
    assert created.status_code == 200, created.text
    script = cf.emulator.workers.script(ScriptKey(ACCOUNT, "site"))
    assert script is not None
    (version,) = script.versions
    assert (version.main_module, version.modules) == (None, ())
    assert version.assets is not None
    assert set(version.assets) == set(FILES)


def test_metadata_part_that_is_not_json_and_a_body_that_is_not_multipart(cf: Stack) -> None:
    not_json = cf.client.put(
        SCRIPT, headers=AUTH, files={"metadata": (None, b"{nope"), "index.js": ("index.js", MODULE)}
    )
    not_multipart = cf.client.put(SCRIPT, headers=AUTH, json=metadata())

    assert error(not_json)[:2] == (400, 10021)
    assert error(not_multipart)[:2] == (400, 10311)


def test_every_binding_shape_is_accepted_and_secrets_are_never_shown_back(cf: Stack) -> None:
    bindings: list[dict[str, Any]] = [
        {"name": "TEXT", "type": "plain_text", "text": "hello"},
        {"name": "SECRET", "type": "secret_text", "text": "s3cr3t-value"},
        {"name": "CONF", "type": "json", "json": [1, 2]},
        {"name": "KV", "type": "kv_namespace", "namespace_id": "abc"},
        {"name": "DB", "type": "d1", "id": "db-id"},
        {"name": "META", "type": "version_metadata"},
    ]
    assert upload(cf, metadata(bindings=bindings)).status_code == 200

    settings = get(cf, f"{SCRIPT}/settings")

    assert [b["name"] for b in result_of(settings)["bindings"]] == [b["name"] for b in bindings]
    assert "s3cr3t-value" not in settings.text


# ----------------------------------------------------------------------------- versions


def test_versions_upload_creates_a_version_and_no_deployment(cf: Stack) -> None:
    first = deploy_new(cf)
    jwt = completion_jwt(cf, {**FILES, "/extra.css": b"a{}"})
    meta = metadata(
        jwt, annotations={"workers/message": "try it", "workers/tag": "v2"}, keep_bindings=[]
    )

    answer = upload(cf, meta, path=f"{SCRIPT}/versions", method="POST")

    version = result_of(answer)
    assert version["number"] == 2
    assert version["annotations"]["workers/message"] == "try it"
    assert version["annotations"]["workers/tag"] == "v2"
    assert version["resources"]["script_runtime"]["compatibility_date"] == "2025-01-01"
    deployments = result_of(get(cf, f"{SCRIPT}/deployments"))["deployments"]
    assert [d["versions"][0]["version_id"] for d in deployments] == [first["deployment_id"]]
    listed = result_of(get(cf, f"{SCRIPT}/versions", deployable="true"))["items"]
    assert [v["id"] for v in listed] == [version["id"], first["deployment_id"]]  # newest first
    assert result_of(get(cf, f"{SCRIPT}/versions/{version['id']}"))["id"] == version["id"]
    script = cf.emulator.workers.script(ScriptKey(ACCOUNT, "site"))
    assert script is not None
    assert script.versions[-1].assets is not None
    assert "/extra.css" in script.versions[-1].assets


def test_unknown_version_is_refused(cf: Stack) -> None:
    deploy_new(cf)

    assert error(get(cf, f"{SCRIPT}/versions/0f6b5b0e-0000-4000-8000-000000000000"))[:2] == (
        404,
        10330,
    )


def test_keep_bindings_and_strict_inherit_take_the_previous_versions_bindings(cf: Stack) -> None:
    secret = {"name": "SECRET", "type": "secret_text", "text": "x"}
    text = {"name": "TEXT", "type": "plain_text", "text": "old"}
    assert upload(cf, metadata(bindings=[secret, text])).status_code == 200
    versions = f"{SCRIPT}/versions"

    kept = upload(
        cf,
        metadata(bindings=[{"name": "TEXT", "type": "inherit"}], keep_bindings=["secret_text"]),
        path=versions,
        method="POST",
    )
    missing = upload(
        cf, metadata(bindings=[{"name": "GONE", "type": "inherit"}]), path=versions, method="POST"
    )

    names = {b["name"]: b["type"] for b in result_of(kept)["resources"]["bindings"]}
    assert names == {"TEXT": "plain_text", "SECRET": "secret_text"}
    assert error(missing)[:2] == (400, 10021)


# ----------------------------------------------------------------------------- deployments


def versions_of(cf: Stack, count: int) -> list[str]:
    ids = [deploy_new(cf)["deployment_id"]]
    for _ in range(count - 1):
        answer = upload(cf, metadata(), path=f"{SCRIPT}/versions", method="POST")
        ids.append(result_of(answer)["id"])
    return ids


def test_a_split_deployment_routes_traffic_to_two_versions(cf: Stack) -> None:
    old, new = versions_of(cf, 2)
    body = {
        "strategy": "percentage",
        "versions": [{"version_id": new, "percentage": 10}, {"version_id": old, "percentage": 90}],
        "annotations": {"workers/message": "canary"},
    }

    deployment = result_of(cf.client.post(f"{SCRIPT}/deployments", headers=AUTH, json=body))

    assert deployment["annotations"]["workers/message"] == "canary"
    latest = result_of(get(cf, f"{SCRIPT}/deployments"))["deployments"][0]
    assert latest["id"] == deployment["id"]
    assert latest["versions"] == [
        {"version_id": new, "percentage": 10.0},
        {"version_id": old, "percentage": 90.0},
    ]


@pytest.mark.parametrize(
    ("split", "pointer"),
    [
        ([], "/versions"),
        ([(0, 60), (1, 30)], "/versions"),  # 90, not 100
        ([(0, 50), (0, 50)], "/versions"),  # the same version twice
        ([(0, 50), (1, 25), (2, 25)], "/versions"),  # more than two
        ([(0, 101)], "/versions/0/percentage"),
        ([(0, True)], "/versions/0/percentage"),
        ([(None, 100)], "/versions/0/version_id"),
    ],
)
def test_deployment_percentages_and_versions_are_checked(
    cf: Stack, split: list[tuple[int | None, Any]], pointer: str
) -> None:
    ids = versions_of(cf, 3)
    body = {
        "strategy": "percentage",
        "versions": [
            {"version_id": None if i is None else ids[i], "percentage": pct} for i, pct in split
        ],
    }

    answer = cf.client.post(f"{SCRIPT}/deployments", headers=AUTH, json=body)

    assert error(answer) == (400, 10331, pointer)


def test_deployment_of_an_unknown_version_or_strategy_is_refused(cf: Stack) -> None:
    (known,) = versions_of(cf, 1)
    unknown = {"strategy": "percentage", "versions": [{"version_id": "f" * 32, "percentage": 100}]}
    immediate = {"strategy": "immediate", "versions": [{"version_id": known, "percentage": 100}]}

    assert error(cf.client.post(f"{SCRIPT}/deployments", headers=AUTH, json=unknown))[:2] == (
        404,
        10330,
    )
    assert error(cf.client.post(f"{SCRIPT}/deployments", headers=AUTH, json=immediate)) == (
        400,
        10331,
        "/strategy",
    )
    not_json = cf.client.post(f"{SCRIPT}/deployments", headers=AUTH, content=b"{")
    assert error(not_json)[:2] == (400, 10300)


# ----------------------------------------------------------------------------- settings, subdomain


def test_script_settings_patch_merges_and_settings_show_it(cf: Stack) -> None:
    deploy_new(cf)
    patch = {"observability": {"enabled": False}, "tags": ["team-a"], "logpush": True}

    patched = result_of(cf.client.patch(f"{SCRIPT}/script-settings", headers=AUTH, json=patch))
    settings = result_of(get(cf, f"{SCRIPT}/settings"))

    assert patched["tags"] == ["team-a"]
    assert patched["logpush"] is True
    assert settings["observability"] == {"enabled": False}
    assert settings["compatibility_date"] == "2025-01-01"
    assert settings["bindings"] == [{"name": "ASSETS", "type": "assets"}]
    bad = cf.client.patch(f"{SCRIPT}/script-settings", headers=AUTH, json={"logpush": "yes"})
    assert error(bad) == (400, 10332, "/logpush")


def test_workers_dev_subdomain_flags(cf: Stack) -> None:
    deploy_new(cf)
    before = result_of(get(cf, f"/accounts/{ACCOUNT}/workers/workers/site"))["subdomain"]

    enabled = cf.client.post(f"{SCRIPT}/subdomain", headers=AUTH, json={"enabled": True})
    worker = result_of(get(cf, f"/accounts/{ACCOUNT}/workers/workers/site"))

    assert before == {"enabled": False, "previews_enabled": False}
    assert result_of(enabled) == {"enabled": True, "previews_enabled": False}
    assert worker["subdomain"]["url"] == "https://site.emulator.workers.dev"
    assert result_of(get(cf, f"{SCRIPT}/subdomain")) == {"enabled": True, "previews_enabled": False}
    assert result_of(get(cf, f"/accounts/{ACCOUNT}/workers/subdomain")) == {"subdomain": "emulator"}
    bad = cf.client.post(f"{SCRIPT}/subdomain", headers=AUTH, json={"enabled": "yes"})
    assert error(bad)[:2] == (400, 10332)


def test_an_account_without_a_workers_dev_subdomain(serve: Serve) -> None:
    cf = serve(workers_subdomain=None)

    assert error(get(cf, f"/accounts/{ACCOUNT}/workers/subdomain"))[:2] == (404, 10007)


# ----------------------------------------------------------------------------- tokens


def test_token_verify_tells_a_live_token_from_a_bad_one(cf: Stack) -> None:
    live = cf.client.get("/user/tokens/verify", headers=AUTH)
    bad = cf.client.get("/user/tokens/verify", headers={"Authorization": "Bearer nope"})

    assert result_of(live)["status"] == "active"
    assert TOKEN not in live.text
    assert error(bad)[:2] == (401, 1000)


def test_user_accounts_and_memberships_name_the_tokens_accounts(serve: Serve) -> None:
    cf = serve(tokens={TOKEN: [OTHER_ACCOUNT, ACCOUNT]})

    user = result_of(cf.client.get("/user", headers=AUTH))
    accounts = result_of(cf.client.get("/accounts", headers=AUTH, params={"page": "1"}))
    memberships = result_of(cf.client.get("/memberships", headers=AUTH))
    unknown = cf.client.get("/user", headers={"Authorization": "Bearer nope"})

    assert user["email"] == "emulator@example.com"
    assert [account["id"] for account in accounts] == [ACCOUNT, OTHER_ACCOUNT]
    assert [m["account"]["id"] for m in memberships] == [ACCOUNT, OTHER_ACCOUNT]
    assert error(unknown)[:2] == (400, 9109)


def test_deploy_routes_check_the_token_its_account_and_its_budget(serve: Serve) -> None:
    cf = serve(rate_limit=2)
    other_account = f"/accounts/{OTHER_ACCOUNT}/workers/services/site"

    missing = cf.client.get(f"/accounts/{ACCOUNT}/workers/services/site")
    foreign = get(cf, other_account)
    counted = get(cf, f"/accounts/{ACCOUNT}/workers/services/site")
    limited = get(cf, f"/accounts/{ACCOUNT}/workers/services/site")

    assert error(missing)[:2] == (400, 9106)
    assert error(foreign)[:2] == (403, 10000)
    assert counted.headers["ratelimit"].startswith('"default";r=0;')
    assert error(limited)[:2] == (429, 971)
    assert "retry-after" in limited.headers


# ----------------------------------------------------------------------------- dispatch namespaces


def test_dispatch_namespace_twins_keep_their_scripts_apart(cf: Stack) -> None:
    jwt = completion_jwt(cf, {"/tenant.html": b"tenant"}, script_path=DISPATCH)
    account_level = completion_jwt(cf)  # a JWT for the account's own script "site"

    assert error(upload(cf, metadata(account_level), path=DISPATCH))[:2] == (401, 10000)
    assert result_of(upload(cf, metadata(jwt), path=DISPATCH))["deployment_id"]

    script = result_of(get(cf, DISPATCH))
    assert script["dispatch_namespace"] == "tenants"
    assert script["script"]["has_assets"] is True
    assert result_of(get(cf, f"{DISPATCH}/settings"))["bindings"][0]["type"] == "assets"
    assert error(get(cf, f"/accounts/{ACCOUNT}/workers/services/site"))[:2] == (404, 10007)


# ----------------------------------------------------------------------------- faults and reset

ROUTES = [
    ("GET", f"/accounts/{ACCOUNT}/workers/services/site"),
    ("GET", f"/accounts/{ACCOUNT}/workers/workers/site"),
    ("GET", f"/accounts/{ACCOUNT}/workers/subdomain"),
    ("GET", f"{SCRIPT}/deployments"),
    ("POST", f"{SCRIPT}/deployments"),
    ("GET", f"{SCRIPT}/settings"),
    ("PATCH", f"{SCRIPT}/script-settings"),
    ("PUT", SCRIPT),
    ("GET", f"{SCRIPT}/versions"),
    ("POST", f"{SCRIPT}/versions"),
    ("GET", f"{SCRIPT}/versions/abc"),
    ("GET", f"{SCRIPT}/subdomain"),
    ("POST", f"{SCRIPT}/subdomain"),
    ("GET", DISPATCH),
    ("PUT", DISPATCH),
    ("GET", f"{DISPATCH}/settings"),
    ("GET", "/user/tokens/verify"),
    ("GET", "/user"),
    ("GET", "/accounts"),
    ("GET", "/memberships"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_faults_hit_every_deploy_route(cf: Stack, method: str, path: str) -> None:
    cf.emulator.inject_fault(Fault(status=503, headers={"Retry-After": "3"}, path_suffix=path))
    cf.emulator.inject_fault(Fault(garbage=True, path_suffix=path))

    faulted = cf.client.request(method, path, headers=AUTH, json={})
    garbage = cf.client.request(method, path, headers=AUTH, json={})
    real = cf.client.request(method, path, headers=AUTH, json={})

    assert error(faulted)[:2] == (503, 1000)
    assert faulted.headers["retry-after"] == "3"
    assert garbage.status_code == 200
    assert not garbage.content.startswith(b'{"success": true}')
    assert real.status_code != 503
    assert real.json()["success"] in (True, False)
    assert [call.status for call in cf.emulator.calls] == [503, 200, real.status_code]


def test_reset_forgets_workers_and_redeemed_jwts(cf: Stack) -> None:
    deploy_new(cf)

    cf.emulator.reset()

    assert cf.emulator.workers.script(ScriptKey(ACCOUNT, "site")) is None
    assert error(get(cf, f"/accounts/{ACCOUNT}/workers/services/site"))[:2] == (404, 10007)


def test_worker_state_is_per_account(serve: Serve) -> None:
    cf = serve(tokens={TOKEN: [ACCOUNT, OTHER_ACCOUNT]})
    deploy_new(cf)

    elsewhere = get(cf, f"/accounts/{OTHER_ACCOUNT}/workers/services/site")

    assert error(elsewhere)[:2] == (404, 10007)
