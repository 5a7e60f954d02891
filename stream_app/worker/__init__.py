"""The distributed runtime: the Faust stream worker (Kafka -> core -> ClickHouse), effectively once.

Modules, one concept each:

- :mod:`.settings`: :class:`~.settings.WorkerSettings` (``PWM_WORKER_*`` + YAML file).
- :mod:`.service`: :class:`~.service.WorkerService`, one worker process (storage, topics, the
  Faust app, the cycle loop, ``/metrics``); :func:`~.service.run_worker`.
- :mod:`.faust_app`: the Faust app, its agent and rebalance hooks.
- :mod:`.runtime`: :class:`~.runtime.StreamWorker`, records in, flushes out, commits after.
- :mod:`.assignment` / :mod:`.handover`: the state of one assignment, built when partitions
  are taken over and discarded when they are given up or lost.
- :mod:`.cycle` / :mod:`.cycle_store`: what one flush cycle takes, and the steps that store,
  publish and commit it.
- :mod:`.committer`: the one place offsets are committed.
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

Effectively once (a flush is ONE insert whose dedup token derives from its offset ranges; its
intent is committed before it, the offsets after; an interrupted flush is rebuilt and written
again with the same token): docs/architecture.md, "The flush cycle". Errors: :mod:`.errors`.
"""
