"""AppTest of the Data page: upload, preset, mapping form, check, skip-or-stop, import,
rejection, consent column, data quality, past imports, reset to the sample, erasure.

Each test works on its own copy of a small generated shop (the page replaces the shop),
and drives the page through widget keys; files go in through the file uploader.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from persona_engine import auth
from persona_engine.store import open_store
from tests.conftest import open_page, write_sample_shop
from tests.fixtures.ingest.helpers import fixture

CSV = "text/csv"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A 300-customer sample shop with features, copied for each test."""
    return write_sample_shop(tmp_path_factory.mktemp("data_page") / "template.duckdb", 300, 7)


@pytest.fixture
def shop_db(template, tmp_path, monkeypatch) -> Path:
    path = tmp_path / "shop.duckdb"
    shutil.copy(template, path)
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    # No credentials file unless a test writes one: everyone with a name may write.
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))
    # Uploads go to the test's folder, not the machine's temporary uploads folder.
    monkeypatch.setattr("ui.data_page_data.UPLOAD_ROOT", tmp_path / "uploads")
    return path


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    cur = open_store(db, read_only=False).cursor()
    return cur.execute(sql, params or []).fetchall()


def data_page(name: str | None = "Ana", **state) -> AppTest:
    if name:
        state = {"display_name": name, **state}
    return open_page("pages/data.py", timeout=60, **state)


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="data_upload").set_value([(name, content, CSV) for name, content in files])
    return at.run()


def sidebar_captions() -> list[str]:
    """The sidebar of the default page in a new session. (AppTest drops the sidebar of a
    session that starts with switch_page once an earlier one did, so no switch here.)"""
    at = open_page(timeout=60)
    assert not at.exception, at.exception
    return [c.value for c in at.sidebar.caption]


def frame(at: AppTest, *columns: str):
    """The first table showing exactly these columns (a read-only st.dataframe has no key
    in AppTest)."""
    for df in at.dataframe:
        if list(df.value.columns) == list(columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}: {[list(d.value.columns) for d in at.dataframe]}")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return values[0]


def test_transaction_log_through_the_proposed_mapping(shop_db):
    at = upload(data_page(), ("transactions_fr.csv", fixture("transactions_fr.csv").read_bytes()))
    assert not at.exception, at.exception
    # The header (Client;Date;Montant;Quantité) fits no preset: generic, as a transaction log,
    # with every field proposed by name.
    assert at.selectbox(key="data_preset").value == "generic"
    assert at.selectbox(key="data_map_table_0").value == "transactions"
    proposed = {f: at.selectbox(key=f"data_map_0_transactions_{f}").value
                for f in ("customer_id", "ordered_at", "amount", "quantity", "currency")}
    assert proposed == {"customer_id": "Client", "ordered_at": "Date", "amount": "Montant",
                        "quantity": "Quantité", "currency": ""}

    at.button(key="data_check").click().run()
    assert not at.exception, at.exception
    assert texts(at.success) == ["The files can be imported. Nothing has been changed yet."]
    # 7 lines, one order each; 3 customers (1042, 2077, 3105); 6 lines have a quantity.
    # Rows to write: 3 customers + 0 products + 7 orders + 6 items + 0 sessions = 16.
    assert metric(at, "Rows read") == "7"
    assert metric(at, "Rows to write") == "16"
    # The shop being replaced is the generated sample: its planted action goes with it.
    assert any("1 action(s) will be removed" in c for c in texts(at.caption))
    assert query(shop_db, "SELECT count(*) FROM orders WHERE external_id LIKE 'O%'")[0][0] > 0

    at.button(key="data_import").click().run()
    assert not at.exception, at.exception
    assert texts(at.success)[0].startswith("Import 1 done: 16 rows written")
    # The upload was saved under its own name in this session's folder.
    assert [p.name for p in (shop_db.parent / "uploads").glob("*/*")] == ["transactions_fr.csv"]
    # Completed revenue: 12.50 + 37.00 + 8.90 + 25.00 + 120.00 + 15.75 = 219.15 (the -12.50
    # line is a refund, imported as a returned order).
    assert query(shop_db, "SELECT count(*), sum(amount) FILTER (status = 'completed') FROM orders") \
        == [(7, pytest.approx(219.15))]
    assert query(shop_db, "SELECT value FROM shop_settings WHERE key IN ('source', 'consent') "
                          "ORDER BY key") == [("all",), ("import",)]
    assert query(shop_db, "SELECT count(*) FROM actions") == [(0,)]

    # Every page says which consent declaration was made, in the sidebar.
    assert "Consent: declared for every customer at import." in sidebar_captions()
    assert "Imported shop" in sidebar_captions()


def test_a_mapping_corrected_by_hand(shop_db):
    content = (b"Kunde,Zeitpunkt,Betrag\n"
               b"K1,2024-03-01 10:00,10.00\n"
               b"K1,2024-03-05 11:00,30.00\n"
               b"K2,2024-03-06 12:00,5.50\n")
    at = upload(data_page(), ("export.csv", content))
    assert not at.exception, at.exception
    # Neither the name nor the German headers say which table this is: the user chooses,
    # and no check is possible before.
    assert at.selectbox(key="data_map_table_0").value is None
    assert "export\\.csv: choose which table this file holds." in texts(at.warning)
    assert not [b for b in at.button if b.key == "data_check"]

    at.selectbox(key="data_map_table_0").set_value("transactions").run()
    assert "export\\.csv: choose a column for customer_id, ordered_at, amount." in texts(at.warning)
    at.selectbox(key="data_map_0_transactions_customer_id").set_value("Kunde")
    at.selectbox(key="data_map_0_transactions_ordered_at").set_value("Zeitpunkt")
    at.selectbox(key="data_map_0_transactions_amount").set_value("Betrag").run()
    assert not at.warning
    at.button(key="data_check").click().run()
    at.button(key="data_import").click().run()
    assert not at.exception, at.exception
    # 2 customers, 3 orders worth 10 + 30 + 5.50 = 45.50.
    assert query(shop_db, "SELECT count(*), sum(amount) FROM orders") == [(3, 45.5)]
    assert query(shop_db, "SELECT count(*) FROM customers") == [(2,)]


def _orders_with_one_bad_date() -> bytes:
    lines = ["order_id,customer_id,ordered_at,amount"]
    for i in range(1, 31):
        day = "2024-13-45" if i == 17 else f"2024-04-{i:02d}"
        lines.append(f"{1000 + i},C{i % 4},{day} 10:00,{i}.00")
    return ("\n".join(lines) + "\n").encode()


def test_soft_problems_ask_to_skip_or_stop(shop_db):
    before = query(shop_db, "SELECT count(*) FROM orders")
    at = upload(data_page(), ("orders.csv", _orders_with_one_bad_date()))
    at.button(key="data_check").click().run()
    assert not at.exception, at.exception
    # One row of 30 has a date that is not a date (1 bad row, 3 % of the file: skippable).
    assert texts(at.warning) == ["Rows that cannot be imported as they are: 1 (see below)."]
    problems = frame(at, "File", "Column", "Problem", "Rows", "First examples", "Expected")
    assert problems["Rows"].tolist() == [1]
    assert problems["Problem"].tolist() == ["Not a date"]
    assert metric(at, "Rows with problems") == "1"
    assert "2024-13-45" in problems["First examples"].iloc[0]
    # No choice yet: no import button.
    assert not [b for b in at.button if b.key == "data_import"]

    at.radio(key="data_soft_choice").set_value("stop").run()
    assert any(i.startswith("Nothing will be imported.") for i in texts(at.info))
    assert not [b for b in at.button if b.key == "data_import"]
    assert query(shop_db, "SELECT count(*) FROM orders") == before

    at.radio(key="data_soft_choice").set_value("skip").run()
    at.button(key="data_import").click().run()
    assert not at.exception, at.exception
    # 29 orders written; amounts 1..30 less the 17 left out: 465 - 17 = 448.
    assert query(shop_db, "SELECT count(*), sum(amount) FROM orders") == [(29, 448.0)]
    assert metric(at, "Bad rows left out") == "1"


def test_a_rejected_file_leaves_the_shop_unchanged(shop_db):
    before = query(shop_db, "SELECT count(*), sum(amount) FROM orders")
    # Online Retail lines without the UnitPrice column.
    raw = fixture("online_retail_sample.csv").read_text().splitlines()
    content = ("\n".join(",".join(line.split(",")[:5] + line.split(",")[6:]) for line in raw[:10]) + "\n")
    at = upload(data_page(), ("invoices.csv", content.encode()))
    at.selectbox(key="data_preset").set_value("online-retail").run()
    at.button(key="data_check").click().run()
    assert not at.exception, at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Import refused: invoices.csv")
    assert "UnitPrice" in errors[0]
    assert "The shop is unchanged: nothing was written." in texts(at.info)
    assert not [b for b in at.button if b.key == "data_import"]
    assert query(shop_db, "SELECT count(*), sum(amount) FROM orders") == before


def test_online_retail_is_recognised_and_needs_no_mapping(shop_db):
    at = upload(data_page(), ("online_retail_sample.csv", fixture("online_retail_sample.csv").read_bytes()))
    assert at.selectbox(key="data_preset").value == "online-retail"
    assert not [s for s in at.selectbox if s.key and s.key.startswith("data_map_")]
    at.button(key="data_check").click().run()
    assert not at.exception, at.exception
    # The fixture holds 36 invoice lines.
    assert metric(at, "Rows read") == "36"


def test_consent_from_a_column_of_the_file(shop_db):
    content = (b"client;date;amount;analytics_ok\n"
               b"A;2024-01-02 10:00;10;yes\n"
               b"A;2024-01-09 10:00;12;yes\n"
               b"B;2024-01-03 10:00;20;no\n"
               b"C;2024-01-04 10:00;30;\n")
    at = upload(data_page(), ("transactions.csv", content))
    at.radio(key="data_consent").set_value("column").run()
    assert at.selectbox(key="data_consent_column").options == ["client", "date", "amount", "analytics_ok"]
    at.selectbox(key="data_consent_column").set_value("analytics_ok").run()
    at.button(key="data_check").click().run()
    at.button(key="data_import").click().run()
    assert not at.exception, at.exception
    # A said yes; B said no; C gave no answer, which is a no: 2 of 3 without consent.
    assert query(shop_db, "SELECT count(*) FILTER (NOT consent_analytics), count(*) FROM customers") == [(2, 3)]
    assert "Consent: per customer, from the column analytics\\_ok of the imported files." \
        in sidebar_captions()
    fresh = data_page()
    assert metric(fresh, "Customers without consent") == "2"
    assert metric(fresh, "Share without consent") == "66.7%"


def test_quality_and_past_imports_after_an_import(shop_db):
    at = upload(data_page(), ("transactions_fr.csv", fixture("transactions_fr.csv").read_bytes()))
    at.button(key="data_check").click().run()
    at.button(key="data_import").click().run()
    at = data_page()
    assert not at.exception, at.exception
    assert metric(at, "Customers") == "3"
    # A transaction log has no sessions, demographics, channels, categories or devices.
    missing = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert len(missing) == 1
    assert missing[0].count("\n- ") == 5
    assert "No sessions: conversion rate" in missing[0]
    tables = frame(at, "Table", "Rows", "From", "To")
    assert tables.set_index("Table").loc["Orders", "Rows"] == 7
    at.selectbox(key="data_quality_table").set_value("customers").run()
    shares = frame(at, "Column", "Empty values", "Share empty").set_index("Column")["Share empty"]
    # Transaction logs carry no customer attributes: every email is empty, no id is.
    assert (shares["email"], shares["customer_id"]) == (1.0, 0.0)
    history = frame(at, "Import", "Started", "Finished", "Layout", "Files", "Consent", "Rows read", "Status")
    assert history["Files"].tolist() == ["transactions_fr.csv"]
    assert history["Rows read"].tolist() == [7]


def test_erasure_by_the_file_id_logs_counts_only(shop_db):
    customer = query(shop_db, "SELECT customer_id, external_id FROM customers c WHERE EXISTS "
                              "(SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id) "
                              "ORDER BY customer_id LIMIT 1")[0]
    orders = query(shop_db, "SELECT count(*) FROM orders WHERE customer_id = ?", [customer[0]])[0][0]
    at = data_page()
    at.text_input(key="data_erase_id").input(customer[1]).run()
    at.button(key="data_erase_find").click().run()
    assert texts(at.warning) == [f"Erase customer {customer[1]} (app id {customer[0]}) from every table? "
                                 "This cannot be undone."]
    at.button(key="data_erase_yes").click().run()
    assert not at.exception, at.exception
    assert texts(at.success)[0].startswith("Customer erased:")
    counts = frame(at, "Table", "Rows").set_index("Table")["Rows"]
    assert (counts["Customers"], counts["Orders"]) == (1, orders)
    assert at.text_input(key="data_erase_id").value == ""
    assert query(shop_db, "SELECT count(*) FROM customers WHERE customer_id = ?", [customer[0]]) == [(0,)]
    log = query(shop_db, "SELECT erased_by, rows_removed FROM erasure_log")
    assert len(log) == 1 and log[0][0] == "Ana"
    # The log holds counts per table and nothing else: no id, no name, no email.
    logged = json.loads(log[0][1])
    tables = {r[0] for r in query(shop_db, "SELECT table_name FROM information_schema.tables")}
    assert set(logged) <= tables | {"sessions unlinked from an erased order"}
    assert all(isinstance(n, int) for n in logged.values())
    assert logged["orders"] == orders
    # The log is listed on the past imports tab, without whose rows they were.
    assert frame(at, "When", "By", "Rows removed")["By"].tolist() == ["Ana"]


def test_erasure_of_an_unknown_id_says_so(shop_db):
    at = data_page()
    at.text_input(key="data_erase_id").input("no-such-customer").run()
    at.button(key="data_erase_find").click().run()
    assert not at.exception
    assert texts(at.error) == ["Could not do that: no customer with id 'no-such-customer': nothing was "
                               "erased; check the id in your files"]
    assert not [b for b in at.button if b.key == "data_erase_yes"]


def test_reset_to_the_sample_asks_first_then_generates_with_features(shop_db, monkeypatch):
    import ui.data_page_admin as admin

    monkeypatch.setattr(admin, "SAMPLE_CUSTOMERS", 200)
    at = upload(data_page(), ("transactions_fr.csv", fixture("transactions_fr.csv").read_bytes()))
    at.button(key="data_check").click().run()
    at.button(key="data_import").click().run()
    assert query(shop_db, "SELECT count(*) FROM customers") == [(3,)]
    at.button(key="data_reset").click().run()
    assert any(w.startswith("This replaces the whole shop") for w in texts(at.warning))
    at.button(key="data_reset_no").click().run()
    assert query(shop_db, "SELECT count(*) FROM customers") == [(3,)]
    at.button(key="data_reset").click().run()
    at.button(key="data_reset_yes").click().run()
    assert not at.exception, at.exception
    assert texts(at.success)[0].startswith("Sample shop ready: 200 customers")
    assert query(shop_db, "SELECT value FROM shop_settings WHERE key = 'source'") == [("sample",)]
    # Features: one row per consenting customer, computed as part of the reset.
    features, consenting = query(shop_db, "SELECT (SELECT count(*) FROM customer_features), "
                                          "(SELECT count(*) FROM analysis_customers)")[0]
    assert features == consenting and consenting > 0


def test_without_a_name_the_page_only_reads(shop_db):
    at = data_page(name=None)
    assert not at.exception, at.exception
    assert texts(at.info)[0].startswith("Type your name in the sidebar")
    assert not at.file_uploader
    assert not [t for t in at.text_input if t.key == "data_erase_id"]
    assert not [b for b in at.button if b.key == "data_reset"]
    # Reading stays open: 300 customers in the quality summary.
    assert metric(at, "Customers") == "300"


def test_in_french(shop_db):
    at = data_page(lang="fr")
    assert not at.exception, at.exception
    assert at.title[0].value == "Données"
    assert at.file_uploader(key="data_upload").label == "Fichiers à importer"
    assert metric(at, "Clients") == "300"


def test_with_sign_in_only_admins_change_the_data(shop_db, tmp_path):
    users = tmp_path / "users.toml"
    auth.add_user(users, "eddie", "editor-pass", "editor", "Eddie E.", rounds=4)
    auth.add_user(users, "ada", "admin-pass", "admin", "Ada A.", rounds=4)
    # An editor may edit personas, not replace the shop or erase customers.
    at = data_page(name=None, signed_in_user="eddie")
    assert not at.exception, at.exception
    assert texts(at.info)[0].startswith("Only an admin can import files")
    assert not at.file_uploader
    assert not [t for t in at.text_input if t.key == "data_erase_id"]
    at = data_page(name=None, signed_in_user="ada")
    assert not at.exception, at.exception
    assert at.file_uploader(key="data_upload") is not None
    assert at.text_input(key="data_erase_id") is not None


def test_a_stop_request_during_a_write_is_held_until_the_write_is_done():
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    from ui.data_page_data import HeldProgress

    class ClosedBrowserBar:
        """A bar whose page was closed: every draw meets Streamlit's stop request."""

        def __init__(self) -> None:
            self.draws = 0

        def progress(self, share: float, text: str) -> None:
            self.draws += 1
            raise StopException()

    bar = ClosedBrowserBar()
    held = HeldProgress(bar)
    for step in range(5):  # the engine keeps going: no exception reaches it
        held.show(step / 5, lambda: "step")
    # One draw met the request; the four later steps did not try to draw again.
    assert bar.draws == 1
    with pytest.raises(StopException):
        held.release()
