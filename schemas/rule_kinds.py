"""The three kinds of alert rules (threshold, baseline, absence) and their parameters.

Part of the rules file model (:mod:`schemas.rules`, which re-exports everything here). Every rule
names its scope ``level`` (proxy, pool x region, pool, region, fleet), a ``selector`` of pools and
regions, severity, ``for_s``/``for_windows``, ``keep_firing_for_s``, labels and templated
annotations (:mod:`schemas.rule_templates`). Rates are fractions (0.05 is 5%); latencies are ms.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from schemas.alerts import Severity
from schemas.events import Outcome
from schemas.rule_matchers import LABEL_NAME_PATTERN, NamePattern
from schemas.rule_templates import Template, check_scope_fields, compile_template

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
ALERT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
RESERVED_RULE_IDS = frozenset({"pipeline-health"})
"""Rule ids the engine uses itself (the pipeline-health alert)."""
RESERVED_LABELS = frozenset({"alertname", "severity", "rule_id", "pool", "region", "proxy_id"})
"""Labels the engine sets itself; a rule's ``labels`` cannot override them."""

ScopeLevel = Literal["proxy", "pool_region", "pool", "region", "fleet"]
SCOPE_LEVELS: tuple[ScopeLevel, ...] = ("proxy", "pool_region", "pool", "region", "fleet")
Comparison = Literal[">", ">=", "<", "<="]
RuleKind = Literal["threshold", "baseline", "absence"]

MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)
LabelName = Annotated[str, Field(pattern=LABEL_NAME_PATTERN, max_length=128)]
LabelValue = Annotated[str, Field(min_length=1, max_length=1024)]
Seconds = Annotated[float, Field(ge=0.0, le=30 * 86_400.0)]


class Metric(enum.StrEnum):
    """What a threshold or baseline rule measures in one window of one scope."""

    SUCCESS_RATE = "success_rate"
    ERROR_RATE = "error_rate"
    OUTCOME_RATE = "outcome_rate"
    STATUS_5XX_RATE = "status_5xx_rate"
    LATENCY_P50_MS = "latency_p50_ms"
    LATENCY_P95_MS = "latency_p95_ms"
    LATENCY_P99_MS = "latency_p99_ms"
    THROUGHPUT_RPS = "throughput_rps"

    @property
    def is_rate(self) -> bool:
        """A fraction of the window's requests (0..1)."""
        return self.value.endswith("_rate")

    @property
    def is_latency(self) -> bool:
        return self.value.startswith("latency_")

    @property
    def default_min_requests(self) -> int:
        """Rates and percentiles need a sample; a throughput rule looks at any traffic."""
        return 1 if self is Metric.THROUGHPUT_RPS else 20


_Patterns = Annotated[
    list[str],
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class Selector(BaseModel):
    """Which pools and regions a rule covers: any of the patterns per name (empty = all)."""

    model_config = MODEL_CONFIG

    pool: _Patterns = Field(default_factory=list, description="Exact, glob, or 're:' regex")
    region: _Patterns = Field(default_factory=list, description="Exact, glob, or 're:' regex")
    _pools: tuple[NamePattern, ...] = PrivateAttr(default=())
    _regions: tuple[NamePattern, ...] = PrivateAttr(default=())

    @field_validator("pool", "region", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("pool", "region")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                NamePattern.parse(text)
            except ValueError as exc:
                raise ValueError(f"[{i}]: {exc}") from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._pools = tuple(NamePattern.parse(p) for p in self.pool)
        self._regions = tuple(NamePattern.parse(r) for r in self.region)

    def matches(self, pool: str, region: str) -> bool:
        """Whether a pool x region scope is covered."""
        return _any(self._pools, pool) and _any(self._regions, region)

    def matches_pool(self, pool: str) -> bool:
        return _any(self._pools, pool)

    def matches_region(self, region: str) -> bool:
        return _any(self._regions, region)

    def pool_regex(self) -> str | None:
        """One anchored regex selecting the same pools (None = all), for PromQL ``=~``."""
        return _alternation(self._pools)

    def region_regex(self) -> str | None:
        """One anchored regex selecting the same regions (None = all)."""
        return _alternation(self._regions)


def _any(patterns: tuple[NamePattern, ...], name: str) -> bool:
    return not patterns or any(p.matches(name) for p in patterns)


def _alternation(patterns: tuple[NamePattern, ...]) -> str | None:
    if not patterns:
        return None
    return "|".join(p.regex for p in patterns)


class BaselineParams(BaseModel):
    """How a baseline rule learns its scope's normal level and when it calls a deviation."""

    model_config = MODEL_CONFIG

    method: Literal["ewma", "same_hour"] = "ewma"
    alpha: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    half_life_windows: Annotated[float | None, Field(gt=0.0)] = None
    half_life_days: Annotated[float | None, Field(gt=0.0)] = None
    k_sigma: Annotated[float, Field(gt=0.0)] = 3.0
    min_abs_change: Annotated[float, Field(gt=0.0)]
    warmup_windows: Annotated[int, Field(ge=1)] = 30
    warmup_days: Annotated[int, Field(ge=1)] = 3
    direction: Literal["up", "down", "both"] = "up"

    @model_validator(mode="after")
    def _method_fields(self) -> BaselineParams:
        if self.method == "ewma":
            if self.half_life_days is not None:
                raise ValueError("half_life_days: only for method same_hour")
            if self.alpha is not None and self.half_life_windows is not None:
                raise ValueError("alpha: give alpha or half_life_windows, not both")
        elif self.alpha is not None or self.half_life_windows is not None:
            raise ValueError("alpha: method same_hour learns per day (use half_life_days)")
        return self

    @property
    def ewma_alpha(self) -> float:
        """Weight of a new window in the EWMA (default: half-life of 30 windows)."""
        if self.alpha is not None:
            return self.alpha
        return float(1.0 - 0.5 ** (1.0 / (self.half_life_windows or 30.0)))

    @property
    def day_alpha(self) -> float:
        """Weight of a new day in a same-hour baseline (default: half-life of 7 days)."""
        return float(1.0 - 0.5 ** (1.0 / (self.half_life_days or 7.0)))


class AbsenceParams(BaseModel):
    """When a scope that had traffic counts as silent."""

    model_config = MODEL_CONFIG

    windows: Annotated[int, Field(ge=1, le=100_000)]
    forget_after_windows: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _forget_after_firing(self) -> AbsenceParams:
        if self.forget_after_windows is not None and self.forget_after_windows <= self.windows:
            raise ValueError("forget_after_windows: must be larger than windows")
        return self


def check_labels(cls: type[BaseModel], value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if name in RESERVED_LABELS or name.startswith("__"):
            raise ValueError(f"{name}: label is reserved (set by the engine)")
    return value


class _RuleBase(BaseModel):
    model_config = MODEL_CONFIG

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN, description="Stable id (label rule_id)")]
    name: Annotated[str, Field(pattern=ALERT_NAME_PATTERN, description="The alertname label")]
    level: ScopeLevel = "pool_region"
    selector: Selector = Field(default_factory=Selector)
    severity: Severity = Severity.WARNING
    for_s: Seconds | None = None
    for_windows: Annotated[int | None, Field(ge=0, le=100_000)] = None
    keep_firing_for_s: Seconds = 0.0
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelName, str] = Field(default_factory=dict)
    runbook_url: str | None = None
    next_steps: list[str] = Field(default_factory=list)
    hold_when_degraded: bool | None = Field(
        default=None,
        description="Hold this rule while the pipeline is degraded (default: rates and absence)",
    )
    enabled: bool = True
    _templates: dict[str, Template] = PrivateAttr(default_factory=dict)

    _labels_not_reserved = field_validator("labels")(check_labels)

    @field_validator("id")
    @classmethod
    def _id_not_reserved(cls, value: str) -> str:
        if value in RESERVED_RULE_IDS:
            raise ValueError(f"rule id {value!r} is reserved")
        return value

    @field_validator("annotations", "next_steps", "runbook_url")
    @classmethod
    def _templates_compile(cls, value: object) -> object:
        for key, text in _template_items(value):
            try:
                compile_template(text)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}" if key else str(exc)) from None
        return value

    @field_validator("runbook_url")
    @classmethod
    def _runbook_is_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value

    @model_validator(mode="after")
    def _rule_consistent(self) -> _RuleBase:
        if self.for_s is not None and self.for_windows is not None:
            raise ValueError("for_windows: give for_s or for_windows, not both")
        for key, text in self.template_sources().items():
            try:
                check_scope_fields(compile_template(text), self.level)
            except ValueError as exc:
                field = f"annotations.{key}" if key in self.annotations else key
                raise ValueError(f"{field}: {exc}") from None
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._templates = {k: compile_template(v) for k, v in self.template_sources().items()}

    def template_sources(self) -> dict[str, str]:
        """Every templated text by annotation name (next steps as numbered lines)."""
        texts = dict(self.annotations)
        if self.runbook_url is not None:
            texts["runbook_url"] = self.runbook_url
        if self.next_steps:
            texts["next_steps"] = "\n".join(f"{i}. {s}" for i, s in enumerate(self.next_steps, 1))
        return texts

    @property
    def templates(self) -> dict[str, Template]:
        """The compiled annotation templates (annotation name -> template)."""
        return self._templates

    def for_ms(self, window_s: int) -> int:
        """How long the condition must hold, in ms of event time."""
        if self.for_windows is not None:
            return self.for_windows * window_s * 1000
        return round((self.for_s or 0.0) * 1000)

    @property
    def keep_firing_for_ms(self) -> int:
        return round(self.keep_firing_for_s * 1000)


def _template_items(value: object) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items() if isinstance(v, str)]
    if isinstance(value, list):
        return [(f"[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
    return [("", value)] if isinstance(value, str) else []


class _MetricRule(_RuleBase):
    metric: Metric
    outcome: Outcome | None = Field(default=None, description="Required for outcome_rate")
    min_requests: Annotated[int | None, Field(ge=0)] = Field(
        default=None, description="Windows with fewer requests are no data (default 20, 1 for rps)"
    )

    @model_validator(mode="after")
    def _outcome_with_metric(self) -> _MetricRule:
        if self.metric is Metric.OUTCOME_RATE and self.outcome is None:
            raise ValueError("outcome: required when metric is outcome_rate")
        if self.metric is not Metric.OUTCOME_RATE and self.outcome is not None:
            raise ValueError("outcome: only for metric outcome_rate")
        return self

    @property
    def effective_min_requests(self) -> int:
        if self.min_requests is not None:
            return self.min_requests
        return self.metric.default_min_requests

    @property
    def holds_when_degraded(self) -> bool:
        """Latency of the events that did arrive stays true; rates and volumes do not."""
        if self.hold_when_degraded is not None:
            return self.hold_when_degraded
        return not self.metric.is_latency


class ThresholdRule(_MetricRule):
    """Fires while ``metric op threshold`` holds for ``for_s``."""

    kind: Literal["threshold"]
    op: Comparison
    threshold: float

    @model_validator(mode="after")
    def _threshold_in_range(self) -> ThresholdRule:
        if self.metric.is_rate and not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold: a rate is a fraction between 0 and 1")
        if self.threshold < 0.0:
            raise ValueError("threshold: cannot be negative")
        return self


class BaselineRule(_MetricRule):
    """Fires while the metric deviates from its own baseline by k sigma and min_abs_change."""

    kind: Literal["baseline"]
    baseline: BaselineParams


class AbsenceRule(_RuleBase):
    """Fires when a scope that had traffic is silent for ``absence.windows`` windows."""

    kind: Literal["absence"]
    absence: AbsenceParams

    @property
    def holds_when_degraded(self) -> bool:
        return True if self.hold_when_degraded is None else self.hold_when_degraded


AlertRule = Annotated[ThresholdRule | BaselineRule | AbsenceRule, Field(discriminator="kind")]

Rule = ThresholdRule | BaselineRule | AbsenceRule
"""Any one rule, as the engine sees it."""
