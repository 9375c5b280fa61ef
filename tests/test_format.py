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
    formats = fmt.column_formats(["customer_id", "revenue", "customer_share", "customers", "recency_mean"])
    assert formats["customer_id"] == ("Customer", "text", None)
    assert formats["revenue"] == ("Revenue", "money", None)  # no printf: it would write "£-76" (see below)
    assert formats["customer_share"] == ("Customers %", "share", None)
    assert formats["customers"] == ("Customers", "count", "%,d")
    assert formats["recency_mean"][2] == "%,.0f"
    assert fmt.share_columns(["customer_share", "revenue", "revenue_share"]) == ["customer_share", "revenue_share"]
    assert fmt.money_columns(["customer_id", "revenue", "monetary_mean", "revenue_per_customer"]) == [
        "revenue", "monetary_mean", "revenue_per_customer"]


def test_report_figures_by_kind() -> None:
    from datetime import date

    assert fmt.figure(541909, "count", "GBP") == "541,909"
    assert fmt.figure(-611342.094, "money", "GBP") == "−£611,342.09"
    assert fmt.figure((date(2010, 12, 1), date(2011, 12, 9)), "dates", "GBP") == "2010-12-01 to 2011-12-09"
    assert fmt.figure((None, None), "dates", "GBP") == "– to –"


def test_money_in_a_table_reads_as_fmt_money_over_the_numbers() -> None:
    import pandas as pd

    from rfm.dashboard.tables import styled

    frame = pd.DataFrame({"segment": ["Lost", "Champions", None], "monetary": [-76.0, 1234.5, None],
                          "revenue": [-75.6, 4541272.49, -0.004], "customers": [3, 4, 5]})
    shown = styled(frame, "GBP", key="t", decimals={"monetary": 2})
    rows = [line.split("|")[1:] for line in shown.to_string(delimiter="|").splitlines()[1:]]
    assert rows == [["Lost", "−£76.00", "−£76", "3"], ["Champions", "£1,234.50", "£4,541,272", "4"],
                    ["–", "–", "£0", "5"]]
    assert [fmt.money(v, "GBP") for v in frame["revenue"]] == [r[2] for r in rows]
    assert shown.data["revenue"].tolist() == frame["revenue"].tolist()  # numbers underneath: sorts by amount


def test_every_money_column_of_a_dashboard_table_shows_fmt_money_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What st.dataframe sends the browser: numbers as data, fmt.money's text as the displayed values, and
    no printf format on a money column (a column_config format would win over the text: "£-76")."""
    import json

    from streamlit import dataframe_util
    from streamlit.testing.v1 import AppTest

    script = tmp_path / "app.py"
    script.write_text(
        "import pandas as pd\n"
        "from rfm.dashboard import tables\n"
        "frame = pd.DataFrame({'segment': ['Lost', 'Champions'], 'monetary_mean': [-76.4, 1767.28],\n"
        "                      'revenue': [-76.0, 4541272.49], 'customers': [3, 4]})\n"
        "tables.table(frame, key='profiles', currency='GBP')\n"
        "tables.table(frame[['segment', 'revenue']], key='cents', currency='EUR', decimals={'revenue': 2})\n")
    at = AppTest.from_file(str(script)).run()
    assert not at.exception
    profiles, cents = (element.proto for element in at.dataframe)
    shown = dataframe_util.convert_arrow_bytes_to_pandas_df(profiles.arrow_data.styler.display_values)
    assert shown["revenue"].tolist() == ["−£76", "£4,541,272"] == [fmt.money(v, "GBP") for v in (-76.0, 4541272.49)]
    assert shown["monetary_mean"].tolist() == ["−£76", "£1,767"]
    assert at.dataframe[0].value["revenue"].tolist() == [-76.0, 4541272.49]  # the data: numbers, sorted as such
    columns = json.loads(profiles.columns)
    assert columns["revenue"]["label"] == "Revenue" and columns["revenue"]["type_config"]["type"] == "number"
    assert "format" not in columns["revenue"]["type_config"] and "format" not in columns["monetary_mean"]["type_config"]
    assert columns["customers"]["type_config"]["format"] == "%,d"  # other numbers keep their printf format
    euros = dataframe_util.convert_arrow_bytes_to_pandas_df(cents.arrow_data.styler.display_values)
    assert euros["revenue"].tolist() == ["−€76.00", "€4,541,272.49"]


def test_tables_show_shares_as_percentages_without_negative_zero() -> None:
    import pandas as pd

    from rfm.dashboard.tables import display_frame

    frame = pd.DataFrame({"segment": ["A", "B"], "revenue_share": [1.00018, -0.00018], "revenue": [10.0, -0.1]})
    shown = display_frame(frame)
    assert shown["revenue_share"].tolist() == [100.0, 0.0]
    assert str(shown["revenue_share"].iloc[1]) == "0.0"  # not "-0.0"
    assert shown["revenue"].tolist() == [10.0, -0.1]  # only shares change
    assert frame["revenue_share"].iloc[0] == 1.00018  # the page's own data is untouched


def test_a_negative_share_in_a_table_reads_as_fmt_percent() -> None:
    """printf's "%.1f%%" wrote "-1.2%" beside fmt.percent's "−1.2%" elsewhere."""
    import pandas as pd

    from rfm.dashboard.tables import column_config, styled

    frame = pd.DataFrame({"segment": ["A", "B", "C"], "revenue_share": [1.012, -0.0123, -0.00018]})
    shown = styled(frame, "GBP", key="shares")
    rows = [line.split("|")[1:] for line in shown.to_string(delimiter="|").splitlines()[1:]]
    assert [r[1] for r in rows] == ["101.2%", "−1.2%", "0.0%"] == [fmt.percent(v) for v in frame["revenue_share"]]
    assert column_config(frame)["revenue_share"]["type_config"]["format"] is None  # printf would win


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


def test_markdown_frames_write_figures_as_the_grid_does_and_names_as_typed() -> None:
    import pandas as pd

    from rfm.dashboard.tables import markdown_frame

    frame = pd.DataFrame({"segment": ["Champions", "[Win](https://x.y) **VIP** :red[a] $1$ | 2"],
                          "customers": [1234, 5], "customer_share": [0.5, -0.00001], "revenue": [12345.6, -76.2],
                          "recency_mean": [17.7, 3.2], "frequency_mean": [3.79, -1.26],
                          "monetary_mean": [1237.6, None]})
    assert markdown_frame(frame, "GBP").splitlines() == [
        "| Segment | Customers | Customers % | Revenue | Recency, mean (days) | Orders, mean | Spend, mean |",
        "|:---|---:|---:|---:|---:|---:|---:|",
        "| Champions | 1,234 | 50.0% | £12,346 | 18 | 3.8 | £1,238 |",
        # Every Markdown character escaped (no link, bold, colour directive or formula), the pipe for the table.
        r"| \[Win\]\(https" "\u2060" r"\:\/\/x\.y\) \*\*VIP\*\* \:red\[a\] \$1\$ \| 2 | 5 | 0.0% | −£76 | 3 | "
        "−1.3 | – |",
    ]


def test_colored_text_uses_streamlits_directive_and_escapes_the_text() -> None:
    from rfm.dashboard.format import colored, markdown_text

    assert markdown_text("A&B <b>x</b> [y](z)") == r"A\&B \<b\>x\<\/b\> \[y\]\(z\)"
    assert colored("VIP]{x}", "#1f77b4") == r':color[VIP\]\{x\}]{foreground="#1f77b4"}'
    assert colored("VIP", 'red" onclick="x') == "VIP"  # not a chart colour: no directive at all
    # Addresses stay text: a word joiner (invisible) breaks what GitHub Markdown would make a link.
    assert markdown_text("see www.shop.com, https://x.y or a@b.co") == (
        "see www\u2060\\.shop\\.com\\, https\u2060\\:\\/\\/x\\.y or a\\@\u2060b\\.co")
    assert markdown_text("Champions") == "Champions"  # plain text unchanged
