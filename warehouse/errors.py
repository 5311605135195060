"""The warehouse's one error type, apart so that every warehouse module can raise it."""

from __future__ import annotations


class WarehouseError(Exception):
    """A warehouse that cannot be opened or written; the message says what to do."""
