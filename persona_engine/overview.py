"""Shop at a glance: headline KPIs over a date range, against the previous period, and weekly totals.

Shop-level totals read the `shop_*` views (consenting customers plus guest orders and
anonymous sessions); customer counts read `analysis_orders` (consenting customers only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd

from persona_engine.errors import ValidationError
from persona_engine.store import fetch_df, fetch_one, get_setting

KPI_NAMES = ("customers", "orders", "revenue", "average_order_value", "conversion_rate", "repeat_purchase_rate")


@dataclass(frozen=True)
class PeriodKpis:
    start: date  # first day, inclusive
    end: date  # last day, inclusive
    customers: int  # consenting customers with a completed order in the period
    orders: int  # completed orders (guest orders included)
    revenue: float  # sum of completed orders' amount
    average_order_value: float | None  # revenue / orders; None without orders
    sessions: int | None  # None when the shop has no session data at all
    conversion_rate: float | None  # sessions with a completed order / sessions; None without sessions
    repeat_purchase_rate: float | None  # buyers with 2+ completed orders in the period / buyers


@dataclass(frozen=True)
class Overview:
    current: PeriodKpis
    previous: PeriodKpis
    weekly: pd.DataFrame  # week (Monday), days (of it inside the period), orders, revenue
    has_sessions: bool

    def change(self, kpi: str) -> float | None:
        """Relative change of a KPI against the previous period; None when undefined."""
        now, before = getattr(self.current, kpi), getattr(self.previous, kpi)
        if now is None or before is None or before == 0:
            return None
        return float(now / before - 1)


@dataclass(frozen=True)
class ShopSummary:
    customers: int
    customers_without_consent: int
    orders: int
    first_order: date | None
    last_order: date | None
    has_sessions: bool
    source: str | None  # "sample" or "import"
    consent: str | None  # how consent was declared for the data
    currency: str | None
    locale: str | None

    @property
    def is_empty(self) -> bool:
        return self.customers == 0 and self.orders == 0


def shop_summary(cur: duckdb.DuckDBPyConnection) -> ShopSummary:
    """What the database holds: counts, date span, and how the data came in."""
    row = fetch_one(
        cur,
        """
        SELECT (SELECT count(*) FROM customers),
               (SELECT count(*) FROM customers WHERE NOT consent_analytics),
               (SELECT count(*) FROM orders),
               (SELECT min(ordered_at)::DATE FROM orders),
               (SELECT max(ordered_at)::DATE FROM orders),
               (SELECT count(*) > 0 FROM (SELECT 1 FROM sessions LIMIT 1))
        """,
    )
    assert row is not None
    return ShopSummary(
        customers=row[0], customers_without_consent=row[1], orders=row[2], first_order=row[3],
        last_order=row[4], has_sessions=bool(row[5]), source=get_setting(cur, "source"),
        consent=get_setting(cur, "consent"), currency=get_setting(cur, "currency"),
        locale=get_setting(cur, "locale"),
    )


_PERIOD_SQL = """
WITH o AS (
    SELECT customer_id, amount FROM shop_orders
    WHERE status = 'completed' AND ordered_at >= $start AND ordered_at < $stop
),
buyers AS (
    SELECT customer_id, count(*) AS n FROM analysis_orders
    WHERE status = 'completed' AND ordered_at >= $start AND ordered_at < $stop
    GROUP BY customer_id
),
s AS (
    SELECT count(*) AS sessions,
           count(*) FILTER (WHERE so.status = 'completed') AS converted
    FROM shop_sessions ss LEFT JOIN orders so ON so.order_id = ss.order_id
    WHERE ss.started_at >= $start AND ss.started_at < $stop
)
SELECT (SELECT count(*) FROM buyers),
       (SELECT count(*) FROM buyers WHERE n >= 2),
       (SELECT count(*) FROM o),
       (SELECT coalesce(sum(amount), 0) FROM o),
       s.sessions, s.converted
FROM s
"""


def period_kpis(cur: duckdb.DuckDBPyConnection, start: date, end: date, has_sessions: bool | None = None) -> PeriodKpis:
    """Headline KPIs for the days start..end (both included). Definitions in the README."""
    if end < start:
        raise ValidationError(f"the period ends ({end}) before it starts ({start})")
    if has_sessions is None:
        has_sessions = bool(fetch_one(cur, "SELECT count(*) > 0 FROM (SELECT 1 FROM sessions LIMIT 1)")[0])  # type: ignore[index]
    row = fetch_one(cur, _PERIOD_SQL, {"start": start, "stop": end + timedelta(days=1)})
    assert row is not None
    buyers, repeaters, orders, revenue, sessions, converted = row
    return PeriodKpis(
        start=start, end=end, customers=int(buyers), orders=int(orders), revenue=float(revenue),
        average_order_value=float(revenue) / orders if orders else None,
        sessions=int(sessions) if has_sessions else None,
        conversion_rate=converted / sessions if has_sessions and sessions else None,
        repeat_purchase_rate=repeaters / buyers if buyers else None,
    )


def weekly_totals(cur: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Completed orders and revenue per week (weeks start on Monday) between start and end.

    `days` says how many days of each week fall inside the period, so a chart can show
    the partial first and last weeks for what they are.
    """
    return fetch_df(
        cur,
        """
        SELECT date_trunc('week', ordered_at)::DATE AS week,
               least(date_trunc('week', ordered_at)::DATE + 6, $end::DATE)
                 - greatest(date_trunc('week', ordered_at)::DATE, $start::DATE) + 1 AS days,
               count(*) AS orders, sum(amount) AS revenue
        FROM shop_orders
        WHERE status = 'completed' AND ordered_at >= $start AND ordered_at < $stop
        GROUP BY 1 ORDER BY 1
        """,
        {"start": start, "end": end, "stop": end + timedelta(days=1)},
    )


def overview(cur: duckdb.DuckDBPyConnection, start: date, end: date) -> Overview:
    """KPIs of start..end, of the previous period of equal length, and the weekly series."""
    has_sessions = shop_summary(cur).has_sessions
    length = end - start + timedelta(days=1)
    current = period_kpis(cur, start, end, has_sessions)
    previous = period_kpis(cur, start - length, start - timedelta(days=1), has_sessions)
    return Overview(current, previous, weekly_totals(cur, start, end), has_sessions)


def default_period(summary: ShopSummary, days: int = 90) -> tuple[date, date]:
    """The last `days` days of data (not of the calendar: a sample shop may end in the past)."""
    last = summary.last_order or date.today()
    first = summary.first_order or last
    return max(first, last - timedelta(days=days - 1)), last
