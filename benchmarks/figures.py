"""One figure line per measured row, so `make bench` (benchmarks/run_all.py) can gather every
benchmark's results into docs/PERFORMANCE.md without parsing their human-readable output."""

from __future__ import annotations

import json

MARKER = "BENCH_ROW "


def figure(benchmark: str, what: str, ours: float, unit: str, *, baseline: float | None = None,
           baseline_name: str = "", target: str = "", met: bool | None = None) -> None:
    """Print one row: what was measured, our figure, the baseline measured in the same run (if any),
    the target in words and whether it was met."""
    row = {"benchmark": benchmark, "what": what, "ours": ours, "unit": unit, "baseline": baseline,
           "baseline_name": baseline_name, "target": target, "met": met}
    print(MARKER + json.dumps(row), flush=True)
