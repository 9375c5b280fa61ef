"""The RFM table on the real UCI Online Retail data against an independent pandas computation."""

import numpy as np
import pandas as pd
import pytest

from rfm.data.table import RfmOptions, compute_rfm
from rfm.segments import segment_of


def pandas_rfm(raw: pd.DataFrame, returns: str) -> pd.DataFrame:
    """The cleaning rules and RFM definitions, written independently with pandas."""
    df = raw[raw["CustomerID"].notna() & (raw["UnitPrice"] > 0)].drop_duplicates()
    cancel = df["InvoiceNo"].astype(str).str.upper().str.startswith("C")
    purchases = df[(df["Quantity"] > 0) & ~cancel].copy()
    refunds = df[(df["Quantity"] < 0) & cancel].copy()
    snapshot = max(purchases["InvoiceDate"].max(), refunds["InvoiceDate"].max()).normalize() + pd.Timedelta(days=1)
    for frame in (purchases, refunds):
        frame["customer_id"] = frame["CustomerID"].astype("int64").astype(str)
        frame["amount"] = frame["Quantity"] * frame["UnitPrice"]
    grouped = purchases.groupby("customer_id")
    table = pd.DataFrame({
        "recency": (snapshot - grouped["InvoiceDate"].max().dt.normalize()).dt.days,
        "frequency": grouped["InvoiceNo"].nunique(),
        "monetary": grouped["amount"].sum(),
    })
    if returns == "net":
        table["monetary"] = table["monetary"].add(refunds.groupby("customer_id")["amount"].sum(), fill_value=0)
        table = table.dropna(subset=["recency"])
    n = len(table)
    for column, score, ascending in (("recency", "r_score", False), ("frequency", "f_score", True),
                                     ("monetary", "m_score", True)):
        rank = table[column].round(2).rank(method="min", ascending=ascending)
        table[score] = (np.floor(5 * (rank - 1) / n) + 1).astype(int)
    return table.sort_index()


@pytest.fixture(scope="module")
def raw(online_retail_parquet):
    return pd.read_parquet(online_retail_parquet)


@pytest.mark.realdata
@pytest.mark.parametrize("returns", ["net", "exclude"])
def test_matches_independent_pandas_computation(online_retail_parquet, raw, returns):
    ours = compute_rfm([online_retail_parquet], options=RfmOptions(returns=returns)).table.set_index("customer_id")
    expected = pandas_rfm(raw, returns)
    assert len(ours) == len(expected) == 4338
    assert list(ours.index) == list(expected.index)
    assert (ours["recency"] == expected["recency"]).all()
    assert (ours["frequency"] == expected["frequency"]).all()
    assert np.abs(ours["monetary"] - expected["monetary"]).max() < 0.005
    for score in ("r_score", "f_score", "m_score"):
        assert (ours[score] == expected[score]).all(), score
    expected_segments = [segment_of(r, f) for r, f in zip(expected["r_score"], expected["f_score"], strict=True)]
    assert list(ours["rfm_segment"]) == expected_segments


@pytest.mark.realdata
def test_csv_gz_gives_the_same_table_as_parquet(online_retail_parquet, online_retail_csv):
    from_parquet = compute_rfm([online_retail_parquet]).table
    from_csv = compute_rfm([online_retail_csv]).table
    pd.testing.assert_frame_equal(from_parquet, from_csv)


@pytest.mark.realdata
def test_online_retail_ii_headers_are_recognised(online_retail_ii_parquet):
    result = compute_rfm([online_retail_ii_parquet])
    assert result.snapshot.isoformat() == "2010-12-10"
    assert 4000 < len(result.table) <= 4383
    assert result.table["recency"].min() >= 1


@pytest.mark.realdata
def test_cli_csv_equals_the_library_table(online_retail_parquet, tmp_path):
    """`rfm table` writes CSV straight from DuckDB; it must hold exactly what compute_rfm returns."""
    import subprocess
    import sys

    out = tmp_path / "rfm.csv"
    done = subprocess.run([sys.executable, "-m", "rfm", "table", "--data", str(online_retail_parquet),
                           "--returns", "exclude", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)
    expected = compute_rfm([online_retail_parquet], options=RfmOptions(returns="exclude")).table
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
