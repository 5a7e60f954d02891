"""What the spooled transports share (:mod:`producer.kafka`, :mod:`producer.http_transport`).

:class:`SpooledTransport` owns a private asyncio loop on a daemon thread, the lock, the in-flight
table (sequence numbers, envelope bytes), the SQLite outage spool (:class:`producer.spool.Spool`),
the counters, the stats snapshot and the bounded close. ``send()`` (on the producer's flush
thread) never waits for the network: while the transport is connected, the spool is empty and the
in-flight bytes stay within ``max_in_flight_bytes``, the envelope is delivered live; otherwise it
goes to the spool and the replayer is woken. Sequence numbers are taken under the lock and live
deliveries are scheduled under it too, so they start in hand-over order.

A transport supplies only what is its own: how one envelope is delivered and its answer
classified (:meth:`SpooledTransport._deliver_one`, which ends every failure in
:meth:`SpooledTransport._spool_retriable` or :meth:`SpooledTransport._count_poison`), how the
spool is replayed (:meth:`SpooledTransport._replay_loop`), what is left to do at close
(:meth:`SpooledTransport._finish_spool`, :meth:`SpooledTransport._disconnect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from producer.errors import SpoolError, TransportRejected, TransportUnavailable
from producer.ratelimit import LogGate
from producer.spool import Spool

__all__ = ["InFlight", "SpoolSettings", "SpooledTransport"]

StatsT = TypeVar("StatsT")

_LOG_INTERVAL_S = 30.0


class SpoolSettings(Protocol):
    """The settings every spooled transport has."""

    @property
    def spool_path(self) -> Path | None: ...
    @property
    def spool_max_bytes(self) -> int: ...
    @property
    def spool_max_rows(self) -> int: ...
    @property
    def spool_synchronous(self) -> Literal["NORMAL", "FULL"]: ...
    @property
    def max_in_flight_bytes(self) -> int: ...
    @property
    def close_timeout_s(self) -> float: ...


@dataclass(slots=True)
class InFlight:
    """An envelope handed to the loop and not answered yet."""

    pool: str
    payload: bytes
    event_count: int
    started: float


class SpooledTransport(Generic[StatsT]):
    """Base of a :class:`producer.Transport` that delivers from a private loop and spools."""

    def __init__(
        self,
        settings: SpoolSettings,
        *,
        name: str,
        peer: str,
        counters: Iterable[str],
        stats_type: Callable[..., StatsT],
        log: logging.Logger,
    ) -> None:
        """Open the spool; the subclass sets its own state, then calls :meth:`_start_loop`.

        ``name`` ("Kafka") and ``peer`` ("broker") word the errors, logs and thread names;
        ``log`` is the transport module's logger, so records keep their module's name. The
        transport starts disconnected: the subclass decides when it may send live.
        """
        self._name = name
        self._peer = peer
        self._logger = log
        self._spool = Spool(
            settings.spool_path if settings.spool_path is not None else ":memory:",
            max_bytes=settings.spool_max_bytes,
            max_rows=settings.spool_max_rows,
            synchronous=settings.spool_synchronous,
        )
        self._durable = settings.spool_path is not None
        self._max_in_flight_bytes = settings.max_in_flight_bytes
        self._close_timeout_s = settings.close_timeout_s
        self._log = LogGate(_LOG_INTERVAL_S)
        self._lock = threading.Lock()
        self._seq = self._spool.last_seq
        self._in_flight: dict[int, InFlight] = {}
        self._in_flight_bytes = 0
        self._connected = False
        self._closing = False
        self._counts: dict[str, int] = dict.fromkeys(counters, 0)
        self._stats_type = stats_type
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"pwm-producer-{name.lower()}", daemon=True
        )

    def _start_loop(self) -> None:
        self._thread.start()
        self._call(self._setup()).result(timeout=30)

    # ------------------------------------------------------------------ flush-thread side

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        """Hand one envelope over; returns at once (see the module docstring)."""
        size = len(payload)
        with self._lock:
            if self._closing:
                raise TransportRejected(f"{self._name} transport is closed")
            self._seq += 1
            seq = self._seq
            self._counts["accepted_batches"] += 1
            self._counts["accepted_events"] += event_count
            live = (
                self._connected
                and self._spool.rows == 0
                and self._in_flight_bytes + size <= self._max_in_flight_bytes
            )
            if live:
                self._in_flight[seq] = InFlight(pool, payload, event_count, time.monotonic())
                self._in_flight_bytes += size
                # Scheduled under the lock, so deliveries start in sequence order.
                self._loop.call_soon_threadsafe(self._start_delivery, seq)
        if live:
            return
        try:
            self._to_spool(seq, pool, payload, event_count)
        except SpoolError as exc:
            with self._lock:
                self._counts["accepted_batches"] -= 1
                self._counts["accepted_events"] -= event_count
            raise TransportUnavailable(f"{self._peer} unavailable and spool failed: {exc}") from exc
        self._loop.call_soon_threadsafe(self._replay_wake.set)

    def close(self, timeout_s: float | None = None) -> None:
        """Wait (bounded) for in-flight envelopes and the spool's replay, stop. Idempotent."""
        timeout = self._close_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._call(self._shutdown(timeout)).result(timeout=timeout + 10.0)
        except Exception:
            self._logger.exception("%s transport did not shut down cleanly", self._name)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._spool.close()

    def stats(self) -> StatsT:
        """A consistent snapshot of the counters."""
        with self._lock:
            return self._stats_type(
                **self._counts,
                **self._extra_stats(),
                dropped_spool_full_events=self._spool.dropped_events,
                connected=self._connected,
                in_flight_bytes=self._in_flight_bytes,
                spool_rows=self._spool.rows,
                spool_events=self._spool.events,
            )

    def _extra_stats(self) -> dict[str, int]:
        """Gauges of one transport's stats only (read under the lock)."""
        return {}

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for counter, delta in deltas.items():
                self._counts[counter] += delta

    def _to_spool(self, seq: int, pool: str, payload: bytes, event_count: int) -> None:
        if not self._spool.append(seq, pool, payload, event_count):
            return  # larger than the whole spool: counted by the spool as dropped
        with self._lock:
            self._counts["spooled_batches"] += 1
            if "spooled_events" in self._counts:
                self._counts["spooled_events"] += event_count

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # ------------------------------------------------------------------ loop side

    async def _setup(self) -> None:
        self._replay_wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._stop = asyncio.Event()
        await self._setup_loop()
        self._replayer = asyncio.create_task(
            self._replay_loop(), name=f"pwm-{self._name.lower()}-replay"
        )

    async def _setup_loop(self) -> None:
        """The transport's own loop-side state (before the replayer starts)."""

    async def _replay_loop(self) -> None:
        raise NotImplementedError

    async def _deliver_one(self, seq: int, item: InFlight) -> None:
        """Deliver one live envelope and settle its answer (sent, spooled again or poison)."""
        raise NotImplementedError

    async def _finish_spool(self, left: Callable[[], float]) -> None:
        """At close, after the in-flight envelopes: replay what the spool holds (bounded)."""

    async def _disconnect(self, left: Callable[[], float]) -> None:
        """At close, once nothing runs on the loop any more: release the connection."""

    def _in_flight_drained(self) -> bool:
        """``True`` if nothing is in flight; otherwise arm ``_drained`` (set by the last
        delivery to finish) before returning ``False``."""
        self._drained.clear()
        with self._lock:
            if not self._in_flight:
                self._drained.set()
                return True
        return False

    def _start_delivery(self, seq: int) -> None:
        task = asyncio.create_task(self._deliver(seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, seq: int) -> None:
        item = self._in_flight[seq]
        try:
            await self._deliver_one(seq, item)
        finally:
            with self._lock:
                if self._in_flight.pop(seq, None) is not None:
                    self._in_flight_bytes -= len(item.payload)
                drained = not self._in_flight
            if drained:
                self._drained.set()

    def _spool_retriable(self, seq: int, item: InFlight) -> None:
        """A live envelope failed retriably: disconnect, spool it, wake the replayer."""
        with self._lock:
            self._counts["send_errors_retriable"] += 1
            self._connected = False
        try:
            self._to_spool(seq, item.pool, item.payload, item.event_count)
        except SpoolError:
            self._logger.exception(
                "cannot spool a failed envelope (%d events lost)", item.event_count
            )
            self._count(dropped_closed_events=item.event_count)
        self._replay_wake.set()

    def _count_poison(self, event_count: int) -> None:
        self._count(
            send_errors_poison=1, dropped_rejected_batches=1, dropped_rejected_events=event_count
        )

    def _connect_if_spool_empty(self) -> None:
        with self._lock:
            if self._spool.rows == 0:
                self._connected = True

    async def _idle(self) -> None:
        """Sleep until ``send()`` spools an envelope (or close wakes the replayer)."""
        self._replay_wake.clear()
        await self._replay_wake.wait()

    async def _shutdown(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        if not self._in_flight_drained():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), left())
        await self._finish_spool(left)
        self._stop.set()
        self._replay_wake.set()
        self._replayer.cancel()
        for task in list(self._tasks):
            task.cancel()  # their failure handlers spool what is still unanswered
        await asyncio.gather(self._replayer, *self._tasks, return_exceptions=True)
        await self._disconnect(left)
        if not self._durable and self._spool.rows:
            lost = self._spool.events
            self._count(dropped_closed_events=lost)
            self._logger.warning(
                "%s transport closed with %d events in its memory-only spool (dropped)",
                self._name,
                lost,
            )
