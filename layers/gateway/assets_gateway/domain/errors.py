"""One error hierarchy: each domain error carries its envelope code and HTTP status.

The mapping to an HTTP answer happens once (`envelope.error_reply`); nothing matches on message
text. Messages are written for the caller: they never contain secrets or internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a request was refused: a message and, when a field is at fault, its pointer."""

    message: str
    pointer: str | None = None


class GatewayError(Exception):
    """Base of every refusal the gateway answers itself, in Cloudflare's envelope."""

    code: int = 19099
    status: int = 500

    def __init__(
        self,
        message: str,
        *,
        pointer: str | None = None,
        reasons: Sequence[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer
        self.reasons = tuple(reasons)
        self.headers = dict(headers or {})


class MalformedRequest(GatewayError):
    """Body not JSON, not an object, wrong content type, or malformed path identifiers."""

    code, status = 19000, 400


class InvalidManifest(GatewayError):
    code, status = 19001, 400


class ManifestTooLarge(GatewayError):
    code, status = 19002, 413


class CallerNotAllowed(GatewayError):
    """The caller maps to no team, or its team is suspended."""

    code, status = 19010, 403


class PolicyDenied(GatewayError):
    code, status = 19011, 403


class TokenUnavailable(GatewayError):
    code, status = 19030, 503


class UpstreamFailure(GatewayError):
    """Cloudflare unreachable, timed out or answered something we cannot trust."""

    code = 19031
    # Whether the failed request reached Cloudflare (a connection error never did): Cloudflare
    # counts the ones that did against the org token, and so does the gateway's budget.
    reached: bool = True

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class CircuitOpen(UpstreamFailure):
    """Cloudflare failed repeatedly: calls pause for a while and are refused at once."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, status=503)
        self.headers["Retry-After"] = str(retry_after)


class RouteNotFound(GatewayError):
    """Same code and wording Cloudflare uses for a path it cannot route."""

    code, status = 7003, 404


class InternalError(GatewayError):
    code, status = 19099, 500


class PolicyUnavailable(GatewayError):
    """The policy could not be read (store down, nothing published, stored document invalid)."""

    code, status = 19012, 503


class QuotaExceeded(GatewayError):
    """The team used up one of its quotas for the current window."""

    code, status = 19020, 429


class GlobalBudgetExceeded(GatewayError):
    """The org-wide Cloudflare budget is spent, or Cloudflare asked the gateway to back off."""

    code, status = 19021, 429


class QuotaUnavailable(GatewayError):
    """The quota store cannot be reached: the gateway fails closed to protect the org token."""

    code, status = 19022, 503


class IdempotencyConflict(GatewayError):
    """An Idempotency-Key came back with a different request, or while its first use runs."""

    code, status = 19040, 409


class GatewayStopped(GatewayError):
    """The org's admins engaged the kill switch: the session door refuses every request."""

    code, status = 19013, 503


class AdminOnly(GatewayError):
    """The admin door is for the principals listed as admins (template or current policy)."""

    code, status = 19050, 403


class PolicyInvalid(GatewayError):
    """A proposed policy fails validation; `reasons` carry one problem each, with pointers."""

    code, status = 19051, 400

    def __init__(
        self, message: str, *, reasons: Sequence[Problem], warnings: Sequence[Problem] = ()
    ) -> None:
        super().__init__(message, reasons=reasons)
        self.warnings = tuple(warnings)


class PolicyVersionConflict(GatewayError):
    """If-Match names a version that is no longer the current one: someone published first."""

    code, status = 19052, 409


class PreconditionRequired(GatewayError):
    """A publish without If-Match could silently overwrite someone else's change."""

    code, status = 19053, 428


class AdminNotFound(GatewayError):
    """An admin route names something that does not exist (a team, a policy version)."""

    code, status = 19054, 404


class DecisionsUnavailable(GatewayError):
    """The recorded decisions cannot be read (a simulation needs them)."""

    code, status = 19055, 503


class InvalidWorkerUpload(GatewayError):
    """A Worker upload body (multipart/form-data) or its metadata part is malformed."""

    code, status = 19060, 400


class WorkerUploadTooLarge(GatewayError):
    """A Worker upload exceeds a ceiling: body, inflated body, parts, one part's headers or the
    metadata."""

    code, status = 19061, 413


class DeployDenied(GatewayError):
    """The deploy policy refuses a Worker upload, deployment or setting; `reasons` carry every
    problem. Never Cloudflare's 10000: wrangler would take it for a bad token."""

    code, status = 19062, 403


class DeployQuotaExceeded(GatewayError):
    """The team used up one of its deploy quotas for the current window (Retry-After,
    RateLimit headers)."""

    code, status = 19063, 429


class InvalidDeployRequest(GatewayError):
    """A deployments, script-settings or subdomain body is malformed."""

    code, status = 19064, 400
