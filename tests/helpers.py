"""Small builders for hand-written transaction logs used by the unit tests."""

from __future__ import annotations

import socket
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


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
