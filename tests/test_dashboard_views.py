"""The dashboard's pure layer (rfm.dashboard.views, rfm.dashboard.charts) and what the pages show from
rfm.service (insights, segmentation), checked against direct computations."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from rfm import segments as rf_segments
from rfm.dashboard import charts, views
from rfm.errors import ModelError
from rfm.model import ModelStore, revenue_concentration, train_model
from rfm.service import datasets, insights, models, segmentation

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(demo_table: pd.DataFrame):  # type: ignore[no-untyped-def]
    return train_model(demo_table, 4)


def test_load_dataset_adds_country_and_date_range(demo_parquet: Path, demo_table: pd.DataFrame) -> None:
    dataset = datasets.load_dataset(datasets.file_request([demo_parquet]))
    pd.testing.assert_frame_equal(dataset.customers.drop(columns="country"), demo_table)
    raw = pd.read_parquet(demo_parquet)
    known = raw.dropna(subset=["CustomerID"])
    one = known.groupby("CustomerID")["Country"].agg(lambda s: s.mode().iloc[0])
    got = dataset.customers.set_index("customer_id")["country"]
    single = one[known.groupby("CustomerID")["Country"].nunique() == 1]
    ids = [str(int(i)) for i in single.index if str(int(i)) in got.index]
    assert ids and all(got[i] == single[float(i)] for i in ids[:200])
    assert dataset.first_date is not None and dataset.last_date is not None
    assert dataset.last_date < dataset.snapshot
    assert dataset.first_date >= pd.Timestamp(raw["InvoiceDate"].min()).date()


def test_heatmap_data_matches_pandas(demo_table: pd.DataFrame) -> None:
    mean, count = insights.rf_heatmap_data(demo_table)
    for r in range(1, 6):
        for f in range(1, 6):
            cell = demo_table[(demo_table["r_score"] == r) & (demo_table["f_score"] == f)]
            assert count.loc[r, f] == len(cell)
            if len(cell):
                assert mean.loc[r, f] == pytest.approx(cell["monetary"].mean())
    assert count.to_numpy().sum() == len(demo_table)


def test_filter_and_export(demo_parquet: Path, model) -> None:  # type: ignore[no-untyped-def]
    dataset = datasets.load_dataset(datasets.file_request([demo_parquet]))
    applied = segmentation.apply(dataset, model)
    assigned = applied.assigned
    name = model.segment_name(2)
    rows = segmentation.export_frame(applied, segmentation.ExportFilter(segments=(name.upper(),), min_monetary=100))
    expected = assigned[(assigned["segment"] == name) & (assigned["monetary"] >= 100)]
    assert set(rows["customer_id"]) == set(expected["customer_id"]) and len(rows) == len(expected)
    assert rows["monetary"].is_monotonic_decreasing
    assert list(rows.columns) == list(segmentation.EXPORT_COLUMNS)
    assert set(rows["snapshot_date"]) == {dataset.snapshot.isoformat()} and set(rows["model_version"]) == {"(unsaved)"}
    back = pd.read_csv(__import__("io").BytesIO(segmentation.export_csv(rows)), dtype={"customer_id": str})
    assert list(back["customer_id"]) == list(rows["customer_id"])
    assert len(segmentation.filter_customers(applied, segmentation.ExportFilter())) == len(assigned)
    with pytest.raises(ModelError, match="no segment 'nope'"):
        segmentation.export_frame(applied, segmentation.ExportFilter(segments=("nope",)))


def test_renames_and_swaps(model) -> None:  # type: ignore[no-untyped-def]
    original = views.naming_table(model)
    edited = original.copy()
    edited.loc[0, "name"], edited.loc[1, "name"] = original.loc[1, "name"], original.loc[0, "name"]
    edited.loc[2, "name"] = "  Big   Spenders "
    changes = views.renames(original, edited)
    assert changes == {0: original.loc[1, "name"], 1: original.loc[0, "name"], 2: "  Big   Spenders "}
    renamed = model.renamed_many(changes)
    assert [renamed.segment_name(i) for i in range(3)] == [original.loc[1, "name"], original.loc[0, "name"],
                                                            "Big Spenders"]
    edited.loc[3, "name"] = "big spenders"
    with pytest.raises(ModelError):
        model.renamed_many(views.renames(original, edited))


def test_service_rename_is_all_or_nothing_and_takes_names_or_ids(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    store = ModelStore(tmp_path)
    version = store.save(model)
    names = [c.name for c in model.clusters]
    before = (tmp_path / version / "metadata.json").read_bytes()
    with pytest.raises(ModelError):
        models.rename(store, version, {0: "New", 1: "new"})
    assert (tmp_path / version / "metadata.json").read_bytes() == before
    models.rename(store, version, {names[0].lower(): names[1], "1": names[0]})
    assert [c.name for c in store.load(version).clusters][:2] == [names[1], names[0]]
    assert not list(tmp_path.glob(".tmp-*")) and "__renaming" not in (tmp_path / version / "metadata.json").read_text()


def test_a_colour_belongs_to_a_name_across_versions_and_spellings(model) -> None:  # type: ignore[no-untyped-def]
    before = charts.segment_colors(model)
    assert len(set(before.values())) == len(before)  # every segment of a model told apart
    assert before["Champions"] == charts.NAME_COLORS["champions"]
    # "At-Risk" (k=4 default) and "At Risk" (the grid's name, other k) are one name, one colour.
    assert charts.name_color("At-Risk") == charts.name_color("at risk") == charts.GRID_COLORS["at risk"]
    # A renamed segment takes its new name's colour, and that name has the same colour in any model.
    renamed = model.renamed(1, "Regulars")
    assert charts.segment_colors(renamed)["Regulars"] == charts.name_color("Regulars")
    other = model.renamed(2, "Regulars").renamed(1, "Someone Else")
    assert charts.segment_colors(other)["Regulars"] == charts.segment_colors(renamed)["Regulars"]
    assert charts.segment_order(renamed)[1] == "Regulars"


def test_spend_tiers_of_one_name_get_shades_of_its_colour() -> None:
    colors = charts.name_colors(["At Risk (High Spend)", "At Risk (Low Spend)", "Champions"])
    assert colors["At Risk (High Spend)"] == charts.NAME_COLORS["atrisk"]
    assert colors["At Risk (Low Spend)"] not in (colors["At Risk (High Spend)"], colors["Champions"])


def test_grid_labels_never_split_a_word(demo_table: pd.DataFrame) -> None:
    spec = charts.vega_lite_spec(charts.rf_grid_chart(insights.grid_frame(demo_table)))
    cells = next(iter(spec["datasets"].values()))
    words = {w for name in rf_segments.SEGMENTS for w in charts.grid_label(name).replace("\n", " ").split()}
    for cell in cells:
        lines = cell["label"].split("\n")
        assert all(line in words or line.startswith("(") or " " in line for line in lines), lines
    assert charts.grid_label("hibernating") == "Hibernating"
    assert charts.grid_label("potential loyalists") == "Potential\nLoyalists"


def test_every_sweep_panel_marks_recommended_and_selected_k() -> None:
    metrics = pd.DataFrame({"k": range(2, 11), "inertia": range(90, 0, -10), "silhouette": [0.3] * 9,
                            "davies_bouldin": [0.8, 0.9, 1.4, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                            "calinski_harabasz": [100.0] * 9, "smallest_cluster_share": [0.1] * 9})
    for column, _, y_title in charts.SWEEP_PANELS:
        spec = charts.vega_lite_spec(charts.sweep_panel(metrics, column, 4, 7))
        texts = [layer["mark"].get("color") for layer in spec["layer"] if layer["mark"]["type"] == "text"]
        labels = [d["label"] for data in spec["datasets"].values() for d in data if "label" in d]
        assert "recommended k=4" in labels and "selected k=7" in labels, column
        assert texts == [charts.RECOMMENDED_COLOR, charts.SELECTED_COLOR]
        rule = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "rule")
        assert rule["encoding"]["x"]["field"] == "k"  # a vertical rule at k, not a point on the curve
        line = spec["layer"][0]
        assert line["encoding"]["x"]["title"] == "k (number of segments)"
        assert line["encoding"]["y"]["title"] == y_title
    same = charts.vega_lite_spec(charts.sweep_panel(metrics, "silhouette", 4, 4))
    assert [d["label"] for data in same["datasets"].values() for d in data if "label" in d] == [
        "recommended = selected k=4"]


def test_heatmap_colour_scale_is_fixed_to_the_unfiltered_range(demo_table: pd.DataFrame) -> None:
    full = insights.rf_heatmap_data(demo_table)[0]
    domain = charts.heatmap_domain(full)
    assert domain == (pytest.approx(float(full.min().min())), pytest.approx(float(full.max().max())))
    some = demo_table.loc[demo_table["r_score"] >= 4]
    spec = charts.vega_lite_spec(charts.rf_heatmap(*insights.rf_heatmap_data(some), currency="EUR", domain=domain))
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert scale["domain"] == [pytest.approx(domain[0]), pytest.approx(domain[1])]
    cells = next(iter(spec["datasets"].values()))
    assert any("€" in c["label"] for c in cells)


def test_share_chart_has_no_grey_legend_and_negative_labels_sit_left(model) -> None:  # type: ignore[no-untyped-def]
    summary = pd.DataFrame({"segment": ["A", "B"], "customer_share": [0.6, 0.4], "revenue_share": [1.1, -0.1]})
    spec = charts.segment_share_chart(summary, {"A": "#111111", "B": "#222222"})
    alt.LayerChart.from_dict(spec)  # a valid Vega-Lite spec (validated against the schema)
    bars, right, left = spec["layer"]
    assert bars["encoding"]["opacity"]["legend"] is None and bars["encoding"]["color"]["legend"] is None
    assert "light bar" in spec["title"]["subtitle"]
    assert right["mark"]["align"] == "left" and left["mark"]["align"] == "right"
    assert left["transform"][0]["filter"] == "datum.negative" and right["transform"][0]["filter"] == "!datum.negative"
    labels = next(iter(spec["datasets"].values()))
    assert {d["label"] for d in labels} == {"60.0%", "40.0%", "110.0%", "−10.0%"}


def test_position_chart_ticks_only_powers_of_ten(model) -> None:  # type: ignore[no-untyped-def]
    position = insights.customer_position(model, 15, 12, 540.0)
    fig = charts.position_chart(position, {"recency": 15, "frequency": 12, "monetary": 540.0},
                                charts.segment_colors(model), "GBP")
    for axis in ("xaxis", "xaxis2", "xaxis3"):
        assert fig.layout[axis].type == "log" and fig.layout[axis].dtick == 1
    assert "£" in fig.layout.annotations[2].text


def test_pareto_marks_the_top20_share(demo_table: pd.DataFrame) -> None:
    spec = charts.pareto_chart(demo_table["monetary"].to_numpy())
    share = revenue_concentration(demo_table["monetary"]).top_shares[0.2]
    marked = [layer for layer in spec["layer"] if layer["mark"]["type"] in ("rule", "text")]
    assert len(marked) == 3 and {layer["data"]["name"] for layer in marked} == {"marker"}
    marker = pd.DataFrame(spec["datasets"]["marker"])
    assert marker["customers"].tolist() == [0.2]
    assert marker["revenue"].iloc[0] == pytest.approx(share)
    assert marker["label"].iloc[0] == f"top 20% → {share:.0%} of revenue"
    curve = pd.DataFrame(spec["datasets"]["curve"])  # from (0, 0) to (1, 1), never falling
    assert curve.iloc[0].tolist() == [0.0, 0.0] and curve.iloc[-1].tolist() == pytest.approx([1.0, 1.0])
    assert curve["revenue"].is_monotonic_increasing and curve["customers"].is_monotonic_increasing
    # The hover points: on the curve, one per whole percentage of customers, each tooltip naming its own.
    hover = pd.DataFrame(spec["datasets"]["hover"])
    assert len(hover) == 101 and hover["tip"].is_unique
    on_curve = hover.merge(curve, on=["customers", "revenue"])
    assert len(on_curve) == len(hover)
    assert hover["tip"].iloc[3] == f"top 3% of customers: {hover['revenue'].iloc[3]:.1%} of revenue"
    alt.LayerChart.from_dict(spec)  # a valid Vega-Lite spec (validated against the schema)


def test_segment_share_chart_has_both_shares_per_segment(demo_table: pd.DataFrame, model) -> None:  # type: ignore[no-untyped-def]
    summary = segmentation.segment_summary(model.assign(demo_table), model)
    spec = charts.segment_share_chart(summary, charts.segment_colors(model))
    assert spec["data"] == {"name": "shares"}  # the layers share one data set
    data = pd.DataFrame(spec["datasets"]["shares"])
    assert len(data) == 2 * len(summary)
    by_measure = data.pivot(index="segment", columns="measure", values="share")
    assert by_measure["share of customers"].sum() == pytest.approx(1.0)
    assert by_measure["share of revenue"].sum() == pytest.approx(1.0)
    assert "-0%" not in set(data["label"])
    alt.LayerChart.from_dict(spec)
    color = spec["layer"][0]["encoding"]["color"]["scale"]
    assert color["range"] == [charts.segment_colors(model)[n] for n in color["domain"]]


def test_customer_position_nearest_is_the_predicted_cluster(demo_table: pd.DataFrame, model) -> None:  # type: ignore[no-untyped-def]
    for row in demo_table.sample(40, random_state=1).itertuples():
        if row.monetary <= 0:
            continue
        position = insights.customer_position(model, row.recency, row.frequency, row.monetary)
        assert position.iloc[0]["cluster"] == model.predict([row.recency, row.frequency, row.monetary])[0]


def test_mapping_guess_and_check(tmp_path: Path) -> None:
    log = tmp_path / "x.csv"
    pd.DataFrame({"Kunde": ["a"], "Datum": ["2011-01-01"], "Betrag": [3.0], "Qty": [1]}).to_csv(log, index=False)
    check = datasets.check_mapping(str(log))
    assert check.needs_mapping and "no column for" in str(check.error) and "x.csv" in str(check.error)
    assert check.guess["quantity"] == "Qty" and check.guess["customer_id"] is None
    ok = datasets.check_mapping(str(log), {"customer_id": "Kunde", "invoice_date": "Datum", "amount": "Betrag"})
    assert not ok.needs_mapping
    assert datasets.mapping_from_choices({"customer_id": "Kunde", "country": None}) == {"customer_id": "Kunde"}


def test_save_upload_is_content_addressed(tmp_path: Path) -> None:
    a = datasets.save_upload("../../evil name.csv", b"x,y\n1,2\n", tmp_path)
    b = datasets.save_upload("../../evil name.csv", b"x,y\n1,2\n", tmp_path)
    c = datasets.save_upload("evil name.csv", b"x,y\n1,3\n", tmp_path)
    assert a == b != c and a.parent == tmp_path and a.name.endswith("evil_name.csv")
    assert c.is_file() and not a.exists()  # one upload per session folder: the new one replaces it


def test_segment_description_comes_from_the_playbook() -> None:
    from rfm.model.profiles import DEFAULT_PLAYBOOK

    assert insights.segment_description("Champions") == DEFAULT_PLAYBOOK["champions"].description
    assert "reactivate" in insights.segment_description("About To Sleep (High Spend)")
    # A renamed segment keeps the description of the cluster's default name instead of a blank one.
    assert insights.segment_description("VIP", default_name="Champions") == DEFAULT_PLAYBOOK["champions"].description
    text = insights.segment_description("Whatever", {"recency": 10, "frequency": 2.5, "monetary": 1234})
    assert "10 days" in text and "1,234" in text


def test_period_label_reads_in_days_then_months() -> None:
    assert insights.period_label(date(2011, 6, 1), date(2011, 6, 1)) == "1 day"
    assert insights.period_label(date(2011, 6, 1), date(2011, 6, 30)) == "30 days"
    assert insights.period_label(date(2010, 12, 1), date(2011, 12, 9)) == "12 months"


def test_heatmap_chart_labels_every_cell(demo_table: pd.DataFrame) -> None:
    mean, counts = insights.rf_heatmap_data(demo_table)
    spec = charts.vega_lite_spec(charts.rf_heatmap(mean, counts))
    cells = next(iter(spec["datasets"].values()))
    assert len(cells) == 25
    r5f5 = next(c for c in cells if c["R"] == "R5" and c["F"] == "F5")
    assert r5f5["customers"] == counts.loc[5, 5]
    assert r5f5["mean_monetary"] == pytest.approx(mean.loc[5, 5])
    assert r5f5["label"].startswith(f"{counts.loc[5, 5]:,} cust.")
    assert "£" in r5f5["label"]


def test_scatter_samples_large_tables_and_keeps_segment_colours(demo_table: pd.DataFrame, model) -> None:  # type: ignore[no-untyped-def]
    assigned = model.assign(demo_table)
    colors, order = charts.segment_colors(model), charts.segment_order(model)
    small = charts.customer_scatter(assigned, colors, order, max_points=100)
    shown = int((assigned["monetary"] > 0).sum())
    title = small.to_dict()["title"]
    assert abs(len(small.data) - 100) <= assigned["segment"].nunique()  # each segment rounded
    assert title["subtitle"] == [f"a seeded sample of {len(small.data):,} of {shown:,} customers,",
                                 "each segment in proportion"]
    drawn = assigned.loc[assigned["monetary"] > 0, "segment"].value_counts()
    assert set(small.data["segment"]) == set(drawn.index)  # no segment left out
    shares = small.data["segment"].value_counts() / len(small.data)
    assert ((shares - drawn / drawn.sum()).abs() < 0.05).all()
    assert small.data.equals(charts.customer_scatter(assigned, colors, order, max_points=100).data)  # seeded
    full = charts.customer_scatter(assigned, colors, order, max_points=10**6)
    assert len(full.data) == int((assigned["monetary"] > 0).sum()) and "subtitle" not in full.to_dict()["title"]
    scale = full.to_dict()["encoding"]["color"]["scale"]
    assert scale["range"] == [colors[n] for n in scale["domain"]]
    assert (full.data["plotted"] > 0).all()  # log axis: recency 0 is drawn at 0.5


def test_the_scatter_sample_keeps_each_segment_in_proportion_and_a_tiny_one_visible() -> None:
    data = pd.DataFrame({"segment": ["big"] * 3000 + ["mid"] * 996 + ["tiny"] * 4, "v": range(4000)})
    sample = charts.proportional_sample(data, "segment", 1000, seed=3)
    assert sample["segment"].value_counts().to_dict() == {"big": 750, "mid": 249, "tiny": 1}
    assert sample.equals(charts.proportional_sample(data, "segment", 1000, seed=3))  # seeded
    assert not sample["v"].duplicated().any()


def test_reconciliation_names_every_step_from_raw_lines_to_the_revenue_shown(tmp_path: Path) -> None:
    from tests.helpers import line, write_log

    log = write_log(tmp_path / "log.csv", [
        line("1", 2, "2011-01-03 10:00", 10.0, 1),    # 20.00, kept
        line("1", 2, "2011-01-03 10:00", 10.0, 1),    # the same line again: a duplicate (20.00)
        line("2", 1, "2011-01-05 10:00", 7.5, None),  # no customer (7.50)
        line("C3", -1, "2011-01-09 10:00", 10.0, 1),  # a return of customer 1 (-10.00)
        line("C4", -1, "2011-01-10 10:00", 4.0, 2),   # a return of a customer who never bought (-4.00)
        line("5", 3, "2011-03-01 10:00", 1.0, 3),     # 3.00, after the custom snapshot below
        line("6", 1, "2011-01-20 10:00", 0.0, 3),     # zero price (0.00)
    ])
    net = datasets.load_dataset(datasets.file_request([log]), with_cleaning_report=True)
    steps = {s.step: (s.lines, s.revenue) for s in net.reconciliation.steps}  # type: ignore[union-attr]
    assert net.reconciliation.raw_lines == 7 and net.reconciliation.raw_revenue == pytest.approx(36.5)  # type: ignore[union-attr]
    assert steps["dropped: no customer id"] == (1, pytest.approx(-7.5))
    assert steps["dropped: exact duplicate of another line"] == (1, pytest.approx(-20.0))
    assert steps["dropped: zero or negative price (zero amount)"] == (1, 0.0)
    assert steps["returns of customers with no purchase before the snapshot"] == (1, pytest.approx(4.0))
    assert steps["rounding each customer's spend to cents"] == (None, 0.0)
    assert net.reconciliation.shown == pytest.approx(13.0) == net.customers["monetary"].sum()  # type: ignore[union-attr]

    early = datasets.load_dataset(datasets.file_request([log], snapshot=date(2011, 2, 1), returns="exclude"),
                                  with_cleaning_report=True)
    rec = early.reconciliation
    assert rec is not None
    steps = {s.step: (s.lines, s.revenue) for s in rec.steps}
    assert steps["returns ignored (the returns choice)"][1] == pytest.approx(14.0)
    dropped_late = sum(s.revenue for s in rec.steps if "snapshot" in s.step or "dated after" in s.step)
    assert dropped_late == pytest.approx(-3.0)  # the March line, under whichever step drops it, once
    assert rec.raw_revenue + sum(s.revenue for s in rec.steps) == pytest.approx(rec.shown) == 20.0
    assert "not explained" not in " ".join(steps)
    assert rec.csv().decode().splitlines()[0] == "step,lines,revenue"


def test_every_chart_the_pages_cache_is_a_valid_vega_lite_spec(demo_table: pd.DataFrame, model) -> None:  # type: ignore[no-untyped-def]
    """`vega_lite_spec` skips Altair's schema validation (the pages cache its dict); the validation
    happens here instead, for every chart builder whose spec the pages cache, with the same dict out;
    the Overview's charts, written as Vega-Lite dicts, are validated against the same schema."""
    assigned = model.assign(demo_table)
    summary = segmentation.segment_summary(assigned, model)
    colors = charts.segment_colors(model)
    concentration = revenue_concentration(demo_table["monetary"])
    metrics = pd.DataFrame({"k": range(2, 11), "inertia": range(90, 0, -10), "silhouette": [0.3] * 9,
                            "davies_bouldin": [1.0] * 9, "calinski_harabasz": [100.0] * 9,
                            "smallest_cluster_share": [0.1] * 9})
    built = {
        "pareto": charts.pareto_chart(demo_table["monetary"].to_numpy()),
        "lorenz": charts.lorenz_chart(concentration.lorenz, concentration.gini),
        "shares": charts.segment_share_chart(summary, colors),
        "heatmap": charts.rf_heatmap(*insights.rf_heatmap_data(assigned), currency="EUR"),
        "grid": charts.rf_grid_chart(insights.grid_frame(assigned)),
        "scatter": charts.customer_scatter(assigned, colors, list(summary["segment"]), x="frequency"),
        **{f"sweep_{column}": charts.sweep_panel(metrics, column, 4, 7) for column, _, _ in charts.SWEEP_PANELS},
    }
    for name, chart in built.items():
        if isinstance(chart, dict):  # written as the Vega-Lite dict (the Overview's charts)
            alt.LayerChart.from_dict(chart)  # raises on a spec the Vega-Lite schema refuses
            json.dumps(chart)  # plain values only, as the page's cache and Streamlit take them
            continue
        validated = chart.to_dict()  # raises on a spec the Vega-Lite schema refuses
        spec = charts.vega_lite_spec(chart)
        assert spec["layer" if "layer" in validated else "mark"] == validated["layer" if "layer" in validated
                                                                            else "mark"], name
        assert spec.get("datasets") == validated.get("datasets"), name
