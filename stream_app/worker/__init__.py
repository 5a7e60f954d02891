"""The distributed runtime: the Faust stream worker (Kafka -> core -> ClickHouse), effectively once.

Modules, one concept each:

- :mod:`.settings`: :class:`~.settings.WorkerSettings` (``PWM_WORKER_*`` + YAML file).
- :mod:`.runtime`: :class:`~.runtime.StreamWorker`, records in, flushes out, commits after.
- :mod:`.partitions`: per-partition state, commit metadata (the watermark), pool -> partition.
- :mod:`.takeover`: read position, watermark and open windows of newly assigned partitions.
- :mod:`.publisher` / :mod:`.records`: dead letters and closed windows, delivered before commit.
- :mod:`.kafka_consumer` / :mod:`.kafka_errors`: offsets with metadata, end offsets, pause;
  aiokafka/Faust error translation.
- :mod:`.faust_app`: the Faust app, its agent and rebalance hooks.
- :mod:`.service`: :class:`~.service.WorkerService` (storage, topics, app, cycles, ``/metrics``).
- :mod:`.metrics` / :mod:`.http` / :mod:`.stats`: Prometheus collector, ``/metrics`` and
  ``/health`` server, counters.
- :mod:`.topics`: the deployment's topics and ``topics create``.
- :mod:`.simulate`: ``simulate``, a simulated fleet producing to Kafka.

Effectively once: a flush (partial sums since the previous one, per partition) is written with
ONE insert whose dedup token derives from the offset ranges it covers; only then are the
offsets committed (with the watermark). A partition taken over is read from
``max(committed, last stored offset + 1)``, so a flush stored but not committed is never read
again, and a retried flush is deduplicated by ClickHouse. Errors: :mod:`.errors`.
"""
