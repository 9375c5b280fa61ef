"""The dashboard through Streamlit's AppTest: every page renders, and the widgets do what they say.

Runs on a small generated demo log (RFM_DEMO_DATA) and a temporary copy of models/ (RFM_MODELS_DIR),
so nothing is written into the repository. Expected figures come from the library directly
(compute_rfm + the saved model), not from the dashboard's own code paths.
"""

from __future__ import annotations

import json
import re
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


def _markdown_column(at: AppTest, header: str, column: str) -> list[str]:
    """A column of the first Markdown table whose header row starts with `header` (escapes undone)."""
    for block in at.markdown:
        lines = block.value.splitlines()
        if lines and lines[0].startswith(header):
            names = [c.strip() for c in lines[0].strip("|").split(" | ")]
            rows = [re.split(r"(?<!\\) \| ", line.strip().strip("|").strip()) for line in lines[2:]]
            return [re.sub(r"\\(.)", r"\1", row[names.index(column)]) for row in rows]
    raise AssertionError(f"no Markdown table starting with {header!r}")


def _version_selector(at: AppTest):  # type: ignore[no-untyped-def]
    """The sidebar's model version selector (its key names the promoted version, so found by label)."""
    return next(s for s in at.sidebar.radio if s.label == "Active model version")


def _version_button(at: AppTest) -> str:
    """The label of the sidebar's model popover: the button that shows the active version."""
    (popover,) = at.sidebar.get("popover")
    return str(popover.proto.popover.label)


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
    assert _metric(app, "Revenue (net of returns)") == f"£{demo_table['monetary'].sum():,.0f}"
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
    assert _version_selector(app).value == new[0]
    assert any(new[0] in s.value for s in app.success)
    versions = _table(app, "version", "promoted", "silhouette")
    assert set(versions["version"]) == set(after)


def test_renaming_a_cluster_changes_the_name_on_segments(app: AppTest, models: ModelStore) -> None:
    version = str(models.current_version())
    _goto(app, "pages/segments_page.py")
    old_name = models.load(version).segment_name(0)
    assert old_name in _markdown_column(app, "| Segment | Cluster |", "Segment")  # the profiles

    _goto(app, "pages/model_page.py")
    app.selectbox(key="rename_cluster").set_value(0)
    app.text_input(key="rename_name").input("  VIP   Buyers ")
    next(b for b in app.button if b.label == "Rename").click().run()
    _ok(app)
    assert models.load(version).segment_name(0) == "VIP Buyers"

    _goto(app, "pages/segments_page.py")
    names = _markdown_column(app, "| Segment | Cluster |", "Segment")
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
    assert _metric(app, "Revenue (net of returns)") == "£54"
    assert _metric(app, "Orders") == "4"


def test_returns_policy_and_snapshot_change_the_table(app: AppTest, demo_parquet: Path) -> None:
    from datetime import date

    from rfm.data.table import RfmOptions

    app.sidebar.radio(key="returns").set_value("exclude").run()
    _ok(app)
    excluded = compute_rfm([demo_parquet], options=RfmOptions(returns="exclude")).table
    assert _metric(app, "Revenue (returns ignored)") == f"£{excluded['monetary'].sum():,.0f}"

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


# --- issue 15: numbers a marketer can trust ---------------------------------------------------------


def _fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, params: dict[str, object]) -> AppTest:
    """A new session (as a reload or a shared link makes one) opened at the root with these URL parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    return at


def test_restore_seeds_the_widgets_of_the_page_a_link_opens() -> None:
    from datetime import date

    from rfm.dashboard import urlstate

    state: dict[str, object] = {}
    urlstate.restore({"source": ["path"], "path": ["data/a.csv"], "returns": ["exclude"], "snapshot": ["2011-11-01"],
                      "model": ["V1"], "segments": ["Champions", "At-Risk"], "axis": ["frequency"],
                      "min_spend": ["50"]}, state, "segments")
    assert state["source_kind"] == "Local path" and state["local_path"] == "data/a.csv"
    assert state["returns"] == "exclude" and state["custom_snapshot"] is True
    assert state["snapshot_date"] == date(2011, 11, 1) and state["model_version"] == "V1"
    assert state["seg_filter"] == ["Champions", "At-Risk"] and state["seg_axis"] == "frequency"
    assert "export_min_monetary" not in state  # the Export page's parameter, not this page's
    again = dict(state)
    urlstate.restore({"returns": ["net"]}, state, "segments")  # once per session: later runs keep the widgets
    assert state == again
    bad: dict[str, object] = {}
    urlstate.restore({"snapshot": ["not-a-date"], "returns": ["gross"], "max_recency": ["x"]}, bad, "export")
    assert set(bad) == {urlstate.RESTORED}  # a malformed link falls back to the defaults


def test_the_view_goes_into_the_url_and_a_new_session_restores_it(app: AppTest, models: ModelStore,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    from datetime import date

    app.sidebar.radio(key="returns").set_value("exclude").run()
    app.sidebar.toggle(key="custom_snapshot").set_value(True).run()
    app.sidebar.date_input(key="snapshot_date").set_value(date(2011, 11, 1)).run()
    _goto(app, "pages/segments_page.py")
    target = models.load().segment_name(1)
    app.multiselect(key="seg_filter").set_value([target]).run()
    _ok(app)
    params = dict(app.query_params)
    assert params["returns"] == "exclude" and params["snapshot"] == "2011-11-01"
    assert params["model"] == models.current_version() and params["segments"] == target
    assert params["source"] == "demo"

    # A shared link (a new session, the same parameters) shows the same view. AppTest cannot open a
    # page's own URL first (the browser test does, with the page filters): here the link lands on the
    # root, which forwards to the Overview with the parameters.
    shared = _fresh(monkeypatch, tmp_path, params)
    _ok(shared)
    assert shared.title[0].value == "Overview"
    assert shared.sidebar.radio(key="returns").value == "exclude"
    assert shared.sidebar.date_input(key="snapshot_date").value == date(2011, 11, 1)
    assert _version_selector(shared).value == params["model"]
    header = app.caption[0].value
    assert shared.caption[0].value == header  # the same data, snapshot, returns and model

    # Another page's filters are not carried: the Export page's parameters are its own.
    _goto(app, "pages/export_page.py")
    assert dict(app.query_params).get("segments") == models.load().segment_name(0)


def test_a_link_from_an_upload_says_uploads_are_not_in_links(monkeypatch: pytest.MonkeyPatch, app: AppTest,
                                                             tmp_path: Path) -> None:
    shared = _fresh(monkeypatch, tmp_path, {"source": "upload"})
    assert not shared.exception
    assert shared.title[0].value == "Upload a file"
    assert any("uploads are not part of a link" in i.value for i in shared.info)
    assert not shared.metric  # no figures of the demo data in the meantime


def test_upload_without_a_file_shows_the_hint_not_the_demo_data(app: AppTest) -> None:
    app.sidebar.radio(key="source_kind").set_value("Upload a file").run()
    assert not app.exception and not app.error
    assert app.title[0].value == "Upload a file"
    assert any("Browse files" in i.value for i in app.info)
    assert not app.metric and not app.dataframe


def test_mapping_step_is_in_the_main_area_with_the_map_arguments(app: AppTest, tmp_path: Path) -> None:
    log = tmp_path / "laden-export.csv"
    pd.DataFrame({"Kunde": ["A", "B"], "Beleg": ["1", "2"], "Zeitpunkt": ["2011-01-03", "2011-02-01"],
                  "Umsatz": [10.0, 5.5], "Country": ["DE", "AT"]}).to_csv(log, index=False)
    app.sidebar.radio(key="source_kind").set_value("Local path").run()
    app.sidebar.text_input(key="local_path").input(str(log)).run()
    assert app.title[0].value == "Map your columns" and not app.metric  # no demo figures meanwhile
    assert not app.sidebar.selectbox or all(not s.key or not s.key.startswith("map_") for s in app.sidebar.selectbox)
    assert app.selectbox(key="map_country").value == "Country"  # the guess is preselected
    assert app.selectbox(key="map_customer_id").value == "(none)"
    assert list(app.dataframe[0].value.columns) == ["Kunde", "Beleg", "Zeitpunkt", "Umsatz", "Country"]
    assert "laden-export.csv" in app.warning[0].value and str(tmp_path) not in app.warning[0].value
    assert not any("--map" in c.value for c in app.caption)  # the selectors are the way, not a CLI flag
    app.selectbox(key="map_customer_id").set_value("Kunde")
    app.selectbox(key="map_invoice_date").set_value("Zeitpunkt")
    app.selectbox(key="map_amount").set_value("Umsatz").run()
    assert app.code[0].value == ("--map customer_id=Kunde --map invoice_date=Zeitpunkt --map amount=Umsatz "
                                 "--map country=Country")  # follows the choices as they are made
    next(b for b in app.button if b.label == "Apply mapping").click().run()
    _ok(app)
    assert app.title[0].value == "Overview" and _metric(app, "Customers") == "2"


def test_map_arguments_are_shell_ready() -> None:
    from rfm.dashboard.sidebar import map_args
    from rfm.data.columns import parse_map_args

    text = map_args({"customer_id": "Customer ID", "amount": "Umsatz"})
    assert text == "--map 'customer_id=Customer ID' --map amount=Umsatz"
    import shlex

    words = shlex.split(text)
    assert parse_map_args(words[1::2]) == {"customer_id": "Customer ID", "amount": "Umsatz"}


def _markdown_rows(at: AppTest, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with `header`."""
    text = next(m.value for m in at.markdown if m.value.startswith(header))
    return [[cell.strip().strip("*") for cell in line.strip("|").split(" | ")] for line in text.splitlines()[2:]]


def _money(text: str) -> float:
    return float(text.replace("−", "-").replace("£", "").replace(",", ""))


def test_data_panel_reconciles_the_raw_revenue_with_the_figure_shown(app: AppTest, demo_parquet: Path) -> None:
    import duckdb

    raw = duckdb.connect().execute(f"SELECT count(*), sum(Quantity * UnitPrice) FROM '{demo_parquet}'").fetchone()
    assert raw is not None
    steps = _markdown_rows(app, "| Step | Lines | Revenue |")
    assert steps[0] == ["revenue of every line read", f"{raw[0]:,}", f"£{raw[1]:,.2f}"]
    assert steps[-1][0] == "revenue shown"
    shown = _money(steps[-1][2])
    assert sum(_money(row[2]) for row in steps[:-1]) == pytest.approx(shown, abs=0.005 * len(steps))
    assert not any("not explained" in row[0] for row in steps)  # every step measured, none a residual
    customers = int(_metric(app, "Customers").replace(",", ""))
    assert steps[-2][0].startswith("rounding") and abs(_money(steps[-2][2])) <= 0.005 * customers
    assert _metric(app, "Revenue (net of returns)") == f"£{shown:,.0f}"
    report = _markdown_rows(app, "| Step | Value |")
    assert report[0] == ["lines read", f"{raw[0]:,}"]
    no_customer = next(row for row in report if row[0] == "dropped: no customer id")  # the reconciliation's words
    assert no_customer[1] == next(row[1] for row in steps if row[0] == "dropped: no customer id")
    from rfm.service import datasets

    cleaning = datasets.load_dataset(datasets.file_request([demo_parquet]), with_cleaning_report=True).cleaning
    assert cleaning is not None
    assert [row[0] for row in report] == [row.label for row in cleaning.rows()]  # the rows rfm ingest prints
    net = next(row[1] for row in report if row[0] == "net revenue of the lines kept")
    assert net.startswith("£") and _money(net) == pytest.approx(cleaning.net_revenue, abs=0.005)
    assert any(b.label == "Download the reconciliation (CSV)" for b in app.get("download_button"))


def test_snapshot_defaults_to_the_day_after_the_data_and_a_date_outside_is_flagged(app: AppTest) -> None:
    from datetime import date, timedelta

    auto = _metric(app, "Snapshot date")
    app.sidebar.toggle(key="custom_snapshot").set_value(True).run()
    _ok(app)
    assert app.sidebar.date_input(key="snapshot_date").value.isoformat() == auto  # same figures as automatic
    assert _metric(app, "Snapshot date") == auto and not any("Snapshot" in w.value for w in app.warning)
    later = date.fromisoformat(auto) + timedelta(days=400)
    app.sidebar.date_input(key="snapshot_date").set_value(later).run()
    flagged = [w.value for w in app.warning if "after the data ends" in w.value]
    assert len(flagged) == 2  # in the sidebar and under the page title
    assert "every recency grows by 400 days" in flagged[0]
    app.sidebar.date_input(key="snapshot_date").set_value(date(2001, 1, 1)).run()
    assert any("on or before the data's first day" in w.value for w in app.warning)


def test_currency_setting_is_on_every_money_figure(models: ModelStore, demo_parquet: Path,
                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RFM_DEMO_DATA", str(demo_parquet))
    monkeypatch.delenv("RFM_DATA", raising=False)
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "none.toml"))
    monkeypatch.setenv("RFM_UPLOAD_DIR", str(tmp_path / "up"))
    monkeypatch.setenv("RFM_CURRENCY", "eur")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    _ok(at)
    assert _metric(at, "Revenue (net of returns)").startswith("€")
    assert "amounts in EUR" in at.caption[0].value
    _goto(at, "pages/export_page.py")
    assert at.number_input(key="export_min_monetary").label == "Minimum spend in EUR (optional)"


def test_promoting_shows_promoted_in_the_version_selector(app: AppTest, models: ModelStore) -> None:
    _goto(app, "pages/model_page.py")
    app.slider(key="model_k").set_value(3).run()
    app.button(key="model_retrain").click().run()
    app.button(key="candidate_save").click().run()
    _ok(app)
    new = _version_selector(app).value
    assert new != models.current_version()
    app.button(key="model_promote").click().run()
    _ok(app)
    selector = _version_selector(app)
    assert models.current_version() == new
    assert f"{new} (promoted)" in selector.options
    assert sum("(promoted)" in o for o in selector.options) == 1
    assert _version_button(app) == f"{new} (promoted)"
    old = next(v for v in models.list_versions() if v != new)
    _version_selector(app).set_value(old).run()  # picking a version in the selector makes it the active one
    _ok(app)
    assert f"model **{old}**" in app.caption[0].value and app.session_state["model_version"] == old
    assert _version_button(app) == old  # the button names the active version, not the promoted one


def test_athena_button_with_empty_fields_says_what_is_missing(app: AppTest) -> None:
    app.sidebar.radio(key="source_kind").set_value("Athena").run()
    app.sidebar.text_input(key="athena_database").input("").run()
    app.sidebar.button(key="athena_run").click().run()
    assert not app.exception
    assert any("Fill in database and table" in e.value for e in app.error)


def test_score_form_refuses_zero_orders(app: AppTest) -> None:
    from rfm.service import insights

    _goto(app, "pages/score_page.py")
    assert app.number_input(key="score_frequency").min == 1
    assert insights.customer_problem(10, 0, 5000) is not None
    assert insights.customer_problem(10, 1, 5000) is None


def test_export_file_names_stay_short() -> None:
    from rfm.dashboard.views import export_file_name

    every = ["Champions", "Loyal Customers", "At-Risk", "Hibernating", "No Net Revenue"]
    assert export_file_name(every, every, "20261127-084202-k4") == "customers-all-segments-20261127-084202-k4.csv"
    assert export_file_name(every[:3], every) == "customers-3-segments.csv"
    assert export_file_name(["At-Risk"], every) == "customers-at-risk.csv"
    assert len(export_file_name(["x" * 90], every)) < 60


def test_a_home_folder_tilde_is_expanded_in_the_data_and_path_settings(models: ModelStore, demo_parquet: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    from rfm.config import load_settings

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(demo_parquet, home / "shop-log.parquet")
    monkeypatch.setenv("HOME", str(home))
    assert load_settings({"models_dir": "~/models"}).models_dir == home / "models"
    monkeypatch.setenv("RFM_DATA", "~/shop-log.parquet")
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "none.toml"))
    monkeypatch.setenv("RFM_UPLOAD_DIR", str(tmp_path / "up"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Data: **shop-log.parquet**" in at.caption[0].value


def test_snapshot_warning_only_outside_the_data() -> None:
    from datetime import date

    from rfm.dashboard.sidebar import snapshot_warning

    first, last = date(2010, 12, 1), date(2011, 12, 9)
    assert snapshot_warning(date(2011, 12, 10), first, last) is None  # the default: the day after the end
    assert snapshot_warning(date(2011, 6, 1), first, last) is None  # a look back inside the data
    assert "on or before the data's first day" in str(snapshot_warning(first, first, last))
    assert "1 day after the data ends (2011-12-09): every recency grows by 1 day." in str(
        snapshot_warning(date(2011, 12, 11), first, last))
    assert snapshot_warning(date(2030, 1, 1), None, None) is None  # no range known: nothing to flag


def test_a_folder_holding_one_log_twice_is_counted_once_and_said(app: AppTest, tmp_path: Path) -> None:
    """The same log as CSV and Parquet in one folder: the revenue is the single file's, and the data
    panel names the repeated file (issue 15)."""
    from tests.helpers import line, write_log

    folder = tmp_path / "logs"
    folder.mkdir()
    rows = [line(f"5{i:05d}", 1 + i % 5, f"2011-0{1 + i % 9}-1{i % 9} 10:00:00", 2.5 + i % 7, 12000 + i % 40)
            for i in range(300)]
    csv = write_log(folder / "sales.csv", rows)
    pd.read_csv(csv, parse_dates=["InvoiceDate"]).to_parquet(folder / "sales.parquet")
    app.sidebar.radio(key="source_kind").set_value("Local path").run()
    app.sidebar.text_input(key="local_path").input(str(csv)).run()
    _ok(app)
    single = _metric(app, "Revenue (net of returns)")
    app.sidebar.text_input(key="local_path").input(str(folder)).run()
    _ok(app)
    assert _metric(app, "Revenue (net of returns)") == single
    notes = [w.value for w in app.warning if "repeats every line" in w.value]
    assert notes == ["sales.parquet repeats every line of sales.csv: its lines were counted once, as duplicates"]
    steps = _markdown_rows(app, "| Step | Lines | Revenue |")
    assert sum(_money(row[2]) for row in steps[:-1]) == pytest.approx(_money(steps[-1][2]), abs=0.01 * len(steps))
