"""Errors of the rule engine (:mod:`stream_app.core.rules`).

``RuleEngineError``
    Base of everything this package raises.
``StateError`` (poison)
    A saved engine state cannot be restored (wrong version, malformed, inconsistent). The caller
    starts with a fresh state, counts it and logs once; retrying the same document cannot help.

Inputs the engine can skip are counted in :class:`~.engine.EngineStats`, never raised: windows
older than the last evaluated one, aggregates of another window or window size.
"""

from __future__ import annotations

from typing import ClassVar


class RuleEngineError(Exception):
    """Base class of the errors raised by :mod:`stream_app.core.rules`."""

    retriable: ClassVar[bool] = False


class StateError(RuleEngineError, ValueError):
    """A saved engine state cannot be restored (poison: start fresh and count it)."""
