"""The signing proxy's decisions (pure): where each request goes, which headers travel, when a
body is gzipped, its own envelope; and the `proxy` command's refusals before it listens."""

from __future__ import annotations

import json

import pytest

from assets_gateway_client import cli, proxy_rules
from assets_gateway_client.proxy_rules import Upstream

ACCOUNT = "0123456789abcdef0123456789abcdef"
HASH = "fedcba9876543210fedcba9876543210"
UPLOAD = f"/client/v4/accounts/{ACCOUNT}/workers/assets/upload"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", UPLOAD, Upstream.CLOUDFLARE),
        ("POST", f"{UPLOAD}/{HASH}", Upstream.CLOUDFLARE),
        (
            "POST",
            f"/client/v4/accounts/{ACCOUNT}/workers/scripts/s/assets-upload-session",
            Upstream.GATEWAY,
        ),
        ("GET", UPLOAD, Upstream.GATEWAY),
        ("PUT", f"/client/v4/accounts/{ACCOUNT}/workers/scripts/s", Upstream.GATEWAY),
        ("GET", "/client/v4/user/tokens/verify", Upstream.GATEWAY),
        ("GET", "/client/v4", Upstream.GATEWAY),
        # an upload path one segment deeper, or under another prefix, is no upload
        ("POST", f"{UPLOAD}/{HASH}/x", Upstream.GATEWAY),
        ("POST", f"/client/v4/accounts/{ACCOUNT}/x/workers/assets/upload", Upstream.GATEWAY),
        ("GET", "/admin/policy", None),
        ("GET", "/client/v40/accounts", None),
        ("GET", "/", None),
    ],
)
def test_upstream_for(method: str, path: str, expected: Upstream | None) -> None:
    assert proxy_rules.upstream_for(method, path) is expected


CLIENT_HEADERS = [
    ("Host", "127.0.0.1:5000"),
    ("Authorization", "Bearer placeholder"),
    ("Content-Type", "application/json"),
    ("Content-Length", "12"),
    ("Connection", "keep-alive, X-Private"),
    ("X-Private", "for this hop only"),
    ("Keep-Alive", "timeout=5"),
    ("Transfer-Encoding", "chunked"),
    ("Expect", "100-continue"),
    ("Proxy-Authorization", "Basic x"),
    ("X-Amz-Date", "20260101T000000Z"),
    ("Idempotency-Key", "k-1"),
    ("User-Agent", "wrangler/4"),
    ("Accept-Encoding", "gzip"),
    ("X-Auth-Email", "someone@example.com"),
    ("X-Auth-Key", "a-global-api-key"),
]


def test_toward_the_gateway_the_placeholder_and_hop_by_hop_headers_stay_behind() -> None:
    assert proxy_rules.forwarded_request_headers(CLIENT_HEADERS, Upstream.GATEWAY) == [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "k-1"),
        ("User-Agent", "wrangler/4"),
        ("Accept-Encoding", "gzip"),
    ]


def test_toward_cloudflare_the_session_jwt_travels() -> None:
    kept = proxy_rules.forwarded_request_headers(CLIENT_HEADERS, Upstream.CLOUDFLARE)
    assert ("Authorization", "Bearer placeholder") in kept
    assert ("X-Amz-Date", "20260101T000000Z") in kept
    assert ("X-Auth-Key", "a-global-api-key") in kept
    assert not {name.lower() for name, _ in kept} & {"host", "connection", "x-private", "expect"}


def test_answer_headers_keep_everything_end_to_end() -> None:
    upstream = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "99"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("Retry-After", "30"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("x-amzn-RequestId", "r-1"),
    ]
    assert proxy_rules.forwarded_response_headers(upstream) == [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Retry-After", "30"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("x-amzn-RequestId", "r-1"),
    ]


@pytest.mark.parametrize(
    ("upstream", "size", "headers", "expected"),
    [
        (Upstream.GATEWAY, 1000, [], True),
        (Upstream.GATEWAY, 999, [], False),
        (Upstream.GATEWAY, 5000, [("Content-Encoding", "gzip")], False),
        (Upstream.GATEWAY, 5000, [("content-encoding", "br")], False),
        (Upstream.GATEWAY, 5000, [("Content-Encoding", "identity")], True),
        (Upstream.CLOUDFLARE, 5000, [], False),
    ],
)
def test_should_gzip(
    upstream: Upstream, size: int, headers: list[tuple[str, str]], expected: bool
) -> None:
    assert proxy_rules.should_gzip(upstream, size, headers, 1000) is expected


def test_envelope_is_cloudflares() -> None:
    assert json.loads(proxy_rules.envelope(19002, "too large")) == {
        "success": False,
        "errors": [{"code": 19002, "message": "too large"}],
        "messages": [],
        "result": None,
    }


def test_command_without_a_gateway_url_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ASSETS_GATEWAY_URL", raising=False)
    assert cli.main(["proxy"]) == 2
    captured = capsys.readouterr()
    assert "no gateway URL" in captured.err
    assert captured.out == ""


def test_command_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["proxy", "--port", "70000", "--gateway", "https://example.invalid"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
