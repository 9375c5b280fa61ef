"""Deterministic synthetic transaction logs in the UCI Online Retail schema.

A fresh machine has no retailer data, so the dashboard, the default model and the benchmarks run on
this. Its shape follows the real log: heavy-tailed spend and order counts (a few wholesalers, many
one-off buyers), customers who churn at different times, about a quarter of the lines without a
customer, cancellations (invoice "C...") of earlier purchases, zero-price lines, stock adjustments
and a few exact duplicate lines. Generated in chunks, so 100 million lines need little memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rfm.errors import DataError

DEMO_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                "CustomerID", "Country")
START = np.datetime64("2010-12-01T08:00")
END = np.datetime64("2011-12-09T18:00")
LINES_PER_CUSTOMER = 115  # 10 million lines come from about 70,000 customers
INVOICES_PER_CHUNK = 50_000

_COUNTRIES = np.array(["United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium",
                       "Switzerland", "Portugal", "Australia", "Norway", "Italy", "Sweden", "Denmark"])
_COUNTRY_WEIGHTS = np.array([0.89, 0.022, 0.02, 0.015, 0.01, 0.008, 0.007, 0.006, 0.005, 0.004, 0.003,
                             0.004, 0.003, 0.003])
_WORDS = np.array(["WHITE", "RED", "HEART", "VINTAGE", "LANTERN", "HANGING", "SET OF 3", "CAKE", "TINS",
                   "BAG", "JUMBO", "RETROSPOT", "REGENCY", "TEACUP", "SAUCER", "CANDLE", "HOLDER",
                   "PARTY", "BUNTING", "GLASS", "STAR", "CHRISTMAS", "PAPER", "CHAIN", "KIT", "BOX"])


def generate(rows: int, seed: int = 7) -> Iterator[pa.Table]:
    """Yield pyarrow tables (chunks) that together hold exactly `rows` lines."""
    if rows < 1:
        raise DataError("--rows must be at least 1")
    rng = np.random.default_rng(seed)
    customers = max(20, rows // LINES_PER_CUSTOMER)
    catalog = _catalog(rng, 4000)
    profile = _customers(rng, customers)
    invoice_no = 536365
    written = 0
    # Small logs need fewer invoices than a full chunk (about 18 lines an invoice).
    per_chunk = min(INVOICES_PER_CHUNK, rows // 15 + 100)
    while written < rows:
        chunk = _chunk(rng, catalog, profile, invoice_no, per_chunk)
        invoice_no += per_chunk
        take = min(rows - written, chunk.num_rows)
        written += take
        yield chunk.slice(0, take)


def write_demo(out: str | os.PathLike[str], rows: int = 200_000, seed: int = 7) -> int:
    """Write a demo log to `out` (.parquet, .csv or .csv.gz); return the number of lines written."""
    path = Path(out)
    name = path.name.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    total = 0
    if name.endswith(".parquet"):
        writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        for table in generate(rows, seed):
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=1_000_000)
            total += table.num_rows
        assert writer is not None
        writer.close()
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        stream = pa.CompressedOutputStream(str(tmp), "gzip") if name.endswith(".gz") else pa.OSFile(str(tmp), "wb")
        with stream:
            writer = None
            for table in generate(rows, seed):
                table = table.set_column(4, "InvoiceDate", pa.compute.strftime(table["InvoiceDate"],
                                                                             format="%Y-%m-%d %H:%M:%S"))
                if writer is None:
                    writer = pacsv.CSVWriter(stream, table.schema,
                                             write_options=pacsv.WriteOptions(quoting_style="needed"))
                writer.write_table(table)
                total += table.num_rows
            assert writer is not None
            writer.close()
    else:
        raise DataError(f"{out}: demo data is written as .parquet, .csv or .csv.gz")
    os.replace(tmp, path)
    return total


def _catalog(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    codes = np.array([f"{20000 + i}" for i in range(size)])
    words = rng.integers(0, len(_WORDS), size=(size, 3))
    descriptions = np.array([" ".join(_WORDS[w]) for w in words])
    prices = np.round(np.exp(rng.normal(0.8, 0.8, size)), 2).clip(0.1, 300)
    popularity = 1.0 / np.arange(1, size + 1) ** 0.9
    return {"code": codes, "description": descriptions, "price": prices,
            "popularity": popularity / popularity.sum()}


def _customers(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Heavy-tailed activity (orders) and basket size; each customer active in a window."""
    span = (END - START).astype("timedelta64[m]").astype(np.int64)
    start = rng.uniform(0, 0.9, count) * span
    # Many customers churn: their activity ends long before the log does.
    churned = rng.random(count) < 0.45
    end = np.where(churned, start + rng.uniform(0.02, 0.6, count) * (span - start), span)
    activity = np.exp(rng.normal(0, 1.3, count))
    basket = np.exp(rng.normal(0, 0.9, count))
    country = rng.choice(len(_COUNTRIES), size=count, p=_COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum())
    return {"id": np.arange(12346, 12346 + count), "start": start, "end": end,
            "activity": activity / activity.sum(), "basket": basket, "country": country}


def _chunk(rng: np.random.Generator, catalog: dict[str, np.ndarray], profile: dict[str, np.ndarray],
           first_invoice: int, n_inv: int) -> pa.Table:
    guest = rng.random(n_inv) < 0.09  # guest checkouts: about a quarter of lines (larger baskets)
    cust = rng.choice(len(profile["id"]), size=n_inv, p=profile["activity"])
    offset = profile["start"][cust] + rng.random(n_inv) * (profile["end"][cust] - profile["start"][cust])
    minutes = offset.astype(np.int64)
    # Shops are open 8:00-18:00: keep the day, fold the time into opening hours.
    day, minute = minutes // 1440, minutes % 1440
    when = np.datetime64("2010-12-01T00:00") + (day * 1440 + 480 + minute % 600).astype("timedelta64[m]")
    lines_per = np.maximum(1, rng.geometric(1 / 15, n_inv) + np.where(guest, rng.integers(10, 60, n_inv), 0))
    cancel = (~guest) & (rng.random(n_inv) < 0.02)

    inv_idx = np.repeat(np.arange(n_inv), lines_per)
    n = inv_idx.size
    product = rng.choice(catalog["code"].size, size=n, p=catalog["popularity"])
    basket = np.where(guest[inv_idx], 1.0, profile["basket"][cust[inv_idx]])
    quantity = np.maximum(1, np.round(np.exp(rng.normal(1.2, 1.0, n)) * basket)).astype(np.int64)
    price = catalog["price"][product] * np.where(rng.random(n) < 0.1, 0.85, 1.0)
    price = np.round(price, 2)
    quantity = np.where(cancel[inv_idx], -np.maximum(1, quantity // rng.integers(1, 4, n)), quantity)
    zero_price = rng.random(n) < 0.002
    price = np.where(zero_price, 0.0, price)
    # Stock adjustments: negative quantity, no customer, zero price, on a normal invoice.
    adjustment = rng.random(n) < 0.003
    quantity = np.where(adjustment, -rng.integers(1, 200, n), quantity)
    price = np.where(adjustment, 0.0, price)

    invoice = np.char.add(np.where(cancel, "C", ""), (first_invoice + np.arange(n_inv)).astype(str))[inv_idx]
    customer = profile["id"][cust][inv_idx].astype(np.float64)
    customer_null = guest[inv_idx] | adjustment
    country = _COUNTRIES[np.where(guest, 0, profile["country"][cust])][inv_idx]

    table = pa.table({
        "InvoiceNo": pa.array(invoice),
        "StockCode": pa.array(catalog["code"][product]),
        "Description": pa.array(catalog["description"][product]),
        "Quantity": pa.array(quantity),
        "InvoiceDate": pa.array(when[inv_idx].astype("datetime64[s]")),
        "UnitPrice": pa.array(price),
        "CustomerID": pa.array(customer.astype(np.int64), mask=customer_null),
        "Country": pa.array(country),
    })
    # About 0.5% of lines are written twice, as in the real log.
    dup = np.flatnonzero(rng.random(n) < 0.005)
    order = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
    return table.take(pa.array(order))

