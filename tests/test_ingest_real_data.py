"""The real UCI Online Retail file (../shared/data/online_retail.csv, read in place).

Figures are checked against the facts of ../shared/data/README.md, and the RFM of three
customers against a plain pandas computation on the raw lines.
"""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from persona_engine.ingest import import_files
from persona_engine.store import open_store

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "online_retail.csv"
REFERENCE_DATE = date(2011, 12, 10)  # the day after the last order (2011-12-09 12:50)
CUSTOMERS = ("17850", "12583", "16446")

pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="../shared/data is not on this machine")


@pytest.fixture(scope="module")
def imported():
    store = open_store(":memory:")
    cur = store.cursor()
    report = import_files(cur, [DATA], "online-retail",
                          compute_features=importlib.util.find_spec("persona_engine.features") is not None)
    yield cur, report
    store.close()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    frame = pd.read_csv(DATA, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str},
                        parse_dates=["InvoiceDate"])
    frame["value"] = frame["Quantity"] * frame["UnitPrice"]
    return frame


def test_readme_facts(imported):
    cur, report = imported
    assert report.total_rows_read == 541_909
    first, last = cur.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchall()[0]
    assert (str(first), str(last)) == ("2010-12-01 08:26:00", "2011-12-09 12:50:00")
    assert cur.execute("SELECT count(*) FROM customers").fetchall() == [(4_372,)]
    # The README's clean purchases (CustomerID present, not C, Quantity > 0, UnitPrice > 0):
    # 18,532 invoices, 4,338 customers, 8,911,407.90. Completed orders of known customers
    # are exactly those invoices (their other lines are priced 0 and add nothing).
    orders, customers, revenue = cur.execute(
        "SELECT count(*), count(DISTINCT customer_id), sum(amount) FROM analysis_orders "
        "WHERE status = 'completed'").fetchall()[0]
    assert (orders, customers) == (18_532, 4_338)
    assert revenue == pytest.approx(8_911_407.90, abs=0.005)
    # 4,070 stock codes, less B (bad debt) and AMAZONFEE, which are not products.
    assert cur.execute("SELECT count(*) FROM products").fetchall() == [(4_068,)]
    assert report.rules["exact duplicate lines kept: the shop's invoice lists the line twice"] \
        == 5_268


def test_every_pound_is_accounted_for(imported, raw):
    # Sum of Quantity x UnitPrice over all rows: 9,747,747.93 (README). The orders hold all
    # of it but the lines left out as accounting entries (Amazon fees, bad debt); stock
    # adjustments and free shipments are priced 0.
    cur, _ = imported
    orders_total = cur.execute("SELECT sum(amount) FROM orders").fetchall()[0][0]
    left_out = raw.loc[raw["StockCode"].isin(["AMAZONFEE", "B"]), "value"].sum()
    assert raw["value"].sum() == pytest.approx(9_747_747.93, abs=0.005)
    assert orders_total + left_out == pytest.approx(9_747_747.93, abs=0.005)
    # 3,836 cancellation invoices: 32 hold nothing but Amazon fees, the rest are orders.
    cancellations = raw[raw["InvoiceNo"].str.startswith("C")]
    fee_only = cancellations.groupby("InvoiceNo")["StockCode"].agg(
        lambda codes: set(codes) == {"AMAZONFEE"}).sum()
    assert (cancellations["InvoiceNo"].nunique(), fee_only) == (3_836, 32)
    assert cur.execute("SELECT count(*) FROM orders WHERE status = 'cancelled'").fetchall() \
        == [(3_836 - 32,)]


def _pandas_rfm(raw: pd.DataFrame, customer: str) -> tuple[int, int, float]:
    # From the raw lines: the customer's purchase invoices (not cancellations, not bad-debt
    # adjustments, worth more than 0), their last date, their count and their value.
    lines = raw[raw["CustomerID"] == f"{customer}.0"]
    lines = lines[~lines["InvoiceNo"].str.startswith(("C", "A"))]
    invoices = lines.groupby("InvoiceNo").agg(at=("InvoiceDate", "min"), value=("value", "sum"))
    invoices = invoices[invoices["value"] > 0]
    recency = (REFERENCE_DATE - invoices["at"].max().date()).days
    return recency, len(invoices), round(float(invoices["value"].sum()), 2)


def _orders_rfm(cur, customer: str) -> tuple[int, int, float]:
    row = cur.execute(
        "SELECT date_diff('day', CAST(max(o.ordered_at) AS DATE), ?), count(*), "
        "round(sum(o.amount), 2) "
        "FROM orders o JOIN customers c USING (customer_id) "
        "WHERE c.external_id = ? AND o.status = 'completed'",
        [REFERENCE_DATE, customer],
    ).fetchall()[0]
    return int(row[0]), int(row[1]), float(row[2])


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        # 17850: the file's first customer: 34 invoices, all on 2010-12-01 and 12-02
        # (373 days before 2011-12-10), worth 5,391.21 (summed line by line with Decimal).
        ("17850", (373, 34, 5391.21)),
        # 12583: a French customer paying postage: 15 invoices, the last on 2011-12-07,
        # 7,281.38; their cancellations (C543992 and others) are kept out.
        ("12583", (3, 15, 7281.38)),
        # 16446: two brushes on 2011-05-18 (1.65 + 1.25), then 80,995 paper birdies at 2.08
        # (168,469.60) on 2011-12-09, cancelled the same day by C581484: the purchase stays,
        # as the data does not link a cancellation to its invoice.
        ("16446", (1, 2, 168472.5)),
    ],
)
def test_rfm_of_three_customers_matches_pandas(imported, raw, customer, expected):
    cur, _ = imported
    assert _pandas_rfm(raw, customer) == expected
    assert _orders_rfm(cur, customer) == expected


@pytest.mark.skipif(importlib.util.find_spec("persona_engine.features") is None,
                    reason="the features module is not there yet")
def test_customer_features_agree_with_the_orders(imported, raw):
    cur, report = imported
    assert report.features.startswith("computed for 4,372 customers")
    for customer in CUSTOMERS:
        row = cur.execute(
            "SELECT f.recency_days, f.frequency, round(f.monetary, 2) FROM customer_features f "
            "JOIN customers c USING (customer_id) WHERE c.external_id = ?", [customer]).fetchall()
        assert row == [_pandas_rfm(raw, customer)]
