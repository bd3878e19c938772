"""Globs are decided in time linear in the text, with the semantics documented in globs.py
(issue 12 #15: a 4 KB path against `/**/**/**/x` took 24 s in the backtracking regex).

Complexity is shown by counting steps, not by timing: the automaton reads each character with
one table lookup and computes each transition once, so its work is len(text) lookups plus
`learnt` transitions of O(glob) each; the tests assert that `learnt` stays small and does not
grow with the text. The pathological globs are also run on 4 KB and 64 KB texts asserting only
the answer: before the fix those runs did not finish."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets_gateway.domain.globs import GlobSet, _Automaton, _is_regex_linear, _items, glob_to_regex

KB = 1024

# The documented semantics, as the plain (backtracking) regex they were first written as.
_SPEC = {"**": ".*", "*": "[^/]*", "?": "[^/]"}


def spec_matches(pattern: str, text: str) -> bool:
    regex = "".join(_SPEC.get(item, re.escape(item)) for item in _items(pattern))
    return re.fullmatch(f"(?s:{regex})", text) is not None


PATHOLOGICAL = [
    "/**/**/**/x",
    "/**/**/**/**/**/x",
    "/*a*a*a*a*a*b",
    "**a**a**a**b",
    "/**/*?*?*/x",
    "**a*",
    "/**/**",
]


def deep_path(size: int, last: str) -> str:
    return ("/a" * (size // 2))[: size - len(last) - 1] + "/" + last


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_pathological_globs_go_to_the_automaton(pattern: str) -> None:
    assert not _is_regex_linear(_items(pattern))


@pytest.mark.parametrize("size", [4 * KB, 64 * KB])
@pytest.mark.parametrize(
    ("pattern", "last", "matches"),
    [
        ("/**/**/**/x", "x", True),
        ("/**/**/**/x", "y", False),
        ("/**/**/**/**/**/x", "xx", False),
        ("/**/*?*?*/x", "ab/x", True),
        ("/**/*?*?*/x", "a/x", False),
    ],
)
def test_many_double_stars_on_long_paths(size: int, pattern: str, last: str, matches: bool) -> None:
    path = deep_path(size, last)
    assert len(path) == size
    assert GlobSet([pattern]).matches(path) is matches


@pytest.mark.parametrize("size", [4 * KB, 64 * KB])
@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("/*a*a*a*a*a*b", "/" + "a" * 80 * KB, False),
        ("/*a*a*a*a*a*b", "/" + "a" * 80 * KB + "b", True),
        ("**a**a**a**b", "/" + "a/" * 40 * KB, False),
        ("**a**a**a**b", "/" + "a/" * 40 * KB + "b", True),
    ],
)
def test_many_single_stars_on_long_segments(
    size: int, pattern: str, text: str, matches: bool
) -> None:
    text = text[:size] if not matches else text[: size - 1] + "b"
    assert GlobSet([pattern]).matches(text) is matches


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_the_automaton_learns_a_bounded_number_of_steps(pattern: str) -> None:
    automaton = _Automaton([pattern])
    automaton.matches(deep_path(4 * KB, "x") + "a" * 4 * KB)
    learnt = automaton.learnt
    for size in (64 * KB, 256 * KB):
        automaton.matches(deep_path(size, "x") + "ab" * size)
        automaton.matches(deep_path(size, "y"))
        automaton.matches("/" + "a" * size)  # one long segment, for the single stars
        automaton.matches("/" + "a" * size + "b")
    # The same few transitions serve any length: the work is one lookup per character.
    assert learnt <= 64
    assert automaton.learnt <= 2 * learnt + 8


@pytest.mark.parametrize(
    "pattern",
    [
        "/docs/**",
        "/*.html",
        "/docs/*/index.html",
        "/assets/*/*.js",
        "/**/index.html",
        "/assets/**/*.js",
        "**/a*b",
        "/**/*/*a/?*.js",
        "/a*b/*c",
    ],
)
def test_common_globs_stay_with_the_regex_and_are_linear_there(pattern: str) -> None:
    assert _is_regex_linear(_items(pattern))
    glob = GlobSet([pattern])
    for text in (
        "/" + "a" * 64 * KB,
        "/docs/" + "a/" * 32 * KB,
        "/" + "a/" * 32 * KB + "index.htm",
        "/" + "ab/" * 16 * KB + "ab",
        "/" + "a" * 32 * KB + "/" + "a" * 32 * KB + ".j",
    ):
        assert glob.matches(text) is spec_matches(pattern, text)


def test_possessive_stars_are_only_where_they_cannot_give_back() -> None:
    assert glob_to_regex("/docs/*/a*.js") == r"/docs/[^/]*+/a[^/]*\.js"
    assert glob_to_regex("/docs/**") == "/docs/.*+"
    assert glob_to_regex("/**/x*") == r"/.*/x[^/]*+"


_PATTERN_CHARS = st.sampled_from(["a", "b", "/", ".", "*", "**", "?"])
_TEXT = st.text(alphabet="ab/.\n", max_size=14)


@settings(max_examples=600, deadline=None)
@given(
    patterns=st.lists(st.lists(_PATTERN_CHARS, max_size=7).map("".join), max_size=3),
    texts=st.lists(_TEXT, min_size=1, max_size=6),
)
def test_both_engines_keep_the_documented_semantics(patterns: list[str], texts: list[str]) -> None:
    glob = GlobSet(patterns)
    automaton = _Automaton(patterns)
    for text in texts:
        expected = any(spec_matches(p, text) for p in patterns)
        assert glob.matches(text) is expected, (patterns, text)
        assert automaton.matches(text) is expected, (patterns, text)
        for pattern in patterns:
            assert (re.fullmatch(f"(?s:{glob_to_regex(pattern)})", text) is not None) is (
                spec_matches(pattern, text)
            )


def test_threads_sharing_one_glob_set_agree_with_the_spec() -> None:
    patterns = ["/**/a*/**/*b", "/*a*a*b", "**/?*?/x"]
    texts = [
        "/" + "/".join(("a" * (i % 5)) + ("b" * (i % 3)) for i in range(n)) + suffix
        for n in range(1, 40)
        for suffix in ("", "b", "/x", "/ab/x")
    ]
    expected = [any(spec_matches(p, t) for p in patterns) for t in texts]
    glob = GlobSet(patterns)  # fresh: every thread learns the tables at the same time
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: [glob.matches(t) for t in texts], range(16)))
    assert all(answer == expected for answer in answers)
