"""Property-based tests (hypothesis) for the file readers, the cleaning rules, the server's decoders and the
segment-name check: whatever the input, a result or ONE clear line, never a crash (issue 12)."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfm.data.cleaning import cleaning_report
from rfm.data.engine import connect
from rfm.data.query import MAX_ABS_NUMBER
from rfm.data.sources import load_source
from rfm.errors import DataError, ModelError
from rfm.model.naming import check_name
from rfm.server import codecs

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
TODAY = datetime.utcnow().date()

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-5, max_value=50),
    st.sampled_from([0.0, -1.0, 1e9, 1e9 + 1, -1e9, 2e9, 1e12]),
)
days = st.one_of(st.integers(-400, 0), st.integers(1, 30_000))  # relative to today: past or future


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[str | None, float, float, datetime]]:
    size = draw(st.integers(1, 25))
    return [(draw(st.sampled_from([None, "1", "2", "3"])), draw(numbers), draw(numbers),
             datetime.combine(TODAY, datetime.min.time()) + timedelta(days=draw(days), hours=draw(st.integers(0, 23))))
            for _ in range(size)]


def reference_rule(customer: str | None, quantity: float, price: float, when: datetime) -> str | None:
    """The first row rule a line fails, in plain Python (None: it passes them all)."""
    amount = quantity * price
    if customer is None:
        return "no_customer"
    if not all(math.isfinite(v) and abs(v) <= MAX_ABS_NUMBER for v in (quantity, price, amount)):
        return "bad_number"
    if when.date() > TODAY:
        return "future_date"
    if not price > 0:
        return "bad_price"
    return None


@SETTINGS
@given(rows=logs())
def test_row_rules_match_a_plain_python_reference(tmp_path_factory: pytest.TempPathFactory,
                                                  rows: list[tuple[str | None, float, float, datetime]]) -> None:
    path = tmp_path_factory.mktemp("log") / "log.parquet"
    pq.write_table(pa.table({
        "InvoiceNo": pa.array([f"{i}" for i in range(len(rows))]),
        "StockCode": pa.array(["A"] * len(rows)),
        "Quantity": pa.array([r[1] for r in rows], pa.float64(), from_pandas=False),
        "UnitPrice": pa.array([r[2] for r in rows], pa.float64(), from_pandas=False),
        "InvoiceDate": pa.array([r[3] for r in rows], pa.timestamp("s")),
        "CustomerID": pa.array([r[0] for r in rows], pa.string()),
    }), path)
    con = connect()
    try:
        report = cleaning_report(con, load_source(con, [path]).view)
    finally:
        con.close()
    expected = [reference_rule(*row) for row in rows]
    for rule in ("no_customer", "bad_number", "future_date", "bad_price"):
        assert getattr(report, rule) == expected.count(rule), rule
    assert report.incomplete == 0 and report.rows_read == len(rows)
    assert math.isfinite(report.purchase_revenue) and math.isfinite(report.returned_revenue)
    assert abs(report.purchase_revenue) <= MAX_ABS_NUMBER * len(rows)


@SETTINGS
@given(data=st.binary(max_size=300), extension=st.sampled_from([".csv", ".parquet", ".xlsx", ".csv.gz", ".dat"]),
       prefix=st.sampled_from([b"", b"PAR1", b"PK\x03\x04", b"\x1f\x8b", b"CustomerID,InvoiceDate,Quantity\n"]))
def test_any_bytes_are_read_or_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                                   extension: str, prefix: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / f"log{extension}"
    path.write_bytes(prefix + data)
    con = connect()
    try:
        load_source(con, [path])
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message and len(message) < 600
    finally:
        con.close()


_CELL = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=0).map(repr),
    st.integers(0, 10**6).map(str),
    st.text(max_size=8),
    st.sampled_from(["1_000", "\u0661\u0662", "\uff11", "1e5", " 7 ", '"3"', '"4', "nan", "-1", "0x10", "1\u2028"]),
)
_STRICT = re.compile(r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t]*")


@SETTINGS
@given(rows=st.lists(st.lists(_CELL, min_size=2, max_size=4), min_size=1, max_size=6),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_csv_decoder_accepts_plain_numbers_only(rows: list[list[str]], newline: str) -> None:
    body = newline.join(",".join(row) for row in rows) + newline
    try:
        batch = codecs.decode(body.encode("utf-8", "surrogatepass"), codecs.CSV)
    except DataError as exc:
        assert "\n" not in str(exc)
        if "record" in str(exc) or "line" in str(exc):
            return
        assert "no data rows" in str(exc) or "UTF-8" in str(exc) or "empty" in str(exc)
        return
    # Accepted: an optional header, then rows of exactly three plain ASCII numbers, found again in the matrix.
    data = [row for row in rows if ",".join(row).strip()]
    if data and all(not _STRICT.fullmatch(c) for c in data[0]):
        data = data[1:]
    assert len(batch.values) == len(data)
    for row, values in zip(data, batch.values.tolist(), strict=True):
        assert len(row) == 3 and all(_STRICT.fullmatch(cell) for cell in row)
        assert values == [float(cell) for cell in row]


@SETTINGS
@given(values=st.lists(st.tuples(st.floats(0, 1e9), st.floats(0, 1e6), st.floats(-1e9, 1e9)), min_size=1,
                       max_size=50), header=st.booleans())
def test_csv_round_trips_every_finite_matrix(values: list[tuple[float, float, float]], header: bool) -> None:
    lines = ["recency,frequency,monetary"] if header else []
    lines += [",".join(repr(v) for v in row) for row in values]
    batch = codecs.decode(("\n".join(lines) + "\n").encode(), codecs.CSV)
    assert batch.values.tolist() == [list(row) for row in values]


@SETTINGS
@given(name=st.text(max_size=80))
def test_accepted_segment_names_are_printable(name: str) -> None:
    try:
        cleaned = check_name(name, [])
    except ModelError as exc:
        assert "\n" not in str(exc) and all(c.isprintable() for c in str(exc))
        return
    assert cleaned and cleaned.isprintable() and cleaned == cleaned.strip() and len(cleaned) <= 60


def test_reference_rule_sanity(tmp_path: Path) -> None:
    """The reference itself: one line per rule."""
    now = datetime.combine(TODAY, datetime.min.time())
    assert reference_rule(None, 1, 1, now) == "no_customer"
    assert reference_rule("1", float("nan"), 1, now) == "bad_number"
    assert reference_rule("1", 1, 1, now + timedelta(days=2)) == "future_date"
    assert reference_rule("1", 1, 0, now) == "bad_price"
    assert reference_rule("1", 1, 1, now) is None


@st.composite
def logs_with_repeats(draw: st.DrawFn) -> list[tuple[str, str, str, float, float, str | None]]:
    """Lines drawn from a few values each (so exact duplicates and near duplicates are common), some
    repeated on purpose: (invoice, stock code, customer, quantity, price, country)."""
    line = st.tuples(st.sampled_from(["1", "2", "C3"]), st.sampled_from(["A", "B"]), st.sampled_from(["7", "8"]),
                     st.sampled_from([-2.0, 1.0, 3.0]), st.sampled_from([0.5, 2.0]),
                     st.sampled_from(["UK", "France", None]))
    lines = draw(st.lists(line, min_size=1, max_size=20))
    repeats = draw(st.lists(st.integers(0, len(lines) - 1), max_size=8))
    return lines + [lines[i] for i in repeats]


@SETTINGS
@given(rows=logs_with_repeats(), collide=st.booleans())
def test_deduplication_by_repeated_keys_keeps_the_same_lines(tmp_path_factory: pytest.TempPathFactory,
                                                             rows: list[tuple[str, str, str, float, float, str | None]],
                                                             collide: bool) -> None:
    """`rfm ingest`'s de-duplication (only lines sharing a line key go through DISTINCT) keeps exactly the
    lines of the whole-line DISTINCT, also when a key is listed that no two lines share (a hash collision)."""
    from rfm.data.query import cleaned_lines_by_keys_sql, cleaned_lines_sql, repeated_line_keys_sql

    path = tmp_path_factory.mktemp("log") / "log.parquet"
    pq.write_table(pa.table({
        "InvoiceNo": [r[0] for r in rows], "StockCode": [r[1] for r in rows], "CustomerID": [r[2] for r in rows],
        "Quantity": [r[3] for r in rows], "UnitPrice": [r[4] for r in rows],
        "InvoiceDate": pa.array([datetime(2011, 3, 1, 10)] * len(rows), pa.timestamp("s")),
        "Country": pa.array([r[5] for r in rows], pa.string()),
    }), path)
    con = connect()
    try:
        view = load_source(con, [path]).view
        con.execute(f"CREATE TEMP TABLE repeated AS {repeated_line_keys_sql(view)}")
        total = con.execute("SELECT lines FROM repeated WHERE _line_hash IS NULL").fetchall()
        if collide:  # every line's key listed: every kept line through the DISTINCT
            con.execute(f"INSERT INTO repeated SELECT DISTINCT _line_hash, _customer_key, 2 FROM {view}")
        by_keys = sorted(con.execute(cleaned_lines_by_keys_sql(view, "repeated")).fetchall(), key=repr)
        by_date = sorted(con.execute(cleaned_lines_by_keys_sql(view, "repeated", by_date=True)).fetchall(), key=repr)
        whole = sorted(con.execute(cleaned_lines_sql(view)).fetchall(), key=repr)
        repeated = con.execute("SELECT count(*) FROM repeated WHERE _line_hash IS NOT NULL").fetchone()
    finally:
        con.close()
    assert by_keys == whole == by_date
    is_kept = [(r[3] > 0) != r[0].startswith("C") for r in rows]  # purchases, and returns on C invoices
    kept = {r for r, k in zip(rows, is_kept, strict=True) if k}
    assert len(whole) == len(kept)
    assert total == [(sum(is_kept),)]  # every kept line counted once, duplicates included
    assert repeated is not None and (repeated[0] > 0) == (len(kept) < sum(is_kept) or collide)


_INVOICE_CHARS = st.sampled_from([" ", "\t", "\x01", "C", "c", "D", "d", "B", "b", "1", "é", "Ｃ", "!"])
# Ids around every boundary of the byte ranges, in every example.
_TRICKY_INVOICES = [" c1", "  C2", "\tC3", "", "C", "c", "D1", "d1", "!C", "Ｃ1", "B9", "b", " ", "\t1 ", "\x01"]


@SETTINGS
@given(invoices=st.lists(st.one_of(st.text(alphabet=_INVOICE_CHARS, max_size=5), st.text(max_size=6)),
                         min_size=1, max_size=30))
def test_invoice_ids_lose_outer_spaces_and_cancellations_start_with_c(tmp_path_factory: pytest.TempPathFactory,
                                                                  invoices: list[str]) -> None:
    """The source's invoice id and `_cancellation` (byte ranges on the raw text, for speed) against the
    rules in plain Python: the id without outer spaces; a cancellation's id starts with C or c."""
    path = tmp_path_factory.mktemp("log") / "log.parquet"
    invoices = _TRICKY_INVOICES + [i.replace("\x00", "") for i in invoices]
    pq.write_table(pa.table({
        "InvoiceNo": invoices, "StockCode": ["A"] * len(invoices), "CustomerID": ["7"] * len(invoices),
        "Quantity": [1.0] * len(invoices), "UnitPrice": [2.0] * len(invoices),
        "InvoiceDate": pa.array([datetime(2011, 3, 1, 10)] * len(invoices), pa.timestamp("s")),
    }), path)
    con = connect()
    try:
        view = load_source(con, [path]).view
        rows = con.execute(f"SELECT _cancellation, invoice_id FROM {view}").fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == [i.lstrip(" ")[:1] in ("C", "c") for i in invoices]
    assert [r[1] for r in rows] == [i.strip(" ") or None for i in invoices]  # ids without outer spaces


@SETTINGS
@given(rows=logs_with_repeats(), days_ago=st.lists(st.integers(0, 3), min_size=28, max_size=28),
       returns=st.sampled_from(["net", "exclude"]), snapshot=st.sampled_from([None, date(2011, 3, 3)]))
def test_raw_table_nets_out_duplicates_like_the_whole_line_distinct(
        tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str, float, float, str | None]],
        days_ago: list[int], returns: str, snapshot: date | None) -> None:
    """The raw log's RFM table (invoices grouped as read, each group of duplicate lines' extra copies taken
    back out) equals the table of the same log de-duplicated first by a DISTINCT over whole lines, for
    both returns policies, with and without a snapshot; lines on a few days, so copies of a line share a
    day and lines fall on either side of the snapshot."""
    from rfm.data.query import RFM_COLUMNS, cleaned_lines_sql, rfm_sql

    path = tmp_path_factory.mktemp("log") / "log.parquet"
    dates = [datetime(2011, 3, 4, 10) - timedelta(days=days_ago[rows.index(r) % len(days_ago)]) for r in rows]
    pq.write_table(pa.table({
        "InvoiceNo": [r[0] for r in rows], "StockCode": [r[1] for r in rows], "CustomerID": [r[2] for r in rows],
        "Quantity": [r[3] for r in rows], "UnitPrice": [r[4] for r in rows],
        "InvoiceDate": pa.array(dates, pa.timestamp("s")), "Country": pa.array([r[5] for r in rows], pa.string()),
    }), path)
    columns = ", ".join(RFM_COLUMNS)
    con = connect()
    try:
        view = load_source(con, [path]).view
        raw = con.execute(f"SELECT {columns} FROM ({rfm_sql(view, snapshot=snapshot, returns=returns)})").fetchall()
        con.execute(f"CREATE TEMP TABLE distinct_lines AS {cleaned_lines_sql(view, snapshot)}")
        distinct = con.execute(f"SELECT {columns} FROM "
                               f"({rfm_sql('distinct_lines', cleaned=True, snapshot=snapshot, returns=returns)})"
                               ).fetchall()
    finally:
        con.close()
    assert raw == distinct
