"""Every fault found by probing the command line, the model store and the server (issue 12), reproduced and
held: exit code 2 and ONE line naming the file, column, row and a short, sanitised example of the bad value;
no traceback; nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from rfm.cli import main
from rfm.data import sources
from rfm.data.cleaning import cleaning_report
from rfm.data.engine import connect
from rfm.data.sources import expand_paths, load_source
from rfm.data.table import compute_rfm
from rfm.errors import DataError, ModelError
from rfm.model import ModelStore, train_model
from rfm.model import store as store_module
from rfm.model.naming import check_name
from rfm.server import codecs
from rfm.server.app import create_app
from tests.helpers import HEADER, line, three_group_table, write_log

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ROWS = [
    line("536365", 6, "2010-12-01 08:26:00", 2.55, 17850),
    line("536366", 2, "2010-12-02 09:00:00", 1.85, 17850),
    line("536367", 3, "2010-12-03 10:00:00", 4.25, 13047),
]


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    """Run `rfm argv`: exit code 2 and exactly one line on standard error, naming every needle."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rfm {argv[0]}: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def dot_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    return write_log(tmp_path / "good.csv", ROWS)


@pytest.fixture
def good_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "good.parquet"
    pd.DataFrame(ROWS, columns=HEADER).to_parquet(path)
    return path


# --- the file readers ------------------------------------------------------------------------------


def test_truncated_parquet(capsys: pytest.CaptureFixture[str], good_parquet: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good_parquet.read_bytes()[:100])  # "No magic bytes found at end of file" in DuckDB
    for command in (["table", "--data", str(cut)], ["ingest", str(cut), "--out", str(tmp_path / "o.parquet")]):
        fails(capsys, command, str(cut), "not a complete Parquet file")
    assert not (tmp_path / "o.parquet").exists()


def test_four_byte_par1_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.parquet"
    tiny.write_bytes(b"PAR1")
    fails(capsys, ["table", "--data", str(tiny)], str(tiny), "not a complete Parquet file", "4 bytes")


@pytest.mark.parametrize(("bad", "shown", "row"), [(float("inf"), "inf", 2), (1e30, "1e+30", 2),
                                                   (-float("inf"), "-inf", 2)])
@pytest.mark.parametrize("command", ["table", "ingest"])
def test_double_customer_id_out_of_range(capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: float,
                                         shown: str, row: int, command: str) -> None:
    frame = pd.DataFrame(ROWS, columns=HEADER)
    frame["CustomerID"] = [17850.0, bad, 13047.0]  # a DOUBLE column: DuckDB's BIGINT cast failed on it
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path)
    argv = ["table", "--data", str(path)] if command == "table" else \
        ["ingest", str(path), "--out", str(tmp_path / "o.parquet")]
    fails(capsys, argv, str(path), f"row {row}", "'CustomerID'", shown)


def test_nan_customer_id_is_a_missing_one(tmp_path: Path) -> None:
    frame = pd.DataFrame(ROWS, columns=HEADER)
    frame["CustomerID"] = [17850.0, np.nan, 13047.0]
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path)
    con = connect()
    report = cleaning_report(con, load_source(con, [path]).view)
    assert report.no_customer == 1 and report.customers == 2


@pytest.mark.skipif(IS_ROOT, reason="root reads a chmod 000 file; the next test simulates the refusal")
def test_unreadable_file_chmod(capsys: pytest.CaptureFixture[str], good_csv: Path) -> None:
    good_csv.chmod(0)
    try:
        fails(capsys, ["table", "--data", str(good_csv)], str(good_csv), "Permission denied")
    finally:
        good_csv.chmod(0o644)


def test_unreadable_file(capsys: pytest.CaptureFixture[str], good_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sources, "open", refuse, raising=False)  # the module's open: what the reader calls
    fails(capsys, ["table", "--data", str(good_csv)], str(good_csv), "cannot be read", "Permission denied")


def test_csv_then_excel_in_one_run(tmp_path: Path, good_csv: Path) -> None:
    xlsx = tmp_path / "more.xlsx"
    pd.DataFrame([line("536368", 1, "2010-12-04 10:00:00", 3.0, 12583)], columns=HEADER).to_excel(xlsx, index=False)
    # "connection has an unfinished result" came from a result left open by the CSV part.
    table = compute_rfm([good_csv, xlsx]).table
    assert sorted(table["customer_id"]) == ["12583", "13047", "17850"]
    assert sorted(compute_rfm([xlsx, good_csv]).table["customer_id"]) == ["12583", "13047", "17850"]


def test_file_names_with_glob_characters(tmp_path: Path, good_parquet: Path) -> None:
    odd = tmp_path / "sales [2011].csv"
    write_log(odd, ROWS)
    assert expand_paths([odd]) == [str(odd)]
    assert len(compute_rfm([odd]).table) == 2
    folder = tmp_path / "parts"
    folder.mkdir()
    shutil.copy(good_parquet, folder / "a*.parquet")
    shutil.copy(good_parquet, folder / "ab.parquet")
    con = connect()
    report = cleaning_report(con, load_source(con, [folder]).view)
    assert report.rows_read == 6  # 3 + 3: `a*.parquet` no longer also reads ab.parquet
    assert report.duplicate == 3
    # A file named twice (itself and its folder) is read once.
    assert expand_paths([folder / "ab.parquet", folder]) == [str(folder / "ab.parquet"), str(folder / "a*.parquet")]


def test_bad_values_are_quoted_short_and_sanitised(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [*ROWS[:2], line("536367", "\x1b[31m" + "9" * 500, "2010-12-03 10:00:00", 4.25, 13047)]
    path = write_log(tmp_path / "bad.csv", rows)
    message = fails(capsys, ["table", "--data", str(path)], str(path), "row 3", "'Quantity'", "\\x1b[31m")
    assert "\x1b" not in message and "9" * 60 not in message and len(message) < 300


# --- outputs ----------------------------------------------------------------------------------------


def test_table_out_parquet_and_csv_gz(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path) -> None:
    csv_out, pq_out, gz_out = tmp_path / "t.csv", tmp_path / "t.parquet", tmp_path / "t.csv.gz"
    for out in (csv_out, pq_out, gz_out):
        assert main(["table", "--data", str(good_csv), "--out", str(out)]) == 0
    capsys.readouterr()
    expected = pd.read_csv(csv_out, dtype={"customer_id": str})
    assert pq_out.read_bytes()[:4] == b"PAR1"
    pd.testing.assert_frame_equal(pd.read_parquet(pq_out), expected, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(gz_out, dtype={"customer_id": str}), expected)
    assert dot_files(tmp_path) == []


@pytest.mark.parametrize("name", ["x.json", "x.ndjson", "x.xlsx", "x.txt"])
def test_unsupported_outputs_are_named(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path,
                                       name: str) -> None:
    out = tmp_path / name
    fails(capsys, ["table", "--data", str(good_csv), "--out", str(out)], str(out), ".csv", ".parquet")
    fails(capsys, ["export", "--data", str(good_csv), "--out", str(out)], str(out), ".csv")
    assert not out.exists() and dot_files(tmp_path) == []


def test_out_onto_an_existing_folder(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dir.parquet"
    folder.mkdir()
    fails(capsys, ["table", "--data", str(good_csv), "--out", str(folder)], str(folder), "is a folder")
    fails(capsys, ["ingest", str(good_csv), "--out", str(folder)], str(folder), "is a folder")
    assert dot_files(tmp_path) == [] and list(folder.iterdir()) == []  # no .tmp left behind


def test_out_under_a_file_or_in_proc(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path) -> None:
    under = good_csv / "x.csv"
    fails(capsys, ["table", "--data", str(good_csv), "--out", str(under)], str(under), "not a folder")
    fails(capsys, ["ingest", str(good_csv), "--out", str(good_csv / "x.parquet")], "x.parquet")
    if os.path.isdir("/proc/self"):
        fails(capsys, ["table", "--data", str(good_csv), "--out", "/proc/rfm-x.csv"], "/proc/rfm-x.csv",
              "cannot write")
        fails(capsys, ["ingest", str(good_csv), "--out", "/proc/rfm-x.parquet"], "/proc/rfm-x.parquet")
    assert dot_files(tmp_path) == []


def test_failed_table_keeps_the_previous_file(capsys: pytest.CaptureFixture[str], good_csv: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    out.write_text("previous\n")
    fails(capsys, ["table", "--data", str(good_csv), "--snapshot", "2000-01-01", "--out", str(out)],
          "no customer has a purchase")
    assert out.read_text() == "previous\n" and dot_files(tmp_path) == []


def test_stale_temporary_outputs_are_removed(good_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".t.parquet.{dead.pid}.tmp").write_bytes(b"")  # what a killed ingest left
    (tmp_path / ".t.parquet.tmp").write_bytes(b"")  # the older fixed name
    (tmp_path / f".t.parquet.{os.getppid()}.tmp").write_bytes(b"")  # a live writer's: kept
    assert main(["ingest", str(good_csv), "--out", str(out)]) == 0
    assert dot_files(tmp_path) == [f".t.parquet.{os.getppid()}.tmp"]


def test_table_appends_to_standard_output(good_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "log.txt"
    out.write_text("first line\n")
    command = f'"{sys.executable}" -m rfm table --data "{good_csv}" >> "{out}"'
    for _ in range(2):
        subprocess.run(command, shell=True, check=True, cwd=REPO, timeout=120)
    text = out.read_text().splitlines()
    assert text[0] == "first line"
    assert text.count("customer_id,recency,frequency,monetary,r_score,f_score,m_score,rfm_segment") == 2
    assert len(text) == 1 + 2 * 3


# --- the model store --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("store") / "models"
    store = ModelStore(root)
    version = store.save(train_model(three_group_table(3), 3))
    store.promote(version)
    return root, version


@pytest.fixture
def models(trained_store: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    root, version = trained_store
    copy = tmp_path / "models"
    shutil.copytree(root, copy)
    return copy, version


def test_models_dir_pointing_at_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv in (["models", "list"], ["score", "--recency", "1", "--frequency", "2", "--monetary", "3"],
                 ["label", "v1", "0", "Top"], ["models", "promote", "v1"]):
        fails(capsys, [*argv, "--models-dir", str(afile)], str(afile), "not a folder")


@pytest.mark.parametrize("kind", ["folder", "binary", "symlink", "garbage"])
def test_current_that_is_not_a_version_name(capsys: pytest.CaptureFixture[str], models: tuple[Path, str],
                                            tmp_path: Path, kind: str) -> None:
    root, _ = models
    current = root / "CURRENT"
    current.unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n" * 20)
    if kind == "folder":
        current.mkdir()
    elif kind == "binary":
        current.write_bytes(b"\x00\xff\xfe\x1b[31m")
    elif kind == "symlink":
        current.symlink_to(secret)
    else:
        current.write_text("hunter2 is not a version\n")
    for argv in (["models", "list"], ["score", "--recency", "1", "--frequency", "2", "--monetary", "3"]):
        message = fails(capsys, [*argv, "--models-dir", str(root)], str(current))
        assert "hunter2" not in message and "\x1b" not in message


def test_unreadable_model_file(capsys: pytest.CaptureFixture[str], models: tuple[Path, str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    root, version = models
    target = root / version / "model.skops"

    def refuse(directory: Path, key: object) -> object:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(store_module, "read_verified", refuse)
    fails(capsys, ["score", "--recency", "1", "--frequency", "2", "--monetary", "3", "--models-dir", str(root)],
          str(target), "Permission denied")


@pytest.mark.skipif(IS_ROOT, reason="root writes into a chmod 555 folder; the next test simulates the refusal")
def test_unwritable_models_folder_chmod(capsys: pytest.CaptureFixture[str], models: tuple[Path, str]) -> None:
    root, version = models
    root.chmod(0o555)
    try:
        fails(capsys, ["label", version, "0", "Top", "--models-dir", str(root)], str(root))
    finally:
        root.chmod(0o755)


def test_unwritable_models_folder(capsys: pytest.CaptureFixture[str], models: tuple[Path, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, version = models

    def refuse(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(root / ".tmp"))

    monkeypatch.setattr(store_module.tempfile, "mkdtemp", refuse)
    fails(capsys, ["label", version, "0", "Top", "--models-dir", str(root)], "cannot write to the models folder",
          "Permission denied")
    monkeypatch.undo()
    assert ModelStore(root).load(version).segment_name(0) != "Top"


def test_segment_names_are_printable(capsys: pytest.CaptureFixture[str], models: tuple[Path, str]) -> None:
    root, version = models
    before = ModelStore(root).load(version).segment_name(0)
    message = fails(capsys, ["label", version, "0", "\x1b[31mRed\x1b[0m", "--models-dir", str(root)],
                    "printable", "\\x1b")
    assert "\x1b" not in message
    assert ModelStore(root).load(version).segment_name(0) == before
    for name in ("a\u200bb", "x\x00y", "bell\x07"):
        with pytest.raises(ModelError, match="printable"):
            check_name(name, [])
    assert check_name("Café  Ünter  ", []) == "Café Ünter"


def test_temporary_files_live_in_one_folder_of_the_store(models: tuple[Path, str]) -> None:
    root, version = models
    (root / ".tmp-old-leftover").mkdir()  # what an older rfm left at the top
    (root / ".tmp-old-leftover" / "model.skops").write_bytes(b"x")
    (root / ".tmp").mkdir(exist_ok=True)
    (root / ".tmp" / "killed-write").write_bytes(b"x")
    store = ModelStore(root)
    store.rename_cluster(version, 0, "Top")
    assert dot_files(root) == [".lock", ".tmp"]
    assert list((root / ".tmp").iterdir()) == []


def test_serve_port_out_of_range(capsys: pytest.CaptureFixture[str], models: tuple[Path, str]) -> None:
    root, version = models
    fails(capsys, ["serve", "--port", "99999", "--model", version, "--models-dir", str(root)], "--port 99999",
          "1..65535")


def test_unexpected_os_errors_are_one_line(capsys: pytest.CaptureFixture[str], good_csv: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's last net: an OSError no layer named still ends as one line and exit 2."""
    from rfm.service import datasets

    def broken(*args: object, **kwargs: object) -> int:
        raise IsADirectoryError(21, "Is a directory", "somewhere")

    monkeypatch.setattr(datasets, "write_rfm_table", broken)
    fails(capsys, ["table", "--data", str(good_csv)], "somewhere: Is a directory")


# --- the server's decoders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(train_model(three_group_table(5), 3))) as test_client:
        yield test_client


@pytest.mark.parametrize(("body", "where", "what"), [
    (b'"recency,frequency,monetary\n1,2,3\n', "line 1", "quote is not closed"),
    (b'recency,frequency,"monetary\n1,2,3\n', "line 1", "quote is not closed"),
    (b"1,2,3\n4,5,\"6\n", "record 1 (line 2)", "quote is not closed"),
    (b"1,2,3\n1_000,2,3\n", "record 1 (line 2)", "'1_000'"),
    ("1,2,3\n\u0661\u0662,2,3\n".encode(), "record 1 (line 2)", "must be a number"),
    ("1,2,3\n\uff11,2,3\n".encode(), "record 1 (line 2)", "must be a number"),
    ("1,2,3\u20284,5,6\n".encode(), "record 0 (line 1)", "expected 3 values"),
    ("1,2,3\n4,5,6\u2028\n".encode(), "record 1 (line 2)", "'monetary'"),
    (b'"1",2,3\n', "record 0 (line 1)", "unquoted number"),
])
def test_strict_csv_decoding(client: TestClient, body: bytes, where: str, what: str) -> None:
    with pytest.raises(DataError) as caught:
        codecs.decode(body, codecs.CSV)
    assert where in str(caught.value) and what in str(caught.value)
    response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert where in response.json()["detail"] and what in response.json()["detail"]


def test_lenient_where_csv_allows_it(client: TestClient) -> None:
    body = b'"recency","frequency","monetary"\r\n1, 2 ,3\r\n\r\n4.5,6e1,-7.25\r\n'
    assert codecs.decode(body, codecs.CSV).values.tolist() == [[1, 2, 3], [4.5, 60, -7.25]]
    response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200 and len(response.text.splitlines()) == 2


def test_jsonlines_unicode_line_separators_are_not_line_breaks() -> None:
    body = '{"recency": 1, "frequency": 2, "monetary": 3}\u2028{"recency": 1, "frequency": 2, "monetary": 3}\n'
    with pytest.raises(DataError, match=r"record 0 \(line 1\): malformed JSON"):
        codecs.decode(body.encode(), codecs.JSONLINES)


def test_server_entry_point_port_out_of_range(models: tuple[Path, str], caplog: pytest.LogCaptureFixture) -> None:
    from rfm.server.__main__ import main as server_main

    root, version = models
    assert server_main(["serve", "--port", "99999", "--model-dir", str(root / version)]) == 2
    assert "refusing to start: --port 99999: expected 1..65535" in caplog.text


def test_error_lines_escape_control_characters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    odd = tmp_path / "new\nline\x1b[2J.csv"
    message = fails(capsys, ["table", "--data", str(odd)], "new\\nline\\x1b[2J.csv: no file matches")
    assert "\x1b" not in message


def test_frames_are_written_by_extension(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """What `rfm table --source athena --out` writes: the same formats as the files' path."""
    from rfm.data.table import write_frame

    frame = pd.DataFrame({"customer_id": ["a", "b"], "recency": [1, 2], "monetary": [1.5, -0.25]})
    assert write_frame(frame, str(tmp_path / "t.parquet")) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    assert write_frame(frame, str(tmp_path / "t.csv")) == 2
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), frame)
    assert write_frame(frame, "-") == 2
    assert capfdbinary.readouterr().out.decode().splitlines() == ["customer_id,recency,monetary", "a,1,1.5",
                                                                   "b,2,-0.25"]
    with pytest.raises(DataError, match=r"t\.json: cannot write \.json files"):
        write_frame(frame, str(tmp_path / "t.json"))
    assert dot_files(tmp_path) == []


def test_listing_escapes_control_characters_written_by_older_versions(capsys: pytest.CaptureFixture[str],
                                                                     models: tuple[Path, str]) -> None:
    root, version = models
    store = ModelStore(root)
    with store.locked():  # as an older rfm, which did not check names, could have written it
        model, files = store._load(version)
        store._replace_version(version, model.metadata.with_cluster_names({0: "Old\x1b[31mRed"}), files["model.skops"])
    assert main(["models", "list", "--models-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "Old\\x1b[31mRed" in out
