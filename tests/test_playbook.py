"""The segment playbook: each segment's description and recommended action (built-in for the known
names, analysts' own entries in <models_dir>/playbook.json), checked roles, the audit line, and the
export and naming table that carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rfm.dashboard import views
from rfm.errors import ModelError
from rfm.model import train_model
from rfm.model.profiles import DEFAULT_PLAYBOOK, FALLBACK_ENTRY, PlaybookEntry, default_playbook_entry, segment_key
from rfm.segments import SEGMENTS
from rfm.service import access, datasets, segmentation
from rfm.service.access import AccessDenied, Principal, Role

ANALYST = Principal("ana@example.com", "Ana", Role.ANALYST)
MARKETER = Principal("mo@example.com", "Mo", Role.MARKETER)


@pytest.fixture(scope="module")
def model(demo_table: pd.DataFrame):  # type: ignore[no-untyped-def]
    return train_model(demo_table, 4)


def test_every_known_name_has_advice_under_any_spelling() -> None:
    for name in (*SEGMENTS, "Champions", "Loyal Customers", "At-Risk", "Hibernating", "No Net Revenue"):
        entry = default_playbook_entry(name)
        assert entry is not FALLBACK_ENTRY, name
        assert entry.description and entry.action
    assert segment_key("At-Risk") == segment_key("at risk (High Spend)") == "atrisk"
    assert default_playbook_entry("Can't Lose") == DEFAULT_PLAYBOOK["cantlose"]
    assert default_playbook_entry("Something new") == FALLBACK_ENTRY


def test_analysts_write_entries_marketers_cannot(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with pytest.raises(AccessDenied):
        segmentation.save_playbook(MARKETER, tmp_path, {"Champions": ("d", "a")}, audit_log=audit)
    assert not segmentation.playbook_path(tmp_path).exists() and not audit.exists()

    changed = segmentation.save_playbook(ANALYST, tmp_path, {"VIP Buyers": ("  Our best   customers. ", "Call them.")},
                                         audit_log=audit)
    assert changed == {"VIP Buyers": PlaybookEntry("Our best customers.", "Call them.")}
    loaded = segmentation.load_playbook(tmp_path)
    assert loaded == {"vipbuyers": PlaybookEntry("Our best customers.", "Call them.")}
    assert segmentation.playbook_entry("vip buyers", loaded).action == "Call them."
    (event,) = access.read_audit_log(audit)
    assert event["what"] == "playbook" and event["who"] == "ana@example.com"
    assert event["segments"] == {"VIP Buyers": {"description": "Our best customers.", "action": "Call them."}}

    # Saving what is already there writes nothing and records nothing.
    assert segmentation.save_playbook(ANALYST, tmp_path, {"VIP Buyers": ("Our best customers.", "Call them.")},
                                      audit_log=audit) == {}
    assert len(access.read_audit_log(audit)) == 1


@pytest.mark.parametrize(("edit", "message"), [(("", "x"), "description cannot be empty"),
                                              (("x", "y" * 301), "action is longer than 300")])
def test_bad_entries_are_one_error_and_change_nothing(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        segmentation.save_playbook(ANALYST, tmp_path, {"Champions": edit}, audit_log=tmp_path / "a.jsonl")
    assert segmentation.load_playbook(tmp_path) == {}


def test_a_malformed_playbook_file_is_one_line_naming_it(tmp_path: Path) -> None:
    segmentation.playbook_path(tmp_path).write_text('{"segments": {"x": {"description": 3}}}')
    with pytest.raises(ModelError, match=r"playbook\.json: segment 'x'"):
        segmentation.load_playbook(tmp_path)
    segmentation.playbook_path(tmp_path).write_text("not json")
    with pytest.raises(ModelError, match=r"playbook\.json: cannot be read"):
        segmentation.load_playbook(tmp_path)


def test_a_renamed_segment_keeps_its_default_names_advice(model) -> None:  # type: ignore[no-untyped-def]
    renamed = model.renamed(0, "VIP Buyers")
    defaults = segmentation.default_names(renamed)
    entry = segmentation.playbook_entry("VIP Buyers", {}, defaults["VIP Buyers"])
    assert entry == DEFAULT_PLAYBOOK["champions"]
    # ... until an analyst writes the new name's own entry.
    own = {"vipbuyers": PlaybookEntry("Ours.", "Phone them.")}
    assert segmentation.playbook_entry("VIP Buyers", own, "Champions") == own["vipbuyers"]


def test_the_export_carries_description_and_action(demo_parquet: Path, model) -> None:  # type: ignore[no-untyped-def]
    dataset = datasets.load_dataset(datasets.file_request([demo_parquet]))
    plain = segmentation.export_frame(segmentation.apply(dataset, model))
    assert list(plain.columns)[-2:] == ["segment_description", "recommended_action"]
    champions = plain.loc[plain["segment"] == "Champions"]
    assert set(champions["recommended_action"]) == {DEFAULT_PLAYBOOK["champions"].action}
    edited = {"champions": PlaybookEntry("Best.", "Thank them.")}
    frame = segmentation.export_frame(segmentation.apply(dataset, model, edited))
    assert set(frame.loc[frame["segment"] == "Champions", "recommended_action"]) == {"Thank them."}
    assert frame.drop(columns=["segment_description", "recommended_action"]).equals(
        plain.drop(columns=["segment_description", "recommended_action"]))


def test_naming_table_edits_become_playbook_entries_under_the_new_name(model) -> None:  # type: ignore[no-untyped-def]
    table = views.naming_table(model)
    assert list(table.columns[:4]) == ["cluster", "name", "description", "action"]
    edited = table.copy()
    assert views.playbook_edits(table, edited) == {}
    edited.loc[0, "name"] = "VIP  Buyers"
    edited.loc[1, "action"] = "New action."
    edits = views.playbook_edits(table, edited)
    assert set(edits) == {"VIP Buyers", table.loc[1, "name"]}
    assert edits[table.loc[1, "name"]] == (table.loc[1, "description"], "New action.")
    assert views.renames(table, edited) == {0: "VIP  Buyers"}


def test_playbook_file_is_plain_json_kept_beside_the_versions(tmp_path: Path) -> None:
    segmentation.save_playbook(ANALYST, tmp_path, {"Champions": ("D.", "A.")}, audit_log=tmp_path / "a.jsonl")
    data = json.loads(segmentation.playbook_path(tmp_path).read_text())
    assert data == {"segments": {"Champions": {"description": "D.", "action": "A."}}}
    from rfm.model import ModelStore

    assert ModelStore(tmp_path).list_versions() == []  # the store does not take it for a version


def test_rfm_export_writes_the_analysts_playbook_like_the_dashboard(tmp_path: Path, demo_parquet: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI and the dashboard write one export: the entries analysts saved reach `rfm export` too."""
    import shutil

    from rfm.cli import main

    models = tmp_path / "models"
    shutil.copytree(Path(__file__).resolve().parents[1] / "models", models)
    segmentation.save_playbook(ANALYST, models, {"Champions": ("Our best.", "Send the VIP preview.")},
                               audit_log=tmp_path / "audit.jsonl")
    out = tmp_path / "export.csv"
    assert main(["export", "--data", str(demo_parquet), "--models-dir", str(models), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    champions = frame.loc[frame["segment"] == "Champions"]
    assert len(champions) and set(champions["recommended_action"]) == {"Send the VIP preview."}
    assert set(frame.loc[frame["segment"] == "Hibernating", "recommended_action"]) == {
        DEFAULT_PLAYBOOK["hibernating"].action}
