"""generic preset: the documented layout, column mappings and the minimal transaction log."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from persona_engine.errors import ImportRejected
from persona_engine.ingest import (
    import_files,
    load_mapping,
    preview_file,
    propose_mapping,
    stable_id,
)
from persona_engine.store import get_setting
from tests.fixtures.ingest.helpers import dangling_references, fixture, temp_objects

LAYOUT_FILES = [fixture(n) for n in
                ("customers.csv", "products.csv", "orders.csv", "order_items.csv", "sessions.csv")]
TRANSACTIONS = fixture("transactions_fr.csv")
TRANSACTIONS_MAPPING = fixture("transactions_fr_mapping.json")


def _import(cur, files, **options):
    options.setdefault("compute_features", False)
    return import_files(cur, files, "generic", **options)


def test_documented_layout_all_tables(cur):
    report = _import(cur, LAYOUT_FILES)
    assert report.rows_written == {
        "customers": 4, "products": 3, "orders": 7, "order_items": 10, "sessions": 5,
    }
    assert dangling_references(cur) == dict.fromkeys(dangling_references(cur), 0)
    assert temp_objects(cur) == []
    row = cur.execute(
        "SELECT first_name, age, income, newsletter_opt_in, created_at FROM customers "
        "WHERE external_id = 'C001'").fetchall()
    assert [tuple(map(str, r)) for r in row] == [("Camille", "34", "42000.0", "True",
                                                  "2023-01-15 00:00:00")]
    # Hugo's age and income are empty in the file: NULL, not 0.
    assert cur.execute("SELECT age, income FROM customers WHERE external_id = 'C002'").fetchall() \
        == [(None, None)]
    session = cur.execute(
        "SELECT s.pages_viewed, s.added_to_cart, o.external_id FROM sessions s "
        "LEFT JOIN orders o USING (order_id) WHERE s.session_id = ?", [stable_id("S1")]).fetchall()
    assert session == [(6, True, "1001")]


def test_consent_column_of_the_file_is_honoured_and_guests_count_in_shop_totals(cur):
    _import(cur, LAYOUT_FILES)  # declared "all", but Léa (C003) said no in the file
    assert cur.execute("SELECT external_id FROM customers WHERE NOT consent_analytics"
                       ).fetchall() == [("C003",)]
    # Customer analyses: 1001 (69.80), 1002 (35.00), 1005 (84.90); Léa's 1004 is out.
    assert cur.execute("SELECT round(sum(amount), 2) FROM analysis_orders "
                       "WHERE status = 'completed'").fetchall() == [(189.7,)]
    # Shop totals add the guest order 1006 (19.90), still without Léa's order.
    assert cur.execute("SELECT round(sum(amount), 2) FROM shop_orders "
                       "WHERE status = 'completed'").fetchall() == [(209.6,)]
    assert cur.execute("SELECT count(*) FROM analysis_sessions").fetchall() == [(3,)]


def test_transaction_log_through_a_mapping_file(cur):
    # Semicolons, a UTF-8 byte-order mark, decimal commas and day-first dates.
    report = _import(cur, [TRANSACTIONS], mapping=TRANSACTIONS_MAPPING)
    assert report.rows_written["orders"] == 7 and report.rows_written["customers"] == 3
    rows = cur.execute("""
        SELECT c.external_id, count(*) FILTER (o.status = 'completed'),
               round(sum(o.amount) FILTER (o.status = 'completed'), 2), min(o.ordered_at)
        FROM orders o JOIN customers c USING (customer_id) GROUP BY ALL ORDER BY 1
    """).fetchall()
    assert [(a, b, c, str(d)) for a, b, c, d in rows] == [
        ("1042", 2, 49.5, "2024-01-05 14:30:00"),  # 12,50 + 37,00; 5 January, not 1 May
        ("2077", 2, 33.9, "2024-01-18 11:20:00"),  # 8,90 + 25,00
        ("3105", 2, 135.75, "2024-02-14 10:00:00"),  # 120,00 + 15,75
    ]
    # The refund line (-12,50) is a returned order; items exist where a quantity is given.
    assert cur.execute("SELECT count(*) FROM orders WHERE status = 'returned'").fetchall() == [(1,)]
    assert cur.execute("SELECT count(*) FROM order_items").fetchall() == [(6,)]
    assert report.rules["transaction-log lines imported as one order each"] == 7


def test_transaction_log_reimport_keeps_order_ids(cur):
    _import(cur, [TRANSACTIONS], mapping=TRANSACTIONS_MAPPING)
    first = cur.execute("SELECT order_id, external_id FROM orders ORDER BY 1").fetchall()
    _import(cur, [TRANSACTIONS], mapping=TRANSACTIONS_MAPPING)
    assert cur.execute("SELECT order_id, external_id FROM orders ORDER BY 1").fetchall() == first
    assert ("txn-1042-20240105143000-1",) in [(e,) for _, e in first]


def test_mapping_as_dicts_with_file_patterns(cur, tmp_path):
    # Any layout: French headers for orders, English for customers, matched by "file".
    orders = tmp_path / "export_commandes.csv"
    orders.write_text("Numéro;Client;Date commande;Total TTC;Statut\n"
                      "A-1;K1;2024-05-02 10:00;30,00;en attente\n"
                      "A-2;K2;2024-05-03 11:00;45,50;payée\n")
    people = tmp_path / "export_clients.csv"
    people.write_text("Client;Ville\nK1;Nantes\nK2;Rennes\n")
    mapping = [
        {"file": "export_commandes*", "table": "orders",
         "columns": {"order_id": "Numéro", "customer_id": "Client", "ordered_at": "Date commande",
                     "amount": "Total TTC", "status": "Statut"}},
        {"file": "export_clients*", "table": "customers",
         "columns": {"customer_id": "Client", "city": "Ville"}},
    ]
    with pytest.raises(ImportRejected, match=r"1 status not understood, e\.g\. line 2: 'en attente'"):
        _import(cur, [orders, people], mapping=mapping)
    report = _import(cur, [orders, people], mapping=mapping, on_soft_errors="skip")
    assert cur.execute("SELECT external_id, round(amount, 2) FROM orders").fetchall() == [("A-2", 45.5)]
    assert report.rows_skipped == 1
    assert cur.execute("SELECT city FROM customers ORDER BY external_id").fetchall() == [
        ("Nantes",), ("Rennes",)]


def test_table_told_by_columns_and_bare_customers(cur, tmp_path):
    path = tmp_path / "export_2024.csv"  # the name says nothing: the columns do
    path.write_text("order_id,customer_id,ordered_at,amount\n1,9,2024-01-01,10\n2,9,2024-01-02,5\n")
    report = _import(cur, [path])
    assert report.rows_written["customers"] == 1 and report.rows_written["orders"] == 2
    # No status column: every order is completed (and said so in the report).
    assert "orders without a status column imported as completed" in report.rules


def test_orphan_order_items_are_soft_problems(cur, tmp_path):
    items = tmp_path / "order_items.csv"
    items.write_text(fixture("order_items.csv").read_text() + "9999,P1,1,49.90\n")
    files = [fixture("orders.csv"), items]
    with pytest.raises(ImportRejected, match="1 order item of an order missing from the orders, "
                                             "e.g. line 12: '9999'"):
        _import(cur, files)
    _import(cur, files, on_soft_errors="skip")
    assert cur.execute("SELECT count(*) FROM order_items").fetchall() == [(10,)]
    # Without a products file, products are created bare from the items.
    assert cur.execute("SELECT count(*), count(name) FROM products").fetchall() == [(3, 0)]


def test_generic_refusals(cur, tmp_path):
    unknown = tmp_path / "stuff.csv"
    unknown.write_text("a,b\n1,2\n")
    with pytest.raises(ImportRejected, match="stuff.csv: cannot tell which table this file holds"):
        _import(cur, [unknown])
    with pytest.raises(ImportRejected, match="no orders among customers.csv"):
        _import(cur, [fixture("customers.csv")])
    with pytest.raises(ImportRejected, match="the mapping names column 'Montant TTC' for amount"):
        _import(cur, [TRANSACTIONS], mapping={"table": "transactions", "columns": {
            "customer_id": "Client", "ordered_at": "Date", "amount": "Montant TTC"}})
    with pytest.raises(ImportRejected, match="consent column 'Consent' is in none of"):
        _import(cur, LAYOUT_FILES, consent="column:Consent")


def test_load_mapping_validates_and_explains(tmp_path):
    good = load_mapping(TRANSACTIONS_MAPPING)
    assert good == [{"table": "transactions", "file": None, "columns": {
        "customer_id": "Client", "ordered_at": "Date", "amount": "Montant", "quantity": "Quantité"}}]
    bad_json = tmp_path / "m.json"
    bad_json.write_text('{"table": "orders", "columns": {"order_id": "Invoice",}}')
    with pytest.raises(ImportRejected, match="m.json is not valid JSON: .* at line 1"):
        load_mapping(bad_json)
    with pytest.raises(ImportRejected, match="table 'invoices' is not one of: customers"):
        load_mapping({"table": "invoices", "columns": {}})
    with pytest.raises(ImportRejected, match="table orders has no field 'total'"):
        load_mapping({"table": "orders", "columns": {"total": "Total"}})
    yaml_file = tmp_path / "m.yaml"
    yaml_file.write_text("table: orders\ncolumns:\n  order_id: Invoice\n  amount: Total TTC\n")
    assert load_mapping(yaml_file)[0]["columns"] == {"order_id": "Invoice", "amount": "Total TTC"}
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("table: orders\ncolumns: [order_id: Invoice\n")
    with pytest.raises(ImportRejected, match="bad.yml is not valid YAML"):
        load_mapping(bad_yaml)


def test_propose_mapping_matches_names_spellings_and_typos():
    columns = ["Invoice", "Custmer ID", "Invoice Date", "Total", "Payment", "Notes"]
    proposal = propose_mapping(columns, "orders")
    assert proposal["order_id"] == "Invoice"  # a known spelling
    assert proposal["ordered_at"] == "Invoice Date"
    assert proposal["amount"] == "Total"
    assert proposal["payment_method"] == "Payment"
    assert proposal["customer_id"] == "Custmer ID"  # a near-miss
    assert proposal["currency"] is None
    assert "Notes" not in proposal.values()
    # Proposed columns are never used twice.
    used = [c for c in proposal.values() if c]
    assert len(used) == len(set(used))


def test_preview_file_reads_header_and_first_rows_of_each_format(tmp_path):
    preview = preview_file(TRANSACTIONS, n=3)
    assert list(preview.columns) == ["Client", "Date", "Montant", "Quantité"]
    assert preview.shape == (3, 4) and preview.iloc[0, 2] == "12,50"
    assert preview.attrs["delimiter"] == ";" and preview.attrs["encoding"] == "utf-8"
    frame = pd.read_csv(fixture("orders.csv"), dtype=str)
    frame.to_parquet(tmp_path / "orders.parquet")
    assert preview_file(tmp_path / "orders.parquet", n=2).shape == (2, 10)
    frame.to_excel(tmp_path / "orders.xlsx", index=False)
    excel = preview_file(tmp_path / "orders.xlsx", n=2)
    assert excel.iloc[1]["order_id"] == "1002"


def test_json_report_is_serialisable(cur):
    report = _import(cur, LAYOUT_FILES)
    stored = cur.execute("SELECT report FROM imports").fetchall()[0][0]
    assert json.loads(stored)["rows_written"]["orders"] == 7
    assert json.dumps(report.to_dict(), default=str)
    assert get_setting(cur, "source") == "import"


@pytest.mark.parametrize(
    ("name", "delimiter", "encoding"),
    [
        ("orders.tsv", "\t", "utf-8"),
        ("orders.txt", "|", "utf-8"),
        ("orders.csv", ";", "utf-8-sig"),
        ("orders.csv", ",", "utf-16"),  # with its byte-order mark, as Excel writes it
        ("orders.csv.gz", ",", "utf-8"),
    ],
)
def test_delimiters_encodings_and_gzip_give_the_same_orders(cur, tmp_path, name, delimiter, encoding):
    import gzip

    text = fixture("orders.csv").read_text().replace(",", delimiter)
    path = tmp_path / name
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    _import(cur, [path])
    rows = cur.execute("SELECT external_id, round(amount, 2), status FROM orders ORDER BY 1")
    assert rows.fetchall() == [
        ("1001", 69.8, "completed"), ("1002", 35.0, "completed"), ("1003", 49.9, "returned"),
        ("1004", 19.9, "completed"), ("1005", 84.9, "completed"), ("1006", 19.9, "completed"),
        ("1007", 44.8, "cancelled"),
    ]
