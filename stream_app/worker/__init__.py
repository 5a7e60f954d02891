"""The distributed runtime: the Faust stream worker (Kafka -> core -> ClickHouse), effectively once.

Modules, one concept each:

- :mod:`.settings`: :class:`~.settings.WorkerSettings` (``PWM_WORKER_*`` + YAML file).
- :mod:`.service`: :class:`~.service.WorkerService`, one worker process (storage, topics, the
  Faust app, the cycle loop, ``/metrics``); :func:`~.service.run_worker`.
- :mod:`.faust_app`: the Faust app, its agent and rebalance hooks.
- :mod:`.runtime`: :class:`~.runtime.StreamWorker`, records in, flushes out, commits after.
- :mod:`.cycle` / :mod:`.cycle_store`: what one flush cycle takes, and the steps that store,
  publish and commit it.
- :mod:`.idle`: the idle rule's clock (time counts as idle only when the input confirms it).
- :mod:`.ingest`: decoding one record into a partition's aggregator; repeated envelopes.
- :mod:`.partitions`: per-partition state, commit metadata (watermark, flush intent), the
  pool -> partition mapping.
- :mod:`.takeover`: read position, watermark and open windows of newly assigned partitions.
- :mod:`.rebuild` / :mod:`.kafka_ranges`: rewriting a flush whose write was interrupted.
- :mod:`.publisher` / :mod:`.records`: dead letters and closed windows, delivered before commit.
- :mod:`.kafka_consumer` / :mod:`.kafka_errors`: offsets with metadata, end offsets, pause and
  seek through Faust's consumer; aiokafka/Faust error translation.
- :mod:`.metrics` / :mod:`.http` / :mod:`.stats`: Prometheus collector, ``/metrics`` and
  ``/health`` server, counters.
- :mod:`.topics`: the deployment's topics and ``topics create``.
- :mod:`.simulate`: ``simulate``, a simulated fleet producing to Kafka.

Effectively once: a flush (partial sums since the previous one, per partition) is written with
ONE insert whose dedup token derives from the offset ranges it covers. Before the write its
intent (the ranges) is committed with the partitions' unchanged offsets; after it, the offsets
move past the ranges. A partition taken over is read from ``max(committed, last stored offset
+ 1)`` after any interrupted flush was rebuilt from the same records and written again with the
same token, so nothing is lost and nothing is counted twice, whichever tables of the
materialized-view fan-out the interrupted insert had reached. Errors: :mod:`.errors`.
"""
