from __future__ import annotations

import pytest

from assets_gateway.domain.globs import GlobSet, glob_to_regex
from assets_gateway.domain.identity import normalise_principal


@pytest.mark.parametrize(
    ("arn", "normalised"),
    [
        (
            "arn:aws:sts::111111111111:assumed-role/deployer/session-1",
            "arn:aws:iam::111111111111:role/deployer",
        ),
        ("arn:aws:iam::111111111111:role/team/deployer", "arn:aws:iam::111111111111:role/deployer"),
        ("arn:aws:iam::111111111111:role/deployer", "arn:aws:iam::111111111111:role/deployer"),
        ("arn:aws-cn:sts::111111111111:assumed-role/r/s", "arn:aws-cn:iam::111111111111:role/r"),
        ("arn:aws:iam::111111111111:user/path/alice", "arn:aws:iam::111111111111:user/path/alice"),
        ("arn:aws:iam::111111111111:root", "arn:aws:iam::111111111111:root"),
        ("not-an-arn", "not-an-arn"),
    ],
)
def test_principals_are_normalised(arn: str, normalised: str) -> None:
    assert normalise_principal(arn) == normalised


@pytest.mark.parametrize(
    ("patterns", "value", "matches"),
    [
        (["web-*"], "web-shop", True),
        (["web-*"], "api-shop", False),
        (["docs"], "docs", True),
        (["docs"], "docs2", False),
        (["/docs/*"], "/docs/a.html", True),
        (["/docs/*"], "/docs/a/b.html", False),
        (["/docs/**"], "/docs/a/b.html", True),
        (["/**"], "/anything/at/all", True),
        (["/?.js"], "/a.js", True),
        (["/?.js"], "/ab.js", False),
        (["/a.b"], "/aXb", False),
        (["/[x]"], "/[x]", True),
        ([], "/x", False),
        (["/a", "/b/**"], "/b/c", True),
    ],
)
def test_globs(patterns: list[str], value: str, matches: bool) -> None:
    assert GlobSet(patterns).matches(value) is matches


def test_regex_characters_are_literal() -> None:
    assert glob_to_regex("/a+b(c)") == r"/a\+b\(c\)"
