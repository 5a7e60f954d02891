"""The flush thread's second half: due batches encoded as envelopes and handed to the
transport in order.

Retriable transport errors keep the envelope (its events stay inside the buffer bound) for the
next round, which the flush thread schedules with an exponential backoff; poison errors drop it
and count. Send errors are logged rate-limited per kind, with the envelope's batch id and event
count, never its content.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque

from producer.buffer import Batch, EventBuffer
from producer.envelope import Envelope, EnvelopeSchema, build_envelope
from producer.errors import TransportError, TransportRejected
from producer.ratelimit import LogGate
from producer.transport import Transport

__all__ = ["EnvelopeShipper"]

logger = logging.getLogger(__name__)


class EnvelopeShipper:
    """Envelopes waiting for the transport, oldest first (used by the flush thread only)."""

    def __init__(
        self,
        buffer: EventBuffer,
        transport: Transport,
        *,
        source_host: str,
        batch_prefix: str,
        schema: EnvelopeSchema,
        log_interval_s: float,
    ) -> None:
        self._buffer = buffer
        self._transport = transport
        self._host = source_host
        self._batch_prefix = batch_prefix
        self._schema = schema
        self._batch_seq = 0
        self._send_log = LogGate(log_interval_s)
        self.pending: deque[Envelope] = deque()

    def encode(self, due: list[Batch]) -> None:
        """Encode due batches as envelopes, queued for :meth:`send_pending` in order."""
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
                self.pending.append(
                    build_envelope(
                        pool,
                        records,
                        source_host=self._host,
                        batch_id=batch_id,
                        schema=self._schema,
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

    def send_pending(self) -> bool:
        """Send pending envelopes in order; ``False`` if a retriable error stopped the round."""
        while self.pending:
            env = self.pending[0]
            try:
                self._transport.send(env.pool, env.payload, env.event_count)
            except Exception as exc:
                if isinstance(exc, TransportError) and exc.retriable:
                    env.attempts += 1
                    self._buffer.send_failed(env.event_count, dropped=False)
                    self._log_send_error(env, exc, dropped=False)
                    return False
                self.pending.popleft()
                self._buffer.send_failed(env.event_count, dropped=True)
                self._log_send_error(env, exc, dropped=True)
                continue
            self.pending.popleft()
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

    def drop_unsent(self) -> None:
        """At the close deadline: drop every envelope and event not sent yet."""
        unsent = sum(env.event_count for env in self.pending)
        self.pending.clear()
        self._buffer.drop(unsent)
        unsent += self._buffer.drop_held_and_finish()
        if unsent:
            logger.warning("metrics producer closed with %d events unsent (dropped)", unsent)
