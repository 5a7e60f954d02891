"""Counting columnar envelopes (schema v2) with array operations, into the same pending deltas.

A v2 envelope's events are not counted one by one: :meth:`DeferredRows.append` keeps their
columns (a few array operations per record), and :meth:`DeferredRows.fold_into` counts every row
kept since the last fold at once, into exactly the pending deltas
(:data:`stream_app.core.ingest.PendingDeltas`) that :func:`stream_app.core.ingest.accumulate_record`
would have built from the same events in the same order:

* rows are grouped by ``(window start, pool, region, proxy id)`` (``np.unique`` on one integer
  key), and the groups are visited in order of first appearance, so the pending maps get their
  keys in the order the hot loop would have inserted them;
* counters are summed per group with integer arithmetic, minimum and maximum per group, and the
  latency sum with ``np.add.at`` starting from the delta's current sum, which adds the rows one
  by one in their order: the very float additions of the hot loop;
* outcome, status class and latency bucket counts come from ``np.unique`` over ``group x code``
  (bucket keys from :func:`stream_app.core.bucket_keys.bucket_keys`);
* a late event's row counts only ``late_events``, on its scope's window holding the watermark
  (proxy None), after the on-time rows of its record, as ``WindowAggregator._on_late`` does.

Whoever mixes v1 events in must fold the deferred rows first, so the order of additions (and so
every float sum) is the same as if all events had come one by one. Pure: numpy, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.column_batch import OUTCOME_ORDER, ColumnBatch
from schemas.events import Outcome
from schemas.latency_buckets import MAX_KEY
from stream_app.core.accumulator import OUTCOME_NAMES, Accumulator, new_delta, status_class
from stream_app.core.bucket_keys import bucket_keys
from stream_app.core.ingest import PendingDeltas
from stream_app.core.record_time import OutOfRangeKind

__all__ = ["MAX_DEFERRED_ROWS", "DeferredRows", "split_rows"]

Ints = npt.NDArray[np.int64]

MAX_DEFERRED_ROWS = 1 << 22
"""Rows kept before they must be folded: keeps every int64 byte sum exact (rows x 2^40 < 2^63)."""

_OUTCOME_NAMES = np.array([OUTCOME_NAMES[o] for o in OUTCOME_ORDER], dtype=object)
_SUCCESS_CODE = OUTCOME_ORDER.index(Outcome.SUCCESS)
_CLASS_NAMES = np.array(
    [status_class(None)] + [status_class(c * 100) for c in range(1, 6)], dtype=object
)
"""Status class by ``status_code // 100`` (0: no status)."""
_N_OUTCOMES = len(OUTCOME_ORDER)
_N_CLASSES = len(_CLASS_NAMES)
_N_BUCKETS = MAX_KEY + 1
_DENSE_KEYS = 1 << 22
"""Key spaces up to this size are counted with tables (bincount) instead of sorting the rows."""


class _Interner:
    __slots__ = ("index", "names")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def codes(self, values: Sequence[str]) -> Ints:
        """Global ids of ``values``, with -1 appended (the id of "none" for index -1)."""
        index = self.index
        names = self.names
        out: list[int] = []
        for value in values:
            code = index.get(value)
            if code is None:
                code = index[value] = len(names)
                names.append(value)
            out.append(code)
        out.append(-1)
        return np.array(out, dtype=np.int64)


class DeferredRows:
    """Rows of columnar records not yet counted into the pending deltas (see module docstring)."""

    __slots__ = ("_chunks", "_pools", "_proxies", "_regions", "rows", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        """Size of the windows: every window start kept is a multiple of it."""
        self._pools = _Interner()
        self._regions = _Interner()
        self._proxies = _Interner()
        self._chunks: list[tuple[Ints, ...]] = []
        self.rows = 0

    def append(
        self, batch: ColumnBatch, rows: Ints, window_start_ms: Ints, late: Ints, current_ms: int
    ) -> None:
        """Keep ``batch``'s on-time ``rows`` (their window starts given) and its ``late`` rows,
        to be counted on the window starting at ``current_ms``."""
        pools = self._pools.codes(batch.pools)
        regions = self._regions.codes(batch.regions)
        proxies = self._proxies.codes(batch.proxy_ids)
        n = len(rows)
        m = len(late)
        if not m and n == len(batch):  # every row on time (the usual record): columns as sent
            self._chunks.append(
                (
                    window_start_ms,
                    pools[batch.pool],
                    regions[batch.region],
                    proxies[batch.proxy_id],
                    batch.outcome,
                    batch.status_code // 100,
                    bucket_keys(batch.latency_ms),
                    batch.bytes_in,
                    batch.bytes_out,
                    batch.attempts,
                    np.zeros(n, dtype=np.int64),
                    batch.latency_ms.view(np.int64),
                )
            )
            self.rows += n
            return
        zeros = np.zeros(m, dtype=np.int64)
        chunk = (
            np.concatenate([window_start_ms, np.full(m, current_ms, dtype=np.int64)]),
            pools[np.concatenate([batch.pool[rows], batch.pool[late]])],
            regions[np.concatenate([batch.region[rows], batch.region[late]])],
            np.concatenate([proxies[batch.proxy_id[rows]], zeros - 1]),
            np.concatenate([batch.outcome[rows], zeros]),
            np.concatenate([batch.status_code[rows] // 100, zeros]),
            np.concatenate([bucket_keys(batch.latency_ms[rows]), zeros]),
            np.concatenate([batch.bytes_in[rows], zeros]),
            np.concatenate([batch.bytes_out[rows], zeros]),
            np.concatenate([batch.attempts[rows], zeros]),
            np.concatenate([np.zeros(n, dtype=np.int64), zeros + 1]),
            np.concatenate([batch.latency_ms[rows], zeros]).view(np.int64),
        )
        self._chunks.append(chunk)
        self.rows += n + m

    def fold_into(self, pending: PendingDeltas) -> None:
        """Count every kept row into ``pending`` and forget them."""
        if not self._chunks:
            return
        cols = [np.concatenate(parts) for parts in zip(*self._chunks, strict=True)]
        window, pool, region, proxy, outcome, sclass, bucket = cols[:7]
        bytes_in, bytes_out, attempts, is_late = cols[7:11]
        latency = cols[11].view(np.float64)
        pool_names = self._pools.names
        region_names = self._regions.names
        proxy_names = self._proxies.names
        self._chunks = []
        self.rows = 0
        self._pools = _Interner()
        self._regions = _Interner()
        self._proxies = _Interner()

        group, firsts = _groups(
            window, pool, region, proxy, len(pool_names), len(region_names), self.window_ms
        )
        n_groups = len(firsts)
        accs: list[Accumulator] = []
        append = accs.append
        for w, p, r, x in zip(
            window[firsts].tolist(),
            pool[firsts].tolist(),
            region[firsts].tolist(),
            proxy[firsts].tolist(),
            strict=True,
        ):
            key = (w, pool_names[p], region_names[r])
            by_proxy = pending.get(key)
            if by_proxy is None:
                by_proxy = pending[key] = {}
            proxy_id = None if x < 0 else proxy_names[x]
            acc = by_proxy.get(proxy_id)
            if acc is None:
                acc = by_proxy[proxy_id] = new_delta()
            append(acc)

        on_time = is_late == 0
        g = group[on_time]
        lat = latency[on_time]
        requests = np.bincount(g, minlength=n_groups)
        successes = np.bincount(g[outcome[on_time] == _SUCCESS_CODE], minlength=n_groups)
        late_events = np.bincount(group[~on_time], minlength=n_groups)
        sums = np.array([acc.latency_sum_ms for acc in accs], dtype=np.float64)
        np.add.at(sums, g, lat)  # one by one, in row order: the hot loop's additions
        lows = np.full(n_groups, np.inf)
        np.minimum.at(lows, g, lat)
        highs = np.full(n_groups, -np.inf)
        np.maximum.at(highs, g, lat)
        totals = np.zeros((3, n_groups), dtype=np.int64)
        np.add.at(totals[0], g, bytes_in[on_time])
        np.add.at(totals[1], g, bytes_out[on_time])
        np.add.at(totals[2], g, attempts[on_time])
        for acc, n, ok, late, total, low, high, b_in, b_out, tries in zip(
            accs,
            requests.tolist(),
            successes.tolist(),
            late_events.tolist(),
            sums.tolist(),
            lows.tolist(),
            highs.tolist(),
            totals[0].tolist(),
            totals[1].tolist(),
            totals[2].tolist(),
            strict=True,
        ):
            acc.late_events += late
            if not n:
                continue
            acc.requests += n
            acc.successes += ok
            acc.latency_sum_ms = total
            if low < acc.latency_min_ms:
                acc.latency_min_ms = low
            if high > acc.latency_max_ms:
                acc.latency_max_ms = high
            acc.bytes_in += b_in
            acc.bytes_out += b_out
            acc.attempts += tries
        _count_codes(accs, "outcomes", g, outcome[on_time], _N_OUTCOMES, _OUTCOME_NAMES)
        _count_codes(accs, "status_classes", g, sclass[on_time], _N_CLASSES, _CLASS_NAMES)
        _count_codes(accs, "latency_buckets", g, bucket[on_time], _N_BUCKETS, None)


def _groups(
    window: Ints,
    pool: Ints,
    region: Ints,
    proxy: Ints,
    n_pools: int,
    n_regions: int,
    window_ms: int,
) -> tuple[Ints, Ints]:
    """Group id of each row (groups numbered in order of first appearance) and each group's
    first row."""
    lowest = int(window.min())
    window_code = (window - lowest) // window_ms  # starts are multiples of window_ms
    n_windows = (int(window.max()) - lowest) // window_ms + 1
    n_proxies = int(proxy.max()) + 2
    space = n_windows * n_pools * n_regions * n_proxies
    if space <= _DENSE_KEYS:
        key = ((window_code * n_pools + pool) * n_regions + region) * n_proxies + (proxy + 1)
        return _dense_groups(key.reshape(-1), space)
    if space < 1 << 62:
        key = ((window_code * n_pools + pool) * n_regions + region) * n_proxies + (proxy + 1)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # pragma: no cover - beyond 2^62 combinations
        stacked = np.stack([window_code, pool, region, proxy], axis=1)
        _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first), dtype=np.int64)
    return rank[inverse.reshape(-1)], first[order].astype(np.int64)


def _dense_groups(key: Ints, space: int) -> tuple[Ints, Ints]:
    """:func:`_groups` for keys below ``space`` (small enough for a table): each key's first
    row by a minimum over row numbers, no sort of the rows."""
    n = len(key)
    first_row = np.full(space, n, dtype=np.int64)
    np.minimum.at(first_row, key, np.arange(n, dtype=np.int64))
    present = np.flatnonzero(first_row < n)
    firsts = first_row[present]
    order = np.argsort(firsts, kind="stable")  # groups in order of first appearance
    rank = np.empty(space, dtype=np.int64)
    rank[present[order]] = np.arange(len(present), dtype=np.int64)
    return rank[key], firsts[order]


def _count_codes(
    accs: list[Accumulator],
    field: str,
    group: Ints,
    codes: Ints,
    n_codes: int,
    names: npt.NDArray[np.object_] | None,
) -> None:
    """Add the count of each (group, code) to the group's count map (keyed by name or code)."""
    if not len(group):
        return
    if len(accs) * n_codes <= _DENSE_KEYS:  # a table of (group, code) counts, no sort
        table = np.bincount(group * n_codes + codes, minlength=len(accs) * n_codes)
        pairs = np.flatnonzero(table)
        counts = table[pairs]
    else:
        pairs, counts = np.unique(group * n_codes + codes, return_counts=True)
    groups, keys = np.divmod(pairs, n_codes)
    bounds = np.flatnonzero(np.diff(groups)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), len(pairs)]
    key_list = (keys if names is None else names[keys]).tolist()
    count_list = counts.tolist()
    for g, a, b in zip(groups[starts].tolist(), starts, ends, strict=True):
        acc = accs[g]
        counter: dict[object, int] = getattr(acc, field)
        if not counter:
            setattr(acc, field, dict(zip(key_list[a:b], count_list[a:b], strict=True)))
            continue
        get = counter.get
        for key, count in zip(key_list[a:b], count_list[a:b], strict=True):
            counter[key] = get(key, 0) + count


def split_rows(
    batch: ColumnBatch,
    *,
    window_ms: int,
    watermark_ms: int | None,
    low_ms: int | None,
    high_ms: int | None,
) -> tuple[Ints, Ints, Ints, list[tuple[int, OutOfRangeKind]]]:
    """Judge every row of ``batch``: the on-time rows with their window starts, the late rows,
    and the rows refused for their time (event time above ``high_ms``: ``clock_skew``, below
    ``low_ms``: ``too_old``), in row order."""
    ts = batch.ts_ms
    refused: list[tuple[int, OutOfRangeKind]] = []
    kept = np.ones(len(ts), dtype=bool)
    if high_ms is not None:
        kept &= ts <= high_ms
    if low_ms is not None:
        kept &= ts >= low_ms
    if kept.all():
        rows = np.arange(len(ts), dtype=np.int64)
    else:
        for i in np.flatnonzero(~kept).tolist():
            too_new = high_ms is not None and int(ts[i]) > high_ms
            refused.append((i, "clock_skew" if too_new else "too_old"))
        rows = np.flatnonzero(kept)
    starts = ts[rows] - ts[rows] % window_ms
    if watermark_ms is None:
        return rows, starts, rows[:0], refused
    closed = starts + window_ms <= watermark_ms
    if not closed.any():
        return rows, starts, rows[:0], refused
    return rows[~closed], starts[~closed], rows[closed], refused
