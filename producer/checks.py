"""emit()'s arguments checked and built into a :class:`schemas.wire.WireEvent`.

:class:`EventBuilder` is what ``MetricsProducer.emit()`` calls on the request thread and what the
flush thread calls for the events of ``emit_deferred()``. The privacy and schema checks of
labels, proxy ids and target domains run once per distinct value (:mod:`producer.privacy`
remembers the values that passed); numbers are checked inline by exact type, and anything else
goes through :mod:`producer.numbers`. Each failure raises :class:`producer.errors.InvalidEvent`
or :class:`producer.errors.PrivacyViolation` naming the field, never the value.
"""

from __future__ import annotations

import itertools
import time

from producer.errors import InvalidEvent
from producer.numbers import OUTCOMES, checked_int, checked_latency
from producer.privacy import ValidatedCache, check_domain, check_label, check_proxy_id
from schemas.events import MAX_LATENCY_MS, Outcome
from schemas.wire import WireEvent

__all__ = ["EventBuilder"]


class EventBuilder:
    """Checks one event's arguments and builds it, with a fresh event id. Thread-safe: the
    caches' sets change by single operations, and ids come from one C-level call."""

    __slots__ = (
        "_domains",
        "_host",
        "_keep_domain",
        "_known_labels",
        "_known_proxy_ids",
        "_labels",
        "_next_event_id",
        "_proxy_ids",
    )

    def __init__(
        self, *, source_host: str, instance: str, keep_domain: bool, cache_size: int
    ) -> None:
        self._host = source_host
        self._keep_domain = keep_domain
        # Event ids "{instance}-{seq:x}", seq counting from 1: formatted by one C-level call
        # (count -> str.__mod__), so ids are unique without a lock.
        self._next_event_id = map(f"{instance}-%x".__mod__, itertools.count(1)).__next__
        self._labels = ValidatedCache(cache_size)
        self._domains = ValidatedCache(cache_size)
        self._proxy_ids = ValidatedCache(cache_size)
        # The caches' sets (cleared in place, never replaced): one attribute lookup per check.
        self._known_labels = self._labels.known
        self._known_proxy_ids = self._proxy_ids.known

    def build(
        self,
        pool: str,
        region: str,
        proxy_id: str | None,
        outcome: Outcome | str,
        latency_ms: float,
        status_code: int | None,
        bytes_in: int,
        bytes_out: int,
        attempts: int,
        target_domain: str | None,
        ts_ms: int | None,
    ) -> WireEvent:
        """The event, or :class:`~producer.errors.ProducerError` naming the first bad field."""
        labels = self._known_labels
        if pool not in labels:
            self._labels.remember(check_label("pool", pool))
        if region not in labels:
            self._labels.remember(check_label("region", region))
        if proxy_id is not None and proxy_id not in self._known_proxy_ids:
            self._proxy_ids.remember(check_proxy_id("proxy_id", proxy_id))
        checked_outcome = OUTCOMES.get(outcome)
        if checked_outcome is None:
            raise InvalidEvent("outcome", "must be one of schemas.events.Outcome")
        if type(latency_ms) is not float or not 0.0 <= latency_ms <= MAX_LATENCY_MS:
            latency_ms = checked_latency(latency_ms)
        if status_code is not None and (
            type(status_code) is not int or not 100 <= status_code <= 599
        ):
            status_code = checked_int("status_code", status_code)
        if type(bytes_in) is not int or bytes_in < 0:
            bytes_in = checked_int("bytes_in", bytes_in)
        if type(bytes_out) is not int or bytes_out < 0:
            bytes_out = checked_int("bytes_out", bytes_out)
        if type(attempts) is not int or not 1 <= attempts <= 1000:
            attempts = checked_int("attempts", attempts)
        if target_domain is not None:
            if not self._keep_domain:
                target_domain = None
            elif target_domain not in self._domains.known:
                self._domains.remember(check_domain("target_domain", target_domain))
        if ts_ms is None:
            ts_ms = time.time_ns() // 1_000_000
        elif type(ts_ms) is not int or ts_ms < 0:
            ts_ms = checked_int("ts_ms", ts_ms)
        return WireEvent(
            self._next_event_id(),
            ts_ms,
            pool,
            region,
            checked_outcome,
            latency_ms,
            self._host,
            proxy_id,
            status_code,
            bytes_in,
            bytes_out,
            attempts,
            target_domain,
        )
