"""Benchmark: `rfm table` on a raw log against the strongest open peer, openretailscience, in one run.

    python benchmarks/peer.py FILE.parquet [--repeat 3] [--peer-version 0.48.1]

openretailscience (ibis on DuckDB) is installed into a scratch virtualenv under bench-data/, never
into the project's. Both sides run as child processes on the same file, so wall time and peak memory
(max RSS from wait4) are measured alike, the runs alternated (ours, the peer, ours, ...) and the best of
`--repeat` runs of each side kept:
- ours: `rfm table --data FILE --out T.csv` with every cleaning rule (missing ids, non-positive
  prices, cancellations and returns, exact duplicate lines);
- the peer: its documented RFMSegmentation on the same lines with a customer id and a positive price
  (what its users filter first), no de-duplication, scores computed and the table written.
The tables are not expected to agree (the peer neither de-duplicates nor pairs returns); their
customer counts are printed. Target (issue 14): ours no slower than the peer, peak memory under 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import figure  # noqa: E402

from benchmarks.rfm_table import run_child  # noqa: E402 - after the path is set

PEER = r'''
import sys
import ibis
from openretailscience.segmentation.rfm import RFMSegmentation

path, out = sys.argv[1], sys.argv[2]
con = ibis.duckdb.connect()
lines = con.read_parquet(path)
lines = lines.filter(lines.CustomerID.notnull(), lines.UnitPrice > 0)
lines = lines.select(customer_id=lines.CustomerID, transaction_id=lines.InvoiceNo,
                     transaction_date=lines.InvoiceDate, unit_spend=lines.Quantity * lines.UnitPrice)
snapshot = (lines.transaction_date.max().execute() + __import__("datetime").timedelta(days=1)).date()
table = RFMSegmentation(lines, current_date=snapshot).df
table.to_csv(out)
print(len(table))
'''


def peer_python(version: str) -> Path:
    """The scratch virtualenv's python with openretailscience==version (made on first use)."""
    venv = REPO / "bench-data" / f"peer-venv-{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing openretailscience=={version} into {venv.relative_to(REPO)} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"openretailscience=={version}"], check=True)
    return python


def count_rows(csv: Path) -> int:
    with csv.open() as handle:
        return sum(1 for _ in handle) - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a raw Parquet log in the Online Retail schema (e.g. from rfm demo-data)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (the best is kept)")
    parser.add_argument("--peer-version", default="0.48.1")
    args = parser.parse_args()
    python = peer_python(args.peer_version)
    with tempfile.TemporaryDirectory() as tmp:
        ours_csv, peer_csv = Path(tmp, "ours.csv"), Path(tmp, "peer.csv")
        ours_cmd = [sys.executable, "-m", "rfm", "table", "--data", args.file, "--out", str(ours_csv)]
        peer_cmd = [str(python), "-c", PEER, args.file, str(peer_csv)]
        # Alternated, so a machine that slows down for a while slows both sides alike.
        ours_runs: list[tuple[float, float]] = []
        peer_runs: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            ours_runs.append(run_child(ours_cmd, quiet=True))
            peer_runs.append(run_child(peer_cmd, quiet=True))
        ours, peer = min(ours_runs), min(peer_runs)
        customers = count_rows(ours_csv), count_rows(peer_csv)
    ratio = peer[0] / ours[0]
    print(f"log: {args.file}")
    print(f"  rfm table (every rule, de-duplicated) : {ours[0]:6.2f} s  peak {ours[1]:6.0f} MiB  "
          f"{customers[0]:,} customers")
    print(f"  openretailscience {args.peer_version:<8}(no dedup) : {peer[0]:6.2f} s  peak {peer[1]:6.0f} MiB  "
          f"{customers[1]:,} customers")
    print("  every run, alternated (s): ours " + ", ".join(f"{t:.2f}" for t, _ in ours_runs)
          + "; peer " + ", ".join(f"{t:.2f}" for t, _ in peer_runs))
    print(f"  ours vs peer: {ratio:.2f}x the speed ({'met' if ratio >= 1 else 'MISSED'}: target >= 1x); peak memory "
          f"{'met' if ours[1] < 1024 else 'MISSED'} (target < 1024 MiB)")
    figure("peer", "RFM table, raw log, every rule (whole process)", ours[0], "s", baseline=peer[0],
           baseline_name=f"openretailscience {args.peer_version} (no dedup)", target="no slower than baseline",
           met=ratio >= 1)
    figure("peer", "RFM table, raw log: peak memory", ours[1], "MiB", baseline=peer[1],
           baseline_name=f"openretailscience {args.peer_version} (no dedup)", target="< 1,024 MiB", met=ours[1] < 1024)
    print("RESULT " + json.dumps({"ours_s": round(ours[0], 3), "ours_mib": round(ours[1]), "peer_s": round(peer[0], 3),
                                  "peer_mib": round(peer[1]), "ratio": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
