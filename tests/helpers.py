"""Small builders for hand-written transaction logs used by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


def write_log(path: Path, rows: list[list[object]], header: list[str] | None = None, **to_csv: object) -> Path:
    """Write rows (in the Online Retail schema unless `header` says otherwise) as CSV."""
    frame = pd.DataFrame(rows, columns=header or HEADER)
    frame.to_csv(path, index=False, **to_csv)
    return path


def line(invoice: str, quantity: float, date: str, price: float, customer: object, stock: str = "A1",
         country: str = "United Kingdom") -> list[object]:
    return [invoice, stock, f"item {stock}", quantity, date, price, customer, country]
