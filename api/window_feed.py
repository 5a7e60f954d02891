"""Feeds :class:`api.prometheus.WindowAggregateCollector` from the stored windows.

The workers write partial sums of open windows every flush, so the newest rows of ``agg_10s`` are
usually incomplete. A window counts as complete once ``window end + grace + settle delay`` has
passed on the wall clock (the same rule the leader's fleet-wide alert rules use). Each refresh
reads the last ``lookback_windows`` complete windows and offers each (pool, region) total to the
collector, which keeps the newest. Every worker's partial sums merge in the query, so any number
of workers (and the embedded pipeline) feed one consistent exposition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.prometheus import WindowAggregateCollector
from api.settings import ApiSettings
from stream_app.alerting.window_reader import totals_to_aggregate
from stream_app.storage.errors import StorageError
from stream_app.storage.queries import StorageQueries

__all__ = ["FeedStatus", "WindowFeed"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FeedStatus:
    """What the last refreshes did (served on ``/readyz``)."""

    refreshes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_success_s: float | None = None
    last_error: str | None = None
    last_window_end_ms: int | None = None
    scopes: int = 0


class WindowFeed:
    """Reads settled windows from storage into the collector, once or on a timer."""

    def __init__(
        self,
        queries: StorageQueries,
        collector: WindowAggregateCollector,
        settings: ApiSettings,
        *,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._queries = queries
        self._collector = collector
        self._settings = settings
        self._clock_s = clock_s
        self.status = FeedStatus()

    def settled_end_ms(self) -> int:
        """End of the newest window that counts as complete now."""
        window_ms = self._settings.window_s * 1000
        now_ms = int(self._clock_s() * 1000)
        return (now_ms - self._settings.settle_ms) // window_ms * window_ms

    def refresh(self) -> int:
        """One read; returns how many (pool, region) windows were offered.

        Raises :class:`stream_app.storage.errors.StorageError` when storage does not answer.
        """
        end_ms = self.settled_end_ms()
        start_ms = end_ms - self._settings.lookback_windows * self._settings.window_s * 1000
        totals = self._queries.window_totals(start_ms, end_ms)
        offered = 0
        for row in totals:
            if row.window_s != self._settings.window_s:
                continue
            self._collector.observe(totals_to_aggregate(row))
            offered += 1
        self.status.last_window_end_ms = end_ms
        return offered

    async def run(self) -> None:
        """Refresh every ``refresh_interval_s`` until cancelled; storage errors are counted."""
        while True:
            await self.refresh_async()
            await asyncio.sleep(self._settings.refresh_interval_s)

    async def refresh_async(self) -> bool:
        """:meth:`refresh` off the event loop; ``False`` (and counted) when storage failed."""
        status = self.status
        status.refreshes += 1
        try:
            await asyncio.to_thread(self.refresh)
        except StorageError as exc:
            status.failures += 1
            status.consecutive_failures += 1
            status.last_error = str(exc)
            if status.consecutive_failures == 1:
                logger.warning("reading stored windows failed (will retry): %s", exc)
            return False
        if status.consecutive_failures:
            logger.info(
                "reading stored windows works again after %d failures",
                status.consecutive_failures,
            )
        status.consecutive_failures = 0
        status.last_error = None
        status.last_success_s = self._clock_s()
        status.scopes = len(self._collector.scopes())
        return True
