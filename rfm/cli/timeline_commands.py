"""`rfm migration`, `rfm trend`, `rfm validate`: segments over time.

Each command parses its flags, opens the log through rfm.service.timeline and writes the answer as CSV
(standard output by default); a summary line goes to standard error. Bad input is one error line and
exit code 2 (rfm.cli.main).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rfm.cli.common import (
    SOURCES,
    add_athena_args,
    add_models_dir,
    add_read_args,
    dataset_request,
    model_store,
    parse_date,
    settings_from_args,
)
from rfm.data.query import RETURNS_POLICIES, ReturnsPolicy
from rfm.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from rfm.config import Settings
    from rfm.service.datasets import Source
    from rfm.service.timeline import Segments, Timeline, Validation


def _add_log_args(parser: argparse.ArgumentParser) -> None:
    """The log and how it is read (the RFM commands' flags, without --snapshot: each command has its dates)."""
    parser.add_argument("--source", choices=SOURCES, default="duckdb",
                        help="duckdb: read --data with the embedded engine (default); athena: run the queries "
                        "in Athena over the table written by `rfm ingest --to s3://...`")
    parser.add_argument("--data", nargs="+", metavar="FILE",
                        help="transaction log: CSV (.csv, .csv.gz), Excel (.xlsx) or Parquet (file, glob or "
                        "folder); required with --source duckdb")
    add_read_args(parser)
    parser.add_argument("--returns", choices=RETURNS_POLICIES, default=ReturnsPolicy.NET.value,
                        help="net: subtract returns from monetary and revenue (default); exclude: ignore them")
    parser.add_argument("--by", choices=("rfm", "model"), default="rfm",
                        help="rfm: the R x F grid segments of the RFM table (default); model: one K-Means model "
                        "applied at every snapshot")
    parser.add_argument("--model", metavar="VERSION", help="with --by model: the version (default: the current one)")
    add_models_dir(parser)
    add_athena_args(parser.add_argument_group("Athena source (with --source athena)"))
    parser.set_defaults(snapshot=None)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "migration", help="customers and revenue per (segment at --from, segment at --to)",
        description="One row per (from_segment, to_segment): the customers who were in from_segment at the "
        "snapshot --from and are in to_segment at --to, and the revenue they brought between the two. "
        "Customers with no purchase before --from start as 'not yet a customer'.")
    _add_log_args(p)
    p.add_argument("--from", dest="start", type=parse_date, required=True, metavar="YYYY-MM-DD",
                   help="first snapshot (lines before this date)")
    p.add_argument("--to", dest="end", type=parse_date, required=True, metavar="YYYY-MM-DD",
                   help="second snapshot (lines before this date; at most the day after the log ends)")
    p.add_argument("--out", default="-", metavar="FILE.csv", help="CSV file to write, - for standard output")
    p.set_defaults(func=cmd_migration)

    p = subparsers.add_parser(
        "trend", help="segment sizes and revenue at each month or quarter end",
        description="For each period end inside the log (the 1st of a month or quarter, up to the day after "
        "the last line): customers per segment, their share, the revenue they brought in the period and their "
        "summed monetary. Every snapshot is computed in one pass over the log.")
    _add_log_args(p)
    p.add_argument("--every", choices=("month", "quarter"), default="month", help="period (default: month)")
    p.add_argument("--out", default="-", metavar="FILE.csv", help="CSV file to write, - for standard output")
    p.set_defaults(func=cmd_trend)

    p = subparsers.add_parser(
        "validate", help="do the segments predict who buys next? repeat rate and revenue per segment",
        description="Per segment at --snapshot: customers, repeat_rate (share who bought in [snapshot, "
        "snapshot + horizon)), their revenue in that window and revenue per customer. With --by model and "
        "--k-min/--k-max, also how much of the next-period revenue (and of buying again) k segments explain, "
        "for each k (K-Means trained on the table at the snapshot, seed 42).")
    _add_log_args(p)
    p.add_argument("--snapshot", type=parse_date, required=True, metavar="YYYY-MM-DD",
                   help="the segments are those of the RFM table at this date")
    p.add_argument("--horizon-days", type=int, required=True, metavar="N",
                   help="length of the next period; it must end inside the data")
    p.add_argument("--k-min", type=int, help="with --by model: smallest k to compare")
    p.add_argument("--k-max", type=int, help="with --by model: largest k to compare")
    p.add_argument("--k-out", metavar="FILE.csv", help="also write the per-k comparison as CSV")
    p.add_argument("--out", default="-", metavar="FILE.csv", help="CSV file to write, - for standard output")
    p.set_defaults(func=cmd_validate)


def _segments(args: argparse.Namespace, settings: Settings) -> Segments:
    from rfm.service import timeline

    if args.by == "model":  # rfm.service.models (numpy, pandas, the model code) only when a model is used
        from rfm.service import models

        return timeline.segments_for("model", models.load(model_store(settings), args.model))
    if args.model:
        raise DataError("--model is used with --by model")
    return timeline.segments_for("rfm", None)


def _log_of(args: argparse.Namespace) -> tuple[Source, Segments, str | None]:
    """The log the flags name, the segments `--by` asks for, and DuckDB's memory limit."""
    settings = settings_from_args(args)
    return dataset_request(args, settings).source, _segments(args, settings), settings.duckdb_memory_limit


@contextmanager
def _opened_log(args: argparse.Namespace) -> Iterator[tuple[Timeline, Segments]]:
    """The log the flags name, opened for the timeline jobs, and the segments `--by` asks for."""
    from rfm.service import timeline

    source, segments, memory_limit = _log_of(args)
    with timeline.opened(source, args.returns, memory_limit=memory_limit) as log:
        yield log, segments


def _write(frame: pd.DataFrame, out: str) -> str:
    """Write the CSV to `out` (- is standard output); returns " to OUT" for the summary line, or ""."""
    from rfm.service.datasets import write_csv

    write_csv(frame, out)
    return _where(out)


def _where(out: str) -> str:
    """The summary line's " to OUT", or "" for standard output."""
    return "" if out == "-" else f" to {out}"


def cmd_migration(args: argparse.Namespace) -> int:
    from rfm.service import timeline
    from rfm.service.datasets import write_rows_csv

    source, segments, memory_limit = _log_of(args)  # one-shot: the grid de-duplicates only the window's lines
    result = timeline.migration_of(source, args.start, args.end, segments, args.returns, memory_limit=memory_limit)
    write_rows_csv(timeline.MIGRATION_COLUMNS, result.rows, args.out)  # no pandas: the rows as they are
    where = _where(args.out)
    print(f"wrote {len(result.rows):,} moves of {result.customers:,} customers ({segments.describe()}, "
          f"{args.start} -> {args.end}){where}", file=sys.stderr)
    return 0


def cmd_trend(args: argparse.Namespace) -> int:
    with _opened_log(args) as (log, segments):
        result = log.trend(segments, args.every)
    where = _write(result.table, args.out)
    print(f"wrote {len(result.snapshots)} {args.every}-end snapshots ({result.snapshots[0]} to "
          f"{result.snapshots[-1]}, {segments.describe()}){where}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from rfm.service import timeline

    k_range: tuple[int, int] | None = None
    if (args.k_min is None) != (args.k_max is None):
        raise DataError("give both --k-min and --k-max (or neither)")
    if args.k_min is not None:
        if args.by != "model":
            raise DataError("--k-min/--k-max compare K-Means segmentations: use them with --by model")
        k_range = (args.k_min, args.k_max)
    elif args.k_out:
        raise DataError("--k-out needs --k-min and --k-max")
    source, segments, memory_limit = _log_of(args)
    result = timeline.validation_of(source, args.snapshot, args.horizon_days, segments, args.returns,
                                    k_range=k_range, memory_limit=memory_limit)
    where = _write(result.table[list(timeline.VALIDATION_COLUMNS)], args.out)
    print(f"wrote {len(result.table)} segments ({segments.describe()}, snapshot {result.snapshot}, next "
          f"{result.horizon_days} days to {result.end}){where}", file=sys.stderr)
    if result.explained is not None:
        print(format_explained(result), file=sys.stderr)
        if args.k_out:
            _write(result.explained, args.k_out)
    return 0


def format_explained(result: Validation) -> str:
    """The per-k comparison as aligned text: silhouette beside what the segments explain of behaviour."""
    assert result.explained is not None
    lines = [f"next-period behaviour explained by the segments (eta squared, {result.horizon_days} days after "
             f"{result.snapshot}):",
             f"{'k':>4} {'silhouette':>10} {'revenue':>9} {'repeat':>8}"]
    for row in result.explained.itertuples(index=False):
        lines.append(f"{row.k:>4} {row.silhouette:>10.3f} {row.revenue_explained:>9.1%} {row.repeat_explained:>8.1%}")
    if result.reference:
        lines.append(f"{result.segments.describe()}: revenue {result.reference['revenue_explained']:.1%}, "
                     f"repeat {result.reference['repeat_explained']:.1%}")
    return "\n".join(lines)
