"""The org's current policy as the doors read it: the published document and its version."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from assets_gateway.domain.policy import PolicyDocument


class StoredPolicy(BaseModel):
    """What the admin door publishes: `{"version": N, "policy": {...}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    policy: PolicyDocument


class PolicySource(Protocol):
    """The current policy; raises the domain's `PolicyUnavailable` when it cannot be read or
    none is published."""

    def current(self) -> StoredPolicy: ...
