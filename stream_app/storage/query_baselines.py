"""The baselines the rule engines learnt, as they last saved them (table ``alerting_state``).

Every engine that evaluates baseline rules saves its snapshot (:mod:`stream_app.core.rules.state`)
under its name; each snapshot lists ``{"rule_id", "scope", "data"}`` per learnt baseline. Readers
take, per (rule id, scope key), the entry of the newest snapshot holding it, and judge the latest
window against it with the engine's own code (:mod:`stream_app.core.rules.baselines`), so the
deviation a reader shows is the one the alert engine computes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from stream_app.storage.client import StorageClient

__all__ = ["SavedBaselines", "saved_baselines"]

logger = logging.getLogger(__name__)

SavedBaselines = dict[tuple[str, str], dict[str, Any]]
"""(rule id, scope key) -> the baseline's saved data (``Baseline.to_dict()``)."""


def saved_baselines(client: StorageClient, db: str) -> SavedBaselines:
    """The newest saved baseline of every (rule, scope) over all engines' latest snapshots."""
    rows = client.named_rows(
        f"""SELECT name, argMax(window_end_ms, (window_end_ms, saved_at)) AS last_window_end_ms,
                   argMax(state, (window_end_ms, saved_at)) AS last_state
            FROM {db}.alerting_state
            GROUP BY name""",  # noqa: S608
    )
    newest: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for row in rows:
        name, window_end_ms, text = row["name"], row["last_window_end_ms"], row["last_state"]
        try:
            entries = json.loads(text).get("baselines", [])
            pairs = [((str(e["rule_id"]), str(e["scope"])), dict(e["data"])) for e in entries]
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("saved engine state %r is malformed; its baselines are skipped", name)
            continue
        for key, data in pairs:
            seen = newest.get(key)
            if seen is None or int(window_end_ms) > seen[0]:
                newest[key] = (int(window_end_ms), data)
    return {key: data for key, (_, data) in newest.items()}
