"""Alert rules as configuration: the YAML rules file model (version 1) and its loader.

``parse_rules(text, source_name)`` validates a rules file and returns a :class:`RuleSet`, or
raises :class:`schemas.errors.RulesError` whose ``messages`` name the source, the line, the rule
(id and position) and the field of every problem, e.g.::

    rules.yaml:14: rule 'pool-errors' (groups[0].rules[1]), field 'threshold': Input should be
    less than or equal to 1

The caller keeps its previous rules when parsing fails. A file has a top-level ``rules:`` list
and/or ``groups:`` (each with a name, common ``labels`` and ``rules``), plus ``grouping``
(notification grouping and re-send), ``pipeline_health`` (when the pipeline counts as degraded)
and ``silences``. ``config/rules.example.yaml`` documents every field.

Rule kinds: ``threshold`` (a window metric compared with a fixed value), ``baseline`` (deviation
from the scope's own EWMA or same-hour-of-day baseline by more than ``k_sigma`` AND
``min_abs_change``, after a warm-up) and ``absence`` (a scope that had traffic is silent for
``windows`` windows). Rates are fractions (0.05 is 5%); latencies are milliseconds.
Rule kinds: :mod:`schemas.rule_kinds` (re-exported here); name patterns and matchers:
:mod:`schemas.rule_matchers`; templates: :mod:`schemas.rule_templates`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from schemas.alerts import Severity
from schemas.errors import RulesError
from schemas.rule_kinds import (
    ALERT_NAME_PATTERN,
    MODEL_CONFIG,
    RESERVED_LABELS,
    RULE_ID_PATTERN,
    SCOPE_LEVELS,
    AbsenceParams,
    AbsenceRule,
    AlertRule,
    BaselineParams,
    BaselineRule,
    Comparison,
    LabelName,
    LabelValue,
    Metric,
    Rule,
    RuleKind,
    ScopeLevel,
    Seconds,
    Selector,
    ThresholdRule,
    check_labels,
)
from schemas.rule_matchers import LABEL_NAME_PATTERN, LabelMatcher, MatchOp
from schemas.yaml_lines import YamlSourceError, load_yaml

__all__ = [
    "RESERVED_LABELS",
    "SCOPE_LEVELS",
    "AbsenceParams",
    "AbsenceRule",
    "AlertRule",
    "BaselineParams",
    "BaselineRule",
    "Comparison",
    "GroupingConfig",
    "MatcherSpec",
    "Metric",
    "PipelineHealthConfig",
    "Rule",
    "RuleGroup",
    "RuleKind",
    "RuleSet",
    "RulesError",
    "RulesFile",
    "ScopeLevel",
    "Selector",
    "Silence",
    "ThresholdRule",
    "empty_rule_set",
    "parse_rules",
]

MAX_RULES_FILE_CHARS = 2_000_000


class RuleGroup(BaseModel):
    """A named list of rules sharing extra labels."""

    model_config = MODEL_CONFIG

    name: Annotated[str, Field(min_length=1, max_length=128)]
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=list)

    _labels_not_reserved = field_validator("labels")(check_labels)


class GroupingConfig(BaseModel):
    """Alertmanager-style grouping of notifications and periodic re-sending of firing alerts."""

    model_config = MODEL_CONFIG

    group_by: list[Annotated[str, Field(pattern=r"^([A-Za-z_][A-Za-z0-9_]*|\.\.\.)$")]] = Field(
        default_factory=lambda: ["alertname"],
        description="Labels whose values make a group; ['...'] = every alert alone",
    )
    group_wait_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0
    group_interval_s: Annotated[float, Field(ge=0.0, le=86_400.0)] = 300.0
    repeat_interval_s: Annotated[float, Field(gt=0.0, le=30 * 86_400.0)] = 14_400.0
    resend_interval_s: Annotated[float, Field(gt=0.0, le=86_400.0)] = 60.0


class PipelineHealthConfig(BaseModel):
    """When the pipeline counts as degraded, and the one alert raised instead of per-scope ones."""

    model_config = MODEL_CONFIG

    max_lag_ms: Annotated[int, Field(ge=0)] = 60_000
    max_staleness_ms: Annotated[int, Field(ge=0)] = 60_000
    hold_on_sink_down: bool = True
    for_s: Seconds = 60.0
    alertname: Annotated[str, Field(pattern=ALERT_NAME_PATTERN)] = "PipelineDegraded"
    severity: Severity = Severity.PAGE
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
    runbook_url: str | None = None
    next_steps: list[str] = Field(default_factory=list)

    _labels_not_reserved = field_validator("labels")(check_labels)


class MatcherSpec(BaseModel):
    """A label matcher written as a mapping (strings such as ``pool="a"`` are accepted too)."""

    model_config = MODEL_CONFIG

    name: Annotated[str, Field(pattern=LABEL_NAME_PATTERN)]
    op: MatchOp = "="
    value: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: object) -> object:
        if isinstance(data, str):
            matcher = LabelMatcher.parse(data)
            return {"name": matcher.name, "op": matcher.op, "value": matcher.value}
        return data

    @model_validator(mode="after")
    def _compiles(self) -> MatcherSpec:
        self.compile()
        return self

    def compile(self) -> LabelMatcher:
        return LabelMatcher.build(self.name, self.op, self.value)


_Matcher = Annotated[
    MatcherSpec,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": 'Alertmanager syntax: pool="a", region=~"eu-.*"'},
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": LABEL_NAME_PATTERN},
                        "op": {"enum": ["=", "!=", "=~", "!~"], "default": "="},
                        "value": {"type": "string"},
                    },
                    "required": ["name", "value"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class Silence(BaseModel):
    """Mute alerts matching every matcher between ``starts_at`` (inclusive) and ``ends_at``."""

    model_config = MODEL_CONFIG

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)]
    matchers: Annotated[list[_Matcher], Field(min_length=1)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    comment: str = ""
    created_by: str = ""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        return self


class RulesFile(BaseModel):
    """The whole rules file (version 1)."""

    model_config = MODEL_CONFIG

    version: Literal[1] = 1
    rules: list[AlertRule] = Field(default_factory=list)
    groups: list[RuleGroup] = Field(default_factory=list)
    grouping: GroupingConfig = Field(default_factory=GroupingConfig)
    pipeline_health: PipelineHealthConfig = Field(default_factory=PipelineHealthConfig)
    silences: list[Silence] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rules file: rules flattened in file order, group labels merged in."""

    rules: tuple[Rule, ...]
    grouping: GroupingConfig
    pipeline_health: PipelineHealthConfig
    silences: tuple[Silence, ...]
    source_name: str
    digest: str
    """SHA-256 of the file text (for audit rows and change detection)."""

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with ``rule_id``, if any."""
        return next((r for r in self.rules if r.id == rule_id), None)


def empty_rule_set(source_name: str = "<none>") -> RuleSet:
    """A rule set without rules (before the first file loads)."""
    return RuleSet((), GroupingConfig(), PipelineHealthConfig(), (), source_name, "")


def parse_rules(text: str, source_name: str) -> RuleSet:
    """Validate a rules file; raise RulesError listing every problem with line, rule and field."""
    if len(text) > MAX_RULES_FILE_CHARS:
        raise RulesError(source_name, [f"{source_name}: larger than {MAX_RULES_FILE_CHARS} chars"])
    try:
        doc = load_yaml(text)
    except YamlSourceError as exc:
        raise RulesError(source_name, [f"{source_name}:{exc.line}: {exc}"]) from None
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise RulesError(source_name, [f"{source_name}:1: the top level must be a mapping"])
    try:
        parsed = RulesFile.model_validate(doc.data)
    except ValidationError as exc:
        messages = [_describe(err, doc.data, doc.line_of, source_name) for err in exc.errors()]
        raise RulesError(source_name, messages) from None
    rules: list[Rule] = list(parsed.rules)
    for group in parsed.groups:
        for rule in group.rules:
            merged = {**group.labels, **rule.labels}
            rules.append(rule.model_copy(update={"labels": merged}) if group.labels else rule)
    problems = _duplicates(parsed, doc.line_of, source_name)
    if problems:
        raise RulesError(source_name, problems)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return RuleSet(
        tuple(rules), parsed.grouping, parsed.pipeline_health, tuple(parsed.silences),
        source_name, digest,
    )  # fmt: skip


def _rule_paths(parsed: RulesFile) -> list[tuple[tuple[str | int, ...], Rule]]:
    paths: list[tuple[tuple[str | int, ...], Rule]] = [
        (("rules", i), r) for i, r in enumerate(parsed.rules)
    ]
    for g, group in enumerate(parsed.groups):
        paths.extend((("groups", g, "rules", i), r) for i, r in enumerate(group.rules))
    return paths


def _duplicates(parsed: RulesFile, line_of: Any, source: str) -> list[str]:
    problems: list[str] = []
    seen: dict[str, tuple[str | int, ...]] = {}
    for path, rule in _rule_paths(parsed):
        if rule.id in seen:
            problems.append(
                f"{source}:{line_of((*path, 'id'))}: rule '{rule.id}' ({_path_text(path)}), "
                f"field 'id': duplicate id, first used at {_path_text(seen[rule.id])}"
            )
        else:
            seen[rule.id] = path
    silence_ids: set[str] = set()
    for i, silence in enumerate(parsed.silences):
        if silence.id in silence_ids:
            problems.append(
                f"{source}:{line_of(('silences', i, 'id'))}: silences[{i}], field 'id': "
                f"duplicate silence id '{silence.id}'"
            )
        silence_ids.add(silence.id)
    return problems


_FIELD_PREFIX = re.compile(
    r"^((?:[A-Za-z_][A-Za-z0-9_]*|\[\d+\])(?:\.[A-Za-z0-9_]+|\[\d+\])*): (.*)$", re.S
)
_KINDS = frozenset({"threshold", "baseline", "absence"})


def _describe(err: Any, data: object, line_of: Any, source: str) -> str:
    """One error as ``source:line: rule 'id' (path), field 'x': message``."""
    loc = list(err["loc"])
    rule_len = _rule_prefix_len(loc)
    if rule_len and len(loc) > rule_len and loc[rule_len] in _KINDS:
        del loc[rule_len]  # the discriminated-union tag pydantic puts into the location
    message = str(err["msg"]).removeprefix("Value error, ")
    line = line_of(tuple(loc))
    field_parts = [str(p) if isinstance(p, str) else f"[{p}]" for p in loc[rule_len or 0 :]]
    field = ".".join(field_parts).replace(".[", "[")
    found = _FIELD_PREFIX.match(message)
    if found:  # validator messages start with the field they are about
        sub, message = found.groups()
        field = f"{field}.{sub}" if field and not sub.startswith("[") else field + sub
        line = line_of((*loc, *_split_field(sub)))
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = "kind"
        line = line_of((*loc, "kind"))
    if err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "extra_forbidden":
        message = "unknown field"
    if not rule_len:
        return f"{source}:{line}: {field or 'top level'}: {message}"
    rule_path = tuple(loc[:rule_len])
    raw = _lookup(data, rule_path)
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    who = f"rule '{rule_id}'" if isinstance(rule_id, str) else "rule without id"
    where = f"{who} ({_path_text(rule_path)})"
    if not field:
        return f"{source}:{line}: {where}: {message}"
    return f"{source}:{line}: {where}, field '{field}': {message}"


def _split_field(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\[\d+\]", text):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def _rule_prefix_len(loc: list[Any]) -> int:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        return 2
    if len(loc) >= 4 and loc[0] == "groups" and loc[2] == "rules" and isinstance(loc[3], int):
        return 4
    return 0


def _lookup(data: object, path: tuple[Any, ...]) -> object:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _path_text(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
