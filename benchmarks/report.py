"""What ``run_all.py`` makes of its results: medians, spreads, ratios, targets, table, markdown.

Pure functions over plain data (no benchmark runs, no I/O except :func:`write_plot`), so a
test checks them on canned results (tests/benchmarks_harness).

A run is a dict: ``started_at``, ``mode``, ``wall_s``, ``machine``, ``versions``, ``method``
and ``benchmarks``: name -> ``{"script", "repeats": [{"metrics": {key: value}, "load_before",
"load_after", "seconds", "error"}]}``. Metric definitions (:class:`Metric`) say where a value is
in a benchmark's results JSON; ratios and targets refer to metrics by ``benchmark.key``.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    paths: tuple[str, ...]  # dotted paths into the results JSON; the first found counts
    higher_is_better: bool = True


@dataclass(frozen=True)
class Ratio:
    label: str
    numerator: str  # "benchmark.metric"
    denominator: str


@dataclass(frozen=True)
class Target:
    label: str
    metric: str  # "benchmark.metric"
    op: str  # ">=" or "<="
    bound: float | None = None  # an absolute bound, or
    relative_to: str | None = None  # ... factor x the median of this metric
    factor: float = 1.0


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class TargetResult:
    label: str
    value: float | None
    bound: float | None
    op: str
    met: bool | None  # None: not measured in this run
    by: str  # how far from the bound, e.g. "x0.42 of the bound"


def lookup(doc: Any, path: str) -> Any:
    """``a.b.c`` in nested dicts (keys may contain dots: the longest key present wins).

    A segment with ``*`` is a glob over the keys at its level, and the largest number found
    under the keys it matches is the value (the worst p95 over a benchmark's many queries).
    """
    if path == "":
        return doc
    if not isinstance(doc, Mapping):
        return None
    parts = path.split(".")
    if "*" in parts[0]:
        rest = ".".join(parts[1:])
        found = [lookup(v, rest) for k, v in doc.items() if fnmatch.fnmatchcase(str(k), parts[0])]
        numbers = [x for x in found if isinstance(x, int | float) and not isinstance(x, bool)]
        return max(numbers) if numbers else None
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in doc:
            found = lookup(doc[key], ".".join(parts[i:]))
            if found is not None:
                return found
    return None


def extract(doc: Mapping[str, Any], metrics: Iterable[Metric]) -> dict[str, float]:
    """The metrics found in one results document (numbers only)."""
    out: dict[str, float] = {}
    for metric in metrics:
        for path in metric.paths:
            value = lookup(doc, path)
            if isinstance(value, bool):
                value = float(value)
            if isinstance(value, int | float) and math.isfinite(value):
                out[metric.key] = float(value)
                break
    return out


def summarise(values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values))


def summaries(run: Mapping[str, Any]) -> dict[str, Summary]:
    """``benchmark.metric`` -> median and spread over the run's successful repeats."""
    out: dict[str, Summary] = {}
    for name, bench in run["benchmarks"].items():
        values: dict[str, list[float]] = {}
        for rep in bench.get("repeats", []):
            for key, value in rep.get("metrics", {}).items():
                values.setdefault(key, []).append(value)
        for key, vals in values.items():
            summary = summarise(vals)
            if summary is not None:
                out[f"{name}.{key}"] = summary
    return out


def ratios(found: Mapping[str, Summary], defs: Iterable[Ratio]) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    for r in defs:
        num, den = found.get(r.numerator), found.get(r.denominator)
        value = num.median / den.median if num and den and den.median else None
        out.append((r.label, value))
    return out


def evaluate(found: Mapping[str, Summary], targets: Iterable[Target]) -> list[TargetResult]:
    """Each target against the medians of this run: met, not met (by how much) or unmeasured."""
    results: list[TargetResult] = []
    for t in targets:
        measured = found.get(t.metric)
        bound = t.bound
        if t.relative_to is not None:
            ref = found.get(t.relative_to)
            bound = ref.median * t.factor if ref is not None else None
        if measured is None or bound is None:
            results.append(TargetResult(t.label, None, bound, t.op, None, "not measured"))
            continue
        value = measured.median
        met = value >= bound if t.op == ">=" else value <= bound
        if met:
            by = "met"
        elif t.op == ">=":
            by = f"{value / bound:.2f}x of the bound" if bound else "below"
        else:
            by = f"{value / bound:.2f}x the bound" if bound else "above"
        results.append(TargetResult(t.label, value, bound, t.op, met, by))
    return results


def fmt(value: float | None) -> str:
    """A number for a table: 3 significant digits, thousands separated; '-' for none."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _loads(bench: Mapping[str, Any]) -> str:
    reps = bench.get("repeats", [])
    if not reps:
        return "-"
    before = [r["load_before"][0] for r in reps if r.get("load_before")]
    after = [r["load_after"][0] for r in reps if r.get("load_after")]
    if not before or not after:
        return "-"
    return f"{min(before):.1f}-{max(before):.1f} -> {min(after):.1f}-{max(after):.1f}"


def result_rows(run: Mapping[str, Any], metrics: Mapping[str, Sequence[Metric]]) -> list[list[str]]:
    """Rows: benchmark, metric, median, spread (min-max), repeats, load before -> after."""
    found = summaries(run)
    rows: list[list[str]] = []
    for name, bench in run["benchmarks"].items():
        errors = [r["error"] for r in bench.get("repeats", []) if r.get("error")]
        listed = False
        for metric in metrics.get(name, ()):
            s = found.get(f"{name}.{metric.key}")
            if s is None:
                continue
            listed = True
            rows.append(
                [
                    name,
                    f"{metric.label} ({metric.unit})",
                    fmt(s.median),
                    f"{fmt(s.low)} - {fmt(s.high)}",
                    str(s.n),
                    _loads(bench),
                ]
            )
        if errors or not listed:
            why = errors[0] if errors else bench.get("skipped", "no metric found")
            rows.append([name, "(not measured)", "-", "-", "0", str(why)[:120]])
    return rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(lines)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


RESULT_HEADER = (
    "benchmark",
    "metric",
    "median",
    "spread (min - max)",
    "n",
    "load 1m before -> after",
)


def target_rows(results: Sequence[TargetResult]) -> list[list[str]]:
    rows = []
    for r in results:
        met = "not measured" if r.met is None else ("met" if r.met else "NOT met")
        rows.append([r.label, fmt(r.value), f"{r.op} {fmt(r.bound)}", met, r.by])
    return rows


def markdown_section(
    run: Mapping[str, Any],
    metrics: Mapping[str, Sequence[Metric]],
    ratio_defs: Sequence[Ratio],
    targets: Sequence[Target],
    plot_name: str | None,
) -> str:
    """The generated part of docs/benchmarks.md (between the markers, markers included)."""
    found = summaries(run)
    m, v = run["machine"], run["versions"]
    lines = [
        BEGIN,
        "<!-- generated by benchmarks/run_all.py (make bench): edit outside the markers -->",
        "",
        f"## Latest `make bench` run ({run['started_at']}, {run['mode']}, "
        f"{run['wall_s'] / 60:.1f} min)",
        "",
        f"**Machine.** {m.get('cpu_model')}, {m.get('logical_cpus')} logical CPUs, "
        f"{m.get('ram_gib')} GiB RAM, Linux {m.get('kernel')}; load average (1, 5, 15 min) "
        f"{_triple(run.get('load_before'))} before the run, {_triple(run.get('load_after'))} "
        "after.",
        "",
        "**Versions.** " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"**Method.** {run['method']}",
        "",
        "### Results (median of the repeats, spread = min - max)",
        "",
        md_table(RESULT_HEADER, result_rows(run, metrics)),
        "",
        "### Ratios (medians of the same run)",
        "",
        md_table(("ratio", "value"), [[label, fmt(x)] for label, x in ratios(found, ratio_defs)]),
        "",
        "### Targets (issue 12 and this page)",
        "",
        md_table(
            ("target", "median", "bound", "status", "how far"),
            target_rows(evaluate(found, targets)),
        ),
    ]
    if plot_name:
        lines += ["", f"![throughput and latency of this run]({plot_name})"]
    lines += ["", END]
    return "\n".join(lines)


def _triple(load: Sequence[float] | None) -> str:
    return "-" if not load else ", ".join(f"{x:.2f}" for x in load)


def replace_section(document: str, section: str) -> str:
    """``document`` with the text between the markers replaced by ``section`` (markers kept).

    Without markers the section goes before the first second-level heading (after the
    introduction), or at the end; everything outside the markers is preserved byte for byte.
    """
    start, end = document.find(BEGIN), document.find(END)
    if start != -1 and end > start:
        return document[:start] + section + document[end + len(END) :]
    at = document.find("\n## ")
    if at == -1:
        return document.rstrip("\n") + "\n\n" + section + "\n"
    return document[: at + 1] + section + "\n\n" + document[at + 1 :]


def write_plot(
    found: Mapping[str, Summary],
    throughput: Sequence[tuple[str, str]],
    latency: Sequence[tuple[str, str]],
    path: Path,
    title: str,
) -> bool:
    """A PNG: throughput bars (events/s) and latency bars (us, log scale), with min-max spread.

    ``throughput``/``latency`` are (label, ``benchmark.metric``) pairs; missing ones are left
    out. Returns False when there is nothing to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("throughput (events/s, higher is better; log scale)", throughput, True),
        ("latency (us, lower is better; log scale)", latency, True),
    ]
    drawn = [
        (t, [(lab, found[k]) for lab, k in pairs if k in found], log) for t, pairs, log in panels
    ]
    if not any(bars for _, bars, _ in drawn):
        return False
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, (panel_title, bars, log) in zip(axes, drawn, strict=True):
        ax.set_title(panel_title, fontsize=10)
        if not bars:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center")
            continue
        labels = [lab for lab, _ in bars]
        medians = [s.median for _, s in bars]
        errors = [[s.median - s.low for _, s in bars], [s.high - s.median for _, s in bars]]
        ax.barh(labels, medians, xerr=errors, capsize=3, color="#4477aa")
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
