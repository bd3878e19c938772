"""What an admin command fails with: the admin door's refusal or failure (exit 1). A problem of
the command line or a local file is a `console.UsageError` (exit 2)."""

from __future__ import annotations

from assets_gateway_client.answers import ApiAnswer, Locate

__all__ = ["AdminRefused"]


class AdminRefused(Exception):
    """The admin door answered something other than 2xx (or could not be reached): exit 1."""

    def __init__(self, what: str, answer: ApiAnswer | None, *, detail: str = "") -> None:
        super().__init__(f"{what}: {detail or (answer.status if answer else '')}")
        self.what = what
        self.answer = answer
        self.detail = detail
        self.locate: Locate | None = None
