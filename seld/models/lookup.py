"""Name -> class lookup shared by the model tables (one floor below ``heads`` and ``registry``)."""
from __future__ import annotations

from typing import TypeVar

from seld.errors import ConfigError

T = TypeVar("T")


def lookup(table: dict[str, T], name: str, what: str) -> T:
    """``table[name]``; ConfigError ``unknown <what> <name>; valid names: ...`` otherwise."""
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}; valid names: {', '.join(sorted(table))}")
    return table[name]
