"""Overview KPIs against an independent pandas computation on a small generated shop."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from persona_engine.errors import ValidationError
from persona_engine.overview import default_period, overview, period_kpis, shop_summary
from persona_engine.store import open_store
from sample_data.generator import generate_shop

START, END = date(2026, 3, 1), date(2026, 3, 31)


@pytest.fixture(scope="module")
def shop():
    store = open_store(":memory:")
    cur = store.cursor()
    generate_shop(cur, n_customers=1500, seed=5)
    frames = {t: cur.execute(f"SELECT * FROM {t}").df() for t in ("customers", "orders", "sessions")}
    yield cur, frames
    store.close()


def reference(frames, start: date, end: date) -> dict:
    """Plain pandas, straight from the raw tables, applying the consent rule by hand."""
    customers, orders, sessions = frames["customers"], frames["orders"], frames["sessions"]
    consenting = set(customers.loc[customers.consent_analytics, "customer_id"])
    lo, hi = pd.Timestamp(start), pd.Timestamp(end + timedelta(days=1))
    o = orders[(orders.ordered_at >= lo) & (orders.ordered_at < hi) & (orders.status == "completed")]
    o = o[o.customer_id.isna() | o.customer_id.isin(consenting)]
    known = o[o.customer_id.notna()]
    per_buyer = known.groupby("customer_id").size()
    s = sessions[(sessions.started_at >= lo) & (sessions.started_at < hi)]
    s = s[s.customer_id.isna() | s.customer_id.isin(consenting)]
    completed_ids = set(orders.loc[orders.status == "completed", "order_id"])
    converted = s.order_id.isin(completed_ids).sum()
    return {
        "customers": len(per_buyer), "orders": len(o), "revenue": o.amount.sum(),
        "aov": o.amount.sum() / len(o), "conversion": converted / len(s),
        "repeat": (per_buyer >= 2).sum() / len(per_buyer),
    }


def test_every_kpi_matches_pandas(shop):
    cur, frames = shop
    got = period_kpis(cur, START, END)
    ref = reference(frames, START, END)
    assert got.customers == ref["customers"] and got.customers > 100
    assert got.orders == ref["orders"]
    assert got.revenue == pytest.approx(ref["revenue"], abs=0.01)
    assert got.average_order_value == pytest.approx(ref["aov"])
    assert got.conversion_rate == pytest.approx(ref["conversion"])
    assert got.repeat_purchase_rate == pytest.approx(ref["repeat"])


def test_previous_period_has_equal_length_and_changes_are_relative(shop):
    cur, frames = shop
    ov = overview(cur, START, END)
    assert (ov.previous.start, ov.previous.end) == (date(2026, 1, 29), date(2026, 2, 28))  # 31 days before
    ref_prev = reference(frames, date(2026, 1, 29), date(2026, 2, 28))
    assert ov.previous.orders == ref_prev["orders"]
    assert ov.change("revenue") == pytest.approx(ov.current.revenue / ov.previous.revenue - 1)
    # The weekly chart adds up to the period's totals.
    assert ov.weekly.orders.sum() == ov.current.orders
    assert ov.weekly.revenue.sum() == pytest.approx(ov.current.revenue)


def test_consent_excluded_customers_change_the_numbers(shop):
    # Non-consenting customers' orders are out: counting them would give more orders.
    cur, frames = shop
    o = frames["orders"]
    lo, hi = pd.Timestamp(START), pd.Timestamp(END + timedelta(days=1))
    all_completed = ((o.ordered_at >= lo) & (o.ordered_at < hi) & (o.status == "completed")).sum()
    assert period_kpis(cur, START, END).orders < all_completed


def test_empty_period_gives_none_not_zero(shop):
    cur, _ = shop
    k = period_kpis(cur, date(2030, 1, 1), date(2030, 1, 31))
    assert (k.orders, k.customers, k.revenue) == (0, 0, 0.0)
    assert k.average_order_value is None and k.conversion_rate is None and k.repeat_purchase_rate is None
    with pytest.raises(ValidationError, match="before it starts"):
        period_kpis(cur, END, START)


def test_shop_without_sessions_says_not_available(cur):
    cur.execute("INSERT INTO customers (customer_id, consent_analytics) VALUES (1, true)")
    cur.execute("INSERT INTO orders (order_id, customer_id, ordered_at, amount, status) VALUES"
                " (1, 1, '2026-01-05 10:00', 40, 'completed'), (2, 1, '2026-01-06 10:00', 60, 'completed')")
    k = period_kpis(cur, date(2026, 1, 1), date(2026, 1, 31))
    # Two orders of one customer: AOV (40 + 60) / 2 = 50, the one buyer is a repeat buyer.
    assert (k.orders, k.revenue, k.average_order_value, k.repeat_purchase_rate) == (2, 100.0, 50.0, 1.0)
    assert k.sessions is None and k.conversion_rate is None


def test_summary_and_default_period(shop):
    cur, _ = shop
    summary = shop_summary(cur)
    assert summary.customers == 1500 and summary.source == "sample" and summary.has_sessions
    start, end = default_period(summary)
    assert end == summary.last_order and (end - start).days == 89


def test_weekly_days_count_partial_weeks(shop):
    cur, _ = shop
    # 2026-03-01 is a Sunday: its week (Monday 2026-02-23) has 1 day in the period;
    # 2026-03-31 is a Tuesday: its week (2026-03-30) has 2 days; weeks between have 7.
    weekly = overview(cur, START, END).weekly
    weekly = weekly.set_index(weekly.week.dt.date)
    assert weekly.loc[date(2026, 2, 23), "days"] == 1
    assert weekly.loc[date(2026, 3, 30), "days"] == 2
    assert weekly.loc[date(2026, 3, 9), "days"] == 7
