"""A local stand-in for the few Cloudflare API v4 endpoints the gateway and its callers touch.

It is a WSGI app (werkzeug), served on loopback by `BackgroundServer`, so the gateway and the
tests talk to it over real HTTP exactly as they would to `https://api.cloudflare.com/client/v4`.

Mirrored (everything under the `/client/v4` prefix):

- `POST /accounts/{account}/workers/scripts/{script}/assets-upload-session` and its Workers for
  Platforms twin `.../workers/dispatch/namespaces/{namespace}/scripts/{script}/...`: bearer-token
  check (9106 missing header, 6003/6111 malformed header, 9109 unknown token, 10000 token not
  valid for the account), manifest validation with JSON-pointer `source`s, buckets of the hashes
  the account does not hold yet (remembered per account), and HS256 JWTs that live one hour by
  the injected clock. Success is 200, as the OpenAPI spec says (wrangler's mocks say 201).
- `POST /accounts/{account}/workers/assets/upload?base64=true` (multipart, one part per file,
  named by its hash, holding its base64) and the single-asset path `.../upload/{hash}` (raw
  body), both authorised by the session JWT: 202 while files are missing, 201 with the
  completion JWT once every file of the session is stored.
- The deploy flow of wrangler 4.x (`deploy`, `versions upload`, `versions deploy`, `rollback`;
  state and validation in `emulator_workers`): `GET /workers/services/{s}` (10007 for an unknown
  Worker), `GET /workers/workers/{s}`, `GET /workers/scripts/{s}/deployments|settings|versions|
  versions/{id}|subdomain`, `PUT /workers/scripts/{s}` and `POST .../versions` (multipart, the
  metadata validated; `assets.jwt` redeemed: a completion JWT bound to account, script, namespace
  and manifest, once, within its hour, binding that manifest to the new version), `POST
  .../deployments` (percentages summing to 100 over existing versions), `PATCH
  .../script-settings`, `POST .../subdomain`, `GET /workers/subdomain`; the Workers for Platforms
  twins `GET|PUT .../dispatch/namespaces/{n}/scripts/{s}` and its `/settings`; and what wrangler
  asks after a 10000: `GET /user/tokens/verify`, `/user`, `/accounts`, `/memberships`.
- Cloudflare's global API limit: `rate_limit` requests in any `rate_window_s` (a sliding window,
  as Cloudflare counts "any 5 minutes", not windows aligned on a clock) per API token, then 429
  (code 971) with `Retry-After`, and every call of that token is refused for `block_s`.
  Token-authenticated answers carry `Ratelimit: "default";r=<left>;t=<s until a call frees>` and
  `Ratelimit-Policy: "default";q=<limit>;w=<window>` headers.
- The error envelope, 404 (7003 + 7000) for unknown routes, 405 (7001) for wrong methods, and a
  `cf-ray` header on every answer.

Deliberately not mirrored: running the uploaded code (its startup time is always 1 ms, its
handlers `fetch`), routes and custom domains, secrets, Durable Object migrations, the other
Cloudflare APIs, X-Auth-Key/X-Auth-Email authentication, the per-IP limit, token permission
scopes beyond "which accounts", checking that uploaded content matches the manifest's hash or
size (Cloudflare treats the hash as an opaque id), gzip request bodies, and request-size limits of
the real edge. Error codes Cloudflare does not publish for these operations are our choice, in the
103xx block (see `_Code` and `WorkersCode`).

Tests steer it in process (`inject_fault`, `reset`, `calls`, `wait_for_calls`) or over HTTP
under `/__emulator/` for out-of-process use; those control paths are never recorded, faulted nor
rate limited.

What it keeps is bounded, so an hour of load does not grow it: the recorded calls are the most
recent `max_recorded_calls` (and at most `max_recorded_bytes` of bodies), and an upload session is
forgotten once its JWT has expired, or when `max_sessions` newer ones are open (and with it the
mark that its completion JWT was redeemed). Stored files and Workers (versions keep their modules'
names and sizes, not their bytes) are Cloudflare's own state and stay.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from assets_gateway_common.json_pointer import json_pointer
from gateway_local.emulator_wire import (
    NOT_MULTIPART,
    ApiError,
    Part,
    error_response,
    json_response,
    parse_multipart,
    success_response,
)
from gateway_local.emulator_workers import ScriptKey, ScriptUpload, WorkersCode, WorkersState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

API_PREFIX = "/client/v4"
CONTROL_PREFIX = "/__emulator/"

MAX_FILE_BYTES = 25 * 1024 * 1024  # Cloudflare's per-asset limit (26,214,400 bytes)
MAX_MANIFEST_ENTRIES = 100_000  # files per Worker version on paid plans
TOKEN_LIFETIME_S = 3600  # both the upload and the completion JWT live one hour
_HASH_RE = re.compile(r"[0-9a-fA-F]{1,32}")
_COLO = "LOC"  # the airport code at the end of cf-ray; "LOC" says local

# A `hold` fault keeps the request open until the client hangs up; this caps the wait so a
# client without a timeout cannot pin a server thread for ever (then the connection is reset).
HOLD_LIMIT_S = 120.0
# How much call history the emulator keeps by default (the most recent calls win).
MAX_RECORDED_CALLS = 1_000
MAX_RECORDED_BYTES = 64 * 1024 * 1024
# Open upload sessions kept at most (each holds its manifest's hashes); the oldest go first.
MAX_SESSIONS = 10_000

# Answered by a `garbage` fault: truncated JSON and invalid UTF-8 under a JSON content type, the
# worst case for a client that trusts the content type.
GARBAGE_BODY = b'{"success": tru\xff\xfe<html><body>upstream garbage</body></html>'


class _Code:
    """Cloudflare error codes the emulator answers with.

    Codes seen in real Cloudflare answers: 9106, 6003/6111, 9109, 10000, 7000/7003, 971 (the
    global API limiter; Workers endpoints have also been seen answering 10429 for it), and
    10304 (manifest key without a leading slash, per wrangler). The rest of the 103xx block is
    ours: Cloudflare does not publish the codes of this operation's other refusals.
    """

    MISSING_AUTH = 9106
    INVALID_HEADERS = 6003
    INVALID_AUTH_FORMAT = 6111
    INVALID_TOKEN = 9109
    AUTHENTICATION = 10000
    INVALID_API_TOKEN = 1000  # GET /user/tokens/verify with a token that is not one
    NO_ROUTE = 7000
    METHOD_NOT_ALLOWED = 7001
    CANNOT_ROUTE = 7003
    RATE_LIMITED = 971
    FAULT = 1000  # injected failures other than 429: a generic code, as in the API reference
    BAD_BODY = 10300
    MANIFEST_TOO_LARGE = 10301
    INVALID_HASH = 10302
    INVALID_SIZE = 10303
    PATH_WITHOUT_SLASH = 10304
    INVALID_ENTRY = 10305
    BASE64_REQUIRED = 10310
    NOT_MULTIPART = NOT_MULTIPART
    HASH_NOT_IN_SESSION = 10312
    INVALID_BASE64 = 10313
    NO_FILES = 10314


# ----------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by the next `count` matching requests.

    `delay_s` is slept first (server side: a slow Cloudflare that still answers; give the client
    a timeout well above it). `hold` answers nothing and keeps the connection open until the
    client hangs up (its timeout fired), at most `HOLD_LIMIT_S`: the fault for "Cloudflare
    timed out", which cannot race the client's timeout the way a fixed delay does on a busy
    machine. Then `reset` drops the connection with a TCP RST and no answer; `garbage` answers
    non-JSON bytes (status 200 unless `status` is set); `body` answers those bytes (status 200
    unless set); `status` alone answers a Cloudflare error envelope. A fault with none of those
    only delays the request and adds `headers` to the real answer.
    """

    status: int | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    reset: bool = False
    garbage: bool = False
    hold: bool = False
    count: int = 1
    path_suffix: str | None = None
    # Served only once the test sets it (at most `HOLD_LIMIT_S`): a Cloudflare still working on
    # a request for exactly as long as the test needs, with no clock involved.
    until: threading.Event | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status, not {self.status}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.delay_s < 0:
            raise ValueError("delay_s must not be negative")

    def matches(self, path: str) -> bool:
        return self.path_suffix is None or path.endswith(self.path_suffix)


@dataclass(frozen=True)
class RecordedCall:
    """A request as the emulator received it. `status` is None until answered, and stays None
    when a `reset` fault dropped the connection."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None

    def to_public_json(self) -> dict[str, object]:
        """What `GET /__emulator/calls` shows: never a header value, so never a token."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "authorization": "authorization" in self.headers,
            "body_bytes": len(self.body),
        }


@dataclass(frozen=True)
class StoredAsset:
    content: bytes
    content_type: str | None


class InvalidTokenError(ValueError):
    """A JWT that is malformed, forged, expired or of the wrong kind."""


# ----------------------------------------------------------------------------- JWT (HS256)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidTokenError("token is not base64url") from error


def encode_jwt(claims: Mapping[str, object], secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        _b64url_encode(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, claims)
    )
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url_encode(signature)}"


def decode_jwt(token: str, secret: bytes) -> dict[str, Any]:
    """The claims of an HS256 JWT signed with `secret`; expiry is the caller's business."""
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidTokenError("token is not a JWT")
    header_b64, claims_b64, signature_b64 = segments
    expected = hmac.new(
        secret, f"{header_b64}.{claims_b64}".encode("ascii", "replace"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, _b64url_decode(signature_b64)):
        raise InvalidTokenError("token signature is invalid")
    try:
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(claims_b64))
    except ValueError as error:
        raise InvalidTokenError("token is not JSON") from error
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidTokenError("token algorithm is not HS256")
    if not isinstance(claims, dict):
        raise InvalidTokenError("token claims are not an object")
    return claims


def _cf_ray() -> str:
    return f"{secrets.token_hex(8)}-{_COLO}"


# ----------------------------------------------------------------------------- request bodies


def _parse_manifest(body: bytes) -> dict[str, tuple[str, int]]:
    """Path -> (hash, size), in manifest order, or the first problem as Cloudflare reports it."""
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise ApiError(400, _Code.BAD_BODY, "Request body is not valid JSON") from error
    if not isinstance(payload, dict):
        raise ApiError(400, _Code.BAD_BODY, "Request body must be a JSON object", pointer="/")
    manifest = payload.get("manifest")
    if not isinstance(manifest, dict):
        raise ApiError(
            400,
            _Code.BAD_BODY,
            "manifest must be an object of path: {hash, size}",
            pointer="/manifest",
        )
    if len(manifest) > MAX_MANIFEST_ENTRIES:
        raise ApiError(
            413,
            _Code.MANIFEST_TOO_LARGE,
            f"manifest has {len(manifest)} entries; at most {MAX_MANIFEST_ENTRIES} are allowed",
            pointer="/manifest",
        )
    return {path: _parse_manifest_entry(path, entry) for path, entry in manifest.items()}


def _parse_manifest_entry(path: str, entry: object) -> tuple[str, int]:
    if not path.startswith("/"):
        raise ApiError(
            400,
            _Code.PATH_WITHOUT_SLASH,
            f"Manifest path {path!r} must begin with a '/'",
            pointer=json_pointer("manifest", path),
        )
    if not isinstance(entry, dict):
        raise ApiError(
            400,
            _Code.INVALID_ENTRY,
            "manifest entry must be an object {hash, size}",
            pointer=json_pointer("manifest", path),
        )
    file_hash = entry.get("hash")
    if not isinstance(file_hash, str) or _HASH_RE.fullmatch(file_hash) is None:
        raise ApiError(
            400,
            _Code.INVALID_HASH,
            "hash must be 1 to 32 hexadecimal characters",
            pointer=json_pointer("manifest", path, "hash"),
        )
    size = entry.get("size")
    # bool is an int in Python, never in JSON's sense of a size
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES:
        raise ApiError(
            400,
            _Code.INVALID_SIZE,
            f"size must be an integer from 0 to {MAX_FILE_BYTES} bytes",
            pointer=json_pointer("manifest", path, "size"),
        )
    return file_hash, size


def _decode_base64_file(part: Part) -> bytes:
    try:
        return base64.b64decode(b"".join(part.chunks).strip(), validate=True)
    except binascii.Error as error:
        raise ApiError(
            400,
            _Code.INVALID_BASE64,
            f"Part {part.name!r} is not valid base64",
            pointer=json_pointer(part.name),
        ) from error


def _check_file_size(file_hash: str, content: bytes) -> None:
    if len(content) > MAX_FILE_BYTES:
        raise ApiError(
            413,
            _Code.INVALID_SIZE,
            f"File {file_hash} is {len(content)} bytes; at most {MAX_FILE_BYTES} are allowed",
            pointer=json_pointer(file_hash),
        )


# ----------------------------------------------------------------------------- state records


@dataclass(frozen=True)
class _Session:
    session_id: str
    account_id: str
    script_name: str
    namespace: str | None
    hashes: frozenset[str]  # every distinct hash of the manifest
    manifest: Mapping[str, tuple[str, int]]  # path -> (hash, size), bound to its completion JWT
    expires_at: float  # when its JWTs expire: past it the session is of no use to anyone


class _Slot:
    """One recorded call; the answer's status is filled in once known."""

    __slots__ = ("record",)

    def __init__(self, record: RecordedCall) -> None:
        self.record = record


@dataclass
class _TokenBudget:
    """Sliding window: the arrival times of the token's counted requests in the last
    `rate_window_s` (at most `rate_limit` of them, so memory stays bounded)."""

    arrivals: deque[float] = field(default_factory=deque)
    blocked_until: float | None = None


@dataclass(frozen=True)
class _Admission:
    admitted: bool
    remaining: int
    reset_s: int  # seconds until the window resets, or until the block ends
    policy: str

    def headers(self) -> dict[str, str]:
        headers = {
            "Ratelimit": f'"default";r={self.remaining};t={self.reset_s}',
            "Ratelimit-Policy": self.policy,
        }
        if not self.admitted:
            headers["Retry-After"] = str(self.reset_s)
        return headers


def _fault_response(fault: Fault) -> Response | None:
    """The answer a fault puts in place of the real one; None for latency-only faults."""
    if fault.garbage:
        body: bytes = GARBAGE_BODY
    elif fault.body is not None:
        body = fault.body
    elif fault.status is not None:
        code = _Code.RATE_LIMITED if fault.status == 429 else _Code.FAULT
        message = (
            "Please wait and consider throttling your request speed"
            if fault.status == 429
            else f"{_status_phrase(fault.status)} (injected fault)"
        )
        return error_response(fault.status, [{"code": code, "message": message}], fault.headers)
    else:
        return None
    return Response(
        body, status=fault.status or 200, headers=dict(fault.headers), mimetype="application/json"
    )


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _fault_from_json(payload: object) -> Fault:
    """A Fault from `POST /__emulator/faults`; `body` travels as a UTF-8 string."""
    if not isinstance(payload, dict):
        raise ValueError("fault must be a JSON object")
    known = {
        "status",
        "body",
        "headers",
        "delay_s",
        "reset",
        "garbage",
        "hold",
        "count",
        "path_suffix",
    }
    unknown = set(payload) - known
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    status = payload.get("status")
    body = payload.get("body")
    headers = payload.get("headers", {})
    delay_s = payload.get("delay_s", 0.0)
    count = payload.get("count", 1)
    path_suffix = payload.get("path_suffix")
    checks = (
        status is None or (isinstance(status, int) and not isinstance(status, bool)),
        body is None or isinstance(body, str),
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values()),
        isinstance(delay_s, (int, float)) and not isinstance(delay_s, bool),
        isinstance(payload.get("reset", False), bool),
        isinstance(payload.get("garbage", False), bool),
        isinstance(payload.get("hold", False), bool),
        isinstance(count, int) and not isinstance(count, bool),
        path_suffix is None or isinstance(path_suffix, str),
    )
    if not all(checks):
        raise ValueError("fault fields have the wrong types")
    return Fault(
        status=status,
        body=None if body is None else body.encode(),
        headers=headers,
        delay_s=float(delay_s),
        reset=payload.get("reset", False),
        garbage=payload.get("garbage", False),
        hold=payload.get("hold", False),
        count=count,
        path_suffix=path_suffix,
    )


def _drop_connection(environ: WSGIEnvironment) -> NoReturn:
    """Abort the client's TCP connection with an RST and answer nothing."""
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket) and connection.fileno() >= 0:
        _reset_socket(connection)
    # werkzeug takes a ConnectionError from the app for a client that went away: it writes
    # nothing more and logs nothing.
    raise ConnectionResetError("emulator fault: connection reset")


def _hold_until_hangup(environ: WSGIEnvironment, limit_s: float) -> NoReturn:
    """Answer nothing until the client closes the connection (or `limit_s` passes, then reset).

    The request body has been read, so the socket turns readable only when the client hangs up
    (EOF) or misbehaves by sending more: either way the wait is over, no polling involved.
    """
    connection = environ.get("werkzeug.socket")
    if not isinstance(connection, socket.socket) or connection.fileno() < 0:
        raise ConnectionAbortedError("emulator fault: no socket to hold")
    readable, _, _ = select.select([connection], [], [], limit_s)
    if not readable:
        _drop_connection(environ)
    raise ConnectionAbortedError("emulator fault: the client hung up while held")


def _reset_socket(connection: socket.socket) -> None:
    """Send an RST now, and leave the server's handler a socket that merely reads EOF.

    Closing the TCP socket with SO_LINGER 0 is what sends the RST, but the handler still owns
    that socket and would shut it down (a FIN, seen first by the client) or read from it. So the
    handler's descriptor is swapped for one end of a dead socketpair, and the last reference to
    the TCP socket, a duplicate, is closed here. POSIX only, like the local stack.
    """
    tcp = socket.socket(fileno=os.dup(connection.fileno()))
    try:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        placeholder, peer = socket.socketpair()
        with placeholder, peer:
            os.dup2(placeholder.fileno(), connection.fileno(), inheritable=False)
    finally:
        tcp.close()


def _manifest_digest(manifest: Mapping[str, tuple[str, int]]) -> str:
    canonical = json.dumps(sorted((path, h, size) for path, (h, size) in manifest.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json_body(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError as error:
        raise ApiError(400, _Code.BAD_BODY, "Request body is not valid JSON") from error


def busiest_window(arrivals: Iterable[float], window_s: float) -> int:
    """The most arrivals any closed interval of `window_s` holds, wherever it starts: what
    Cloudflare's "N requests in any 5 minutes" is measured against. Linear after the sort."""
    times = sorted(arrivals)
    most, first = 0, 0
    for last, arrival in enumerate(times):
        while times[first] < arrival - window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


# ----------------------------------------------------------------------------- the emulator

_ACCOUNT = f"{API_PREFIX}/accounts/<account_id>/workers"
_SCRIPT = f"{_ACCOUNT}/scripts/<script_name>"
_DISPATCH_SCRIPT = f"{_ACCOUNT}/dispatch/namespaces/<namespace>/scripts/<script_name>"
# (path under a script, method, endpoint): served for account scripts and, where Workers for
# Platforms has the same route, for dispatch namespace scripts.
_SCRIPT_ROUTES = (
    ("/assets-upload-session", "POST", "create_session", True),
    ("", "PUT", "upload_script", True),
    ("/settings", "GET", "settings", True),
    ("/deployments", "GET", "deployments", False),
    ("/deployments", "POST", "deploy", False),
    ("/versions", "GET", "versions", False),
    ("/versions", "POST", "upload_version", False),
    ("/versions/<version_id>", "GET", "version", False),
    ("/script-settings", "PATCH", "script_settings", False),
    ("/subdomain", "GET", "subdomain", False),
    ("/subdomain", "POST", "set_subdomain", False),
    ("/secrets", "GET", "secrets", True),
)

_API_ROUTES = Map(
    [
        *(
            Rule(f"{_SCRIPT}{suffix}", endpoint=endpoint, methods=[method])
            for suffix, method, endpoint, _twin in _SCRIPT_ROUTES
        ),
        *(
            Rule(f"{_DISPATCH_SCRIPT}{suffix}", endpoint=endpoint, methods=[method])
            for suffix, method, endpoint, twin in _SCRIPT_ROUTES
            if twin
        ),
        Rule(f"{_ACCOUNT}/services/<script_name>", endpoint="service", methods=["GET"]),
        Rule(_DISPATCH_SCRIPT, endpoint="service", methods=["GET"]),
        Rule(f"{_ACCOUNT}/workers/<script_name>", endpoint="worker", methods=["GET"]),
        Rule(f"{_ACCOUNT}/subdomain", endpoint="account_subdomain", methods=["GET"]),
        Rule(f"{_ACCOUNT}/assets/upload", endpoint="upload_bucket", methods=["POST"]),
        Rule(f"{_ACCOUNT}/assets/upload/<file_hash>", endpoint="upload_single", methods=["POST"]),
        Rule(f"{API_PREFIX}/user/tokens/verify", endpoint="verify_token", methods=["GET"]),
        Rule(f"{API_PREFIX}/user", endpoint="user", methods=["GET"]),
        Rule(f"{API_PREFIX}/memberships", endpoint="memberships", methods=["GET"]),
        Rule(f"{API_PREFIX}/accounts", endpoint="accounts", methods=["GET"]),
    ],
    merge_slashes=False,  # a doubled slash is a routing failure at Cloudflare, not a redirect
)

_CONTROL_ROUTES = Map(
    [
        Rule(f"{CONTROL_PREFIX}faults", endpoint="faults", methods=["POST"]),
        Rule(f"{CONTROL_PREFIX}reset", endpoint="reset", methods=["POST"]),
        Rule(f"{CONTROL_PREFIX}calls", endpoint="calls", methods=["GET"]),
    ],
    merge_slashes=False,
)


class CloudflareEmulator:
    """The WSGI app. All state sits behind one lock: the server answers from many threads."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, Collection[str]],
        clock: Callable[[], float] = time.time,
        jwt_secret: bytes | None = None,
        bucket_size: int = 10,
        rate_limit: int = 1200,
        rate_window_s: int = 300,
        block_s: int = 300,
        single_asset_uploads: bool = False,
        workers_subdomain: str | None = "emulator",
        max_recorded_calls: int = MAX_RECORDED_CALLS,
        max_recorded_bytes: int = MAX_RECORDED_BYTES,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        if bucket_size < 1 or rate_limit < 1 or rate_window_s < 1 or block_s < 0:
            raise ValueError("bucket_size, rate_limit and rate_window_s must be positive")
        if max_recorded_calls < 1 or max_sessions < 1 or max_recorded_bytes < 0:
            raise ValueError("max_recorded_calls and max_sessions must be positive")
        self._max_sessions = max_sessions
        self._tokens = {token: frozenset(accounts) for token, accounts in tokens.items()}
        self._clock = clock
        self._secret = jwt_secret if jwt_secret is not None else secrets.token_bytes(32)
        self._bucket_size = bucket_size
        self._rate_limit = rate_limit
        self._rate_window_s = rate_window_s
        self._block_s = block_s
        self._single_asset_uploads = single_asset_uploads
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        # The most recent calls only (an hour of load would otherwise keep every body), with
        # the total of their body bytes bounded too; `_received` counts every call since reset.
        self._calls: deque[_Slot] = deque(maxlen=max_recorded_calls)
        self._max_recorded_bytes = max_recorded_bytes
        self._recorded_bytes = 0
        self._received = 0
        self._stored: dict[str, dict[str, StoredAsset]] = {}
        self._sessions: dict[str, _Session] = {}
        self._faults: list[tuple[Fault, int]] = []  # (fault, uses left), first match wins
        self._budgets: dict[str, _TokenBudget] = {}
        # Sessions whose completion JWT a script upload has redeemed (each at most once).
        self._redeemed: set[str] = set()
        self.workers = WorkersState(
            clock=clock, redeem_assets=self._redeem_assets, account_subdomain=workers_subdomain
        )
        # How many 429s the rate limit itself (not an injected fault) answered.
        self.limited = 0

    # ------------------------------------------------------------------ inspection and control

    @property
    def calls(self) -> list[RecordedCall]:
        """The API requests received since the last reset, in arrival order (a snapshot): all of
        them up to `max_recorded_calls` (and `max_recorded_bytes` of bodies), else the latest."""
        with self._lock:
            return [slot.record for slot in self._calls]

    @property
    def received(self) -> int:
        """How many API requests arrived since the last reset (recorded or since forgotten)."""
        with self._lock:
            return self._received

    def wait_for_calls(self, count: int, *, timeout_s: float = 60.0) -> list[RecordedCall]:
        """The calls once `count` requests have arrived since the last reset.

        A client that gave up (its timeout fired) may return before its request reached the
        emulator's thread on a busy machine: tests wait here, on the arrival itself, instead of
        asserting right away. `timeout_s` is only a bound against a hung test, never a duration
        the test depends on. TimeoutError if they do not arrive.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._received >= count, timeout=timeout_s):
                raise TimeoutError(f"{self._received} calls arrived, expected {count}")
            return [slot.record for slot in self._calls]

    def retained(self) -> dict[str, int]:
        """What the emulator holds in memory (for the memory bench and its bound's test)."""
        with self._lock:
            return {
                "calls": len(self._calls),
                "call_body_bytes": self._recorded_bytes,
                "sessions": len(self._sessions),
                "stored_files": sum(len(files) for files in self._stored.values()),
            }

    def calls_to(self, suffix: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.path.endswith(suffix)]

    def stored_hashes(self, account_id: str) -> set[str]:
        with self._lock:
            return set(self._stored.get(account_id, {}))

    def stored_asset(self, account_id: str, file_hash: str) -> StoredAsset | None:
        with self._lock:
            return self._stored.get(account_id, {}).get(file_hash)

    def inject_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append((fault, fault.count))

    def reset(self) -> None:
        """Forget calls, stored files, sessions, faults and rate counters (not tokens, secret)."""
        with self._lock:
            self._calls.clear()
            self._recorded_bytes = 0
            self._received = 0
            self._stored.clear()
            self._sessions.clear()
            self._faults.clear()
            self._budgets.clear()
            self._redeemed.clear()
            self.limited = 0
        self.workers.reset()

    def verify_token(self, token: str) -> dict[str, Any]:
        """The claims of a JWT this emulator issued, if its signature holds and it is current."""
        claims = decode_jwt(token, self._secret)
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or self._clock() >= expires:
            raise InvalidTokenError("token has expired")
        return claims

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(CONTROL_PREFIX):
            response = self._control(request)
        else:
            response = self._serve_api(request, environ)
        response.headers["cf-ray"] = _cf_ray()
        return response(environ, start_response)

    def _serve_api(self, request: Request, environ: WSGIEnvironment) -> Response:
        body = request.get_data()
        slot = self._record_arrival(request, body)
        fault = self._take_fault(request.path)
        if fault is not None and fault.delay_s > 0:
            time.sleep(fault.delay_s)  # really late, yet answering: a slow Cloudflare
        if fault is not None and fault.until is not None:
            fault.until.wait(HOLD_LIMIT_S)
        if fault is not None and fault.hold:
            _hold_until_hangup(environ, HOLD_LIMIT_S)
        if fault is not None and fault.reset:
            _drop_connection(environ)
        response = _fault_response(fault) if fault is not None else None
        if response is None:
            response = self._dispatch(request, body)
            if fault is not None:
                response.headers.update(fault.headers)
        self._record_answer(slot, response.status_code)
        return response

    def _record_arrival(self, request: Request, body: bytes) -> _Slot:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        record = RecordedCall(
            method=request.method,
            path=request.path,
            query=request.query_string.decode("latin-1"),
            headers=headers,
            body=body,
        )
        slot = _Slot(record)
        with self._arrived:
            if len(self._calls) == self._calls.maxlen:
                self._recorded_bytes -= len(self._calls[0].record.body)
            self._calls.append(slot)  # a full deque drops its oldest call
            self._recorded_bytes += len(body)
            while self._recorded_bytes > self._max_recorded_bytes and len(self._calls) > 1:
                self._recorded_bytes -= len(self._calls.popleft().record.body)
            self._received += 1
            self._arrived.notify_all()
        return slot

    def _record_answer(self, slot: _Slot, status: int) -> None:
        with self._lock:
            # Evicted or reset meanwhile: the slot is then nobody's, and updating it is harmless.
            slot.record = replace(slot.record, status=status)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for position, (fault, uses_left) in enumerate(self._faults):
                if fault.matches(path):
                    if uses_left > 1:
                        self._faults[position] = (fault, uses_left - 1)
                    else:
                        del self._faults[position]
                    return fault
        return None

    def _dispatch(self, request: Request, body: bytes) -> Response:
        adapter = _API_ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed as error:
            allowed = ", ".join(error.valid_methods or [])
            return error_response(
                405,
                [{"code": _Code.METHOD_NOT_ALLOWED, "message": "Method not allowed"}],
                {"Allow": allowed},
            )
        except HTTPException:
            return self._no_route(request.path)
        try:
            if endpoint == "upload_bucket":
                return self._upload_bucket(request, body, **args)
            if endpoint == "upload_single":
                return self._upload_single(request, body, **args)
            if endpoint == "verify_token":
                return self._verify_api_token(request)
            if endpoint in ("user", "memberships", "accounts"):
                return self._whoami(request, endpoint)
            return self._with_api_token(request, args["account_id"], endpoint, body, args)
        except ApiError as error:
            return error.response()

    @staticmethod
    def _no_route(path: str) -> Response:
        route = path.removeprefix(API_PREFIX) or "/"
        message = f"Could not route to {route}, perhaps your object identifier is invalid?"
        errors: list[dict[str, object]] = [
            {"code": _Code.CANNOT_ROUTE, "message": message},
            {"code": _Code.NO_ROUTE, "message": "No route for that URI"},
        ]
        return error_response(404, errors)

    # ------------------------------------------------------------------ authentication

    @staticmethod
    def _bearer(request: Request) -> str:
        header = request.headers.get("Authorization")
        if header is None:
            raise ApiError(
                400, _Code.MISSING_AUTH, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
            )
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(
                400,
                _Code.INVALID_HEADERS,
                "Invalid request headers",
                chain=[(_Code.INVALID_AUTH_FORMAT, "Invalid format for Authorization header")],
            )
        return credential.strip()

    def _api_token(self, request: Request) -> str:
        token = self._bearer(request)
        if token not in self._tokens:  # replaced whole by roll_token: a read needs no lock
            raise ApiError(400, _Code.INVALID_TOKEN, "Invalid access token")
        return token

    def _admit(self, token: str) -> _Admission:
        """Count one request against the token's budget (Cloudflare: 1,200 per 5 minutes).

        A sliding window: a request is admitted when fewer than `rate_limit` requests arrived in
        the `rate_window_s` before it, whatever clock-aligned window it falls in. Going over
        blocks the token for `block_s`, as Cloudflare blocks "all calls for five minutes".
        """
        now = self._clock()
        policy = f'"default";q={self._rate_limit};w={self._rate_window_s}'
        with self._lock:
            budget = self._budgets.setdefault(token, _TokenBudget())
            if budget.blocked_until is not None:
                if now < budget.blocked_until:
                    wait = max(1, math.ceil(budget.blocked_until - now))
                    self.limited += 1
                    return _Admission(False, 0, wait, policy)
                budget.blocked_until = None
                budget.arrivals.clear()  # the block is over: a fresh start
            while budget.arrivals and budget.arrivals[0] <= now - self._rate_window_s:
                budget.arrivals.popleft()
            if len(budget.arrivals) >= self._rate_limit:
                budget.blocked_until = now + self._block_s
                self.limited += 1
                return _Admission(False, 0, max(1, self._block_s), policy)
            budget.arrivals.append(now)
            # The next slot frees when the oldest counted request leaves the window.
            reset_s = max(1, math.ceil(budget.arrivals[0] + self._rate_window_s - now))
            return _Admission(True, self._rate_limit - len(budget.arrivals), reset_s, policy)

    def _upload_session(self, request: Request, account_id: str) -> _Session:
        """The session a bearer JWT opened, if the JWT is genuine, current and for this account.

        Upload calls are not counted against any rate budget: the JWT authenticates a session,
        not a user, the documented limit is per user/token, and only session creation spends the
        org token (DESIGN §1), so counting them would invent a coupling nobody has observed.
        """
        jwt = self._bearer(request)
        try:
            claims = self.verify_token(jwt)
        except InvalidTokenError as error:
            raise ApiError(401, _Code.AUTHENTICATION, f"Authentication error: {error}") from error
        if claims.get("purpose") != "upload":
            raise ApiError(401, _Code.AUTHENTICATION, "Authentication error: not an upload token")
        if claims.get("account_id") != account_id:
            raise ApiError(
                401, _Code.AUTHENTICATION, "Authentication error: token is for another account"
            )
        with self._lock:
            session = self._sessions.get(str(claims.get("session_id")))
        if session is None:
            raise ApiError(401, _Code.AUTHENTICATION, "Authentication error: unknown session")
        return session

    # ------------------------------------------------------------------ endpoints

    def _with_api_token(
        self, request: Request, account_id: str, endpoint: str, body: bytes, args: Mapping[str, str]
    ) -> Response:
        """Every route that spends the org's API token: checked, counted against its budget, then
        answered by the endpoint, with the rate-limit headers on whatever it answers."""
        token = self._api_token(request)
        admission = self._admit(token)
        try:
            if not admission.admitted:
                raise ApiError(
                    429,
                    _Code.RATE_LIMITED,
                    "Please wait and consider throttling your request speed",
                )
            if account_id not in self._tokens[token]:
                raise ApiError(403, _Code.AUTHENTICATION, "Authentication error")
            response = self._token_route(request, endpoint, body, args)
        except ApiError as error:
            response = error.response()
        response.headers.update(admission.headers())
        return response

    def _token_route(
        self, request: Request, endpoint: str, body: bytes, args: Mapping[str, str]
    ) -> Response:
        if endpoint == "create_session":
            manifest = _parse_manifest(body)
            return self._open_session(
                args["account_id"], args["script_name"], args.get("namespace"), manifest
            )
        if endpoint == "account_subdomain":
            return success_response(200, self.workers.account_subdomain(args["account_id"]))
        key = ScriptKey(args["account_id"], args["script_name"], args.get("namespace"))
        workers = self.workers
        source = "wrangler" if "wrangler" in request.headers.get("User-Agent", "") else "api"
        strict = request.args.get("bindings_inherit") == "strict"
        readers: dict[str, Callable[[ScriptKey], object]] = {
            "service": workers.service,
            "deployments": workers.deployments,
            "versions": workers.versions,
            "settings": workers.settings,
            "subdomain": workers.subdomain,
            "worker": workers.worker,
            "secrets": workers.secrets,
        }
        if endpoint in readers:
            return success_response(200, readers[endpoint](key))
        if endpoint == "version":
            return success_response(200, workers.version(key, args["version_id"]))
        if endpoint in ("upload_script", "upload_version"):
            parts = parse_multipart(request.headers.get("Content-Type"), body)
            received = ScriptUpload(parts, source, strict_inherit=strict)
            upload = (
                workers.upload_version if endpoint == "upload_version" else workers.upload_script
            )
            return success_response(200, upload(key, received))
        payload = _json_body(body)
        if endpoint == "deploy":
            return success_response(200, workers.deploy(key, payload, source=source))
        if endpoint == "script_settings":
            return success_response(200, workers.patch_script_settings(key, payload))
        return success_response(200, workers.set_subdomain(key, payload))

    def _verify_api_token(self, request: Request) -> Response:
        """`GET /user/tokens/verify`: what wrangler asks after a 10000, to tell a bad token."""
        token = self._bearer(request)
        if token not in self._tokens:
            raise ApiError(401, _Code.INVALID_API_TOKEN, "Invalid API Token")
        token_id = hashlib.sha256(token.encode()).hexdigest()[:32]
        return success_response(
            200,
            {"id": token_id, "status": "active"},
        )

    def _whoami(self, request: Request, endpoint: str) -> Response:
        """`GET /user`, `/memberships` and `/accounts`: what wrangler reads to say who the token
        is (after a 10000, and in `wrangler whoami`). A token's accounts are its memberships."""
        accounts = sorted(self._tokens.get(self._api_token(request), ()))
        if endpoint == "user":
            user = {"id": "emulated-user", "email": "emulator@example.com", "suspended": False}
            return success_response(200, user)
        listed = [{"id": account, "name": f"Emulated account {account}"} for account in accounts]
        if endpoint == "accounts":
            return success_response(200, listed)
        memberships = [
            {"id": f"membership-{a['id']}", "status": "accepted", "account": a} for a in listed
        ]
        return success_response(200, memberships)

    def _redeem_assets(self, jwt: str, key: ScriptKey) -> Mapping[str, tuple[str, int]]:
        """The manifest of the session a completion JWT closed, spending that JWT: it must be
        genuine, current, a completion token, for this account, script and namespace, and not
        redeemed before; its manifest must be the one it was issued for."""
        try:
            claims = self.verify_token(jwt)
        except InvalidTokenError as error:
            raise ApiError(
                401, _Code.AUTHENTICATION, f"Authentication error: assets.jwt: {error}"
            ) from error
        expected = {
            "purpose": "completion",
            "account_id": key.account_id,
            "script_name": key.name,
            "namespace": key.namespace,
        }
        for claim, value in expected.items():
            if claims.get(claim) != value:
                raise ApiError(
                    401,
                    _Code.AUTHENTICATION,
                    f"Authentication error: assets.jwt is not valid here ({claim})",
                )
        session_id = str(claims.get("session_id"))
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or claims.get("manifest") != _manifest_digest(session.manifest):
                raise ApiError(
                    401, _Code.AUTHENTICATION, "Authentication error: assets.jwt: unknown session"
                )
            if session_id in self._redeemed:
                raise ApiError(
                    400,
                    WorkersCode.ASSETS_TOKEN_USED,
                    "assets.jwt has already been used: start a new upload session",
                )
            self._redeemed.add(session_id)
            return session.manifest

    def _open_session(
        self,
        account_id: str,
        script_name: str,
        namespace: str | None,
        manifest: Mapping[str, tuple[str, int]],
    ) -> Response:
        hashes = list(dict.fromkeys(file_hash for file_hash, _size in manifest.values()))
        now = self._clock()
        session = _Session(
            session_id=secrets.token_hex(16),
            account_id=account_id,
            script_name=script_name,
            namespace=namespace,
            hashes=frozenset(hashes),
            manifest=dict(manifest),
            expires_at=int(now) + TOKEN_LIFETIME_S,
        )
        with self._lock:
            self._forget_expired_sessions(now)
            self._sessions[session.session_id] = session
            stored = self._stored.get(account_id, {})
            missing = [file_hash for file_hash in hashes if file_hash not in stored]
        buckets = [
            missing[start : start + self._bucket_size]
            for start in range(0, len(missing), self._bucket_size)
        ]
        # Nothing to upload: the session's own JWT is already the completion token.
        jwt = (
            self._upload_token(session, len(missing))
            if missing
            else self._completion_token(session)
        )
        return success_response(200, {"jwt": jwt, "buckets": buckets})

    def _forget_expired_sessions(self, now: float) -> None:
        """Make room for one more session (the lock is held): sessions whose JWTs expired can
        never be used again, and past `max_sessions` the oldest goes (its uploads then get 401,
        as an expired one's do). Sessions were added in the order they expire."""
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.expires_at > now and len(self._sessions) < self._max_sessions:
                return
            del self._sessions[oldest.session_id]
            self._redeemed.discard(oldest.session_id)

    def _upload_bucket(self, request: Request, body: bytes, account_id: str) -> Response:
        session = self._upload_session(request, account_id)
        if request.args.get("base64") != "true":
            raise ApiError(
                400, _Code.BASE64_REQUIRED, "Only base64 uploads are supported: add ?base64=true"
            )
        parts = parse_multipart(request.headers.get("Content-Type"), body)
        if not parts:
            raise ApiError(400, _Code.NO_FILES, "The upload holds no files")
        files: dict[str, StoredAsset] = {}
        for part in parts:  # validate every part before storing any: a refusal stores nothing
            self._check_in_session(session, part.name)
            content = _decode_base64_file(part)
            _check_file_size(part.name, content)
            files[part.name] = StoredAsset(content, part.content_type)
        return self._store(session, files)

    def _upload_single(
        self, request: Request, body: bytes, account_id: str, file_hash: str
    ) -> Response:
        session = self._upload_session(request, account_id)
        self._check_in_session(session, file_hash)
        _check_file_size(file_hash, body)
        return self._store(session, {file_hash: StoredAsset(body, request.content_type)})

    @staticmethod
    def _check_in_session(session: _Session, file_hash: str) -> None:
        if file_hash not in session.hashes:
            raise ApiError(
                400,
                _Code.HASH_NOT_IN_SESSION,
                f"{file_hash!r} is not a hash of this upload session's manifest",
                pointer=json_pointer(file_hash),
            )

    def _store(self, session: _Session, files: Mapping[str, StoredAsset]) -> Response:
        """202 while the session still misses files, 201 with the completion JWT once all are in."""
        with self._lock:
            stored = self._stored.setdefault(session.account_id, {})
            stored.update(files)
            complete = session.hashes <= stored.keys()
        if not complete:
            return success_response(202, {"jwt": None})
        return success_response(201, {"jwt": self._completion_token(session)})

    # ------------------------------------------------------------------ tokens

    def roll_token(self, old: str, new: str) -> None:
        """Cloudflare's "roll token": the old value stops working, the new one has its access."""
        with self._lock:
            tokens = dict(self._tokens)
            tokens[new] = tokens.pop(old)
            self._tokens = tokens

    def _session_claims(self, session: _Session, purpose: str) -> dict[str, object]:
        issued_at = int(self._clock())
        claims: dict[str, object] = {
            "purpose": purpose,
            "session_id": session.session_id,
            "account_id": session.account_id,
            "script_name": session.script_name,
            "iat": issued_at,
            "exp": issued_at + TOKEN_LIFETIME_S,
        }
        if session.namespace is not None:
            claims["namespace"] = session.namespace
        return claims

    def _upload_token(self, session: _Session, pending: int) -> str:
        # The pending hashes stay server-side (a 100k-file session would not fit a header);
        # the token carries the session id and how many files it waits for.
        claims = self._session_claims(session, "upload")
        claims["pending_files"] = pending
        if self._single_asset_uploads:
            claims["wrangler_single_asset_uploads"] = True
        return encode_jwt(claims, self._secret)

    def _completion_token(self, session: _Session) -> str:
        claims = self._session_claims(session, "completion")
        claims["manifest"] = _manifest_digest(session.manifest)  # bound to what was registered
        return encode_jwt(claims, self._secret)

    # ------------------------------------------------------------------ control over HTTP

    def _control(self, request: Request) -> Response:
        adapter = _CONTROL_ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, _args = adapter.match()
        except MethodNotAllowed:
            return error_response(
                405, [{"code": _Code.METHOD_NOT_ALLOWED, "message": "Method not allowed"}]
            )
        except HTTPException:
            return self._no_route(request.path)
        if endpoint == "calls":
            return json_response(200, [call.to_public_json() for call in self.calls])
        if endpoint == "reset":
            self.reset()
            return success_response(200, None)
        try:
            fault = _fault_from_json(json.loads(request.get_data()))
        except ValueError as error:
            return ApiError(400, _Code.BAD_BODY, f"Invalid fault: {error}").response()
        self.inject_fault(fault)
        public = {**asdict(fault), "body": None if fault.body is None else fault.body.decode()}
        return success_response(201, public)
