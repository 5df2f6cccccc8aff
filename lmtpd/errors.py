"""Exceptions that any room may raise, so that none has to import a higher one for them."""

from __future__ import annotations


class ServeError(Exception):
    """The server cannot start; the message says what to change."""
