"""The dashboard's one number format: money with its currency and thousands separators, percentages
with one decimal, whole days and orders, human column headers.

Why one module: the same figure used to read "4541272" in a metric, "4,541,272" in a caption and
"13.05%" beside "3%" in a table. Every page formats through these functions (text) and through
`column_formats` (the kind of each table column and the printf formats of `st.column_config`), so a
figure reads the same wherever it appears. Money and shares in a table are the exception to printf: a
printf format writes a negative amount as "£-76" (and a share as "-1.2%"), so a table's money and share
columns show `money`'s and `percent`'s text through a pandas Styler (rfm.dashboard.tables.styled).
Pure Python, no Streamlit: unit-tested in tests/test_format.py.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from datetime import date

# Symbols of the codes a retailer is likely to use; any other ISO code is written as the code.
CURRENCY_SYMBOLS: dict[str, str] = {"GBP": "£", "EUR": "€", "USD": "$", "JPY": "¥", "INR": "₹", "CNY": "¥",
                                    "KRW": "₩", "CHF": "CHF ", "AUD": "A$", "CAD": "C$", "NZD": "NZ$",
                                    "SEK": "SEK ", "NOK": "NOK ", "DKK": "DKK ", "PLN": "PLN "}
MINUS = "−"  # a real minus sign: as wide as a digit, never read as a hyphen


def currency_prefix(currency: str) -> str:
    """What is written before an amount: "£" for GBP, "CHF " for CHF, "XYZ " for any other code."""
    code = currency.strip().upper()
    return CURRENCY_SYMBOLS.get(code, f"{code} ")


def money(value: float | None, currency: str, decimals: int = 0) -> str:
    """An amount with its currency and thousands separators: "£4,541,272", "−£12.50" (never "−£0")."""
    return _signed(value, f",.{decimals}f", prefix=currency_prefix(currency))


def percent(share: float | None, decimals: int = 1) -> str:
    """A share (0.1305) as a percentage with one decimal: "13.1%"; never "−0.0%"."""
    return _signed(None if share is None else share * 100, f".{decimals}f", suffix="%")


def count(value: float | None) -> str:
    """A whole number with thousands separators: "4,372"."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{round(value):,}"


def number(value: float | None, decimals: int = 0) -> str:
    """A number with thousands separators and a real minus sign: "1,237", "3.8", "−2.5" (never "−0")."""
    return _signed(value, f",.{decimals}f")


def _signed(value: float | None, spec: str, *, prefix: str = "", suffix: str = "") -> str:
    """`value`'s size written by the format `spec` between `prefix` and `suffix`, after a real minus sign
    when it is negative and does not round to zero (never "−0", "−£0", "−0.0%"); "–" when missing."""
    if value is None or not math.isfinite(value):
        return "–"
    digits = format(abs(value), spec)
    return f"{MINUS if value < 0 and digits.strip('0.,') else ''}{prefix}{digits}{suffix}"


# Every ASCII punctuation character can be escaped in Markdown; escaping them all keeps a name such as
# "[Win](https://…)" or "**VIP**" as typed (no link, no bold, no :red[...] directive, no $…$ formula).
# All but the pipe, which `rfm.dashboard.tables.markdown_table` escapes (in a table cell it means something).
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{}~])")
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


# GitHub-flavoured Markdown turns "https://…", "www.…" and "a@b.co" into links in the text itself, escapes
# or not: an invisible word joiner after the scheme, "www" or "@" keeps them text.
_AUTOLINK_STARTS = re.compile(r"(?i)\b(?:https?|ftp|mailto|www)(?=[:.])|@")
WORD_JOINER = "\u2060"


def markdown_text(text: str) -> str:
    """User text (a segment name, a playbook entry) for st.markdown: shown as typed, never as formatting
    or a link."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _AUTOLINK_STARTS.sub(lambda m: m.group(0) + WORD_JOINER, text))


def colored(text: str, color: str) -> str:
    """`text` (escaped as `markdown_text`) in a chart colour ("#1f77b4") for st.markdown, through Streamlit's
    own colour directive: no HTML, so the page needs no raw-HTML renderer; another colour: the text as is."""
    escaped = markdown_text(text)
    return f':color[{escaped}]{{foreground="{color}"}}' if _HEX_COLOR.fullmatch(color) else escaped


def date_range(first: date | None, last: date | None) -> str:
    """First and last day: "2010-12-01 to 2011-12-09" (a missing day: "–")."""
    return " to ".join(day.isoformat() if day else "–" for day in (first, last))


def figure(value: object, kind: str, currency: str) -> str:
    """One figure of a report (the cleaning report's rows) by its kind: "count" (4,372), "money" with
    cents (−£12.50), "dates" (a (first, last) pair: "2010-12-01 to 2011-12-09")."""
    if kind == "dates" and isinstance(value, tuple):
        return date_range(*value)
    number = float(value) if isinstance(value, numbers.Real) else None
    return money(number, currency, 2) if kind == "money" else count(number)


def plural(value: float, one: str, many: str | None = None) -> str:
    """ "1 order", "12 orders", "1,234 customers": whole numbers with their noun."""
    number = round(value)
    word = one if number == 1 else (many or f"{one}s")
    return f"{number:,} {word}"


def days(value: float) -> str:
    """Whole days: "15 days", "1 day"."""
    return plural(value, "day")


def orders(value: float) -> str:
    """Whole orders: "12 orders", "1 order"."""
    return plural(value, "order")


# Column name -> (header, kind). Kinds: money, share, count, days, orders, decimal, text.
COLUMNS: dict[str, tuple[str, str]] = {
    "customer_id": ("Customer", "text"),
    "segment": ("Segment", "text"),
    "cluster": ("Cluster", "count"),
    "name": ("Name", "text"),
    "default_name": ("Default name", "text"),
    "description": ("Description", "text"),
    "action": ("Recommended action", "text"),
    "customers": ("Customers", "count"),
    "customer_share": ("Customers %", "share"),
    "revenue": ("Revenue", "money"),
    "revenue_share": ("Revenue %", "share"),
    "recency": ("Recency (days)", "days"),
    "frequency": ("Orders", "orders"),
    "monetary": ("Spend", "money"),
    "recency_mean": ("Recency, mean (days)", "days"),
    "recency_median": ("Recency, median (days)", "days"),
    "frequency_mean": ("Orders, mean", "decimal"),
    "frequency_median": ("Orders, median", "decimal"),
    "monetary_mean": ("Spend, mean", "money"),
    "monetary_median": ("Spend, median", "money"),
    "r_score": ("R score", "count"),
    "f_score": ("F score", "count"),
    "m_score": ("M score", "count"),
    "rfm_segment": ("R×F segment", "text"),
    "country": ("Country", "text"),
    "snapshot_date": ("Snapshot", "text"),
    "model_version": ("Model version", "text"),
    "distance": ("Distance (model space)", "decimal"),
    "version": ("Version", "text"),
    "promoted": ("Promoted", "text"),
    "k": ("k", "count"),
    "created": ("Created (UTC)", "text"),
    "snapshot": ("Snapshot", "text"),
    "segments": ("Segments", "text"),
    "silhouette": ("Silhouette", "metric"),
    "davies_bouldin": ("Davies-Bouldin", "metric"),
    "calinski_harabasz": ("Calinski-Harabasz", "count"),
    "inertia": ("Inertia", "count"),
    "lines": ("Lines", "count"),
    "revenue_per_customer": ("Revenue per customer", "money"),
    "step": ("Step", "text"),
    "segment_description": ("Segment description", "text"),
    "recommended_action": ("Recommended action", "text"),
}


def header(column: str) -> str:
    """The human header of a column: "recency_mean" -> "Recency, mean (days)"; unknown names are
    spelled out ("smallest_cluster_share" -> "Smallest cluster share")."""
    known = COLUMNS.get(column)
    if known:
        return known[0]
    words = column.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# The printf formats of the number kinds that `st.column_config.NumberColumn` can write as this module
# does. Not money or shares: printf puts the minus after the currency sign ("£-76" where `money` writes
# "−£76") and writes a hyphen where `percent` writes a minus.
PRINTF_FORMATS: dict[str, str] = {"count": "%,d", "days": "%,.0f", "orders": "%,.0f",
                                  "decimal": "%,.1f", "metric": "%.3f"}


def kind(column: str) -> str:
    """The kind of a column (money, share, count, days, orders, decimal, metric, text); unknown: text."""
    return COLUMNS.get(column, ("", "text"))[1]


# Decimals of the number kinds when a table is written as text (what PRINTF_FORMATS writes in a grid).
KIND_DECIMALS: dict[str, int] = {"days": 0, "orders": 0, "decimal": 1, "metric": 3}


def cell(value: object, column_kind: str, currency: str, decimals: int | None = None) -> str:
    """A table cell as text by its column's kind, as the grid tables show it: money ("−£76", `decimals`
    places, 0 unless given), shares ("13.1%"), counts ("4,372"), days, orders and decimals; text as it is
    ("–" when missing)."""
    if column_kind == "text" or not isinstance(value, numbers.Real):
        return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    amount = float(value)
    if column_kind == "money":
        return money(amount, currency, decimals or 0)
    if column_kind == "share":
        return percent(amount)
    if column_kind == "count":
        return count(amount)
    return number(amount, KIND_DECIMALS.get(column_kind, 0) if decimals is None else decimals)


def printf_format(column_kind: str) -> str | None:
    """The `st.column_config.NumberColumn` format of a kind of column; None for text, money and shares
    (a table shows `money`'s and `percent`'s own text instead)."""
    return PRINTF_FORMATS.get(column_kind)


def column_formats(columns: Iterable[str]) -> dict[str, tuple[str, str, str | None]]:
    """For each column: its header, its kind and its printf format (None for text, money and shares),
    what `st.column_config` needs."""
    return {column: (header(column), kind(column), printf_format(kind(column))) for column in columns}


def money_columns(columns: Iterable[str]) -> list[str]:
    """The columns holding amounts of money, which a table shows as `money` writes them."""
    return [c for c in columns if kind(c) == "money"]


def share_columns(columns: Iterable[str]) -> list[str]:
    """The columns holding shares (0..1), which a table shows multiplied by 100."""
    return [c for c in columns if kind(c) == "share"]


__all__ = ["COLUMNS", "CURRENCY_SYMBOLS", "KIND_DECIMALS", "MINUS", "PRINTF_FORMATS", "cell", "colored",
           "column_formats", "count", "currency_prefix", "date_range", "days", "figure", "header", "kind",
           "markdown_text", "money", "money_columns", "number", "orders", "percent", "plural", "printf_format",
           "share_columns"]
