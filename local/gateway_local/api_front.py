"""A local stand-in for API Gateway REST (AWS_IAM authorization, Lambda proxy integration).

It does what API Gateway does before and after the Lambda, in this order:

1. body over the payload limit -> 413; a body the HTTP layer cannot read (malformed chunked
   encoding, truncated) -> 400;
2. match the raw path against the resource templates (`{name}` = one segment, `{name+}` = the
   rest); no resource or no method on it -> 403 "Missing Authentication Token";
3. verify the SigV4 signature (`sigv4_verify`) -> 403 with API Gateway's message;
4. build the REST proxy integration event (payload format 1.0) with the caller's IAM identity,
   call the handler with a Lambda-like context, and turn its proxy result into the HTTP answer;
   a crash or malformed result -> 502 "Internal server error".

API Gateway's own refusals are rendered from the template's GatewayResponses for their response
type (`gateway_responses`), as API Gateway renders them: the Cloudflare v4 envelope with the
template's code (10000 for authentication, 19002 for a body too large, 19099 for a crash...).

Paths are accepted both as on the execute-api host (`/<stage>/client/v4/...`) and as behind a
custom domain (`/client/v4/...`); `path` in the event never carries the stage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote, urlsplit

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from gateway_local.gateway_responses import (
    DEFAULT_4XX,
    DEFAULT_5XX,
    GatewayResponse,
    template_gateway_responses,
)
from gateway_local.sigv4_verify import (
    INVALID_TYPE,
    MISSING_AUTHENTICATION_TOKEN,
    MISSING_TOKEN_TYPE,
    SignatureError,
    verify_sigv4,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["ApiFront", "LambdaContext", "LocalIdentity", "Route", "caller_id"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_READ_CHUNK = 64 * 1024
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Hop-by-hop headers cannot pass through WSGI; the length is recomputed from the decoded body.
_DROPPED_RESULT_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


@dataclass(frozen=True)
class LocalIdentity:
    """An IAM principal the front knows: its access key pair and who it is."""

    access_key_id: str
    secret_access_key: str
    # arn:aws:sts::111111111111:assumed-role/web-deployer/ci-session
    # or arn:aws:iam::111111111111:user/alice
    principal_arn: str
    account_id: str

    @classmethod
    def from_arn(
        cls, *, access_key_id: str, secret_access_key: str, principal_arn: str
    ) -> LocalIdentity:
        """The identity whose account is the one its principal's ARN names."""
        return cls(access_key_id, secret_access_key, principal_arn, principal_arn.split(":")[4])


@dataclass(frozen=True)
class Route:
    """One API Gateway method: HTTP method (or ANY) on a resource template."""

    method: str
    resource: str  # e.g. "/client/v4/accounts/{account_id}/workers/scripts/{script_name}/..."
    # Which function the method integrates with (None: the front's default handler).
    function: str | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _fake_id(prefix: str, seed: str, length: int = 17) -> str:
    """A stable IAM-style unique id (AROA..., AIDA...) derived from `seed`."""
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return prefix + digest[:length]


def caller_id(identity: LocalIdentity) -> str:
    """What API Gateway puts in identity.caller / identity.user for this principal."""
    arn = identity.principal_arn
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    kind, _, rest = resource.partition("/")
    account = parts[4] if len(parts) == 6 and parts[4] else identity.account_id
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        role_id = _fake_id("AROA", f"arn:aws:iam::{account}:role/{role}")
        return f"{role_id}:{session}"
    if kind == "federated-user":
        return f"{account}:{rest}"
    if resource == "root":
        return account
    return _fake_id("AIDA", arn)


@dataclass
class LambdaContext:
    """The parts of the Lambda context object handlers (and Powertools) read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


def lambda_context(
    function_name: str,
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    memory_limit_in_mb: int = 512,
    timeout_seconds: float = 28.0,
    now: datetime | None = None,
) -> LambdaContext:
    """A fresh context for one invocation, as the Lambda service hands it to the handler."""
    today = (now or _utc_now()).astimezone(UTC)
    return LambdaContext(
        function_name=function_name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:{region}:{account_id}:function:{function_name}",
        memory_limit_in_mb=memory_limit_in_mb,
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name=f"{today:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
        deadline_monotonic=time.monotonic() + timeout_seconds,
    )


_PartKind = Literal["literal", "variable", "greedy"]
_SPECIFICITY: dict[_PartKind, int] = {"literal": 0, "variable": 1, "greedy": 2}


@dataclass(frozen=True)
class _Resource:
    template: str
    parts: tuple[tuple[_PartKind, str], ...]
    resource_id: str

    @classmethod
    def compile(cls, template: str) -> _Resource:
        if not template.startswith("/"):
            raise ValueError(f"resource {template!r} must start with '/'")
        parts: list[tuple[_PartKind, str]] = []
        segments = [segment for segment in template.split("/")[1:] if segment]
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if name.endswith("+"):
                    if index != len(segments) - 1:
                        raise ValueError(f"greedy {segment} must be the last part of {template!r}")
                    parts.append(("greedy", name[:-1]))
                else:
                    parts.append(("variable", name))
            else:
                parts.append(("literal", segment))
        resource_id = hashlib.sha256(template.encode()).hexdigest()[:6]
        return cls(template=template, parts=tuple(parts), resource_id=resource_id)

    @property
    def specificity(self) -> tuple[int, ...]:
        return tuple(_SPECIFICITY[kind] for kind, _ in self.parts)

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """Raw (still percent-encoded) path parameter values, or None."""
        params: dict[str, str] = {}
        for index, (kind, text) in enumerate(self.parts):
            if kind == "greedy":
                rest = segments[index:]
                if not rest or not all(rest):
                    return None
                params[text] = "/".join(rest)
                return params
            if index >= len(segments) or not segments[index]:
                return None
            if kind == "literal" and segments[index] != text:
                return None
            if kind == "variable":
                params[text] = segments[index]
        return params if len(segments) == len(self.parts) else None


@dataclass(frozen=True)
class _Matched:
    resource: _Resource
    path: str  # raw, without the stage
    raw_params: dict[str, str]
    route: Route


# Gateway response types (API Gateway's names) of the front's own answers.
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
BAD_REQUEST_BODY = "BAD_REQUEST_BODY"
MISSING_AUTHENTICATION = "MISSING_AUTHENTICATION_TOKEN"
INVALID_SIGNATURE = "INVALID_SIGNATURE"
# x-amzn-ErrorType of a refused signature -> its response type; AWS documents no dedicated type
# for an incomplete signature or an unknown access key, so those fall back to DEFAULT_4XX.
_SIGNATURE_RESPONSE_TYPES = {
    INVALID_TYPE: INVALID_SIGNATURE,
    MISSING_TOKEN_TYPE: MISSING_AUTHENTICATION,
}


class _GatewayAnswer(Exception):
    """API Gateway answers by itself (no Lambda call), with the gateway response `response_type`
    (None: DEFAULT_4XX or DEFAULT_5XX by status)."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        response_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.response_type = response_type


def _decode_query(raw_query: str) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """API Gateway REST decodes query parameters (%XX; '+' stays '+'); last value wins."""
    multi: dict[str, list[str]] = {}
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        multi.setdefault(unquote(key), []).append(unquote(value))
    if not multi:
        return None, None
    return {key: values[-1] for key, values in multi.items()}, multi


def _request_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"


def _trace_id(moment: datetime) -> str:
    return f"Root=1-{int(moment.timestamp()):08x}-{secrets.token_hex(12)}"


@dataclass(frozen=True)
class _Incoming:
    """The request as API Gateway sees it: raw path and query, headers, body, peer."""

    method: str
    raw_path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    host: str
    scheme: str
    source_ip: str
    server_port: str
    protocol: str

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment, body: bytes) -> _Incoming:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:  # the request target exactly as on the request line
            target = urlsplit(str(raw))
            raw_path, raw_query = target.path or "/", target.query
        else:
            path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
            raw_path = quote(path or "/", safe="/%:@!$&'()*+,;=-._~")
            raw_query = str(environ.get("QUERY_STRING", ""))
        headers = dict(EnvironHeaders(environ).items())
        server_port = str(environ.get("SERVER_PORT", ""))
        host = headers.get("Host") or f"{environ.get('SERVER_NAME', 'localhost')}:{server_port}"
        return cls(
            method=str(environ["REQUEST_METHOD"]).upper(),
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            host=host,
            scheme=str(environ.get("wsgi.url_scheme", "http")),
            source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1")),
            server_port=server_port,
            protocol=str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
        )

    @property
    def url(self) -> str:
        query = f"?{self.raw_query}" if self.raw_query else ""
        return f"{self.scheme}://{self.host}{self.raw_path}{query}"


def _event_body(body: bytes, headers: Mapping[str, str]) -> tuple[str | None, bool]:
    """Text bodies pass as is; binary or gzip-encoded ones as base64 (binary media types)."""
    if not body:
        return None, False
    encoding = next(
        (value for name, value in headers.items() if name.lower() == "content-encoding"), ""
    )
    if "gzip" not in encoding.lower():
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _result_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """headers + multiValueHeaders merged as API Gateway does (multi-value entries win)."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if not isinstance(values, list):
            raise TypeError(f"multiValueHeaders[{name!r}] is not a list")
        merged[str(name).lower()] = (str(name), [str(value) for value in values])
    for name, value in (result.get("headers") or {}).items():
        merged.setdefault(str(name).lower(), (str(name), [str(value)]))
    return [
        (name, value)
        for lowered, (name, values) in merged.items()
        if lowered not in _DROPPED_RESULT_HEADERS
        for value in values
    ]


def _result_body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise TypeError("body is not a string")
    if result.get("isBase64Encoded") is True:
        return base64.b64decode(body, validate=True)
    return body.encode("utf-8")


def _proxy_response(result: Any) -> Response:
    """The HTTP answer for a Lambda proxy result; TypeError/ValueError when it is malformed."""
    if not isinstance(result, dict):
        raise TypeError("the result is not an object")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"bad statusCode {status!r}")
    response = Response(_result_body(result), status=status)
    response.headers.remove("Content-Type")
    for name, value in _result_headers(result):
        response.headers.add(name, value)
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = "application/json"
    return response


class ApiFront:
    """WSGI app: API Gateway REST + AWS_IAM + Lambda proxy integration, on loopback."""

    def __init__(
        self,
        *,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        routes: Sequence[Route],
        identities: Sequence[LocalIdentity],
        region: str = "us-east-1",
        stage: str = "local",
        function_name: str = "session-api",
        # Other functions behind the same API, by the name their routes give (Route.function).
        functions: Mapping[str, Callable[[dict[str, Any], Any], dict[str, Any]]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        account_id: str = "123456789012",
        timeout_seconds: float = 28.0,
        memory_limit_in_mb: int = 512,
        # The API's GatewayResponses by type (None: template.yaml's, as the stack deploys them).
        gateway_responses: Mapping[str, GatewayResponse] | None = None,
    ) -> None:
        self._handler = handler
        self._responses = dict(
            template_gateway_responses() if gateway_responses is None else gateway_responses
        )
        self._functions = dict(functions or {})
        self._region = region
        self._stage = stage
        self._function_name = function_name
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._account_id = account_id
        self._timeout_seconds = timeout_seconds
        self._memory_limit_in_mb = memory_limit_in_mb
        self._api_id = _fake_id("", f"{account_id}:{region}:{function_name}", 10).lower()
        by_key: dict[str, LocalIdentity] = {}
        for identity in identities:
            if identity.access_key_id in by_key:
                raise ValueError(f"access key {identity.access_key_id} is listed twice")
            by_key[identity.access_key_id] = identity
        self._identities = by_key
        self._secrets = {key: ident.secret_access_key for key, ident in by_key.items()}
        self._methods: dict[str, dict[str, Route]] = {}
        resources: dict[str, _Resource] = {}
        for route in routes:
            if route.function is not None and route.function not in self._functions:
                raise ValueError(f"{route.method} {route.resource} names no known function")
            method = route.method.upper()
            resource = resources.setdefault(route.resource, _Resource.compile(route.resource))
            methods = self._methods.setdefault(resource.template, {})
            if method in methods:
                raise ValueError(f"{method} {route.resource} is defined twice")
            methods[method] = route
        self._resources = tuple(resources.values())

    @property
    def api_id(self) -> str:
        return self._api_id

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        extended_id = base64.b64encode(secrets.token_bytes(12)).decode()[:16]
        try:
            response = self._handle(environ, request_id, extended_id)
        except _GatewayAnswer as answer:
            response = self._gateway_response(answer, request_id, extended_id)
        except Exception:  # a bug in the front itself: answer like API Gateway would, and log
            logger.exception("local API front failed (request %s)", request_id)
            crash = _GatewayAnswer(500, "Internal server error", "InternalServerErrorException")
            response = self._gateway_response(crash, request_id, extended_id)
        return response(environ, start_response)

    # -- steps ----------------------------------------------------------------------------------

    def _handle(self, environ: WSGIEnvironment, request_id: str, extended_id: str) -> Response:
        body = self._read_body(environ)
        incoming = _Incoming.from_environ(environ, body)
        matched = self._match(incoming.method, incoming.raw_path)
        try:
            access_key = verify_sigv4(
                incoming.method,
                incoming.url,
                incoming.headers,
                body,
                secrets=self._secrets,
                region=self._region,
                now=self._clock(),
            )
        except SignatureError as refusal:
            raise _GatewayAnswer(
                403,
                refusal.message,
                refusal.error_type,
                _SIGNATURE_RESPONSE_TYPES.get(refusal.error_type),
            ) from None
        identity = self._identities[access_key]
        event = self._event(incoming, matched, identity, request_id, extended_id)
        return self._invoke(event, request_id, extended_id, matched.route.function)

    def _read_body(self, environ: WSGIEnvironment) -> bytes:
        stream = get_input_stream(environ, safe_fallback=True)
        chunks: list[bytes] = []
        size = 0
        too_large = False
        try:
            while chunk := stream.read(_READ_CHUNK):
                size += len(chunk)
                if size > self._max_body_bytes:
                    too_large = True  # keep draining so the client sees the answer, not a reset
                    chunks.clear()
                elif not too_large:
                    chunks.append(chunk)
        except (OSError, ValueError, BadRequest) as problem:
            # werkzeug's chunked decoder raises OSError for a bad chunk size or a chunked body
            # cut short, its length-limited stream ClientDisconnected (a BadRequest) for a body
            # shorter than its Content-Length: the client's fault, answered as such (no 500, no
            # traceback).
            logger.info("unreadable request body: %s", problem)
            raise _GatewayAnswer(400, "Invalid request body", None, BAD_REQUEST_BODY) from None
        if too_large:
            raise _GatewayAnswer(413, "Request Too Long", None, REQUEST_TOO_LARGE)
        return b"".join(chunks)

    def _match(self, method: str, raw_path: str) -> _Matched:
        prefix = f"/{self._stage}"
        path = raw_path
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            path = raw_path[len(prefix) :] or "/"
        segments = path.split("/")[1:] if path != "/" else []
        best: tuple[_Resource, dict[str, str]] | None = None
        for resource in self._resources:
            params = resource.match(segments)
            if params is not None and (best is None or resource.specificity < best[0].specificity):
                best = (resource, params)
        missing = _GatewayAnswer(
            403, MISSING_AUTHENTICATION_TOKEN, MISSING_TOKEN_TYPE, MISSING_AUTHENTICATION
        )
        if best is None:
            raise missing
        resource, params = best
        methods = self._methods[resource.template]
        route = methods.get(method) or methods.get("ANY")
        if route is None:
            raise missing
        return _Matched(resource=resource, path=path, raw_params=params, route=route)

    def _event(
        self,
        incoming: _Incoming,
        matched: _Matched,
        identity: LocalIdentity,
        request_id: str,
        extended_id: str,
    ) -> dict[str, Any]:
        moment = self._clock()
        headers = dict(incoming.headers)
        forwarded = headers.get("X-Forwarded-For")
        source_ip = incoming.source_ip
        headers["X-Forwarded-For"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
        headers["X-Forwarded-Port"] = incoming.server_port
        headers["X-Forwarded-Proto"] = incoming.scheme
        headers.setdefault("X-Amzn-Trace-Id", _trace_id(moment))
        query, multi_query = _decode_query(incoming.raw_query)
        path_parameters = {name: unquote(value) for name, value in matched.raw_params.items()}
        text_body, is_base64 = _event_body(incoming.body, headers)
        caller = caller_id(identity)
        return {
            "resource": matched.resource.template,
            "path": matched.path,
            "httpMethod": incoming.method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": matched.resource.resource_id,
                "resourcePath": matched.resource.template,
                "httpMethod": incoming.method,
                "extendedRequestId": extended_id,
                "requestTime": _request_time(moment),
                "path": f"/{self._stage}{matched.path}",
                "accountId": self._account_id,
                "protocol": incoming.protocol,
                "stage": self._stage,
                "domainPrefix": incoming.host.split(".", 1)[0].split(":", 1)[0],
                "requestTimeEpoch": int(moment.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": identity.account_id,
                    "cognitoIdentityId": None,
                    "caller": caller,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": identity.access_key_id,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": identity.principal_arn,
                    "userAgent": headers.get("User-Agent"),
                    "user": caller,
                },
                "domainName": incoming.host,
                "apiId": self._api_id,
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    def _context(self, function: str | None = None) -> LambdaContext:
        return lambda_context(
            function or self._function_name,
            region=self._region,
            account_id=self._account_id,
            memory_limit_in_mb=self._memory_limit_in_mb,
            timeout_seconds=self._timeout_seconds,
            now=self._clock(),
        )

    def _invoke(
        self, event: dict[str, Any], request_id: str, extended_id: str, function: str | None
    ) -> Response:
        # Lambda sees JSON, not our objects: round-trip both ways as the service would.
        payload = json.loads(json.dumps(event))
        try:
            handler = self._functions[function] if function else self._handler
            result = handler(payload, self._context(function))
            result = json.loads(json.dumps(result))
        except Exception:
            name = function or self._function_name
            logger.exception("Lambda %s failed (request %s)", name, request_id)
            raise _GatewayAnswer(
                502, "Internal server error", "InternalServerErrorException"
            ) from None
        try:
            response = _proxy_response(result)
        except (TypeError, ValueError) as problem:  # binascii.Error is a ValueError
            logger.error(
                "Execution failed due to configuration error: Malformed Lambda proxy response "
                "(request %s): %s",
                request_id,
                problem,
            )
            raise _GatewayAnswer(
                502, "Internal server error", "InternalServerErrorException"
            ) from None
        self._stamp(response, request_id, extended_id)
        return response

    def _stamp(self, response: Response, request_id: str, extended_id: str) -> None:
        response.headers["x-amzn-RequestId"] = request_id
        response.headers["x-amz-apigw-id"] = extended_id
        if "X-Amzn-Trace-Id" not in response.headers:
            response.headers["X-Amzn-Trace-Id"] = _trace_id(self._clock())

    def gateway_response_type(self, response_type: str | None, status: int) -> str:
        """The type whose GatewayResponse answers: the specific one when the API customises it,
        else the DEFAULT_4XX / DEFAULT_5XX fallback, as API Gateway chooses."""
        if response_type is not None and response_type in self._responses:
            return response_type
        return DEFAULT_5XX if status >= 500 else DEFAULT_4XX

    def _gateway_response(
        self, answer: _GatewayAnswer, request_id: str, extended_id: str
    ) -> Response:
        chosen = self.gateway_response_type(answer.response_type, answer.status)
        spec = self._responses.get(chosen, GatewayResponse())
        fallback = self._responses.get(DEFAULT_5XX if answer.status >= 500 else DEFAULT_4XX)
        # A fallback's StatusCode applies to every type of its class without one of its own.
        status = spec.status or (fallback.status if fallback else None) or answer.status
        response = Response(
            spec.body(
                message=answer.message,
                response_type=answer.response_type or chosen,
                request_id=request_id,
            ),
            status=status,
            content_type="application/json",
        )
        for name, value in spec.headers.items():
            response.headers[name] = value
        if answer.error_type:
            response.headers["x-amzn-ErrorType"] = answer.error_type
        self._stamp(response, request_id, extended_id)
        return response
