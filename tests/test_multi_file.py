"""Several files in one run: every line counted once across files, a file that repeats another named
in the cleaning report, and files whose headers differ mapped each on their own and combined."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from rfm.data.cleaning import cleaning_report
from rfm.data.sources import opened_source
from rfm.data.table import compute_rfm
from tests.helpers import HEADER, line, write_log

YEAR_II_HEADERS = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}


def small_log() -> list[list[object]]:
    return [
        line("536365", 6, "2010-12-01 08:26:00", 2.55, 17850, "85123A"),
        line("536365", 6, "2010-12-01 08:26:00", 2.55, 17850, "85123A"),  # a duplicate within the file
        line("536366", 2, "2010-12-03 09:00:00", 10.0, 17850, "71053"),
        line("536367", 1, "2010-12-05 10:00:00", 99.5, 13047, "84406B"),
        line("C536368", -1, "2010-12-06 10:00:00", 99.5, 13047, "84406B"),
        line("536369", 3, "2010-12-07 11:00:00", 4.25, 12583, "22752"),
    ]


def table_of(*paths: Path) -> pd.DataFrame:
    return compute_rfm([str(p) for p in paths]).table.set_index("customer_id").sort_index()


def report_of(*paths: Path):  # type: ignore[no-untyped-def]
    with opened_source([str(p) for p in paths]) as (con, source):
        return cleaning_report(con, source.view)


def test_the_same_log_as_csv_and_parquet_is_counted_once_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    csv = write_log(folder / "sales.csv", small_log())
    pd.read_csv(csv, parse_dates=["InvoiceDate"]).to_parquet(folder / "sales.parquet")
    alone = table_of(csv)

    combined = table_of(folder)
    pd.testing.assert_frame_equal(combined, alone)
    report = report_of(folder)
    assert report.net_revenue == pytest.approx(report_of(csv).net_revenue)
    assert [(Path(f).name, Path(o).name) for f, o in report.repeated_files] == [("sales.parquet", "sales.csv")]
    assert "sales.parquet repeats every line of sales.csv" in report.format()
    assert report.as_dict()["repeated_files"] == [{"file": str(folder / "sales.parquet"),
                                                   "repeats": str(folder / "sales.csv")}]


def test_files_that_share_some_lines_are_not_named_but_their_shared_lines_count_once(tmp_path: Path) -> None:
    rows = small_log()
    first = write_log(tmp_path / "a.csv", rows[:4])
    second = write_log(tmp_path / "b.csv", rows[3:])  # line 4 is in both
    both = write_log(tmp_path / "all.csv", rows)
    pd.testing.assert_frame_equal(table_of(first, second), table_of(both))
    assert report_of(first, second).repeated_files == ()


def test_files_with_different_headers_are_mapped_each_and_combined(tmp_path: Path) -> None:
    rows = small_log()
    old = write_log(tmp_path / "2009.csv", rows[:3])
    header = [YEAR_II_HEADERS.get(name, name) for name in HEADER]
    new = write_log(tmp_path / "2010.csv", rows[3:], header=header)  # same format, other header
    together = write_log(tmp_path / "together.csv", rows)
    pd.testing.assert_frame_equal(table_of(old, new), table_of(together))


def test_two_real_years_with_different_headers_combine(tmp_path: Path, online_retail_parquet: Path,
                                                        online_retail_ii_parquet: Path) -> None:
    """Online Retail II (2009-10; `Invoice`, `Price`, `Customer ID`) and Online Retail (2010-11;
    `InvoiceNo`, `UnitPrice`, `CustomerID`) overlap in December 2010: the combined table equals the
    table of the two files renamed to one header and concatenated into one file (whose de-duplication
    is the within-file one), customer for customer."""
    old = pd.read_parquet(online_retail_ii_parquet).rename(columns={v: k for k, v in YEAR_II_HEADERS.items()})
    concatenated = tmp_path / "both.parquet"
    pd.concat([old, pd.read_parquet(online_retail_parquet)], ignore_index=True).to_parquet(concatenated)

    combined = table_of(online_retail_ii_parquet, online_retail_parquet)
    expected = table_of(concatenated)
    pd.testing.assert_frame_equal(combined, expected)
    assert len(combined) > len(table_of(online_retail_parquet))
    report = report_of(online_retail_ii_parquet, online_retail_parquet)
    assert report.first_date is not None and report.first_date.year == 2009
    assert report.repeated_files == ()


def test_the_real_log_as_csv_gz_and_parquet_in_one_folder(tmp_path: Path, online_retail_parquet: Path,
                                                           online_retail_csv: Path) -> None:
    folder = tmp_path / "retail"
    folder.mkdir()
    for path in (online_retail_parquet, online_retail_csv):
        shutil.copy(path, folder / path.name)
    report = report_of(folder)
    single = report_of(online_retail_parquet)
    assert round(report.net_revenue, 2) == round(single.net_revenue, 2)
    assert (report.customers, report.invoices) == (single.customers, single.invoices)
    assert len(report.repeated_files) == 1
    pd.testing.assert_frame_equal(table_of(folder), table_of(online_retail_parquet))
