"""Generated requests (hypothesis) against the real handler: over HTTP through the local API front
(SigV4-signed), and in process with API Gateway events built from the sample event.

Every answer, whatever was sent, must be: below 500; Cloudflare's v4 envelope (`success` bool,
`errors` list, `result`); a refusal with a documented code, or Cloudflare's own answer passed
through (the only one these requests can provoke is 10000, for the account the token cannot
reach); forwarded to Cloudflare exactly when the answer is Cloudflare's (it carries `cf-ray`);
and free of the org's token, as is every log record written meanwhile (all loggers at DEBUG) and
everything printed. Where the input says what the answer must be (a manifest with one known
defect, a caller with no team, a valid manifest), the status, code and pointer are checked too.

At least 2,000 requests per run: 600 + 500 over HTTP, 600 + 350 in process.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets_gateway.domain.manifest import MAX_FILE_BYTES
from assets_gateway_common.json_pointer import json_pointer
from gateway_local.api_front import LocalIdentity, lambda_context
from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import (
    DEMO_ACCOUNT_ID,
    DOCS_CI,
    OUTSIDER,
    UNLINKED_ACCOUNT_ID,
    WEB_DEPLOYER,
    WEB_SCRIPT,
    demo_policy,
)
from gateway_local.stack import LocalStack
from helpers import every_log_record, session_url, signed_client

# Our own 4xx codes (README, "Error codes") and API Gateway's 10000 (GatewayResponses).
DOCUMENTED_CODES = frozenset({10000, 7003, 19000, 19001, 19002, 19010, 19011, 19020, 19021, 19040})
# Cloudflare's own refusals these requests can provoke: the account the token cannot reach.
CLOUDFLARE_CODES = frozenset({10000})
STATUSES = frozenset({200, 400, 403, 404, 413, 429})
ACCEPTED_CONTENT_TYPES = (None, "application/json", "application/json; charset=utf-8")
SAMPLE_EVENT: dict[str, Any] = json.loads(
    (REPO_ROOT / "events" / "session_api" / "create_session.json").read_text()
)
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


def many(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=HEALTH)


# ------------------------------------------------------------------------------ the checks


class _LeakWatch(logging.Handler):
    """Formats every record as it would be shipped and looks for the token in it (records are
    not kept: thousands of requests at DEBUG would be hundreds of megabytes)."""

    def __init__(self, token: str) -> None:
        super().__init__(level=logging.DEBUG)
        self.token = token
        self.records = 0
        self.audits = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.records += 1
        self.audits += '"audit"' in line
        if self.token in line:
            self.leaks.append(line[:500])


@pytest.fixture
def leak_watch(stack: LocalStack) -> Iterator[_LeakWatch]:
    """Every logger at DEBUG, every record formatted with the gateway's JSON formatter and
    searched for the token (the approach of test_token_never_leaks.py)."""
    watch = _LeakWatch(stack.cloudflare_token)
    with every_log_record(watch):
        yield watch


@pytest.fixture
def roomy_quotas(stack: LocalStack) -> None:
    """The demo policy with quotas no run can spend, so valid requests get sessions rather than
    429 (conftest publishes the demo policy again after the test)."""
    policy = demo_policy()
    for team in policy["teams"].values():
        team["quotas"] = {
            "sessions_per_minute": 1_000_000,
            "sessions_per_day": 10_000_000,
            "entries_per_day": 10**12,
            "bytes_per_day": 10**18,
        }
    stack.publish_policy(policy)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Expected:
    status: int
    code: int | None = None
    pointer: str | None = None


class Observer:
    """Checks every answer the same way and keeps the tally; at the end, that the run was
    complete and nothing leaked."""

    def __init__(
        self, stack: LocalStack, watch: _LeakWatch, capfd: pytest.CaptureFixture[str]
    ) -> None:
        self.stack = stack
        self.token = stack.cloudflare_token
        self.tally: Counter[tuple[int, int | None]] = Counter()
        self.watch = watch
        self.capfd = capfd

    def forwarded(self) -> int:
        return len(self.stack.emulator.calls_to("/assets-upload-session"))

    def check(
        self, answer: Answer, *, forwarded_before: int, dry_run: bool = False
    ) -> dict[str, Any]:
        assert answer.status < 500, answer.body[:500]
        assert answer.status in STATUSES, answer.status
        for name, value in answer.headers.items():
            assert self.token not in name
            assert self.token not in value
        assert self.token.encode() not in answer.body
        assert b"Traceback" not in answer.body
        envelope = json.loads(answer.body.decode("utf-8"))
        assert isinstance(envelope, dict)
        assert isinstance(envelope["success"], bool)
        assert isinstance(envelope["errors"], list)
        assert "result" in envelope
        assert isinstance(envelope.get("messages", []), list)
        from_cloudflare = "cf-ray" in answer.headers
        assert self.forwarded() - forwarded_before == (1 if from_cloudflare else 0)
        if envelope["success"]:
            assert answer.status == 200
            assert envelope["errors"] == []
            result = envelope["result"]
            assert isinstance(result, dict)
            if dry_run:
                assert result["dry_run"] is True
                assert result["allowed"] is (not result["reasons"])
                assert all(reason["code"] in DOCUMENTED_CODES for reason in result["reasons"])
                assert not from_cloudflare
            else:
                assert from_cloudflare
                assert isinstance(result["jwt"], str)
                assert all(isinstance(bucket, list) for bucket in result["buckets"])
            self.tally[(200, None)] += 1
        else:
            assert 400 <= answer.status < 500
            assert envelope["result"] is None
            assert envelope["errors"], envelope
            code = envelope["errors"][0]["code"]
            if from_cloudflare:
                assert code in CLOUDFLARE_CODES, envelope
            else:
                assert code in DOCUMENTED_CODES, envelope
            self.tally[(answer.status, code)] += 1
        return envelope

    def check_expected(
        self, envelope: dict[str, Any], answer: Answer, expected: Expected, *, dry_run: bool
    ) -> None:
        """A refusal as the answer (or, in a dry run, as the decision's first reason)."""
        if dry_run:
            assert answer.status == 200
            result = envelope["result"]
            if expected.code is None:
                assert result["allowed"] is True, result["reasons"]
                return
            assert result["allowed"] is False
            reason = result["reasons"][0]
            assert reason["code"] == expected.code, result["reasons"]
            if expected.pointer is not None:
                assert reason.get("pointer") == expected.pointer
            return
        assert answer.status == expected.status, envelope
        if expected.code is not None:
            error = envelope["errors"][0]
            assert error["code"] == expected.code, envelope
            if expected.pointer is not None:
                assert error.get("source", {}).get("pointer") == expected.pointer, envelope

    def check_forwarded_body(self, manifest: Mapping[str, Any]) -> None:
        """A session was created: Cloudflare got exactly the manifest, nothing added or lost."""
        last = self.stack.emulator.calls_to("/assets-upload-session")[-1]
        assert json.loads(last.body) == {"manifest": manifest}

    def run(self, name: str, prop: Callable[[], None], *, examples: int) -> None:
        """Run the property (a hypothesis test) on `examples` generated requests, then check
        the run as a whole."""
        many(examples)(prop)()
        self.finish(name, examples=examples)

    def finish(self, run: str, *, examples: int) -> None:
        """At least `examples` requests were answered, and the token is in nothing printed and
        in no log record written meanwhile."""
        sent = sum(self.tally.values())
        assert sent >= examples
        captured = self.capfd.readouterr()
        assert self.token not in captured.out
        assert self.token not in captured.err
        assert self.watch.leaks == []
        # The watch really saw the run: an audit record for each request the session route
        # handled (a path that matches no route is answered 7003 by the resolver, before the
        # pipeline).
        handled = sent - self.tally[(404, 7003)]
        assert self.watch.audits >= handled, (self.watch.audits, handled)
        print(f"{run}: {sent} requests, {dict(self.tally)}")


@pytest.fixture
def observer(
    stack: LocalStack,
    roomy_quotas: None,
    leak_watch: _LeakWatch,
    capfd: pytest.CaptureFixture[str],
) -> Observer:
    """Every generated run: valid requests get sessions (roomy quotas), every log record is
    watched for the token."""
    return Observer(stack, leak_watch, capfd)


def http_answer(response: httpx.Response) -> Answer:
    return Answer(
        response.status_code,
        {name.lower(): value for name, value in response.headers.items()},
        response.content,
    )


def handler_answer(result: dict[str, Any]) -> Answer:
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ", ".join(str(value) for value in values)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return Answer(int(result["statusCode"]), headers, raw)


# ------------------------------------------------------------------------------ strategies

HEX = "0123456789abcdef"
_VALID_HASH = re.compile(r"[0-9a-f]{1,32}")

segments = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/"), min_size=1, max_size=12
).filter(lambda segment: segment not in (".", ".."))
valid_paths = st.lists(segments, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
valid_hashes = st.text(HEX, min_size=1, max_size=32)
valid_sizes = st.one_of(st.integers(0, MAX_FILE_BYTES), st.sampled_from([0, MAX_FILE_BYTES]))
valid_entries = st.fixed_dictionaries({"hash": valid_hashes, "size": valid_sizes})
valid_manifests = st.dictionaries(valid_paths, valid_entries, max_size=6)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),  # json.dumps writes NaN: not JSON
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _insert(text: str, extra: str, at: int) -> str:
    """`extra` inside `text` after its leading '/'."""
    position = 1 + at % len(text)
    return text[:position] + extra + text[position:]


control_characters = st.sampled_from([chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))])
lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
bad_paths = st.one_of(
    st.text(max_size=10).filter(lambda path: not path.startswith("/")),
    valid_paths.map(lambda path: path + "/"),
    st.tuples(valid_paths, st.sampled_from(["/", "/.", "/.."]), valid_paths).map(
        lambda parts: parts[0] + parts[1] + parts[2]
    ),
    st.tuples(valid_paths, st.sampled_from(["/.", "/.."])).map(lambda parts: parts[0] + parts[1]),
    st.tuples(valid_paths, control_characters, st.integers(0, 50)).map(
        lambda parts: _insert(parts[0], parts[1], parts[2])
    ),
    st.tuples(valid_paths, lone_surrogates, st.integers(0, 50)).map(
        lambda parts: _insert(parts[0], parts[1], parts[2])
    ),
    st.integers(4096, 5000).map(lambda n: "/" + "a" * n),
    st.integers(1366, 1600).map(lambda n: "/" + "€" * n),  # 3 bytes each: over 4,096 bytes
)
bad_hashes = st.one_of(
    st.text(max_size=40).filter(lambda value: not _VALID_HASH.fullmatch(value)),
    valid_hashes.map(str.upper).filter(lambda value: value != value.lower()),
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
)
bad_sizes = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=MAX_FILE_BYTES + 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
extra_keys = st.text(max_size=10).filter(lambda key: key not in ("hash", "size"))


@dataclass(frozen=True)
class ManifestCase:
    """A request body and what the gateway must answer a team that may use the target
    (None when the manifest is valid)."""

    document: Any
    refusal: Expected | None

    @property
    def body(self) -> bytes:
        return json.dumps(self.document).encode()


@st.composite
def _with_one_bad_entry(draw: st.DrawFn) -> ManifestCase:
    manifest = draw(valid_manifests)
    kind = draw(st.sampled_from(["path", "hash", "size", "no hash", "no size", "extra", "type"]))
    path = draw(bad_paths) if kind == "path" else draw(valid_paths)
    entry: Any = {"hash": draw(valid_hashes), "size": draw(valid_sizes)}
    pointer = json_pointer("manifest", path)
    if kind == "hash":
        entry["hash"] = draw(bad_hashes)
        pointer += "/hash"
    elif kind == "size":
        entry["size"] = draw(bad_sizes)
        pointer += "/size"
    elif kind == "no hash":
        del entry["hash"]
        pointer += "/hash"
    elif kind == "no size":
        del entry["size"]
        pointer += "/size"
    elif kind == "extra":
        key = draw(extra_keys)
        entry[key] = draw(json_values)
        pointer += json_pointer(key)
    elif kind == "type":
        entry = draw(json_scalars | st.lists(json_scalars, max_size=3))
    manifest.pop(path, None)  # the bad entry is the path's only entry
    items = list(manifest.items())
    items.insert(draw(st.integers(0, len(items))), (path, entry))
    return ManifestCase({"manifest": dict(items)}, Expected(400, 19001, pointer))


@st.composite
def _bad_document(draw: st.DrawFn) -> ManifestCase:
    kind = draw(st.sampled_from(["not an object", "no manifest", "manifest type", "extra field"]))
    if kind == "not an object":
        return ManifestCase(
            draw(json_scalars | st.lists(json_values, max_size=3)), Expected(400, 19000)
        )
    if kind == "no manifest":
        return ManifestCase({}, Expected(400, 19001, "/manifest"))
    if kind == "manifest type":
        value = draw(json_scalars | st.lists(json_values, max_size=3))
        return ManifestCase({"manifest": value}, Expected(400, 19001, "/manifest"))
    key = draw(st.text(max_size=10).filter(lambda k: k != "manifest"))
    document = {"manifest": draw(valid_manifests), key: draw(json_values)}
    return ManifestCase(document, Expected(400, 19001, json_pointer(key)))


valid_cases = valid_manifests.map(lambda manifest: ManifestCase({"manifest": manifest}, None))


def weighted(
    usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any], usual_in_10: int
) -> st.SearchStrategy[Any]:
    """`usual` about `usual_in_10` times in ten, else `other`."""
    return st.integers(1, 10).flatmap(lambda n: usual if n <= usual_in_10 else other)


# Half valid, so that many requests go all the way to Cloudflare.
manifest_cases = weighted(valid_cases, st.one_of(_with_one_bad_entry(), _bad_document()), 5)

IDENTITIES: dict[str, LocalIdentity] = {"web": WEB_DEPLOYER, "docs": DOCS_CI, "outsider": OUTSIDER}
callers = st.sampled_from(["web", "web", "web", "docs", "outsider"])
accounts = st.sampled_from([DEMO_ACCOUNT_ID] * 5 + [UNLINKED_ACCOUNT_ID])


def expected_answer(case: ManifestCase, caller: str, account: str) -> Expected:
    """The oracle: identity first, then the manifest, then the policy, then Cloudflare."""
    if caller == "outsider":
        return Expected(403, 19010)
    if case.refusal is not None:
        return case.refusal
    if caller == "docs":  # docs may not use the web team's script
        return Expected(403, 19011)
    if account == UNLINKED_ACCOUNT_ID:
        return Expected(403, 10000)  # Cloudflare's own refusal, passed through
    return Expected(200)


# Bodies that are not (quite) manifests: bytes, text, mutations of valid JSON.


def _mutations(raw: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.integers(0, len(raw)).map(lambda cut: raw[:cut]),
        st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=4)).map(
            lambda t: raw[: t[0]] + t[1] + raw[t[0] :]
        ),
        st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig", "cp1252"]).map(
            lambda codec: raw.decode().encode(codec, "replace")
        ),
        st.integers(1, 3000).map(lambda depth: b"[" * depth + raw + b"]" * depth),
        st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 5000]).map(
            lambda number: raw.replace(b'"size": ', b'"size": ' + number + b', "size2": ', 1)
        ),
    )


@st.composite
def _duplicated(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid manifest whose JSON text repeats one key: a path, or `hash`/`size` in an entry."""
    manifest = draw(valid_manifests.filter(bool))
    path = draw(st.sampled_from(sorted(manifest)))
    entry = manifest[path]
    if draw(st.booleans()):
        field = draw(st.sampled_from(["hash", "size"]))
        twice = json.dumps(entry)[:-1] + f", {json.dumps(field)}: {json.dumps(entry[field])}}}"
        text = json.dumps({"manifest": manifest}).replace(
            f"{json.dumps(path)}: {json.dumps(entry)}", f"{json.dumps(path)}: {twice}", 1
        )
        return text.encode(), json_pointer("manifest", path, field)
    again = f"{json.dumps(path)}: {json.dumps(draw(valid_entries))}"
    text = json.dumps({"manifest": manifest})[:-2] + f", {again}}}}}"
    return text.encode(), json_pointer("manifest", path)


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    manifest_cases.flatmap(lambda case: _mutations(case.body)),
    valid_cases.map(lambda case: case.body),
)
content_types = st.one_of(
    st.sampled_from(ACCEPTED_CONTENT_TYPES),
    st.sampled_from(
        [
            "application/vnd.api+json",
            "APPLICATION/JSON",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=utf-16",
            "application/json; charset=latin1",
            "application/jsonx",
            "*/*",
            ";",
        ]
    ),
    # Anything a header may carry: visible ASCII, inner spaces.
    st.from_regex(r"[!-~]([ !-~]{0,40}[!-~])?", fullmatch=True),
)


# ------------------------------------------------------------------------------ over HTTP


@pytest.fixture
def clients() -> Iterator[dict[str, httpx.Client]]:
    opened = {name: signed_client(identity) for name, identity in IDENTITIES.items()}
    yield opened
    for client in opened.values():
        client.close()


MANIFEST_EXAMPLES = 600


def test_generated_manifests_over_http(
    stack: LocalStack, clients: dict[str, httpx.Client], observer: Observer
) -> None:
    @given(case=manifest_cases, caller=callers, account=accounts)
    def prop(case: ManifestCase, caller: str, account: str) -> None:
        before = observer.forwarded()
        response = clients[caller].post(
            session_url(stack, account=account),
            content=case.body,
            headers={"Content-Type": "application/json"},
        )
        answer = http_answer(response)
        envelope = observer.check(answer, forwarded_before=before)
        expected = expected_answer(case, caller, account)
        observer.check_expected(envelope, answer, expected, dry_run=False)
        if expected.status == 200:
            observer.check_forwarded_body(case.document["manifest"])

    observer.run("manifests over HTTP", prop, examples=MANIFEST_EXAMPLES)
    assert observer.tally[(200, None)] > MANIFEST_EXAMPLES / 10


BODY_EXAMPLES = 500


def test_generated_bodies_and_content_types_over_http(
    stack: LocalStack, clients: dict[str, httpx.Client], observer: Observer
) -> None:
    @given(
        sample=st.one_of(raw_bodies.map(lambda body: (body, None)), _duplicated()),
        content_type=content_types,
        dry_run=st.booleans(),
    )
    def prop(sample: tuple[bytes, str | None], content_type: str | None, dry_run: bool) -> None:
        body, duplicate_pointer = sample
        headers = {} if content_type is None else {"Content-Type": content_type}
        if dry_run:
            headers["X-Assets-Gateway-Dry-Run"] = "1"
        before = observer.forwarded()
        answer = http_answer(clients["web"].post(session_url(stack), content=body, headers=headers))
        envelope = observer.check(answer, forwarded_before=before, dry_run=dry_run)
        if duplicate_pointer is not None and content_type in ACCEPTED_CONTENT_TYPES:
            expected = Expected(400, 19001, duplicate_pointer)
            observer.check_expected(envelope, answer, expected, dry_run=dry_run)
        if answer.status == 200 and not dry_run:
            # Only a strictly valid body gets a session, and Cloudflare gets its manifest.
            document = json.loads(body.decode("utf-8-sig"))
            assert set(document) == {"manifest"}
            observer.check_forwarded_body(document["manifest"])

    observer.run("bodies over HTTP", prop, examples=BODY_EXAMPLES)


# ------------------------------------------------------------------------------ in process


def api_event(
    *,
    account: str,
    script: str,
    namespace: str | None,
    headers: dict[str, str] | None,
    body: bytes | None,
    as_base64: bool,
    principal_arn: str | None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as the sample's, for another request."""
    event = copy.deepcopy(SAMPLE_EVENT)
    encoded = {"account_id": account, "script_name": script}
    if namespace is None:
        resource = (
            "/client/v4/accounts/{account_id}/workers/scripts/{script_name}/assets-upload-session"
        )
    else:
        encoded["namespace"] = namespace
        resource = (
            "/client/v4/accounts/{account_id}/workers/dispatch/namespaces/{namespace}"
            "/scripts/{script_name}/assets-upload-session"
        )
    path = resource
    for name, value in encoded.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    text: str | None
    if body is None:
        text = None
    elif as_base64:
        text = base64.b64encode(body).decode("ascii")
    else:
        text = body.decode("utf-8", "replace")
    event.update(
        resource=resource,
        path=path,
        headers=headers,
        multiValueHeaders=None if headers is None else {k: [v] for k, v in headers.items()},
        pathParameters=encoded,
        body=text,
        isBase64Encoded=as_base64,
    )
    context = event["requestContext"]
    context.update(resourcePath=resource, path="/v1" + path, requestId=str(uuid.uuid4()))
    context["identity"]["userArn"] = principal_arn
    return event


header_names = st.sampled_from(
    [
        "Authorization",
        "authorization",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Auth-Key",
        "X-Auth-Email",
        "Cookie",
        "Host",
        "User-Agent",
        "Content-Encoding",
        "Transfer-Encoding",
        "X-Assets-Gateway-Dry-Run",
        "CF-Connecting-IP",
        "Content-Length",
    ]
)
header_values = st.text(st.characters(codec="utf-8"), max_size=30)  # no lone surrogates
names = weighted(
    st.sampled_from([WEB_SCRIPT, "web-x", "web_1"]),
    st.one_of(
        st.sampled_from(["docs", "-", "_", "w" * 255, "w" * 256, ".", ".."]),
        st.text(max_size=20),
        st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    ),
    6,
)
event_accounts = weighted(
    st.just(DEMO_ACCOUNT_ID),
    st.one_of(
        st.sampled_from([UNLINKED_ACCOUNT_ID, DEMO_ACCOUNT_ID.upper(), ""]),
        st.text(HEX, min_size=31, max_size=33),
        st.text(max_size=40),
    ),
    7,
)
principals = weighted(
    st.sampled_from([WEB_DEPLOYER.principal_arn, DOCS_CI.principal_arn, OUTSIDER.principal_arn]),
    st.one_of(
        st.sampled_from(
            [
                "arn:aws:sts::111111111111:assumed-role/web-deployer/other-session",
                "arn:aws:iam::111111111111:role/web-deployer",
                "arn:aws:iam::111111111111:role/path/web-deployer",
                "",
                "*",
            ]
        ),
        st.none(),
        st.text(max_size=60),
    ),
    7,
)
event_bodies = st.one_of(
    manifest_cases.map(lambda case: case.body),
    raw_bodies,
    st.none(),
)


@dataclass(frozen=True)
class GeneratedEvent:
    event: dict[str, Any]
    account: str
    script: str
    principal_arn: str | None
    dry_run: bool


@st.composite
def api_requests(draw: st.DrawFn) -> GeneratedEvent:
    """Anything API Gateway could hand the function for the session routes, and more."""
    account, script = draw(event_accounts), draw(names)
    principal_arn = draw(principals)
    headers: dict[str, str] | None = None
    if draw(st.integers(0, 19)):  # 1 in 20 events has no headers at all (`"headers": null`)
        headers = {
            "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            **draw(st.dictionaries(header_names, header_values, max_size=4)),
        }
        content_type = draw(st.one_of(content_types, st.text(max_size=30)))
        if content_type is not None:
            headers["Content-Type"] = content_type
    dry_run = (headers or {}).get("X-Assets-Gateway-Dry-Run", "").strip().lower() in ("1", "true")
    event = api_event(
        account=account,
        script=script,
        namespace=draw(st.none() | names),
        headers=headers,
        body=draw(event_bodies),
        as_base64=draw(st.booleans()),
        principal_arn=principal_arn,
    )
    return GeneratedEvent(event, account, script, principal_arn, dry_run)


def rest_body(event: dict[str, Any]) -> bytes:
    text = event["body"] or ""
    return base64.b64decode(text) if event["isBase64Encoded"] else text.encode()


def handler_call(stack: LocalStack) -> Callable[[dict[str, Any]], dict[str, Any]]:
    module = stack.session_api

    def call(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = module.lambda_handler(event, lambda_context("session-api"))
        # Lambda returns JSON: the result must survive that, as the API front makes it.
        return json.loads(json.dumps(result))  # type: ignore[no-any-return]

    return call


EVENT_EXAMPLES = 600


# Paths that match no route (an empty segment) are answered 7003 with no metric: Powertools warns.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_generated_events_in_process(stack: LocalStack, observer: Observer) -> None:
    call = handler_call(stack)

    @given(generated=api_requests())
    def prop(generated: GeneratedEvent) -> None:
        event, dry_run = generated.event, generated.dry_run
        account, script = generated.account, generated.script
        principal_arn = generated.principal_arn
        before = observer.forwarded()
        answer = handler_answer(call(event))
        envelope = observer.check(answer, forwarded_before=before, dry_run=dry_run)
        if answer.status == 200 and not dry_run:
            assert principal_arn is not None
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", script)
            assert account == DEMO_ACCOUNT_ID
            received = rest_body(event)  # what API Gateway hands over (text is UTF-8 already)
            document = json.loads(received.decode("utf-8-sig"))
            observer.check_forwarded_body(document["manifest"])
        if answer.status == 400 and envelope["errors"][0]["code"] == 19000:
            assert "source" not in envelope["errors"][0] or envelope["errors"][0]["source"][
                "pointer"
            ] in ("/account_id", "/script_name", "/namespace")

    observer.run("events in process", prop, examples=EVENT_EXAMPLES)


DRY_RUN_EXAMPLES = 350


def test_generated_dry_runs_decide_as_the_real_run_would(
    stack: LocalStack, observer: Observer
) -> None:
    call = handler_call(stack)

    @given(case=manifest_cases, caller=callers, account=accounts)
    def prop(case: ManifestCase, caller: str, account: str) -> None:
        event = api_event(
            account=account,
            script=WEB_SCRIPT,
            namespace=None,
            headers={"Content-Type": "application/json", "X-Assets-Gateway-Dry-Run": "1"},
            body=case.body,
            as_base64=False,
            principal_arn=IDENTITIES[caller].principal_arn,
        )
        before = observer.forwarded()
        answer = handler_answer(call(event))
        envelope = observer.check(answer, forwarded_before=before, dry_run=True)
        expected = expected_answer(case, caller, account)
        if expected.code == 10000:  # Cloudflare's refusal: a dry run never asks Cloudflare
            expected = Expected(200)
        observer.check_expected(envelope, answer, expected, dry_run=True)
        if expected.status == 200:
            manifest = case.document["manifest"]
            result = envelope["result"]
            assert (result["team"], result["entries"]) == ("web", len(manifest))
            assert result["bytes"] == sum(entry["size"] for entry in manifest.values())

    observer.run("dry runs in process", prop, examples=DRY_RUN_EXAMPLES)
    assert observer.forwarded() == 0
