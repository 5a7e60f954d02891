"""Errors of the schemas package.

``SchemaError``
    Base of everything this package raises; nothing here is retriable (``retriable`` is
    False: a record or file that does not match its schema never will).
``DecodeError`` (poison)
    A record or document does not match its schema. The message names the field and the
    reason; the record goes to the dead-letter topic and is counted, never retried.
``RulesError`` (poison for that file version)
    A rules file does not parse or validate. ``messages`` lists every problem, each naming the
    source, line, rule and field; the caller keeps the previous rules in force.
"""

from __future__ import annotations

from typing import ClassVar


class SchemaError(Exception):
    """Base class of the errors raised by :mod:`schemas`."""

    retriable: ClassVar[bool] = False


class DecodeError(SchemaError, ValueError):
    """A record does not match its schema (poison: dead-letter it, never retry)."""


class RulesError(SchemaError, ValueError):
    """A rules file is invalid (poison: keep the previous rules, report ``messages``)."""

    def __init__(self, source_name: str, messages: list[str]) -> None:
        self.source_name = source_name
        self.messages = list(messages)
        super().__init__("\n".join(self.messages) or f"{source_name}: invalid rules file")
