"""The pure stream core: windows, watermark, accumulators and aggregation (no I/O).

Nothing here imports a runtime, broker, database, socket or asyncio (``tests/core/test_purity``
holds it); adapters feed it decoded events and take its output.

- :mod:`.windows`: tumbling event-time windows (``WindowSpec``).
- :mod:`.watermark`: the watermark, its idle rule and clock skew guard (``Watermark``).
- :mod:`.accumulator`: mergeable per-scope sums (``Accumulator``).
- :mod:`.ingest`: the hot loop counting a record's events into pending deltas.
- :mod:`.columns`: columnar envelopes (schema v2) counted with array operations
  (:mod:`.bucket_keys`: latency bucket keys in bulk).
- :mod:`.record_time`: event time against record time (one host's clock skew).
- :mod:`.fold`: pending deltas folded into the open windows.
- :mod:`.open_windows`: open-window state of one level, bounded per window.
- :mod:`.late`: late events and their bounded side output.
- :mod:`.contributions`: what a flush hands a sink (``Flush``, ``Contribution``).
- :mod:`.config` / :mod:`.intake` / :mod:`.aggregator`: ``AggregatorConfig``, the input side
  of the aggregator (``RecordIntake``) and ``WindowAggregator`` (:mod:`.aggregator_stats`:
  what it reports).
- :mod:`.rules`: alert rule evaluation (its own errors: :mod:`.rules.errors`).

Errors: the aggregation modules define no error classes. Valid decoded events never raise;
``ValueError`` means a configuration, window spec, watermark state or restore that cannot be
used, found at start-up or restore (fix the input, do not retry).
"""
