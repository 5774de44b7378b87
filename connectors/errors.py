"""The one error a source raises: a one-line reason, never a secret.

A module of its own so that every part of the connector kit (`kit`, `base`, `http`)
imports it without importing each other.
"""

from __future__ import annotations


class SourceError(Exception):
    """A source could not deliver a series; the message is one line and holds no secret."""

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source
        self.reason = message
