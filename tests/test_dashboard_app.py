"""The dashboard through Streamlit's AppTest: every page renders, and the widgets do what they say.

Runs on a small generated demo log (RFM_DEMO_DATA) and a temporary copy of models/ (RFM_MODELS_DIR),
so nothing is written into the repository. Expected figures come from the library directly
(compute_rfm + the saved model), not from the dashboard's own code paths.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from rfm.data.table import compute_rfm
from rfm.model import ModelStore

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "streamlit_app.py")
PAGES = ("pages/overview_page.py", "pages/segments_page.py", "pages/model_page.py", "pages/score_page.py",
         "pages/export_page.py")
TIMEOUT = 120


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    root = tmp_path / "models"
    shutil.copytree(REPO / "models", root)
    monkeypatch.setenv("RFM_MODELS_DIR", str(root))
    return ModelStore(root)


@pytest.fixture
def app(models: ModelStore, demo_parquet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AppTest:
    monkeypatch.setenv("RFM_DEMO_DATA", str(demo_parquet))
    monkeypatch.delenv("RFM_DATA", raising=False)
    monkeypatch.setenv("RFM_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RFM_DATA_ROOTS", str(tmp_path))  # the tests' Local path files live in tmp_path
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("RFM_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    _ok(at)
    return at


def _table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page that has all these columns (st.dataframe keys are not exposed)."""
    for frame in at.dataframe:
        value = frame.value
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_page_renders_and_shows_data_and_model(app: AppTest, models: ModelStore,
                                                     demo_table: pd.DataFrame) -> None:
    _ok(app)
    version = models.current_version()
    for page in PAGES:
        _goto(app, page)
        header = app.caption[0].value
        assert f"{len(demo_table):,} customers" in header
        assert str(version) in header, f"{page} does not show the active model version"
        assert app.title[0].value == Path(page).stem.removesuffix("_page").capitalize()


def test_overview_kpis_match_the_rfm_table(app: AppTest, demo_table: pd.DataFrame) -> None:
    assert _metric(app, "Customers") == f"{len(demo_table):,}"
    assert _metric(app, "Revenue (net)") == f"{demo_table['monetary'].sum():,.0f}"
    assert _metric(app, "Orders") == f"{demo_table['frequency'].sum():,}"
    assert _metric(app, "Snapshot date").startswith("2011-")
    assert _metric(app, "Period").endswith("months")


def test_retrain_with_k5_and_save_creates_a_version(app: AppTest, models: ModelStore) -> None:
    before = models.list_versions()
    _goto(app, "pages/model_page.py")
    app.slider(key="model_k").set_value(5).run()
    app.button(key="model_retrain").click().run()
    _ok(app)
    assert any("New model (k=5" in h.value for h in app.subheader)
    assert models.list_versions() == before, "retraining alone must not write a version"
    app.checkbox(key="candidate_promote").check()
    app.button(key="candidate_save").click().run()
    _ok(app)
    after = models.list_versions()
    new = sorted(set(after) - set(before))
    assert len(new) == 1
    assert models.load(new[0]).k == 5
    assert models.current_version() == new[0]
    assert app.sidebar.selectbox(key="model_version").value == new[0]
    assert any(new[0] in s.value for s in app.success)
    versions = _table(app, "version", "promoted", "silhouette")
    assert set(versions["version"]) == set(after)


def test_renaming_a_cluster_changes_the_name_on_segments(app: AppTest, models: ModelStore) -> None:
    version = str(models.current_version())
    _goto(app, "pages/segments_page.py")
    old_name = models.load(version).segment_name(0)
    assert old_name in set(_table(app, "segment", "customer_share", "description")["segment"])

    _goto(app, "pages/model_page.py")
    app.selectbox(key="rename_cluster").set_value(0)
    app.text_input(key="rename_name").input("  VIP   Buyers ")
    next(b for b in app.button if b.label == "Rename").click().run()
    _ok(app)
    assert models.load(version).segment_name(0) == "VIP Buyers"

    _goto(app, "pages/segments_page.py")
    names = set(_table(app, "segment", "customer_share", "description")["segment"])
    assert "VIP Buyers" in names and old_name not in names
    assert "VIP Buyers" in app.multiselect(key="seg_filter").options


def test_renaming_to_a_taken_name_is_one_error_and_changes_nothing(app: AppTest, models: ModelStore) -> None:
    version = str(models.current_version())
    names = [c.name for c in models.load(version).clusters]
    _goto(app, "pages/model_page.py")
    app.selectbox(key="rename_cluster").set_value(0)
    app.text_input(key="rename_name").input(names[1].upper())
    next(b for b in app.button if b.label == "Rename").click().run()
    assert not app.exception
    assert len(app.error) == 1 and "unique" in app.error[0].value
    assert [c.name for c in models.load(version).clusters] == names


def test_export_filters_rows(app: AppTest, models: ModelStore, demo_table: pd.DataFrame) -> None:
    model = models.load()
    assigned = model.assign(demo_table)
    _goto(app, "pages/export_page.py")
    target = model.segment_name(3)
    app.multiselect(key="export_segments").set_value([target]).run()
    _ok(app)
    expected = assigned.loc[assigned["segment"] == target]
    assert _metric(app, "Customers to export") == f"{len(expected):,}"
    preview = _table(app, "customer_id", "segment", "monetary")
    assert set(preview["segment"]) == {target}
    assert app.download_button[0].label == f"Download {len(expected):,} customers as CSV"

    app.number_input(key="export_min_monetary").set_value(500.0).run()
    _ok(app)
    richer = expected.loc[expected["monetary"] >= 500]
    assert 0 < len(richer) < len(expected)
    assert _metric(app, "Customers to export") == f"{len(richer):,}"
    assert _table(app, "customer_id", "segment", "monetary")["monetary"].min() >= 500


def test_score_page_scores_the_example_customer_and_an_existing_one(app: AppTest, models: ModelStore,
                                                                    demo_table: pd.DataFrame) -> None:
    model = models.load()
    _goto(app, "pages/score_page.py")
    assert app.number_input(key="score_recency").value == 15
    assert app.number_input(key="score_frequency").value == 12
    assert app.number_input(key="score_monetary").value == 540.0
    next(b for b in app.button if b.label == "Score").click().run()
    _ok(app)
    expected = model.predict_names([15, 12, 540.0])[0]
    assert any(expected in m.value for m in app.markdown)
    answer = json.loads(app.json[0].value)
    assert answer["segment"] == expected and answer["model_version"] == model.version
    assert answer["input_data"] == {"recency": 15, "frequency": 12, "monetary": 540.0}
    distances = _table(app, "segment", "distance")
    assert distances.iloc[0]["segment"] == expected  # nearest centroid = the scored segment

    customer = demo_table.sort_values("monetary").iloc[-1]
    app.radio(key="score_mode").set_value("Pick an existing customer").run()
    app.text_input(key="score_customer").input(str(customer["customer_id"])).run()
    _ok(app)
    name = model.predict_names([customer["recency"], customer["frequency"], customer["monetary"]])[0]
    assert any(name in m.value for m in app.markdown)

    app.text_input(key="score_customer").input("no-such-customer").run()
    assert not app.exception
    assert len(app.error) == 1 and "no-such-customer" in app.error[0].value


def test_unreachable_scoring_endpoint_is_one_error(app: AppTest) -> None:
    _goto(app, "pages/score_page.py")
    app.sidebar.text_input(key="scoring_endpoint").input("http://127.0.0.1:9").run()
    next(b for b in app.button if b.label == "Score").click().run()
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith("Scoring failed")


def test_bad_local_file_is_one_error_and_previous_data_stays(app: AppTest, tmp_path: Path,
                                                             demo_table: pd.DataFrame) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_text("InvoiceNo,CustomerID\n1,2\n")
    app.sidebar.radio(key="source_kind").set_value("Local path").run()
    app.sidebar.text_input(key="local_path").input(str(bad)).run()
    assert not app.exception
    assert len(app.error) == 1
    assert "broken.parquet" in app.error[0].value and "Parquet" in app.error[0].value
    assert "demo data" in app.error[0].value  # says what is shown instead
    assert _metric(app, "Customers") == f"{len(demo_table):,}"  # the previous data is still usable

    app.sidebar.text_input(key="local_path").input(str(tmp_path / "missing.csv")).run()
    assert not app.exception
    assert len(app.error) == 1 and "no such file" in app.error[0].value


def test_unrecognised_headers_get_a_mapping_step(app: AppTest, tmp_path: Path) -> None:
    log = tmp_path / "shop.csv"
    pd.DataFrame({
        "Kunde": ["A", "A", "B", "C"],
        "Beleg": ["1", "2", "3", "4"],
        "Zeitpunkt": ["2011-01-03", "2011-02-01", "2011-01-20", "2011-02-10"],
        "Umsatz": [10.0, 30.0, 5.5, 8.0],
    }).to_csv(log, index=False)
    app.sidebar.radio(key="source_kind").set_value("Local path").run()
    app.sidebar.text_input(key="local_path").input(str(log)).run()
    assert not app.exception and not app.error
    assert any("not all recognised" in w.value for w in app.warning)
    app.selectbox(key="map_customer_id").set_value("Kunde")
    app.selectbox(key="map_invoice_id").set_value("Beleg")
    app.selectbox(key="map_invoice_date").set_value("Zeitpunkt")
    app.selectbox(key="map_amount").set_value("Umsatz")
    next(b for b in app.button if b.label == "Apply mapping").click().run()
    _ok(app)
    assert not any("not all recognised" in w.value for w in app.warning)
    assert _metric(app, "Customers") == "3"
    assert _metric(app, "Revenue (net)") == "54"
    assert _metric(app, "Orders") == "4"


def test_returns_policy_and_snapshot_change_the_table(app: AppTest, demo_parquet: Path) -> None:
    from datetime import date

    from rfm.data.table import RfmOptions

    app.sidebar.radio(key="returns").set_value("exclude").run()
    _ok(app)
    excluded = compute_rfm([demo_parquet], options=RfmOptions(returns="exclude")).table
    assert _metric(app, "Revenue (net)") == f"{excluded['monetary'].sum():,.0f}"

    app.sidebar.toggle(key="custom_snapshot").set_value(True).run()
    app.sidebar.date_input(key="snapshot_date").set_value(date(2011, 6, 1)).run()
    _ok(app)
    early = compute_rfm([demo_parquet], options=RfmOptions(snapshot=date(2011, 6, 1), returns="exclude")).table
    assert _metric(app, "Customers") == f"{len(early):,}"
    assert _metric(app, "Snapshot date") == "2011-06-01"


def test_a_model_trained_on_other_data_is_flagged_with_a_one_click_retrain(app: AppTest, models: ModelStore,
                                                                           demo_table: pd.DataFrame) -> None:
    """The shipped model was trained on the 200,000-line demo log; this app shows a smaller log."""
    _ok(app)
    shipped = models.current_version()
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Model {shipped} was trained on demo data, 1,379 customers, snapshot 2011-12-10")
    assert f"other data (demo data, {len(demo_table):,} customers" in warnings[0]
    _goto(app, "pages/segments_page.py")
    assert len(app.warning) == 1  # on every page, where the user looks
    next(b for b in app.button if b.label.startswith("Retrain k=4 on this data")).click().run()
    _ok(app)
    new = [v for v in models.list_versions() if v != shipped]
    assert len(new) == 1 and models.load(new[0]).metadata.data_label == "demo data"
    assert models.current_version() == shipped  # the retrain is not promoted
    assert app.session_state["model_version"] == new[0]
    assert not app.warning and any(new[0] in s.value for s in app.success)


# --- data confinement and uploads (issue 11) --------------------------------------------------------


OUTSIDE = "outside the allowed data folders"


def _no_file_content_shown(at: AppTest, *needles: str) -> None:
    """Nothing of a refused file anywhere on the page: no table, no mapping step, no text quoting it."""
    assert not any("not all recognised" in w.value for w in at.warning)
    texts = [e.value for e in (*at.error, *at.warning, *at.markdown, *at.caption, *at.info)]
    for frame in at.dataframe:
        texts.append(frame.value.to_csv())
    for needle in needles:
        assert not any(needle in t for t in texts), needle


@pytest.mark.parametrize("typed", ["/etc/passwd", "../../../../etc/passwd", "/etc/*", "~root/.bashrc"])
def test_local_path_outside_the_data_roots_is_one_error_and_nothing_is_read(app: AppTest, typed: str,
                                                                           demo_table: pd.DataFrame) -> None:
    app.sidebar.radio(key="source_kind").set_value("Local path").run()
    app.sidebar.text_input(key="local_path").input(typed).run()
    assert not app.exception
    assert len(app.error) == 1
    assert app.error[0].value.startswith(f"{typed}: {OUTSIDE} (RFM_DATA_ROOTS: ")
    assert "demo data" in app.error[0].value  # the previous data is shown instead
    assert _metric(app, "Customers") == f"{len(demo_table):,}"
    _no_file_content_shown(app, "root:x:0:0", "/bin/bash", "/usr/sbin/nologin")


def test_local_path_inside_an_allowed_root_loads_and_a_symlink_out_of_it_is_refused(
        app: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed, secret = tmp_path / "allowed", tmp_path / "secret"
    allowed.mkdir()
    secret.mkdir()
    monkeypatch.setenv("RFM_DATA_ROOTS", f"{allowed},{tmp_path / 'also-allowed'}")
    log = pd.DataFrame({"CustomerID": ["A", "A", "B", "C"], "InvoiceNo": ["1", "2", "3", "4"],
                        "InvoiceDate": ["2011-01-03", "2011-02-01", "2011-01-20", "2011-02-10"],
                        "Quantity": [1, 3, 1, 2], "UnitPrice": [10.0, 10.0, 5.5, 4.0]})
    log.to_csv(allowed / "shop.csv", index=False)
    log.assign(CustomerID=["Secret-Customer"] * 4).to_csv(secret / "shop.csv", index=False)
    (allowed / "link.csv").symlink_to(secret / "shop.csv")

    app.sidebar.radio(key="source_kind").set_value("Local path").run()
    app.sidebar.text_input(key="local_path").input(str(allowed / "shop.csv")).run()
    _ok(app)
    assert _metric(app, "Customers") == "3"

    for typed in (str(secret / "shop.csv"), str(allowed / "link.csv"), str(allowed / "*.csv"), str(allowed)):
        app.sidebar.text_input(key="local_path").input(typed).run()
        assert not app.exception
        assert len(app.error) == 1 and app.error[0].value.startswith(f"{typed}: {OUTSIDE} (RFM_DATA_ROOTS: {allowed}, ")
        assert "shop.csv" in app.error[0].value.split("Showing")[1]  # the last good data stays
        _no_file_content_shown(app, "Secret-Customer")


class _FakeUpload:
    """What st.file_uploader returns (AppTest cannot upload a file)."""

    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_uploads_are_capped_kept_per_session_and_named_by_their_original_name(
        app: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_table: pd.DataFrame) -> None:
    import streamlit

    monkeypatch.setenv("RFM_UPLOAD_MAX_MB", "1")
    uploads = tmp_path / "uploads"
    chosen: list[_FakeUpload | None] = [None]
    monkeypatch.setattr(streamlit, "file_uploader", lambda *a, **k: chosen[0])
    app.sidebar.radio(key="source_kind").set_value("Upload a file").run()
    _ok(app)

    chosen[0] = _FakeUpload("big log.csv", b"x" * (1024 * 1024 + 1))
    app.run()
    assert not app.exception
    assert len(app.error) == 1
    assert app.error[0].value.startswith("big log.csv: 1.0 MB is over the upload limit of 1 MB (RFM_UPLOAD_MAX_MB)")
    assert _metric(app, "Customers") == f"{len(demo_table):,}"
    assert not any(uploads.rglob("*.csv")), "nothing of a refused upload is written"

    chosen[0] = _FakeUpload("broken.parquet", b"InvoiceNo,CustomerID\n1,2\n")
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith("broken.parquet: ")
    assert str(uploads) not in app.error[0].value and "-broken.parquet" not in app.error[0].value
    folder = Path(app.session_state["upload_folder"])
    assert folder.parent == uploads and oct(folder.stat().st_mode & 0o777) == "0o700"
    broken = list(folder.iterdir())

    log = "CustomerID,InvoiceNo,InvoiceDate,Quantity,UnitPrice\nA,1,2011-01-03,1,10\nB,2,2011-01-04,2,5\n"
    chosen[0] = _FakeUpload("shop.csv", log.encode())
    app.run()
    _ok(app)
    assert _metric(app, "Customers") == "2"
    assert [p.name for p in folder.iterdir()] != [p.name for p in broken] and len(list(folder.iterdir())) == 1


# --- sign-in and roles (rfm.dashboard.auth, rfm.service.access) ---------------------------------------

AUTH_SECRETS = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "a-long-test-cookie-secret",
                "client_id": "rfm", "client_secret": "secret",
                "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


def _signed_in(models: ModelStore, demo_parquet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               user: dict[str, object], page: str | None = None, analysts: str = "ann@shop.example") -> AppTest:
    monkeypatch.setenv("RFM_DEMO_DATA", str(demo_parquet))
    monkeypatch.delenv("RFM_DATA", raising=False)
    monkeypatch.setenv("RFM_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("RFM_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("RFM_ANALYSTS", analysts)
    monkeypatch.setenv("RFM_MARKETERS", "@shop.example,group:marketing")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH_SECRETS
    at.user = user
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_with_sign_in_configured_a_visitor_sees_the_sign_in_screen_and_no_data(
        models: ModelStore, demo_parquet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _signed_in(models, demo_parquet, monkeypatch, tmp_path, {"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe and not at.sidebar.selectbox and not at.sidebar.radio
    assert "_ctx" not in at.session_state


def test_a_signed_in_user_without_a_role_sees_one_line_and_no_data(
        models: ModelStore, demo_parquet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _signed_in(models, demo_parquet, monkeypatch, tmp_path,
                    {"is_logged_in": True, "email": "zed@other.example", "groups": ["sales"]})
    assert len(at.warning) == 1 and at.warning[0].value.startswith(
        "Signed in as zed@other.example, but no role gives you access to this dashboard")
    assert not at.metric and not at.dataframe and not at.sidebar.selectbox


def test_a_marketer_sees_data_and_export_but_no_model_controls(
        models: ModelStore, demo_parquet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _signed_in(models, demo_parquet, monkeypatch, tmp_path,
                    {"is_logged_in": True, "email": "mia@shop.example", "name": "Mia"})
    assert at.metric and not at.error
    assert any("Signed in as **mia@shop.example** (marketer)" in c.value for c in at.sidebar.caption)
    # The shipped model was trained on other data: the warning stays, its retrain button does not.
    assert len(at.warning) == 1 and not [b for b in at.button if b.label.startswith("Retrain")]
    at.switch_page("pages/model_page.py").run()
    assert not at.exception and not at.error
    keys = {b.key for b in at.button}
    assert not keys & {"model_retrain", "candidate_save", "names_save", "model_promote"}
    assert not at.get("form_submit_button") and not at.slider(key="model_k").disabled
    at.switch_page("pages/export_page.py").run()
    assert not at.exception and at.get("download_button")


def test_an_analyst_signed_in_through_a_group_sees_the_model_controls(
        models: ModelStore, demo_parquet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _signed_in(models, demo_parquet, monkeypatch, tmp_path,
                    {"is_logged_in": True, "email": "ann@other.example", "groups": ["rfm-analysts"]},
                    page="pages/model_page.py", analysts="group:rfm-analysts")
    assert {"model_retrain", "names_save"} <= {b.key for b in at.button}
    assert any("(analyst)" in c.value for c in at.sidebar.caption)
    at.selectbox(key="rename_cluster").set_value(0)
    at.text_input(key="rename_name").input("Best customers")
    at.get("form_submit_button")[0].click().run()
    assert not at.exception and not at.error
    version = str(models.current_version())
    assert models.load(version).segment_name(0) == "Best customers"
    [event] = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert event["who"] == "ann@other.example" and event["what"] == "rename" and event["version"] == version


def test_local_mode_says_so_and_records_as_local(app: AppTest, models: ModelStore, tmp_path: Path) -> None:
    assert any(c.value == "Local mode: no sign-in; only this machine can open the dashboard"
               for c in app.sidebar.caption)
    next(b for b in app.button if b.label.startswith("Retrain k=4 on this data")).click().run()
    _ok(app)
    [event] = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert event["who"] == "local" and event["what"] == "retrain" and event["version"] in models.list_versions()
