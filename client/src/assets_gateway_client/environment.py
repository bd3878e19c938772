"""Where the gateway and Cloudflare are: the same environment for the command line and the
Python API, so `ASSETS_GATEWAY_URL` and `CLOUDFLARE_API_URL` set once serve both."""

from __future__ import annotations

import os
from collections.abc import Mapping

from assets_gateway_client.answers import SetupError

__all__ = [
    "CLOUDFLARE_API_URL_ENV",
    "DEFAULT_CLOUDFLARE_API_URL",
    "GATEWAY_URL_ENV",
    "aws_region",
    "cloudflare_api_url",
    "gateway_url",
]

GATEWAY_URL_ENV = "ASSETS_GATEWAY_URL"
CLOUDFLARE_API_URL_ENV = "CLOUDFLARE_API_URL"
DEFAULT_CLOUDFLARE_API_URL = "https://api.cloudflare.com/client/v4"


def gateway_url(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The gateway's base URL: `given`, else $ASSETS_GATEWAY_URL; SetupError when neither."""
    url = given or environ.get(GATEWAY_URL_ENV)
    if not url:
        raise SetupError(
            f"no gateway URL: pass --gateway URL or set {GATEWAY_URL_ENV} "
            "(the stack's ApiBaseUrl, ending with /client/v4; locally, base_url in "
            ".local/stack.json; from Python, gateway_url=)"
        )
    if not url.startswith(("https://", "http://")):
        raise SetupError(f"the gateway URL must be an https:// URL (got {url!r})")
    return url


def cloudflare_api_url(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """Where files are uploaded: `given`, else $CLOUDFLARE_API_URL, else Cloudflare's API."""
    return given or environ.get(CLOUDFLARE_API_URL_ENV) or DEFAULT_CLOUDFLARE_API_URL


def aws_region(environ: Mapping[str, str] = os.environ) -> str | None:
    """$AWS_REGION: boto3 reads AWS_DEFAULT_REGION only, but AWS_REGION is what Lambda, the
    SDKs and our messages name."""
    return environ.get("AWS_REGION") or None
