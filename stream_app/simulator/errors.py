"""Errors of the fleet simulator.

``SimulatorError``
    Base of everything this package raises.
``ScenarioError`` (``ValueError``; poison)
    A scenario (YAML text, file or model data) is invalid: unreadable file, YAML syntax error, or a
    value that fails validation. The message names the file and the field
    (``incidents[2].error_rate``) with the reason; :attr:`ScenarioError.fields` lists every
    offending field. Fix the scenario: retrying cannot help.

Nothing else is raised on purpose: generation is pure computation, and ``run_realtime`` lets an
exception from the caller's ``emit`` propagate unchanged (``MetricsProducer.emit`` never raises).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["ScenarioError", "SimulatorError"]


class SimulatorError(Exception):
    """Base class of the errors raised by :mod:`stream_app.simulator`."""

    retriable: ClassVar[bool] = False


class ScenarioError(SimulatorError, ValueError):
    """An invalid scenario (poison: fix the file). ``fields`` names the offending fields."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields
