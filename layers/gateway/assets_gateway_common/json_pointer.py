"""JSON pointers (RFC 6901): the gateway writes them into its errors, the client reads them back
to show the line of a policy file an error is about."""

from __future__ import annotations

import re

# Only refusals carry pointers, so what they echo is kept sane: a token longer than any valid
# manifest path (4,096 bytes) is cut, and lone surrogates become U+FFFD, which every JSON parser
# reads (some refuse a lone `\ud800` escape).
_MAX_TOKEN_CHARS = 4096
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def json_pointer(*tokens: str | int) -> str:
    """The pointer to `tokens`: `~` → `~0`, `/` → `~1`, so `/index.html` becomes `~1index.html`."""
    return "".join("/" + _escaped(str(token)) for token in tokens)


def pointer_tokens(pointer: str) -> list[str]:
    """The reference tokens of `pointer`, unescaped; none for the whole document ("") or for a
    string that is no pointer (it must start with `/`)."""
    if not pointer.startswith("/"):
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _escaped(token: str) -> str:
    if len(token) > _MAX_TOKEN_CHARS:
        token = token[:_MAX_TOKEN_CHARS] + "…"
    if _SURROGATES.search(token):
        token = _SURROGATES.sub("\ufffd", token)
    return token.replace("~", "~0").replace("/", "~1")
