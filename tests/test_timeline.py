"""Segments over time on small hand-written logs: the snapshot semantics, the CLI's answers and errors,
the SQL model assignment against the model's own, and the campaign list's role check and audit line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfm.data import timeline as sql
from rfm.data.table import RfmOptions, compute_rfm
from rfm.errors import DataError
from rfm.model import train_model
from rfm.service import access, timeline
from rfm.service.datasets import FileSource
from tests.helpers import line, write_log

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five customers whose histories cover the cases the timeline must get right."""
    rows = [
        # A: buys in January and March; invoice A2 spans two days (one order, counted once)
        line("A1", 2, "2011-01-10 10:00", 10.0, 1),
        line("A2", 1, "2011-03-05 10:00", 30.0, 1),
        line("A2", 1, "2011-03-06 09:00", 30.0, 1, stock="B2"),
        # B: buys in January, returns part in February
        line("B1", 5, "2011-01-20 10:00", 4.0, 2),
        line("CB1", -2, "2011-02-03 10:00", 4.0, 2),
        # C: first purchase in March (not yet a customer at 2011-03-01)
        line("N1", 3, "2011-03-02 10:00", 5.0, 3),
        line("N1", 3, "2011-03-02 10:00", 5.0, 3),  # exact duplicate: dropped by the cleaning rules
        # D: only a return, never a purchase: never a customer
        line("CD1", -1, "2011-02-10 10:00", 9.0, 4),
        # E: bought in February, and again at the very end
        line("E1", 1, "2011-02-15 10:00", 100.0, 5),
        line("E2", 1, "2011-03-31 10:00", 50.0, 5),
        # no customer: dropped
        line("X1", 1, "2011-02-01 10:00", 1.0, None),
    ]
    return write_log(tmp_path_factory.mktemp("tl") / "log.csv", rows)


@pytest.fixture
def opened(log: Path):  # type: ignore[no-untyped-def]
    with timeline.opened(FileSource((str(log),))) as t:
        yield t


def test_snapshot_state_uses_only_lines_before_the_snapshot(opened) -> None:  # type: ignore[no-untyped-def]
    at = opened.customers_at(date(2011, 3, 6), date(2011, 3, 6), timeline.Segments()).set_index("customer_id")
    assert sorted(at.index) == ["1", "2", "3", "5"]  # 4 only returned
    assert at.loc["1", "frequency"] == 2  # A2 has a purchase line before 2011-03-06
    assert at.loc["1", "monetary"] == 50.0  # 20 + the first A2 line only
    assert at.loc["1", "recency"] == 1
    assert at.loc["2", "monetary"] == 12.0  # net of the return
    assert at.loc["3", "monetary"] == 15.0  # the duplicate line is not counted
    later = opened.customers_at(date(2011, 4, 1), date(2011, 4, 1), timeline.Segments()).set_index("customer_id")
    assert later.loc["1", "frequency"] == 2  # the two-day invoice is still one order
    assert later.loc["1", "monetary"] == 80.0


def test_state_equals_the_rfm_table_at_each_snapshot(log: Path, opened) -> None:  # type: ignore[no-untyped-def]
    for snapshot in (date(2011, 2, 1), date(2011, 3, 6), date(2011, 4, 1)):
        for returns in ("net", "exclude"):
            expected = compute_rfm([log], options=RfmOptions(snapshot=snapshot, returns=returns)).table
            with timeline.opened(FileSource((str(log),)), returns) as t:
                ours = t.customers_at(snapshot, snapshot, timeline.Segments())
            assert list(ours["customer_id"]) == list(expected["customer_id"])
            for column in ("recency", "frequency", "monetary", "r_score", "f_score", "m_score"):
                assert list(ours[column]) == list(expected[column]), (snapshot, returns, column)
            assert list(ours["segment"]) == list(expected["rfm_segment"])


def test_migration_names_new_customers_and_counts_window_revenue(opened) -> None:  # type: ignore[no-untyped-def]
    result = opened.migration(date(2011, 3, 1), date(2011, 4, 1), timeline.Segments())
    assert result.customers == 4
    new = result.table[result.table["from_segment"] == timeline.NOT_YET]
    assert new["customers"].sum() == 1 and new["revenue"].sum() == 15.0  # C
    assert result.table["revenue"].sum() == 60.0 + 15.0 + 50.0  # A's A2, C, E's E2; B brought nothing
    assert list(result.table.columns) == list(timeline.MIGRATION_COLUMNS)


def test_validation_repeat_rate_and_revenue(opened) -> None:  # type: ignore[no-untyped-def]
    result = opened.validate(date(2011, 3, 1), 31, timeline.Segments())
    assert result.table["customers"].sum() == 3  # A, B, E (C is new, D never bought)
    assert result.table["repeat_customers"].sum() == 2  # A and E
    assert result.table["revenue"].sum() == 110.0
    with pytest.raises(DataError, match=r"runs past the data, which ends on 2011-03-31: use --horizon-days 31"):
        opened.validate(date(2011, 3, 1), 32, timeline.Segments())
    with pytest.raises(DataError, match="data starts on 2011-01-10"):
        opened.validate(date(2011, 1, 10), 10, timeline.Segments())


@pytest.mark.parametrize("returns", ["net", "exclude"])
def test_one_shot_jobs_deduplicate_only_their_window_and_answer_the_same(log: Path, returns: str) -> None:
    """`migration_of` and `validation_of` (the CLI's jobs) open the log with a revenue window: the same
    tables as a Timeline that de-duplicated every line (C's duplicate lies inside the window)."""
    source = FileSource((str(log),))
    grid = timeline.Segments()
    with timeline.opened(source, returns) as full:
        expected_moves = full.migration(date(2011, 3, 1), date(2011, 4, 1), grid)
        expected_check = full.validate(date(2011, 2, 1), 40, grid)
    moves = timeline.migration_of(source, date(2011, 3, 1), date(2011, 4, 1), grid, returns)
    assert moves.rows == expected_moves.rows
    assert sum(row[3] for row in moves.rows) == 60.0 + 15.0 + 50.0  # C's duplicated 15 once
    check = timeline.validation_of(source, date(2011, 2, 1), 40, grid, returns)
    pd.testing.assert_frame_equal(check.table, expected_check.table)
    assert check.table["revenue"].sum() == (60.0 - 8.0 if returns == "net" else 60.0)  # A's A2, B's return


def test_windowed_daily_relation_keeps_purchases_everywhere_and_revenue_in_the_window(log: Path) -> None:
    from rfm.data.sources import opened_source

    with opened_source([str(log)]) as (con, loaded):
        view = f'"{loaded.view}"'
        window = (date(2011, 3, 1), date(2011, 4, 1))
        full = con.execute(f"SELECT * FROM ({sql.invoice_days_sql(view)}) ORDER BY ALL").fetchall()
        windowed = con.execute(
            f"SELECT * FROM ({sql.invoice_days_sql(view, revenue_window=window)}) ORDER BY ALL").fetchall()
    assert [row[:4] for row in windowed] == [row[:4] for row in full]  # every invoice-day and purchase flag
    for (*_, day, _purchase, revenue), (*_, _, _, expected) in zip(windowed, full, strict=True):
        assert revenue == (expected if window[0] <= day < window[1] else 0.0)
    assert 15.0 in [row[4] for row in windowed]  # C's duplicated line once


def test_a_windowed_timeline_refuses_questions_that_read_other_revenue(log: Path, demo_parquet: Path) -> None:
    window = (date(2011, 3, 1), date(2011, 4, 1))
    grid = timeline.Segments()
    with timeline.opened(FileSource((str(log),)), revenue_window=window) as t:
        assert t.migration(*window, grid).customers == 4
        refused = [
            lambda: t.migration(date(2011, 2, 1), date(2011, 4, 1), grid),
            lambda: t.trend(grid),
            lambda: t.customers_at(date(2011, 3, 1), date(2011, 4, 1), grid),
            lambda: t.move_customers(*window, grid, timeline.NOT_YET, "new customers"),
            lambda: t.validate(date(2011, 3, 1), 10, grid),
        ]
        for question in refused:
            with pytest.raises(RuntimeError, match="knows revenue in"):
                question()
    model = train_model(compute_rfm([demo_parquet]).table, 3)
    with timeline.opened(FileSource((str(log),)), revenue_window=window) as t, \
            pytest.raises(RuntimeError, match="under the R x F grid"):
        t.migration(*window, timeline.segments_for("model", model))


def test_trend_snapshots_are_period_ends_inside_the_log(opened) -> None:  # type: ignore[no-untyped-def]
    result = opened.trend(timeline.Segments(), "month")
    assert result.snapshots == (date(2011, 2, 1), date(2011, 3, 1), date(2011, 4, 1))
    sizes = result.table.groupby("snapshot")["customers"].sum()
    assert list(sizes) == [2, 3, 4]
    revenue = result.table.groupby("snapshot")["revenue"].sum()
    assert list(revenue) == [40.0, 100.0 - 8.0, 60.0 + 15.0 + 50.0]
    quarters = opened.trend(timeline.Segments(), "quarter")  # the log ends on the last day of a quarter
    assert quarters.snapshots == (date(2011, 4, 1),)
    assert set(quarters.table["period_start"]) == {date(2011, 1, 1)}
    assert quarters.table["revenue"].sum() == 40.0 + 100.0 - 8.0 + 125.0


def test_period_ends() -> None:
    assert timeline.period_ends(date(2010, 12, 1), date(2011, 12, 9), "month") == [
        date(2011, m, 1) for m in range(1, 13)]
    assert timeline.period_ends(date(2010, 12, 1), date(2011, 12, 31), "quarter") == [
        date(2011, 1, 1), date(2011, 4, 1), date(2011, 7, 1), date(2011, 10, 1), date(2012, 1, 1)]
    assert timeline.period_start(date(2011, 1, 1), "quarter") == date(2010, 10, 1)
    with pytest.raises(DataError, match="--every 'week'"):
        timeline.period_ends(date(2011, 1, 1), date(2011, 2, 1), "week")


def test_sql_model_assignment_equals_the_models_own(demo_parquet: Path) -> None:
    """The K-Means assignment written in SQL picks exactly the cluster `SegmentModel.predict` picks."""
    result = compute_rfm([demo_parquet])
    model = train_model(result.table, 6)
    checked = 0
    for snapshot in (result.snapshot, date(2011, 6, 1), date(2011, 9, 15)):
        table = compute_rfm([demo_parquet], options=RfmOptions(snapshot=snapshot)).table
        with timeline.opened(FileSource((str(demo_parquet),))) as t:
            ours = t.customers_at(snapshot, snapshot, timeline.Segments(model))
        expected = model.assign(table)
        assert list(ours["customer_id"]) == list(expected["customer_id"])
        assert list(ours["segment"]) == list(expected["segment"])
        checked += len(ours)
    assert checked > 800


def test_only_known_segment_keys_reach_sql() -> None:
    with pytest.raises(ValueError, match="not a segment of the R x F grid"):
        sql.move_customers_sql("daily", date(2011, 1, 1), date(2011, 2, 1), None, "x' OR 1=1 --", "loyal")
    spec = sql.KMeansSpec((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), ((0.0, 0.0, 0.0),), (0.0,))
    with pytest.raises(ValueError, match="not a cluster id"):
        sql.move_customers_sql("daily", date(2011, 1, 1), date(2011, 2, 1), spec, None, 3)
    with pytest.raises(ValueError, match="finite floats"):
        sql.KMeansSpec((float("nan"), 0.0, 0.0), (1.0, 1.0, 1.0), ((0.0, 0.0, 0.0),), (0.0,))


def test_campaign_list_needs_the_export_right_and_is_recorded(opened, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    start, end, seg = date(2011, 3, 1), date(2011, 4, 1), timeline.Segments()
    move = opened.migration(start, end, seg).table.iloc[0]
    nobody = access.Principal("x@example.com", role=None)
    with pytest.raises(access.AccessDenied):
        timeline.move_export(nobody, opened, start, end, seg, move["from_segment"], move["to_segment"])
    marketer = access.Principal("m@example.com", role=access.Role.MARKETER)
    rows = timeline.move_export(marketer, opened, start, end, seg, move["from_segment"], move["to_segment"])
    assert len(rows) == move["customers"]
    assert timeline.move_csv(rows).decode().splitlines()[0] == ",".join(timeline.MOVE_COLUMNS)
    audit_log = tmp_path / "audit.jsonl"
    timeline.record_move_export(marketer, audit_log=str(audit_log), data="log.csv", segments=seg, start=start,
                                end=end, from_segment=move["from_segment"], to_segment=move["to_segment"],
                                rows=len(rows))
    record = json.loads(audit_log.read_text())
    assert record["who"] == "m@example.com" and record["what"] == "export_move" and record["rows"] == len(rows)
    assert record["move"]["from"] == move["from_segment"]
    with pytest.raises(DataError, match="only a starting point"):
        opened.move_customers(start, end, seg, "loyal", timeline.NOT_YET)


# --- the command line ------------------------------------------------------------------------------


def rfm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rfm", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_cli_writes_the_service_tables(log: Path, tmp_path: Path) -> None:
    done = rfm("migration", "--data", str(log), "--from", "2011-03-01", "--to", "2011-04-01")
    assert done.returncode == 0, done.stderr
    with timeline.opened(FileSource((str(log),))) as t:
        expected = t.migration(date(2011, 3, 1), date(2011, 4, 1), timeline.Segments()).table
        trend = t.trend(timeline.Segments(), "month").table
        validation = t.validate(date(2011, 3, 1), 31, timeline.Segments()).table
    written = pd.read_csv(__import__("io").StringIO(done.stdout))
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert "wrote" in done.stderr and "4 customers" in done.stderr
    assert done.stdout == expected.to_csv(index=False)  # byte for byte what pandas would write

    out = tmp_path / "trend.csv"
    done = rfm("trend", "--data", str(log), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert list(pd.read_csv(out).columns) == list(timeline.TREND_COLUMNS)
    assert len(pd.read_csv(out)) == len(trend)

    out = tmp_path / "validation.csv"
    done = rfm("validate", "--data", str(log), "--snapshot", "2011-03-01", "--horizon-days", "31", "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(out)
    assert list(written.columns) == list(timeline.VALIDATION_COLUMNS)
    assert list(written["customers"]) == list(validation["customers"])


@pytest.mark.parametrize(("args", "message"), [
    (("validate", "--snapshot", "2011-03-01", "--horizon-days", "60"), "runs past the data, which ends on 2011-03-31"),
    (("migration", "--from", "2011-04-01", "--to", "2011-03-01"), "--from 2011-04-01 must be before --to 2011-03-01"),
    (("migration", "--from", "2011-03-01", "--to", "2011-06-01"), "--to 2011-06-01 is after the data"),
    (("validate", "--snapshot", "2011-03-01", "--horizon-days", "5", "--k-min", "2", "--k-max", "4"),
     "use them with --by model"),
    (("validate", "--snapshot", "2011-03-01", "--horizon-days", "5", "--k-min", "2"), "give both --k-min and --k-max"),
    (("trend", "--model", "v1"), "--model is used with --by model"),
])
def test_cli_bad_input_is_one_line_and_exit_2(log: Path, args: tuple[str, ...], message: str) -> None:
    done = rfm(*args[:1], "--data", str(log), *args[1:])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert done.stderr.startswith(f"rfm {args[0]}: error: ") and message in done.stderr


def test_cli_migration_writes_its_csv_without_loading_pandas(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "moves.csv"
    code = ("import sys\nfrom rfm.cli import main\n"
            f"code = main(['migration', '--data', {str(log)!r}, '--from', '2011-03-01', '--to', '2011-04-01', "
            f"'--out', {str(out)!r}])\n"
            "print('pandas' in sys.modules)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert list(pd.read_csv(out).columns) == list(timeline.MIGRATION_COLUMNS)


def test_cli_log_shorter_than_a_period(tmp_path: Path) -> None:
    short = write_log(tmp_path / "short.csv", [line("A1", 1, "2011-01-10 10:00", 2.0, 1),
                                               line("A2", 1, "2011-01-20 10:00", 2.0, 2)])
    done = rfm("trend", "--data", str(short))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "(2011-01-10 to 2011-01-20) holds no whole month end" in done.stderr


def test_cli_missing_data_and_model(tmp_path: Path, log: Path) -> None:
    done = rfm("trend", "--data", str(tmp_path / "nope.csv"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no such file" in done.stderr
    done = rfm("trend", "--data", str(log), "--by", "model", "--models-dir", str(tmp_path / "empty"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


# --- the dashboard's pure helpers ------------------------------------------------------------------


def test_dashboard_reads_the_sidebar_source_and_builds_the_moves_table(log: Path) -> None:
    from rfm.config import load_settings
    from rfm.dashboard import timeline_views as views

    key = ("files", (str(log),), (("customer_id", "CustomerID"),), "abc", "auto", "net")
    source = views.source_of(key, load_settings())
    assert isinstance(source, FileSource) and source.paths == (str(log),)
    assert dict(source.read.mapping or {}) == {"customer_id": "CustomerID"}
    with pytest.raises(DataError, match="unknown source"):
        views.source_of(("elsewhere",), load_settings())

    moves = pd.DataFrame({"from_segment": [timeline.NOT_YET, "loyal", "loyal", "champions"],
                          "to_segment": ["loyal", "loyal", "at risk", "champions"],
                          "customers": [5, 6, 2, 3], "revenue": [50.0, 60.0, 0.0, 30.0]})
    shortlist = views.biggest_moves(moves)
    assert list(zip(shortlist["from_segment"], shortlist["to_segment"], strict=True)) == [
        (timeline.NOT_YET, "loyal"), ("loyal", "at risk")]  # stays are not moves
    assert shortlist["share_of_from"].tolist() == [1.0, 0.25]
    assert views.stayed_share(moves) == pytest.approx(9 / 11)  # new customers are not counted
    assert views.move_file_name("can't lose", "at risk", date(2011, 1, 1), date(2011, 4, 1)) == (
        "rfm-move-can-t-lose-to-at-risk-2011-01-01-2011-04-01.csv")
    from rfm.dashboard import format as fmt  # the page's figures go through the app's one format

    assert fmt.percent(0.1305) == "13.1%" and fmt.count(12345) == "12,345"


@st.composite
def _small_logs(draw: st.DrawFn) -> list[list[object]]:
    """Random logs over three months: a few customers, purchases and returns (C invoices), every line
    possibly repeated exactly (the duplicates the cleaning drops), inside or outside any window."""
    rows: list[list[object]] = []
    for index in range(draw(st.integers(3, 30))):
        day = date(2011, 1, 1) + timedelta(days=draw(st.integers(0, 89)))
        returned = draw(st.booleans()) and index > 0
        quantity = -draw(st.integers(1, 3)) if returned else draw(st.integers(1, 5))
        row = line(f"{'C' if returned else ''}{draw(st.integers(1, 12))}", quantity, f"{day} 10:00",
                   draw(st.sampled_from([1.5, 2.0, 9.99])), draw(st.integers(1, 4)),
                   stock=draw(st.sampled_from(["A1", "B2"])))
        rows += [row] * draw(st.integers(1, 3))
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=_small_logs(), start=st.integers(10, 60), length=st.integers(1, 29),
       returns=st.sampled_from(["net", "exclude"]))
def test_one_shot_jobs_equal_the_full_timeline_on_any_log(tmp_path_factory: pytest.TempPathFactory,
                                                          rows: list[list[object]], start: int, length: int,
                                                          returns: str) -> None:
    source = FileSource((str(write_log(tmp_path_factory.mktemp("p") / "log.csv", rows)),))
    first, grid = date(2011, 1, 1) + timedelta(days=start), timeline.Segments()
    end = first + timedelta(days=length)

    def answer(job):  # type: ignore[no-untyped-def]
        try:
            return job()
        except DataError as exc:  # the same refusal both ways (no customer yet, past the data, ...)
            return str(exc)

    with timeline.opened(source, returns) as full:
        moves = answer(lambda: full.migration(first, end, grid))
        check = answer(lambda: full.validate(first, length, grid))
    once = answer(lambda: timeline.migration_of(source, first, end, grid, returns))
    assert (once.rows if isinstance(once, timeline.Migration) else once) == (
        moves.rows if isinstance(moves, timeline.Migration) else moves)
    once_check = answer(lambda: timeline.validation_of(source, first, length, grid, returns))
    if isinstance(check, timeline.Validation):
        assert isinstance(once_check, timeline.Validation)
        pd.testing.assert_frame_equal(once_check.table, check.table)
    else:
        assert once_check == check
