"""Accepted means storable: every event ``decode_record`` accepts can be aggregated, flushed and
inserted into ClickHouse (chDB), at the very edges of every range the schema allows.

This is the property that makes a poison pill impossible: before it held, an event stamped after
2106 passed decoding and then failed every flush of its partition.
"""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_store import Store

from schemas.events import (
    DOMAIN_PATTERN,
    LABEL_PATTERN,
    MAX_BYTES,
    MAX_LATENCY_MS,
    MAX_TS_MS,
    PROXY_ID_PATTERN,
    Outcome,
)
from schemas.privacy import privacy_reason
from schemas.wire import decode_record
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.storage.sink import ClickHouseSink

_offsets = itertools.count()


def _edges(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([low, low + 1, high - 1, high]), st.integers(low, high))


labels = st.from_regex(LABEL_PATTERN, fullmatch=True).filter(lambda v: privacy_reason(v) is None)
domains = st.from_regex(DOMAIN_PATTERN, fullmatch=True).filter(lambda v: privacy_reason(v) is None)
documents = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=64),
        # Times cluster in a few days so one insert touches few daily partitions, with the
        # extremes of the range among them.
        "ts_ms": st.sampled_from([0, 86_399_999, 1_700_000_000_000, MAX_TS_MS - 1, MAX_TS_MS]),
        "pool": labels,
        "region": labels,
        "outcome": st.sampled_from([o.value for o in Outcome]),
        "latency_ms": st.one_of(
            st.sampled_from([0.0, 1e-9, MAX_LATENCY_MS]),
            st.floats(0.0, MAX_LATENCY_MS, allow_nan=False),
        ),
        "source_host": labels,
    },
    optional={
        "proxy_id": st.from_regex(PROXY_ID_PATTERN, fullmatch=True),
        "status_code": st.one_of(st.none(), _edges(100, 599)),
        "bytes_in": _edges(0, MAX_BYTES),
        "bytes_out": _edges(0, MAX_BYTES),
        "attempts": _edges(1, 1000),
        "target_domain": st.one_of(st.none(), domains),
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(documents, min_size=1, max_size=12))
def test_every_accepted_event_can_be_aggregated_flushed_and_stored(
    store: Store, docs: list[dict[str, object]]
) -> None:
    events = [e for doc in docs for e in decode_record(json.dumps(doc).encode())]
    aggregator = WindowAggregator(AggregatorConfig(window_s=10, max_future_skew_ms=None))
    aggregator.add(events, source="storable", partition=0, offset=next(_offsets), now_ms=0)
    aggregator.close_due(MAX_TS_MS + 86_400_000)  # every window closes: nothing left behind
    flush = aggregator.flush()
    sink = ClickHouseSink(store.client, store.settings, sleep=lambda _: None)

    assert sink.write(flush) == []
    assert sink.stats.rejected == 0
    assert aggregator.stats.events_accepted == len(events)
