"""Reading every supported format, and clear errors for bad input."""

import gzip
import subprocess
import sys

import pandas as pd
import pytest

from rfm.data.sources import SourceOptions
from rfm.data.table import compute_rfm
from rfm.errors import DataError
from tests.helpers import HEADER, line, write_log

ROWS = [
    line("536365", 6, "2010-12-01 08:26:00", 2.55, 17850),
    line("536366", 2, "2010-12-02 09:00:00", 1.85, 17850),
    line("536367", 3, "2010-12-03 10:00:00", 4.25, 13047, country="France"),
]


def table(paths, **opts):
    return compute_rfm([str(p) for p in paths], SourceOptions(**opts)).table


@pytest.fixture
def reference(tmp_path):
    return table([write_log(tmp_path / "ref.csv", ROWS)])


def test_csv_gz_and_semicolon_csv(tmp_path, reference):
    gz = tmp_path / "log.csv.gz"
    with gzip.open(gz, "wt") as handle:
        pd.DataFrame(ROWS, columns=HEADER).to_csv(handle, index=False)
    semi = write_log(tmp_path / "semi.csv", ROWS, sep=";")
    pd.testing.assert_frame_equal(table([gz]), reference)
    pd.testing.assert_frame_equal(table([semi]), reference)


def test_us_style_dates_and_decimal_commas(tmp_path, reference):
    rows = [[r[0], r[1], r[2], r[3], pd.Timestamp(r[4]).strftime("%m/%d/%Y %H:%M"), str(r[5]).replace(".", ","),
             r[6], r[7]] for r in ROWS]
    path = write_log(tmp_path / "us.csv", rows, sep=";")
    pd.testing.assert_frame_equal(table([path]), reference)


def test_excel_parquet_glob_and_hive_folder(tmp_path, reference):
    frame = pd.DataFrame(ROWS, columns=HEADER)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    xlsx = tmp_path / "log.xlsx"
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        frame.iloc[:2].to_excel(writer, sheet_name="Year 2010", index=False)
        frame.iloc[2:].to_excel(writer, sheet_name="Year 2011", index=False)
        pd.DataFrame({"note": ["not data"]}).to_excel(writer, sheet_name="Notes", index=False)
    pd.testing.assert_frame_equal(table([xlsx]), reference)

    parquet = tmp_path / "log.parquet"
    frame.to_parquet(parquet)
    pd.testing.assert_frame_equal(table([parquet]), reference)

    parts = tmp_path / "parts"
    for i, (_, row) in enumerate(frame.iterrows()):
        folder = parts / f"month={i}"
        folder.mkdir(parents=True)
        row.to_frame().T.astype(frame.dtypes.to_dict()).to_parquet(folder / "part.parquet")
    pd.testing.assert_frame_equal(table([parts]), reference)
    pd.testing.assert_frame_equal(table([str(parts / "*" / "*.parquet")]), reference)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "the file is empty"),
        (",".join(HEADER).encode() + b"\n", "header.csv", "no data rows"),
        (b"PAR1\x00\x00binary", "fake.csv", "extension says CSV but the file is a Parquet file"),
        (b"InvoiceNo,Quantity\n1,2\n", "fake.parquet", "extension says Parquet but the file is text"),
        (b"InvoiceNo,Quantity\n1,2\n", "fake.xlsx", "extension says Excel"),
    ],
)
def test_files_that_are_not_what_they_say(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        table([path])
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "rows", "expected"),
    [
        ("dates.csv", [*ROWS, line("536368", 1, "yesterday", 1.0, 12345)],
         ("dates.csv, row 4", "'InvoiceDate'", "'yesterday'")),
        ("prices.csv", [*ROWS[:1], line("536368", 1, "2010-12-05 10:00", "two fifty", 12345), *ROWS[1:]],
         ("prices.csv, row 2", "'UnitPrice'", "'two fifty'")),
    ],
)
def test_bad_values_name_file_row_column_and_value(tmp_path, name, rows, expected):
    path = write_log(tmp_path / name, rows)
    with pytest.raises(DataError) as info:
        table([path])
    for part in expected:
        assert part in str(info.value)



def test_excel_reads_a_mixed_column_whole_however_late_its_odd_cell(tmp_path):
    """A returned invoice ("C...") below 1,500 numeric invoices, a text customer id below numeric ones,
    a date typed as text: each read as the CSV of the same lines reads it, nothing emptied."""
    rows = [line(str(536365 + i), 1, f"2010-12-{1 + i % 28:02d} 08:00:00", 2.0, 17850 + i % 7) for i in range(1500)]
    rows.append(line("C540000", -1, "2011-01-05 09:00:00", 2.0, 17850))  # a return, far below the first rows
    rows.append(line("540001", 3, "2011-01-06 10:00:00", 1.5, "AB-12"))  # a customer id that is not a number
    frame = pd.DataFrame(rows, columns=HEADER)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"]).astype(object)
    frame.loc[len(frame) - 1, "InvoiceDate"] = "2011-01-06 10:00:00"  # one date cell typed as text
    xlsx = tmp_path / "mixed.xlsx"
    frame.to_excel(xlsx, index=False, engine="openpyxl")
    from_excel = table([xlsx])
    pd.testing.assert_frame_equal(from_excel, table([write_log(tmp_path / "mixed.csv", rows)]))
    assert "AB-12" in set(from_excel["customer_id"])
    assert from_excel.loc[from_excel["customer_id"] == "17850", "monetary"].iloc[0] == pytest.approx(
        sum(2.0 for r in rows if r[6] == 17850 and not r[0].startswith("C")) - 2.0)


def test_excel_sheets_typed_differently_are_stacked_and_a_missing_sheet_is_named(tmp_path, reference):
    frame = pd.DataFrame(ROWS, columns=HEADER)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    text_ids = frame.iloc[2:].astype({"CustomerID": str, "InvoiceNo": str})  # ids as text in one sheet
    xlsx = tmp_path / "two.xlsx"
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        frame.iloc[:2].astype({"InvoiceNo": int}).to_excel(writer, sheet_name="2010", index=False)
        text_ids.to_excel(writer, sheet_name="2011", index=False)
    pd.testing.assert_frame_equal(table([xlsx]), reference)
    pd.testing.assert_frame_equal(table([xlsx], sheet="2011"), table([write_log(tmp_path / "one.csv", ROWS[2:])]))
    with pytest.raises(DataError, match=r"two.xlsx: no sheet named 'Sales' \(sheets: '2010', '2011'\)"):
        table([xlsx], sheet="Sales")

def test_wrong_delimiter_is_explained(tmp_path):
    path = write_log(tmp_path / "semi.csv", ROWS, sep=";")
    with pytest.raises(DataError, match="delimiter"):
        table([path], delimiter=",")


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        table([tmp_path / "nope.csv"])


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "rfm", *args], capture_output=True, text=True)


def test_cli_bad_input_is_exit_2_and_one_line_without_traceback(tmp_path):
    path = write_log(tmp_path / "bad.csv", [line("1", 1, "not a date", 1.0, 1)])
    result = run_cli("table", "--data", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "bad.csv" in result.stderr and "InvoiceDate" in result.stderr and "not a date" in result.stderr


def test_cli_ingest_then_table_round_trip(tmp_path):
    src = write_log(tmp_path / "log.csv", [*ROWS, line("C9", -1, "2010-12-04 10:00", 2.55, 17850)])
    out = tmp_path / "clean.parquet"
    ingest = run_cli("ingest", str(src), "--out", str(out))
    assert ingest.returncode == 0, ingest.stderr
    assert "lines read" in ingest.stdout and "kept: return lines" in ingest.stdout
    direct = run_cli("table", "--data", str(src), "--out", "-")
    cleaned = run_cli("table", "--data", str(out), "--out", "-")
    assert direct.returncode == cleaned.returncode == 0
    assert direct.stdout == cleaned.stdout
    assert direct.stdout.splitlines()[0] == (
        "customer_id,recency,frequency,monetary,r_score,f_score,m_score,rfm_segment")


def test_ingesting_an_ingested_log_keeps_the_canonical_columns_and_lines(tmp_path):
    import duckdb

    src = write_log(tmp_path / "log.csv", [*ROWS, line("C9", -1, "2010-12-04 10:00", 2.55, 17850)])
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    assert run_cli("ingest", str(src), "--out", str(first)).returncode == 0
    assert run_cli("ingest", str(first), "--out", str(second)).returncode == 0
    once, twice = (duckdb.sql(f"SELECT * FROM '{p}' ORDER BY ALL").df() for p in (first, second))
    assert list(twice.columns) == list(once.columns) == [
        "customer_id", "invoice_id", "invoice_date", "quantity", "unit_price", "amount", "country"]
    pd.testing.assert_frame_equal(once, twice)
