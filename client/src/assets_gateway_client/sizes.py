"""Byte counts for people, in binary units (as wrangler's `prettyBytes(..., {binary: true})`):
`1.0 TiB`, never `1024.0 GiB`. The one formatter of the team client."""

from __future__ import annotations

__all__ = ["format_bytes"]

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(size: float) -> str:
    """`512 B`, `1.5 KiB`, `25.0 MiB`, `1.0 TiB`: whole bytes below 1 KiB, else the largest unit
    that keeps the figure, as printed, under 1024."""
    if round(size) < 1024:
        return f"{size:,.0f} B"
    amount, unit = float(size), "B"
    for unit in _UNITS:  # noqa: B007 - the unit the loop stops at is the one printed
        amount /= 1024
        if round(amount, 1) < 1024:
            break
    return f"{amount:,.1f} {unit}"
