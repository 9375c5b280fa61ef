"""Each cleaning rule and each RFM definition, on hand-written logs with known answers."""

from datetime import date

import pandas as pd
import pytest

from rfm.data.cleaning import cleaning_report
from rfm.data.engine import connect
from rfm.data.sources import SourceOptions, load_source
from rfm.data.table import RfmOptions, compute_rfm
from rfm.errors import DataError
from tests.helpers import assert_same_report, line, write_log


def rfm(path, **options):
    return compute_rfm([path], options=RfmOptions(**options)).table.set_index("customer_id")


def report(path, mapping=None):
    con = connect()
    source = load_source(con, [path], SourceOptions(mapping=mapping))
    return cleaning_report(con, source.view)


@pytest.fixture
def log(tmp_path):
    rows = [
        line("100", 2, "2011-01-10 09:00", 5.0, 1),      # purchase, customer 1
        line("100", 1, "2011-01-10 09:00", 3.0, 1, "B"),  # second line of the same invoice
        line("101", 1, "2011-01-20 17:59", 10.0, 1),     # customer 1, second invoice
        line("101", 1, "2011-01-20 17:59", 10.0, 1),     # exact duplicate: dropped
        line("C102", -1, "2011-01-25 10:00", 5.0, 1),    # return of 5.00
        line("103", 4, "2011-01-30 08:00", 2.5, 2),      # customer 2
        line("104", 1, "2011-01-30 09:00", 0.0, 2),      # zero price: dropped
        line("105", 1, "2011-01-30 09:30", -1.0, 2),     # negative price: dropped
        line("106", 5, "2011-01-31 23:59", 1.0, None),   # no customer: dropped
        line("107", -3, "2011-01-31 12:00", 1.0, 3),     # negative qty, not a cancellation: dropped
        line("C108", -2, "2011-01-31 12:00", 4.0, 4),    # a return from a customer without purchases
    ]
    return write_log(tmp_path / "log.csv", rows)


def test_cleaning_report_counts_each_rule(log):
    r = report(log)
    assert r.rows_read == 11
    assert (r.no_customer, r.bad_price, r.duplicate, r.stock_adjustment) == (1, 2, 1, 1)
    assert (r.purchase_lines, r.return_lines) == (4, 2)
    assert r.customers == 2 and r.invoices == 3
    assert r.purchase_revenue == pytest.approx(2 * 5 + 3 + 10 + 10)
    assert r.returned_revenue == pytest.approx(-5 - 8)
    assert r.rows_dropped == 5
    assert str(r.last_date.date()) == "2011-01-31"


def test_one_list_of_report_rows_worded_alike_in_the_cli_and_the_dashboard(log):
    from rfm.service.insights import cleaning_rows

    r = report(log)
    rows = {row.label: row.value for row in r.rows()}
    assert rows["lines read"] == 11 and rows["lines kept"] == 6
    assert rows["lines read"] == rows["lines kept"] + sum(v for k, v in rows.items() if k.startswith("dropped: "))
    assert (rows["kept: purchase lines"], rows["kept: return lines"]) == (4, 2)
    assert (rows["customers with a purchase"], rows["invoices with a purchase"]) == (2, 3)
    assert rows["dates of the lines kept"] == (date(2011, 1, 10), date(2011, 1, 31))
    assert rows["revenue of the purchase lines kept"] == pytest.approx(33.0)
    assert rows["revenue of the return lines kept"] == pytest.approx(-13.0)
    assert rows["net revenue of the lines kept"] == pytest.approx(20.0)
    # the CLI prints each row once, its parts indented, in the same words and order
    printed = r.format().splitlines()
    assert [line.strip().split("  ")[0] for line in printed] == [row.label for row in r.rows()]
    assert printed[0].startswith("lines read") and printed[0].endswith(" 11")
    assert printed[1].startswith("  dropped: no customer id") and printed[-1].endswith(" 20.00")
    assert "dates of the lines kept" in r.format() and "2011-01-10 to 2011-01-31" in r.format()
    # the dashboard's table: the same labels and numbers, unformatted
    table = cleaning_rows(r)
    assert table["step"].tolist() == [row.label for row in r.rows()]
    assert table["value"].tolist() == [row.value for row in r.rows()]
    assert set(table["kind"]) == {"count", "money", "dates"}


def test_rfm_net_returns_policy(log):
    t = rfm(log)
    assert list(t.index) == ["1", "2"]  # customer 4 has only a return; 3 only a stock adjustment
    assert t.loc["1", "frequency"] == 2
    assert t.loc["1", "monetary"] == pytest.approx(23.0 - 5.0)
    assert t.loc["2", "monetary"] == pytest.approx(10.0)
    # snapshot = day after the last kept line (2011-01-31) = 2011-02-01; recency in whole days
    assert t.loc["1", "recency"] == (date(2011, 2, 1) - date(2011, 1, 20)).days
    assert t.loc["2", "recency"] == 2


def test_rfm_exclude_returns_policy(log):
    t = rfm(log, returns="exclude")
    assert t.loc["1", "monetary"] == pytest.approx(23.0)


def test_explicit_snapshot_leaves_out_later_lines(log):
    t = rfm(log, snapshot=date(2011, 1, 21))
    assert list(t.index) == ["1"]
    assert t.loc["1", "recency"] == 1 and t.loc["1", "frequency"] == 2
    assert t.loc["1", "monetary"] == pytest.approx(23.0)  # the return came later


def test_recency_counts_calendar_days_not_hours(tmp_path):
    path = write_log(tmp_path / "l.csv", [
        line("1", 1, "2011-03-01 23:59", 1.0, "a"),
        line("2", 1, "2011-03-02 00:01", 1.0, "b"),
    ])
    t = rfm(path)
    assert t.loc["a", "recency"] == 2 and t.loc["b", "recency"] == 1


def test_near_duplicates_differing_in_any_column_are_kept(tmp_path):
    path = write_log(tmp_path / "l.csv", [
        line("1", 1, "2011-03-01 10:00", 2.0, "a", stock="X"),
        line("1", 1, "2011-03-01 10:00", 2.0, "a", stock="Y"),
        line("1", 1, "2011-03-01 10:00", 2.0, "a", stock="Y"),
    ])
    assert rfm(path).loc["a", "monetary"] == pytest.approx(4.0)


def test_positive_quantity_on_a_cancellation_invoice_is_not_a_purchase(tmp_path):
    path = write_log(tmp_path / "l.csv", [
        line("1", 1, "2011-03-01 10:00", 2.0, "a"),
        line("C2", 1, "2011-03-05 10:00", 2.0, "a"),
    ])
    t = rfm(path)
    assert t.loc["a", "frequency"] == 1 and t.loc["a", "monetary"] == pytest.approx(2.0)
    assert report(path).not_purchase_or_return == 1


def test_amount_column_and_no_invoice_ids(tmp_path):
    """Without invoice ids an invoice is a customer's purchases on one day; negative amounts are returns."""
    path = write_log(tmp_path / "l.csv", [
        ["c1", "2011-05-01 09:00", 10.0],
        ["c1", "2011-05-01 15:00", 5.0],
        ["c1", "2011-05-03 09:00", 7.5],
        ["c1", "2011-05-04 09:00", -2.5],
        ["c2", "2011-05-04 09:00", 0.0],
        ["c2", "2011-05-04 10:00", 1.0],
    ], header=["client", "when", "line_total"])
    options = SourceOptions(mapping={"customer_id": "client", "invoice_date": "when", "amount": "line_total"})
    t = compute_rfm([path], options).table.set_index("customer_id")
    assert t.loc["c1", "frequency"] == 2
    assert t.loc["c1", "monetary"] == pytest.approx(20.0)
    assert t.loc["c2", "frequency"] == 1 and t.loc["c2", "recency"] == 1


def test_scores_are_quintiles_with_ties_sharing_a_score(tmp_path):
    rows = []
    for i in range(10):
        for n in range(i + 1):  # customer i buys i+1 times: frequencies 1..10
            rows.append(line(f"{i}-{n}", 1, f"2011-01-{n + 1:02d} 10:00", float(i + 1), f"c{i}"))
    rows.append(line("x-1", 1, "2011-01-01 10:00", 1.0, "tie"))  # ties with c0 on frequency
    t = rfm(write_log(tmp_path / "l.csv", rows))
    assert set(t["f_score"]) == {1, 2, 3, 4, 5}
    assert t.loc["tie", "f_score"] == t.loc["c0", "f_score"] == 1
    assert t.loc["c9", "f_score"] == 5 and t.loc["c9", "m_score"] == 5
    # most recent buyers get the highest recency score
    assert t.loc["c9", "r_score"] == t["r_score"].max()
    assert (t["rfm_segment"].notna()).all()


def test_no_purchase_at_all_is_a_clear_error(tmp_path):
    path = write_log(tmp_path / "l.csv", [line("1", 1, "2011-03-01 10:00", 2.0, None)])
    with pytest.raises(DataError, match="no customer has a purchase"):
        rfm(path)


def test_customer_ids_written_as_floats_are_normalised(tmp_path):
    frame = pd.DataFrame({"CustomerID": [17850.0, 17850.0], "InvoiceNo": ["1", "2"],
                          "InvoiceDate": pd.to_datetime(["2011-01-01", "2011-01-02"]),
                          "Quantity": [1, 1], "UnitPrice": [1.0, 1.0]})
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    assert list(rfm(path).index) == ["17850"]


def test_invoice_ids_are_trimmed_and_cancellations_case_insensitive(tmp_path):
    path = write_log(tmp_path / "l.csv", [
        line(" 1 ", 2, "2011-03-01 10:00", 5.0, "a"),
        line("1", 1, "2011-03-01 10:00", 3.0, "a", stock="B"),   # same invoice once trimmed
        line(" c2", -1, "2011-03-02 10:00", 5.0, "a"),          # a cancellation, lower case, leading space
    ])
    t = rfm(path)
    assert t.loc["a", "frequency"] == 1
    assert t.loc["a", "monetary"] == pytest.approx(13.0 - 5.0)


# --- non-finite and out-of-range numbers, lines dated in the future (issue 12) -------------------------


def _parquet_log(path, rows):
    """A Parquet log keeping NaN as NaN (pandas would write it as null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(zip(*rows, strict=True))
    arrays = {
        "InvoiceNo": pa.array(columns[0], pa.string()),
        "StockCode": pa.array(columns[1], pa.string()),
        "Description": pa.array(columns[2], pa.string()),
        "Quantity": pa.array([float(v) for v in columns[3]], pa.float64(), from_pandas=False),
        "InvoiceDate": pa.array([pd.Timestamp(v).to_pydatetime() for v in columns[4]], pa.timestamp("s")),
        "UnitPrice": pa.array([float(v) for v in columns[5]], pa.float64(), from_pandas=False),
        "CustomerID": pa.array([None if v is None else float(v) for v in columns[6]], pa.float64()),
        "Country": pa.array(columns[7], pa.string()),
    }
    pq.write_table(pa.table(arrays), path)
    return path


@pytest.fixture
def odd_numbers_log(tmp_path):
    rows = [
        line("200", 2, "2011-03-01 10:00", 5.0, 1),
        line("201", 1, "2011-03-02 10:00", float("nan"), 1),   # NaN price
        line("202", 1, "2011-03-02 11:00", float("inf"), 2),   # infinite price
        line("203", float("-inf"), "2011-03-02 12:00", 1.0, 2),  # infinite quantity
        line("204", 1e12, "2011-03-02 13:00", 1.0, 2),         # out of range quantity
        line("205", 1, "2011-03-02 14:00", 2e9, 2),            # out of range price
        line("206", 40_000, "2011-03-02 15:00", 40_000.0, 3),  # amount 1.6e9: out of range
        line("207", 3, "2011-03-03 09:00", 2.0, 2),
    ]
    return rows


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_non_finite_and_out_of_range_numbers_are_a_counted_rule(tmp_path, odd_numbers_log, kind):
    path = (write_log(tmp_path / "log.csv", odd_numbers_log, na_rep="NaN") if kind == "csv"  # the text NaN
            else _parquet_log(tmp_path / "log.parquet", odd_numbers_log))
    r = report(path)
    assert r.rows_read == 8 and r.bad_number == 6 and r.bad_price == 0
    assert r.purchase_lines == 2 and r.rows_dropped == 6
    assert r.purchase_revenue == pytest.approx(10.0 + 6.0)
    t = rfm(path)
    assert sorted(t.index) == ["1", "2"]
    assert t["monetary"].map(lambda v: v == v and abs(v) < 1e9).all()  # no nan, no inf
    assert "bad_number" in r.as_dict() and "beyond 1e9" in r.format()


def test_lines_dated_after_the_run_date_are_a_counted_rule(tmp_path):
    rows = [line("300", 1, "2011-05-01 10:00", 5.0, 1), line("301", 1, "2011-05-03 10:00", 5.0, 2)]
    rows += [line(f"9{i:02d}", 1, "2099-01-01 10:00", 5.0, 3 + i % 2) for i in range(51)]
    path = write_log(tmp_path / "log.csv", rows)
    r = report(path)
    assert r.future_date == 51 and r.purchase_lines == 2
    assert str(r.last_date.date()) == "2011-05-03"
    t = rfm(path)
    assert sorted(t.index) == ["1", "2"] and t["recency"].max() == 3  # not ~32,000 days


def test_with_a_snapshot_later_lines_are_counted_as_future(log):
    con = connect()
    source = load_source(con, [log])
    plain = cleaning_report(con, source.view)
    at_snapshot = cleaning_report(con, source.view, date(2011, 1, 30))
    # Lines on or after 2011-01-30: 103..107 and C108 (six), of which 106 has no customer (counted there).
    assert plain.future_date == 0
    assert at_snapshot.future_date == 5 and at_snapshot.no_customer == 1
    assert at_snapshot.rows_dropped == 5 + 1 + 1  # and the duplicate of 101
    assert at_snapshot.last_date.date() == date(2011, 1, 25)


def test_new_rules_render_for_athena_and_give_the_same_table(tmp_path, odd_numbers_log):
    from rfm.cloud.dialects import render_athena, to_duckdb
    from rfm.data.engine import quote_identifier
    from rfm.data.query import rfm_sql

    rows = [*odd_numbers_log, line("299", 1, "2099-06-01 10:00", 5.0, 1)]
    path = _parquet_log(tmp_path / "log.parquet", rows)
    con = connect()
    source = load_source(con, [path])
    for snapshot in (None, date(2011, 3, 3)):
        sql = rfm_sql(quote_identifier(source.view), snapshot=snapshot)
        query = render_athena(sql)
        assert "ABS(" in query.sql.upper() and "CURRENT_DATE" in query.sql.upper()
        expected = con.execute(sql).df()
        actual = con.execute(to_duckdb(query.sql), [p.strip("'") for p in query.parameters]).df()
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
        assert len(expected) == (2 if snapshot is None else 1)


def test_a_snapshot_after_the_run_date_still_drops_future_lines(tmp_path):
    rows = [line("300", 1, "2011-05-01 10:00", 5.0, 1), line("301", 1, "2099-05-03 10:00", 5.0, 2)]
    path = write_log(tmp_path / "log.csv", rows)
    t = rfm(path, snapshot=date(2100, 1, 1))  # every path agrees: the dataset, `rfm table` and ingested logs
    assert list(t.index) == ["1"]
    con = connect()
    assert cleaning_report(con, load_source(con, [path]).view, date(2100, 1, 1)).future_date == 1


def test_a_log_without_purchases_says_which_rules_dropped_its_lines(tmp_path):
    """The error names the rules that left nothing (the same words in the CLI and the dashboard), not a
    command to run elsewhere."""
    path = write_log(tmp_path / "log.csv", [
        line("1", 1, "2011-01-10 09:00", 1.0, None),
        line("2", 1, "2011-01-10 09:00", 1.0, None),
        line("3", 1, "2011-01-10 09:00", 0.0, 5),
        line("C4", -1, "2011-01-10 09:00", 1.0, 6),
    ])
    with pytest.raises(DataError) as error:
        compute_rfm([path])
    message = str(error.value)
    assert "no customer has a purchase after cleaning: of 4 lines read: 2 no customer id, " in message
    assert "1 zero or negative price" in message and "1 return line but no purchase" in message
    assert "rfm ingest" not in message


def test_the_dashboard_s_dataset_error_without_purchases_names_the_rules_too(tmp_path):
    from rfm.service.datasets import DatasetRequest, FileSource, load_dataset

    path = write_log(tmp_path / "log.csv", [line("1", 1, "2011-01-10 09:00", 1.0, None)])
    with pytest.raises(DataError, match=r"after cleaning: of 1 lines read: 1 no customer id"):
        load_dataset(DatasetRequest(source=FileSource(paths=(str(path),))))


def _ingested_report_against_the_log_s(tmp_path, paths):
    """`rfm ingest`'s report (kept lines counted in the file it wrote) and the report of the same log read
    as it is (every line de-duplicated for the report): every figure alike, revenues to the cent."""
    from rfm.data.ingest import ingest

    written = ingest(paths, tmp_path / "cleaned.parquet")
    con = connect()
    source = load_source(con, paths, SourceOptions())
    assert_same_report(written, cleaning_report(con, source.view))
    return written


def test_the_ingest_report_counts_what_the_written_file_kept(tmp_path, log):
    more = write_log(tmp_path / "more.csv", [
        line("107", -3, "2011-01-31 12:00", 1.0, 3),     # the first file's stock adjustment, twice more
        line("107", -3, "2011-01-31 12:00", 1.0, 3),
        line("C109", 2, "2011-02-01 10:00", 3.0, 1),     # positive quantity on a cancellation: neither kind
        line("110", 0, "2011-02-01 11:00", 3.0, 1),      # zero quantity: neither kind
        line("101", 1, "2011-01-20 17:59", 10.0, 1),     # a line of the first file again: a duplicate
    ])
    r = _ingested_report_against_the_log_s(tmp_path, [log, more])
    # duplicates: the first file's own, 107 twice more, 101 again
    assert (r.duplicate, r.stock_adjustment, r.not_purchase_or_return) == (1 + 2 + 1, 1, 2)
    assert pd.read_parquet(tmp_path / "cleaned.parquet").shape[0] == r.purchase_lines + r.return_lines


def test_the_ingest_report_on_the_real_data(tmp_path, online_retail_parquet):
    r = _ingested_report_against_the_log_s(tmp_path, [online_retail_parquet])
    assert r.duplicate > 0 and r.return_lines > 0


def test_the_ingested_file_is_sorted_by_date_with_the_customer_as_text(tmp_path):
    """The README's promise (a cleaned file sorted by date), for a log written out of order whose repeated
    lines take the de-duplication's other branch."""
    from rfm.data.ingest import ingest

    rows = [line(str(200 + i), 1 + i % 3, f"2011-0{1 + (7 * i) % 9}-1{i % 10} 10:00", 2.0, 10 + i % 4)
            for i in range(40)]
    path = write_log(tmp_path / "log.csv", rows + rows[5:9])  # four lines twice
    ingest([path], tmp_path / "cleaned.parquet")
    written = pd.read_parquet(tmp_path / "cleaned.parquet")
    assert len(written) == 40
    assert written["invoice_date"].is_monotonic_increasing and not pd.Series(
        pd.to_datetime([r[4] for r in rows])).is_monotonic_increasing
    assert set(written["customer_id"]) == {"10", "11", "12", "13"}


def test_an_ingested_log_whose_lines_come_by_invoice_keeps_its_order(tmp_path):
    """Invoices of several lines, each invoice's lines together, dated out of order: written as they came
    (sorting 100 million lines was half of `rfm ingest`), the lines that had copies last."""
    from rfm.data.ingest import ingest

    rows = [line(str(300 + i), 1 + j, f"2011-0{1 + (5 * i) % 9}-15 10:00", 2.0, 20 + i % 3, stock=f"S{j}")
            for i in range(30) for j in range(3)]
    path = write_log(tmp_path / "log.csv", [*rows, rows[10]])  # the 4th invoice's 2nd line twice
    ingest([path], tmp_path / "cleaned.parquet")
    written = pd.read_parquet(tmp_path / "cleaned.parquet")
    assert not written["invoice_date"].is_monotonic_increasing
    assert written["invoice_id"].tolist() == [r[0] for r in rows if r is not rows[10]] + [rows[10][0]]
    assert written["quantity"].tolist()[-1] == rows[10][3]


def test_the_real_log_is_seen_in_invoice_order_and_a_shuffled_copy_is_not(tmp_path, online_retail_parquet):
    """Online Retail comes by invoice (its file is written as it came); the same lines shuffled do not
    (sorted by date)."""
    from rfm.data.ingest import log_in_invoice_order
    from rfm.data.sources import opened_source

    shuffled = tmp_path / "shuffled.parquet"
    pd.read_parquet(online_retail_parquet).sample(frac=1.0, random_state=3).to_parquet(shuffled)
    seen = {}
    for name, path in (("log", online_retail_parquet), ("shuffled", shuffled)):
        with opened_source([path]) as (con, source):
            seen[name] = log_in_invoice_order(con, source)
    assert seen == {"log": True, "shuffled": False}


def test_grouped_by_invoice_wants_evidence():
    from rfm.data.ingest import grouped_by_invoice

    assert grouped_by_invoice([7, 7, 7, 3, 3, 9, 9, 9, 9, 4])  # runs of one invoice each
    assert not grouped_by_invoice([7, 3, 7, 3, 9, 9, 4, 4, 7, 3])  # invoices come back
    assert not grouped_by_invoice([1, 2, 3, 4, 5])  # one-line invoices: no evidence
    assert not grouped_by_invoice([])
