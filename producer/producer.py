"""MetricsProducer: the fleet host's side of ProxyWhirl Metrics.

``emit()`` is the request path: it validates its arguments (privacy and schema, answered from
bounded caches after the first sight of a value), builds the event as a
:class:`schemas.wire.WireEvent` (a struct the garbage collector does not track) and offers it to
the :class:`producer.buffer.EventBuffer`, which takes no lock (see docs/architecture.md,
"emit() design"). It never blocks and never raises (unless ``strict``): invalid arguments are
counted as ``rejected``, events over the ``max_buffer_events`` bound as ``dropped_full``.

A daemon flush thread (so no event loop is needed) groups queued events into per-pool batches,
encodes due batches (full, or ``batch_max_age_ms`` old) as envelopes and hands them to the
transport in order, handing the GIL to request threads between envelopes. Retriable transport
errors keep the envelope (its events stay inside the buffer bound) and back off exponentially;
poison errors drop it and count. Nothing a transport raises reaches ``emit()``.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import math
import secrets
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from producer.buffer import Batch, EventBuffer
from producer.envelope import Envelope, build_envelope
from producer.errors import (
    InvalidEvent,
    PrivacyViolation,
    ProducerError,
    TransportError,
    TransportRejected,
)
from producer.identity import ProxyIdHasher
from producer.metrics import ProducerCollector
from producer.numbers import OUTCOMES, checked_int, checked_latency
from producer.privacy import ValidatedCache, check_domain, check_label, check_proxy_id
from producer.ratelimit import LogGate
from producer.settings import ProducerSettings
from producer.stats import ProducerStats
from producer.transport import Transport
from schemas.events import MAX_LATENCY_MS, Outcome
from schemas.wire import WireEvent

__all__ = ["MetricsProducer"]

logger = logging.getLogger(__name__)


class MetricsProducer:
    """Buffers request events in memory and ships them as batch envelopes per pool.

    Thread-safe; ``emit()`` may be called from any thread or coroutine. The producer owns its
    transport and closes it in :meth:`close`. Counters are exposed by :meth:`stats` and, as
    Prometheus metrics, on ``registry`` (a private one unless the caller passes theirs; one
    producer per registry).
    """

    def __init__(
        self,
        settings: ProducerSettings,
        transport: Transport,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._host = settings.source_host
        self._batch_max = settings.batch_max_events
        self._strict = settings.strict
        self._keep_domain = settings.include_target_domain
        instance = secrets.token_hex(8)
        self._batch_prefix = f"{self._host}-{instance}-"
        # Event ids "{instance}-{seq:x}", seq counting from 1: formatted by one C-level call
        # (count -> str.__mod__), so ids are unique without a lock.
        self._next_event_id = map(f"{instance}-%x".__mod__, itertools.count(1)).__next__
        self._hasher = ProxyIdHasher(
            settings.fleet_key.get_secret_value().encode(), settings.proxy_id_cache_size
        )
        self._labels = ValidatedCache(settings.validation_cache_size)
        self._domains = ValidatedCache(settings.validation_cache_size)
        self._proxy_ids = ValidatedCache(settings.validation_cache_size)
        # The caches' sets (cleared in place, never replaced): one attribute lookup in emit().
        self._known_labels = self._labels.known
        self._known_proxy_ids = self._proxy_ids.known
        self._reject_log = LogGate(settings.rejection_log_interval_s)
        self._send_log = LogGate(settings.rejection_log_interval_s)
        self._wake = threading.Event()
        self._buffer = EventBuffer(
            max_events=settings.max_buffer_events,
            batch_max_events=settings.batch_max_events,
            batch_max_age_s=settings.batch_max_age_ms / 1000.0,
            wake=self._wake.set,
        )
        self._offer = self._buffer.offer
        # Flush-thread state.
        self._pending: deque[Envelope] = deque()
        self._batch_seq = 0
        self._transport_closer: Callable[[], None] | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"pwm-producer-flush-{instance[:6]}", daemon=True
        )
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(ProducerCollector(self.stats))
        self._atexit_hook: Callable[[], None] | None = None
        if settings.close_at_exit:
            ref = weakref.ref(self)

            def _close_at_exit() -> None:
                producer = ref()
                if producer is not None:
                    producer.close()

            self._atexit_hook = _close_at_exit
            atexit.register(_close_at_exit)
        self._thread.start()

    # ------------------------------------------------------------------ request path

    def proxy_id(self, address: str) -> str:
        """The proxy's id: HMAC-SHA256(fleet key, normalised address), 32 hex characters.

        Raises :class:`producer.errors.InvalidEvent` (a ``ValueError``) for an address with no
        host or an invalid port.
        """
        return self._hasher(address)

    def emit(
        self,
        pool: str,
        region: str,
        proxy_id: str | None = None,
        outcome: Outcome | str = Outcome.SUCCESS,
        latency_ms: float = 0.0,
        status_code: int | None = None,
        bytes_in: int = 0,
        bytes_out: int = 0,
        attempts: int = 1,
        target_domain: str | None = None,
        ts_ms: int | None = None,
    ) -> bool:
        """Record one proxied request. ``True`` if buffered; ``False`` if rejected or dropped.

        Never blocks on I/O and never raises (with ``strict`` settings it raises
        :class:`~producer.errors.PrivacyViolation` / :class:`~producer.errors.InvalidEvent`).
        """
        try:
            labels = self._known_labels
            if pool not in labels:
                self._learn_label("pool", pool)
            if region not in labels:
                self._learn_label("region", region)
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
        except Exception as exc:
            return self._reject(exc)
        return self._offer(
            WireEvent(
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
        )

    def _learn_label(self, field: str, value: object) -> None:
        self._labels.remember(check_label(field, value))

    def _reject(self, exc: Exception) -> bool:
        field = getattr(exc, "field", "arguments")
        self._buffer.reject(field, privacy=isinstance(exc, PrivacyViolation))
        if self._strict:
            if isinstance(exc, ProducerError):
                raise exc
            raise InvalidEvent(field, f"invalid argument ({type(exc).__name__})") from exc
        suppressed = self._reject_log.admit(field)
        if suppressed is not None:
            # The message names the field and the form, never the offending value.
            logger.warning(
                "metrics producer rejected an event: %s (%d more %s rejections since the last "
                "report)",
                exc if isinstance(exc, ProducerError) else type(exc).__name__,
                suppressed,
                field,
            )
        return False

    # ------------------------------------------------------------------ counters

    def stats(self) -> ProducerStats:
        """A consistent snapshot of the counters."""
        return self._buffer.snapshot()

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send everything buffered now; ``True`` once it was delivered (or dropped as poison),
        ``False`` if ``timeout_s`` passed first (e.g. the transport keeps failing)."""
        if self._buffer.closed and not self._thread.is_alive():
            return self.stats().buffered == 0
        wanted = self._buffer.request_flush()
        self._wake.set()
        return self._buffer.wait_flushed(wanted, timeout_s)

    async def aflush(self, timeout_s: float = 5.0) -> bool:
        """:meth:`flush` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Flush what is buffered (for at most ``timeout_s``), stop the thread, close the
        transport. Later ``emit()`` calls return ``False``. Safe to call more than once."""
        timeout = self._settings.close_timeout_s if timeout_s is None else timeout_s
        on_flush_thread = threading.current_thread() is self._thread  # e.g. from a transport
        if not self._buffer.close(timeout):
            if not on_flush_thread:
                self._thread.join(timeout)
            return
        self._wake.set()
        if on_flush_thread:
            self._transport_closer = self._close_transport  # run when the thread stops
            return
        self._thread.join(timeout + 1.0)
        if self._thread.is_alive():
            logger.warning("metrics producer flush thread did not stop within %.1f s", timeout)
        self._close_transport()

    def _close_transport(self) -> None:
        try:
            self._transport.close()
        except Exception:
            logger.exception("metrics producer transport failed to close")
        if self._atexit_hook is not None:
            atexit.unregister(self._atexit_hook)
            self._atexit_hook = None

    async def aclose(self, timeout_s: float | None = None) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close, timeout_s)

    def __enter__(self) -> MetricsProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ flush thread

    def _run(self) -> None:
        self._flush_loop()
        if self._transport_closer is not None:
            self._transport_closer()

    def _flush_loop(self) -> None:
        backoff_s = self._settings.retry_initial_ms / 1000.0
        retry_at = 0.0
        timeout: float | None = None
        while True:
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                now = time.monotonic()
                due, next_due, closing = self._buffer.take_due(now)
                self._encode(due)
                if now >= retry_at:
                    if self._send_pending():
                        backoff_s = self._settings.retry_initial_ms / 1000.0
                    else:
                        retry_at = time.monotonic() + backoff_s
                        backoff_s = min(backoff_s * 2, self._settings.retry_max_ms / 1000.0)
                if not self._pending:
                    self._buffer.mark_flushed()
                if closing:
                    if not self._pending and self._buffer.finish_if_empty():
                        return
                    if time.monotonic() >= self._buffer.stop_deadline:
                        self._drop_unsent()
                        return
            except Exception:  # a bug must not silently stop all delivery
                logger.exception("metrics producer flush thread failed; continuing")
                next_due, closing = time.monotonic() + 0.1, self._buffer.closed
            wait_until = min(next_due, retry_at if self._pending else math.inf)
            if closing:
                wait_until = min(wait_until, self._buffer.stop_deadline)
            timeout = None if wait_until == math.inf else max(0.0, wait_until - time.monotonic())
            if self._buffer.wake_pending():
                timeout = 0.0

    def _encode(self, due: list[Batch]) -> None:
        # Request threads never wait for this thread's locks, only for the GIL: hand it over
        # after at most half a switch interval of work (plus one envelope's encoding, one C
        # call), so a backlog is worked off in slices instead of one long hold. The rest of the
        # interval is enough to keep up with request threads emitting flat out.
        slice_s = sys.getswitchinterval() / 2
        slice_started = time.perf_counter()
        for pool, records in due:
            batch_id = f"{self._batch_prefix}{self._batch_seq}"
            self._batch_seq += 1
            try:
                self._pending.append(
                    build_envelope(
                        pool,
                        records,
                        source_host=self._host,
                        batch_id=batch_id,
                        schema=self._settings.envelope_schema,
                    )
                )
            except Exception:
                self._buffer.drop(len(records))
                logger.exception(
                    "cannot encode envelope %s (%d events dropped)", batch_id, len(records)
                )
            if time.perf_counter() - slice_started >= slice_s:
                time.sleep(0)  # releases the GIL to waiting threads
                slice_started = time.perf_counter()

    def _send_pending(self) -> bool:
        """Send pending envelopes in order; ``False`` if a retriable error stopped the round."""
        while self._pending:
            env = self._pending[0]
            try:
                self._transport.send(env.pool, env.payload, env.event_count)
            except Exception as exc:
                if isinstance(exc, TransportError) and exc.retriable:
                    env.attempts += 1
                    self._buffer.send_failed(env.event_count, dropped=False)
                    self._log_send_error(env, exc, dropped=False)
                    return False
                self._pending.popleft()
                self._buffer.send_failed(env.event_count, dropped=True)
                self._log_send_error(env, exc, dropped=True)
                continue
            self._pending.popleft()
            self._buffer.delivered(env.event_count, retried=env.attempts > 0)
        return True

    def _log_send_error(self, env: Envelope, exc: Exception, *, dropped: bool) -> None:
        kind = "poison" if dropped else "retriable"
        suppressed = self._send_log.admit(kind)
        if suppressed is None:
            return
        if dropped and not isinstance(exc, TransportRejected):
            logger.error(
                "metrics transport raised an unexpected %s; dropped envelope %s (%d events; "
                "%d similar since the last report)",
                type(exc).__name__,
                env.batch_id,
                env.event_count,
                suppressed,
                exc_info=exc,
            )
        elif dropped:
            logger.warning(
                "metrics transport rejected envelope %s (%d events dropped): %s (%d similar "
                "since the last report)",
                env.batch_id,
                env.event_count,
                exc,
                suppressed,
            )
        else:
            logger.warning(
                "metrics transport unavailable, will retry envelope %s: %s (%d similar since "
                "the last report)",
                env.batch_id,
                exc,
                suppressed,
            )

    def _drop_unsent(self) -> None:
        unsent = sum(env.event_count for env in self._pending)
        self._pending.clear()
        self._buffer.drop(unsent)
        unsent += self._buffer.drop_held_and_finish()
        if unsent:
            logger.warning("metrics producer closed with %d events unsent (dropped)", unsent)
