"""Errors of the schemas package.

``SchemaError``
    Base of everything this package raises.
``DecodeError`` (poison)
    A record or document does not match its schema. The message names the field and the
    reason; the record goes to the dead-letter topic and is counted, never retried.
"""

from __future__ import annotations


class SchemaError(Exception):
    """Base class of the errors raised by :mod:`schemas`."""


class DecodeError(SchemaError, ValueError):
    """A record does not match its schema (poison: dead-letter it, never retry)."""
