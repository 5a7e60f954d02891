"""Errors of the test harnesses.

* :class:`HarnessError`: base class.
* :class:`ToolMissing`: a program the harness runs is not installed (skip locally, fail in CI).
* :class:`HarnessStartError`: a service exited, or did not answer before its deadline.
* :class:`HarnessStopError`: a service did not exit, even after SIGKILL.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every harness error."""


class ToolMissing(HarnessError):
    """A program the harness needs is not installed on this machine."""


class HarnessStartError(HarnessError):
    """A service failed to start or did not become ready before its deadline."""


class HarnessStopError(HarnessError):
    """A service did not exit."""
