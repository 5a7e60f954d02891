"""The demo's live per-pool/region table, printed once per closed window."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from schemas.aggregates import WindowAggregate


def _pct(value: float | None) -> str:
    return "   no data" if value is None else f"{value * 100:9.2f}%"


def _ms(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.1f}"


def format_windows(
    windows: Sequence[WindowAggregate], silent: Sequence[tuple[str, str]] = ()
) -> str:
    """Render closed windows as one table per window start, rows sorted by pool and region.

    ``silent`` scopes (seen before, no traffic now) get a "no data" row: never a fake zero.
    """
    by_window: dict[int, list[WindowAggregate]] = defaultdict(list)
    for agg in windows:
        if agg.scope.proxy_id is None:
            by_window[agg.window_start_ms].append(agg)
    lines: list[str] = []
    for start_ms in sorted(by_window):
        rows = sorted(by_window[start_ms], key=lambda a: (a.scope.pool, a.scope.region))
        first = rows[0]
        start = datetime.fromtimestamp(start_ms / 1000, tz=UTC).strftime("%H:%M:%S")
        lines.append(
            f"window {start}Z +{first.window_s}s  ({len(rows)} scopes, "
            f"{sum(r.requests for r in rows)} requests)"
        )
        lines.append(
            f"  {'pool':<12} {'region':<10} {'req/s':>8} {'success':>10} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'p99 ms':>7} {'proxies':>7} {'late':>5}"
        )
        for agg in rows:
            lines.append(
                f"  {agg.scope.pool:<12} {agg.scope.region:<10} {agg.throughput_rps:8.1f} "
                f"{_pct(agg.success_rate)} {_ms(agg.latency.quantile(0.5))} "
                f"{_ms(agg.latency.quantile(0.95))} {_ms(agg.latency.quantile(0.99))} "
                f"{agg.distinct_proxies:7d} {agg.late_events:5d}"
            )
        for pool, region in sorted(silent):
            lines.append(f"  {pool:<12} {region:<10} {'-':>8} {'no data':>10}")
    return "\n".join(lines)


class SummaryPrinter:
    """A window listener that prints :func:`format_windows` to a stream.

    Scopes seen within the last ``remember_windows`` windows but absent from a closed window are
    shown as silent.
    """

    def __init__(self, out: TextIO, *, remember_windows: int = 30) -> None:
        self._out = out
        self._remember = remember_windows
        self._last_seen: dict[tuple[str, str], int] = {}
        self._window_index = 0

    def __call__(self, windows: Sequence[WindowAggregate]) -> None:
        self._window_index += 1
        present = {(a.scope.pool, a.scope.region) for a in windows if a.scope.proxy_id is None}
        for scope in present:
            self._last_seen[scope] = self._window_index
        horizon = self._window_index - self._remember
        self._last_seen = {s: i for s, i in self._last_seen.items() if i > horizon}
        silent = [s for s in self._last_seen if s not in present] if present else []
        text = format_windows(windows, silent)
        if text:
            self._out.write(text + "\n")
            self._out.flush()
