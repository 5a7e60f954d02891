"""Folding pending deltas into the open windows: the step between counting and flushing.

:func:`stream_app.core.ingest.accumulate_record` counts each event into a pending delta of its
``(window start, pool, region)`` and proxy id. Folding merges them, once per flush, into the
open pool x region and per-proxy windows (:class:`stream_app.core.open_windows.OpenWindows`)
and into the sums not yet flushed. The pool x region delta is the merge of its proxies' deltas
(merging a few bucket maps is far cheaper than counting every event twice); a proxy's delta is
also its delta for its proxy window. This runs for every proxy that had traffic, so it works on
the window maps directly (no per-proxy method calls, tuple keys or proxy-set unions).
"""

from __future__ import annotations

from stream_app.core.accumulator import Accumulator, merged_parts
from stream_app.core.ingest import PendingDeltas
from stream_app.core.open_windows import OpenWindows

__all__ = ["fold_pending"]


def fold_pending(
    pending: PendingDeltas,
    *,
    scopes: OpenWindows[tuple[str, str]],
    proxies: OpenWindows[tuple[str, str, str]],
    unflushed_scopes: dict[tuple[int, str, str], Accumulator],
    unflushed_proxies: dict[tuple[int, str, str], dict[str, Accumulator]],
    proxy_window_ms: int,
) -> int:
    """Merge ``pending`` into the open windows and the unflushed sums; return the requests of
    proxies that did not fit their proxy window (``max_proxies_per_window``)."""
    overflow = 0
    for key, by_proxy in pending.items():
        window_start, pool, region = key
        if len(by_proxy) > 1 or None not in by_proxy:
            proxy_window_start = window_start - window_start % proxy_window_ms
            proxy_window = proxies.window(proxy_window_start)
            unflushed_key = (proxy_window_start, pool, region)
            unflushed = unflushed_proxies.get(unflushed_key)
            if unflushed is None:
                unflushed = unflushed_proxies[unflushed_key] = {}
            for proxy_id, part in by_proxy.items():
                if proxy_id is None:
                    continue
                part.proxies = {proxy_id}  # the hot loop left it the shared empty set
                proxy_key = (pool, region, proxy_id)
                open_acc = proxy_window.get(proxy_key)
                if open_acc is not None:
                    open_acc.merge(part)
                elif not proxies.insert(proxy_window, proxy_key, part.copy()):
                    overflow += part.requests
                    continue
                kept = unflushed.get(proxy_id)
                if kept is None:
                    unflushed[proxy_id] = part
                else:
                    kept.merge(part)
        delta = merged_parts(by_proxy.values())
        delta.proxies.update(filter(None, by_proxy))
        scope_key = (pool, region)
        window = scopes.window(window_start)
        open_acc = window.get(scope_key)
        if open_acc is None:
            scopes.insert(window, scope_key, delta.copy())
        else:
            open_acc.merge(delta)
        kept = unflushed_scopes.get(key)
        if kept is None:
            unflushed_scopes[key] = delta
        else:
            kept.merge(delta)
    return overflow
