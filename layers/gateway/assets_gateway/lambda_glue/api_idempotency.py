"""`Idempotency-Key` on the API door (Powertools Idempotency, records in the ControlTable).

A retried request with the same key, from the same principal, for the same target and body gets
the first answer again — without calling Cloudflare or charging quota. The same key with another
body is a caller bug: 409 19040. Only final answers are remembered (2xx, and 4xx but 429): after a
429 or 5xx the caller's retry with the same key really runs again. Records live an hour, as long
as the session JWT they hold.

A replay hands that JWT out again, so it is a decision like any other (`SessionService.replay`):
refused while the kill switch is engaged or the caller's team is suspended or no longer its own,
and audited with the first request's id. Records are keyed `api-session#<hash>`, the only
ControlTable items the session function may read or write besides `policy#current` (IAM
`dynamodb:LeadingKeys` in template.yaml).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from assets_gateway.domain.envelope import Reply, error_reply
from assets_gateway.domain.errors import (
    GatewayError,
    IdempotencyConflict,
    IdempotencyUnavailable,
    MalformedRequest,
)
from assets_gateway.doors.session import SessionService
from assets_gateway.ports.sessions import Outcome, SessionRequest, SessionResult

logger = Logger(child=True)

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
# template.yaml scopes the session function's ControlTable access to `api-session#*` keys.
KEY_PREFIX = "api-session"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
RECORD_SECONDS = 3600


class _NotFinal(Exception):
    """An answer worth retrying (429, 5xx): returned to the caller, never remembered."""

    def __init__(self, result: SessionResult) -> None:
        super().__init__(result.reply.status)
        self.result = result


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    if isinstance(response, dict):
        response["replayed"] = True
    return response


class IdempotentSessions:
    def __init__(self, service: SessionService, persistence: BasePersistenceLayer) -> None:
        self._service = service
        self._config = IdempotencyConfig(
            event_key_jmespath="[key, principal, target]",
            payload_validation_jmespath="body_sha256",
            expires_after_seconds=RECORD_SECONDS,
            response_hook=_mark_replayed,
        )
        self._once = idempotent_function(
            data_keyword_argument="claim",
            persistence_store=persistence,
            config=self._config,
            key_prefix=KEY_PREFIX,
        )(self._first_time)

    def register_lambda_context(self, context: LambdaContext) -> None:
        self._config.register_lambda_context(context)

    def create_session(self, request: SessionRequest, key: str | None) -> SessionResult:
        if key is None or request.dry_run:
            return self._service.create_session(request)
        if not _KEY.fullmatch(key):
            return _refusal(
                MalformedRequest("Idempotency-Key must be 1 to 255 visible ASCII characters"),
                request,
            )
        claim = {
            "key": key,
            "principal": request.caller.principal,
            "target": [
                request.target.account_id,
                request.target.namespace,
                request.target.script_name,
            ],
            "body_sha256": hashlib.sha256(request.body).hexdigest(),
        }
        try:
            stored = self._once(claim=claim, request=request)
        except _NotFinal as not_final:
            return not_final.result
        except IdempotencyValidationError:
            return _refusal(
                IdempotencyConflict("this Idempotency-Key was already used with another request"),
                request,
            )
        except IdempotencyAlreadyInProgressError:
            return _refusal(
                IdempotencyConflict(
                    "a request with this Idempotency-Key is still running; retry shortly"
                ),
                request,
            )
        except IdempotencyPersistenceLayerError:
            logger.error("idempotency records unavailable")
            return _refusal(
                IdempotencyUnavailable("idempotency records are unavailable; retry later"), request
            )
        headers = dict(stored["headers"])
        first = SessionResult(
            Reply(stored["status"], stored["body"].encode(), headers),
            Outcome(stored["outcome"]),
            team=stored.get("team"),  # absent from records written before replays were checked
        )
        if not stored.get("replayed"):
            return first
        first_request_id = headers.get("X-Request-Id")
        # This request's own id: the one its audit record (with `replay_of`) is found by.
        headers["X-Request-Id"] = request.request_id
        headers[REPLAYED_HEADER] = "true"
        return self._service.replay(request, first, first_request_id=first_request_id)

    def _first_time(self, claim: dict[str, Any], request: SessionRequest) -> dict[str, Any]:
        result = self._service.create_session(request)
        status = result.reply.status
        if status == 429 or status >= 500:
            raise _NotFinal(result)
        return {
            "status": status,
            "headers": dict(result.reply.headers),
            "body": result.reply.body.decode("utf-8", errors="replace"),
            "outcome": result.outcome.value,
            "team": result.team,
        }


def _refusal(error: GatewayError, request: SessionRequest) -> SessionResult:
    return SessionResult(error_reply(error, request_id=request.request_id), Outcome.REFUSED_REQUEST)
