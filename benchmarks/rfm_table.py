"""Benchmark: `rfm table` against the classic pandas notebook recipe, on the same Parquet file.

    python benchmarks/rfm_table.py FILE.parquet [--repeat 1]

Make a 10-million-line log first: `rfm demo-data --rows 10000000 --out bench-data/demo-10m.parquet`.
Each side runs in its own child process, so wall time and peak memory (max RSS, from wait4) are
measured alike; both write their table and the benchmark checks they agree (same customers, recency
and frequency exactly, monetary to the cent) before printing the ratio. Two races: on the raw log (both
sides apply every cleaning rule, de-duplication included) and on the log cleaned once by `rfm ingest`
(the product's workflow; the notebook recipe runs on the same cleaned file).
Targets (issue 2): at least 15x faster than the notebook, peak memory under 1 GiB.
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

NOTEBOOK_RECIPE = r'''
import sys
import pandas as pd

path, out, columns, dedup = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4] == "dedup"
customer, invoice, date, quantity, price = columns
df = pd.read_parquet(path)
df = df.dropna(subset=[customer])
df = df[df[price] > 0]
if dedup:
    df = df.drop_duplicates()
cancelled = df[invoice].astype(str).str.startswith("C")
df = df[((df[quantity] > 0) & ~cancelled) | ((df[quantity] < 0) & cancelled)]
df["TotalPrice"] = df[quantity] * df[price]
snapshot = df[date].max().normalize() + pd.Timedelta(days=1)
purchases = df[df[quantity] > 0]
rfm = purchases.groupby(customer).agg(
    recency=(date, lambda x: (snapshot - x.max().normalize()).days),
    frequency=(invoice, "nunique"),
)
rfm["monetary"] = df.groupby(customer)["TotalPrice"].sum().reindex(rfm.index)
if pd.api.types.is_numeric_dtype(rfm.index):
    rfm.index = rfm.index.astype("int64")
rfm.index = rfm.index.astype(str)
rfm.index.name = "customer_id"
rfm.reset_index().to_csv(out, index=False)
'''
RAW_COLUMNS = "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice"
CLEANED_COLUMNS = "customer_id,invoice_id,invoice_date,quantity,unit_price"


def run_child(argv: list[str], quiet: bool = False) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MiB) of that child alone."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL if quiet else None)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed with exit code {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def compare(ours_csv: Path, notebook_csv: Path) -> int:
    ours = pd.read_csv(ours_csv, dtype={"customer_id": str}).set_index("customer_id").sort_index()
    theirs = pd.read_csv(notebook_csv, dtype={"customer_id": str}).set_index("customer_id").sort_index()
    if list(ours.index) != list(theirs.index):
        raise SystemExit(f"tables differ in customers: {len(ours)} vs {len(theirs)}")
    if not (ours["recency"] == theirs["recency"]).all() or not (ours["frequency"] == theirs["frequency"]).all():
        raise SystemExit("tables differ in recency or frequency")
    worst = float(np.abs(ours["monetary"] - theirs["monetary"].round(2)).max())
    if worst >= 0.005:
        raise SystemExit(f"tables differ in monetary by up to {worst}")
    return len(ours)


Timing = tuple[float, float]


def race(file: str, columns: str, dedup: bool, repeat: int, tmp: str) -> tuple[Timing, Timing, int]:
    """Time `rfm table` and the notebook on one file; check they agree."""
    ours_csv, notebook_csv = Path(tmp, "ours.csv"), Path(tmp, "notebook.csv")
    rfm_cli = [sys.executable, "-m", "rfm", "table", "--data", file, "--out", str(ours_csv)]
    ours = min(run_child(rfm_cli) for _ in range(repeat))
    notebook_cmd = [sys.executable, "-c", NOTEBOOK_RECIPE, file, str(notebook_csv), columns,
                    "dedup" if dedup else "no-dedup"]
    notebook = min(run_child(notebook_cmd) for _ in range(repeat))
    return ours, notebook, compare(ours_csv, notebook_csv)


def report(title: str, ours: tuple[float, float], notebook: tuple[float, float]) -> None:
    name = "raw" if title.startswith("raw") else "ingested"
    figure("rfm_table", f"RFM table, {name} log (whole process)", ours[0], "s", baseline=notebook[0],
           baseline_name="pandas notebook recipe", target=">= 15x baseline", met=notebook[0] / ours[0] >= 15)
    figure("rfm_table", f"RFM table, {name} log: peak memory", ours[1], "MiB", baseline=notebook[1],
           baseline_name="pandas notebook recipe", target="< 1,024 MiB", met=ours[1] < 1024)
    print(title)
    print(f"  rfm table          : {ours[0]:8.2f} s   peak {ours[1]:8.0f} MiB")
    print(f"  notebook (pandas)  : {notebook[0]:8.2f} s   peak {notebook[1]:8.0f} MiB")
    print(f"  speed-up           : {notebook[0] / ours[0]:8.1f}x   (target >= 15x)")
    print(f"  peak memory        : {'met' if ours[1] < 1024 else 'MISSED'} (target < 1024 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a raw Parquet log in the Online Retail schema (e.g. from rfm demo-data)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (the best is kept)")
    args = parser.parse_args()
    rows = pd.io.parquet.read_parquet(args.file, columns=["Quantity"]).shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        # 1. The raw log: both sides apply every cleaning rule, de-duplication included.
        ours, notebook, customers = race(args.file, RAW_COLUMNS, True, args.repeat, tmp)
        print(f"log: {args.file} ({rows:,} lines, {customers:,} customers); tables agree in both races")
        report("raw log (cleaning rules and de-duplication in the query / in pandas):", ours, notebook)
        # 2. The product's workflow: `rfm ingest` once, then the table from the cleaned log; the notebook
        #    recipe (dropna, filter, groupby with a lambda) reads the same cleaned file.
        cleaned = str(Path(tmp, "cleaned.parquet"))
        ingest = run_child([sys.executable, "-m", "rfm", "ingest", args.file, "--out", cleaned], quiet=True)
        ours, notebook, _ = race(cleaned, CLEANED_COLUMNS, False, args.repeat, tmp)
        print(f"rfm ingest (once)    : {ingest[0]:8.2f} s   peak {ingest[1]:8.0f} MiB")
        figure("rfm_table", f"rfm ingest, {rows:,} lines (whole process)", ingest[0], "s")
        report("ingested log (rfm ingest once, then rfm table):", ours, notebook)


if __name__ == "__main__":
    main()
