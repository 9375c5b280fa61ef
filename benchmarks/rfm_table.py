"""Benchmark: `rfm table` against the classic pandas notebook recipe, on the same Parquet file.

    python benchmarks/rfm_table.py FILE.parquet [--repeat 1]

Make a 10-million-line log first: `rfm demo-data --rows 10000000 --out bench-data/demo-10m.parquet`.
Each side runs in its own child process, so wall time and peak memory (max RSS, from wait4) are
measured alike; both write their table and the benchmark checks they agree (same customers, recency
and frequency exactly, monetary to the cent) before printing the ratio.
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

NOTEBOOK_RECIPE = r'''
import sys
import pandas as pd

df = pd.read_parquet(sys.argv[1])
df = df.dropna(subset=["CustomerID"])
df = df[df["UnitPrice"] > 0]
df = df.drop_duplicates()
cancelled = df["InvoiceNo"].astype(str).str.startswith("C")
df = df[((df["Quantity"] > 0) & ~cancelled) | ((df["Quantity"] < 0) & cancelled)]
df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]
snapshot = df["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
purchases = df[df["Quantity"] > 0]
rfm = purchases.groupby("CustomerID").agg(
    recency=("InvoiceDate", lambda x: (snapshot - x.max().normalize()).days),
    frequency=("InvoiceNo", "nunique"),
)
rfm["monetary"] = df.groupby("CustomerID")["TotalPrice"].sum().reindex(rfm.index)
rfm.index = rfm.index.astype("int64").astype(str)
rfm.index.name = "customer_id"
rfm.reset_index().to_csv(sys.argv[2], index=False)
'''


def run_child(argv: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MiB) of that child alone."""
    start = time.perf_counter()
    process = subprocess.Popen(argv)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a Parquet log in the Online Retail schema")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (the best is kept)")
    args = parser.parse_args()
    rows = pd.io.parquet.read_parquet(args.file, columns=["Quantity"]).shape[0]
    rfm_cli = [sys.executable, "-m", "rfm", "table", "--data", args.file]
    with tempfile.TemporaryDirectory() as tmp:
        ours_csv, notebook_csv = Path(tmp, "ours.csv"), Path(tmp, "notebook.csv")
        ours = min(run_child([*rfm_cli, "--out", str(ours_csv)]) for _ in range(args.repeat))
        notebook = min(
            run_child([sys.executable, "-c", NOTEBOOK_RECIPE, args.file, str(notebook_csv)])
            for _ in range(args.repeat)
        )
        customers = compare(ours_csv, notebook_csv)
    print(f"log: {args.file} ({rows:,} lines, {customers:,} customers); tables agree")
    print(f"rfm table          : {ours[0]:8.2f} s   peak {ours[1]:8.0f} MiB")
    print(f"notebook (pandas)  : {notebook[0]:8.2f} s   peak {notebook[1]:8.0f} MiB")
    print(f"speed-up           : {notebook[0] / ours[0]:8.1f}x   (target >= 15x)")
    print(f"peak memory target : {'met' if ours[1] < 1024 else 'MISSED'} (< 1024 MiB)")


if __name__ == "__main__":
    main()
