"""The model commands end to end on a generated demo log: outputs, files and exit-2 errors."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from rfm.cli import main
from rfm.model import FOUR_NAMES, ModelStore
from rfm.service.segmentation import EXPORT_COLUMNS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(demo_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    models = tmp_path_factory.mktemp("models")
    assert main(["train", "--data", str(demo_parquet), "--k", "4", "--models-dir", str(models), "--promote",
                 "--no-sweep"]) == 0
    return models, ModelStore(models).current_version()


def test_sweep_text_and_json(capsys: pytest.CaptureFixture[str], demo_parquet: Path) -> None:
    code, out, _ = run(capsys, "sweep", "--data", str(demo_parquet), "--k-min", "2", "--k-max", "5", "--json")
    assert code == 0
    result = json.loads(out)
    assert [m["k"] for m in result["metrics"]] == [2, 3, 4, 5]
    assert result["recommended_k"] in (2, 3, 4, 5) and result["reason"]
    assert set(result["metrics"][0]) == {"k", "inertia", "silhouette", "davies_bouldin", "calinski_harabasz",
                                         "smallest_cluster_share"}
    code, out, _ = run(capsys, "sweep", "--data", str(demo_parquet), "--k-max", "4")
    assert code == 0 and "recommended" in out and "silhouette on all" in out


def test_train_prints_the_version_and_stores_the_sweep(
    capsys: pytest.CaptureFixture[str], demo_parquet: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "train", "--data", str(demo_parquet), "--k", "3", "--models-dir", str(tmp_path))
    version = out.strip()
    assert code == 0 and ModelStore(tmp_path).list_versions() == [version]
    assert ModelStore(tmp_path).current_version() is None  # not promoted without --promote
    meta = json.loads((tmp_path / version / "metadata.json").read_text())
    assert meta["k"] == 3 and [m["k"] for m in meta["sweep"]["metrics"]] == list(range(2, 11))


def test_list_label_promote(capsys: pytest.CaptureFixture[str], trained: tuple[Path, str]) -> None:
    models, version = trained
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(models), "--json")
    listing = json.loads(out)
    assert code == 0 and listing[0]["version"] == version and listing[0]["current"]
    assert sorted(listing[0]["segments"]) == sorted(FOUR_NAMES)
    code, out, _ = run(capsys, "label", version, "hibernating", "Sleepers", "--models-dir", str(models))
    assert code == 0 and "Sleepers" in out
    assert "Sleepers" in [c.name for c in ModelStore(models).load(version).clusters]
    code, out, _ = run(capsys, "models", "promote", version, "--models-dir", str(models))
    assert code == 0
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(models))
    assert out.startswith(f"* {version}") and "Sleepers" in out


def test_export_one_row_a_customer(
    capsys: pytest.CaptureFixture[str], demo_parquet: Path, demo_table: pd.DataFrame, trained: tuple[Path, str],
    tmp_path: Path,
) -> None:
    models, version = trained
    out_csv = tmp_path / "segments.csv"
    code, _, _ = run(capsys, "export", "--data", str(demo_parquet), "--models-dir", str(models),
                     "--out", str(out_csv))
    assert code == 0
    exported = pd.read_csv(out_csv, dtype={"customer_id": str})
    assert len(exported) == len(demo_table) and exported["customer_id"].is_unique
    assert list(exported.columns) == [c for c in EXPORT_COLUMNS if c != "country"] or list(exported.columns) == list(
        EXPORT_COLUMNS)
    assert exported["monetary"].is_monotonic_decreasing  # most valuable customers first
    assert set(exported["model_version"]) == {version} and exported["snapshot_date"].nunique() == 1
    model = ModelStore(models).load(version)
    by_id = exported.set_index("customer_id").loc[demo_table["customer_id"]]
    assert (by_id["cluster"].to_numpy() == model.predict(demo_table)).all()
    assert list(by_id["segment"]) == model.predict_names(demo_table)
    champions = tmp_path / "champions.csv"
    code, _, _ = run(capsys, "export", "--data", str(demo_parquet), "--models-dir", str(models),
                     "--model", version, "--segment", "CHAMPIONS", "--out", str(champions))
    subset = pd.read_csv(champions)
    assert code == 0 and len(subset) == (exported["segment"] == "Champions").sum() > 0
    assert set(subset["segment"]) == {"Champions"}


def test_report_json(capsys: pytest.CaptureFixture[str], demo_parquet: Path, trained: tuple[Path, str]) -> None:
    models, version = trained
    code, out, _ = run(capsys, "report", "--data", str(demo_parquet), "--models-dir", str(models), "--json")
    report = json.loads(out)
    assert code == 0 and report["model"] == version
    assert sum(s["customers"] for s in report["segments"]) == report["customers"]
    assert set(report["revenue_concentration"]["top_shares"]) == {
        "top_1pct", "top_5pct", "top_10pct", "top_20pct", "top_50pct"}
    assert 0 < report["revenue_concentration"]["gini"] < 1
    code, out, _ = run(capsys, "report", "--data", str(demo_parquet), "--models-dir", str(models))
    assert code == 0 and "Gini" in out and "Champions" in out


def test_package(capsys: pytest.CaptureFixture[str], trained: tuple[Path, str], tmp_path: Path) -> None:
    models, version = trained
    out = tmp_path / "model.tar.gz"
    code, _, _ = run(capsys, "package", version, "--out", str(out), "--models-dir", str(models))
    assert code == 0
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "metadata.json", "model.skops"]


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three customers: too few for most k."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,A,x,2,2011-01-05 10:00,3.5,100,UK\n"
        "2,A,x,1,2011-02-05 10:00,9.0,200,UK\n"
        "3,A,x,5,2011-03-05 10:00,1.0,300,UK\n"
    )
    return path


def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], demo_parquet: Path, trained: tuple[Path, str], tiny_log: Path,
    tmp_path: Path,
) -> None:
    models, _ = trained
    data = str(demo_parquet)
    cases = [
        (["train", "--data", data, "--k", "1", "--models-dir", str(tmp_path)], "at least 2"),
        (["train", "--data", data, "--k", "100000", "--models-dir", str(tmp_path)], "needs at least"),
        (["train", "--data", str(tiny_log), "--k", "3", "--models-dir", str(tmp_path)], "needs at least 4"),
        (["sweep", "--data", str(tiny_log)], "needs at least"),
        (["label", "nope", "1", "x", "--models-dir", str(models)], "unknown model version"),
        (["models", "promote", "nope", "--models-dir", str(models)], "unknown model version"),
        (["export", "--data", data, "--model", "nope", "--out", "-", "--models-dir", str(models)], "unknown"),
        (["report", "--data", data, "--models-dir", str(tmp_path / "empty")], "no promoted model"),
        (["export", "--data", data, "--segment", "Nobody", "--out", "-", "--models-dir", str(models)],
         "no segment"),
        (["package", "nope", "--out", str(tmp_path / "m.tgz"), "--models-dir", str(models)], "unknown"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert message in err and err.count("\n") == 1, (argv, err)
    assert not list(tmp_path.glob("2*"))  # nothing was saved by the failing trains


def test_tampered_model_exits_2(
    capsys: pytest.CaptureFixture[str], demo_parquet: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "train", "--data", str(demo_parquet), "--k", "2", "--models-dir", str(tmp_path),
                       "--promote", "--no-sweep")
    version = out.strip()
    path = tmp_path / version / "model.skops"
    path.write_bytes(path.read_bytes() + b"\0")
    for argv in (["report", "--data", str(demo_parquet)], ["models", "promote", version],
                 ["label", version, "0", "x"], ["package", version, "--out", str(tmp_path / "m.tgz")]):
        code, _, err = run(capsys, *argv, "--models-dir", str(tmp_path))
        assert code == 2 and "sha256" in err and err.count("\n") == 1, (argv, err)


def test_cli_default_seed_is_the_model_default():
    """The CLI keeps its own copy of the seed so that `rfm --help` does not import scikit-learn."""
    from rfm.cli.model_commands import DEFAULT_SEED as cli_seed
    from rfm.model.pipeline import DEFAULT_SEED as model_seed

    assert cli_seed == model_seed
