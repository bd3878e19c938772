"""`Idempotency-Key` records of the session door: a key is claimed by the quota charge that
admits its request (one transaction for both, issue 15), and its record then keeps the answer or
is given up (`key_records` implements it over DynamoDB).

A request refused before the charge claims nothing and leaves no record, so its retry is judged
again (as Stripe does with requests that fail validation); one the charge admits holds the key
until its answer is final."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assets_gateway.ports.sessions import SessionResult

# Marks a retry's answer as the first one, given again.
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class KeyClaim:
    """A key to claim for one request: its record's id (the key, the caller and the target,
    hashed), the hash of the request's body, and how long a request still running holds it
    (the function's remaining time: a claim by one that died frees itself after that)."""

    record_id: str
    payload_hash: str
    running_ms: int


@dataclass(frozen=True)
class KeyRecord:
    """What a claimed key's record held: the body's hash it was claimed with, and the first
    answer once it is final (None while the first request is still running)."""

    payload_hash: str | None
    answer: SessionResult | None


class KeyClaimed(Exception):
    """The charge found the key claimed, and wrote nothing (quota included)."""

    def __init__(self, record: KeyRecord) -> None:
        super().__init__("the Idempotency-Key is already claimed")
        self.record = record


class KeyRecords(Protocol):
    """What the door does with a key its charge claimed. Never fails a request: a record that
    cannot be written is logged, and the claim frees itself when its time runs out."""

    def complete(self, claim: KeyClaim, answer: SessionResult, now: float) -> None:
        """Keep the final answer for retries (an hour, as long as its session JWT)."""
        ...

    def release(self, claim: KeyClaim) -> None:
        """Give the key up: the answer was worth retrying (429, 5xx) or never came."""
        ...
