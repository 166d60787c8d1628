"""GDPR erasure of one customer, and the data-quality summary, on the generic fixture shop."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pandas as pd
import pytest

from persona_engine.errors import NotFoundError
from persona_engine.ingest import data_quality, erase_customer, import_files, stable_id
from tests.fixtures.ingest.helpers import fixture

LAYOUT_FILES = [fixture(n) for n in
                ("customers.csv", "products.csv", "orders.csv", "order_items.csv", "sessions.csv")]
CAMILLE = stable_id("C001")


@pytest.fixture
def shop(cur):
    import_files(cur, LAYOUT_FILES, "generic", compute_features=True)
    # Rows other modules write about Camille: a persona membership, a cluster assignment,
    # a planted archetype, and events of her session (one without her id on it).
    cur.execute("INSERT INTO persona_members (persona_id, customer_id, run_id) VALUES (1, ?, 1)",
                [CAMILLE])
    cur.execute("INSERT INTO cluster_assignments (run_id, customer_id, cluster) VALUES (1, ?, 0)",
                [CAMILLE])
    cur.execute("INSERT INTO sample_truth (customer_id, archetype) VALUES (?, 'loyal')", [CAMILLE])
    session = stable_id("S1")
    cur.execute("INSERT INTO events (session_id, customer_id, ts, type) "
                "VALUES (?, ?, ?, 'page_view')",
                [session, CAMILLE, datetime(2024, 1, 5, 9, 51)])
    cur.execute("INSERT INTO events (session_id, customer_id, ts, type) "
                "VALUES (?, NULL, ?, 'page_view')",
                [session, datetime(2024, 1, 5, 9, 52)])
    # An anonymous session that led to Camille's order 1001.
    cur.execute("UPDATE sessions SET order_id = ? WHERE session_id = ?",
                [stable_id("1001"), stable_id("S3")])
    return cur


def test_erasure_removes_every_row_and_logs_counts_only(shop):
    cur = shop
    assert cur.execute("SELECT count(*) FROM customer_features WHERE customer_id = ?",
                       [CAMILLE]).fetchall() == [(1,)]
    removed = erase_customer(cur, CAMILLE, erased_by="dpo@shop.example")
    # Camille: 1 customer row, orders 1001 and 1003 with 2 + 1 items, session S1 and its two
    # events, her features and segment rows, the three rows planted above.
    assert removed["customers"] == 1
    assert removed["orders"] == 2
    assert removed["order_items"] == 3
    assert removed["sessions"] == 1
    assert removed["events"] == 2
    assert removed["customer_features"] == 1
    assert removed["persona_members"] == 1
    assert removed["cluster_assignments"] == 1
    assert removed["sample_truth"] == 1
    assert removed["sessions unlinked from an erased order"] == 1
    tables = [r[0] for r in cur.execute(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'customer_id' "
        "AND table_schema = 'main'").fetchall()]
    for table in tables:
        left = cur.execute(f'SELECT count(*) FROM "{table}" WHERE customer_id = ?', [CAMILLE])
        assert left.fetchall() == [(0,)], table
    assert cur.execute("SELECT count(*) FROM sessions WHERE order_id = ?",
                       [stable_id("1001")]).fetchall() == [(0,)]
    # Everyone else is untouched: 3 customers, 5 orders, 7 items, 4 sessions.
    counts = cur.execute("SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), "
                         "(SELECT count(*) FROM order_items), (SELECT count(*) FROM sessions)")
    assert counts.fetchall() == [(3, 5, 7, 4)]
    log = cur.execute("SELECT erased_by, rows_removed FROM erasure_log").fetchall()
    assert len(log) == 1 and log[0][0] == "dpo@shop.example"
    logged = json.loads(log[0][1])
    assert logged == removed
    # The log holds counts only: no id, no name, no email of the customer.
    text = log[0][1]
    for personal in (str(CAMILLE), "C001", "Camille", "camille@example.fr"):
        assert personal not in text


def test_erasing_an_unknown_customer(shop):
    with pytest.raises(NotFoundError, match="no customer with id 42: nothing was erased"):
        erase_customer(shop, 42, erased_by="dpo")
    assert shop.execute("SELECT count(*) FROM erasure_log").fetchall() == [(0,)]


def test_data_quality_summary(cur):
    import_files(cur, LAYOUT_FILES, "generic", compute_features=False)
    quality = data_quality(cur)
    tables = quality.tables.set_index("table")
    assert tables["rows"].to_dict() == {"customers": 4, "products": 3, "orders": 7,
                                        "order_items": 10, "sessions": 5, "events": 0}
    assert str(tables.loc["orders", "first"]) == "2024-01-05 10:00:00"
    assert str(tables.loc["orders", "last"]) == "2024-03-15 08:00:00"
    assert pd.isna(tables.loc["products", "date_column"])  # products carry no date
    missing = quality.missing.set_index(["table", "column"])["missing_share"]
    assert missing[("customers", "age")] == 0.25  # Hugo's age is empty
    assert missing[("customers", "marital_status")] == 1.0  # not in the file
    assert missing[("customers", "email")] == 0.0
    assert missing[("orders", "customer_id")] == pytest.approx(1 / 7)  # the guest order
    assert missing[("orders", "device")] == pytest.approx(1 / 7)  # 1005, in store
    assert math.isnan(missing[("events", "type")])  # an empty table has no share
    assert (quality.customers, quality.customers_without_consent) == (4, 1)
