"""How many JSON values a body holds, counted over its bytes (pure).

A value is an object, array, string, number, true, false or null, at any depth; object keys
are not values. Outside strings, a JSON text holds 1 + (commas) + (non-empty objects and arrays)
values. `holds_at_most` decides whether a body stays within a ceiling without building any of
it: a few C-speed counts over the whole body, strings included, give an upper bound that settles
ordinary bodies; above the ceiling, what strings hold is taken off, in linear time and a
megabyte of memory at most. For a body that is not JSON the count is that of the JSON it starts
like: each `[`, `{` and `,` outside a string begins a value.
"""

from __future__ import annotations

import re


def holds_at_most(raw: bytes, ceiling: int) -> bool:
    """Whether `raw` holds at most `ceiling` JSON values.

    An empty `{ }` or `[ ]` written with a blank inside counts as non-empty (one value more).
    """
    # Each value past the first is counted at a byte of its own (`,` `{` `[`): a body shorter
    # than the ceiling holds fewer values than that, uncounted (most manifests).
    if len(raw) < ceiling:
        return True
    values = 1 + raw.count(b",") + raw.count(b"{") + raw.count(b"[")
    if values <= ceiling:
        return True
    values -= raw.count(b"{}") + raw.count(b"[]")
    if values <= ceiling:
        return True
    # At least this many quotes delimit strings: every other one is escaped (`\\"`).
    delimiters = raw.count(b'"') - (raw.count(b'\\"') if b"\\" in raw else 0)
    if delimiters <= 2 * _FEW_STRINGS:
        # Few strings (what `[{},{},…]` holds): take off what they hold, one by one.
        inside = sum(_structure(raw, *string.span()) for string in _STRING_TO_END.finditer(raw))
        return values - inside <= ceiling
    # A string is a key or a value, and a body holds fewer keys than values: one with more
    # strings than twice the ceiling holds more values than that.
    return delimiters <= 4 * ceiling and values_outside_strings(raw) <= ceiling


_FEW_STRINGS = 10_000
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
# A string, or one never closed: to the end of the body.
_STRING_TO_END = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)


def _structure(raw: bytes, start: int, end: int) -> int:
    """Commas plus non-empty objects and arrays in raw[start:end]."""
    return (
        raw.count(b",", start, end)
        + raw.count(b"{", start, end)
        + raw.count(b"[", start, end)
        - raw.count(b"{}", start, end)
        - raw.count(b"[]", start, end)
    )


# Bytes outside strings and whole strings, as far as a match may reach. Possessive: no
# backtracking over megabytes; a string that does not end within reach is left for later.
_WHOLE_UNITS = re.compile(rb'(?:[^"]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+', re.DOTALL)
_SCAN_BYTES = 1024 * 1024


def values_outside_strings(raw: bytes, scan_bytes: int = _SCAN_BYTES) -> int:
    """1 + commas + non-empty objects and arrays, outside strings: the body's JSON values.

    A megabyte at a time, cut between whole strings, each string reduced to one byte; a string
    longer than that is stepped over in one match (one never closed runs to the end of the
    body).
    """
    values, position, end = 1, 0, len(raw)
    while position < end:
        units = _WHOLE_UNITS.match(raw, position, min(end, position + scan_bytes))
        stop = units.end() if units else position
        if stop < end and raw[stop - 1] in b"{[" and stop - 1 > position:
            stop -= 1  # never cut an empty `{}` or `[]` in two
        if stop == position:
            string = _STRING.match(raw, position)
            position = string.end() if string else end
            continue
        # Each string becomes one byte: `["a"]` stays a non-empty array.
        skeleton = _STRING.sub(b"0", raw[position:stop])
        values += _structure(skeleton, 0, len(skeleton))
        position = stop
    return values
