"""MetricsProducer: the fleet host's side of ProxyWhirl Metrics.

``emit()`` is the request path: it validates its arguments (privacy and schema, answered from
bounded caches after the first sight of a value: :mod:`producer.checks`), builds the event as a
:class:`schemas.wire.WireEvent` (a struct the garbage collector does not track) and offers it to
the :class:`producer.buffer.EventBuffer`, which takes no lock (see docs/architecture.md,
"emit() design"). It never blocks and never raises (unless ``strict``): invalid arguments are
counted as ``rejected``, events over the ``max_buffer_events`` bound as ``dropped_full``.
``emit_deferred()`` queues its arguments as they are, for the flush thread to check and build:
the least work a request thread can do, for callers whose arguments are valid by construction.

A daemon flush thread (so no event loop is needed) groups queued events into per-pool batches,
and :class:`producer.shipper.EnvelopeShipper` encodes the due ones (full, or
``batch_max_age_ms`` old) as envelopes and hands them to the transport in order, handing the GIL
to request threads between envelopes. Retriable transport errors keep the envelope (its events
stay inside the buffer bound) and back off exponentially; poison errors drop it and count.
Nothing a transport raises reaches ``emit()``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import secrets
import threading
import time
import weakref
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from producer.buffer import EventBuffer, QueuedArguments
from producer.checks import EventBuilder
from producer.errors import InvalidEvent, PrivacyViolation, ProducerError
from producer.identity import ProxyIdHasher
from producer.metrics import ProducerCollector
from producer.ratelimit import LogGate
from producer.settings import ProducerSettings
from producer.shipper import EnvelopeShipper
from producer.stats import ProducerStats
from producer.transport import Transport
from schemas.events import Outcome
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
        self._hasher = ProxyIdHasher(
            settings.fleet_key.get_secret_value().encode(), settings.proxy_id_cache_size
        )
        self._build = EventBuilder(
            source_host=settings.source_host,
            instance=instance,
            keep_domain=settings.include_target_domain,
            cache_size=settings.validation_cache_size,
        ).build
        self._reject_log = LogGate(settings.rejection_log_interval_s)
        self._wake = threading.Event()
        self._buffer = EventBuffer(
            max_events=settings.max_buffer_events,
            batch_max_events=settings.batch_max_events,
            batch_max_age_s=settings.batch_max_age_ms / 1000.0,
            wake=self._wake.set,
            resolve=self._resolve,
        )
        self._offer = self._buffer.offer
        # Flush-thread state.
        self._shipper = EnvelopeShipper(
            self._buffer,
            transport,
            source_host=settings.source_host,
            batch_prefix=f"{self._host}-{instance}-",
            schema=settings.envelope_schema,
            log_interval_s=settings.rejection_log_interval_s,
        )
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
            event = self._build(
                pool,
                region,
                proxy_id,
                outcome,
                latency_ms,
                status_code,
                bytes_in,
                bytes_out,
                attempts,
                target_domain,
                ts_ms,
            )
        except Exception as exc:
            return self._reject(exc)
        return self._offer(event)

    def emit_deferred(
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
    ) -> bool:
        """:meth:`emit` with the arguments checked by the flush thread, for callers on a hot
        path whose arguments are valid by construction (the ProxyWhirl integration).

        Only the time is taken here, and the arguments queued as they are. ``True`` if queued;
        ``False`` if the buffer is full or closed (counted like emit()'s). An event the flush
        thread finds invalid is counted as ``rejected`` then, and never sent. With ``strict``
        settings this is :meth:`emit` (it raises on invalid arguments).
        """
        queued = (
            pool,
            region,
            proxy_id,
            outcome,
            latency_ms,
            status_code,
            bytes_in,
            bytes_out,
            attempts,
            target_domain,
            time.time_ns() // 1_000_000,
        )
        return self.emit(*queued) if self._strict else self._offer(queued)

    def _resolve(self, queued: QueuedArguments) -> WireEvent | None:
        """On the flush thread: the event of an ``emit_deferred()`` call, or None (counted)."""
        try:
            return self._build(*queued)
        except Exception as exc:
            self._count_rejection(exc, queued=True)
            return None

    def _reject(self, exc: Exception) -> bool:
        if self._strict:
            field = getattr(exc, "field", "arguments")
            self._buffer.reject(field, privacy=isinstance(exc, PrivacyViolation), queued=False)
            if isinstance(exc, ProducerError):
                raise exc
            raise InvalidEvent(field, f"invalid argument ({type(exc).__name__})") from exc
        self._count_rejection(exc, queued=False)
        return False

    def _count_rejection(self, exc: Exception, *, queued: bool) -> None:
        """Count an invalid event (``queued``: one of emit_deferred(), which held a place in
        the buffer) and log it, rate-limited per field."""
        field = getattr(exc, "field", "arguments")
        self._buffer.reject(field, privacy=isinstance(exc, PrivacyViolation), queued=queued)
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
        shipper = self._shipper
        backoff_s = self._settings.retry_initial_ms / 1000.0
        retry_at = 0.0
        timeout: float | None = None
        while True:
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                now = time.monotonic()
                due, next_due, closing = self._buffer.take_due(now)
                shipper.encode(due)
                if now >= retry_at:
                    if shipper.send_pending():
                        backoff_s = self._settings.retry_initial_ms / 1000.0
                    else:
                        retry_at = time.monotonic() + backoff_s
                        backoff_s = min(backoff_s * 2, self._settings.retry_max_ms / 1000.0)
                if not shipper.pending:
                    self._buffer.mark_flushed()
                if closing:
                    if not shipper.pending and self._buffer.finish_if_empty():
                        return
                    if time.monotonic() >= self._buffer.stop_deadline:
                        shipper.drop_unsent()
                        return
            except Exception:  # a bug must not silently stop all delivery
                logger.exception("metrics producer flush thread failed; continuing")
                next_due, closing = time.monotonic() + 0.1, self._buffer.closed
            wait_until = min(next_due, retry_at if shipper.pending else math.inf)
            if closing:
                wait_until = min(wait_until, self._buffer.stop_deadline)
            timeout = None if wait_until == math.inf else max(0.0, wait_until - time.monotonic())
            if self._buffer.wake_pending():
                timeout = 0.0
