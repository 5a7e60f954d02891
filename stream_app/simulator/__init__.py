"""A deterministic, seedable simulator of a ProxyWhirl fleet with scripted incidents.

Virtual time (tests, alert scenarios, benchmarks)::

    sim = FleetSimulator(load_scenario("config/demo-fleet.yaml"), seed=7, origin_ms=t0)
    for event in sim.events_between(t0, t0 + 60_000):  # schemas.wire.WireEvent
        ...
    for kwargs in sim.params_between(t0, t0 + 60_000):  # MetricsProducer.emit keywords
        producer.emit(**kwargs)

Real time (demo, ``simulate``)::

    report = await run_realtime(sim, producer.emit, duration_s=60, stop=stop_event)
    truth = report.emitted_events(sim)  # exactly what was emitted, as WireEvents

Modules: :mod:`.scenario` and :mod:`.incidents` (the pydantic scenario model), :mod:`.loader`
(YAML), :mod:`.fleet` (scopes, proxy ids and health), :mod:`.outcomes` (status/latency/bytes per
outcome), :mod:`.distributions` (quantile tables), :mod:`.effects` (incidents over time),
:mod:`.slots` (one slot of events), :mod:`.generator` (virtual time), :mod:`.realtime` (wall
clock), :mod:`.settings`, :mod:`.errors`. No Kafka, ClickHouse or I/O besides reading YAML.
"""

from __future__ import annotations

from stream_app.simulator.errors import ScenarioError, SimulatorError
from stream_app.simulator.generator import SLOT_MS, EmitParams, FleetSimulator
from stream_app.simulator.incidents import (
    ErrorSpike,
    Flap,
    Incident,
    LatencyMultiplier,
    ProxyFailure,
    Silence,
    TrafficMultiplier,
)
from stream_app.simulator.loader import load_scenario, parse_scenario, scenario_from_data
from stream_app.simulator.realtime import EmitFn, RealtimeReport, run_realtime
from stream_app.simulator.scenario import (
    DeliverySpec,
    DiurnalSpec,
    FleetSpec,
    LatencySpec,
    PoolSpec,
    ProxyHealthSpec,
    RegionSpec,
    Scenario,
)
from stream_app.simulator.settings import SimulatorSettings

__all__ = [
    "SLOT_MS",
    "DeliverySpec",
    "DiurnalSpec",
    "EmitFn",
    "EmitParams",
    "ErrorSpike",
    "Flap",
    "FleetSimulator",
    "FleetSpec",
    "Incident",
    "LatencyMultiplier",
    "LatencySpec",
    "PoolSpec",
    "ProxyFailure",
    "ProxyHealthSpec",
    "RealtimeReport",
    "RegionSpec",
    "Scenario",
    "ScenarioError",
    "Silence",
    "SimulatorError",
    "SimulatorSettings",
    "TrafficMultiplier",
    "load_scenario",
    "parse_scenario",
    "run_realtime",
    "scenario_from_data",
]
