"""The stream path's benchmarks in ``make bench``: the floor, the worker, its scaling, the peers.

The floor (aiokafka + decode), Quix Streams, Faust and the scaling runs read the run's shared
backlog (``uses="backlog"``); worker_throughput.py writes its own topics on the run's broker
(``uses="bootstrap"``); core_throughput.py times the core alone and needs neither.
"""

from __future__ import annotations

from benchmarks.suite_bench import Bench, metric

__all__ = ["STREAM"]

EPS = "events/s"
STREAM: tuple[Bench, ...] = (
    Bench(
        "peer_floor",
        "benchmarks/peer_floor.py",
        metrics=(
            metric(
                "events_per_s", "aiokafka + decode, floor, v1 envelopes", EPS, "drain.events_per_s"
            ),
            metric("cpu_us", "CPU per event, v1", "us", "drain.cpu_us_per_event", higher=False),
            metric("v2_events_per_s", "floor, v2 columnar envelopes", EPS, "drain_v2.events_per_s"),
            metric(
                "v2_cpu_us", "CPU per event, v2", "us", "drain_v2.cpu_us_per_event", higher=False
            ),
        ),
        uses="backlog",
    ),
    Bench(
        "worker_throughput",
        "benchmarks/worker_throughput.py",
        # the garbage collector tuned as `proxywhirl-metrics worker` does (WorkerSettings default)
        # a backlog long enough that start-up and the last cycle do not set the rate
        args=(
            "--skip-live",
            "--events",
            "2000000",
            "--fleet-events",
            "1000000",
            "--gc-threshold0",
            "50000",
        ),
        quick_args=(
            "--skip-live",
            "--events",
            "500000",
            "--fleet-events",
            "300000",
            "--gc-threshold0",
            "50000",
        ),
        metrics=(
            metric("events_per_s", "1 worker drains the demo fleet, v1", EPS, "drain.events_per_s"),
            metric("cpu_us", "CPU per event, v1", "us", "drain.cpu_us_per_event", higher=False),
            metric(
                "v2_events_per_s", "1 worker, v2 columnar envelopes", EPS, "drain_v2.events_per_s"
            ),
            metric(
                "v2_cpu_us", "CPU per event, v2", "us", "drain_v2.cpu_us_per_event", higher=False
            ),
            metric(
                "fleet_events_per_s",
                "1 worker, fleet scale 50x20x10k, v2",
                EPS,
                "drain_fleet.events_per_s",
                "fleet.drain.events_per_s",
                "fleet.events_per_s",
            ),
            metric(
                "fleet_cpu_us",
                "CPU per event, fleet scale",
                "us",
                "drain_fleet.cpu_us_per_event",
                higher=False,
            ),
        ),
        uses="bootstrap",
    ),
    Bench(
        "worker_live",
        "benchmarks/worker_throughput.py",
        args=("--skip-drain", "--live-seconds", "20", "--gc-threshold0", "50000"),
        quick_args=("--skip-drain", "--live-seconds", "20", "--gc-threshold0", "50000"),
        results="worker_throughput.json",
        metrics=(
            metric(
                "stored_p99_s",
                "live 20k ev/s: event to stored p99",
                "s",
                "live.event_to_stored_s.p99",
                higher=False,
            ),
            metric(
                "window_p99_s",
                "live: window end to complete p99",
                "s",
                "live.window_end_to_complete_s.p99",
                higher=False,
            ),
        ),
        uses="bootstrap",
        repeat=False,
    ),
    Bench(
        "worker_scaling",
        "benchmarks/worker_scaling.py",
        metrics=(
            metric("w1_events_per_s", "1 worker process", EPS, "workers_1.events_per_s"),
            metric("w2_events_per_s", "2 worker processes", EPS, "workers_2.events_per_s"),
            metric("factor", "scaling factor 2 vs 1", "x", "scaling_factor"),
            metric(
                "w2_busiest_share",
                "busiest of 2 workers' share of events",
                "fraction",
                "busiest_share",
            ),
        ),
        uses="backlog",
    ),
    Bench(
        "peer_quix",
        "benchmarks/peer_quix.py",
        args=("--max-events", "100000"),
        quick_args=("--max-events", "50000"),
        metrics=(
            metric("events_eps", "Quix Streams, event per message", EPS, "events.events_per_s"),
            metric("envelopes_eps", "Quix Streams, envelopes", EPS, "envelopes.events_per_s"),
            metric(
                "events_cpu_us", "Quix event/msg CPU", "us", "events.cpu_us_per_event", higher=False
            ),
        ),
        uses="backlog",
    ),
    Bench(
        "peer_faust",
        "benchmarks/peer_faust.py",
        args=("--max-events", "15000"),
        quick_args=("--max-events", "10000"),
        metrics=(
            metric(
                "events_per_s", "Faust, event per record, windowed table", EPS, "drain.events_per_s"
            ),
            metric("cpu_us", "CPU per event", "us", "drain.cpu_us_per_event", higher=False),
        ),
        uses="backlog",
    ),
    Bench(
        "core_small",
        "benchmarks/core_throughput.py",
        args=("--profile", "small"),
        quick_args=("--profile", "small", "--repeat", "1"),
        results="core_throughput.json",
        metrics=(
            metric(
                "events_per_cpu_s",
                "core, demo mix",
                "events/CPU-s",
                "small.results.decode+aggregate.events_per_s_cpu",
            ),
            metric(
                "v2_events_per_cpu_s",
                "core, demo mix, v2 columnar",
                "events/CPU-s",
                "small.results.decode+aggregate v2.events_per_s_cpu",
            ),
        ),
        repeat=False,
    ),
    Bench(
        "core_fleet",
        "benchmarks/core_throughput.py",
        args=("--profile", "fleet"),
        quick_args=("--profile", "fleet", "--repeat", "1"),
        results="core_throughput.json",
        metrics=(
            metric(
                "events_per_cpu_s",
                "core, fleet 50x20x10k",
                "events/CPU-s",
                "fleet.results.decode+aggregate.events_per_s_cpu",
            ),
            metric(
                "v2_events_per_cpu_s",
                "core, fleet 50x20x10k, v2 columnar",
                "events/CPU-s",
                "fleet.results.decode+aggregate v2.events_per_s_cpu",
            ),
        ),
        repeat=False,
    ),
)
