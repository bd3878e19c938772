"""The org's Cloudflare API token, from Secrets Manager through Powertools Parameters.

The value lives only inside a `SecretStr` (whose repr and str are masked) and in the
Authorization header of the upstream request. Audit records carry a short SHA-256 fingerprint.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import SecretStr

from assets_gateway.errors import TokenUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = Logger(child=True)


def fingerprint(token: SecretStr) -> str:
    return hashlib.sha256(token.get_secret_value().encode()).hexdigest()[:12]


class TokenProvider:
    def __init__(
        self, *, secret_id: str, secretsmanager: SecretsManagerClient, max_age_seconds: int
    ) -> None:
        self._secret_id = secret_id
        self._provider = SecretsProvider(boto3_client=secretsmanager)
        self._max_age = max_age_seconds

    def get(self, *, force_refresh: bool = False) -> SecretStr:
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
