"""``simulate``: a simulated fleet emitting in real time through the real producer to Kafka.

The fleet simulator (:mod:`stream_app.simulator`: the bundled demo fleet with its scripted
incidents, or any scenario file) drives :meth:`producer.MetricsProducer.emit` paced by the wall
clock; the producer ships envelopes with its Kafka transport (spooling while the broker is
unreachable). Settings: :class:`SimulatorSettings` (``PWM_SIMULATOR_*``),
:class:`SimulatedProducerSettings` (``PWM_PRODUCER_*``, with defaults for a simulated host) and
:class:`producer.kafka.KafkaTransportSettings` (``PWM_PRODUCER_KAFKA_*``); flags override them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic import Field, SecretStr

from producer import MetricsProducer, ProducerSettings
from producer.envelope import EnvelopeSchema
from producer.kafka import KafkaTransport, KafkaTransportSettings
from stream_app.simulator import FleetSimulator, RealtimeReport, SimulatorSettings, run_realtime

__all__ = ["SimulateOptions", "SimulatedProducerSettings", "SimulationResult", "run_simulation"]

logger = logging.getLogger(__name__)

_FLUSH_TIMEOUT_S = 30.0


class SimulatedProducerSettings(ProducerSettings):
    """:class:`ProducerSettings` with defaults for a simulated fleet host."""

    source_host: str = Field(default="simulator", description="The simulated host's name")
    fleet_key: SecretStr = Field(
        default=SecretStr("simulated-fleet-key"),
        min_length=8,
        description="Only hashes addresses passed to proxy_id(); simulated ids come hashed",
    )
    close_at_exit: bool = False
    envelope_schema: EnvelopeSchema = Field(
        default="v2",
        description="Schema of the envelopes: a simulated host talks to workers of this "
        "release, so it sends columnar envelopes (v2) unless told otherwise",
    )


@dataclass(frozen=True)
class SimulateOptions:
    """Overrides (from flags) of the three settings classes."""

    simulator: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    kafka: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationResult:
    report: RealtimeReport
    sent_events: int
    spooled_events: int
    dropped_events: int


async def simulate(
    options: SimulateOptions, stop: asyncio.Event, *, out: TextIO
) -> SimulationResult:
    """Run until the duration ends or ``stop`` is set; flush and close the producer."""
    sim_settings = SimulatorSettings(**options.simulator)
    producer_settings = SimulatedProducerSettings(**options.producer)
    kafka_settings = KafkaTransportSettings(**options.kafka)
    scenario = sim_settings.load()
    simulator = FleetSimulator(scenario, sim_settings.seed, origin_ms=time.time_ns() // 1_000_000)
    transport = await asyncio.to_thread(KafkaTransport, kafka_settings)
    producer = MetricsProducer(producer_settings, transport)
    duration_s = sim_settings.run_duration_s(scenario)
    out.write(
        f"simulate: {scenario.name}, {len(simulator.scopes)} pool/region scopes, "
        f"{scenario.total_rate_per_s:.0f} requests/s, {len(scenario.incidents)} scripted "
        f"incidents, to {kafka_settings.topic} on {kafka_settings.bootstrap_servers} for "
        f"{'ever' if duration_s is None else f'{duration_s:g} s'}\n"
    )
    out.flush()
    try:
        report = await run_realtime(
            simulator, producer.emit, duration_s=duration_s, stop=stop, tick_ms=sim_settings.tick_ms
        )
        await producer.aflush(_FLUSH_TIMEOUT_S)
    finally:
        await producer.aclose(_FLUSH_TIMEOUT_S)
    produced = producer.stats()
    shipped = transport.stats()
    dropped = (
        produced.dropped_full
        + produced.dropped_send
        + produced.dropped_closed
        + shipped.dropped_rejected_events
        + shipped.dropped_spool_full_events
        + shipped.dropped_closed_events
    )
    out.write(
        f"simulate: {report.emitted} events emitted, {shipped.sent_events} acknowledged by "
        f"Kafka, {shipped.spooled_events} spooled during outages, {dropped} dropped\n"
    )
    out.flush()
    return SimulationResult(report, shipped.sent_events, shipped.spooled_events, dropped)


async def run_simulation(options: SimulateOptions, stop: asyncio.Event, *, out: TextIO) -> int:
    """:func:`simulate` for the CLI: the exit code (1 when events were dropped)."""
    result = await simulate(options, stop, out=out)
    return 1 if result.dropped_events else 0
