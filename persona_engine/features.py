"""Customer features: one row per consenting customer in `customer_features`, computed in SQL.

The same transaction writes the per-customer rollups (`customer_session_devices`,
`customer_session_sources`, `customer_order_values`, `customer_order_hours`,
`customer_order_months`,
`customer_category_revenue`) and the RFM/behavioural segments, so that the explorer
aggregates about one row per customer and value instead of the raw orders and sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from persona_engine.store import fetch_value, set_setting, transaction

# Called after each step with (steps done, total steps, name of the step just done).
ProgressCallback = Callable[[int, int, str], None]

RECENT_WINDOW_DAYS = 90
MOBILE_DEVICE = "mobile"


@dataclass(frozen=True)
class FeatureInfo:
    """What a feature is, for catalogues and clustering; the wording lives in the UI.

    `unit` is a stable code: days, orders, sessions, currency, ratio (0-1), pages,
    category, source, device, weekday (0 = Monday), hour (0-23), flag, shares (map of
    category -> share of revenue).
    """

    key: str
    unit: str
    kind: str  # numeric, categorical, boolean or map
    needs_sessions: bool = False


def _info(key: str, unit: str, kind: str = "numeric", needs_sessions: bool = False) -> FeatureInfo:
    return FeatureInfo(key=key, unit=unit, kind=kind, needs_sessions=needs_sessions)


# Keys are the customer_features column names, so a caller can select them directly.
FEATURES: dict[str, FeatureInfo] = {
    f.key: f
    for f in (
        _info("recency_days", "days"),
        _info("frequency", "orders"),
        _info("monetary", "currency"),
        _info("average_order_value", "currency"),
        _info("tenure_days", "days"),
        _info("orders_90d", "orders"),
        _info("sessions_90d", "sessions", needs_sessions=True),
        _info("sessions_total", "sessions", needs_sessions=True),
        _info("pages_per_session", "pages", needs_sessions=True),
        _info("cart_abandonment_rate", "ratio", needs_sessions=True),
        _info("abandoned_carts_90d", "sessions", needs_sessions=True),
        _info("discount_share", "ratio"),
        _info("return_rate", "ratio"),
        _info("mobile_share", "ratio", needs_sessions=True),
        _info("main_source", "source", "categorical"),
        _info("main_device", "device", "categorical"),
        _info("favourite_category", "category", "categorical"),
        _info("category_shares", "shares", "map"),
        _info("preferred_weekday", "weekday", "categorical"),
        _info("preferred_hour", "hour", "categorical"),
        _info("newsletter_opt_in", "flag", "boolean"),
    )
}

FEATURE_STEPS: tuple[str, ...] = (
    "reference date",
    "sessions",
    "orders",
    "categories",
    "customer features",
    "segments",
    "explorer cubes",
)

FEATURES_STATE_SETTING = "features_state"

ROLLUP_TABLES: tuple[str, ...] = (
    "customer_session_devices",
    "customer_session_sources",
    "customer_order_values",
    "customer_order_hours",
    "customer_order_months",
    "customer_category_revenue",
)


def default_reference_date(cur: duckdb.DuckDBPyConnection) -> date:
    """The day after the last order in the data (any status, consenting or anonymous).

    Falls back to the day after the last session, then to today, for shops without orders.
    """
    for sql in (
        "SELECT CAST(max(ordered_at) AS DATE) + 1 FROM shop_orders",
        "SELECT CAST(max(started_at) AS DATE) + 1 FROM shop_sessions",
    ):
        value = fetch_value(cur, sql)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return date.today()


def shop_has_sessions(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether the shop records sessions at all (imported transaction data often does not)."""
    return bool(fetch_value(cur, "SELECT EXISTS (SELECT 1 FROM sessions)"))


# ---------------------------------------------------------------- rollups
# Every query reads the consent views and only activity before the reference date, so
# features describe the shop "as of" that date. $ref is the reference date at midnight.

# Sessions are the largest table (tens of millions of rows), so they are read in two
# passes that stay cheap: (1) every session, grouped by customer, device and source, without
# any join; (2) only the sessions that carry an order id, joined to completed orders, for
# conversions (a session converted when its order is completed, as in the conversion KPI).
# Non-consenting customers are dropped after grouping, by the same consent view: filtering
# the few million groups costs far less than filtering every session, and the result is
# the same. Both passes land in a temporary table that the two rollups are summed from.
_SESSION_SLOTS_SQL = """
CREATE OR REPLACE TEMP TABLE feature_session_slots AS
SELECT * FROM (
    SELECT customer_id, device, source,
        count(*) AS sessions,
        count(*) FILTER (started_at >= $since) AS sessions_90d,
        sum(pages_viewed) AS pages_viewed,
        count(pages_viewed) AS sessions_with_pages,
        count(*) FILTER (viewed_product) AS product_view_sessions,
        count(*) FILTER (added_to_cart) AS cart_sessions,
        count(*) FILTER (added_to_cart AND started_at >= $since) AS cart_sessions_90d,
        count(*) FILTER (checkout_started) AS checkout_sessions,
        0 AS order_sessions, 0 AS converted_carts, 0 AS converted_carts_90d,
        min(started_at) AS first_session_at, max(started_at) AS last_session_at
    FROM sessions
    WHERE started_at < $ref AND customer_id IS NOT NULL
    GROUP BY ALL
    UNION ALL
    SELECT s.customer_id, s.device, s.source,
        0, 0, NULL, 0, 0, 0, 0, 0,
        count(*),
        count(*) FILTER (s.added_to_cart),
        count(*) FILTER (s.added_to_cart AND s.started_at >= $since),
        NULL, NULL
    FROM sessions s
    JOIN orders o ON o.order_id = s.order_id
    WHERE s.order_id IS NOT NULL AND o.status = 'completed'
      AND s.started_at < $ref AND s.customer_id IS NOT NULL
    GROUP BY ALL
)
WHERE customer_id IN (SELECT customer_id FROM analysis_customers)
"""

_SESSION_DEVICES_SQL = """
INSERT INTO customer_session_devices
SELECT customer_id, device,
    sum(sessions), sum(sessions_90d), sum(pages_viewed), sum(sessions_with_pages),
    sum(product_view_sessions), sum(cart_sessions), sum(checkout_sessions),
    sum(order_sessions),
    sum(cart_sessions) - sum(converted_carts),
    sum(cart_sessions_90d) - sum(converted_carts_90d),
    min(first_session_at), max(last_session_at)
FROM feature_session_slots
GROUP BY ALL
"""

_SESSION_SOURCES_SQL = """
INSERT INTO customer_session_sources
SELECT customer_id, source,
    sum(sessions), sum(cart_sessions), sum(cart_sessions) - sum(converted_carts),
    sum(order_sessions)
FROM feature_session_slots
GROUP BY ALL
"""

# The dimension (channel, device or payment_method) and the value of a row grouped by
# GROUPING SETS over those three columns: the order rollups' keys, lifetime and per date
# range (explore), and the order mixes of the explorer's day tables.
ORDER_VALUE_KEYS = """
    CASE WHEN grouping(channel) = 0 THEN 'channel'
         WHEN grouping(device) = 0 THEN 'device' ELSE 'payment_method' END AS dimension,
    CASE WHEN grouping(channel) = 0 THEN channel
         WHEN grouping(device) = 0 THEN device ELSE payment_method END AS value"""

# One row per customer, dimension (channel, device, payment_method) and value.
_ORDER_VALUES_SQL = """
INSERT INTO customer_order_values
SELECT customer_id,""" + ORDER_VALUE_KEYS + """,
    count(*), sum(amount)
FROM analysis_orders
WHERE status = 'completed' AND ordered_at < $ref
GROUP BY GROUPING SETS ((customer_id, channel), (customer_id, device),
                        (customer_id, payment_method))
"""

_ORDER_HOURS_SQL = """
INSERT INTO customer_order_hours
SELECT customer_id, isodow(ordered_at) - 1, hour(ordered_at), count(*), sum(amount)
FROM analysis_orders
WHERE status = 'completed' AND ordered_at < $ref
GROUP BY ALL
"""

# `cohort` is the month of the customer's first completed order.
_ORDER_MONTHS_SQL = """
INSERT INTO customer_order_months (customer_id, month, orders, revenue, cohort)
SELECT customer_id, month, orders, revenue, min(month) OVER (PARTITION BY customer_id)
FROM (
    SELECT customer_id, CAST(date_trunc('month', ordered_at) AS DATE) AS month,
           count(*) AS orders, sum(amount) AS revenue
    FROM analysis_orders
    WHERE status = 'completed' AND ordered_at < $ref
    GROUP BY ALL
)
"""

# Category revenue is the value of the items (quantity x unit price): `amount` is per order
# and cannot be split by category. Items whose product is unknown get category NULL. Items
# are first summed per order and category, so that counting orders needs no DISTINCT.
_CATEGORY_SQL = """
INSERT INTO customer_category_revenue
SELECT o.customer_id, x.category, sum(x.revenue), sum(x.quantity), count(*)
FROM (
    SELECT i.order_id, p.category,
           sum(i.quantity * i.unit_price) AS revenue, sum(i.quantity) AS quantity
    FROM order_items i
    LEFT JOIN products p ON p.product_id = i.product_id
    GROUP BY ALL
) x
JOIN analysis_orders o ON o.order_id = x.order_id
WHERE o.status = 'completed' AND o.ordered_at < $ref
GROUP BY ALL
"""

# ---------------------------------------------------------------- features

# Ties in "most frequent" picks go to the smallest value (alphabetical, earliest weekday
# or hour) so that recomputing gives the same answer.
_FEATURES_SQL = """
INSERT INTO customer_features (
    customer_id, recency_days, frequency, monetary, average_order_value, tenure_days,
    orders_90d, sessions_90d, sessions_total, pages_per_session, cart_abandonment_rate,
    discount_share, return_rate, mobile_share, main_source, favourite_category,
    category_shares, preferred_weekday, preferred_hour, newsletter_opt_in,
    first_order_at, last_order_at, computed_at,
    main_device, abandoned_carts_90d, last_active_at, reference_date
)
WITH ord AS (
    SELECT customer_id,
        count(*) FILTER (status = 'completed') AS frequency,
        coalesce(sum(amount) FILTER (status = 'completed'), 0) AS monetary,
        count(*) FILTER (status = 'completed' AND ordered_at >= $since) AS orders_90d,
        count(*) FILTER (status = 'completed' AND discount > 0) AS discounted,
        count(*) FILTER (status = 'returned') AS returned,
        min(ordered_at) FILTER (status = 'completed') AS first_order_at,
        max(ordered_at) FILTER (status = 'completed') AS last_order_at,
        min(ordered_at) AS first_any_order_at,
        max(ordered_at) AS last_any_order_at
    FROM analysis_orders
    WHERE ordered_at < $ref
    GROUP BY customer_id
),
order_device AS (
    SELECT customer_id, first(value ORDER BY orders DESC, value) AS device
    FROM customer_order_values
    WHERE dimension = 'device' AND value IS NOT NULL
    GROUP BY customer_id
),
sess AS (
    SELECT customer_id,
        sum(sessions) AS sessions_total,
        sum(sessions_90d) AS sessions_90d,
        sum(pages_viewed) / nullif(sum(sessions_with_pages), 0) AS pages_per_session,
        sum(cart_sessions) AS cart_sessions,
        sum(abandoned_cart_sessions) AS abandoned,
        sum(abandoned_carts_90d) AS abandoned_90d,
        coalesce(sum(sessions) FILTER (device = $mobile), 0) AS mobile_sessions,
        min(first_session_at) AS first_session_at,
        max(last_session_at) AS last_session_at,
        first(device ORDER BY sessions DESC, device) FILTER (device IS NOT NULL) AS main_device
    FROM customer_session_devices
    GROUP BY customer_id
),
session_source AS (
    SELECT customer_id, first(source ORDER BY sessions DESC, source) AS source
    FROM customer_session_sources
    WHERE source IS NOT NULL
    GROUP BY customer_id
),
categories AS (
    SELECT customer_id,
        first(category ORDER BY revenue DESC, category) AS favourite_category,
        list(category) AS names, list(revenue) AS revenues, sum(revenue) AS total
    FROM customer_category_revenue
    WHERE category IS NOT NULL
    GROUP BY customer_id
),
-- Modes of weekday and hour in one pass. The key n * 7 + (6 - weekday) is unique per
-- customer and, when counts tie, largest for the earliest weekday; likewise for hours.
order_times AS (
    SELECT customer_id,
        arg_max(weekday, n * 7 + (6 - weekday)) FILTER (hour IS NULL) AS weekday,
        arg_max(hour, n * 24 + (23 - hour)) FILTER (weekday IS NULL) AS hour
    FROM (SELECT customer_id, weekday, hour, sum(orders) AS n
          FROM customer_order_hours
          GROUP BY GROUPING SETS ((customer_id, weekday), (customer_id, hour)))
    GROUP BY customer_id
),
-- Fallback for customers without a completed order: when they visit. The customer set
-- (consenting, never bought) is small, so the scan of sessions only probes it.
visit_times AS (
    SELECT customer_id,
        arg_max(weekday, n * 7 + (6 - weekday)) FILTER (hour IS NULL) AS weekday,
        arg_max(hour, n * 24 + (23 - hour)) FILTER (weekday IS NULL) AS hour
    FROM (SELECT customer_id, isodow(started_at) - 1 AS weekday, hour(started_at) AS hour,
                 count(*) AS n
          FROM sessions
          WHERE started_at < $ref
            AND customer_id IN (
                SELECT customer_id FROM analysis_customers
                WHERE customer_id NOT IN (SELECT customer_id FROM customer_order_hours))
          GROUP BY GROUPING SETS ((customer_id, isodow(started_at) - 1),
                                  (customer_id, hour(started_at))))
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    date_diff('day', CAST(o.last_order_at AS DATE), $ref_date),
    coalesce(o.frequency, 0),
    coalesce(o.monetary, 0),
    o.monetary / nullif(o.frequency, 0),
    greatest(0, date_diff('day',
        CAST(coalesce(c.created_at, least(o.first_any_order_at, s.first_session_at)) AS DATE),
        $ref_date)),
    coalesce(o.orders_90d, 0),
    CASE WHEN $has_sessions THEN coalesce(s.sessions_90d, 0) END,
    CASE WHEN $has_sessions THEN coalesce(s.sessions_total, 0) END,
    s.pages_per_session,
    s.abandoned / nullif(s.cart_sessions, 0),
    o.discounted / nullif(o.frequency, 0),
    o.returned / nullif(o.frequency + o.returned, 0),
    s.mobile_sessions / nullif(s.sessions_total, 0),
    coalesce(ss.source, c.acquisition_channel),
    cat.favourite_category,
    map(cat.names, list_transform(cat.revenues, lambda r: r / nullif(cat.total, 0))),
    coalesce(ot.weekday, vt.weekday),
    coalesce(ot.hour, vt.hour),
    c.newsletter_opt_in,
    o.first_order_at,
    o.last_order_at,
    $computed_at,
    coalesce(s.main_device, od.device, c.preferred_device),
    CASE WHEN $has_sessions THEN coalesce(s.abandoned_90d, 0) END,
    greatest(o.last_any_order_at, s.last_session_at),
    $ref_date
FROM analysis_customers c
LEFT JOIN ord o USING (customer_id)
LEFT JOIN order_device od USING (customer_id)
LEFT JOIN sess s USING (customer_id)
LEFT JOIN session_source ss USING (customer_id)
LEFT JOIN categories cat USING (customer_id)
LEFT JOIN order_times ot USING (customer_id)
LEFT JOIN visit_times vt USING (customer_id)
"""


def _params(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    # DuckDB refuses named parameters a statement does not use: pass only the used ones.
    return {k: v for k, v in values.items() if f"${k}" in sql}


def compute_customer_features(
    cur: duckdb.DuckDBPyConnection,
    reference_date: date | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Recompute `customer_features`, the explorer rollups and the segments; rows written.

    Reads analysis_customers / analysis_orders / analysis_sessions / order_items /
    products (consenting customers only, activity before the reference date) and replaces
    the content of customer_features (one row per consenting customer, columns in FEATURES
    plus first_order_at, last_order_at, last_active_at, reference_date, computed_at), the
    ROLLUP_TABLES and customer_segments, all in one transaction: readers see either the old
    or the new content, never a mix. `reference_date` defaults to the day after the last
    order in the data. Shops without sessions get NULL session features, not 0.
    """
    # Imported here: segments and explore read customer_features and would otherwise import
    # this module back.
    from persona_engine.explore import write_cubes
    from persona_engine.segments import load_rules, write_segments

    total = len(FEATURE_STEPS)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, FEATURE_STEPS[done - 1])

    ref_date = reference_date if reference_date is not None else default_reference_date(cur)
    ref = datetime.combine(ref_date, datetime.min.time())
    values: dict[str, Any] = {
        "ref": ref,
        "ref_date": ref_date,
        "since": ref - timedelta(days=RECENT_WINDOW_DAYS),
        "mobile": MOBILE_DEVICE,
        "has_sessions": shop_has_sessions(cur),
        "computed_at": datetime.now(),
    }
    rules = load_rules(cur)
    step()
    with transaction(cur):
        for table in (*ROLLUP_TABLES, "customer_features", "customer_segments"):
            # Table names come from the constant tuple above, never from input.
            cur.execute(f"DELETE FROM {table}")  # noqa: S608
        for sql in (_SESSION_SLOTS_SQL, _SESSION_DEVICES_SQL, _SESSION_SOURCES_SQL):
            cur.execute(sql, _params(sql, values))
        cur.execute("DROP TABLE feature_session_slots")
        step()
        for sql in (_ORDER_VALUES_SQL, _ORDER_HOURS_SQL, _ORDER_MONTHS_SQL):
            cur.execute(sql, _params(sql, values))
        step()
        cur.execute(_CATEGORY_SQL, _params(_CATEGORY_SQL, values))
        step()
        cur.execute(_FEATURES_SQL, _params(_FEATURES_SQL, values))
        written = int(fetch_value(cur, "SELECT count(*) FROM customer_features") or 0)
        step()
        write_segments(cur, rules)
        step()
        write_cubes(cur)
        # Lets readers (the explorer's caches) tell which computation they see, and whether
        # consent changed since: "<computed_at>|<consenting customers at that time>".
        set_setting(cur, FEATURES_STATE_SETTING, f"{values['computed_at'].isoformat()}|{written}")
        step()
    return written


def features_computed_at(cur: duckdb.DuckDBPyConnection) -> datetime | None:
    """When customer_features was last computed, or None if it never was (or is empty)."""
    value = fetch_value(cur, "SELECT max(computed_at) FROM customer_features")
    return value  # type: ignore[no-any-return]
