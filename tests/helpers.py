"""Small builders shared by tests (no fakes of our own code)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import httpx

from assets_gateway.client.sigv4 import SigV4Auth
from gateway_local.api_front import LocalIdentity


def content_hash(content: bytes) -> str:
    """Any 32-hex id works for Cloudflare; tests use a truncated SHA-256 of the content."""
    return hashlib.sha256(content).hexdigest()[:32]


def manifest_of(files: dict[str, bytes]) -> dict[str, Any]:
    return {path: {"hash": content_hash(data), "size": len(data)} for path, data in files.items()}


def numbered_files(count: int, prefix: str = "/assets/file") -> dict[str, bytes]:
    return {f"{prefix}-{i}.txt": f"content of file {i}".encode() for i in range(count)}


def aws_session(identity: LocalIdentity) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=identity.access_key_id,
        aws_secret_access_key=identity.secret_access_key,
        region_name="us-east-1",
    )


def signed_client(identity: LocalIdentity) -> httpx.Client:
    """An httpx client that signs every request with the identity's SigV4 credentials."""
    return httpx.Client(auth=SigV4Auth.from_session(aws_session(identity)), timeout=30)


@contextlib.contextmanager
def every_log_record(handler: logging.Handler) -> Iterator[None]:
    """`handler` sees every record of every logger at DEBUG, formatted with the gateway's JSON
    formatter (as the records would be shipped), until the block ends."""
    gateway_logger = logging.getLogger("assets-gateway")
    formatter = next((h.formatter for h in gateway_logger.handlers if h.formatter), None)
    if formatter is not None:
        handler.setFormatter(formatter)
    loggers = [logging.getLogger(), gateway_logger]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for logger, level in previous:
            logger.removeHandler(handler)
            logger.setLevel(level)
