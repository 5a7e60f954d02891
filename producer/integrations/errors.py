"""Errors of the producer integrations.

``IntegrationError`` (subclass of :class:`producer.errors.ProducerError`)
    Base of everything the integrations raise. They raise only while being set up
    (``instrument()``), never on a user's request: a failure inside the instrumentation of a
    request is counted and logged (rate-limited), and the request proceeds untouched.
``IntegrationUnavailable`` (``ImportError``; poison)
    The instrumented library is not installed; install the matching extra, e.g.
    ``pip install 'proxywhirl-metrics[proxywhirl]'``.
``NotInstrumentable`` (``TypeError``; poison)
    The object given to ``instrument()`` is not an instance the integration supports.
``AlreadyInstrumented`` (``RuntimeError``; poison)
    The instance is instrumented already; call ``uninstrument()`` on the first handle first.

All three are configuration mistakes: retrying cannot help, fix the call.
"""

from __future__ import annotations

from producer.errors import ProducerError

__all__ = ["AlreadyInstrumented", "IntegrationError", "IntegrationUnavailable", "NotInstrumentable"]


class IntegrationError(ProducerError):
    """Base class of the errors raised by :mod:`producer.integrations`."""


class IntegrationUnavailable(IntegrationError, ImportError):
    """The library to instrument is not installed (install the matching extra)."""


class NotInstrumentable(IntegrationError, TypeError):
    """The object is not an instance the integration knows how to instrument."""


class AlreadyInstrumented(IntegrationError, RuntimeError):
    """The instance already carries an active instrumentation."""
