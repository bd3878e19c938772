"""Glob patterns for script names and asset paths, compiled to one regex per list (pure).

`*` matches within a path segment, `**` matches across segments, `?` matches one character other
than `/`; everything else is literal. Script names hold no `/`, so `*` covers them whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN = re.compile(r"\*\*|\*|\?")
_TRANSLATION = {"**": ".*", "*": "[^/]*", "?": "[^/]"}


def glob_to_regex(pattern: str) -> str:
    parts: list[str] = []
    position = 0
    for match in _TOKEN.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        parts.append(_TRANSLATION[match.group()])
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return "".join(parts)


class GlobSet:
    """Matches a string against any of several globs with a single compiled regex."""

    __slots__ = ("_matches_any_path", "_regex", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        alternatives = "|".join(f"(?:{glob_to_regex(p)})" for p in self.patterns)
        self._regex = re.compile(f"(?s:{alternatives})") if alternatives else None
        # The common "everything" policy skips the regex on every one of 100,000 paths.
        self._matches_any_path = "/**" in self.patterns or "**" in self.patterns

    @property
    def matches_every_path(self) -> bool:
        """True when every asset path (they all start with '/') matches."""
        return self._matches_any_path

    def matches(self, value: str) -> bool:
        if self._regex is None:
            return False
        if self._matches_any_path and value.startswith("/"):
            return True
        return self._regex.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"
