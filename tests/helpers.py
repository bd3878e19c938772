"""Small builders shared by tests (no fakes of our own code)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx

from assets_gateway.domain.errors import GatewayError
from assets_gateway_client.sigv4 import SigV4Auth
from gateway_local.api_front import LocalIdentity
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_SCRIPT

if TYPE_CHECKING:
    import cloudflare

    from gateway_local.stack import LocalStack

# Every test's HTTP client waits this long for an answer: far above any answer on a busy
# machine, so a client timeout is never what a test measures by accident (timeouts under test
# are set explicitly, against an emulator that never answers: Fault(hold=True)).
HTTP_TIMEOUT = 60.0


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
    return httpx.Client(auth=SigV4Auth.from_session(aws_session(identity)), timeout=HTTP_TIMEOUT)


def session_url(
    stack: LocalStack, script: str = WEB_SCRIPT, *, account: str = DEMO_ACCOUNT_ID
) -> str:
    """The API door's create-session URL on the local stack (the demo account's web script
    unless told otherwise)."""
    return f"{stack.base_url}/accounts/{account}/workers/scripts/{script}/assets-upload-session"


def cloudflare_sdk(stack: LocalStack, identity: LocalIdentity) -> cloudflare.Cloudflare:
    """Cloudflare's official Python SDK pointed at the gateway and signing as `identity`: the
    SDK's own token goes unused, the gateway holds the org's."""
    import cloudflare  # the SDK is large: only the tests that use it pay for the import

    return cloudflare.Cloudflare(
        api_token="unused-the-gateway-holds-the-token",
        base_url=stack.base_url,
        http_client=signed_client(identity),
        max_retries=0,
    )


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


def in_one_window(scenario: Callable[[], None], *, window_seconds: int = 60) -> None:
    """Run `scenario`, whose counts assume one fixed quota window (aligned on the epoch, as the
    gateway's are), so that it holds however slow the machine is.

    The gateway's windows follow the wall clock, which tests do not control: a scenario that
    straddles a window edge sees its counts split in two. A failure is excused only when an
    edge passed while the scenario ran; then it runs once more from scratch (it lasts far less
    than a window, so the second run cannot straddle one too). Any other failure is reported.
    `scenario` must set up its own state (policy, cleared counters) each time.
    """
    started = time.time()
    try:
        scenario()
    except AssertionError:
        if started // window_seconds == time.time() // window_seconds:
            raise  # no edge passed: a real failure
        scenario()


def quota_items(stack: LocalStack) -> list[dict[str, Any]]:
    """Every item of the quota table, read consistently."""
    dynamodb = stack.aws.client("dynamodb", endpoint_url=stack.moto.endpoint_url)
    items: list[dict[str, Any]] = dynamodb.scan(
        TableName=stack.names.quota_table, ConsistentRead=True
    )["Items"]
    return items


def numbers_of(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, int]:
    """The item's numeric attributes among `names`."""
    return {name: int(value["N"]) for name, value in item.items() if name in names}


def traced_peak(read: Callable[[], object]) -> tuple[int, object]:
    """tracemalloc's peak while `read()` runs (what existed before excluded), and its result or
    the GatewayError it raised."""
    tracemalloc.start()
    try:
        try:
            outcome = read()
        except GatewayError as error:
            outcome = error
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_section_blocks(heading: str, language: str) -> list[str]:
    """The ```language blocks under the README's `heading` line ("## Deploying without Node"),
    up to the next heading of its level or higher (its subsections included)."""
    lines = README.read_text(encoding="utf-8").splitlines(keepends=True)
    level = len(heading.split(" ", 1)[0])
    blocks: list[str] = []
    fence: str | None = None  # the language of the block being read, "" for another's
    for line in lines[lines.index(heading + "\n") + 1 :]:
        if fence is None and line.startswith("```"):
            fence = line[3:].strip()
            if fence == language:
                blocks.append("")
        elif fence is not None and line.startswith("```"):
            fence = None
        elif fence == language:
            blocks[-1] += line
        elif fence is None and line.startswith("#") and len(line.split(" ", 1)[0]) <= level:
            break
    return blocks
