"""Peer: Quix Streams computing the pipeline's 10 s tumbling windows per pool and region.

Written the way Quix Streams' users write it, on the run's backlog (``peer_backlog.py``):

* ``events`` mode, one JSON event per message (the topic keyed by ``pool|region``, so no
  ``group_by`` repartition is needed): ``app.dataframe(topic)``, the event time from the
  payload's ``ts_ms`` (``timestamp_extractor``), ``.tumbling_window(10 s, grace 5 s)``
  ``.reduce(...)`` counting events, successes and summing latency, ``.final()``;
* ``envelopes`` mode, the project's 500-event envelopes (keyed by pool): decoded with the
  project's codec and ``.apply(..., expand=True)`` into events, ``.set_timestamp`` from the
  event, the same tumbling window keyed by pool with a per-region reducer.

Each mode drains the backlog from the start with a new consumer group, with Quix's defaults
(RocksDB state with changelog topics, at-least-once), and stops when it has processed every
event, or after the first ``--max-events`` of them (at Quix's rates the whole backlog would
dominate the run). Reports events/s and the process's CPU per event, both from the first event
to the last.

Quix Streams 3.28 requires pydantic < 2.14 while the project pins 2.14, so it runs in its own
virtual environment, ``.venv-quix`` (``requirements-quix.lock``; ``make bench`` creates it): the
parent (this script in ``.venv``) writes or reads the backlog and runs each mode there.

Run: .venv/bin/python benchmarks/peer_quix.py [--backlog manifest.json | --events N] [--tiny]
Writes benchmarks/results/peer_quix.json (``peer_quix.tiny.json`` with --tiny).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_env import load_average, versions, write_result  # noqa: E402

QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"
WINDOW_MS = 10_000
GRACE_MS = 5_000
MODES = ("events", "envelopes")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one mode inside the Quix environment; returns its measurements."""
    from quixstreams import Application

    total = args.expect_events
    seen = {"events": 0, "first": 0.0, "last": 0.0, "cpu_first": 0.0, "cpu_last": 0.0, "windows": 0}

    with tempfile.TemporaryDirectory(prefix="pwm-bench-quix-") as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=f"bench-quix-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            state_dir=state_dir,
            loglevel="WARNING",
        )

        def tick(_value: Any) -> None:
            if seen["events"] == 0:
                seen["first"], seen["cpu_first"] = time.perf_counter(), time.process_time()
            seen["events"] += 1
            if seen["events"] == total:
                seen["last"], seen["cpu_last"] = time.perf_counter(), time.process_time()
                app.stop()

        def window_out(_value: Any) -> None:
            seen["windows"] += 1

        if args.child == "events":

            def event_time(value: Any, _headers: Any, _ts: float, _ts_type: Any) -> int:
                return int(value["ts_ms"])

            topic = app.topic(
                args.topic,
                value_deserializer="json",
                key_deserializer="str",
                timestamp_extractor=event_time,
            )
            sdf = app.dataframe(topic)
            sdf = sdf.update(tick)

            def init(ev: dict[str, Any]) -> dict[str, Any]:
                ok = ev["outcome"] == "success"
                return {"events": 1, "success": int(ok), "latency_ms_sum": ev["latency_ms"]}

            def reduce(agg: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
                agg["events"] += 1
                agg["success"] += ev["outcome"] == "success"
                agg["latency_ms_sum"] += ev["latency_ms"]
                return agg

            sdf = sdf.tumbling_window(duration_ms=WINDOW_MS, grace_ms=GRACE_MS)
            sdf = sdf.reduce(reducer=reduce, initializer=init).final()
        else:
            sys.path.insert(0, str(ROOT))
            from schemas.wire import decode_record

            topic = app.topic(args.topic, value_deserializer="bytes", key_deserializer="str")
            sdf = app.dataframe(topic)
            sdf = sdf.apply(decode_record, expand=True)
            sdf = sdf.update(tick)
            sdf = sdf.set_timestamp(lambda ev, _key, _ts, _headers: ev.ts_ms)

            def init_pool(ev: Any) -> dict[str, list[float]]:
                return {ev.region: [1, int(ev.outcome == "success"), ev.latency_ms]}

            def reduce_pool(agg: dict[str, list[float]], ev: Any) -> dict[str, list[float]]:
                acc = agg.get(ev.region)
                if acc is None:
                    agg[ev.region] = [1, int(ev.outcome == "success"), ev.latency_ms]
                else:
                    acc[0] += 1
                    acc[1] += ev.outcome == "success"
                    acc[2] += ev.latency_ms
                return agg

            sdf = sdf.tumbling_window(duration_ms=WINDOW_MS, grace_ms=GRACE_MS)
            sdf = sdf.reduce(reducer=reduce_pool, initializer=init_pool).final()
        sdf = sdf.update(window_out)

        app.run(timeout=args.idle_timeout)
    events = seen["events"]
    if events < total or not seen["last"]:
        raise SystemExit(f"quix {args.child}: {events} of {total} events before the idle timeout")
    wall = seen["last"] - seen["first"]
    cpu = seen["cpu_last"] - seen["cpu_first"]
    return {
        "events": events,
        "seconds": round(wall, 3),
        "events_per_s": round(events / wall),
        "cpu_us_per_event": round(cpu / events * 1e6, 3),
        "windows_emitted": seen["windows"],
    }


def run_mode(mode: str, topic: str, bootstrap: str, events: int) -> dict[str, Any]:
    cmd = [
        str(QUIX_PYTHON),
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--topic",
        topic,
        "--bootstrap",
        bootstrap,
        "--expect-events",
        str(events),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"quix {mode} failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def quix_versions() -> dict[str, str]:
    code = (
        "import json, confluent_kafka; from importlib.metadata import version as v; "
        "print(json.dumps({'quixstreams': v('quixstreams'), "
        "'confluent-kafka': v('confluent-kafka'), 'librdkafka': confluent_kafka.libversion()[0]}))"
    )
    out = subprocess.run(
        [str(QUIX_PYTHON), "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--expect-events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--idle-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--max-events", type=int, default=200_000)
    from benchmarks.peer_backlog import add_backlog_arguments

    add_backlog_arguments(parser, default_events=300_000)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return
    if not QUIX_PYTHON.exists():
        raise SystemExit(f"{QUIX_PYTHON} is missing: run scripts/bootstrap-bench.sh (make bench)")
    if args.tiny and not args.backlog:
        args.events = min(args.events, 20_000)

    from benchmarks.peer_backlog import backlog_for

    results: dict[str, Any] = {}
    with backlog_for(args) as backlog:
        load_before = load_average()
        for mode in args.modes.split(","):
            topic = backlog.event_topic if mode == "events" else backlog.envelope_topic
            events = min(backlog.events, args.max_events)
            results[mode] = run_mode(mode, topic, backlog.bootstrap, events)
            print(f"peer_quix {mode}: {json.dumps(results[mode])}", flush=True)
    path = write_result(
        "peer_quix",
        {
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "quix_environment": {**quix_versions(), "project": versions()["python"]},
            "window_ms": WINDOW_MS,
            "grace_ms": GRACE_MS,
            "backlog": {"events": backlog.events, "records": backlog.envelope_records},
            **results,
        },
        tiny=args.tiny,
    )
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
