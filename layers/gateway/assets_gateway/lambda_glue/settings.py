"""All configuration, parsed once from the environment into a typed object.

Nothing else in the gateway reads `os.environ`; the handler passes it here at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SettingsError(RuntimeError):
    """Raised at start-up with every missing or invalid variable named (never their values)."""


class Settings(BaseModel):
    # Each function validates one of these models, once, at init: built then (`defer_build`,
    # inherited by the subclasses), so no function's cold start builds the other two.
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    control_table_name: str = Field(alias="CONTROL_TABLE_NAME", min_length=3)
    quota_table_name: str = Field(alias="QUOTA_TABLE_NAME", min_length=3)
    # Cloudflare allows 1,200 calls in any 5 minutes per token; the guard stays below it: at
    # most this many calls in any 300 s (a tenth of it at once), see quota.CallBudget.
    global_budget_per_5_minutes: int = Field(
        default=1000, ge=2, le=1199, alias="GLOBAL_BUDGET_PER_5_MINUTES"
    )
    cloudflare_token_secret_id: str = Field(alias="CLOUDFLARE_TOKEN_SECRET_ID", min_length=1)
    cloudflare_api_base_url: str = Field(
        default="https://api.cloudflare.com/client/v4", alias="CLOUDFLARE_API_BASE_URL"
    )
    policy_cache_seconds: int = Field(default=30, ge=0, le=3600, alias="POLICY_CACHE_SECONDS")
    token_cache_seconds: int = Field(default=300, ge=0, le=86400, alias="TOKEN_CACHE_SECONDS")
    upstream_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, le=10, alias="UPSTREAM_CONNECT_TIMEOUT_SECONDS"
    )
    upstream_read_timeout_seconds: float = Field(
        default=15.0, gt=0, le=25, alias="UPSTREAM_READ_TIMEOUT_SECONDS"
    )
    # All attempts at Cloudflare (retries and their waits) end within this, inside the 25 s
    # function timeout.
    upstream_deadline_seconds: float = Field(
        default=20.0, gt=0, le=25, alias="UPSTREAM_DEADLINE_SECONDS"
    )
    upstream_attempts: int = Field(default=3, ge=1, le=5, alias="UPSTREAM_ATTEMPTS")
    circuit_failure_threshold: int = Field(
        default=5, ge=1, le=100, alias="CIRCUIT_FAILURE_THRESHOLD"
    )
    circuit_open_seconds: float = Field(default=30.0, gt=0, le=600, alias="CIRCUIT_OPEN_SECONDS")
    # A gzip body (Content-Encoding: gzip) may inflate to at most this.
    max_inflated_body_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, alias="MAX_INFLATED_BODY_BYTES"
    )
    max_request_body_bytes: int = Field(
        default=6 * 1024 * 1024, gt=0, alias="MAX_REQUEST_BODY_BYTES"
    )
    # Where decisions are recorded for admins' policy simulations (none: not recorded).
    decisions_table_name: str | None = Field(
        default=None, alias="DECISIONS_TABLE_NAME", min_length=3
    )
    decision_retention_days: int = Field(default=30, ge=1, le=365, alias="DECISION_RETENTION_DAYS")

    @field_validator("cloudflare_api_base_url")
    @classmethod
    def _http_url_without_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors(include_input=False)
            )
            raise SettingsError(f"invalid gateway configuration: {problems}") from None


class ManifestDoorSettings(Settings):
    """The S3 door's function needs, on top of the pipeline's settings, where manifests arrive,
    where idempotency records live and where outcomes are published."""

    manifest_bucket_name: str = Field(alias="MANIFEST_BUCKET_NAME", min_length=3)
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=3)
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME", min_length=1)
    # The queue's maxReceiveCount: the last attempt also writes the failure as the result.
    manifest_max_receive_count: int = Field(default=5, ge=1, alias="MANIFEST_MAX_RECEIVE_COUNT")
    # No Lambda payload limit applies to an object read from S3.
    max_manifest_object_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, alias="MAX_MANIFEST_OBJECT_BYTES"
    )
    idempotency_hours: int = Field(default=72, ge=1, le=24 * 30, alias="IDEMPOTENCY_HOURS")
    # Where a record refused for quota is sent back, delayed by Retry-After (see s3_holds);
    # without it such a refusal is written as the result at once.
    manifest_queue_url: str | None = Field(default=None, alias="MANIFEST_QUEUE_URL")
    # The queue's MessageRetentionPeriod: how long a record may wait for its quota in all.
    manifest_queue_retention_seconds: int = Field(
        default=345_600, ge=60, le=1_209_600, alias="MANIFEST_QUEUE_RETENTION_SECONDS"
    )


class AdminSettings(Settings):
    """The admin door's function: who its admins are, besides those the current policy names."""

    admin_principals: tuple[str, ...] = Field(default=(), alias="ADMIN_PRINCIPALS")

    @field_validator("admin_principals", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(arn.strip() for arn in value.split(",") if arn.strip())
        return value
