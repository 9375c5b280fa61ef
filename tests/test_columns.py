"""Recognising headers and applying the user's column mapping."""

import pytest

from rfm.data.columns import parse_map_args, resolve_mapping
from rfm.errors import DataError

UCI = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
UCI_II = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


def test_online_retail_headers_need_no_mapping():
    m = resolve_mapping(UCI)
    assert (m.customer_id, m.invoice_id, m.invoice_date, m.quantity, m.unit_price, m.country) == (
        "CustomerID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "Country")
    assert m.amount is None and not m.uses_amount


def test_online_retail_ii_headers_need_no_mapping():
    m = resolve_mapping(UCI_II)
    assert (m.customer_id, m.invoice_id, m.unit_price) == ("Customer ID", "Invoice", "Price")


def test_user_mapping_wins_and_amount_replaces_quantity_times_price():
    cols = ["client", "ts", "total", "qty", "receipt"]
    m = resolve_mapping(cols, parse_map_args(["customer_id=client", "invoice_date=ts", "amount=total",
                                              "invoice_id=receipt"]))
    assert m.customer_id == "client" and m.invoice_date == "ts" and m.amount == "total"
    assert m.quantity is None and m.uses_amount and m.country is None


def test_log_without_invoice_ids_or_country_is_fine():
    m = resolve_mapping(["Customer ID", "Date", "Amount"])
    assert m.invoice_id is None and m.country is None and m.amount == "Amount"


def test_missing_customer_column_names_file_and_columns():
    with pytest.raises(DataError, match=r"sales\.csv: no column for customer_id.*'Buyer'"):
        resolve_mapping(["Buyer", "InvoiceDate", "Quantity", "UnitPrice"], where="sales.csv")


def test_single_column_suggests_the_delimiter():
    with pytest.raises(DataError, match="delimiter"):
        resolve_mapping(["InvoiceNo;Quantity;InvoiceDate;UnitPrice;CustomerID"], where="x.csv")


def test_missing_revenue_columns_are_named():
    with pytest.raises(DataError, match="unit_price"):
        resolve_mapping(["CustomerID", "InvoiceDate", "Quantity"], where="x.csv")


def test_map_to_an_absent_column_is_refused():
    with pytest.raises(DataError, match="names no column"):
        resolve_mapping(UCI, {"customer_id": "Client"}, where="x.csv")


@pytest.mark.parametrize("arg", ["customer_id", "nonsense=Foo"])
def test_bad_map_arguments(arg):
    with pytest.raises(DataError):
        parse_map_args([arg])
