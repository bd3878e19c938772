"""The demo world the local stack seeds: Cloudflare accounts, two teams, an admin, an outsider.

Access keys are fixed (demo_identities.json) so the README's examples work as printed; they open
nothing but this machine's loopback stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assets_gateway.domain.identity import Caller
from assets_gateway.domain.policy import SessionTarget
from assets_gateway.ports.sessions import SessionRequest
from gateway_local.api_front import LocalIdentity

DEMO_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
# In the web team's policy, but not reachable with the org token: Cloudflare itself refuses it,
# which shows how Cloudflare's own 4xx pass through the gateway unchanged.
UNLINKED_ACCOUNT_ID = "fedcba9876543210fedcba9876543210"

WEB_SCRIPT = "web-storefront"
DOCS_SCRIPT = "docs"
WEB_NAMESPACE = "customer-sites"

# name -> access keys and principal (a data file: four records of the same shape).
IDENTITIES = {
    name: LocalIdentity.from_arn(**fields)
    for name, fields in json.loads(
        (Path(__file__).with_name("demo_identities.json")).read_text(encoding="utf-8")
    ).items()
}
WEB_DEPLOYER = IDENTITIES["web-deployer"]
DOCS_CI = IDENTITIES["docs-ci"]
PLATFORM_ADMIN = IDENTITIES["platform-admin"]
OUTSIDER = IDENTITIES["outsider"]


def demo_policy() -> dict[str, Any]:
    return {
        "defaults": {
            "max_entries": 20_000,
            "quotas": {"sessions_per_minute": 10, "sessions_per_day": 500},
        },
        "teams": {
            "web": {
                "description": "Storefront and customer sites",
                "principals": ["arn:aws:iam::111111111111:role/web-deployer"],
                "accounts": [DEMO_ACCOUNT_ID, UNLINKED_ACCOUNT_ID],
                "scripts": ["web-*"],
                "namespaces": ["customer-*"],
                "paths": ["/**"],
                "max_entries": 100_000,
                "quotas": {"sessions_per_minute": 30, "sessions_per_day": 1_000},
                # wrangler's defaults (workers.dev and preview URLs on) deploy as they are; KV
                # only in the team's own namespaces.
                "deploy": {
                    "workers_dev": True,
                    "preview_urls": True,
                    "resources": {"kv_namespace": ["0123456789abcdef0123456789abcde*"]},
                },
            },
            "docs": {
                "description": "Documentation site",
                "principals": ["arn:aws:iam::222222222222:user/docs-ci"],
                "accounts": [DEMO_ACCOUNT_ID],
                "scripts": ["docs", "docs-*"],
                "paths": ["/index.html", "/docs/**", "/assets/**"],
                "max_entries": 1_000,
                "max_bytes": 50 * 1024 * 1024,
                "max_file_bytes": 5 * 1024 * 1024,
                # Small on purpose: the sixth session within a minute shows a 429 by hand.
                "quotas": {
                    "sessions_per_minute": 5,
                    "sessions_per_day": 100,
                    "entries_per_day": 20_000,
                    "bytes_per_day": 500 * 1024 * 1024,
                },
            },
        },
    }


def web_session_request(
    body: bytes,
    *,
    account_id: str = DEMO_ACCOUNT_ID,
    script_name: str = WEB_SCRIPT,
    request_id: str = "demo",
) -> SessionRequest:
    """A JSON session request from the web team's deployer, as the API door would build it."""
    return SessionRequest(
        caller=Caller(WEB_DEPLOYER.principal_arn),
        target=SessionTarget(account_id, script_name),
        body=body,
        content_type="application/json",
        request_id=request_id,
    )
