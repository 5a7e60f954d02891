"""``proxywhirl-metrics serve``: HTTP ingest, pipeline, store and API in one process.

- :mod:`.intake`: one HTTP body -> validated events plus per-event refusals (index, reason)
- :mod:`.body`: Content-Encoding (gzip, zstd) with size limits before and after decompression
- :mod:`.inbox`: the durable inbox (SQLite): accepted records and seen batch ids, so an
  acknowledged batch survives a crash and a retried one is never counted twice
- :mod:`.dead_letters`: refused events and records kept in ClickHouse (``ingest_dead_letters``)
- :mod:`.ingestor`: the embedded ingest (inbox -> the pipeline's bounded queue) and the
  distributed one (forward to the Kafka topic)
- :mod:`.process`: the process itself: store, pipeline, alerting, API app, uvicorn
"""
