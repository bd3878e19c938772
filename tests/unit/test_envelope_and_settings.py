from __future__ import annotations

import json

import pytest

from assets_gateway.domain.envelope import (
    Reply,
    error_reply,
    is_upload_session,
    parse_envelope,
    retry_after_seconds,
)
from assets_gateway.domain.errors import PolicyDenied, Problem
from assets_gateway.lambda_glue.settings import Settings, SettingsError


def test_refusal_envelope_lists_every_reason_in_messages() -> None:
    error = PolicyDenied(
        "denied (2 reasons)", reasons=[Problem("a"), Problem("b", "/manifest/~1x")]
    )
    reply = error_reply(error, request_id="req-1")
    assert reply.status == 403
    assert reply.headers["X-Request-Id"] == "req-1"
    assert json.loads(reply.body) == {
        "success": False,
        "errors": [{"code": 19011, "message": "denied (2 reasons)"}],
        "messages": [
            {"code": 19011, "message": "a"},
            {"code": 19011, "message": "b", "source": {"pointer": "/manifest/~1x"}},
        ],
        "result": None,
    }


@pytest.mark.parametrize(
    ("body", "success", "codes"),
    [
        (
            b'{"success":true,"errors":null,"messages":null,"result":{"jwt":"j","buckets":[]}}',
            True,
            (),
        ),
        (
            b'{"success":false,"errors":[{"code":10000,"message":"x"}],"result":null}',
            False,
            (10000,),
        ),
        (b'{"success":false,"errors":[{"message":"no code"}, 7],"result":null}', False, ()),
    ],
)
def test_upstream_envelopes_are_read_tolerantly(
    body: bytes, success: bool, codes: tuple[int, ...]
) -> None:
    envelope = parse_envelope(body)
    assert envelope is not None
    assert (envelope.success, envelope.error_codes) == (success, codes)


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", b"", b'{"success": tr', b"[]", b'{"result": {}}']
)
def test_non_envelopes_are_recognised(body: bytes) -> None:
    assert parse_envelope(body) is None


@pytest.mark.parametrize(
    ("result", "usable"),
    [
        ({"jwt": "j", "buckets": [["a", "b"], ["c"]]}, True),
        ({"jwt": "j"}, True),
        ({"jwt": None, "buckets": []}, False),
        ({"jwt": "j", "buckets": [[1]]}, False),
        ({"jwt": "j", "buckets": "a"}, False),
        (None, False),
    ],
)
def test_upload_session_shape(result: dict[str, object] | None, usable: bool) -> None:
    assert is_upload_session(result) is usable


def test_settings_parse_with_defaults() -> None:
    settings = Settings.from_environ(
        {
            "CONTROL_TABLE_NAME": "ctl",
            "QUOTA_TABLE_NAME": "quota",
            "CLOUDFLARE_TOKEN_SECRET_ID": "arn:secret",
            "UNRELATED": "x",
        }
    )
    assert settings.cloudflare_api_base_url == "https://api.cloudflare.com/client/v4"
    assert settings.policy_cache_seconds == 30


def test_settings_errors_name_every_bad_variable_but_no_value() -> None:
    with pytest.raises(SettingsError) as failed:
        Settings.from_environ(
            {"CLOUDFLARE_API_BASE_URL": "ftp://sneaky-value", "POLICY_CACHE_SECONDS": "-1"}
        )
    message = str(failed.value)
    for name in (
        "CONTROL_TABLE_NAME",
        "CLOUDFLARE_TOKEN_SECRET_ID",
        "CLOUDFLARE_API_BASE_URL",
        "POLICY_CACHE_SECONDS",
    ):
        assert name in message
    assert "sneaky-value" not in message


@pytest.mark.parametrize(
    ("value", "ceiling", "seconds"),
    [
        (None, None, 60),
        ("30", None, 30),
        ("0", None, 1),
        ("-5", None, 1),
        ("soon", None, 60),
        ("86400", None, 86_400),
        ("86400", 300, 300),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 300, 60),
    ],
)
def test_retry_after_is_whole_seconds_at_least_one(
    value: str | None, ceiling: int | None, seconds: int
) -> None:
    assert retry_after_seconds(value, ceiling=ceiling) == seconds


def test_reply_headers_are_read_whatever_their_case() -> None:
    reply = Reply(429, b"{}", {"retry-after": "7"})
    assert (reply.header("Retry-After"), reply.header("X-Missing")) == ("7", None)
