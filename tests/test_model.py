"""The segmentation model on the real Online Retail data, checked against independent computations."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from rfm.data.table import RfmResult
from rfm.errors import DataError, ModelError
from rfm.model import (
    FEATURES,
    FOUR_NAMES,
    NOT_SEGMENTED,
    NOT_SEGMENTED_NAME,
    ModelStore,
    revenue_concentration,
    segment_profiles,
    sweep,
    train_model,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def retail_sweep(retail: RfmResult):
    return sweep(retail.table, 2, 10)


@pytest.fixture(scope="module")
def retail_k4(retail: RfmResult):
    return train_model(retail, 4)


def reference_space(table: pd.DataFrame) -> np.ndarray:
    """The model's feature space computed independently: log1p, then z-scores (population std)."""
    positive = table[table["monetary"] > 0]
    return StandardScaler().fit_transform(np.log1p(positive[list(FEATURES)].to_numpy(dtype=float)))


@pytest.mark.realdata
def test_sweep_inertia_and_silhouette_match_scikit_learn(retail: RfmResult, retail_sweep) -> None:
    Z = reference_space(retail.table)
    assert retail_sweep.customers == len(Z)
    assert retail_sweep.excluded_customers == int((retail.table["monetary"] <= 0).sum())
    assert [m.k for m in retail_sweep.metrics] == list(range(2, 11))
    assert not retail_sweep.silhouette_sampled  # 4,3xx customers < 5,000: everyone
    for m in retail_sweep.metrics:
        labels = retail_sweep.labels[m.k]
        # Inertia of the sweep's own labelling, from scratch with pandas.
        frame = pd.DataFrame(Z, columns=["a", "b", "c"]).assign(label=labels)
        centred = frame[["a", "b", "c"]] - frame.groupby("label")[["a", "b", "c"]].transform("mean")
        assert m.inertia == pytest.approx(float((centred**2).to_numpy().sum()), rel=1e-9)
        # Silhouette: scikit-learn's on the same labels.
        assert m.silhouette == pytest.approx(silhouette_score(Z, labels), abs=1e-9)
        assert m.davies_bouldin == pytest.approx(davies_bouldin_score(Z, labels), rel=1e-9)
        assert m.calinski_harabasz == pytest.approx(calinski_harabasz_score(Z, labels), rel=1e-9)
        # The clustering itself is as good as the classic n_init=10 KMeans (within 1%).
        with threadpool_limits(1):  # threads only make KMeans on 3-D data slower on a shared machine
            reference = KMeans(n_clusters=m.k, n_init=10, random_state=0).fit(Z).inertia_
        assert m.inertia <= reference * 1.01, (m.k, m.inertia, reference)
        assert m.smallest_cluster_share == pytest.approx(np.bincount(labels).min() / len(labels))
    best = retail_sweep.for_k(retail_sweep.recommended_k)
    # k >= 3 (two segments are too coarse to act on) and no cluster under 5% of customers
    eligible = [m for m in retail_sweep.metrics if m.smallest_cluster_share >= 0.05 and m.k >= 3]
    assert best.silhouette == max(m.silhouette for m in eligible)
    assert best.k >= 3
    assert f"k={best.k}" in retail_sweep.reason


@pytest.mark.realdata
def test_sampled_silhouette_is_scikit_learns_seeded_sample(retail: RfmResult) -> None:
    result = sweep(retail.table, 3, 5, seed=3, silhouette_sample=1_000)
    Z = reference_space(retail.table)
    assert result.silhouette_sampled and result.silhouette_sample == 1_000
    assert "1,000" in result.silhouette_note
    for m in result.metrics:
        expected = silhouette_score(Z, result.labels[m.k], sample_size=1_000, random_state=3)
        assert m.silhouette == pytest.approx(expected, abs=1e-9)


@pytest.mark.realdata
def test_k4_segments_are_named_sensibly(retail: RfmResult, retail_k4) -> None:
    assert sorted(c.name for c in retail_k4.clusters) == sorted(FOUR_NAMES)
    assigned = retail_k4.assign(retail.table)
    means = assigned[assigned["cluster"] >= 0].groupby("segment")[["recency", "frequency", "monetary"]].mean()
    assert means["monetary"].idxmax() == "Champions"
    assert means["frequency"].idxmax() == "Champions"
    assert means["recency"].idxmin() == "Champions"
    assert means["monetary"].idxmin() == "Hibernating"
    assert means["frequency"].idxmin() == "Hibernating"
    assert means["recency"].idxmax() == "Hibernating"
    # At Risk last bought longer ago than Loyal Customers.
    assert means.loc["At Risk", "recency"] > means.loc["Loyal Customers", "recency"]


@pytest.mark.realdata
def test_centroids_are_in_original_units(retail: RfmResult, retail_k4) -> None:
    positive = retail.table[retail.table["monetary"] > 0]
    labels = retail_k4.predict(positive)
    logged = np.log1p(positive[list(FEATURES)].to_numpy(dtype=float))
    for cluster in retail_k4.clusters:
        # expm1 of the members' mean in log space = the centre mapped back through scaler and log1p.
        expected = np.expm1(logged[labels == cluster.id].mean(axis=0))
        got = [cluster.centroid[f] for f in FEATURES]
        assert got == pytest.approx(expected, rel=1e-2)  # KMeans stops at tol, not exact


@pytest.mark.realdata
def test_fast_predict_equals_the_pipeline(retail: RfmResult, retail_k4) -> None:
    table = retail.table
    values = table[list(FEATURES)].to_numpy(dtype=float)
    positive = values[:, 2] > 0
    ids = retail_k4.predict(values)
    assert (ids[positive] == retail_k4.pipeline.predict(values[positive])).all()
    assert (ids[~positive] == NOT_SEGMENTED).all() and (~positive).sum() > 0
    assert (retail_k4.predict(table) == ids).all()
    assert retail_k4.predict(values[0]).shape == (1,)
    row = values[np.flatnonzero(positive)[0]]
    assert retail_k4.predict(row)[0] == retail_k4.pipeline.predict(row.reshape(1, -1))[0]
    assert retail_k4.segment_name(NOT_SEGMENTED) == NOT_SEGMENTED_NAME


@pytest.mark.realdata
def test_one_row_at_a_time_scores_as_the_batch(retail: RfmResult, retail_k4) -> None:
    """The server's one-customer path (plain floats) gives the batch's ids for every real customer, and
    on points midway between two centres (where rounding could pick either) defers to the batch path."""
    values = retail.table[list(FEATURES)].to_numpy(dtype=float)
    batch = retail_k4.predict(values)
    one_by_one = np.array([retail_k4.predict(values[i:i + 1])[0] for i in range(len(values))])
    assert (one_by_one == batch).all()
    p = retail_k4.predictor
    for a in range(p.k):
        for b in range(a + 1, p.k):
            midway = np.expm1((p.centers[a] + p.centers[b]) / 2 * p.scale + p.mean)
            if (midway >= 0).all():
                assert p.nearest_one(*midway.tolist()) == p.nearest(midway.reshape(1, -1))[0]


@pytest.mark.realdata
def test_training_is_deterministic_and_reports_exclusions(retail: RfmResult, retail_k4) -> None:
    again = train_model(retail.table, 4, rfm_result=retail)
    assert np.array_equal(again.pipeline.named_steps["kmeans"].cluster_centers_,
                          retail_k4.pipeline.named_steps["kmeans"].cluster_centers_)
    assert [c.name for c in again.clusters] == [c.name for c in retail_k4.clusters]
    rows = retail_k4.metadata.rows
    non_positive = retail.table[retail.table["monetary"] <= 0]
    assert rows.excluded_customers == len(non_positive)
    assert rows.excluded_revenue == pytest.approx(non_positive["monetary"].sum(), abs=0.01)
    assert rows.trained_customers + rows.excluded_customers == len(retail.table)
    assert retail_k4.metadata.snapshot == retail.snapshot
    assert retail_k4.metadata.data_fingerprint == retail.fingerprint


@pytest.mark.realdata
@pytest.mark.parametrize("k", [3, 6, 9])
def test_names_for_other_k_are_unique(retail: RfmResult, k: int) -> None:
    model = train_model(retail.table, k)
    names = [c.name for c in model.clusters]
    assert len(set(names)) == k and all(names)


@pytest.mark.realdata
def test_revenue_concentration_matches_pandas(retail: RfmResult) -> None:
    result = revenue_concentration(retail.table["monetary"])
    spend = retail.table.loc[retail.table["monetary"] > 0, "monetary"].sort_values(ascending=False)
    n, total = len(spend), spend.sum()
    assert result.customers == n and result.revenue == pytest.approx(total)
    for p, share in result.top_shares.items():
        assert share == pytest.approx(spend.head(math.ceil(p * n)).sum() / total, rel=1e-12)
    # Gini from its definition: mean absolute difference over all pairs / (2 * mean).
    x = spend.to_numpy()
    pair_sum = sum(np.abs(x[i:i + 500, None] - x[None, :]).sum() for i in range(0, n, 500))
    assert result.gini == pytest.approx(pair_sum / (2 * n * n * x.mean()), rel=1e-9)
    xs, ys = zip(*result.lorenz, strict=True)
    assert (xs[0], ys[0]) == (0.0, 0.0) and xs[-1] == 1.0 and ys[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in itertools.pairwise(ys))
    half = round(n / 2)
    ascending = spend.sort_values()
    assert ys[50] == pytest.approx(ascending.head(half).sum() / total)


@pytest.mark.realdata
def test_segment_profiles_match_pandas(retail: RfmResult, retail_k4) -> None:
    assigned = retail_k4.assign(retail.table)
    profiles = segment_profiles(assigned).set_index("segment")
    assert profiles["customers"].sum() == len(retail.table)
    assert profiles["customer_share"].sum() == pytest.approx(1.0)
    assert profiles["revenue_share"].sum() == pytest.approx(1.0)
    for name, group in assigned.groupby("segment"):
        row = profiles.loc[name]
        assert row["customers"] == len(group)
        assert row["revenue"] == pytest.approx(group["monetary"].sum())
        assert row["revenue_share"] == pytest.approx(group["monetary"].sum() / retail.table["monetary"].sum())
        for feature in FEATURES:
            assert row[f"{feature}_median"] == pytest.approx(group[feature].median())
            assert row[f"{feature}_mean"] == pytest.approx(group[feature].mean())
    assert list(profiles["revenue"]) == sorted(profiles["revenue"], reverse=True)


def test_bad_k_and_too_few_customers() -> None:
    table = pd.DataFrame({"customer_id": list("abcde"), "recency": [1, 5, 30, 90, 200],
                          "frequency": [9, 4, 2, 1, 1], "monetary": [900.0, 300.0, 80.0, 20.0, -5.0]})
    with pytest.raises(ModelError, match="at least 2"):
        train_model(table, 1)
    with pytest.raises(ModelError, match="needs at least 5 customers"):
        train_model(table, 4)  # 4 customers with positive monetary
    with pytest.raises(ModelError, match="needs at least"):
        sweep(table, 2, 10)
    with pytest.raises(ModelError, match="larger than"):
        sweep(table, 3, 2)
    with pytest.raises(ModelError, match="no column"):
        train_model(table.drop(columns="monetary"), 2)
    model = train_model(table, 2)
    assert model.predict(table)[-1] == NOT_SEGMENTED


def test_bad_scoring_input_is_a_one_line_error() -> None:
    model = ModelStore(REPO / "models").load()
    for bad in ([1.0, 2.0], [[np.nan, 1.0, 2.0]], [[-1.0, 1.0, 2.0]], [["a", "b", "c"]]):
        with pytest.raises(DataError):
            model.predict(bad)
    with pytest.raises(DataError, match="missing column"):
        model.predict(pd.DataFrame({"recency": [1]}))


def test_shipped_default_model_loads_and_scores() -> None:
    store = ModelStore(REPO / "models")
    assert store.current_version() in store.list_versions()
    model = store.load()
    assert model.k == 4 and sorted(c.name for c in model.clusters) == sorted(FOUR_NAMES)
    best = model.clusters[0]
    assert best.name == "Champions"
    # A customer exactly at the Champions centroid is a Champion.
    assert model.predict(np.array([[best.centroid[f] for f in FEATURES]]))[0] == best.id
    meta = model.metadata
    for key in ("version", "created", "k", "features", "transform", "snapshot", "returns_policy",
                "data_fingerprint", "rows", "metrics", "sweep", "clusters", "libraries", "predictor"):
        assert getattr(meta, key) is not None, key
    assert set(meta.clusters[0].centroid.model_dump()) == set(FEATURES)
    directory = REPO / "models" / model.version
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "metadata.json", "model.skops"]
    assert (directory / "model.skops").stat().st_size < 100_000
    assert meta.sha256 is None  # the old in-metadata hash is gone: manifest.json vouches for the files
    assert store.load_verified(model.version).pipeline.predict(np.array([[1.0, 30.0, 9000.0]]))[0] == 0
