"""Paths that users name (operation parameters over HTTP, recipes, settings): parsed safely.

`Path.expanduser` raises RuntimeError for `~someone` when there is no such user, and
a NUL character makes every file call raise ValueError: both are bad input, and say so.
"""

from __future__ import annotations

from pathlib import Path

from bridge.errors import InvalidParams


def user_path(value: str, param: str | None = None) -> Path:
    """`value` as a Path with `~` expanded, or InvalidParams naming `param`."""
    if "\0" in value:
        raise InvalidParams(f"parameter '{param or 'path'}' cannot contain a NUL character",
                            param=param)
    try:
        return Path(value).expanduser()
    except RuntimeError:  # "~name" with no such user
        raise InvalidParams(f"'{value}': no home folder for that user", param=param) from None
