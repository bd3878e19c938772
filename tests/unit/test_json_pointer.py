"""The one JSON-pointer helper that the gateway writes its errors with and the client reads."""

from __future__ import annotations

from assets_gateway_common.json_pointer import json_pointer, pointer_tokens


def test_json_pointer_escapes_tilde_before_slash() -> None:
    assert json_pointer("manifest", "/a~/b", "hash") == "/manifest/~1a~0~1b/hash"


def test_json_pointer_takes_array_indexes() -> None:
    assert json_pointer("x", 0, "k") == "/x/0/k"


def test_a_pointer_reads_back_into_its_tokens() -> None:
    tokens = ["teams", "web/~x", "", "0"]
    assert pointer_tokens(json_pointer(*tokens)) == tokens


def test_the_whole_document_and_a_non_pointer_have_no_tokens() -> None:
    assert pointer_tokens("") == []
    assert pointer_tokens("teams/web") == []


def test_an_echoed_token_is_bounded_and_valid_unicode() -> None:
    pointer = json_pointer("manifest", "/" + "a" * 10_000 + "\ud800")
    (token,) = pointer_tokens(pointer)[1:]
    assert len(token) == 4097
    assert token.endswith("…")
    assert pointer_tokens(json_pointer("\ud800x")) == ["\ufffdx"]
