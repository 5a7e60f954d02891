"""The table benchmarks/emit_cost.py prints: per scenario the median and best run's percentiles,
emit against prometheus-client and against the floor with the targets met or not, and what could
have stalled the calls. Part of benchmarks/emit_cost.py.
"""

from __future__ import annotations

from typing import Any

from benchmarks.emit_cost_scenario import Scenario

__all__ = ["print_report"]


def print_report(
    report: dict[str, Any], scenarios: list[Scenario], thread_counts: list[int]
) -> None:
    load = report["load_average_before"]
    print(
        f"python {report['python']}, {report['cpus']} cpus, timer overhead "
        f"{report['timer_overhead_ns_median']:.0f} ns, load average {load[0]:.2f} -> "
        f"{report['load_average_after'][0]:.2f}; {report['repeat']} runs of "
        f"{report['calls_per_scenario']} calls per scenario"
    )
    print(
        f"{'scenario':<16}{'':>6}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'mean us':>9}"
        f"{'calls/s':>11}{'envelopes sent while timed':>28}"
    )
    for scenario in scenarios:
        summary = report[scenario.name]
        for label in ("median", "best"):
            r = summary[label]
            extra = ""
            if label == "median":
                extra = f"{r['calls_per_s']:>11.0f}"
                if "envelopes_sent_while_timed" in r:
                    extra += f"{r['envelopes_sent_while_timed']:>28.0f}"
            print(
                f"{scenario.name:<16}{label:>6}{r['p50_us']:>9.2f}{r['p99_us']:>9.2f}"
                f"{r['p99_9_us']:>10.2f}{r['mean_us']:>9.2f}{extra}"
            )
    for n in thread_counts:
        ratio = report[f"ratio_emit_vs_prometheus_{n}t"]
        met = report[f"targets_met_{n}t"]
        print(
            f"emit / prometheus, {n} thread(s): p50 {ratio['p50_us']:.2f}x, p99 "
            f"{ratio['p99_us']:.2f}x, p99.9 {ratio['p99_9_us']:.2f}x; target p99 <= 5 us "
            f"{'met' if met['p99_le_5us'] else 'MISSED'}, p99.9 <= 50 us "
            f"{'met' if met['p99_9_le_50us'] else 'MISSED'}"
        )
        to_floor = report[f"ratio_emit_vs_floor_{n}t"]
        floor = report[f"floor_{n}t"]["median"]
        print(
            f"emit / floor, {n} thread(s): p99 {to_floor['p99_us']:.2f}x, p99.9 "
            f"{to_floor['p99_9_us']:.2f}x (the floor, a spin as long as emit's median: p99 "
            f"{floor['p99_us']:.2f} us, p99.9 {floor['p99_9_us']:.2f} us)"
        )
    print(
        "what could stall a call, per scenario (medians over runs): GC collections gen0/1/2 in "
        "the window; flush thread CPU as a share of the window; calling threads' time runnable "
        "but waiting for a CPU, as a share of the window (summed over the threads)"
    )
    for scenario in scenarios:
        r = report[scenario.name]["median"]
        gcs = "/".join(f"{r.get(f'gc_gen{g}_collections_while_timed', 0):.0f}" for g in range(3))
        flush = r.get("flush_thread_cpu_share_while_timed")
        other = r.get("callers_runnable_not_running_share")
        print(
            f"{scenario.name:<16} gc {gcs:<9} flush thread "
            f"{'-' if flush is None else f'{flush:.0%}':>5}   callers waiting for a CPU "
            f"{'-' if other is None else f'{other:.1%}':>6}"
        )
    print(f"producer: {report['producer_stats']}")
