"""Segments over time, for every face: who moved between segments, how segments grow or shrink, and
whether a segmentation predicts who buys next.

Every computation is one SQL statement of rfm.data.timeline, run by the embedded DuckDB or sent to
Athena (rendered by rfm.cloud.dialects, dates bound as parameters); only per-segment rows come back
(and, for a campaign list, the customers of one move). Files are read once per `Timeline`: the log
is cleaned (rfm.data.query's rules) and aggregated per customer and day into a temporary table that
every question then reads, so the dashboard's four views cost one pass over the lines.

Segments are the R x F grid of the RFM table (`by="rfm"`) or one saved K-Means model applied at every
snapshot (`by="model"`); a model's cluster ids come back from SQL and are named here.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rfm.data import timeline as sql
from rfm.data.engine import quote_identifier
from rfm.data.query import ReturnsPolicy
from rfm.errors import DataError, ModelError
from rfm.service.datasets import AthenaSource, FileSource, Source

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from rfm.model import SegmentModel
    from rfm.service.access import Principal

NOT_YET = "not yet a customer"
BY_CHOICES: tuple[str, ...] = ("rfm", "model")
PERIODS: tuple[str, ...] = ("month", "quarter")
DEFAULT_LOOKBACK_DAYS = 90  # the dashboard's first snapshot: this many days before the second
# The R x F grid's segments from most to least valuable (the order tables and charts list them in).
GRID_ORDER: tuple[str, ...] = ("champions", "loyal", "potential loyalists", "new customers", "promising",
                               "need attention", "about to sleep", "at risk", "can't lose", "hibernating")
MIGRATION_COLUMNS: tuple[str, ...] = ("from_segment", "to_segment", "customers", "revenue")
TREND_COLUMNS: tuple[str, ...] = ("snapshot", "period_start", "segment", "customers", "share", "revenue",
                                  "monetary")
VALIDATION_COLUMNS: tuple[str, ...] = ("segment", "customers", "repeat_rate", "revenue", "revenue_per_customer")
EXPLAINED_COLUMNS: tuple[str, ...] = ("k", "silhouette", "revenue_explained", "repeat_explained")
MOVE_COLUMNS: tuple[str, ...] = ("customer_id", "from_segment", "to_segment", "recency", "frequency",
                                 "monetary", "revenue", "from_snapshot", "to_snapshot")


# --- how customers are segmented -----------------------------------------------------------------


@dataclass(frozen=True)
class Segments:
    """The R x F grid (`model` None) or a K-Means model: turns SQL's segment keys into names."""

    model: SegmentModel | None = None

    @property
    def by(self) -> str:
        return "rfm" if self.model is None else "model"

    def describe(self) -> str:
        if self.model is None:
            return "R x F grid"
        return f"model {self.model.version or '(unsaved)'} (k={self.model.k})"

    def spec(self) -> sql.KMeansSpec | None:
        """The model's arrays for SQL (None: the grid)."""
        if self.model is None:
            return None
        p = self.model.predictor
        return sql.KMeansSpec(
            mean=_triple(p.mean), scale=_triple(p.scale),
            centers=tuple(_triple(row) for row in p.centers),
            center_sq=tuple(float(v) for v in (p.centers**2).sum(axis=1)),  # as Predictor computes it
        )

    def name(self, key: object) -> str:
        """The segment name of a key from SQL (a grid name, a cluster id; NULL: not yet a customer)."""
        if _missing(key):
            return NOT_YET
        if self.model is None:
            return str(key)
        return self.model.segment_name(int(key))  # type: ignore[call-overload]

    def key(self, name: str) -> str | int | None:
        """The SQL key of a segment name (NOT_YET: None)."""
        if name == NOT_YET:
            return None
        if self.model is None:
            if name not in GRID_ORDER:
                raise DataError(f"{name!r} is not a segment of the R x F grid")
            return name
        return self.model.cluster_id(name)

    def order(self) -> list[str]:
        """Segment names from most to least valuable."""
        if self.model is None:
            return list(GRID_ORDER)
        from rfm.model import NOT_SEGMENTED_NAME

        return [c.name for c in sorted(self.model.clusters, key=lambda c: c.id)] + [NOT_SEGMENTED_NAME]


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def segments_for(by: str, model: SegmentModel | None) -> Segments:
    """`by` ("rfm" or "model") with the model it needs; a one-line error for anything else."""
    if by not in BY_CHOICES:
        raise DataError(f"--by {by!r}: expected one of {', '.join(BY_CHOICES)}")
    if by == "rfm":
        return Segments()
    if model is None:
        raise ModelError("--by model needs a model: train and save one (rfm train), or use --by rfm")
    return Segments(model)


# --- results -------------------------------------------------------------------------------------


MigrationRow = tuple[str, str, int, float]  # from_segment, to_segment, customers, revenue


@dataclass(frozen=True)
class Migration:
    """Customers and revenue per (segment at `start`, segment at `end`); revenue in [start, end).

    Held as plain rows (biggest moves first), so `rfm migration` writes its CSV without loading pandas
    (0.3-0.5 s of a run); `table` is the same as a DataFrame, for the dashboard."""

    start: date
    end: date
    segments: Segments
    rows: tuple[MigrationRow, ...]

    @property
    def table(self) -> pd.DataFrame:
        """MIGRATION_COLUMNS, biggest moves first."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=list(MIGRATION_COLUMNS)).astype(
            {"customers": "int64", "revenue": "float64"})

    @property
    def customers(self) -> int:
        return sum(row[2] for row in self.rows)


@dataclass(frozen=True)
class Trend:
    """Segment sizes and revenue at each period-end snapshot."""

    every: str
    segments: Segments
    snapshots: tuple[date, ...]
    table: pd.DataFrame  # TREND_COLUMNS


@dataclass(frozen=True)
class Validation:
    """Per segment at `snapshot`: who bought again in [snapshot, end) and what they brought; with a k
    range, how much of that the segments of k = k_min..k_max explain."""

    snapshot: date
    end: date
    segments: Segments
    table: pd.DataFrame  # VALIDATION_COLUMNS + repeat_customers
    explained: pd.DataFrame | None = None  # EXPLAINED_COLUMNS, one row per k
    reference: dict[str, float] = field(default_factory=dict)  # the same measures for `segments`

    @property
    def horizon_days(self) -> int:
        return (self.end - self.snapshot).days


# --- the engine ----------------------------------------------------------------------------------


class Timeline:
    """The log of one source under one returns policy, ready for timeline questions.

    Use as a context manager (`opened`): files are cleaned and aggregated once into a temporary
    table on entry, and the connection is closed on exit. Athena runs each statement over its table.
    Statements run one at a time (a lock), so one open Timeline may serve several threads (the
    dashboard keeps one per log and returns policy).

    `revenue_window` (start, end) opens the log for one grid question whose revenue lies in [start, end)
    (`migration_of`, `validation_of`: the CLI's one-shot jobs): a raw log's lines are then de-duplicated
    in that window only (see `rfm.data.timeline.invoice_days_sql`), and any question that would read
    revenue elsewhere (monetary, a model's segments, a trend, a campaign list) is refused."""

    def __init__(self, source: Source, returns: ReturnsPolicy | str = ReturnsPolicy.NET, *,
                 memory_limit: str | None = None, revenue_window: tuple[date, date] | None = None) -> None:
        self.source = source
        self.returns = ReturnsPolicy(returns)
        self.memory_limit = memory_limit
        self.revenue_window = revenue_window
        self._con: duckdb.DuckDBPyConnection | None = None
        self._daily = ""
        self._range: tuple[date, date] | None = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()  # one DuckDB connection: one statement at a time

    # -- opening and running ------------------------------------------------------------------------
    def __enter__(self) -> Timeline:
        try:
            if isinstance(self.source, FileSource):
                self._open_files(self.source)
            else:
                from rfm.cloud.athena import athena_source_sql

                self._daily = sql.inline_daily(athena_source_sql(self.source.config), cleaned=True,
                                               returns=self.returns)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._con = None

    def _open_files(self, source: FileSource) -> None:
        from rfm.data.sources import opened_source

        con, loaded = self._stack.enter_context(
            opened_source(source.paths, source.read, memory_limit=self.memory_limit))
        view = quote_identifier(loaded.view)
        # Two steps: one pass over the lines, then the (small) per-day table every statement reads.
        con.execute("CREATE TEMP TABLE timeline_invoice_days AS "
                    + sql.invoice_days_sql(view, cleaned=loaded.cleaned, returns=self.returns,
                                           revenue_window=self.revenue_window))
        con.execute("CREATE TEMP TABLE timeline_daily AS " + sql.daily_sql("timeline_invoice_days"))
        self._con, self._daily = con, "timeline_daily"

    def statement(self, text: str) -> tuple[str, tuple[str, ...]]:
        """The statement as the engine gets it, and its parameters (Athena: dates bound)."""
        if isinstance(self.source, AthenaSource):
            from rfm.cloud.dialects import render_athena

            query = render_athena(text)
            return query.sql, query.parameters
        return text, ()

    def query(self, text: str) -> pd.DataFrame:
        """Run one statement of rfm.data.timeline over this log."""
        if self._con is not None:
            with self._lock:
                return self._con.execute(text).df()
        if not isinstance(self.source, AthenaSource):
            raise RuntimeError("a Timeline is used inside `with`")
        from rfm.cloud.athena import connect_athena, run_query
        from rfm.cloud.dialects import render_athena

        config = self.source.config
        connection = connect_athena(config)
        try:
            return run_query(connection, render_athena(text), config.timeout_seconds, unload=config.unload)
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def records(self, text: str) -> list[dict[str, Any]]:
        """`query` as plain rows (column name to value), without pandas for the embedded engine."""
        if self._con is not None:
            with self._lock:
                cursor = self._con.execute(text)
                names = [d[0] for d in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return self.query(text).to_dict("records")  # type: ignore[return-value]

    @property
    def daily(self) -> str:
        """The relation statements read: the temporary table, or Athena's inline aggregation."""
        if not self._daily:
            raise RuntimeError("a Timeline is used inside `with`")
        return self._daily

    def date_range(self) -> tuple[date, date]:
        """First and last day of the cleaned log (one small query, remembered)."""
        if self._range is None:
            if isinstance(self.source, AthenaSource):
                from rfm.cloud.athena import athena_source_sql

                text = ("SELECT min(CAST(invoice_date AS DATE)) AS first_day, "
                        f"max(CAST(invoice_date AS DATE)) AS last_day FROM {athena_source_sql(self.source.config)}")
            else:
                text = sql.date_range_sql(self.daily)
            row = self.records(text)[0]
            if _missing(row["first_day"]) or _missing(row["last_day"]):
                raise DataError(f"{self.source.describe()}: no purchase or return left after cleaning")
            self._range = (_as_date(row["first_day"]), _as_date(row["last_day"]))
        return self._range

    # -- the questions ------------------------------------------------------------------------------
    def migration(self, start: date, end: date, segments: Segments) -> Migration:
        """Who moved from which segment at `start` to which at `end`, and the revenue they brought between."""
        self._check_pair(start, end)
        self._check_revenue_read(segments, start, end)
        found = self.records(sql.migration_sql(self.daily, start, end, segments.spec()))
        rows = [(segments.name(r["from_key"]), segments.name(r["to_key"]), int(r["customers"]), _cents(r["revenue"]))
                for r in found]
        # Biggest moves first: customers, then revenue (a missing one last), then the names.
        rows.sort(key=lambda r: (-r[2], math.isnan(r[3]), -r[3] if not math.isnan(r[3]) else 0.0, r[0], r[1]))
        return Migration(start, end, segments, tuple(rows))

    def move_customers(self, start: date, end: date, segments: Segments, from_segment: str,
                       to_segment: str) -> pd.DataFrame:
        """The customers of one move, most revenue in the window first: a campaign list (MOVE_COLUMNS)."""
        self._check_pair(start, end)
        self._check_revenue_read(None, start, end)  # the list shows monetary
        if to_segment == NOT_YET:
            raise DataError(f"{NOT_YET!r} is only a starting point of a move")
        to_key = segments.key(to_segment)
        assert to_key is not None  # NOT_YET was refused above
        frame = self.query(sql.move_customers_sql(self.daily, start, end, segments.spec(),
                                                  segments.key(from_segment), to_key))
        frame["customer_id"] = frame["customer_id"].astype(str)
        frame["from_segment"] = from_segment
        frame["to_segment"] = to_segment
        frame["from_snapshot"] = start.isoformat()
        frame["to_snapshot"] = end.isoformat()
        for column in ("recency", "frequency"):
            frame[column] = frame[column].astype("int64")
        return frame[list(MOVE_COLUMNS)].reset_index(drop=True)

    def trend(self, segments: Segments, every: str = "month") -> Trend:
        """Segment sizes, revenue in the period and summed monetary at each period end inside the log,
        every snapshot in one statement (one pass over the per-day table)."""
        first, last = self.date_range()
        self._check_revenue_read(None, first, last)  # monetary and every period's revenue
        ends = period_ends(first, last, every)
        if not ends:
            raise DataError(f"{self.source.describe()}: the log ({first} to {last}) holds no whole {every} "
                            f"end; a trend needs at least one")
        windows = [sql.SnapshotWindow(end, start, end) for start, end in zip(
            [period_start(ends[0], every), *ends[:-1]], ends, strict=True)]
        frame = self.query(sql.trend_sql(self.daily, windows, segments.spec()))
        import pandas as pd

        frame["snapshot"] = [_as_date(v) for v in frame["snapshot_date"]]
        starts = {w.snapshot: w.window_start for w in windows}
        frame["period_start"] = frame["snapshot"].map(starts)
        frame["segment"] = [segments.name(k) for k in frame["segment_key"]]
        frame["customers"] = frame["customers"].astype("int64")
        totals = frame.groupby("snapshot")["customers"].transform("sum")
        frame["share"] = frame["customers"] / totals
        rank = {name: i for i, name in enumerate(segments.order())}
        frame["_rank"] = frame["segment"].map(rank)
        frame = frame.sort_values(["snapshot", "_rank"], kind="stable")
        table = pd.DataFrame({c: frame[c].to_numpy() for c in TREND_COLUMNS})
        return Trend(every, segments, tuple(ends), table)

    def validate(self, snapshot: date, horizon_days: int, segments: Segments, *,
                 k_range: tuple[int, int] | None = None, seed: int = 42) -> Validation:
        """Per segment at `snapshot`: customers, the share who bought in [snapshot, snapshot + horizon),
        their revenue there and per customer. With `k_range` (K-Means only), for each k the share of the
        variance of next-period revenue (and of buying again) that k segments explain."""
        first, last = self.date_range()
        if horizon_days < 1:
            raise DataError(f"--horizon-days must be at least 1, got {horizon_days}")
        end = snapshot + timedelta(days=horizon_days)
        if end > last + timedelta(days=1):
            room = (last + timedelta(days=1) - snapshot).days
            hint = f"use --horizon-days {room} or less" if room >= 1 else "choose an earlier snapshot"
            raise DataError(f"the horizon {snapshot} + {horizon_days} days runs past the data, which ends on "
                            f"{last}: {hint}")
        self._check_snapshot(snapshot, first)
        self._check_revenue_read(segments if k_range is None else None, snapshot, end)
        frame = self.query(sql.validation_sql(self.daily, snapshot, end, segments.spec()))
        import pandas as pd

        frame["segment"] = [segments.name(k) for k in frame["segment_key"]]
        rank = {name: i for i, name in enumerate(segments.order())}
        frame = frame.sort_values("segment", key=lambda s: s.map(rank), kind="stable")
        customers = frame["customers"].astype("int64").to_numpy()
        repeat = frame["repeat_customers"].astype("int64").to_numpy()
        revenue = frame["revenue"].astype("float64").round(2).to_numpy()
        table = pd.DataFrame({
            "segment": frame["segment"].to_numpy(), "customers": customers,
            "repeat_rate": repeat / customers, "revenue": revenue,
            "revenue_per_customer": (revenue / customers).round(2), "repeat_customers": repeat,
        })
        explained = None
        reference: dict[str, float] = {}
        if k_range is not None:
            if segments.model is None:
                raise DataError("a k range needs --by model (it compares K-Means segmentations)")
            explained, reference = self._explained(snapshot, end, segments, k_range, seed)
        return Validation(snapshot, end, segments, table.reset_index(drop=True), explained, reference)

    def customers_at(self, snapshot: date, end: date, segments: Segments) -> pd.DataFrame:
        """One row per customer at `snapshot`: RFM, scores, segment, and whether they bought (`bought`)
        and what they brought (`window_revenue`) in [snapshot, end)."""
        self._check_revenue_read(None, snapshot, end)  # the rows hold monetary
        window = sql.SnapshotWindow(snapshot, snapshot, end)
        frame = self.query(sql.customers_sql(self.daily, (window,), segments.spec()))
        frame["customer_id"] = frame["customer_id"].astype(str)
        frame["segment"] = [segments.name(k) for k in frame["segment_key"]]
        return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)

    def _explained(self, snapshot: date, end: date, segments: Segments, k_range: tuple[int, int],
                   seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
        """Train k = k_min..k_max on the RFM table at `snapshot` (the sweep: same fits, same seed) and
        measure each segmentation against what the customers did next."""
        import numpy as np
        import pandas as pd

        from rfm.model import NOT_SEGMENTED
        from rfm.model import sweep as run_sweep

        customers = self.customers_at(snapshot, end, segments)
        values = customers["window_revenue"].astype("float64").to_numpy()
        bought = customers["bought"].astype("float64").to_numpy()
        trained = customers["monetary"].to_numpy() > 0
        k_min, k_max = k_range
        result = run_sweep(customers[["customer_id", "recency", "frequency", "monetary"]], k_min, k_max, seed=seed)
        rows = []
        for metrics in result.metrics:
            labels = np.full(len(customers), NOT_SEGMENTED, dtype="int64")
            labels[trained] = result.labels[metrics.k]
            rows.append({"k": metrics.k, "silhouette": metrics.silhouette,
                         "revenue_explained": explained_share(labels, values),
                         "repeat_explained": explained_share(labels, bought)})
        own = customers["segment_key"].to_numpy()
        reference = {"revenue_explained": explained_share(own, values),
                     "repeat_explained": explained_share(own, bought)}
        return pd.DataFrame(rows, columns=list(EXPLAINED_COLUMNS)), reference

    # -- checks -----------------------------------------------------------------------------------
    def _check_pair(self, start: date, end: date) -> None:
        if not start < end:
            raise DataError(f"--from {start} must be before --to {end}")
        first, last = self.date_range()
        if end > last + timedelta(days=1):
            raise DataError(f"--to {end} is after the data, which ends on {last}: use {last + timedelta(days=1)} "
                            "or earlier")
        self._check_snapshot(end, first)

    def _check_snapshot(self, snapshot: date, first: date) -> None:
        if snapshot <= first:
            raise DataError(f"no customer has a purchase before {snapshot}: the data starts on {first}")

    def _check_revenue_read(self, segments: Segments | None, start: date, end: date) -> None:
        """Opened with a revenue window, only the grid's question about exactly that window is answered
        (`segments` None: the question reads monetary or revenue elsewhere). A programming error, not
        the user's: the service functions open the window they ask about."""
        if self.revenue_window is None:
            return
        if segments is None or segments.model is not None or (start, end) != self.revenue_window:
            raise RuntimeError(f"this Timeline knows revenue in {self.revenue_window} only, under the R x F grid; "
                               f"open it without a revenue window for this question")


@contextlib.contextmanager
def opened(source: Source, returns: ReturnsPolicy | str = ReturnsPolicy.NET, *,
           memory_limit: str | None = None, revenue_window: tuple[date, date] | None = None) -> Iterator[Timeline]:
    """A `Timeline` over `source` (files: read and aggregated once, closed on exit)."""
    with Timeline(source, returns, memory_limit=memory_limit, revenue_window=revenue_window) as timeline:
        yield timeline


def migration_of(source: Source, start: date, end: date, segments: Segments,
                 returns: ReturnsPolicy | str = ReturnsPolicy.NET, *, memory_limit: str | None = None) -> Migration:
    """One migration, the log opened for it alone (`rfm migration`). Under the R x F grid the segments
    rest on recency and frequency, so only the revenue of [start, end) is needed: the log is opened with
    that revenue window and a raw log's de-duplication covers those lines only."""
    window = (start, end) if segments.model is None and start < end else None
    with opened(source, returns, memory_limit=memory_limit, revenue_window=window) as log:
        return log.migration(start, end, segments)


def validation_of(source: Source, snapshot: date, horizon_days: int, segments: Segments,
                  returns: ReturnsPolicy | str = ReturnsPolicy.NET, *, k_range: tuple[int, int] | None = None,
                  seed: int = 42, memory_limit: str | None = None) -> Validation:
    """One validation, the log opened for it alone (`rfm validate`); as `migration_of`, the grid's
    question de-duplicates only the horizon's lines (a k range trains models on monetary: the whole log)."""
    window = None
    if segments.model is None and k_range is None and horizon_days >= 1:
        window = (snapshot, snapshot + timedelta(days=horizon_days))
    with opened(source, returns, memory_limit=memory_limit, revenue_window=window) as log:
        return log.validate(snapshot, horizon_days, segments, k_range=k_range, seed=seed)


# --- helpers -------------------------------------------------------------------------------------


def period_start(end: date, every: str) -> date:
    """The first day of the period that ends (exclusive) at the boundary `end`."""
    months = _months(every)
    index = end.year * 12 + end.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def period_ends(first: date, last: date, every: str) -> list[date]:
    """Period boundaries (1st of a month or quarter) after the first day and at most the day after the
    last: the snapshots whose period lies (at least partly) inside the log."""
    months = _months(every)
    step_from = (first.month - 1) // months * months  # the period holding the first day
    index = first.year * 12 + step_from + months
    ends: list[date] = []
    limit = last + timedelta(days=1)
    while True:
        boundary = date(index // 12, index % 12 + 1, 1)
        if boundary > limit:
            return ends
        ends.append(boundary)
        index += months


def _months(every: str) -> int:
    if every not in PERIODS:
        raise DataError(f"--every {every!r}: expected one of {', '.join(PERIODS)}")
    return 1 if every == "month" else 3


def explained_share(labels: Any, values: Any) -> float:
    """Share of the variance of `values` between the groups `labels` makes (eta squared: 1 - within / total);
    0 when the values do not vary."""
    import pandas as pd

    frame = pd.DataFrame({"g": pd.Series(list(labels)).astype(str), "v": pd.Series(list(values), dtype="float64")})
    total = float(((frame["v"] - frame["v"].mean()) ** 2).sum())
    if total == 0:
        return 0.0
    within = float(((frame["v"] - frame.groupby("g")["v"].transform("mean")) ** 2).sum())
    return 1.0 - within / total


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' missing values (pandas is imported only for values of its own types)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str | int | date):
        return False
    import pandas as pd

    return bool(pd.isna(value))


def _cents(value: Any) -> float:
    """A revenue rounded to the cent as pandas' `round(2)` does it (NaN for a missing one)."""
    if _missing(value):
        return math.nan
    return round(float(value) * 100) / 100


def _as_date(value: object) -> date:
    if type(value) is date:
        return value
    if isinstance(value, datetime):  # pandas' Timestamp too
        return date(value.year, value.month, value.day)
    import pandas as pd

    return pd.Timestamp(value).date()  # type: ignore[arg-type]


# --- the campaign list: a role-checked, recorded export -----------------------------------------


def require_export(principal: Principal) -> None:
    """Raise AccessDenied (one line) unless the principal may export customers: the campaign list is an
    export like the Export page's (checked on every request, before the list is built or served)."""
    from rfm.service import access

    access.require(principal, access.Action.EXPORT)


def move_export(principal: Principal, timeline: Timeline, start: date, end: date, segments: Segments,
                from_segment: str, to_segment: str) -> pd.DataFrame:
    """The customers of one move, for a principal allowed to export (marketers, analysts); not recorded
    (what the page previews and offers; `record_move_export` records the download)."""
    require_export(principal)
    return timeline.move_customers(start, end, segments, from_segment, to_segment)


def record_move_export(principal: Principal, *, audit_log: str, data: str, segments: Segments, start: date,
                       end: date, from_segment: str, to_segment: str, rows: int) -> dict[str, object]:
    """Record a campaign-list download in the audit log (who, data, segmentation, move, rows)."""
    from rfm.service import access

    access.require(principal, access.Action.EXPORT)
    return access.audit(audit_log, principal, "export_move", data=data, segmentation=segments.describe(),
                        version=segments.model.version if segments.model is not None else None,
                        move={"from": from_segment, "to": to_segment, "from_snapshot": start.isoformat(),
                              "to_snapshot": end.isoformat()}, rows=int(rows))


def move_csv(frame: pd.DataFrame) -> bytes:
    """A campaign list as CSV bytes (UTF-8, header, no index)."""
    return frame.to_csv(index=False).encode("utf-8")


__all__ = ["BY_CHOICES", "DEFAULT_LOOKBACK_DAYS", "EXPLAINED_COLUMNS", "GRID_ORDER", "MIGRATION_COLUMNS",
           "MOVE_COLUMNS", "NOT_YET", "PERIODS", "TREND_COLUMNS", "VALIDATION_COLUMNS", "Migration",
           "Segments", "Timeline", "Trend", "Validation", "explained_share", "move_csv", "move_export", "opened",
           "period_ends", "period_start", "record_move_export", "require_export", "segments_for"]
