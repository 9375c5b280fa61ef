"""Small builders for hand-written transaction logs used by the unit tests."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rfm.data.cleaning import CleaningReport

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


def three_group_table(seed: int, sizes: Sequence[int] = (60, 80, 100)) -> pd.DataFrame:
    """A small synthetic RFM table: three well separated groups (recent, frequent, big spenders; middling;
    long gone) plus one customer whose returns cancel their purchases (no net revenue)."""
    rng = np.random.default_rng(seed)
    centres = [(5, 20, 5000), (60, 4, 800), (250, 1, 90)]
    rows = [np.column_stack([rng.poisson(r, n) + 1, rng.poisson(f, n) + 1, rng.gamma(4, m / 4, n)])
            for (r, f, m), n in zip(centres, sizes, strict=True)]
    values = np.vstack([*rows, [[30, 1, -12.5]]])
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(values))], "recency": values[:, 0],
                         "frequency": values[:, 1], "monetary": values[:, 2]})


def assert_same_report(got: CleaningReport, expected: CleaningReport) -> None:
    """Every figure of two cleaning reports alike; amounts to the cent (sums of floats in another order)."""
    for field, value in expected.as_dict().items():
        if isinstance(value, float):
            assert abs(got.as_dict()[field] - value) < 0.005, field
        else:
            assert got.as_dict()[field] == value, field
