"""Start-up and restart times of the test harness's Kafka broker (tests/support/kafka_broker.py).

For each JIT mode (``quick``: C1 only, what the test fixtures use; ``full``: the JVM default)
and each round, on a fresh work directory: ``cold`` = kafka-storage format + start until an
aiokafka client gets metadata; ``restart`` = controlled stop + start (same data, same port);
``kill_start`` = SIGKILL + start (waits out the dead broker's 3 s session). Also the broker's
own CPU seconds at the moment it answers (less sensitive to other load than wall time).
The machine's load average is recorded with the numbers: 2 shared cores make wall times noisy.

Run: .venv/bin/python benchmarks/kafka_broker_start.py [--rounds N]
Writes benchmarks/results/kafka_broker_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "kafka_broker_start.json"
sys.path.insert(0, str(ROOT))

from tests.support.kafka_broker import KafkaBroker  # noqa: E402
from tests.support.kafka_dist import KafkaDistribution, kafka_distribution  # noqa: E402
from tests.support.settings import HarnessSettings  # noqa: E402


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(dist: KafkaDistribution, quick_jit: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pwm-bench-kafka-") as work:
        broker = KafkaBroker(dist, Path(work), quick_jit=quick_jit)
        try:
            started = time.monotonic()
            broker.start()
            cold_s = time.monotonic() - started
            cpu_s = _cpu_s(broker.pid)
            started = time.monotonic()
            broker.restart()
            restart_s = time.monotonic() - started
            broker.kill()
            started = time.monotonic()
            broker.start()
            kill_start_s = time.monotonic() - started
        finally:
            broker.close()
    return {
        "cold_s": cold_s,
        "broker_cpu_s_at_ready": cpu_s,
        "restart_s": restart_s,
        "kill_start_s": kill_start_s,
    }


def summarise(rounds: list[dict[str, float]]) -> dict[str, Any]:
    keys = rounds[0].keys()
    return {
        key: {
            "median": statistics.median(r[key] for r in rounds),
            "min": min(r[key] for r in rounds),
            "max": max(r[key] for r in rounds),
        }
        for key in keys
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = HarnessSettings()
    dist = kafka_distribution(settings)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    for mode, quick in (("quick", True), ("full", False)):
        rounds = [one_round(dist, quick) for _ in range(args.rounds)]
        results[mode] = {"rounds": rounds, "summary": summarise(rounds)}
        for key, stats in results[mode]["summary"].items():
            print(
                f"{mode:5} {key:22} median {stats['median']:6.2f}  "
                f"min {stats['min']:6.2f}  max {stats['max']:6.2f}"
            )
    record = {
        "benchmark": "kafka_broker_start",
        "kafka_version": dist.version,
        "java": str(dist.java.resolve()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "rounds": args.rounds,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    load_after = os.getloadavg()[0]
    print(f"written {RESULTS.relative_to(ROOT)}; load {load_before[0]:.1f} -> {load_after:.1f}")


if __name__ == "__main__":
    main()
