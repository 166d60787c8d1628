"""shopify preset: an orders export (one row per line item, order columns on the first row).

The fixture holds ten orders written in Shopify's documented column layout; the figures
below are worked out from them by hand.
"""

from __future__ import annotations

import hashlib

import pytest

from persona_engine.errors import ImportRejected
from persona_engine.ingest import import_files
from tests.fixtures.ingest.helpers import dangling_references, fixture

EXPORT = fixture("shopify_orders_export.csv")


def _import(cur, **options):
    options.setdefault("compute_features", False)
    return import_files(cur, [EXPORT], "shopify", **options)


def _orders(cur):
    return {
        row[0]: row[1:]
        for row in cur.execute(
            "SELECT external_id, status, round(amount, 2), round(discount, 2), channel, ordered_at "
            "FROM orders"
        ).fetchall()
    }


def test_statuses_amounts_and_channels(cur):
    report = _import(cur)
    orders = _orders(cur)
    assert orders["#1001"][:2] == ("completed", 78.8)  # Total, shipping included
    assert orders["#1002"][:3] == ("completed", 37.8, 4.2)  # WELCOME10 discount
    assert orders["#1003"][:2] == ("completed", 39.8)  # partially refunded: 59.30 - 19.50
    assert orders["#1004"][:2] == ("returned", 46.9)  # refunded
    assert orders["#1005"][:2] == ("cancelled", 69.8)  # voided
    assert orders["#1006"][:2] == ("completed", 60.0) and orders["#1006"][3] == "store"  # POS
    assert orders["#1007"][:2] == ("cancelled", 10.9)  # Cancelled at is set
    assert orders["#1008"][:2] == ("completed", 24.4) and orders["#1008"][3] == "app"  # pending
    # The offset is dropped: times stay the shop's wall-clock time.
    assert str(orders["#1001"][4]) == "2024-03-05 14:22:10"
    assert report.rows_written == {
        "customers": 5, "products": 5, "orders": 10, "order_items": 15, "sessions": 0,
    }
    assert dangling_references(cur) == dict.fromkeys(dangling_references(cur), 0)


def test_customers_keyed_by_email_case_insensitive(cur):
    _import(cur)
    # alice@example.com and Alice@Example.com are one customer with three completed orders:
    # 78.80 + 39.80 + 56.50 = 175.10
    row = cur.execute("""
        SELECT c.first_name, c.last_name, c.city, c.country, c.newsletter_opt_in,
               count(*), round(sum(o.amount), 2)
        FROM customers c JOIN orders o USING (customer_id)
        WHERE c.external_id = 'alice@example.com' AND o.status = 'completed'
        GROUP BY ALL
    """).fetchall()
    assert row == [("Alice", "Martin", "Paris", "FR", True, 3, 175.1)]
    # "Elena García Ruiz": first word is the first name, the rest the last name.
    names = cur.execute(
        "SELECT first_name, last_name FROM customers WHERE external_id = 'elena@example.com'"
    ).fetchall()
    assert names == [("Elena", "García Ruiz")]
    # The POS order #1006 has no email: a guest order, in shop totals only.
    shop = cur.execute("SELECT round(sum(amount), 2) FROM shop_orders WHERE status = 'completed'")
    assert shop.fetchall() == [(335.8,)]  # 78.80+37.80+39.80+60.00+24.40+56.50+38.50
    analysis = cur.execute(
        "SELECT round(sum(amount), 2) FROM analysis_orders WHERE status = 'completed'")
    assert analysis.fetchall() == [(275.8,)]  # without the guest's 60.00


def test_products_by_sku_or_name(cur):
    _import(cur)
    products = {r[0]: r[1:] for r in cur.execute(
        "SELECT external_id, name, brand, price FROM products").fetchall()}
    assert products["MBC-01"] == ("Masque au Bio-Collagène", "Leaf", 34.9)
    assert products["Gift card"] == ("Gift card", None, 25.0)  # no SKU: keyed by its name
    items = cur.execute("""
        SELECT p.external_id, i.quantity, i.unit_price FROM order_items i
        JOIN orders o USING (order_id) JOIN products p USING (product_id)
        WHERE o.external_id = '#1009' ORDER BY 1
    """).fetchall()
    assert items == [("Gift card", 1, 25.0), ("SE-02", 1, 19.5), ("SL-04", 2, 6.0)]


def test_pseudonymised_customers_have_no_names_and_hashed_keys(cur):
    report = _import(cur, pseudonymise=True)
    expected = hashlib.sha256(b"alice@example.com").hexdigest()
    rows = cur.execute(
        "SELECT external_id, first_name, last_name, email, city FROM customers "
        "WHERE external_id = ?", [expected]).fetchall()
    assert rows == [(expected, None, None, None, "Paris")]
    assert cur.execute("SELECT count(*) FROM customers WHERE email IS NOT NULL OR "
                       "first_name IS NOT NULL OR external_id LIKE '%@%'").fetchall() == [(0,)]
    assert report.pseudonymised


def test_consent_from_accepts_marketing_column(cur):
    # A user may declare that "Accepts Marketing" is their analytics consent.
    _import(cur, consent="column:Accepts Marketing")
    consent = dict(cur.execute("SELECT external_id, consent_analytics FROM customers").fetchall())
    # Alice and Elena said yes; Bob, Carla and Dan said no.
    assert consent == {"alice@example.com": True, "elena@example.com": True,
                       "bob@example.com": False, "carla@example.com": False,
                       "dan@example.com": False}


def test_unknown_financial_status_is_a_soft_problem(cur, tmp_path):
    text = EXPORT.read_text().replace(",voided,", ",on_hold,", 1)
    path = tmp_path / "orders_export.csv"
    path.write_text(text)
    with pytest.raises(ImportRejected, match="1 financial status not understood, e.g. line 8: "
                                             "'on_hold'"):
        import_files(cur, [path], "shopify", compute_features=False)
    report = import_files(cur, [path], "shopify", on_soft_errors="skip", compute_features=False)
    assert "#1005" not in _orders(cur) and report.rows_skipped == 1


def test_overlapping_exports_count_each_order_once(cur, tmp_path):
    # March-April and April-June exports share #1003 and #1004, row for row.
    lines = EXPORT.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    first = tmp_path / "orders_export_1.csv"
    first.write_text("\n".join([header, *rows[:6]]) + "\n")  # #1001 to #1004
    second = tmp_path / "orders_export_2.csv"
    second.write_text("\n".join([header, *rows[3:]]) + "\n")  # #1003 to #1010
    report = import_files(cur, [first, second], "shopify", compute_features=False)
    assert report.rules["orders found identically in several files: imported once"] == 2
    assert report.rows_written["order_items"] == 15
    assert _orders(cur)["#1003"][:2] == ("completed", 39.8)
