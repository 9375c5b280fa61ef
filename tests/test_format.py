"""The dashboard's one number format (rfm.dashboard.format): money with its currency and thousands
separators, one-decimal percentages, whole days and orders, human headers."""

from __future__ import annotations

import math

import pytest

from rfm.dashboard import format as fmt


@pytest.mark.parametrize(("value", "currency", "decimals", "expected"), [
    (4541272, "GBP", 0, "£4,541,272"),
    (4541272.49, "gbp", 0, "£4,541,272"),
    (-12.5, "GBP", 2, "−£12.50"),
    (-0.004, "GBP", 2, "£0.00"),  # never "−£0.00"
    (1234.5, "EUR", 0, "€1,234"),  # round half to even, as Python's format does
    (1235.5, "USD", 0, "$1,236"),
    (99, "CHF", 0, "CHF 99"),
    (1000, "XYZ", 0, "XYZ 1,000"),  # any other ISO code is written out
])
def test_money(value: float, currency: str, decimals: int, expected: str) -> None:
    assert fmt.money(value, currency, decimals) == expected


@pytest.mark.parametrize("bad", [None, math.nan, math.inf])
def test_missing_numbers_are_a_dash(bad: float | None) -> None:
    assert fmt.money(bad, "GBP") == fmt.percent(bad) == fmt.count(bad) == "–"


@pytest.mark.parametrize(("share", "expected"), [
    (0.1305, "13.1%"), (0.03, "3.0%"), (0.319, "31.9%"), (1.0, "100.0%"), (-0.1, "−10.0%"), (-0.0001, "0.0%"),
])
def test_percentages_have_one_decimal(share: float, expected: str) -> None:
    assert fmt.percent(share) == expected


def test_whole_days_and_orders_with_their_noun() -> None:
    assert fmt.days(1) == "1 day" and fmt.days(15.4) == "15 days"
    assert fmt.orders(1) == "1 order" and fmt.orders(1234) == "1,234 orders"
    assert fmt.plural(2, "playbook entry", "playbook entries") == "2 playbook entries"
    assert fmt.count(4372.0) == "4,372"


def test_human_headers() -> None:
    assert fmt.header("recency_mean") == "Recency, mean (days)"
    assert fmt.header("default_name") == "Default name"
    assert fmt.header("smallest_cluster_share") == "Smallest cluster share"  # unknown: spelled out
    assert all("_" not in fmt.header(c) for c in fmt.COLUMNS)


def test_column_formats_follow_the_kind_of_column() -> None:
    formats = fmt.column_formats(["customer_id", "revenue", "customer_share", "customers", "recency_mean"], "GBP")
    assert formats["customer_id"] == ("Customer", None)
    assert formats["revenue"] == ("Revenue", "£%,.0f")
    assert formats["customer_share"] == ("Customers %", "%.1f%%")
    assert formats["customers"] == ("Customers", "%,d")
    assert formats["recency_mean"][1] == "%,.0f"
    assert fmt.share_columns(["customer_share", "revenue", "revenue_share"]) == ["customer_share", "revenue_share"]
    assert fmt.printf_format("money", "XY%") == "XY%% %,.0f"  # a % in a code cannot break the printf format


def test_tables_show_shares_as_percentages_without_negative_zero() -> None:
    import pandas as pd

    from rfm.dashboard.tables import display_frame

    frame = pd.DataFrame({"segment": ["A", "B"], "revenue_share": [1.00018, -0.00018], "revenue": [10.0, -0.1]})
    shown = display_frame(frame)
    assert shown["revenue_share"].tolist() == [100.0, 0.0]
    assert str(shown["revenue_share"].iloc[1]) == "0.0"  # not "-0.0"
    assert shown["revenue"].tolist() == [10.0, -0.1]  # only shares change
    assert frame["revenue_share"].iloc[0] == 1.00018  # the page's own data is untouched


def test_markdown_tables_escape_pipes_and_align_numbers() -> None:
    from rfm.dashboard.tables import markdown_table

    text = markdown_table([("Step", "left"), ("Revenue", "right")], [("a | b", "£1"), ("two\nlines", "−£2")])
    assert text.splitlines() == ["| Step | Revenue |", "|:---|---:|", "| a \\| b | £1 |", "| two lines | −£2 |"]


def test_url_parameters_are_written_as_streamlit_takes_them() -> None:
    from rfm.dashboard.urlstate import as_query, source_kind, source_param

    assert as_query({"returns": ["exclude"], "segments": ["A", "B"], "empty": []}) == {
        "returns": "exclude", "segments": ["A", "B"]}
    assert source_kind("UPLOAD") == "Upload a file" and source_kind("nope") is None
    assert source_param("Local path") == "path" and source_param("whatever") == "demo"
