"""Errors of the stream worker.

Third-party errors (aiokafka, Faust) are translated where the worker calls them
(:mod:`stream_app.worker.kafka_consumer`, :mod:`stream_app.worker.publisher`); storage errors
come from :mod:`stream_app.storage.errors` and keep their classes. Poison *records* are not
errors here: they raise :class:`schemas.errors.DecodeError` inside the record path and go to the
dead-letter topic, counted.

``WorkerError``
    Base of everything this package raises. ``retriable`` tells the caller what to do.
``BrokerUnavailable`` (retriable)
    Kafka did not answer (commit, offsets, end offsets): back off and try again later; nothing
    is lost because offsets are committed only after the flush is stored.
``PartitionsLost`` (retriable)
    A commit was refused because the group rebalanced: the partitions may belong to another
    worker now. Harmless: the new owner seeks past what storage holds.
``PublishUnavailable`` (retriable)
    The dead-letter or windows topic did not acknowledge in time: the cycle waits (offsets are
    not committed) and retries. A record Kafka refuses for good (too large, not authorised) is
    not an error: the publisher drops it, counts it and logs it.
``RangeUnavailable`` (poison)
    Records a flush must be rebuilt from are no longer in the log (retention removed them):
    the flush cannot be written again; logged and counted, the worker continues after it.
``WorkerFatal`` (poison)
    The worker cannot continue without losing data, e.g. storage rejects a flush
    (:class:`~stream_app.storage.errors.SinkRejected`: schema not migrated, data refused). The
    process exits non-zero without committing, so the records are read again once fixed.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BrokerUnavailable",
    "PartitionsLost",
    "PublishUnavailable",
    "RangeUnavailable",
    "WorkerError",
    "WorkerFatal",
]


class WorkerError(Exception):
    """Base class of the errors raised by :mod:`stream_app.worker`."""

    retriable: ClassVar[bool] = False


class BrokerUnavailable(WorkerError):
    """Kafka did not answer in time (retriable)."""

    retriable = True


class PartitionsLost(WorkerError):
    """A commit was refused because the group rebalanced (retriable, harmless)."""

    retriable = True


class PublishUnavailable(WorkerError):
    """A dead-letter or window record was not acknowledged yet (retriable)."""

    retriable = True


class RangeUnavailable(WorkerError):
    """Records to rebuild a flush from are gone from the log (poison)."""


class WorkerFatal(WorkerError):
    """The worker must stop without committing (poison for the process, see module doc)."""
