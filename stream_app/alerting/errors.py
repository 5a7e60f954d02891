"""Errors of the alerting package (delivery sinks, rule file loading, alert history).

``AlertingError``
    Base of everything this package raises. ``retriable`` tells the caller what to do.
``DeliveryUnavailable`` (retriable)
    A delivery target (Kafka, Alertmanager, webhook, ClickHouse history) or a store the package
    reads and saves through (windows, engine state) cannot be reached or answered with a
    transient failure (connection refused, timeout, HTTP 5xx or 429). The dispatcher backs off
    and tries again; once the attempts are spent the event is dead-lettered and counted.
``DeliveryRejected`` (poison)
    The target answered that this event is unacceptable (HTTP 4xx other than 408/429, a record
    too large). Retrying cannot help: the event is dead-lettered and counted at once.
``RulesFileError`` (poison for that file version)
    A rules file cannot be read or does not validate. The message names the file, the rule and
    the field; the previously loaded rules stay in force and the reload-error metric is raised.
    The watcher tries again only when the file changes.

Third-party errors (aiokafka, httpx, clickhouse-connect, OSError, yaml) are translated into these
at the adapter boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["AlertingError", "DeliveryRejected", "DeliveryUnavailable", "RulesFileError"]


class AlertingError(Exception):
    """Base class of the errors raised by :mod:`stream_app.alerting`."""

    retriable: ClassVar[bool] = False


class DeliveryUnavailable(AlertingError):
    """A delivery target or store failed transiently (retriable: back off and try again)."""

    retriable = True


class DeliveryRejected(AlertingError):
    """A delivery target refused this event for good (poison: dead-letter it, never retry)."""


class RulesFileError(AlertingError):
    """A rules file cannot be read or is invalid (the previous rules stay in force)."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        joined = "; ".join(self.problems) if self.problems else "invalid"
        super().__init__(f"{path}: {joined}")
