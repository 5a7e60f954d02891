"""One benchmark of ``make bench`` as the suite runs it: :class:`Bench`, and :func:`metric`.

A :class:`Bench` is a script run as its own process (``args``, or ``quick_args`` with
``--quick``), with the metrics read from the JSON it writes (:class:`benchmarks.report.Metric`:
dotted paths, the first found counts). The suite itself is in benchmarks/suite.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_env import RESULTS_DIR
from benchmarks.report import Metric

__all__ = ["Bench", "metric"]


@dataclass(frozen=True)
class Bench:
    """One benchmark script as the suite runs it."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    results: str = ""  # results file name; default <script stem>.json
    metrics: tuple[Metric, ...] = ()
    uses: str = ""  # "backlog": gets --backlog; "bootstrap": gets --bootstrap
    repeat: bool = True  # False: repeats inside, run once
    timeout_s: float = 900.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def results_file(self) -> Path:
        return RESULTS_DIR / (self.results or f"{Path(self.script).stem}.json")


def metric(key: str, label: str, unit: str, *paths: str, higher: bool = True) -> Metric:
    """A metric read from the first of ``paths`` found in the results (``higher``: better)."""
    return Metric(key, label, unit, paths, higher)
