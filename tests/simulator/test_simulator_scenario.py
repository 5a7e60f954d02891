"""Scenario files: the demo file loads, and every mistake names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulator_stats import ORIGIN_MS

from stream_app.simulator import (
    ErrorSpike,
    FleetSimulator,
    ScenarioError,
    SimulatorSettings,
    load_scenario,
    parse_scenario,
)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo-fleet.yaml"
BUNDLED = REPO / "stream_app" / "simulator" / "demo-fleet.yaml"

VALID = """
fleet:
  pools:
    - {name: alpha, rate_per_s: 100}
  regions:
    - {name: eu}
incidents:
  - {kind: silence, at_s: 5, duration_s: 10, pool: alpha}
  - {kind: error_spike, at_s: 5, duration_s: 10, pool: alpha, error_rate: 0.5}
"""


def test_demo_file_loads_and_matches_the_bundled_copy() -> None:
    assert DEMO.read_bytes() == BUNDLED.read_bytes()
    scenario = load_scenario(DEMO)
    assert scenario == load_scenario()
    assert len(scenario.fleet.pools) == 4
    assert len(scenario.fleet.regions) == 3
    kinds = {incident.kind for incident in scenario.incidents}
    assert kinds == {
        "error_spike",
        "latency_multiplier",
        "silence",
        "flap",
        "proxy_failure",
        "traffic_multiplier",
    }
    counts = [p.proxy_count(r.name) for p in scenario.fleet.pools for r in scenario.fleet.regions]
    assert min(counts) >= 100
    assert max(counts) <= 300
    sim = FleetSimulator(scenario, seed=1, origin_ms=ORIGIN_MS)
    assert sum(1 for _ in sim.records(ORIGIN_MS, ORIGIN_MS + 1_000, first_ts_ms=ORIGIN_MS)) > 3_000


def test_valid_yaml_parses_into_typed_incidents() -> None:
    scenario = parse_scenario(VALID)
    assert isinstance(scenario.incidents[1], ErrorSpike)
    assert scenario.incidents[1].error_rate == 0.5


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            VALID.replace("error_rate: 0.5", "error_rate: 1.5"),
            "incidents[1].error_rate",
            "less than or equal to 1",
        ),
        (VALID.replace("rate_per_s: 100", "rate_per_sec: 100"), "fleet.pools[0].rate_per_sec",
         "Extra inputs"),
        (VALID.replace("pool: alpha}\n  - {kind: error", "pool: gamma}\n  - {kind: error"),
         "incidents[0].pool", "unknown pool 'gamma'"),
        (VALID.replace("kind: silence", "kind: meltdown"), "incidents[0]", "meltdown"),
        (VALID.replace("duration_s: 10, pool: alpha}", "duration_s: -1, pool: alpha}"),
         "incidents[0].duration_s", "greater than 0"),
        (VALID.replace("{kind: silence, at_s: 5, duration_s: 10, pool: alpha}",
                       "{kind: proxy_failure, at_s: 5, duration_s: 10, pool: alpha}"),
         "incidents[0]", "exactly one of proxy_index or fraction"),
        (VALID.replace("{kind: silence, at_s: 5, duration_s: 10, pool: alpha}",
                       "{kind: proxy_failure, at_s: 5, duration_s: 10, pool: alpha, region: eu,"
                       " proxy_index: 200}"),
         "incidents[0].proxy_index", "out of range"),
        (VALID.replace("error_rate: 0.5", "error_rate: 0.5, outcomes: {success: 1}"),
         "incidents[1].outcomes", "cannot contain 'success'"),
        (VALID.replace("error_rate: 0.5", "error_rate: 0.5, outcomes: {meltdown: 1}"),
         "incidents[1].outcomes.meltdown", "Input should be"),
        (VALID.replace("- {name: eu}", "- {name: eu}\n    - {name: eu}"), "fleet.regions[1].name",
         "duplicate"),
        (VALID.replace("- {name: eu}", "- {name: 'e u'}"), "fleet.regions[0].name",
         "should match pattern"),
        ("fleet:\n  delivery: 3\n", "fleet.delivery", "Extra inputs"),
        ("delivery: {delay_min_ms: 9, delay_max_ms: 1}\n", "delivery",
         "delay_min_ms must not exceed"),
        ("incidents:\n  - {kind: flap, at_s: 0, duration_s: 5, pool: isp, period_s: 0.01}\n",
         "incidents[0].period_s", "greater than or equal to 0.1"),
        (VALID.replace("pool: alpha, error_rate", "pool: alpha, region: mars, error_rate"),
         "incidents[1].region", "unknown region 'mars'"),
        (VALID.replace("rate_per_s: 100}", "rate_per_s: 100, proxies_by_region: {mars: 3}}"),
         "fleet.pools[0].proxies_by_region", "unknown region(s) ['mars']"),
        ("fleet: {health: {bad_fraction: 0.2, bad_error_factor: 10}}\n", "fleet.health",
         "must stay below 1"),
        ("incidents:\n  - {kind: latency_multiplier, at_s: 0, duration_s: 5, factor: 2}\n",
         "incidents[0]", "needs a pool or a region"),
        ("incidents:\n  - {kind: proxy_failure, at_s: 0, duration_s: 5, pool: isp,"
         " proxy_index: 1}\n", "incidents[0]", "proxy_index needs a region"),
        (VALID.replace("error_rate: 0.5", "error_rate: 0.5, outcomes: {timeout: 0}"),
         "incidents[1].outcomes", "at least one outcome with a positive weight"),
        ("fleet: {pools: [" + ", ".join(["{name: a, rate_per_s: -1}"] * 12) + "]}\n",
         "fleet.pools[0].rate_per_s", "and 2 more"),
    ],
)  # fmt: skip
def test_errors_name_the_field(text: str, field: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "fleet.yaml")
    message = str(info.value)
    assert message.startswith("fleet.yaml: invalid scenario: ")
    assert field in message
    assert reason in message
    assert any(f.startswith(field) for f in info.value.fields), info.value.fields


def test_yaml_syntax_error_gives_the_line() -> None:
    with pytest.raises(ScenarioError, match=r"x.yaml: YAML syntax error at line 4, column \d+"):
        parse_scenario("fleet:\n  pools:\n    - {name: a\n  regions: []\n", "x.yaml")


def test_top_level_must_be_a_mapping_and_empty_means_defaults() -> None:
    with pytest.raises(ScenarioError, match="mapping at the top level, got list"):
        parse_scenario("- 1\n- 2\n")
    assert parse_scenario("") == parse_scenario("{}")


def test_unreadable_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(binary)


def test_settings_come_from_the_environment_when_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(VALID, encoding="utf-8")
    monkeypatch.setenv("PWM_SIMULATOR_SCENARIO", str(path))
    monkeypatch.setenv("PWM_SIMULATOR_SEED", "42")
    monkeypatch.setenv("PWM_SIMULATOR_RATE_PER_S", "250")
    settings = SimulatorSettings()
    sim = settings.build(origin_ms=ORIGIN_MS)
    assert sim.seed == 42
    assert sim.origin_ms == ORIGIN_MS
    assert sim.scenario.total_rate_per_s == 250
    assert settings.run_duration_s(sim.scenario) is None
    monkeypatch.setenv("PWM_SIMULATOR_SEED", "-3")
    with pytest.raises(ValueError, match="seed"):
        SimulatorSettings()


def test_with_total_rate_rejects_negative_and_splits_evenly_from_zero() -> None:
    scenario = parse_scenario(VALID.replace("rate_per_s: 100", "rate_per_s: 0"))
    assert scenario.with_total_rate(30).fleet.pools[0].rate_per_s == 30
    with pytest.raises(ValueError, match="rate_per_s"):
        scenario.with_total_rate(-1)
