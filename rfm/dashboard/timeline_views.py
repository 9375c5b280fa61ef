"""What the "Over time" page shows and reads back: the sidebar's source as a timeline source, cached
calls into rfm.service.timeline, the page's cached chart specs, the biggest-moves table and the campaign
list's file name; and `warm`, the page's first view computed before its first visitor (the launcher).

Why here and not in the page: pages/ only lays out widgets. The cached loaders return plain DataFrames
(pickled by `st.cache_data`), keyed on the sidebar's data key (source, snapshot, returns), the active
model's key and the page's own choices, so switching pages or moving a slider elsewhere recomputes
nothing. The log itself is read once per data key and returns policy (`_timeline`, a shared open
`Timeline`: one pass over the lines for every view and any number of snapshots).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from rfm.config import Settings, load_settings
from rfm.dashboard import timeline_charts as charts
from rfm.dashboard.charts import GRID_COLORS
from rfm.dashboard.state import chart_spec
from rfm.data.sources import SourceOptions
from rfm.errors import DataError
from rfm.service import timeline
from rfm.service.datasets import AthenaSource, FileSource, Source

if TYPE_CHECKING:
    from rfm.dashboard.state import Context
    from rfm.model import SegmentModel

CacheKey = tuple[Hashable, ...]
MOVES_SHOWN = 12
BY_LABELS: dict[str, str] = {"rfm": "R×F grid", "model": "Active model"}
# The page's first view (and what the launcher warms): segments every month, customers counted, the
# validation's snapshot and horizon this many days (the migration's first snapshot: timeline's default).
DEFAULT_EVERY = "month"
DEFAULT_MEASURE = "customers"
DEFAULT_CHECK_LOOKBACK_DAYS = 90
DEFAULT_HORIZON_DAYS = 90


def source_of(data_key: CacheKey, settings: Settings) -> Source:
    """The source behind the sidebar's data key: ("files", paths, mapping, source key, snapshot, returns)
    or ("athena", settings pairs, snapshot, returns), as rfm.dashboard.state builds it."""
    kind = data_key[0] if data_key else None
    if kind == "files":
        paths, mapping = data_key[1], data_key[2]
        assert isinstance(paths, tuple) and isinstance(mapping, tuple)
        return FileSource(tuple(str(p) for p in paths), SourceOptions(mapping=dict(mapping) or None))
    if kind == "athena":
        from rfm.cloud.athena import athena_config

        chosen = data_key[1]
        assert isinstance(chosen, tuple)
        overrides = {f"athena_{name}": value for name, value in chosen}
        return AthenaSource(athena_config(load_settings(overrides) if overrides else settings))
    raise DataError("the data shown cannot be read again for the timeline (unknown source)")


def _segments(by: str, model: SegmentModel | None) -> timeline.Segments:
    return timeline.segments_for(by, model if by == "model" else None)


# --- the page's segmentation choice --------------------------------------------------------------------


@dataclass(frozen=True)
class TimeView:
    """The page's choice of segments (the active model or the R x F grid) on the sidebar's data: what
    every view and chart of the page is computed, keyed and coloured by."""

    by: str
    model: SegmentModel | None
    segments: timeline.Segments
    colors: Mapping[str, str]
    common: tuple[CacheKey, CacheKey, str]  # (data key, model key or (), by): every cache key starts so
    returns: str
    memory_limit: str | None
    currency: str

    @property
    def order(self) -> list[str]:
        return list(self.segments.order())


def by_choices(ctx: Context) -> list[str]:
    """The page's segment choices, the first the default: the active model (when there is one), the grid."""
    return ["model", "rfm"] if ctx.model is not None else ["rfm"]


def time_view(ctx: Context, by: str) -> TimeView:
    model = ctx.model if by == "model" else None
    return TimeView(by=by, model=model, segments=timeline.segments_for(by, model),
                    colors=ctx.colors if by == "model" else GRID_COLORS,
                    common=(ctx.data_key, ctx.model_key if by == "model" else (), by),
                    returns=ctx.dataset.returns.value, memory_limit=ctx.settings.duckdb_memory_limit,
                    currency=ctx.currency)


# --- chart specs, cached on everything they show ----------------------------------------------------


def sankey_spec(view: TimeView, start: date, end: date, moves: pd.DataFrame) -> dict[str, object]:
    return chart_spec("time_sankey", (*view.common, start, end, view.returns, view.currency),
                      lambda: charts.sankey(moves, view.order, view.colors, start=start, end=end,
                                            not_yet=timeline.NOT_YET, currency=view.currency))


def trend_spec(view: TimeView, every: str, measure: str, sizes: pd.DataFrame) -> dict[str, object]:
    return chart_spec("time_trend", (*view.common, every, measure, view.returns, view.currency),
                      lambda: charts.sizes_over_time(sizes, view.order, view.colors, measure, currency=view.currency))


def validation_specs(view: TimeView, checked: date, horizon_days: int,
                     checks: pd.DataFrame) -> tuple[dict[str, object], dict[str, object]]:
    """The repeat-rate chart and the revenue-per-customer chart of one validation."""
    key = (*view.common, checked, horizon_days, view.returns, view.currency)
    return (chart_spec("time_repeat", key,
                       lambda: charts.repeat_rate_chart(checks, view.colors, horizon_days=horizon_days)),
            chart_spec("time_revenue_per_customer", key,
                       lambda: charts.revenue_per_customer_chart(checks, view.colors, horizon_days=horizon_days,
                                                                 currency=view.currency)))


def warm(ctx: Context) -> None:
    """Before the first visitor (rfm.dashboard.state.warm_caches): the page's first view, its default
    choices, computed and drawn into the same caches the page reads, so its first visit only draws.
    Errors are the caller's (the page says them in its own words)."""
    view = time_view(ctx, by_choices(ctx)[0])
    source = source_of(ctx.data_key, ctx.settings)
    snapshot = ctx.dataset.snapshot
    returns, memory, model = view.returns, view.memory_limit, view.model
    start = snapshot - timedelta(days=timeline.DEFAULT_LOOKBACK_DAYS)
    moves = migration(*view.common, start, snapshot, returns, memory, source, model)
    if not moves.empty:
        sankey_spec(view, start, snapshot, moves)
        shortlist = biggest_moves(moves)
        if not shortlist.empty:  # the campaign list the page offers first
            first = shortlist.iloc[0]
            move_customers(*view.common, start, snapshot, str(first["from_segment"]), str(first["to_segment"]),
                           returns, memory, source, model)
    sizes = trend(*view.common, DEFAULT_EVERY, returns, memory, source, model)
    trend_spec(view, DEFAULT_EVERY, DEFAULT_MEASURE, sizes)
    checked = snapshot - timedelta(days=DEFAULT_CHECK_LOOKBACK_DAYS)
    checks = validation(*view.common, checked, DEFAULT_HORIZON_DAYS, returns, memory, source, model)
    validation_specs(view, checked, DEFAULT_HORIZON_DAYS, checks)


# --- cached loaders: plain DataFrames, keyed on everything they show ----------------------------------


@st.cache_resource(show_spinner="Reading the log for the timeline…", max_entries=4)
def _timeline(data_key: CacheKey, returns: str, memory_limit: str | None, _source: Source) -> timeline.Timeline:
    """One open Timeline per log and returns policy, shared by the page's views and sessions: the log is
    read and reduced to its per-day table once, not once per view (`Timeline.query` takes a lock). An
    evicted one closes its connection when it is garbage-collected."""
    log = timeline.Timeline(_source, returns, memory_limit=memory_limit)
    return log.__enter__()


@st.cache_data(show_spinner="Comparing the two snapshots…", max_entries=16)
def migration(data_key: CacheKey, model_key: CacheKey, by: str, start: date, end: date, returns: str,
              memory_limit: str | None, _source: Source, _model: SegmentModel | None) -> pd.DataFrame:
    log = _timeline(data_key, returns, memory_limit, _source)
    return log.migration(start, end, _segments(by, _model)).table


@st.cache_data(show_spinner="Computing segment sizes at every period end…", max_entries=16)
def trend(data_key: CacheKey, model_key: CacheKey, by: str, every: str, returns: str, memory_limit: str | None,
          _source: Source, _model: SegmentModel | None) -> pd.DataFrame:
    return _timeline(data_key, returns, memory_limit, _source).trend(_segments(by, _model), every).table


@st.cache_data(show_spinner="Checking what each segment did next…", max_entries=16)
def validation(data_key: CacheKey, model_key: CacheKey, by: str, snapshot: date, horizon_days: int, returns: str,
               memory_limit: str | None, _source: Source, _model: SegmentModel | None) -> pd.DataFrame:
    log = _timeline(data_key, returns, memory_limit, _source)
    return log.validate(snapshot, horizon_days, _segments(by, _model)).table


@st.cache_data(show_spinner="Listing the customers of the move…", max_entries=32)
def move_customers(data_key: CacheKey, model_key: CacheKey, by: str, start: date, end: date, from_segment: str,
                   to_segment: str, returns: str, memory_limit: str | None, _source: Source,
                   _model: SegmentModel | None) -> pd.DataFrame:
    """Only after `timeline.require_export` (checked on every run, never cached)."""
    log = _timeline(data_key, returns, memory_limit, _source)
    return log.move_customers(start, end, _segments(by, _model), from_segment, to_segment)


# --- tables -------------------------------------------------------------------------------------------


def biggest_moves(moves: pd.DataFrame, limit: int = MOVES_SHOWN) -> pd.DataFrame:
    """Customers who changed segment (or arrived), biggest groups first, with the share of their starting
    segment that made the move: a marketer's shortlist of who to talk to."""
    starting = moves.groupby("from_segment")["customers"].transform("sum")
    table = moves.assign(share_of_from=moves["customers"] / starting)
    table = table[table["from_segment"] != table["to_segment"]]
    return table.head(limit).reset_index(drop=True)[
        ["from_segment", "to_segment", "customers", "share_of_from", "revenue"]]


def stayed_share(moves: pd.DataFrame) -> float:
    """Share of the customers at the first snapshot who are in the same segment at the second."""
    known = moves[moves["from_segment"] != timeline.NOT_YET]
    total = int(known["customers"].sum())
    same = int(known.loc[known["from_segment"] == known["to_segment"], "customers"].sum())
    return same / total if total else 0.0


def move_file_name(from_segment: str, to_segment: str, start: date, end: date) -> str:
    """rfm-move-<from>-to-<to>-<start>-<end>.csv, names reduced to letters, digits and dashes."""
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "segment"

    return f"rfm-move-{slug(from_segment)}-to-{slug(to_segment)}-{start.isoformat()}-{end.isoformat()}.csv"


def moves_column_config() -> dict[str, Any]:
    """Headers and formats of the biggest-moves table: thousands separators, one-decimal percentages;
    revenue without a format, as its text is fmt.money's (rfm.dashboard.tables.styled)."""
    return {
        "from_segment": st.column_config.TextColumn("From"),
        "to_segment": st.column_config.TextColumn("To"),
        "customers": st.column_config.NumberColumn("Customers", format="%,d"),
        "share_of_from": st.column_config.NumberColumn("Share of From", format="%.1f%%",
                                                       help="Of the customers in From at the first snapshot"),
        "revenue": st.column_config.NumberColumn("Revenue between",
                                                 help="What these customers brought between the two snapshots"),
    }


def validation_column_config() -> dict[str, Any]:
    """Headers and formats of the validation table; money without a format (fmt.money's text)."""
    return {
        "segment": st.column_config.TextColumn("Segment"),
        "customers": st.column_config.NumberColumn("Customers", format="%,d"),
        "repeat_customers": st.column_config.NumberColumn("Bought again", format="%,d"),
        "repeat_rate": st.column_config.NumberColumn("Repeat rate", format="%.1f%%"),
        "revenue": st.column_config.NumberColumn("Revenue"),
        "revenue_per_customer": st.column_config.NumberColumn("Revenue per customer"),
    }


def as_percent(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Shares (0.131) as percentages (13.1) for a "%.1f%%" column."""
    out = frame.copy()
    for column in columns:
        out[column] = out[column] * 100
    return out
