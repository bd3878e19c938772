"""SigV4 for the gateway from the AWS credential chain: which credentials, which region.

boto3 takes ~0.3 s to import: only signing needs it (not `upload --manifest-only`), so it is
imported when a signer is made.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from assets_gateway_client import environment
from assets_gateway_client.answers import SetupError

if TYPE_CHECKING:
    import boto3

    from assets_gateway_client.sigv4 import SigV4Auth

__all__ = ["gateway_auth", "profile_auth", "region_from_url"]

_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", re.IGNORECASE)


def region_from_url(url: str) -> str | None:
    """The region of an `execute-api` URL (`https://id.execute-api.eu-west-1.amazonaws.com`)."""
    match = _REGION_IN_URL.search(url)
    return match.group(1).lower() if match else None


def gateway_auth(
    gateway_url: str, *, session: boto3.Session | None = None, region: str | None = None
) -> SigV4Auth:
    """SigV4 for the gateway: the session's credentials (the default chain when None), signed
    for `region`, else the region in the gateway's URL, else the session's region."""
    import boto3  # noqa: PLC0415 - slow to import; only signing needs it

    from assets_gateway_client.sigv4 import SigV4Auth  # noqa: PLC0415

    aws = session if session is not None else boto3.Session()
    resolved = region or region_from_url(gateway_url) or aws.region_name or environment.aws_region()
    if not resolved:
        raise SetupError(
            "no AWS region to sign for: pass region= (--region), or set AWS_REGION "
            "(the gateway's region, e.g. us-east-1)"
        )
    try:
        return SigV4Auth.from_session(aws, resolved)
    except ValueError as error:
        raise SetupError(f"cannot sign requests to the gateway: {error}") from error


def profile_auth(gateway_url: str, *, profile: str | None, region: str | None) -> SigV4Auth:
    """`gateway_auth` for a command line: the named AWS profile (else the default chain), any
    credential problem reported as a SetupError."""
    import boto3  # noqa: PLC0415 - slow to import; only signing needs it
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415

    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        return gateway_auth(gateway_url, session=session, region=region)
    except BotoCoreError as error:
        raise SetupError(f"AWS credentials: {error}") from error
