"""HTTP ingest against the in-process transport, in the same run: events/s from emit() to
aggregated by the embedded pipeline.

1. in-process (the floor): a ``MetricsProducer`` on the pipeline's ``InProcessTransport`` in
   this process, the embedded pipeline writing to chDB (as ``demo`` does). Timed from the first
   ``emit()`` until the pipeline has aggregated every event.
2. HTTP: a real ``proxywhirl-metrics serve`` child process (its own chDB store) and a
   ``MetricsProducer`` with the ``HttpTransport`` here (zstd, keep-alive). Timed from the first
   ``emit()`` until the server has accepted every event (inbox committed) and its pipeline queue
   is empty (every accepted record aggregated), read from its ``/metrics``.

Both emit the same events: the demo fleet (config/demo-fleet.yaml), stamped in the last minutes
so none is refused for its time. Reports events/s of each, their ratio, CPU seconds of this
process, and the load average before and after. Writes benchmarks/results/ingest_http.json.

Run: .venv/bin/python benchmarks/ingest_http.py [--events 300000]
     .venv/bin/python benchmarks/ingest_http.py --tiny   # seconds: checks the script runs
Run it on a quiet machine: nothing else running (no tests, no other benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from producer import MetricsProducer, ProducerSettings  # noqa: E402
from producer.http_settings import HttpTransportSettings  # noqa: E402
from producer.http_transport import HttpTransport  # noqa: E402
from producer.transport import Transport  # noqa: E402
from stream_app.dead_letters import FileDeadLetters  # noqa: E402
from stream_app.embedded.pipeline import EmbeddedPipeline  # noqa: E402
from stream_app.settings import PipelineSettings  # noqa: E402
from stream_app.simulator import FleetSimulator, load_scenario  # noqa: E402
from stream_app.simulator.generator import EmitParams  # noqa: E402
from stream_app.storage.client import get_client  # noqa: E402
from stream_app.storage.migrate import Migrator  # noqa: E402
from stream_app.storage.settings import StorageSettings  # noqa: E402
from stream_app.storage.sink import ClickHouseSink  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ingest_http.json"
TOKEN = "bench-ingest-token-0123456789abcdef"
TIMEOUT_S = 600.0


def _params(count: int) -> list[EmitParams]:
    scenario = load_scenario(ROOT / "config" / "demo-fleet.yaml")
    now_ms = time.time_ns() // 1_000_000
    span_ms = 180_000
    sim = FleetSimulator(scenario, seed=7, origin_ms=now_ms - span_ms)
    out: list[EmitParams] = []
    start = now_ms - span_ms
    while len(out) < count:
        out.extend(sim.params_between(start, start + 10_000))
        start += 10_000
    return out[:count]


def _producer(transport: Transport) -> MetricsProducer:
    settings = ProducerSettings(
        source_host="bench-host",
        fleet_key="bench-fleet-key-0123456789abcdef",
        close_at_exit=False,
        max_buffer_events=2_000_000,
    )
    return MetricsProducer(settings, transport)


def _emit_all(producer: MetricsProducer, params: list[EmitParams]) -> None:
    for p in params:
        while not producer.emit(**p):  # buffer full: let the flush thread catch up
            time.sleep(0.001)


async def _in_process(params: list[EmitParams], work: Path) -> dict[str, Any]:
    storage = StorageSettings(data_dir=work / "inproc")
    client = get_client(storage)
    Migrator(client, storage).migrate()
    pipeline = EmbeddedPipeline(
        PipelineSettings(), ClickHouseSink(client, storage), FileDeadLetters(work / "dlq.jsonl")
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(pipeline.run(stop))
    producer = _producer(pipeline.transport())
    cpu0, t0 = time.process_time(), time.perf_counter()
    emitting = asyncio.create_task(asyncio.to_thread(_emit_all, producer, params))
    deadline = t0 + TIMEOUT_S
    while pipeline.stats.events < len(params):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"in-process: {pipeline.stats.events} of {len(params)} events")
        await asyncio.sleep(0.01)
    wall_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    await emitting
    await asyncio.to_thread(producer.close, 10.0)
    stop.set()
    await runner
    return {
        "events": len(params),
        "wall_s": round(wall_s, 3),
        "events_per_s": round(len(params) / wall_s),
        "process_cpu_s": round(cpu_s, 3),
    }


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("pwm_ingest_"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("serve did not become ready")


def _http(params: list[EmitParams], work: Path) -> dict[str, Any]:
    from tests.support.ports import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWM_")}
    env["PWM_API_TOKENS"] = json.dumps([{"name": "bench", "token": TOKEN, "roles": ["ingest"]}])
    argv = [sys.executable, "-m", "stream_app.cli", "--log-level", "WARNING", "serve"]
    argv += ["--port", str(port), "--data-dir", str(work / "serve")]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT)
    try:
        _wait_ready(url, proc)
        transport = HttpTransport(HttpTransportSettings(url=url, token=TOKEN))
        producer = _producer(transport)
        cpu0, t0 = time.process_time(), time.perf_counter()
        _emit_all(producer, params)
        producer.flush(TIMEOUT_S)
        deadline = t0 + TIMEOUT_S
        while True:
            m = _scrape(url)
            accepted = m.get("pwm_ingest_events_accepted_total", 0.0)
            if accepted >= len(params) and m.get("pwm_ingest_handoff_records", 1.0) == 0:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"http: {accepted} of {len(params)} events accepted")
            time.sleep(0.01)
        wall_s = time.perf_counter() - t0
        cpu_s = time.process_time() - cpu0
        stats = transport.stats()
        producer.close(10.0)
        return {
            "events": len(params),
            "wall_s": round(wall_s, 3),
            "events_per_s": round(len(params) / wall_s),
            "producer_process_cpu_s": round(cpu_s, 3),
            "batches": stats.accepted_batches,
            "spooled_batches": stats.spooled_batches,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--tiny", action="store_true", help="a few thousand events, no results")
    args = parser.parse_args()
    count = 5_000 if args.tiny else args.events
    params = _params(count)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pwm-bench-ingest-") as tmp:
        work = Path(tmp)
        http = _http(params, work)
        in_process = asyncio.run(_in_process(params, work))
    load_after = os.getloadavg()
    result = {
        "benchmark": "ingest_http",
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in load_after],
        },
        "in_process": in_process,
        "http": http,
        "http_vs_in_process": round(http["events_per_s"] / in_process["events_per_s"], 3),
    }
    print(json.dumps(result, indent=2))
    if not args.tiny:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
