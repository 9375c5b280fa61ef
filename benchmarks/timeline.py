"""Benchmark: `rfm migration` and `rfm trend` against a pandas baseline, on the same Parquet file.

    python benchmarks/timeline.py FILE.parquet [--repeat 1] [--from 2011-09-01 --to 2011-12-01] [--raw]

Make a 10-million-line log first: `rfm demo-data --rows 10000000 --out bench-data/demo-10m.parquet`.
The log is cleaned once by `rfm ingest` (the product's workflow, as in benchmarks/rfm_table.py) and both
sides read that cleaned file; `--raw` also races on the raw log (cleaning rules and de-duplication in
the query / in pandas). Each side runs in its own child process, so wall time (the whole command:
start-up, reading, computing, writing the CSV) and peak memory (max RSS, from wait4) are measured alike.
The baseline is the straightforward pandas recipe (filter the lines before each snapshot, group by
customer, rank, name the R x F cell; one pass per snapshot). Both write their table and the benchmark
checks they agree (same rows, exact customer counts, revenue to the cent) before printing the ratio.
Targets (issue 13): migration under 3 s, a 12-snapshot monthly trend under 6 s, on a 10-million-line log.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from figures import figure

BASELINE = r'''
import sys
from datetime import date

import numpy as np
import pandas as pd

from rfm.segments import rf_grid

path, out, kind, job, start, end = sys.argv[1:7]
if kind == "raw":
    df = pd.read_parquet(path)
    df = df[df["CustomerID"].notna() & (df["UnitPrice"] > 0)].drop_duplicates()
    cancel = df["InvoiceNo"].astype(str).str.upper().str.startswith("C")
    df = df[((df["Quantity"] > 0) & ~cancel) | ((df["Quantity"] < 0) & cancel)]
    lines = pd.DataFrame({"customer_id": df["CustomerID"].astype("int64").astype(str),
                          "invoice": df["InvoiceNo"].astype(str), "day": df["InvoiceDate"].dt.normalize(),
                          "amount": df["Quantity"] * df["UnitPrice"]})
else:
    df = pd.read_parquet(path, columns=["customer_id", "invoice_id", "invoice_date", "amount"])
    lines = pd.DataFrame({"customer_id": df["customer_id"], "invoice": df["invoice_id"],
                          "day": df["invoice_date"].dt.normalize(), "amount": df["amount"]})
grid = rf_grid()


def rfm_at(snapshot):
    at = pd.Timestamp(snapshot)
    before = lines[lines["day"] < at]
    purchases = before[before["amount"] > 0]
    grouped = purchases.groupby("customer_id")
    table = pd.DataFrame({"recency": (at - grouped["day"].max()).dt.days,
                          "frequency": grouped["invoice"].nunique()})
    table["monetary"] = before.groupby("customer_id")["amount"].sum().reindex(table.index).round(2)
    n = len(table)
    r = (np.floor(5 * (table["recency"].rank(method="min", ascending=False) - 1) / n) + 1).astype(int)
    f = (np.floor(5 * (table["frequency"].rank(method="min") - 1) / n) + 1).astype(int)
    table["segment"] = [grid[(a, b)] for a, b in zip(r, f)]
    return table


def revenue(start, end):
    inside = lines[(lines["day"] >= pd.Timestamp(start)) & (lines["day"] < pd.Timestamp(end))]
    return inside.groupby("customer_id")["amount"].sum()


if job == "migration":
    a, b = rfm_at(start), rfm_at(end)
    frame = pd.DataFrame({"from_segment": a["segment"].reindex(b.index).fillna("not yet a customer"),
                          "to_segment": b["segment"], "revenue": revenue(start, end).reindex(b.index).fillna(0.0)})
    table = frame.groupby(["from_segment", "to_segment"]).agg(customers=("revenue", "size"),
                                                              revenue=("revenue", "sum")).reset_index()
else:
    first, last = lines["day"].min(), lines["day"].max()
    ends, y, m = [], first.year, first.month
    while True:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        if pd.Timestamp(date(y, m, 1)) > last + pd.Timedelta(days=1):
            break
        ends.append(date(y, m, 1))
    starts = [date(first.year, first.month, 1), *ends[:-1]]
    parts = []
    for period_start, snapshot in zip(starts, ends):
        table = rfm_at(snapshot)
        table["revenue"] = revenue(period_start, snapshot).reindex(table.index).fillna(0.0)
        grouped = table.groupby("segment").agg(customers=("revenue", "size"), revenue=("revenue", "sum"),
                                               monetary=("monetary", "sum")).reset_index()
        grouped["snapshot"] = snapshot.isoformat()
        parts.append(grouped)
    table = pd.concat(parts)
table.to_csv(out, index=False, float_format="%.6f")
'''


def run_child(argv: list[str]) -> tuple[float, float, float]:
    """Run a command; return (wall seconds, peak RSS in MiB, CPU seconds: user + system) of that child
    alone. CPU time is printed beside wall time because the machine may be shared: wall time then
    includes waiting for a core, CPU time does not."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(argv[:4])} ... failed: {error.strip()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def compare(ours_csv: Path, baseline_csv: Path, keys: list[str]) -> int:
    def read(path: Path) -> pd.DataFrame:
        frame = pd.read_csv(path, keep_default_na=False).astype({k: str for k in keys})
        return frame.set_index(keys).sort_index()

    ours, theirs = read(ours_csv), read(baseline_csv)
    if list(ours.index) != list(theirs.index):
        raise SystemExit(f"tables differ in rows: {len(ours)} vs {len(theirs)}")
    if not (ours["customers"] == theirs["customers"]).all():
        raise SystemExit("tables differ in customer counts")
    for column in ("revenue", "monetary"):
        if column in theirs.columns:
            worst = float(np.abs(ours[column] - theirs[column]).max())
            if worst >= 0.005:
                raise SystemExit(f"tables differ in {column} by up to {worst}")
    return int(ours["customers"].sum())


Timing = tuple[float, float, float]


def race(file: str, kind: str, job: str, start: str, end: str, repeat: int, tmp: str) -> tuple[Timing, Timing, int]:
    ours_csv, baseline_csv = Path(tmp, f"ours-{job}.csv"), Path(tmp, f"baseline-{job}.csv")
    if job == "migration":
        cli = [sys.executable, "-m", "rfm", "migration", "--data", file, "--from", start, "--to", end,
               "--out", str(ours_csv)]
        keys = ["from_segment", "to_segment"]
    else:
        cli = [sys.executable, "-m", "rfm", "trend", "--data", file, "--every", "month", "--out", str(ours_csv)]
        keys = ["snapshot", "segment"]
    ours = min(run_child(cli) for _ in range(repeat))
    baseline_cmd = [sys.executable, "-c", BASELINE, file, str(baseline_csv), kind, job, start, end]
    baseline = min(run_child(baseline_cmd) for _ in range(repeat))
    return ours, baseline, compare(ours_csv, baseline_csv, keys)


def report(title: str, target: float, ours: Timing, baseline: Timing, what: str = "") -> None:
    if what:
        figure("timeline", what, ours[0], "s", baseline=baseline[0], baseline_name="pandas recipe",
               target=f"< {target:g} s", met=ours[0] < target)
    print(title)
    print(f"  rfm                : {ours[0]:8.2f} s   cpu {ours[2]:7.2f} s   peak {ours[1]:6.0f} MiB   "
          f"({'met' if ours[0] < target else 'MISSED'}: target < {target:g} s wall)")
    print(f"  pandas baseline    : {baseline[0]:8.2f} s   cpu {baseline[2]:7.2f} s   peak {baseline[1]:6.0f} MiB")
    print(f"  speed-up           : {baseline[0] / ours[0]:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a raw Parquet log in the Online Retail schema (e.g. from rfm demo-data)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (the best is kept)")
    parser.add_argument("--from", dest="start", default="2011-09-01", help="migration: first snapshot")
    parser.add_argument("--to", dest="end", default="2011-12-01", help="migration: second snapshot")
    parser.add_argument("--raw", action="store_true", help="also race on the raw log (slow baseline)")
    parser.add_argument("--cleaned", metavar="FILE.parquet",
                        help="FILE already cleaned by `rfm ingest` (skips the ingest step)")
    args = parser.parse_args()
    rows = pd.io.parquet.read_parquet(args.file, columns=["Quantity"]).shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        if args.cleaned:
            cleaned, step = args.cleaned, f"cleaned log given: {args.cleaned}"
        else:
            cleaned = str(Path(tmp, "cleaned.parquet"))
            ingest = run_child([sys.executable, "-m", "rfm", "ingest", args.file, "--out", cleaned])
            step = f"rfm ingest once: {ingest[0]:.2f} s"
        print(f"log: {args.file} ({rows:,} lines); {step}; tables agree in every race")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start "
              "(above the core count, wall times include waiting for a core)")
        logs = [("ingested log (rfm ingest once; both sides read the cleaned file)", cleaned, "cleaned")]
        if args.raw:
            logs.append(("raw log (cleaning rules and de-duplication in the query / in pandas)", args.file, "raw"))
        for title, file, kind in logs:
            ours, baseline, customers = race(file, kind, "migration", args.start, args.end, args.repeat, tmp)
            report(f"{title}\nmigration {args.start} -> {args.end} ({customers:,} customers):", 3.0, ours, baseline,
                   f"migration, {rows:,}-line {kind} log (whole process)")
            ours, baseline, _ = race(file, kind, "trend", args.start, args.end, args.repeat, tmp)
            snapshots = pd.read_csv(Path(tmp, "ours-trend.csv"))["snapshot"].nunique()
            report(f"trend, every month ({snapshots} snapshots):", 6.0, ours, baseline,
                   f"trend, {snapshots} monthly snapshots, {rows:,}-line {kind} log (whole process)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
