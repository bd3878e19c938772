"""`Idempotency-Key` on the API door: a retried request with the same key, from the same
principal, for the same target and body gets the first answer again, without calling Cloudflare
or charging quota. The same key with another body is a caller bug: 409 19040.

The key is claimed by the quota charge that admits the request, in the same transaction
(`ports.idempotency`, issue 15: two AWS round trips for a keyed request, the charge and the
answer kept). A request refused before the charge (caller, policy, manifest) claims nothing and
its retry is judged again; the answer of one the charge admitted is kept when final (2xx, and 4xx
but 429); after a 429 or 5xx the caller's retry with the same key really runs again. Records live
an hour, as long as the session JWT they hold, keyed `api-session#<hash>`: the only ControlTable
items the session function may write besides `policy#current` (IAM `dynamodb:LeadingKeys` in
template.yaml). Their shape and hashes are Powertools' (`key_records`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.domain.envelope import error_reply
from assets_gateway.domain.errors import MalformedRequest
from assets_gateway.doors.session import SessionService
from assets_gateway.ports.idempotency import KeyClaim
from assets_gateway.ports.sessions import Outcome, SessionRequest, SessionResult

IDEMPOTENCY_HEADER = "idempotency-key"
# template.yaml scopes the session function's ControlTable access to `api-session#*` keys.
KEY_PREFIX = "api-session"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# How long a claim is held without a Lambda context to bound it (the function's timeout).
DEFAULT_RUNNING_MS = 30_000


def _digest(value: object) -> str:
    """Powertools' hash of a JSON value (MD5 as an identifier, not for security)."""
    text = json.dumps(value, sort_keys=True)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def key_claim(request: SessionRequest, key: str, running_ms: int) -> KeyClaim:
    """The claim of `key` for this request: the record Powertools kept for the same key, caller
    and target (its id), and the body's hash it validated retries with."""
    target = request.target
    scope = [
        key,
        request.caller.principal,
        [target.account_id, target.namespace, target.script_name],
    ]
    return KeyClaim(
        record_id=f"{KEY_PREFIX}#{_digest(scope)}",
        payload_hash=_digest(hashlib.sha256(request.body).hexdigest()),
        running_ms=running_ms,
    )


class IdempotentSessions:
    def __init__(self, service: SessionService) -> None:
        self._service = service
        self._context: LambdaContext | None = None

    def register_lambda_context(self, context: LambdaContext) -> None:
        self._context = context

    def create_session(self, request: SessionRequest, key: str | None) -> SessionResult:
        if key is None or request.dry_run:
            return self._service.create_session(request)
        if not _KEY.fullmatch(key):
            error = MalformedRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
            return SessionResult(
                error_reply(error, request_id=request.request_id), Outcome.REFUSED_REQUEST
            )
        running_ms = (
            self._context.get_remaining_time_in_millis()
            if self._context is not None
            else DEFAULT_RUNNING_MS
        )
        claim = key_claim(request, key, running_ms)
        return self._service.create_session(replace(request, claim=claim))
