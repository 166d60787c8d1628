"""KPI definitions and the before/after impact table on a shop small enough to check by hand.

The shop (build_tiny_shop): action 1 starts Monday 2026-03-02 and targets persona 1; with
7-day windows the cohort window is [Feb 16, Feb 23), before [Feb 23, Mar 2), after
[Mar 2, Mar 9).

customer  persona  consent  sessions (order)                          other completed orders
1         1        yes      before: Feb 24 (B 30), Feb 25, Feb 26      A Feb 17 50 (cohort)
                            (C 100 cancelled); after: Mar 3 (D 40),
                            Mar 4 (E 60)
2         1        yes      before: Feb 24; after: Mar 5 (F 20),
                            Mar 6, Mar 8 23:00; Mar 9 00:00 (outside)
3         2        yes      before: Feb 27 (H 80), Feb 28              G Feb 20 100 (cohort)
4         2        yes      before: Feb 25; after: Mar 7 (I 200)
5         -        yes      before: Feb 26 (J 10); after: Mar 3 (K 10),
                            Mar 4
6         1        NO       before: Feb 24 (L 1000); after: Mar 3     (never counted)
                            (M 1000)
anonymous                   before: Feb 24 (never counted: no customer)
"""

from __future__ import annotations

import math
from datetime import date, datetime

import duckdb
import pytest

from persona_engine import kpis
from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.kpis import Audience

ACTION_START = date(2026, 3, 2)
COHORT = (datetime(2026, 2, 16), datetime(2026, 2, 23))
BEFORE = (datetime(2026, 2, 23), datetime(2026, 3, 2))
AFTER = (datetime(2026, 3, 2), datetime(2026, 3, 9))

# (session_id, customer_id, started_at, order_id)
SESSIONS = [
    (1, 1, "2026-02-24 10:00", 102),
    (2, 1, "2026-02-25 10:00", None),
    (3, 1, "2026-02-26 10:00", 103),
    (4, 1, "2026-03-03 10:00", 104),
    (5, 1, "2026-03-04 10:00", 105),
    (6, 2, "2026-02-24 11:00", None),
    (7, 2, "2026-03-05 11:00", 106),
    (8, 2, "2026-03-06 11:00", None),
    (9, 2, "2026-03-08 23:00", None),
    (20, 2, "2026-03-09 00:00", None),
    (10, 3, "2026-02-27 12:00", 108),
    (11, 3, "2026-02-28 12:00", None),
    (12, 4, "2026-02-25 13:00", None),
    (13, 4, "2026-03-07 13:00", 109),
    (14, 5, "2026-02-26 14:00", 110),
    (15, 5, "2026-03-03 14:00", 111),
    (16, 5, "2026-03-04 14:00", None),
    (17, 6, "2026-02-24 15:00", 112),
    (18, 6, "2026-03-03 15:00", 113),
    (19, None, "2026-02-24 16:00", None),
]
# (order_id, customer_id, ordered_at, amount, status)
ORDERS = [
    (101, 1, "2026-02-17 09:00", 50.0, "completed"),  # A, cohort window
    (102, 1, "2026-02-24 10:05", 30.0, "completed"),  # B
    (103, 1, "2026-02-26 10:05", 100.0, "cancelled"),  # C
    (104, 1, "2026-03-03 10:05", 40.0, "completed"),  # D
    (105, 1, "2026-03-04 10:05", 60.0, "completed"),  # E
    (106, 2, "2026-03-05 11:05", 20.0, "completed"),  # F
    (107, 3, "2026-02-20 12:00", 100.0, "completed"),  # G, cohort window, in store
    (108, 3, "2026-02-27 12:05", 80.0, "completed"),  # H
    (109, 4, "2026-03-07 13:05", 200.0, "completed"),  # I
    (110, 5, "2026-02-26 14:05", 10.0, "completed"),  # J
    (111, 5, "2026-03-03 14:05", 10.0, "completed"),  # K
    (112, 6, "2026-02-24 15:05", 1000.0, "completed"),  # L, no consent
    (113, 6, "2026-03-03 15:05", 1000.0, "completed"),  # M, no consent
]


def build_tiny_shop(cur: duckdb.DuckDBPyConnection) -> int:
    """Insert the shop of the module docstring; returns the action id (targets persona 1)."""
    cur.executemany(
        "INSERT INTO customers (customer_id, consent_analytics) VALUES (?, ?)",
        [(1, True), (2, True), (3, True), (4, True), (5, True), (6, False)],
    )
    cur.executemany(
        "INSERT INTO sessions (session_id, customer_id, started_at, order_id) VALUES (?, ?, ?, ?)",
        SESSIONS,
    )
    cur.executemany(
        "INSERT INTO orders (order_id, customer_id, ordered_at, amount, status) "
        "VALUES (?, ?, ?, ?, ?)",
        ORDERS,
    )
    cur.execute(
        "INSERT INTO personas (persona_id, name, nickname) VALUES "
        "(1, 'Frugal families', 'Frugal Fred'), (2, 'Premium buyers', 'Premium Paula')"
    )
    cur.executemany(
        "INSERT INTO persona_members (persona_id, customer_id, run_id) VALUES (?, ?, 1)",
        [(1, 1), (1, 2), (1, 6), (2, 3), (2, 4)],
    )
    row = cur.execute(
        "INSERT INTO actions (name, persona_ids, starts_on) VALUES ('Spring offer', [1], ?) "
        "RETURNING action_id",
        [ACTION_START],
    ).fetchall()
    return int(row[0][0])


@pytest.fixture
def shop(cur: duckdb.DuckDBPyConnection) -> int:
    return build_tiny_shop(cur)


FRED = Audience.persona(1)
PAULA = Audience.persona(2)


# --- One function per KPI ------------------------------------------------------------------


def test_conversion_rate_counts_sessions_with_a_completed_order(cur, shop):
    # Persona 1 before: sessions 1, 2, 3 (customer 1) and 6 (customer 2) = 4; only session 1
    # has a completed order (session 3's order C was cancelled; customer 6 has no consent).
    before = kpis.conversion_rate(cur, FRED, *BEFORE)
    assert (before.numerator, before.denominator, before.value) == (1, 4, 0.25)
    # After: sessions 4, 5, 7, 8, 9 = 5 (session 20 starts at Mar 9 00:00, outside);
    # 4, 5 and 7 have completed orders -> 3 / 5.
    assert kpis.conversion_rate(cur, FRED, *AFTER).value == pytest.approx(0.6)
    # Everyone before: 8 consenting sessions (1, 2, 3, 6, 10, 11, 12, 14; not the anonymous 19
    # nor customer 6's 17); converted 1, 10, 14 -> 3 / 8.
    everyone = kpis.conversion_rate(cur, None, *BEFORE)
    assert (everyone.numerator, everyone.denominator) == (3, 8)


def test_average_order_value_uses_completed_orders_only(cur, shop):
    # Persona 1 before: B 30 only (C cancelled, L no consent) -> 30.
    assert kpis.average_order_value(cur, FRED, *BEFORE).value == pytest.approx(30.0)
    # After: D 40 + E 60 + F 20 = 120 over 3 orders -> 40.
    after = kpis.average_order_value(cur, FRED, *AFTER)
    assert (after.numerator, after.denominator, after.value) == (120, 3, pytest.approx(40.0))
    # Everyone after: D, E, F, I 200, K 10 = 330 / 5 = 66.
    assert kpis.average_order_value(cur, None, *AFTER).value == pytest.approx(66.0)


def test_retention_rate_is_the_share_of_first_window_buyers_who_buy_again(cur, shop):
    # Persona 2: only customer 3 bought in the cohort window (G) and again before (H): 1/1.
    assert kpis.retention_rate(cur, PAULA, *COHORT, *BEFORE).value == 1.0
    # Bought before: customer 3 only; nothing after -> 0 / 1 (a real 0, not an empty one).
    after = kpis.retention_rate(cur, PAULA, *BEFORE, *AFTER)
    assert (after.numerator, after.denominator, after.value) == (0, 1, 0.0)
    # Everyone: before-window buyers 1 (B), 3 (H), 5 (J); after: 1 (D, E) and 5 (K) -> 2/3.
    assert kpis.retention_rate(cur, None, *BEFORE, *AFTER).value == pytest.approx(2 / 3)


def test_per_customer_kpis_divide_by_every_member(cur, shop):
    # Persona 1 has 2 consenting members (customer 6 has no consent): after revenue 120 -> 60
    # per customer, 3 orders -> 1.5 per customer; before 30 -> 15 and 1 -> 0.5.
    assert kpis.revenue_per_customer(cur, FRED, *AFTER).value == pytest.approx(60.0)
    assert kpis.orders_per_customer(cur, FRED, *AFTER).value == pytest.approx(1.5)
    assert kpis.revenue_per_customer(cur, FRED, *BEFORE).value == pytest.approx(15.0)
    # Everyone: 5 consenting customers; before revenue B 30 + H 80 + J 10 = 120 -> 24.
    assert kpis.revenue_per_customer(cur, None, *BEFORE).value == pytest.approx(24.0)


def test_empty_denominators_give_none_never_zero(cur, shop):
    quiet = (datetime(2025, 1, 1), datetime(2025, 1, 8))
    assert kpis.conversion_rate(cur, FRED, *quiet).value is None
    assert kpis.average_order_value(cur, FRED, *quiet).value is None
    assert kpis.retention_rate(cur, FRED, *quiet, *BEFORE).value is None
    nobody = Audience(customer_ids=())
    assert kpis.revenue_per_customer(cur, nobody, *BEFORE).value is None
    assert kpis.orders_per_customer(cur, nobody, *BEFORE).value is None
    # ... while a window with customers but no revenue is a true 0.
    assert kpis.revenue_per_customer(cur, FRED, *quiet).value == 0.0


def test_audience_can_exclude_personas_and_list_customers(cur, shop):
    # Not in persona 1: customers 3, 4, 5. Before: sessions 10, 11, 12, 14; converted 10, 14.
    control = Audience(exclude_persona_ids=(1,))
    assert kpis.conversion_rate(cur, control, *BEFORE).value == pytest.approx(0.5)
    # Customers 4 and 5 after: sessions 13, 15, 16; converted 13, 15 -> 2/3.
    listed = Audience(customer_ids=(4, 5))
    assert kpis.conversion_rate(cur, listed, *AFTER).value == pytest.approx(2 / 3)


def test_kpi_windows_are_validated(cur, shop):
    with pytest.raises(ValidationError, match="before it starts"):
        kpis.conversion_rate(cur, FRED, AFTER[1], AFTER[0])


# --- The impact table ----------------------------------------------------------------------


def _row(rows, persona_id, metric):
    return next(r for r in rows if r.persona_id == persona_id and r.metric == metric)


def test_before_after_values_changes_and_did_by_hand(cur, shop):
    rows = kpis.before_after(cur, shop, window_days=7)
    assert {(r.persona_id, r.metric) for r in rows} == {
        (p, m) for p in (1, 2) for m in kpis.DEFAULT_METRICS
    }
    conv = _row(rows, 1, "conversion_rate")
    assert conv.targeted and conv.persona_name == "Frugal families"
    assert conv.persona_nickname == "Frugal Fred"
    assert (conv.before, conv.after, conv.units) == (0.25, 0.6, "sessions")
    assert conv.change == pytest.approx(0.35)
    assert conv.relative_change == pytest.approx(1.4)  # 0.6 / 0.25 - 1
    assert (conv.n_before, conv.n_after) == (4, 5)
    # Control = customers in no targeted persona = 3, 4, 5: before 2/4, after 2/3.
    assert conv.control_before == pytest.approx(0.5)
    assert conv.control_after == pytest.approx(2 / 3)
    assert conv.did == pytest.approx(0.35 - (2 / 3 - 0.5))
    assert conv.did_relative == pytest.approx((0.6 / 0.25) / ((2 / 3) / 0.5) - 1)  # 0.8

    aov = _row(rows, 1, "average_order_value")
    assert (aov.before, aov.after, aov.units) == (30.0, 40.0, "orders")
    # Control AOV before (H 80 + J 10) / 2 = 45, after (I 200 + K 10) / 2 = 105.
    assert aov.did == pytest.approx(10 - 60)

    # Persona 2 is untargeted: its control is the untargeted customers minus itself = 5.
    paula = _row(rows, 2, "conversion_rate")
    assert not paula.targeted
    assert paula.before == pytest.approx(1 / 3) and paula.after == 1.0
    assert (paula.control_before, paula.control_after) == (1.0, 0.5)
    assert paula.did == pytest.approx((1 - 1 / 3) - (0.5 - 1.0))

    # Retention of persona 2: 1/1 before, 0/1 after; its control (customer 5) has no
    # cohort-window buyer, so the control's before value and the DiD are undefined: None.
    ret = _row(rows, 2, "retention_rate")
    assert (ret.before, ret.after, ret.change, ret.units) == (1.0, 0.0, -1.0, "customers")
    assert ret.control_before is None and ret.did is None and ret.did_low is None


def test_before_after_agrees_with_the_kpi_functions(cur, shop):
    # One implementation per definition is checked against the other on every persona.
    rows = kpis.before_after(cur, shop, window_days=7, metrics=list(kpis.METRICS))
    functions = {
        "conversion_rate": kpis.conversion_rate,
        "average_order_value": kpis.average_order_value,
        "revenue_per_customer": kpis.revenue_per_customer,
        "orders_per_customer": kpis.orders_per_customer,
    }
    for row in rows:
        audience = Audience.persona(row.persona_id)
        if row.metric == "retention_rate":
            before = kpis.retention_rate(cur, audience, *COHORT, *BEFORE).value
            after = kpis.retention_rate(cur, audience, *BEFORE, *AFTER).value
        else:
            before = functions[row.metric](cur, audience, *BEFORE).value
            after = functions[row.metric](cur, audience, *AFTER).value
        assert row.before == pytest.approx(before), (row.persona_id, row.metric)
        assert row.after == pytest.approx(after), (row.persona_id, row.metric)


def test_tiny_samples_are_flagged_and_undefined_intervals_are_none(cur, shop):
    rows = kpis.before_after(cur, shop, window_days=7)
    assert all(r.small_sample and r.did_small_sample for r in rows)
    aov = _row(rows, 1, "average_order_value")
    # One order before: no spread to estimate -> no interval, no p-value, never 0.
    assert aov.change_low is None and aov.change_high is None and aov.p_value is None
    # With 2 customers the bootstrap cannot measure clustering (more than 10% of resamples
    # lose every session), so the rate falls back to Newcombe's interval on the sessions:
    # 3/5 after vs 1/4 before, exactly as statsmodels computes it.
    from statsmodels.stats.proportion import confint_proportions_2indep

    conv = _row(rows, 1, "conversion_rate")
    low, high = confint_proportions_2indep(3, 5, 1, 4, method="newcomb", compare="diff")
    assert (conv.change_low, conv.change_high) == pytest.approx((low, high))


def test_control_can_be_a_chosen_persona(cur, shop):
    rows = kpis.before_after(cur, shop, window_days=7, control=2)
    conv = _row(rows, 1, "conversion_rate")
    # Persona 2 before: sessions 10, 11, 12 with 10 converted -> 1/3; after: 13 -> 1/1.
    assert conv.control == "persona" and conv.control_persona_id == 2
    assert conv.control_before == pytest.approx(1 / 3) and conv.control_after == 1.0
    assert conv.did == pytest.approx(0.35 - 2 / 3)
    # The control persona's own row has no DiD (it would compare it with itself).
    own = _row(rows, 2, "conversion_rate")
    assert own.did is None and own.control_before is None and own.did_small_sample


@pytest.mark.parametrize("window_days", [6, 181, 0, "30", 30.0])
def test_window_length_is_validated(cur, shop, window_days):
    with pytest.raises(ValidationError, match="window length"):
        kpis.before_after(cur, shop, window_days=window_days)


def test_bad_control_and_unknown_action_are_refused(cur, shop):
    with pytest.raises(ValidationError, match="targeted by this action"):
        kpis.before_after(cur, shop, window_days=7, control=1)
    with pytest.raises(ValidationError, match="has no members"):
        kpis.before_after(cur, shop, window_days=7, control=99)
    with pytest.raises(ValidationError, match="'untargeted' or a persona id"):
        kpis.before_after(cur, shop, window_days=7, control="everyone")
    with pytest.raises(NotFoundError, match="action 42 does not exist"):
        kpis.before_after(cur, 42)
    with pytest.raises(ValidationError, match="unknown metric"):
        kpis.before_after(cur, shop, window_days=7, metrics=["bounce_rate"])


def test_window_complete_flags_windows_cut_by_the_data_period(cur, shop):
    rows = kpis.before_after(cur, shop, window_days=7)
    # Conversion needs Feb 23 - Mar 9: orders exist before Feb 24 and sessions after Mar 8.
    assert _row(rows, 1, "conversion_rate").window_complete
    # Retention also needs the cohort window from Feb 16, but the first activity is on
    # Feb 17 09:00, more than a day later.
    assert not _row(rows, 1, "retention_rate").window_complete
    # A 30-day window runs to Apr 1, weeks after the last session (Mar 9).
    rows30 = kpis.before_after(cur, shop, window_days=30)
    assert not any(r.window_complete for r in rows30)


def test_same_seed_same_numbers(cur, shop):
    a = kpis.impact_frame(kpis.before_after(cur, shop, window_days=7, seed=3))
    b = kpis.impact_frame(kpis.before_after(cur, shop, window_days=7, seed=3))
    assert a.equals(b)


def test_p_values_are_holm_adjusted_across_the_table(cur, shop):
    rows = kpis.before_after(cur, shop, window_days=7, metrics=list(kpis.METRICS))
    from statsmodels.stats.multitest import multipletests

    tested = [r for r in rows if r.p_value is not None]
    expected = multipletests([r.p_value for r in tested], method="holm")[1]
    assert [r.p_value_holm for r in tested] == pytest.approx(list(expected))
    assert all(r.p_value_holm is None for r in rows if r.p_value is None)


def test_no_personas_or_no_activity_is_a_clear_message(cur, shop):
    with pytest.raises(NoDataError, match="no session or order"):
        kpis.impact_table(cur, date(2030, 1, 1), [1], window_days=7)
    cur.execute("DELETE FROM persona_members")
    with pytest.raises(NoDataError, match="no persona has members"):
        kpis.before_after(cur, shop, window_days=7)


def test_shop_without_sessions_has_no_conversion_rate(cur, shop):
    cur.execute("DELETE FROM sessions")
    rows = kpis.before_after(cur, shop, window_days=7)
    conv = _row(rows, 1, "conversion_rate")
    assert conv.before is None and conv.after is None and conv.change is None
    assert (conv.n_before, conv.n_after) == (0, 0) and conv.small_sample
    # Orders still give the other metrics.
    assert _row(rows, 1, "average_order_value").after == pytest.approx(40.0)


def test_impact_table_without_an_action_around_a_date(cur, shop):
    # "What happened around Mar 2?" with no persona targeted: everyone is the control.
    rows = kpis.impact_table(cur, ACTION_START, [], window_days=7)
    conv = _row(rows, 1, "conversion_rate")
    assert not conv.targeted and conv.action_id is None
    # Control of persona 1 = customers 3, 4, 5 (everyone but itself): same as above.
    assert conv.control_before == pytest.approx(0.5)


# --- Weekly series and summary -------------------------------------------------------------


def test_weekly_series_by_monday_weeks(cur, shop):
    weekly = kpis.weekly_series(cur, 1, "conversion_rate", date(2026, 2, 18), date(2026, 3, 16))
    assert list(weekly["week_start"]) == [
        date(2026, 2, 16), date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)
    ]
    # Week of Feb 16: no session -> NaN (not 0); then 1/4, 3/5 and 0/1 (session 20).
    assert math.isnan(weekly["value"][0])
    assert list(weekly["value"][1:]) == pytest.approx([0.25, 0.6, 0.0])
    assert list(weekly["denominator"]) == [0, 4, 5, 1]


def test_weekly_series_of_the_untargeted_control_and_other_metrics(cur, shop):
    control = kpis.weekly_series(
        cur, None, "average_order_value", date(2026, 2, 16), date(2026, 3, 9),
        exclude_persona_ids=[1],
    )
    # Customers 3, 4, 5: week Feb 16: G 100; Feb 23: H 80, J 10; Mar 2: I 200, K 10.
    assert list(control["value"]) == pytest.approx([100.0, 45.0, 105.0])
    revenue = kpis.weekly_series(cur, 1, "revenue_per_customer", date(2026, 2, 16), date(2026, 3, 9))
    assert list(revenue["value"]) == pytest.approx([25.0, 15.0, 60.0])  # 50, 30, 120 over 2
    retention = kpis.weekly_series(cur, None, "retention_rate", date(2026, 2, 23), date(2026, 3, 9))
    # Buyers of week Feb 16: 1, 3 -> both buy in week Feb 23. Buyers of week Feb 23: 1, 3, 5
    # -> 1 and 5 buy in week Mar 2.
    assert list(retention["value"]) == pytest.approx([1.0, 2 / 3])


def test_weekly_series_marks_a_cut_last_week(cur, shop):
    weekly = kpis.weekly_series(cur, 1, "orders_per_customer", date(2026, 2, 23), date(2026, 3, 5))
    assert list(weekly["complete"]) == [True, False]


def test_summary_numbers_for_the_plain_words_paragraph(cur, shop):
    rows = kpis.before_after(cur, shop, window_days=7)
    summary = kpis.impact_summary(rows, 1, "conversion_rate")
    assert summary.persona_name == "Frugal Fred"  # the nickname when there is one
    assert summary.value_kind == "rate" and summary.direction == "up"
    assert (summary.before, summary.after) == (0.25, 0.6)
    assert summary.control_change == pytest.approx(2 / 3 - 0.5)
    assert summary.conclusive == (summary.change_low > 0)
    assert summary.small_sample
    with pytest.raises(NotFoundError):
        kpis.impact_summary(rows, 1, "bounce_rate")
