"""The Cloudflare emulator, driven over real loopback HTTP with httpx."""

from __future__ import annotations

import base64
import json
import re
import time

import httpx
import pytest
from cloudflare_stack import (
    ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_TOKEN,
    START,
    TOKEN,
    Serve,
    Stack,
    create_session,
    error_codes,
    jwt_claims,
    session_path,
    upload_bucket,
)

from gateway_local.cloudflare_emulator import (
    MAX_FILE_BYTES,
    TOKEN_LIFETIME_S,
    Fault,
    InvalidTokenError,
    decode_jwt,
    encode_jwt,
)
from helpers import HTTP_TIMEOUT, content_hash, manifest_of

SITE = {f"/page-{index}.html": f"<p>page {index}</p>".encode() for index in range(23)}


# ----------------------------------------------------------------------------- sessions


def test_session_groups_missing_hashes_into_buckets_in_manifest_order(cf: Stack) -> None:
    manifest = manifest_of(SITE)
    manifest["/copy-of-page-0.html"] = manifest["/page-0.html"]  # same content, same hash

    response = create_session(cf, manifest)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["errors"] == []
    assert body["messages"] == []
    hashes = [content_hash(data) for data in SITE.values()]
    assert body["result"]["buckets"] == [hashes[0:10], hashes[10:20], hashes[20:23]]
    assert re.fullmatch(r"[0-9a-f]{16}-LOC", response.headers["cf-ray"])


def test_session_jwt_is_a_signed_one_hour_upload_token(cf: Stack) -> None:
    jwt = create_session(cf, manifest_of(SITE)).json()["result"]["jwt"]

    header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
    claims = cf.emulator.verify_token(jwt)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["purpose"] == "upload"
    assert claims["account_id"] == ACCOUNT
    assert claims["script_name"] == "site"
    assert claims["iat"] == int(START)
    assert claims["exp"] == int(START) + 3600
    assert claims["pending_files"] == 23
    assert "wrangler_single_asset_uploads" not in claims
    assert "namespace" not in claims


def test_dispatch_namespace_twin_puts_the_namespace_in_the_token(cf: Stack) -> None:
    path = (
        f"/accounts/{ACCOUNT}/workers/dispatch/namespaces/tenants"
        "/scripts/shop/assets-upload-session"
    )

    response = create_session(cf, manifest_of(SITE), path=path)

    assert response.status_code == 200
    claims = jwt_claims(response.json()["result"]["jwt"])
    assert (claims["namespace"], claims["script_name"]) == ("tenants", "shop")


def test_single_asset_mode_is_announced_in_the_jwt(serve: Serve) -> None:
    cf = serve(single_asset_uploads=True)

    claims = jwt_claims(create_session(cf, manifest_of(SITE)).json()["result"]["jwt"])

    assert claims["wrangler_single_asset_uploads"] is True


# ----------------------------------------------------------------------------- uploads


def test_full_flow_answers_202_per_bucket_then_201_with_a_completion_token(cf: Stack) -> None:
    by_hash = {content_hash(data): data for data in SITE.values()}
    result = create_session(cf, manifest_of(SITE)).json()["result"]
    jwt, buckets = result["jwt"], result["buckets"]

    answers = [
        upload_bucket(cf, jwt, {name: by_hash[name] for name in bucket}) for bucket in buckets
    ]

    assert [answer.status_code for answer in answers] == [202, 202, 201]
    assert [answer.json()["result"]["jwt"] for answer in answers[:2]] == [None, None]
    completion = answers[-1].json()["result"]["jwt"]
    assert cf.emulator.verify_token(completion)["purpose"] == "completion"
    assert cf.emulator.stored_hashes(ACCOUNT) == set(by_hash)
    stored = cf.emulator.stored_asset(ACCOUNT, buckets[0][0])
    assert stored is not None
    assert (stored.content, stored.content_type) == (by_hash[buckets[0][0]], "application/null")


def test_second_session_after_uploads_has_no_buckets_and_a_completion_token(cf: Stack) -> None:
    files = {"/a.txt": b"alpha", "/b.txt": b"beta"}
    jwt = create_session(cf, manifest_of(files)).json()["result"]["jwt"]
    assert upload_bucket(cf, jwt, {content_hash(d): d for d in files.values()}).status_code == 201

    again = create_session(cf, manifest_of(files)).json()["result"]

    assert again["buckets"] == []
    assert cf.emulator.verify_token(again["jwt"])["purpose"] == "completion"


def test_stored_files_are_remembered_per_account(cf: Stack) -> None:
    files = {"/a.txt": b"alpha"}
    jwt = create_session(cf, manifest_of(files)).json()["result"]["jwt"]
    upload_bucket(cf, jwt, {content_hash(b"alpha"): b"alpha"})

    other = create_session(cf, manifest_of(files), token=OTHER_TOKEN, account=OTHER_ACCOUNT)

    assert other.json()["result"]["buckets"] == [[content_hash(b"alpha")]]
    assert cf.emulator.stored_hashes(OTHER_ACCOUNT) == set()


def test_only_new_files_are_asked_for(cf: Stack) -> None:
    old = {"/a.txt": b"alpha"}
    jwt = create_session(cf, manifest_of(old)).json()["result"]["jwt"]
    upload_bucket(cf, jwt, {content_hash(b"alpha"): b"alpha"})

    result = create_session(cf, manifest_of({**old, "/new.txt": b"new"})).json()["result"]

    assert result["buckets"] == [[content_hash(b"new")]]
    assert cf.emulator.verify_token(result["jwt"])["purpose"] == "upload"


def test_single_asset_flow_uploads_raw_bytes_per_hash(serve: Serve) -> None:
    cf = serve(single_asset_uploads=True)
    files = {"/a.css": b"a{}", "/b.bin": bytes(range(256))}
    jwt = create_session(cf, manifest_of(files)).json()["result"]["jwt"]

    answers = [
        cf.client.post(
            f"/accounts/{ACCOUNT}/workers/assets/upload/{content_hash(data)}",
            content=data,
            headers={"Authorization": f"Bearer {jwt}", "Content-Type": "text/css"},
        )
        for data in files.values()
    ]

    assert [answer.status_code for answer in answers] == [202, 201]
    assert cf.emulator.verify_token(answers[1].json()["result"]["jwt"])["purpose"] == "completion"
    stored = cf.emulator.stored_asset(ACCOUNT, content_hash(bytes(range(256))))
    assert stored is not None
    assert stored.content == bytes(range(256))
    assert stored.content_type == "text/css"


def test_session_jwt_expires_after_one_hour_by_the_injected_clock(cf: Stack) -> None:
    files = {"/a.txt": b"alpha", "/b.txt": b"beta"}
    jwt = create_session(cf, manifest_of(files)).json()["result"]["jwt"]

    cf.clock.advance(3599)
    still_valid = upload_bucket(cf, jwt, {content_hash(b"alpha"): b"alpha"})
    cf.clock.advance(1)
    expired = upload_bucket(cf, jwt, {content_hash(b"beta"): b"beta"})

    assert still_valid.status_code == 202
    assert expired.status_code == 401
    assert error_codes(expired) == [10000]
    assert "expired" in expired.json()["errors"][0]["message"]
    assert content_hash(b"beta") not in cf.emulator.stored_hashes(ACCOUNT)


def test_upload_refuses_tokens_that_are_not_this_accounts_upload_jwt(cf: Stack) -> None:
    data = b"alpha"
    jwt = create_session(cf, manifest_of({"/a.txt": data})).json()["result"]["jwt"]
    forged = encode_jwt(jwt_claims(jwt), b"not the emulator's secret")
    completion = create_session(cf, {}).json()["result"]["jwt"]  # empty manifest: complete
    files = {content_hash(data): data}

    refusals = {
        "forged": upload_bucket(cf, forged, files),
        "org token": upload_bucket(cf, TOKEN, files),
        "completion": upload_bucket(cf, completion, files),
        "other account": upload_bucket(cf, jwt, files, account=OTHER_ACCOUNT),
    }

    assert {name: answer.status_code for name, answer in refusals.items()} == dict.fromkeys(
        refusals, 401
    )
    assert all(error_codes(answer) == [10000] for answer in refusals.values())
    assert cf.emulator.stored_hashes(ACCOUNT) == set()


def test_upload_validation(cf: Stack) -> None:
    data = b"alpha"
    jwt = create_session(cf, manifest_of({"/a.txt": data})).json()["result"]["jwt"]
    known = content_hash(data)
    auth = {"Authorization": f"Bearer {jwt}"}

    without_base64 = upload_bucket(cf, jwt, {known: data}, params={})
    foreign = upload_bucket(cf, jwt, {known: data, content_hash(b"stranger"): b"stranger"})
    bad_base64 = cf.client.post(
        f"/accounts/{ACCOUNT}/workers/assets/upload?base64=true",
        files={known: (known, b"!!not base64!!", "text/plain")},
        headers=auth,
    )
    not_multipart = cf.client.post(
        f"/accounts/{ACCOUNT}/workers/assets/upload?base64=true", json={known: "x"}, headers=auth
    )

    assert (without_base64.status_code, error_codes(without_base64)) == (400, [10310])
    assert (foreign.status_code, error_codes(foreign)) == (400, [10312])
    assert foreign.json()["errors"][0]["source"] == {"pointer": f"/{content_hash(b'stranger')}"}
    assert (bad_base64.status_code, error_codes(bad_base64)) == (400, [10313])
    assert (not_multipart.status_code, error_codes(not_multipart)) == (400, [10311])
    # a refused bucket stores nothing, not even its valid parts
    assert cf.emulator.stored_hashes(ACCOUNT) == set()


def test_single_asset_upload_refuses_a_hash_outside_the_session(serve: Serve) -> None:
    cf = serve(single_asset_uploads=True)
    jwt = create_session(cf, manifest_of({"/a.txt": b"alpha"})).json()["result"]["jwt"]

    answer = cf.client.post(
        f"/accounts/{ACCOUNT}/workers/assets/upload/{content_hash(b'other')}",
        content=b"other",
        headers={"Authorization": f"Bearer {jwt}"},
    )

    assert (answer.status_code, error_codes(answer)) == (400, [10312])


# ----------------------------------------------------------------------------- authentication


def test_session_authentication_errors(cf: Stack) -> None:
    manifest = manifest_of({"/a.txt": b"alpha"})

    missing = create_session(cf, manifest, token=None)
    unknown = create_session(cf, manifest, token="nobody-knows-me")
    other_account = create_session(cf, manifest, account=OTHER_ACCOUNT)
    malformed = cf.client.post(
        session_path(), json={"manifest": manifest}, headers={"Authorization": "Basic abc"}
    )

    assert (missing.status_code, error_codes(missing)) == (400, [9106])
    assert missing.json()["errors"][0]["message"] == (
        "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
    )
    assert (unknown.status_code, error_codes(unknown)) == (400, [9109])
    assert (other_account.status_code, error_codes(other_account)) == (403, [10000])
    assert (malformed.status_code, error_codes(malformed)) == (400, [6003])
    assert malformed.json()["errors"][0]["error_chain"][0]["code"] == 6111
    # a refused call opens no session and never echoes the token
    assert all(TOKEN not in answer.text for answer in (missing, unknown, other_account))
    assert cf.emulator.stored_hashes(OTHER_ACCOUNT) == set()


# ----------------------------------------------------------------------------- manifest


@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        pytest.param(b"{not json", 400, 10300, None, id="not-json"),
        pytest.param(b"[1, 2]", 400, 10300, "/", id="not-an-object"),
        pytest.param(b"{}", 400, 10300, "/manifest", id="no-manifest"),
        pytest.param(b'{"manifest": []}', 400, 10300, "/manifest", id="manifest-not-object"),
        pytest.param(
            b'{"manifest": {"index.html": {"hash": "ab", "size": 1}}}',
            400,
            10304,
            "/manifest/index.html",
            id="key-without-slash",
        ),
        pytest.param(
            b'{"manifest": {"/a": "ab"}}', 400, 10305, "/manifest/~1a", id="entry-not-object"
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "' + b"a" * 33 + b'", "size": 1}}}',
            400,
            10302,
            "/manifest/~1a/hash",
            id="hash-too-long",
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "xyz", "size": 1}}}',
            400,
            10302,
            "/manifest/~1a/hash",
            id="hash-not-hex",
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "", "size": 1}}}',
            400,
            10302,
            "/manifest/~1a/hash",
            id="hash-empty",
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "ab", "size": -1}}}',
            400,
            10303,
            "/manifest/~1a/size",
            id="size-negative",
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "ab", "size": 1.5}}}',
            400,
            10303,
            "/manifest/~1a/size",
            id="size-not-integer",
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "ab", "size": true}}}',
            400,
            10303,
            "/manifest/~1a/size",
            id="size-boolean",
        ),
        pytest.param(
            b'{"manifest": {"/a": {"hash": "ab", "size": %d}}}' % (MAX_FILE_BYTES + 1),
            400,
            10303,
            "/manifest/~1a/size",
            id="size-over-25-MiB",
        ),
    ],
)
def test_manifest_validation(
    cf: Stack, body: bytes, status: int, code: int, pointer: str | None
) -> None:
    answer = cf.client.post(
        session_path(),
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )

    assert (answer.status_code, error_codes(answer)) == (status, [code])
    assert answer.json()["errors"][0].get("source", {}).get("pointer") == pointer


def test_largest_allowed_file_size_is_accepted(cf: Stack) -> None:
    answer = create_session(cf, {"/big.bin": {"hash": "ab", "size": MAX_FILE_BYTES}})

    assert answer.status_code == 200
    assert answer.json()["result"]["buckets"] == [["ab"]]


def test_manifest_over_100k_entries_is_too_large(cf: Stack) -> None:
    manifest = {f"/f{index}": {"hash": "ab", "size": 1} for index in range(100_001)}

    answer = create_session(cf, manifest)

    assert (answer.status_code, error_codes(answer)) == (413, [10301])


# ----------------------------------------------------------------------------- rate limit


def remaining(response: httpx.Response) -> tuple[int, int]:
    match = re.fullmatch(r'"default";r=(\d+);t=(\d+)', response.headers["ratelimit"])
    assert match is not None
    return int(match.group(1)), int(match.group(2))


def test_ratelimit_headers_count_down_and_show_the_policy(serve: Serve) -> None:
    cf = serve(rate_limit=3, rate_window_s=60)
    manifest = manifest_of({"/a.txt": b"alpha"})

    first = create_session(cf, manifest)
    cf.clock.advance(10)
    second = create_session(cf, manifest)

    assert remaining(first) == (2, 60)
    assert remaining(second) == (1, 50)
    assert first.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert "retry-after" not in first.headers


def test_rate_limit_blocks_the_token_until_block_s_has_passed(serve: Serve) -> None:
    cf = serve(rate_limit=3, rate_window_s=60, block_s=300)
    manifest = manifest_of({"/a.txt": b"alpha"})

    allowed = [create_session(cf, manifest).status_code for _ in range(3)]
    over = create_session(cf, manifest)
    cf.clock.advance(120)  # the window has rolled over, the block has not
    still_blocked = create_session(cf, manifest)
    other_token = create_session(cf, manifest, token=OTHER_TOKEN, account=OTHER_ACCOUNT)
    cf.clock.advance(180)
    after_block = create_session(cf, manifest)

    assert allowed == [200, 200, 200]
    assert (over.status_code, error_codes(over)) == (429, [971])
    assert over.headers["retry-after"] == "300"
    assert remaining(over) == (0, 300)
    assert still_blocked.status_code == 429
    assert still_blocked.headers["retry-after"] == "180"
    assert other_token.status_code == 200
    assert after_block.status_code == 200
    assert remaining(after_block) == (2, 60)


def test_rate_window_resets_without_a_block(serve: Serve) -> None:
    cf = serve(rate_limit=2, rate_window_s=60)
    manifest = manifest_of({"/a.txt": b"alpha"})
    create_session(cf, manifest)
    create_session(cf, manifest)

    cf.clock.advance(60)
    fresh = create_session(cf, manifest)

    assert fresh.status_code == 200
    assert remaining(fresh) == (1, 60)


def test_the_limit_counts_any_window_not_windows_aligned_on_a_clock(serve: Serve) -> None:
    """Cloudflare counts "1,200 in any 5 minutes": two calls just before a moment and two just
    after it are four in one window, wherever windows would start on a clock."""
    cf = serve(rate_limit=3, rate_window_s=60, block_s=60)
    manifest = manifest_of({"/a.txt": b"alpha"})
    first = create_session(cf, manifest)
    cf.clock.advance(59)
    second = create_session(cf, manifest)
    third = create_session(cf, manifest)  # 3 in the 60 s up to now
    cf.clock.advance(2)  # 61: the first left the window, the two at 59 did not
    fourth = create_session(cf, manifest)
    fifth = create_session(cf, manifest)

    assert [r.status_code for r in (first, second, third, fourth)] == [200, 200, 200, 200]
    assert remaining(second) == (1, 1)  # one left, the next slot frees when the first leaves
    assert remaining(fourth) == (0, 58)
    assert (fifth.status_code, error_codes(fifth)) == (429, [971])
    assert cf.emulator.limited == 1


def test_refused_calls_still_spend_the_budget_and_upload_calls_do_not(serve: Serve) -> None:
    cf = serve(rate_limit=3)
    files = {"/a.txt": b"alpha"}
    wrong_account = create_session(cf, manifest_of(files), account=OTHER_ACCOUNT)
    jwt = create_session(cf, manifest_of(files)).json()["result"]["jwt"]

    upload = upload_bucket(cf, jwt, {content_hash(b"alpha"): b"alpha"})
    last = create_session(cf, manifest_of(files))

    assert remaining(wrong_account)[0] == 2
    assert "ratelimit" not in upload.headers
    assert remaining(last)[0] == 0


# ----------------------------------------------------------------------------- faults


def test_status_fault_answers_an_envelope_with_its_headers_count_times(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(status=503, headers={"Retry-After": "7"}, count=2))
    manifest = manifest_of({"/a.txt": b"alpha"})

    answers = [create_session(cf, manifest) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [503, 503, 200]
    assert error_codes(answers[0]) == [1000]
    assert answers[0].headers["retry-after"] == "7"
    assert "cf-ray" in answers[0].headers


def test_fault_only_hits_paths_with_its_suffix(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(status=500, path_suffix="/workers/assets/upload"))
    data = b"alpha"

    session = create_session(cf, manifest_of({"/a.txt": data}))
    upload = upload_bucket(cf, session.json()["result"]["jwt"], {content_hash(data): data})

    assert (session.status_code, upload.status_code) == (200, 500)


def test_fault_with_a_body_answers_that_body(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(status=502, body=b"<html>Bad gateway</html>"))

    answer = create_session(cf, {})

    assert (answer.status_code, answer.content) == (502, b"<html>Bad gateway</html>")


def test_garbage_fault_answers_200_that_is_not_json(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(garbage=True))

    answer = create_session(cf, {})

    assert answer.status_code == 200
    with pytest.raises(ValueError):  # noqa: PT011 - json's own error type is a ValueError
        json.loads(answer.content)


def test_hold_fault_answers_nothing_until_the_client_gives_up(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(hold=True))

    # The emulator never answers a held request: the short timeout cannot lose a race.
    with pytest.raises(httpx.ReadTimeout):
        cf.client.post(
            session_path(),
            json={"manifest": {}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=0.05,
        )
    (held,) = cf.emulator.wait_for_calls(1)
    after = create_session(cf, {})

    assert held.status is None  # nothing was answered
    assert after.status_code == 200
    assert [call.status for call in cf.emulator.wait_for_calls(2)] == [None, 200]


def test_hold_fault_over_http_control(cf: Stack) -> None:
    added = cf.client.post(f"{cf.server.url}/__emulator/faults", json={"hold": True})

    assert added.status_code == 201
    assert added.json()["result"]["hold"] is True


def test_delay_fault_answers_late_but_answers(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(delay_s=0.2))
    started = time.monotonic()

    # A slow Cloudflare: the client's timeout is far above the delay, so nothing races.
    answer = cf.client.post(
        session_path(),
        json={"manifest": {}},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.2  # a lower bound: a sleep never ends early


def test_reset_fault_drops_the_connection_and_the_server_lives_on(cf: Stack) -> None:
    cf.emulator.inject_fault(Fault(reset=True))

    with pytest.raises(httpx.TransportError) as raised:
        create_session(cf, {})
    after = create_session(cf, {})

    # a reset, not a timeout: the client hears about it at once
    assert not isinstance(raised.value, httpx.TimeoutException)
    assert after.status_code == 200
    assert [call.status for call in cf.emulator.calls] == [None, 200]


def test_invalid_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        Fault(status=500, count=0)
    with pytest.raises(ValueError, match="status"):
        Fault(status=42)


# ----------------------------------------------------------------------------- routing


def test_unknown_route_is_7003(cf: Stack) -> None:
    answer = cf.client.get(f"/accounts/{ACCOUNT}/workers/scriptz")

    assert (answer.status_code, error_codes(answer)) == (404, [7003, 7000])
    assert answer.json()["errors"][0]["message"] == (
        f"Could not route to /accounts/{ACCOUNT}/workers/scriptz, "
        "perhaps your object identifier is invalid?"
    )


def test_wrong_method_is_7001(cf: Stack) -> None:
    answer = cf.client.get(session_path(), headers={"Authorization": f"Bearer {TOKEN}"})

    assert (answer.status_code, error_codes(answer)) == (405, [7001])
    assert "POST" in answer.headers["allow"]


# ----------------------------------------------------------------------------- inspection


def test_calls_are_recorded_with_lowercase_headers_and_body(cf: Stack) -> None:
    create_session(cf, {})
    cf.client.get("/nowhere")

    calls = cf.emulator.calls_to("/assets-upload-session")

    assert len(calls) == 1
    assert calls[0].method == "POST"
    assert calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(calls[0].body) == {"manifest": {}}
    assert calls[0].status == 200
    assert [call.path for call in cf.emulator.calls][-1] == "/client/v4/nowhere"


def test_recorded_calls_are_bounded_to_the_latest(serve: Serve) -> None:
    cap = 10
    cf = serve(max_recorded_calls=cap)

    for n in range(cap + 100):
        cf.client.get(f"/nowhere/{n}")

    calls = cf.emulator.calls
    assert len(calls) == cap  # an hour of load keeps no more than the cap
    assert [call.path for call in calls] == [f"/client/v4/nowhere/{n}" for n in range(100, 110)]
    assert cf.emulator.received == cap + 100
    assert cf.emulator.retained()["calls"] == cap


def test_recorded_call_bodies_are_bounded_in_bytes(serve: Serve) -> None:
    cf = serve(max_recorded_bytes=10_000)

    for _ in range(50):
        cf.client.post("/nowhere", content=b"x" * 1000)

    assert cf.emulator.retained()["call_body_bytes"] <= 10_000
    assert len(cf.emulator.calls) == 10
    assert sum(len(call.body) for call in cf.emulator.calls) == 10_000


def test_sessions_are_forgotten_when_expired_or_past_the_cap(serve: Serve) -> None:
    cf = serve(max_sessions=3)
    data = b"alpha"
    jwts = [
        create_session(cf, manifest_of({f"/{n}.txt": data})).json()["result"]["jwt"]
        for n in range(5)
    ]

    assert cf.emulator.retained()["sessions"] == 3
    oldest = upload_bucket(cf, jwts[0], {content_hash(data): data})
    newest = upload_bucket(cf, jwts[-1], {content_hash(data): data})
    assert (oldest.status_code, newest.status_code) == (401, 201)

    cf.clock.advance(TOKEN_LIFETIME_S)  # every JWT so far has expired
    create_session(cf, manifest_of({"/late.txt": data}))
    assert cf.emulator.retained()["sessions"] == 1


def test_wait_for_calls_times_out_when_nothing_arrives(cf: Stack) -> None:
    with pytest.raises(TimeoutError):
        cf.emulator.wait_for_calls(1, timeout_s=0)


def test_reset_forgets_calls_files_sessions_and_rate_counters(serve: Serve) -> None:
    cf = serve(rate_limit=1)
    data = b"alpha"
    jwt = create_session(cf, manifest_of({"/a.txt": data})).json()["result"]["jwt"]
    upload_bucket(cf, jwt, {content_hash(data): data})
    cf.emulator.inject_fault(Fault(status=500))

    cf.emulator.reset()
    after = create_session(cf, manifest_of({"/a.txt": data}))

    assert after.status_code == 200  # budget back, fault gone
    assert after.json()["result"]["buckets"] == [[content_hash(data)]]  # files forgotten
    assert upload_bucket(cf, jwt, {content_hash(data): data}).status_code == 401  # session gone
    assert len(cf.emulator.calls) == 2


def test_http_control_endpoints(cf: Stack) -> None:
    control = httpx.Client(base_url=f"{cf.server.url}/__emulator", timeout=HTTP_TIMEOUT)
    injected = control.post(
        "/faults", json={"status": 429, "headers": {"Retry-After": "3"}, "path_suffix": "-session"}
    )
    limited = create_session(cf, {})
    create_session(cf, {}, token=None)

    calls = control.get("/calls").json()
    reset = control.post("/reset")
    calls_after_reset = control.get("/calls").json()
    bad_fault = control.post("/faults", json={"status": "soon"})

    assert injected.status_code == 201
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert error_codes(limited) == [971]
    assert [(c["method"], c["status"], c["authorization"]) for c in calls] == [
        ("POST", 429, True),
        ("POST", 400, False),
    ]
    assert calls[0]["path"] == f"/client/v4{session_path()}"
    assert TOKEN not in json.dumps(calls)
    assert reset.status_code == 200
    assert calls_after_reset == []
    assert (bad_fault.status_code, error_codes(bad_fault)) == (400, [10300])


# ----------------------------------------------------------------------------- JWT helpers


def test_jwt_round_trip_and_tampering() -> None:
    token = encode_jwt({"purpose": "upload", "exp": 10}, b"secret")
    header, claims, signature = token.split(".")
    tampered = f"{header}.{claims[:-2]}xx.{signature}"

    assert decode_jwt(token, b"secret") == {"purpose": "upload", "exp": 10}
    with pytest.raises(InvalidTokenError):
        decode_jwt(token, b"other secret")
    with pytest.raises(InvalidTokenError):
        decode_jwt(tampered, b"secret")
    with pytest.raises(InvalidTokenError):
        decode_jwt("not-a-jwt", b"secret")
