"""Glob patterns for script names and asset paths, matched in linear time (pure).

`*` matches within a path segment, `**` matches across segments, `?` matches one character other
than `/`; everything else is literal. Script names hold no `/`, so `*` covers them whole.

`glob_to_regex` states those rules as a regex, but Python's regex engine backtracks: a path of
4 KB against `/**/**/**/x` (or a segment against `/*a*a*a*b`) takes seconds to centuries,
because every way of splitting the text between the stars is tried. So a `GlobSet` hands the
regex engine only the globs it provably decides in O(len(text) * len(glob)) (`/docs/**`,
`/*.html`, `/assets/**/*.js` and the like: see `_is_regex_linear`) and decides the others with
an automaton that reads each character of the text once (a DFA built lazily from the globs'
NFA), whatever the globs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Annotated

from pydantic import StringConstraints

# A glob as the policy document holds one (scripts, paths, the deploy policy's resources).
Glob = Annotated[str, StringConstraints(min_length=1, max_length=512)]

_TOKEN = re.compile(r"\*\*|\*|\?")
_TRANSLATION = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
# A star that cannot give characters back without failing the match is written possessive,
# so the engine never retries it: `*` before a literal `/` (it must stop exactly at the next
# slash), and a star that ends the glob (a full match must consume the rest).
_POSSESSIVE = {"**": ".*+", "*": "[^/]*+"}
_STARS = ("*", "**")
# The automaton forgets the states it learnt past this many (at the start of a match).
_MAX_STATES = 4096
_DEAD = 0


def _items(pattern: str) -> list[str]:
    """The glob as a list of `**`, `*`, `?` and single literal characters."""
    items: list[str] = []
    position = 0
    for match in _TOKEN.finditer(pattern):
        items.extend(pattern[position : match.start()])
        items.append(match.group())
        position = match.end()
    items.extend(pattern[position:])
    return items


def _is_possessive(items: Sequence[str], index: int) -> bool:
    following = items[index + 1] if index + 1 < len(items) else None
    return following is None or (items[index] == "*" and following == "/")


def _is_regex_linear(items: Sequence[str]) -> bool:
    """Whether the backtracking regex engine decides this glob in O(len(text) * len(glob)).

    Possessive stars never backtrack. The first star that can (S1) is retried at most once per
    character, and each retry re-runs what follows it. That stays linear when every later star
    is a `*` with a literal `/` since the star before it: a star that cannot cross `/` then
    runs in a segment fixed by the retry (distinct retries, distinct segments), and of its own
    lengths only one gets past the next `/`; so all re-runs together read each character a
    bounded number of times. `/**/*.js` qualifies; `/**/**/x` and `/*a*b*c` do not."""
    backtracking = fenced = False
    for index, item in enumerate(items):
        if item == "/":
            fenced = True
        elif item in _STARS:
            if backtracking and (item == "**" or not fenced):
                return False
            backtracking = backtracking or not _is_possessive(items, index)
            fenced = False
    return True


def glob_to_regex(pattern: str) -> str:
    items = _items(pattern)
    parts: list[str] = []
    for index, item in enumerate(items):
        if item in _STARS:
            table = _POSSESSIVE if _is_possessive(items, index) else _TRANSLATION
            parts.append(table[item])
        elif item == "?":
            parts.append(_TRANSLATION[item])
        else:
            parts.append(re.escape(item))
    return "".join(parts)


class _Automaton:
    """A DFA over the globs' NFA, built as texts need it.

    NFA positions index `_items`, every glob's items followed by an end marker (None). A DFA
    state is the set of positions reachable after the text read so far; a transition is
    computed once (O(glob length)) and then costs a dict lookup per character, so a match
    takes O(len(text) * len(glob)) at worst and O(text) once its states are known."""

    def __init__(self, patterns: Sequence[str]) -> None:
        items: list[str | None] = []
        starts: list[int] = []
        for pattern in patterns:
            starts.append(len(items))
            items.extend(_items(pattern))
            items.append(None)
        self._items = items
        # Stars may match nothing: a position also stands for the positions after its stars.
        self._closures = [self._closure_of(position) for position in range(len(items))]
        self._start = frozenset(p for start in starts for p in self._closures[start])
        self._reset()

    def _closure_of(self, position: int) -> frozenset[int]:
        reached = {position}
        while self._items[position] in _STARS:
            position += 1
            reached.add(position)
        return frozenset(reached)

    def _reset(self) -> None:
        # One object per generation: a match that began before a reset keeps its own tables.
        self._tables = _Tables(self._items, self._start)

    def _move(self, positions: frozenset[int], char: str) -> frozenset[int]:
        reached: set[int] = set()
        for position in positions:
            item = self._items[position]
            if item == "**" or (item == "*" and char != "/"):
                reached.update(self._closures[position])
            elif item == char or (item == "?" and char != "/"):
                reached.update(self._closures[position + 1])
        return frozenset(reached)

    @property
    def learnt(self) -> int:
        """How many transitions have been computed: a match's work is one lookup per
        character plus these (each O(glob length))."""
        return sum(len(moves) for moves in self._tables.moves)

    def matches(self, text: str) -> bool:
        if len(self._tables.moves) > _MAX_STATES:
            self._reset()
        tables = self._tables
        moves = tables.moves
        state = tables.begin
        for char in text:
            following = moves[state].get(char)
            if following is None:
                following = tables.learn(state, char, self._move)
            if following == _DEAD:
                return False
            state = following
        return tables.accepting[state]


class _Tables:
    """The DFA states and transitions learnt so far. Reading needs no lock (one dict lookup);
    learning takes one, so threads sharing a policy never see half a state."""

    def __init__(self, items: Sequence[str | None], start: frozenset[int]) -> None:
        self._items = items
        self._index: dict[frozenset[int], int] = {}
        self._sets: list[frozenset[int]] = []
        self.moves: list[dict[str, int]] = []
        self.accepting: list[bool] = []
        self._lock = threading.Lock()
        self._intern(frozenset())  # _DEAD: nothing can match any more
        self.begin = self._intern(start)  # where every match begins (_DEAD without globs)

    def _intern(self, positions: frozenset[int]) -> int:
        state = self._index.get(positions)
        if state is None:
            state = len(self.moves)
            self._sets.append(positions)
            self.moves.append({})
            self.accepting.append(any(self._items[p] is None for p in positions))
            self._index[positions] = state  # last: the state is complete once it is found
        return state

    def learn(
        self, state: int, char: str, move: Callable[[frozenset[int], str], frozenset[int]]
    ) -> int:
        with self._lock:
            following = self.moves[state].get(char)
            if following is None:
                following = self.moves[state][char] = self._intern(move(self._sets[state], char))
            return following


class GlobSet:
    """Matches a string against any of several globs, in time linear in the string."""

    __slots__ = ("_automaton", "_matches_any_path", "_regex", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        linear = [p for p in self.patterns if _is_regex_linear(_items(p))]
        others = [p for p in self.patterns if p not in linear]
        # The regex engine is C: the globs it decides in linear time stay with it.
        alternatives = "|".join(f"(?:{glob_to_regex(p)})" for p in linear)
        self._regex = re.compile(f"(?s:{alternatives})") if alternatives else None
        self._automaton = _Automaton(others) if others else None
        # The common "everything" policy skips the regex on every one of 100,000 paths.
        self._matches_any_path = "/**" in self.patterns or "**" in self.patterns

    @property
    def matches_every_path(self) -> bool:
        """True when every asset path (they all start with '/') matches."""
        return self._matches_any_path

    def matches(self, value: str) -> bool:
        if self._matches_any_path and value.startswith("/"):
            return True
        if self._regex is not None and self._regex.fullmatch(value) is not None:
            return True
        return self._automaton is not None and self._automaton.matches(value)

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"
