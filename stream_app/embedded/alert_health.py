"""Pipeline health of the embedded service, as the rule engines want it.

- :class:`PipelineProbe` turns the :class:`~stream_app.embedded.pipeline.EmbeddedPipeline`'s
  counters and watermark into a :class:`~stream_app.core.rules.PipelineStatus`.
- :class:`~stream_app.alerting.pipeline_alert.WithoutPipelineAlert` (re-exported) wraps the
  fleet engine's publisher: both engines are told the status (so both hold their rules while
  degraded), but only the per-scope engine's ``PipelineDegraded`` alert is delivered.
"""

from __future__ import annotations

import time

from stream_app.alerting.pipeline_alert import WithoutPipelineAlert
from stream_app.core.rules import PipelineStatus, SkewTracker
from stream_app.embedded.pipeline import EmbeddedPipeline


class PipelineProbe:
    """The embedded pipeline's health as the rule engine wants it.

    ``sink_ok`` is False while the sink's writes are being retried: since the previous probe the
    retry counter moved and no write went through. ``lag_ms`` is None: records wait in the
    bounded hand-off only, and a pipeline that falls behind (or a stuck sink) shows as a stale
    watermark, which the engine measures against its wall clock.
    """

    def __init__(self, pipeline: EmbeddedPipeline) -> None:
        self._pipeline = pipeline
        self._retries = pipeline.stats.sink_retries
        self._flushes = pipeline.stats.flushes
        self.sink_ok = True
        self._skew = SkewTracker()

    def status(self, now_ms: int | None = None) -> PipelineStatus:
        stats = self._pipeline.stats
        if stats.flushes != self._flushes:
            self.sink_ok = True
        elif stats.sink_retries != self._retries:
            self.sink_ok = False
        self._retries, self._flushes = stats.sink_retries, stats.flushes
        aggregator = self._pipeline.aggregator
        skewed = self._skew.update(
            aggregator.stats.clock_skew_by_host or {},
            time.time_ns() // 1_000_000 if now_ms is None else now_ms,
        )
        return PipelineStatus(
            lag_ms=None,
            sink_ok=self.sink_ok,
            watermark_ms=aggregator.watermark_ms,
            skewed_hosts=skewed,
        )


__all__ = ["PipelineProbe", "WithoutPipelineAlert"]
