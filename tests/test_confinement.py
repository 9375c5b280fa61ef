"""Data confinement (rfm.service.confinement.confine) and the upload folder and cap (rfm.service.datasets):
what a dashboard visitor may read, checked after symlinks, `..` and `~` are resolved."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pandas as pd
import pytest

from rfm.data.sources import SourceOptions
from rfm.data.table import compute_rfm
from rfm.errors import DataError
from rfm.service import datasets
from rfm.service.confinement import confine

OUTSIDE = "outside the allowed data folders"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (allowed) with two logs and a sub-folder; secret/ next to it (not allowed)."""
    root = tmp_path / "root"
    (root / "logs").mkdir(parents=True)
    (root / "a.csv").write_text("x\n1\n")
    (root / "logs" / "b.csv").write_text("x\n2\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd.csv").write_text("root:x:0:0\n")
    return {"base": tmp_path, "root": root, "secret": secret}


def _refused(paths: list[str], roots: list[str]) -> str:
    with pytest.raises(DataError) as info:
        confine(paths, roots)
    message = str(info.value)
    assert OUTSIDE in message and "\n" not in message
    return message


def test_absolute_path_inside_a_root_is_allowed_and_resolved(tree: dict[str, Path]) -> None:
    assert confine([str(tree["root"] / "a.csv")], [str(tree["root"])]) == (os.path.realpath(tree["root"] / "a.csv"),)


def test_absolute_path_outside_every_root_is_refused_naming_the_path_and_the_roots(tree: dict[str, Path]) -> None:
    message = _refused(["/etc/passwd"], [str(tree["root"]), "data"])
    assert message == f"/etc/passwd: {OUTSIDE} (RFM_DATA_ROOTS: {tree['root']}, data)"
    assert "root:x" not in message
    _refused([str(tree["secret"] / "passwd.csv")], [str(tree["root"])])


def test_no_roots_refuses_everything(tree: dict[str, Path]) -> None:
    assert "none set" in _refused([str(tree["root"] / "a.csv")], [])


def test_relative_paths_and_dotdot_are_resolved_against_the_working_directory(
        tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree["base"])
    assert confine(["root/logs/../a.csv"], ["root"]) == (os.path.realpath(tree["root"] / "a.csv"),)
    _refused(["root/../secret/passwd.csv"], ["root"])
    _refused(["../../../../../../../../etc/passwd"], ["root"])
    monkeypatch.chdir(tree["root"] / "logs")
    _refused(["../../../../../../../../etc/passwd"], [str(tree["root"])])


def test_a_symlink_inside_a_root_pointing_outside_is_refused(tree: dict[str, Path]) -> None:
    link = tree["root"] / "innocent.csv"
    link.symlink_to(tree["secret"] / "passwd.csv")
    message = _refused([str(link)], [str(tree["root"])])
    assert str(tree["secret"]) not in message  # the target is not revealed
    folder_link = tree["root"] / "elsewhere"
    folder_link.symlink_to(tree["secret"], target_is_directory=True)
    _refused([str(folder_link / "passwd.csv")], [str(tree["root"])])
    _refused([str(folder_link)], [str(tree["root"])])


def test_a_root_that_is_a_symlink_allows_what_it_points_to(tree: dict[str, Path]) -> None:
    alias = tree["base"] / "alias"
    alias.symlink_to(tree["root"], target_is_directory=True)
    assert confine([str(tree["root"] / "a.csv")], [str(alias)]) == (os.path.realpath(tree["root"] / "a.csv"),)


def test_glob_inside_a_root_expands_and_a_matching_symlink_outside_refuses_it(tree: dict[str, Path]) -> None:
    root = tree["root"]
    assert confine([str(root / "*.csv")], [str(root)]) == (os.path.realpath(root / "a.csv"),)
    assert len(confine([str(root / "**" / "*.csv")], [str(root)])) == 2
    (root / "z.csv").symlink_to(tree["secret"] / "passwd.csv")
    message = _refused([str(root / "*.csv")], [str(root)])
    assert message.startswith(f"{root / '*.csv'}: ")


def test_glob_outside_a_root_is_refused_before_it_is_listed(tree: dict[str, Path]) -> None:
    _refused([str(tree["secret"] / "*")], [str(tree["root"])])
    _refused(["/root/.*"], [str(tree["root"])])
    _refused(["/etc/pass*"], [str(tree["root"])])
    # a `..` after a wildcard could climb out of the folder that was checked: refused whether or not it matches
    _refused([str(tree["root"] / "*" / ".." / ".." / "secret" / "*.csv")], [str(tree["root"])])
    _refused([str(tree["root"] / "*" / ".." / ".." / "secret" / "nothing-here*")], [str(tree["root"])])


def test_a_folder_holding_a_symlink_outside_is_refused(tree: dict[str, Path]) -> None:
    root = tree["root"]
    assert len(confine([str(root)], [str(root)])) == 2
    assert confine([str(root / "logs")], [str(root)]) == (os.path.realpath(root / "logs" / "b.csv"),)
    (root / "logs" / "leak.csv").symlink_to(tree["secret"] / "passwd.csv")
    message = _refused([str(root / "logs")], [str(root)])
    assert message.startswith(f"{root / 'logs'}: ")
    _refused([str(root)], [str(root)])


def test_tilde_is_expanded_first(tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tree["root"]))
    assert confine(["~/a.csv"], [str(tree["root"])]) == (os.path.realpath(tree["root"] / "a.csv"),)
    assert confine(["~/a.csv"], ["~"]) == (os.path.realpath(tree["root"] / "a.csv"),)
    monkeypatch.setenv("HOME", str(tree["secret"]))
    assert _refused(["~/passwd.csv"], [str(tree["root"])]).startswith("~/passwd.csv: ")


def test_a_missing_path_inside_a_root_is_the_usual_error(tree: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        confine([str(tree["root"] / "missing.csv")], [str(tree["root"])])
    with pytest.raises(DataError, match="no file matches"):
        confine([str(tree["root"] / "nothing*.csv")], [str(tree["root"])])
    # outside a root the refusal comes first: whether a file exists there is not revealed
    _refused([str(tree["secret"] / "missing.csv")], [str(tree["root"])])


def test_several_paths_are_all_checked(tree: dict[str, Path]) -> None:
    root = tree["root"]
    assert len(confine([str(root / "a.csv"), str(root / "logs")], [str(root)])) == 2
    _refused([str(root / "a.csv"), str(tree["secret"] / "passwd.csv")], [str(root)])


def test_a_nul_byte_is_one_error() -> None:
    with pytest.raises(DataError, match="not a valid path"):
        confine(["data/a\0.csv"], ["data"])


# --- uploads: cap, private per-session folder, original names in messages ----------------------


def test_an_upload_over_the_cap_is_refused_by_its_original_name_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "uploads" / "session"
    big = b"x" * (1024 * 1024 + 1)
    with pytest.raises(DataError) as info:
        datasets.save_upload("C:\\Users\\me\\big log.csv", big, folder, max_mb=1)
    assert str(info.value) == "big log.csv: 1.0 MB is over the upload limit of 1 MB (RFM_UPLOAD_MAX_MB)"
    assert not (tmp_path / "uploads").exists()
    assert datasets.save_upload("ok.csv", b"x" * (1024 * 1024), folder, max_mb=1).is_file()  # exactly at the cap


def test_uploads_live_in_a_private_folder_and_a_new_one_replaces_the_previous(tmp_path: Path) -> None:
    folder = datasets.start_upload_session(tmp_path / "uploads")
    assert folder.parent == tmp_path / "uploads" and len(folder.name) == 32 and not folder.exists()
    first = datasets.save_upload("first.csv", b"a\n1\n", folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    second = datasets.save_upload("second.csv", b"a\n2\n", folder)
    assert not first.exists() and second.is_file() and list(folder.iterdir()) == [second]
    assert datasets.start_upload_session(tmp_path / "uploads") != folder  # every session its own


def test_stale_session_folders_are_removed_when_a_session_starts(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    old = datasets.start_upload_session(root)
    datasets.save_upload("old.csv", b"a\n1\n", old)
    fresh = datasets.start_upload_session(root)
    datasets.save_upload("fresh.csv", b"a\n2\n", fresh)
    legacy = root / f"{'0' * 16}-legacy.csv"  # the flat layout of earlier versions
    legacy.write_text("a\n3\n")
    keep = root / "not-ours"
    keep.mkdir()
    day_ago = time.time() - 25 * 3600
    for path in (old, legacy, keep):
        os.utime(path, (day_ago, day_ago))
    datasets.start_upload_session(root)
    assert not old.exists() and not legacy.exists()
    assert fresh.is_dir() and keep.is_dir()


def test_messages_about_an_upload_name_the_original_file_not_the_server_path(tmp_path: Path) -> None:
    stored = datasets.save_upload("broken.parquet", b"InvoiceNo,CustomerID\n1,2\n", tmp_path / "up" / "s")
    with pytest.raises(DataError) as info:
        datasets.load_dataset(datasets.file_request([stored]))
    raw = str(info.value)
    assert str(stored) in raw  # what the reader says today ...
    shown = datasets.upload_message(raw, stored, "broken.parquet")
    assert shown.startswith("broken.parquet: ") and str(tmp_path) not in shown and stored.name not in shown
    shop = datasets.save_upload("shop.csv", b"Kunde,Betrag\na,1\n", tmp_path / "up" / "s")
    check = datasets.check_mapping(str(shop))  # the column-mapping step names the file by its base name
    assert check.error is not None and shop.name in check.error
    shown = datasets.upload_message(check.error, shop, "shop.csv")
    assert shown.startswith("shop.csv: ") and shop.name not in shown


def _workbook(path: Path) -> bytes:
    """A small workbook with a shop's own headers (the mapping step's case) and an integer-looking id
    that Excel stores as a float."""
    lines = pd.DataFrame({"Order Ref": ["536365", "536366", "C536367", "536368"],
                          "Client": [17850.0, 17850.0, 17850.0, 13047.0],
                          "Order Time": pd.to_datetime(["2010-12-01 08:26", "2010-12-02 09:00", "2010-12-03 10:00",
                                                        "2010-12-04 11:00"]),
                          "Qty": [6, 2, -1, 3], "Price Each": [2.55, 3.39, 2.55, 4.25],
                          "Country": ["United Kingdom"] * 4})
    lines.to_excel(path, index=False)
    return path.read_bytes()


def test_an_uploaded_workbook_is_kept_as_a_parquet_copy_that_reads_the_same(tmp_path: Path) -> None:
    original = tmp_path / "shop export.xlsx"
    data = _workbook(original)
    folder = tmp_path / "up" / "s"
    stored = datasets.save_upload("shop export.xlsx", data, folder)
    assert stored.name.endswith("shop_export.xlsx.parquet") and list(folder.iterdir()) == [stored]
    assert stored.read_bytes()[:4] == b"PAR1"
    mapping = SourceOptions(mapping={"customer_id": "Client", "invoice_id": "Order Ref",
                                     "invoice_date": "Order Time", "quantity": "Qty", "unit_price": "Price Each"})
    from_copy = compute_rfm([stored], mapping).table
    from_workbook = compute_rfm([original], mapping).table
    pd.testing.assert_frame_equal(from_copy, from_workbook)
    assert list(from_copy["customer_id"]) == ["13047", "17850"]  # the float ids print as integers
    # The same upload again (every rerun of the page) reuses the copy; the preview reads it too.
    assert datasets.save_upload("shop export.xlsx", data, folder) == stored
    assert datasets.check_mapping(str(stored)).columns == ["Order Ref", "Client", "Order Time", "Qty", "Price Each",
                                                           "Country"]


def test_a_broken_workbook_upload_is_refused_by_its_original_name_and_nothing_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "up" / "s"
    with pytest.raises(DataError) as info:
        datasets.save_upload("Q4 sales.xlsx", b"PK\x03\x04 not really a workbook", folder)
    message = str(info.value)
    assert message.startswith("Q4 sales.xlsx: ") and str(tmp_path) not in message, message
    assert list(folder.iterdir()) == []


def test_a_gzipped_csv_upload_is_kept_decompressed_and_reads_the_same(tmp_path: Path) -> None:
    import gzip

    text = (b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            b"536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
            b"536366,22633,HAND WARMER,6,2010-12-02 08:28:00,1.85,13047,United Kingdom\n")
    original = tmp_path / "sales.csv.gz"
    original.write_bytes(gzip.compress(text))
    folder = tmp_path / "up" / "s"
    stored = datasets.save_upload("sales.csv.gz", original.read_bytes(), folder)
    assert stored.name.endswith("-sales.csv") and list(folder.iterdir()) == [stored]
    assert stored.read_bytes() == text
    pd.testing.assert_frame_equal(compute_rfm([stored]).table, compute_rfm([original]).table)
    assert datasets.save_upload("sales.csv.gz", original.read_bytes(), folder) == stored  # a rerun reuses it


def test_a_gzip_that_expands_too_much_or_is_broken_stays_as_uploaded(tmp_path: Path) -> None:
    import gzip

    bomb = gzip.compress(b"a,b\n" + b"0" * (datasets.GZIP_EXPANSION_LIMIT * 200_000))
    stored = datasets.save_upload("huge.csv.gz", bomb, tmp_path / "up" / "a")
    assert stored.name.endswith("-huge.csv.gz") and stored.read_bytes() == bomb
    broken = datasets.save_upload("broken.csv.gz", b"\x1f\x8b\x08\x00 not gzip at all", tmp_path / "up" / "b")
    assert broken.name.endswith("-broken.csv.gz")
    with pytest.raises(DataError) as info:
        compute_rfm([broken])
    shown = datasets.upload_message(str(info.value), broken, "broken.csv.gz")
    assert shown.startswith("broken.csv.gz: cannot be read: not a complete gzip file ("), shown
