"""`.assetsignore` matching exactly as wrangler does it.

wrangler (`@cloudflare/workers-shared` `createAssetsIgnoreFunction`) reads `<dir>/.assetsignore`,
splits it on "\\n", puts `/.assetsignore`, `/_redirects` and `/_headers` in front, and asks the npm
package `ignore@5.3.1` whether each relative path (forward slashes, no leading `/`) is ignored.
That package turns each gitignore line into a JavaScript regular expression through a chain of
textual replacements; this module ports that chain rule for rule (same order, same regexes), so
corner cases match wrangler rather than git. What follows from it:

- matching is case-insensitive (`ignore`'s default `ignorecase: true`): `*.bak` ignores `X.BAK`;
- a pattern without a slash (other than a trailing one) matches at any depth; one with a leading
  or inner slash is anchored at the assets directory;
- a path is ignored when any parent directory is (`sub-dir` ignores `sub-dir/a/b.txt`), and a
  later `!pattern` cannot re-include a file whose parent directory is ignored;
- `#` starts a comment, blank lines are skipped, trailing spaces are dropped unless escaped;
- `[a-z]` ranges work, but `[!a]` is literal (`ignore` does not negate with `!`).

Only the root `.assetsignore` is read, as wrangler does; nested ones are ordinary files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["ALWAYS_IGNORED", "ASSETS_IGNORE_FILENAME", "AssetsIgnore"]

ASSETS_IGNORE_FILENAME = ".assetsignore"
HEADERS_FILENAME = "_headers"
REDIRECTS_FILENAME = "_redirects"
# Patterns wrangler adds in front of the file's own: its metafiles, at the root only.
ALWAYS_IGNORED = (f"/{ASSETS_IGNORE_FILENAME}", f"/{REDIRECTS_FILENAME}", f"/{HEADERS_FILENAME}")

_ESCAPE = "\\"
_NEVER = "(?!)"  # JavaScript's empty class `[]`, which Python cannot compile


def _sanitize_range(text: str) -> str:
    """Drop out-of-order ranges (`z-a`), which gitignore tolerates and regexes refuse."""
    return re.sub(
        r"([0-z])-([0-z])",
        lambda m: m.group(0) if ord(m.group(1)) <= ord(m.group(2)) else "",
        text,
    )


def _python_class(body: str) -> str:
    """A JavaScript class body as a Python one: `[`, `&`, `~`, `|` are literal in both, but
    Python warns about (and may one day change) nested-set syntax, so escape them."""
    escaped = re.sub(r"(?<!\\)([\[&~|])", r"\\\1", body)
    return f"[{escaped}]" if escaped else _NEVER


def _clean_range_backslash(slashes: str) -> str:
    return slashes[: len(slashes) - len(slashes) % 2]


def _range(match: re.Match[str]) -> str:
    lead_escape, body, end_escape, close = match.groups()
    if lead_escape == _ESCAPE:
        return f"\\[{body}{_clean_range_backslash(end_escape)}{close}"
    if close == "]" and len(end_escape) % 2 == 0:
        return _python_class(f"{_sanitize_range(body)}{end_escape}")
    return _NEVER


def _starting(_match: re.Match[str], pattern: str, _current: str) -> str:
    # A slash at the beginning or in the middle anchors the pattern at the root; otherwise it
    # may match at any depth.
    return "^" if re.search(r"/(?!\Z)", pattern) else r"(?:^|\/)"


def _two_globstars(match: re.Match[str], _pattern: str, current: str) -> str:
    # `/**/` is zero or more directories; a trailing `/**` everything inside (not the folder).
    return r"(?:\/[^\/]+)*" if match.start() + 6 < len(current) else r"\/.+"


def _ending(match: re.Match[str], _pattern: str, _current: str) -> str:
    text = match.group(0)
    # `foo/` matches the directory only; `foo` matches `foo` and `foo/`
    return f"{text}\\Z" if text.endswith("/") else rf"{text}(?=\Z|\/\Z)"


def _trailing_wildcard(match: re.Match[str], _pattern: str, _current: str) -> str:
    prefix = match.group(1)
    start = f"{prefix}[^/]+" if prefix else "[^/]*"
    return rf"{start}(?=\Z|\/\Z)"


_Replace = Callable[[re.Match[str], str, str], str]


def _constant(text: str) -> _Replace:
    return lambda _m, _p, _c: text


# ignore@5.3.1's REPLACERS, in order: (regex, replacement, replace every match?). JavaScript's
# `$` (end of input without the m flag) is Python's `\Z`.
_REPLACERS: tuple[tuple[re.Pattern[str], _Replace, bool], ...] = (
    (re.compile("^\ufeff"), _constant(""), False),  # a BOM
    # trailing spaces are dropped unless escaped: `a\ ` keeps one space
    (
        re.compile(r"\\?\s+\Z"),
        lambda m, _p, _c: " " if m.group(0).startswith("\\") else "",
        False,
    ),
    (re.compile(r"\\\s"), _constant(" "), True),
    # regex metacharacters written by the user are literal
    (re.compile(r"[\\$.|*+(){^]"), lambda m, _p, _c: "\\" + m.group(0), True),
    (re.compile(r"(?!\\)\?"), _constant("[^/]"), True),  # `?` is one character but `/`
    (re.compile(r"^/"), _constant("^"), False),  # a leading slash anchors at the root
    (re.compile(r"/"), _constant(r"\/"), True),
    (re.compile(r"^\^*\\\*\\\*\\/"), _constant(r"^(?:.*\/)?"), False),  # leading `**/`
    (re.compile(r"^(?=[^^])"), _starting, False),
    (re.compile(r"\\/\\\*\\\*(?=\\/|\Z)"), _two_globstars, True),
    # `*` matches anything but `/`; consecutive stars are one star
    (
        re.compile(r"(^|[^\\]+)(\\\*)+(?=.+)"),
        lambda m, _p, _c: m.group(1) + r"[^\/]*",
        True,
    ),
    (re.compile(r"\\\\\\(?=[$.|*+(){^])"), _constant(_ESCAPE), True),  # user-escaped metachars
    (re.compile(r"\\\\"), _constant(_ESCAPE), True),
    (re.compile(r"(\\)?\[([^\]/]*?)(\\*)(\Z|\])"), lambda m, _p, _c: _range(m), True),
    (re.compile(r"(?:[^*])\Z"), _ending, False),
    (re.compile(r"(\^|\\/)?\\\*\Z"), _trailing_wildcard, False),
)


def _regex_source(pattern: str) -> str:
    source = pattern
    for regex, replace, every in _REPLACERS:
        source = _substitute(regex, replace, every, source, pattern)
    return source


def _substitute(
    regex: re.Pattern[str], replace: _Replace, every: bool, source: str, pattern: str
) -> str:
    # JavaScript's String.replace hands the replacer the whole input; so does `m.string`.
    return regex.sub(lambda m: replace(m, pattern, m.string), source, count=0 if every else 1)


@dataclass(frozen=True)
class _Rule:
    origin: str
    negative: bool
    regex: re.Pattern[str]


def _is_pattern(line: str) -> bool:
    """Blank lines, comments and a trailing unescaped backslash are not patterns."""
    return bool(
        line
        and not re.fullmatch(r"\s+", line)
        and not re.search(r"(?:[^\\]|^)\\\Z", line)
        and not line.startswith("#")
    )


def _rule(line: str) -> _Rule:
    negative = line.startswith("!")
    pattern = line[1:] if negative else line
    if pattern.startswith(("\\!", "\\#")):  # `\!` and `\#` start a literal `!` or `#`
        pattern = pattern[1:]
    return _Rule(line, negative, re.compile(_regex_source(pattern), re.IGNORECASE))


@dataclass(frozen=True)
class _Verdict:
    ignored: bool
    unignored: bool


class AssetsIgnore:
    """Decides, like wrangler, which paths of an assets directory are left out of the upload.

    Paths are relative to the assets directory, with forward slashes and no leading slash
    (`sub-dir/file.txt`); a directory may be asked about with a trailing slash (`sub-dir/`).
    """

    def __init__(self, lines: Iterable[str], *, file_present: bool = False) -> None:
        self.rules = tuple(_rule(line) for line in lines if _is_pattern(line))
        self.file_present = file_present
        self._cache: dict[str, _Verdict] = {}

    @classmethod
    def from_text(cls, text: str | None) -> AssetsIgnore:
        """The metafile patterns plus the lines of an `.assetsignore` (None when absent)."""
        lines = list(ALWAYS_IGNORED)
        if text is not None:
            lines.extend(text.split("\n"))  # wrangler splits on "\n"; a "\r" is trailing space
        return cls(lines, file_present=text is not None)

    def ignores(self, path: str) -> bool:
        return self._test(path).ignored

    def ignores_directory(self, path: str) -> bool:
        """Whether everything under directory `path` is ignored (a parent ignored)."""
        return self._test(path.rstrip("/") + "/").ignored

    def _test(self, path: str, slices: list[str] | None = None) -> _Verdict:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        if slices is None:
            slices = path.split("/")
        slices.pop()  # what is left names the parent directory, tested first
        if not slices:
            verdict = self._test_one(path)
        else:
            parent = self._test("/".join(slices) + "/", slices)
            # "It is not possible to re-include a file if a parent directory of that file is
            # excluded."
            verdict = parent if parent.ignored else self._test_one(path)
        self._cache[path] = verdict
        return verdict

    def _test_one(self, path: str) -> _Verdict:
        ignored = unignored = False
        for rule in self.rules:
            if unignored == rule.negative and ignored != unignored:
                continue
            if rule.regex.search(path):
                ignored = not rule.negative
                unignored = rule.negative
        return _Verdict(ignored, unignored)
