"""The org's Cloudflare API token, from Secrets Manager through Powertools Parameters.

The value lives only inside a `SecretStr` (whose repr and str are masked) and in the
Authorization header of the upstream request. Audit records carry a short SHA-256 fingerprint
(`redaction.fingerprint`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import SecretStr

from assets_gateway.domain.errors import TokenUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = Logger(child=True)


class TokenProvider:
    def __init__(
        self,
        *,
        secret_id: str,
        secretsmanager: SecretsManagerClient,
        max_age_seconds: int,
        min_refresh_interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._provider = SecretsProvider(boto3_client=secretsmanager)
        self._max_age = max_age_seconds
        self._min_refresh_interval = min_refresh_interval_seconds
        self._clock = clock
        self._last_forced: float | None = None

    def get(self, *, force_refresh: bool = False) -> SecretStr:
        """The token, cached; `force_refresh` re-reads it (after a rotation), at most once per
        interval so a stream of refusals does not become a stream of Secrets Manager calls."""
        if force_refresh:
            now = self._clock()
            if (
                self._last_forced is not None
                and now - self._last_forced < self._min_refresh_interval
            ):
                force_refresh = False
            else:
                self._last_forced = now
        try:
            # AWSCURRENT explicitly: without it some implementations serve a stale version after
            # rotation.
            value = self._provider.get(
                self._secret_id,
                max_age=self._max_age,
                force_fetch=force_refresh,
                VersionStage="AWSCURRENT",
            )
        except GetParameterError as exc:
            logger.error("token read failed", extra={"cause": type(exc.__context__).__name__})
            raise TokenUnavailable("the Cloudflare token is unavailable; retry later") from None
        token = value.strip() if isinstance(value, str) else ""
        if not token:
            logger.error("token secret is empty or binary")
            raise TokenUnavailable("the Cloudflare token is not configured")
        return SecretStr(token)
