"""What the benchmarks share: the generated manifest, the roomy policy, an admit-all quota gate,
in-memory stand-ins for the pipeline's other ports and a SigV4 client. Imported by the scripts
next to it (`python bench/<name>.py`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import boto3
import httpx
from pydantic import SecretStr

from assets_gateway.domain import quota
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.ports.audit import AuditRecord
from assets_gateway.ports.idempotency import KeyClaim
from assets_gateway.ports.policy_source import StoredPolicy
from assets_gateway.ports.quota import Ticket
from assets_gateway.ports.upstream import AttemptMeter, UpstreamAnswer
from assets_gateway_client.sigv4 import SigV4Auth
from gateway_local.api_front import LocalIdentity
from gateway_local.demo import demo_policy


def generated_manifest(entries: int) -> dict[str, dict[str, Any]]:
    """`entries` files under /assets/<n>/ with distinct 32-hex hashes and growing sizes."""
    return {
        f"/assets/{i // 100}/file-{i}.js": {
            "hash": hashlib.sha256(str(i).encode()).hexdigest()[:32],
            "size": 1000 + i,
        }
        for i in range(entries)
    }


def compact(document: Any) -> bytes:
    """Compact JSON, as httpx, the Cloudflare SDKs and wrangler send it."""
    return json.dumps(document, separators=(",", ":")).encode()


def manifest_body(entries: int) -> bytes:
    return compact({"manifest": generated_manifest(entries)})


def roomy_policy() -> dict[str, Any]:
    """The demo policy with quotas that never refuse: measure the pipeline, not the quotas."""
    policy = demo_policy()
    policy["teams"]["web"]["quotas"] = {"sessions_per_minute": 10**6, "sessions_per_day": 10**7}
    return policy


class AdmitAll:
    """A quota gate that admits everything in no time: quota arithmetic stays in the service,
    the store's I/O goes."""

    def charge(
        self,
        team: str,
        limits: Sequence[quota.Limit],
        charge: quota.Charge,
        now: float,
        request_id: str = "",
        *,
        claim: KeyClaim | None = None,
    ) -> Ticket:
        return Ticket(team=team, charge=charge, items=(), after=())

    def refund(self, ticket: Ticket) -> None:
        return None

    def permit(self, request_id: str, now: float) -> str | None:
        return request_id

    def take_back(self, call_id: str, admitted_at: float) -> bool:
        return False

    def follow(
        self, items: Sequence[quota.RatelimitItem], now: float, seen: quota.BudgetState | None
    ) -> None:
        return None

    def usage(self, team: str, limits: Sequence[quota.Limit], now: float) -> list[quota.LimitState]:
        return []

    def usage_and_budget(
        self, team: str, limits: Sequence[quota.Limit], now: float
    ) -> tuple[list[quota.LimitState], quota.BudgetState]:
        return [], quota.CallBudget.for_ceiling(1000).state(0, 0)

    def open_cooldown(self, until: float) -> None:
        return None


def signed_client(identity: LocalIdentity) -> httpx.Client:
    """httpx signing every request with SigV4, as a team's code calls the gateway."""
    aws = boto3.Session(
        aws_access_key_id=identity.access_key_id,
        aws_secret_access_key=identity.secret_access_key,
        region_name="us-east-1",
    )
    return httpx.Client(auth=SigV4Auth.from_session(aws), timeout=60)


class Records:
    """An audit sink that keeps what it is given."""

    def __init__(self) -> None:
        self.items: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> None:
        self.items.append(record)


class FixedPolicy:
    def __init__(self, stored: StoredPolicy) -> None:
        self._stored = stored

    def current(self) -> StoredPolicy:
        return self._stored


class FixedToken:
    def get(self, *, force_refresh: bool = False) -> SecretStr:
        return SecretStr("bench-token")


class FixedCloudflare:
    """Answers every session with the same 200 body, calling nothing."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def create_upload_session(
        self, target: SessionTarget, body: bytes, token: SecretStr, meter: AttemptMeter | None
    ) -> UpstreamAnswer:
        return UpstreamAnswer(200, self._answer, {"content-type": "application/json"}, 0.0)
