"""Server-side AWS SigV4 verification, as API Gateway does it for AWS_IAM methods.

The request is rebuilt from its method, URL, body and *only* the headers named in SignedHeaders,
then botocore's own SigV4 steps (canonical request, string to sign, signature) recompute the
signature at the request's X-Amz-Date; `hmac.compare_digest` compares. Refusals carry the
message and `x-amzn-ErrorType` API Gateway would answer with.

Canonicalisation differs between signers, so a few known forms are tried (each is still an HMAC
over the method, path, query, signed headers and body hash):

- AWS's rule for non-S3 services (what API Gateway and botocore use): the path normalised and
  URI-encoded once more (`%20` becomes `%2520`); query pairs decoded, re-encoded and sorted.
- botocore's query form: the raw `key=value` pairs sorted without re-encoding (httpx sends
  spaces in parameters as `+`, which botocore signs as is).
- curl 7.88 (`--aws-sigv4`): the path and the query exactly as sent, neither re-encoded nor
  sorted (curl 8.x later switched to AWS's rule).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import SIGV4_TIMESTAMP
from botocore.auth import SigV4Auth as _BotocoreSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import normalize_url_path

__all__ = [
    "ALGORITHM",
    "MAX_CLOCK_SKEW",
    "MISSING_AUTHENTICATION_TOKEN",
    "SIGNATURE_MISMATCH",
    "UNRECOGNIZED_CLIENT",
    "ParsedAuthorization",
    "SignatureError",
    "parse_authorization",
    "verify_sigv4",
]

logger = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=5)

MISSING_AUTHENTICATION_TOKEN = "Missing Authentication Token"  # noqa: S105 (a message)
UNRECOGNIZED_CLIENT = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)

MISSING_TOKEN_TYPE = "MissingAuthenticationTokenException"  # noqa: S105 (an error type)
INCOMPLETE_TYPE = "IncompleteSignatureException"
INVALID_TYPE = "InvalidSignatureException"
UNRECOGNIZED_TYPE = "UnrecognizedClientException"


class SignatureError(Exception):
    """A refused signature: `message` is API Gateway's text, `error_type` its x-amzn-ErrorType."""

    def __init__(self, message: str, error_type: str = INVALID_TYPE) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    scope_terminator: str
    signed_headers: tuple[str, ...]
    signature: str


def _missing_equal_sign(authorization: str) -> SignatureError:
    digest = base64.b64encode(hashlib.sha256(authorization.encode()).digest()).decode()
    return SignatureError(
        "Invalid key=value pair (missing equal-sign) in Authorization header "
        f"(hashed with SHA-256 and encoded with Base64): '{digest}'.",
        INCOMPLETE_TYPE,
    )


def parse_authorization(authorization: str, *, has_date: bool = True) -> ParsedAuthorization:
    """Parse `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    algorithm, _, rest = authorization.strip().partition(" ")
    params: dict[str, str] = {}
    for part in rest.split(","):
        item = part.strip()
        if not item:
            continue
        key, equal, value = item.partition("=")
        if not equal:
            raise _missing_equal_sign(authorization)
        params[key.strip()] = value.strip()
    problems = [
        f"Authorization header requires '{name}' parameter. "
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not has_date:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        )
    if problems:
        raise SignatureError("".join(problems) + f"Authorization={authorization}", INCOMPLETE_TYPE)
    if algorithm != ALGORITHM:
        raise SignatureError(
            f"Unsupported AWS 'algorithm': '{algorithm}' (only '{ALGORITHM}' is accepted).",
            INCOMPLETE_TYPE,
        )
    credential = params["Credential"]
    scope = credential.split("/")
    if len(scope) != 5 or not all(scope):
        raise SignatureError(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'",
            INCOMPLETE_TYPE,
        )
    return ParsedAuthorization(
        access_key_id=scope[0],
        scope_date=scope[1],
        scope_region=scope[2],
        scope_service=scope[3],
        scope_terminator=scope[4],
        signed_headers=tuple(name.strip().lower() for name in params["SignedHeaders"].split(";")),
        signature=params["Signature"],
    )


def _request_timestamp(headers: Mapping[str, str]) -> tuple[str, str, datetime]:
    """The signing timestamp (SigV4 basic format), the header it came from, and its instant."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        value = amz_date.strip()
        try:
            moment = datetime.strptime(value, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        except ValueError:
            raise SignatureError(
                f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601",
                INCOMPLETE_TYPE,
            ) from None
        return value, "X-Amz-Date", moment
    date = headers["date"]
    try:
        moment = parsedate_to_datetime(date).astimezone(UTC)
    except (TypeError, ValueError):
        raise SignatureError(
            f"Unable to parse the 'Date' header: '{date}'.", INCOMPLETE_TYPE
        ) from None
    return moment.strftime(SIGV4_TIMESTAMP), "Date", moment


def _check_clock(timestamp: str, moment: datetime, now: datetime) -> None:
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    now_text = now.strftime(SIGV4_TIMESTAMP)
    if moment < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
        raise SignatureError(
            f"Signature expired: {timestamp} is now earlier than {earliest} ({now_text} - 5 min.)",
            INVALID_TYPE,
        )
    if moment > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
        raise SignatureError(
            f"Signature not yet current: {timestamp} is still later than {latest} "
            f"({now_text} + 5 min.)",
            INVALID_TYPE,
        )


_PathForm = Literal["aws", "raw"]
_QueryForm = Literal["aws", "sorted", "raw"]

# (path form, query form): AWS's rule, botocore's query variant, curl 7.88.
_CANONICAL_FORMS: tuple[tuple[_PathForm, _QueryForm], ...] = (
    ("aws", "aws"),
    ("aws", "sorted"),
    ("raw", "raw"),
)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((key, value))
    return pairs


class _Recomputer(_BotocoreSigV4Auth):
    """botocore's SigV4 steps, fed exactly the signed headers and one canonicalisation form."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        service: str,
        region: str,
        signed: HTTPHeaders,
        path_form: _PathForm,
        query_form: _QueryForm,
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._path_form = path_form
        self._query_form = query_form

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # botocore would drop some names (user-agent...) and add host; the client's list rules.
        return self._signed

    def _normalize_url_path(self, path: str) -> str:
        if self._path_form == "raw":
            return path or "/"
        return quote(normalize_url_path(path), safe="/~")

    def canonical_query_string(self, request: AWSRequest) -> str:
        query = urlsplit(request.url or "").query
        if self._query_form == "raw":
            return query
        pairs = _query_pairs(query)
        if self._query_form == "aws":
            pairs = [
                (quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~"))
                for key, value in pairs
            ]
        return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _check_scope(
    parsed: ParsedAuthorization, *, region: str, service: str, timestamp: str, date_source: str
) -> None:
    if parsed.scope_terminator != "aws4_request":
        raise SignatureError(
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{parsed.scope_terminator}'. ",
            INVALID_TYPE,
        )
    if parsed.scope_region != region:
        raise SignatureError(
            f"Credential should be scoped to a valid region, not '{parsed.scope_region}'. ",
            INVALID_TYPE,
        )
    if parsed.scope_service != service:
        raise SignatureError(
            f"Credential should be scoped to correct service: '{service}'. ", INVALID_TYPE
        )
    if parsed.scope_date != timestamp[:8]:
        raise SignatureError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{parsed.scope_date}' != '{timestamp[:8]}', from '{date_source}'.",
            INVALID_TYPE,
        )


def _signed_headers(
    parsed: ParsedAuthorization, lowered: Mapping[str, str], body: bytes
) -> HTTPHeaders:
    """The headers the signature covers, as received; refuses what must be signed but is not."""
    if "host" not in parsed.signed_headers:
        raise SignatureError(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            INCOMPLETE_TYPE,
        )
    if "x-amz-security-token" in lowered and "x-amz-security-token" not in parsed.signed_headers:
        raise SignatureError(
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
            INCOMPLETE_TYPE,
        )
    signed = HTTPHeaders()
    for name in parsed.signed_headers:
        value = lowered.get(name)
        if value is None:  # a header the signature covers is gone: cannot match
            raise SignatureError(SIGNATURE_MISMATCH, INVALID_TYPE)
        signed[name] = value
    declared_hash = signed.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash.strip() != hashlib.sha256(body).hexdigest():
        # botocore trusts this header instead of hashing the body: the body must match it.
        raise SignatureError(SIGNATURE_MISMATCH, INVALID_TYPE)
    return signed


def _signature_matches(
    request: AWSRequest,
    parsed: ParsedAuthorization,
    credentials: Credentials,
    signed: HTTPHeaders,
    *,
    region: str,
    service: str,
) -> bool:
    tried: set[str] = set()
    for path_form, query_form in _CANONICAL_FORMS:
        signer = _Recomputer(
            credentials,
            service=service,
            region=region,
            signed=signed,
            path_form=path_form,
            query_form=query_form,
        )
        canonical_request = signer.canonical_request(request)
        if canonical_request in tried:
            continue
        tried.add(canonical_request)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        expected = signer.signature(string_to_sign, request)
        if hmac.compare_digest(expected, parsed.signature):
            return True
    logger.debug(
        "SigV4 mismatch for %s; canonical requests tried:\n%s",
        parsed.access_key_id,
        "\n----\n".join(sorted(tried)),
    )
    return False


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Mapping[str, str],
    region: str,
    service: str = "execute-api",
    now: datetime,
) -> str:
    """Return the access key id whose signature the request carries, or raise SignatureError.

    `url` is the URL as sent (scheme://host/raw-path?raw-query); `headers` as received (any
    case); `secrets` maps access key ids to secret access keys.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization")
    if authorization is None or not authorization.strip():
        raise SignatureError(MISSING_AUTHENTICATION_TOKEN, MISSING_TOKEN_TYPE)
    has_date = "x-amz-date" in lowered or "date" in lowered
    parsed = parse_authorization(authorization, has_date=has_date)
    timestamp, date_source, moment = _request_timestamp(lowered)
    _check_scope(
        parsed, region=region, service=service, timestamp=timestamp, date_source=date_source
    )
    signed = _signed_headers(parsed, lowered, body)
    _check_clock(timestamp, moment, now)

    token = lowered.get("x-amz-security-token")
    secret = secrets.get(parsed.access_key_id)
    if secret is None or (parsed.access_key_id.startswith("ASIA") and not token):
        # Temporary (ASIA...) keys are only valid together with their session token.
        raise SignatureError(UNRECOGNIZED_CLIENT, UNRECOGNIZED_TYPE)

    request = AWSRequest(method=method.upper(), url=url, headers=dict(signed.items()), data=body)
    request.context["timestamp"] = timestamp
    credentials = Credentials(parsed.access_key_id, secret, token)
    if not _signature_matches(request, parsed, credentials, signed, region=region, service=service):
        raise SignatureError(SIGNATURE_MISMATCH, INVALID_TYPE)
    return parsed.access_key_id
