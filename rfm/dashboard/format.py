"""The dashboard's one number format: money with its currency and thousands separators, percentages
with one decimal, whole days and orders, human column headers.

Why one module: the same figure used to read "4541272" in a metric, "4,541,272" in a caption and
"13.05%" beside "3%" in a table. Every page formats through these functions (text) and through
`column_formats` (the printf formats of `st.column_config`), so a figure reads the same wherever it
appears. Pure Python, no Streamlit: unit-tested in tests/test_format.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
    """An amount with its currency and thousands separators: "£4,541,272", "−£12.50"."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{abs(value):,.{decimals}f}"
    negative = value < 0 and text.strip("0.,") != ""  # never "−£0"
    return f"{MINUS if negative else ''}{currency_prefix(currency)}{text}"


def percent(share: float | None, decimals: int = 1) -> str:
    """A share (0.1305) as a percentage with one decimal: "13.1%"; never "−0.0%"."""
    if share is None or not math.isfinite(share):
        return "–"
    text = f"{abs(share) * 100:.{decimals}f}"
    negative = share < 0 and text.strip("0.") != ""
    return f"{MINUS if negative else ''}{text}%"


def count(value: float | None) -> str:
    """A whole number with thousands separators: "4,372"."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{round(value):,}"


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


def printf_format(kind: str, currency: str) -> str | None:
    """The `st.column_config.NumberColumn` format of a kind of column (None: not a number column).
    Shares are shown as percentages of a column already multiplied by 100 (`display_frame`)."""
    return {"money": money_format(currency), "share": "%.1f%%", "count": "%,d", "days": "%,.0f", "orders": "%,.0f",
            "decimal": "%,.1f", "metric": "%.3f"}.get(kind)


def money_format(currency: str, decimals: int = 0) -> str:
    """The printf format of a money column: "£%,.0f" (or with cents, "£%,.2f")."""
    return f"{currency_prefix(currency).replace('%', '%%')}%,.{decimals}f"


def column_formats(columns: Iterable[str], currency: str) -> dict[str, tuple[str, str | None]]:
    """For each column: its header and printf format (None for text), what `st.column_config` needs."""
    out: dict[str, tuple[str, str | None]] = {}
    for column in columns:
        kind = COLUMNS.get(column, ("", "text"))[1]
        out[column] = (header(column), printf_format(kind, currency))
    return out


def share_columns(columns: Iterable[str]) -> list[str]:
    """The columns holding shares (0..1), which a table shows multiplied by 100."""
    return [c for c in columns if COLUMNS.get(c, ("", ""))[1] == "share"]


__all__ = ["COLUMNS", "CURRENCY_SYMBOLS", "MINUS", "column_formats", "count", "currency_prefix", "days", "header",
           "money", "money_format", "orders", "percent", "plural", "printf_format", "share_columns"]
