"""Canonical column names and how a log's own headers map onto them.

Every source is read into the same canonical columns so that the RFM query is written once.
The UCI "Online Retail" and "Online Retail II" headers (and common variants) are recognised without
a mapping; anything else is mapped by the user with `--map canonical=source`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rfm.errors import DataError

CUSTOMER_ID = "customer_id"
INVOICE_ID = "invoice_id"
INVOICE_DATE = "invoice_date"
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"
AMOUNT = "amount"
COUNTRY = "country"

CANONICAL_COLUMNS: tuple[str, ...] = (
    CUSTOMER_ID,
    INVOICE_ID,
    INVOICE_DATE,
    QUANTITY,
    UNIT_PRICE,
    AMOUNT,
    COUNTRY,
)

# Headers recognised without a mapping, compared after lower-casing and dropping everything but
# letters and digits ("Customer ID", "customer_id" and "CustomerID" are all "customerid").
KNOWN_HEADERS: dict[str, tuple[str, ...]] = {
    CUSTOMER_ID: ("customerid", "customer", "custid", "customerno", "customernumber", "clientid"),
    INVOICE_ID: ("invoiceid", "invoiceno", "invoice", "invoicenumber", "orderid", "orderno", "transactionid"),
    INVOICE_DATE: ("invoicedate", "date", "orderdate", "transactiondate", "purchasedate", "invoicedatetime"),
    QUANTITY: ("quantity", "qty", "units"),
    UNIT_PRICE: ("unitprice", "price", "itemprice"),
    AMOUNT: ("amount", "lineamount", "linetotal", "revenue", "sales", "totalprice", "value"),
    COUNTRY: ("country", "countrycode"),
}

_MAP_ARG = re.compile(r"^\s*([a-z_]+)\s*=\s*(.+?)\s*$")


def normalise_header(name: str) -> str:
    """Header key used for recognition: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def parse_map_args(items: Iterable[str]) -> dict[str, str]:
    """Turn `--map canonical=source` arguments into a dict, rejecting unknown canonical names."""
    mapping: dict[str, str] = {}
    for item in items:
        match = _MAP_ARG.match(item)
        if not match:
            raise DataError(f"--map {item!r}: expected canonical=source, e.g. customer_id=\"Customer ID\"")
        canonical, source = match.group(1), match.group(2).strip("\"'")
        if canonical not in CANONICAL_COLUMNS:
            raise DataError(
                f"--map {item!r}: {canonical!r} is not a canonical column; "
                f"expected one of {', '.join(CANONICAL_COLUMNS)}"
            )
        mapping[canonical] = source
    return mapping


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each canonical column (None: the log has no such column)."""

    customer_id: str
    invoice_date: str
    invoice_id: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    amount: str | None = None
    country: str | None = None

    @property
    def uses_amount(self) -> bool:
        """True when revenue comes from a line-amount column rather than quantity x unit price."""
        return self.quantity is None or self.unit_price is None

    def as_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in CANONICAL_COLUMNS}

    def source_columns(self) -> set[str]:
        return {value for value in self.as_dict().values() if value is not None}


def resolve_mapping(
    columns: Iterable[str], overrides: Mapping[str, str] | None = None, *, where: str = "the log"
) -> ColumnMapping:
    """Map the source's columns onto canonical ones: user overrides first, then known headers.

    Raises a DataError naming `where` (the file) and the missing column when the log lacks what the
    RFM figures need: a customer, a date, and either quantity and unit price or a line amount.
    """
    columns = list(columns)
    overrides = dict(overrides or {})
    if len(columns) == 1:
        raise DataError(f"{where}: only one column was found ({columns[0][:60]!r}). {_delimiter_hint(columns)}")
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(normalise_header(column), column)

    found: dict[str, str] = {}
    for canonical, source in overrides.items():
        if source not in columns:
            raise DataError(
                f"{where}: --map {canonical}={source!r} names no column of the file; "
                f"its columns are {_quote_list(columns)}"
            )
        found[canonical] = source
    taken = set(found.values())
    for canonical, keys in KNOWN_HEADERS.items():
        if canonical in found:
            continue
        for key in (normalise_header(canonical), *keys):
            match = by_key.get(key)
            if match is not None and match not in taken:
                found[canonical] = match
                taken.add(match)
                break

    if AMOUNT in overrides or not (QUANTITY in found and UNIT_PRICE in found):
        # A line amount was asked for, or quantity x price is not available: revenue is the amount.
        if AMOUNT not in found:
            missing = [c for c in (QUANTITY, UNIT_PRICE) if c not in found]
            raise DataError(
                f"{where}: no column for {' and '.join(missing)} (nor a line {AMOUNT}); "
                f"its columns are {_quote_list(columns)}. "
                f"Map them with --map {missing[0]}=\"Your Column\" or --map amount=\"Line Total\""
            )
        found.pop(QUANTITY, None)
        found.pop(UNIT_PRICE, None)
    else:
        found.pop(AMOUNT, None)

    for required in (CUSTOMER_ID, INVOICE_DATE):
        if required not in found:
            raise DataError(
                f"{where}: no column for {required} (expected a header like "
                f"{_quote_list(_examples(required))}); its columns are {_quote_list(columns)}. "
                f'Map it with --map {required}="Your Column"'
            )
    return ColumnMapping(**found)


def _examples(canonical: str) -> list[str]:
    return {
        CUSTOMER_ID: ["CustomerID", "Customer ID"],
        INVOICE_DATE: ["InvoiceDate", "Date"],
    }.get(canonical, [canonical])


def _delimiter_hint(columns: list[str]) -> str:
    """A single column whose name holds separators means the delimiter was guessed wrong."""
    for sep in (";", "\t", "|", ","):
        if sep in columns[0]:
            shown = "\\t" if sep == "\t" else sep
            return f"The file looks {shown!r}-delimited: pass --delimiter '{shown}'"
    return "Is the delimiter right (--delimiter)?"


def _quote_list(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")
