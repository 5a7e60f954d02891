"""What ``make bench`` runs (benchmarks/run_all.py): scripts, arguments, metrics, ratios, targets.

Each :class:`Bench` is a script run as its own process (``args``, or ``quick_args`` with
``--quick``), with the metrics read from the JSON it writes (:class:`benchmarks.report.Metric`:
dotted paths, the first found counts). Ratios and targets name metrics ``benchmark.metric``;
the targets are those of issue 12 and docs/benchmarks.md.

The benchmarks are defined by area, in the order the suite runs them: the stream path
(benchmarks/suite_stream.py), the producer side (suite_producer.py), the read side
(suite_serving.py); the ratios and targets in suite_targets.py. This module assembles them and
says what the plots show and how the run was made.
"""

from __future__ import annotations

from benchmarks.suite_bench import Bench
from benchmarks.suite_producer import PRODUCER
from benchmarks.suite_serving import SERVING
from benchmarks.suite_stream import STREAM
from benchmarks.suite_targets import F1, F2, RATIOS, TARGETS, W1, W2

__all__ = [
    "LATENCY_PLOT",
    "METHOD",
    "RATIOS",
    "SUITE",
    "TARGETS",
    "THROUGHPUT_PLOT",
    "Bench",
]

SUITE: tuple[Bench, ...] = (*STREAM, *PRODUCER, *SERVING)

THROUGHPUT_PLOT = (
    ("floor: aiokafka + decode, v1", F1),
    ("floor: aiokafka + decode, v2", F2),
    ("worker, 1 (drain), v1", W1),
    ("worker, 1 (drain), v2 columnar", W2),
    ("worker, 1 process (scaling)", "worker_scaling.w1_events_per_s"),
    ("workers, 2 processes", "worker_scaling.w2_events_per_s"),
    ("Quix Streams, envelopes", "peer_quix.envelopes_eps"),
    ("Quix Streams, event/message", "peer_quix.events_eps"),
    ("Faust, event/record", "peer_faust.events_per_s"),
)
LATENCY_PLOT = tuple(
    (f"{who} {n} thr {label}", f"emit_cost.{key}_{n}t_{q}")
    for n in (1, 4, 8)
    for who, key in (("emit()", "emit"), ("prometheus", "prometheus"))
    for q, label in (("p99_us", "p99"), ("p99_9_us", "p99.9"))
)

METHOD = (
    "`make bench` (benchmarks/run_all.py) started one Kafka broker and wrote one backlog of "
    "demo-fleet events (benchmarks/peer_backlog.py: the simulator's demo fleet, seed 3, as "
    "500-event envelopes of schema v1 and v2 (columnar, numeric columns packed as the producer "
    "sends them) and as one JSON event per message, 4 partitions, zstd). The floor (v1 and v2), "
    "Quix Streams, Faust and the scaling runs read that backlog; worker_throughput.py writes the "
    "same events (same simulator and seed; a 2M-event backlog in the full run) to its own topics "
    "on the same broker, as v1 and v2 envelopes, then a 1M-event backlog of the fleet-scale "
    "profile (50 pools x 20 regions x 10k proxies, core_throughput.py) as v2 envelopes; each "
    "drain is timed from the worker holding its partitions to every offset committed after the "
    "last insert. Each benchmark "
    "ran as its own process, {repeats} time(s) where the runner repeats it (the others repeat "
    "inside: emit_cost, core_throughput, proxywhirl_overhead), one after another; the load "
    "average was read before and after each. Medians and min - max spreads are over the "
    "repeats; ratios divide medians of this run. Wall-clock rates are absolute numbers of this "
    "machine; CPU per event is the process's CPU time."
)
