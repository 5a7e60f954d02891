"""The rules file model: the shipped example, precise error messages, selectors, templates."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import generate
from schemas.errors import RulesError
from schemas.rule_matchers import LabelMatcher, NamePattern
from schemas.rule_templates import compile_template
from schemas.rules import AbsenceRule, BaselineRule, ThresholdRule, parse_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "rules.example.yaml"

VALID = """\
grouping:
  group_by: [alertname]
groups:
  - name: g
    labels: {team: sre}
    rules:
      - id: pool-errors
        name: ProxyPoolHighErrorRate
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.05
        labels: {team: proxies}
rules:
  - id: silent
    name: Silent
    kind: absence
    level: pool
    absence: {windows: 3}
"""


def errors_of(text: str, source: str = "rules.yaml") -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source)
    assert caught.value.source_name == source
    return caught.value.messages


def test_shipped_example_parses_and_covers_every_kind() -> None:
    rule_set = parse_rules(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    kinds = {type(r) for r in rule_set.rules}
    assert kinds == {ThresholdRule, BaselineRule, AbsenceRule}
    assert {r.level for r in rule_set.rules} == {"proxy", "pool_region", "pool", "region", "fleet"}
    assert rule_set.silences
    assert len(rule_set.digest) == 64


def test_group_labels_merge_into_rules_and_rule_labels_win() -> None:
    rule_set = parse_rules(VALID, "v.yaml")
    assert [r.id for r in rule_set.rules] == ["silent", "pool-errors"]
    pool_errors = rule_set.rule("pool-errors")
    assert pool_errors is not None
    assert pool_errors.labels == {"team": "proxies"}
    assert rule_set.rule("missing") is None


def test_errors_name_file_line_rule_and_field() -> None:
    text = VALID.replace("threshold: 0.05", "threshold: 5")
    assert errors_of(text) == [
        "rules.yaml:12: rule 'pool-errors' (groups[0].rules[0]), field 'threshold': "
        "a rate is a fraction between 0 and 1"
    ]
    text = VALID.replace('op: ">"', 'op: "=>"')
    (message,) = errors_of(text)
    assert message.startswith("rules.yaml:11: rule 'pool-errors' (groups[0].rules[0]), field 'op':")
    text = VALID.replace("absence: {windows: 3}", "absence: {windows: 0}")
    (message,) = errors_of(text)
    assert message.startswith("rules.yaml:19: rule 'silent' (rules[0]), field 'absence.windows':")


def test_every_problem_is_reported_at_once() -> None:
    text = VALID.replace("metric: error_rate", "metric: error_rates").replace(
        "level: pool\n", "level: pool\n    colour: blue\n"
    )
    messages = errors_of(text)
    assert len(messages) == 2
    assert any("field 'metric'" in m and "'pool-errors'" in m for m in messages)
    assert any("field 'colour': unknown field" in m and "'silent'" in m for m in messages)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("kind: absence", "kind: absent"), "rule 'silent' (rules[0]), field 'kind'"),
        (("  - id: silent\n", "  - \n"), "rule without id (rules[0]), field 'id'"),
        (("id: silent", "id: Not Valid"), "field 'id'"),
        (
            ("id: silent", "id: pipeline-health"),
            "field 'id': rule id 'pipeline-health' is reserved",
        ),
        (
            ("absence: {windows: 3}", "absence: {windows: 3, forget_after_windows: 2}"),
            "field 'absence.forget_after_windows': must be larger than windows",
        ),
        (
            ("labels: {team: proxies}", "labels: {pool: x}"),
            "field 'labels.pool': label is reserved",
        ),
        (
            ("threshold: 0.05", "threshold: 0.05\n        for_s: 10\n        for_windows: 2"),
            "field 'for_windows': give for_s or for_windows, not both",
        ),
        (
            ("metric: error_rate", "metric: outcome_rate"),
            "field 'outcome': required when metric is outcome_rate",
        ),
        (
            ("level: pool\n", "level: pool\n    annotations: {summary: 'in {region}'}\n"),
            "field 'annotations.summary': {region} has no value at scope level 'pool'",
        ),
        (
            ("level: pool\n", "level: pool\n    annotations: {summary: '{value.__class__}'}\n"),
            "only plain names are allowed",
        ),
        (
            ("level: pool\n", "level: pool\n    next_steps: ['see {pools}']\n"),
            "field 'next_steps[0]': unknown placeholder {pools}",
        ),
        (
            ("level: pool\n", "level: pool\n    runbook_url: ftp://x\n"),
            "field 'runbook_url': must start with https://",
        ),
        (
            ("level: pool\n", "level: pool\n    selector: {pool: 're:('}\n"),
            "field 'selector.pool[0]': invalid regular expression",
        ),
        (
            ("level: pool\n", "level: pool\n    selector: {pool: 'a/b'}\n"),
            "field 'selector.pool[0]': invalid pattern",
        ),
    ],
)
def test_rule_level_problems(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in VALID
    messages = errors_of(VALID.replace(old, new, 1))
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [\n", "rules.yaml:2: "),
        ("rules: []\nrules: []\n", "rules.yaml:2: duplicate key 'rules'"),
        ("- 1\n", "rules.yaml:1: the top level must be a mapping"),
        ("a: &x [*x]\n", "recursive alias"),
        ("grouping: {group_wait_s: -1}\n", "rules.yaml:1: grouping.group_wait_s:"),
        ("version: 2\n", "rules.yaml:1: version:"),
        ("!!python/object:os.system {}\n", "rules.yaml:1:"),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    messages = errors_of(text)
    assert any(expected in m for m in messages), messages


def test_duplicate_rule_ids_name_both_places() -> None:
    text = VALID.replace("id: silent", "id: pool-errors")
    (message,) = errors_of(text)
    assert "rule 'pool-errors' (groups[0].rules[0])" in message
    assert "duplicate id, first used at rules[0]" in message


def test_silences_validate_matchers_and_times() -> None:
    base = (
        "silences:\n  - id: s\n    matchers: [{matchers}]\n"
        "    starts_at: 2026-12-01T02:00:00Z\n    ends_at: {ends}\n"
    )
    ok = parse_rules(base.format(matchers="'pool=~\"eu-.*\"'", ends="2026-12-01T03:00:00Z"), "s")
    (matcher,) = ok.silences[0].matchers
    assert (matcher.name, matcher.op, matcher.value) == ("pool", "=~", "eu-.*")
    messages = errors_of(base.format(matchers="'pool~x'", ends="2026-12-01T03:00:00Z"))
    assert any("silences[0].matchers[0]: invalid matcher" in m for m in messages)
    messages = errors_of(base.format(matchers="'pool=a'", ends="2026-12-01T01:00:00Z"))
    assert any("must be after starts_at" in m for m in messages)
    messages = errors_of(base.format(matchers="'pool=a'", ends="2026-12-01T03:00:00"))
    assert any("timezone" in m for m in messages)


def test_empty_file_is_an_empty_rule_set() -> None:
    assert parse_rules("", "empty.yaml").rules == ()


_NAMES = st.text(alphabet="abc-._:1", min_size=1, max_size=8)
_GLOBS = st.text(alphabet="abc-*?", min_size=1, max_size=6)


@given(_GLOBS, _NAMES)
def test_globs_match_like_fnmatch_and_their_regex_agrees(pattern: str, name: str) -> None:
    compiled = NamePattern.parse(pattern)
    expected = fnmatch.fnmatchcase(name, pattern)
    assert compiled.matches(name) is expected
    assert (re.fullmatch(compiled.regex, name) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "hits", "misses"),
    [
        ("pool-[ab]", ["pool-a", "pool-b"], ["pool-c", "pool-ab"]),
        ("pool-[!a]", ["pool-b"], ["pool-a"]),
        ("re:eu-(west|north)", ["eu-west", "eu-north"], ["eu-westx", "xeu-west"]),
        ("exact.name", ["exact.name"], ["exactxname"]),
    ],
)
def test_name_patterns(pattern: str, hits: list[str], misses: list[str]) -> None:
    compiled = NamePattern.parse(pattern)
    for name in hits:
        assert compiled.matches(name)
        assert re.fullmatch(compiled.regex, name)
    for name in misses:
        assert not compiled.matches(name)
        assert not re.fullmatch(compiled.regex, name)


def test_label_matchers() -> None:
    labels = {"pool": "eu-1", "severity": "page"}
    assert LabelMatcher.parse('pool=~"eu-.*"').matches(labels)
    assert not LabelMatcher.parse("pool=~eu").matches(labels)  # anchored
    assert LabelMatcher.parse('severity!="info"').matches(labels)
    assert LabelMatcher.parse('team=""').matches(labels)  # missing label is ""
    assert not LabelMatcher.parse("pool!~eu-.*").matches(labels)
    assert str(LabelMatcher.parse(r'a="q\"x"')) == r'a="q\"x"'


def test_templates_render_specs_and_missing_values() -> None:
    template = compile_template("{value:.1%} of {pool} ({baseline}) {{literal}} {pool:.2f}")
    assert template.render({"value": 0.1234, "pool": "a"}) == "12.3% of a (n/a) {literal} a"
    with pytest.raises(ValueError, match="unknown placeholder"):
        compile_template("{nope}")
    with pytest.raises(ValueError, match="conversions"):
        compile_template("{value!r}")
    with pytest.raises(ValueError, match="malformed"):
        compile_template("{value")


def test_json_schema_of_the_rules_file_is_generated() -> None:
    rendered = generate.render()
    schema = rendered["rules_file.v1.json"]
    assert '"ThresholdRule"' in schema
    assert '"discriminator"' in schema
