"""rfm.service: the one API behind the CLI and the dashboard (datasets, the model/data fit check, the
export, renames, settings honoured by every face)."""

from __future__ import annotations

import io
import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from rfm.cli import main
from rfm.model import ModelStore
from rfm.service import datasets, models, segmentation

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_dataset(demo_parquet: Path) -> datasets.Dataset:
    return datasets.load_dataset(datasets.file_request([demo_parquet]), with_cleaning_report=True)


@pytest.fixture(scope="module")
def demo_model(demo_dataset: datasets.Dataset):  # type: ignore[no-untyped-def]
    return models.train(demo_dataset, 4, with_sweep=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- datasets --------------------------------------------------------------------------------------


def test_dataset_carries_the_cleaning_report_and_the_table(demo_parquet: Path, demo_dataset: datasets.Dataset,
                                                           demo_table: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(demo_dataset.table, demo_table)
    report = demo_dataset.cleaning
    assert report is not None and report.customers == len(demo_table)
    assert report.rows_read == len(pd.read_parquet(demo_parquet))
    assert demo_dataset.label == "demo.parquet" and demo_dataset.returns.value == "net"


def test_fingerprint_is_the_content_not_the_file(demo_parquet: Path, tmp_path: Path,
                                                 demo_dataset: datasets.Dataset) -> None:
    copy = tmp_path / "elsewhere" / "renamed.parquet"
    copy.parent.mkdir()
    shutil.copy(demo_parquet, copy)
    os.utime(copy, (1_000_000, 1_000_000))
    moved = datasets.load_dataset(datasets.file_request([copy]))
    assert moved.fingerprint == demo_dataset.fingerprint
    earlier = datasets.load_dataset(datasets.file_request([demo_parquet], snapshot=demo_dataset.snapshot
                                                          - timedelta(days=30)))
    assert earlier.fingerprint != demo_dataset.fingerprint


def test_the_request_takes_a_real_date_and_a_returns_enum(demo_parquet: Path) -> None:
    request = datasets.file_request([demo_parquet], snapshot=date(2011, 6, 1), returns="exclude")
    assert request.returns is datasets.ReturnsPolicy.EXCLUDE and request.options.snapshot == date(2011, 6, 1)
    with pytest.raises(Exception, match="returns policy 'gross'"):
        datasets.DatasetRequest(datasets.FileSource((str(demo_parquet),)), returns="gross")  # type: ignore[arg-type]


# --- model and data fit together -------------------------------------------------------------------


def test_a_model_fits_the_data_it_was_trained_on(demo_dataset: datasets.Dataset, demo_model) -> None:  # type: ignore[no-untyped-def]
    applied = segmentation.apply(demo_dataset, demo_model)
    assert applied.issues == () and applied.warning is None
    assert demo_model.metadata.data_label == "demo.parquet"
    assert demo_model.metadata.data_fingerprint == demo_dataset.fingerprint


def test_the_shipped_model_fits_the_demo_data_of_a_fresh_clone(tmp_path: Path) -> None:
    """`make run` generates the demo log and opens it with the shipped model: no warning there."""
    demo = datasets.ensure_demo(tmp_path / "demo.parquet")
    dataset = datasets.load_dataset(datasets.file_request([demo]))
    model = ModelStore(REPO / "models").load()
    assert segmentation.fit_issues(model, dataset) == ()


def test_each_mismatch_is_named(demo_parquet: Path, demo_dataset: datasets.Dataset, demo_model,  # type: ignore[no-untyped-def]
                                online_retail_parquet: Path) -> None:
    later = datasets.load_dataset(datasets.file_request([demo_parquet], returns="exclude",
                                                        snapshot=demo_dataset.snapshot + timedelta(days=10)))
    issues = {i.aspect: i for i in segmentation.fit_issues(demo_model, later)}
    assert set(issues) == {"data", "snapshot", "returns"}
    assert issues["returns"].trained == "net" and issues["returns"].here == "exclude"
    assert issues["snapshot"].here == later.snapshot.isoformat()
    other = datasets.load_dataset(datasets.file_request([online_retail_parquet]))
    warning = segmentation.apply(other, demo_model).warning
    assert warning is not None and "\n" not in warning
    assert warning.startswith(f"model (unsaved) was trained on demo.parquet, {len(demo_dataset.customers):,} "
                              f"customers, snapshot {demo_dataset.snapshot}, returns net")
    assert other.snapshot == demo_dataset.snapshot  # both logs end on 2011-12-09: only the data differs
    assert warning.endswith(f"applied here to other data (online_retail.parquet, {len(other.customers):,} customers)")


def test_cli_warns_once_on_stderr_when_the_model_was_trained_elsewhere(
    capsys: pytest.CaptureFixture[str], demo_parquet: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    code, _, err = run(capsys, "export", "--data", str(demo_parquet), "--models-dir", str(REPO / "models"),
                       "--out", str(out))
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warnings) == 1
    assert warnings[0].startswith("warning: model 20261127-084202-k4 was trained on demo data, 1,379 customers, "
                                  "snapshot 2011-12-10, returns net; applied here to other data (demo.parquet")
    code, _, err = run(capsys, "report", "--data", str(demo_parquet), "--models-dir", str(REPO / "models"),
                       "--returns", "exclude")
    assert code == 0 and "snapshot 2011-12-10, returns net; applied here to other data (demo.parquet" in err
    assert err.rstrip().endswith(", returns exclude")


# --- one export for every face ---------------------------------------------------------------------


def test_cli_export_is_the_service_export_byte_for_byte(
    capsys: pytest.CaptureFixture[str], demo_parquet: Path, demo_dataset: datasets.Dataset, tmp_path: Path
) -> None:
    """The dashboard's download is `export_csv(export_frame(...))` of its segmentation; the CLI writes
    the same bytes for the same data, model and segments."""
    store = ModelStore(tmp_path / "models")
    version = models.save(store, models.train(demo_dataset, 4, with_sweep=False))
    model = store.load(version)
    wanted = (model.segment_name(0), model.segment_name(2))
    out = tmp_path / "export.csv"
    code, _, err = run(capsys, "export", "--data", str(demo_parquet), "--models-dir", str(store.root),
                       "--model", version, "--segment", *wanted, "--out", str(out))
    assert code == 0 and "warning" not in err
    shown = segmentation.export_frame(segmentation.apply(demo_dataset, model),
                                      segmentation.ExportFilter(segments=wanted))
    assert out.read_bytes() == segmentation.export_csv(shown)
    frame = pd.read_csv(io.BytesIO(out.read_bytes()), dtype={"customer_id": str})
    assert list(frame.columns) == list(segmentation.EXPORT_COLUMNS) and set(frame["segment"]) == set(wanted)
    assert set(frame["model_version"]) == {version}


# --- renames -------------------------------------------------------------------------------------


def test_cli_label_renames_several_clusters_in_one_write(
    capsys: pytest.CaptureFixture[str], demo_dataset: datasets.Dataset, demo_model, tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ModelStore(tmp_path)
    version = models.save(store, demo_model)
    first, second = demo_model.segment_name(0), demo_model.segment_name(1)
    writes: list[Path] = []
    real = ModelStore._replace_version
    monkeypatch.setattr(ModelStore, "_replace_version", lambda self, v, meta, data: (
        writes.append(self.root / v / "metadata.json"), real(self, v, meta, data)))
    code, out, _ = run(capsys, "label", version, "0", second, second.upper(), first, "3", "Sleepers",
                       "--models-dir", str(tmp_path))
    assert code == 0 and len(out.splitlines()) == 3
    assert writes == [tmp_path / version / "metadata.json"]
    names = [c.name for c in store.load(version).clusters]
    assert names[0] == second and names[1] == first and names[3] == "Sleepers"
    code, _, err = run(capsys, "label", version, "0", "A", "1", "a", "--models-dir", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert [c.name for c in store.load(version).clusters] == names


# --- settings, read once and honoured by every face -------------------------------------------------


def test_cli_honours_rfm_models_dir(capsys: pytest.CaptureFixture[str], demo_parquet: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    models_dir = tmp_path / "my-models"
    monkeypatch.setenv("RFM_MODELS_DIR", str(models_dir))
    code, out, _ = run(capsys, "train", "--data", str(demo_parquet), "--k", "3", "--no-sweep", "--promote")
    version = out.strip()
    assert code == 0 and ModelStore(models_dir).list_versions() == [version]
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and out.startswith(f"* {version}")
    code, out, _ = run(capsys, "score", "--recency", "15", "--frequency", "12", "--monetary", "540")
    assert code == 0 and f'"model_version": "{version}"' in out
    other = tmp_path / "other"
    code, out, err = run(capsys, "models", "list", "--models-dir", str(other))  # the flag still wins
    assert code == 0 and out == "" and str(other) in err


def test_a_malformed_settings_file_is_one_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tmp_path / "secrets.toml"
    settings.write_text("[scoring]\nendpoint = \n")
    monkeypatch.setenv("RFM_SECRETS_TOML", str(settings))
    code, out, err = run(capsys, "models", "list")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("rfm models: error: ") and str(settings) in err and "TOML" in err


def test_the_scoring_endpoint_setting_serves_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tmp_path / "secrets.toml"
    settings.write_text('[scoring]\nendpoint = "http://127.0.0.1:9"\ntimeout = 0.5\n')  # nothing listens on 9
    monkeypatch.setenv("RFM_SECRETS_TOML", str(settings))
    code, _, err = run(capsys, "score", "--recency", "1", "--frequency", "1", "--monetary", "1")
    assert code == 2 and "127.0.0.1:9" in err
    code, out, _ = run(capsys, "score", "--recency", "15", "--frequency", "12", "--monetary", "540",
                       "--endpoint", "local", "--models-dir", str(REPO / "models"))
    assert code == 0 and '"segment"' in out


def test_rfm_dashboard_reads_the_settings_where_the_user_is(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`rfm dashboard` runs Streamlit from the project root; relative paths in the settings keep meaning
    what they meant where the command was typed, and a malformed settings file stops it in one line."""
    from rfm.cli.dashboard_commands import _absolute_paths
    from rfm.config import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RFM_MODELS_DIR", "my-models")
    monkeypatch.setenv("RFM_DATA", "sales.csv, ~/more.parquet")
    paths = _absolute_paths(load_settings())
    assert paths["RFM_MODELS_DIR"] == str(tmp_path / "my-models")
    assert paths["RFM_DATA"] == f"{tmp_path / 'sales.csv'},{Path('~/more.parquet').expanduser()}"
    assert paths["RFM_SECRETS_TOML"] == str(tmp_path / ".streamlit" / "secrets.toml")
    (tmp_path / "bad.toml").write_text("[rfm\n")
    monkeypatch.setenv("RFM_SECRETS_TOML", "bad.toml")
    code, _, err = run(capsys, "dashboard", "--server.port", "1")
    assert code == 2 and err.startswith("rfm dashboard: error: ") and "bad.toml" in err
    assert Path.cwd() == tmp_path  # stopped before changing directory or starting Streamlit
