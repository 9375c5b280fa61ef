"""rfm.service.access: roles from the settings, refusals in the service layer, the audit log."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from rfm.config import Settings, load_settings
from rfm.errors import RfmError
from rfm.model import ModelStore
from rfm.service import access, datasets, segmentation
from rfm.service.access import LOCAL, AccessDenied, Action, Principal, Role, role_for

REPO = Path(__file__).resolve().parents[1]


def _settings(analysts: list[str], marketers: list[str], groups_claim: str = "groups") -> Settings:
    return load_settings({"analysts": analysts, "marketers": marketers, "groups_claim": groups_claim}, env={})


@pytest.fixture(scope="module")
def dataset(demo_parquet: Path) -> datasets.Dataset:
    return datasets.load_dataset(datasets.file_request([demo_parquet]))


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    shutil.copytree(REPO / "models", tmp_path / "models")
    return ModelStore(tmp_path / "models")


MARKETER = Principal("mia@shop.example", "Mia", Role.MARKETER)
ANALYST = Principal("ann@shop.example", "Ann", Role.ANALYST)


# --- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "email", "groups", "expected"), [
    ("ann@shop.example", "ann@shop.example", None, True),
    ("Ann@Shop.Example", "aNN@shop.EXAMPLE", None, True),  # e-mails are case-insensitive
    ("ann@shop.example", "anne@shop.example", None, False),
    ("ann@shop.example", "ann@shop.example.evil", None, False),
    ("@shop.example", "bob@shop.example", None, True),
    ("@SHOP.example", "bob@Shop.Example", None, True),
    ("@shop.example", "bob@sub.shop.example", None, False),  # the exact domain, not subdomains
    ("@shop.example", "bob@evilshop.example", None, False),
    ("@shop.example", None, None, False),
    ("group:rfm-analysts", "x@y.example", ["staff", "RFM-Analysts"], True),
    ("group:rfm-analysts", "x@y.example", "staff rfm-analysts", True),  # a claim given as one string
    ("group:rfm-analysts", "x@y.example", ["rfm-analysts-old"], False),
    ("group:rfm-analysts", "x@y.example", None, False),
    ("group:", "x@y.example", [""], False),
    ("", "x@y.example", None, False),
])
def test_an_entry_matches_email_domain_or_group(entry: str, email: str | None, groups: object,
                                                expected: bool) -> None:
    assert access.matches(entry, email, groups) is expected  # type: ignore[arg-type]


def test_roles_come_from_the_settings_and_analyst_wins() -> None:
    settings = _settings(["ann@shop.example", "group:data"], ["@shop.example", "group:marketing"])
    assert role_for("ANN@shop.example", None, settings) is Role.ANALYST
    assert role_for("mia@shop.example", None, settings) is Role.MARKETER
    assert role_for("mia@shop.example", ["data"], settings) is Role.ANALYST  # both match: analyst wins
    assert role_for("zed@other.example", ["marketing"], settings) is Role.MARKETER
    assert role_for("zed@other.example", ["sales"], settings) is None
    assert role_for(None, None, settings) is None
    assert role_for("ann@shop.example", None, _settings([], [])) is None  # nobody by default


def test_the_groups_claim_is_named_by_the_settings_and_unverified_emails_do_not_count() -> None:
    settings = _settings(["group:admins"], ["@shop.example"], groups_claim="cognito:groups")
    claims = {"email": "ann@other.example", "name": "Ann", "cognito:groups": ["admins"], "groups": ["x"]}
    assert access.principal_for(claims, settings) == Principal("ann@other.example", "Ann", Role.ANALYST)
    assert access.principal_for({"email": "ann@other.example", "groups": ["admins"]}, settings).role is None
    assert access.principal_for({"email": "mia@shop.example"}, settings).role is Role.MARKETER
    assert access.principal_for({"email": "mia@shop.example", "email_verified": False}, settings).role is None


def test_env_lists_are_comma_separated() -> None:
    settings = load_settings(env={"RFM_ANALYSTS": "ann@shop.example, group:data", "RFM_MARKETERS": "@shop.example"})
    assert settings.analysts == ["ann@shop.example", "group:data"]
    assert role_for("bob@shop.example", [], settings) is Role.MARKETER


def test_require_refuses_a_marketer_the_analysts_actions_in_one_line() -> None:
    for action in (Action.VIEW, Action.SCORE, Action.EXPORT):
        access.require(MARKETER, action)
        access.require(ANALYST, action)
    for action in (Action.RETRAIN, Action.RENAME, Action.PROMOTE):
        access.require(ANALYST, action)
        access.require(LOCAL, action)  # local mode acts as an analyst
        with pytest.raises(AccessDenied) as caught:
            access.require(MARKETER, action)
        assert isinstance(caught.value, RfmError)
        message = str(caught.value)
        assert "\n" not in message and "mia@shop.example is a marketer: only analysts may" in message
    nobody = Principal("zed@other.example", "Zed", None)
    with pytest.raises(AccessDenied, match="has no role"):
        access.require(nobody, Action.VIEW)


def test_local_is_an_analyst_recorded_as_local() -> None:
    assert LOCAL.role is Role.ANALYST and LOCAL.who == "local" and LOCAL.can(Action.PROMOTE)


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.1.1", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("", False), (None, False), ("example.com", False),
])
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert access.is_loopback(address) is loopback


# --- the audit log -------------------------------------------------------------------------------


def test_audit_lines_are_appended_as_json_with_mode_0600(tmp_path: Path) -> None:
    log = tmp_path / "deep" / "folder" / "audit.jsonl"
    access.audit(log, ANALYST, "rename", version="v1", segments={"0": {"from": "A", "to": "B"}})
    access.audit(log, LOCAL, "export", version="v1", segments=["Champions"], rows=12)
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["who"] == "ann@shop.example" and first["role"] == "analyst" and first["what"] == "rename"
    assert first["when"].endswith("+00:00") and first["version"] == "v1"
    assert second == {**second, "who": "local", "what": "export", "segments": ["Champions"], "rows": 12}
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert access.read_audit_log(log) == [first, second]


def test_an_unwritable_audit_log_stops_the_action(tmp_path: Path, store: ModelStore) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    current = store.current_version()
    assert current is not None
    with pytest.raises(access.AuditError, match="cannot write the audit log"):
        access.rename(ANALYST, store, current, {0: "Renamed"}, audit_log=blocked / "audit.jsonl")
    assert store.load(current).segment_name(0) != "Renamed"


# --- the jobs: refused before anything happens, recorded when done --------------------------------


def test_a_marketer_is_refused_before_anything_changes(tmp_path: Path, store: ModelStore,
                                                       dataset: datasets.Dataset) -> None:
    log = tmp_path / "audit.jsonl"
    versions, current = store.list_versions(), store.current_version()
    assert current is not None
    names = [c.name for c in store.load(current).clusters]
    metadata = (store.root / current / "metadata.json").read_bytes()
    model = access.train(ANALYST, dataset, 3)
    attempts = [
        lambda: access.train(MARKETER, dataset, 3),
        lambda: access.save(MARKETER, store, model, audit_log=log),
        lambda: access.save(MARKETER, store, model, promote=True, audit_log=log),
        lambda: access.train_and_save(MARKETER, store, dataset, 3, audit_log=log),
        lambda: access.rename(MARKETER, store, current, {0: "Mine now"}, audit_log=log),
        lambda: access.promote(MARKETER, store, versions[0], audit_log=log),
    ]
    for attempt in attempts:
        with pytest.raises(AccessDenied, match="only analysts may"):
            attempt()
    assert store.list_versions() == versions
    assert store.current_version() == current
    assert [c.name for c in store.load(current).clusters] == names
    assert (store.root / current / "metadata.json").read_bytes() == metadata
    assert not log.exists()


def test_analyst_jobs_are_done_and_recorded(tmp_path: Path, store: ModelStore, dataset: datasets.Dataset) -> None:
    log = tmp_path / "audit.jsonl"
    previous = store.current_version()
    saved = access.save(ANALYST, store, access.train(ANALYST, dataset, 3), promote=True, audit_log=log)
    retrained = access.train_and_save(ANALYST, store, dataset, 4, audit_log=log)
    first = store.load(retrained).segment_name(0)
    access.rename(ANALYST, store, retrained, {0: "Best customers"}, audit_log=log)
    access.promote(ANALYST, store, retrained, audit_log=log)
    assert store.current_version() == retrained and store.load(retrained).segment_name(0) == "Best customers"
    events = access.read_audit_log(log)
    assert [(e["what"], e["version"]) for e in events] == [
        ("save", saved), ("promote", saved), ("retrain", retrained), ("rename", retrained), ("promote", retrained)]
    assert events[0]["promoted"] is True and events[0]["k"] == 3
    assert events[3]["segments"] == {"0": {"from": first, "to": "Best customers"}}
    assert events[4]["previous"] == saved and previous != saved
    assert all(e["who"] == "ann@shop.example" and e["role"] == "analyst" for e in events)


def test_exports_are_for_both_roles_and_recorded_with_the_row_count(tmp_path: Path, store: ModelStore,
                                                                   dataset: datasets.Dataset) -> None:
    log = tmp_path / "audit.jsonl"
    model = store.load(None)
    result = segmentation.apply(dataset, model)
    filters = segmentation.ExportFilter(segments=(model.segment_name(0),), min_monetary=100.0)
    frame, data = access.export(MARKETER, result, filters, audit_log=log)
    assert data == segmentation.export_csv(segmentation.export_frame(result, filters))  # the CLI's bytes
    preview = access.export_rows(ANALYST, result, filters)
    assert len(preview) == len(frame) > 0
    [event] = access.read_audit_log(log)  # the preview is not an export
    assert event["who"] == "mia@shop.example" and event["role"] == "marketer" and event["what"] == "export"
    assert event["version"] == model.version and event["segments"] == [model.segment_name(0)]
    assert event["rows"] == len(frame) and event["min_monetary"] == 100.0 and "countries" not in event
    with pytest.raises(AccessDenied, match="has no role"):
        access.export(Principal("zed@other.example"), result, filters, audit_log=log)
    assert len(access.read_audit_log(log)) == 1
