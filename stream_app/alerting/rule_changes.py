"""What changed between two rule sets, rule by rule (the content of audit rows).

A rule is compared by its canonical JSON (the validated model, keys sorted), so reformatting the
file or reordering rules changes nothing, while any field that changes behaviour does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from schemas.rules import Rule, RuleSet

ChangeAction = Literal["added", "changed", "removed"]


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One rule added, changed or removed; ``before``/``after`` are JSON ('' when absent)."""

    rule_id: str
    action: ChangeAction
    before: str
    after: str


def rule_json(rule: Rule) -> str:
    """The canonical JSON of a rule (sorted keys, no whitespace)."""
    return json.dumps(rule.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def rules_by_id(rule_set: RuleSet) -> dict[str, str]:
    """Rule id -> canonical JSON of every rule of a rule set."""
    return {r.id: rule_json(r) for r in rule_set.rules}


def diff_rule_sets(before: RuleSet, after: RuleSet) -> list[RuleChange]:
    """Every added, changed and removed rule, ordered by rule id."""
    return diff_rules(rules_by_id(before), rules_by_id(after))


def diff_rules(old: dict[str, str], new: dict[str, str]) -> list[RuleChange]:
    """Changes from ``old`` to ``new`` (both rule id -> canonical JSON), ordered by rule id."""
    changes: list[RuleChange] = []
    for rule_id in sorted(old.keys() | new.keys()):
        was, now = old.get(rule_id), new.get(rule_id)
        if was is None and now is not None:
            changes.append(RuleChange(rule_id, "added", "", now))
        elif now is None and was is not None:
            changes.append(RuleChange(rule_id, "removed", was, ""))
        elif was != now and was is not None and now is not None:
            changes.append(RuleChange(rule_id, "changed", was, now))
    return changes
