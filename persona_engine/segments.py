"""RFM scores and named RFM groups, and rule-based behavioural segments, per customer.

Both are written to `customer_segments` (one row per row of customer_features) so that the
explorer filters on them with a join instead of recomputing them.

**RFM scores (1-5).** Only customers with at least one completed order are scored; the
others (visitors who never bought) have no RFM score and no RFM group, and appear in the
behavioural segments only (new visitors, engaged visitors, cart abandoners, inactive).
Every scored customer is in exactly one of the eleven groups, which partition the R x F
grid (see RFM_GRID).

Scores are quintiles of the rank, with ties kept together: a customer's score is
``1 + floor(5 * share of scored customers with a strictly worse value)``. Customers with
the same value always get the same score, so when 70% of customers bought once they all
get F = 1 (instead of being split at random between F = 1, 2 and 3 as NTILE would do), and
the next value (two orders, with 70% of customers below it) gets F = 4. Scores between can
then stay empty: the grid shows that honestly rather than inventing a difference between
identical customers. R ranks on recency with the most recent as best (R = 5), F on the
number of completed orders, M on their revenue.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime

import duckdb

from persona_engine.errors import ValidationError
from persona_engine.store import fetch_value, get_setting, set_setting, transaction

RFM_GROUPS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose_them",
    "hibernating",
    "lost",
)

# The group of each (R, F) cell: rows are R = 5 (bought most recently) down to R = 1,
# columns F = 1 (fewest orders) to F = 5. Every cell has exactly one group, so the groups
# partition the scored customers.
#        F=1               F=2                    F=3                    F=4        F=5
RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose_them"),
    1: ("lost", "lost", "at_risk", "at_risk", "cannot_lose_them"),
}

BEHAVIOUR_SEGMENTS: tuple[str, ...] = (
    "new_visitors",
    "engaged_visitors",
    "recent_buyers",
    "loyal_buyers",
    "occasional_buyers",
    "at_risk_of_churn",
    "cart_abandoners",
    "inactive",
)
INTEREST_PREFIX = "interest:"

RULES_SETTING = "segment_rules"


def rfm_group_for(r_score: int, f_score: int) -> str:
    """The named group of an R and an F score (both 1-5)."""
    if r_score not in RFM_GRID or not 1 <= f_score <= 5:
        raise ValidationError(f"RFM scores run from 1 to 5; got R={r_score}, F={f_score}")
    return RFM_GRID[r_score][f_score - 1]


def interest_segment(category: str) -> str:
    """Key of the interest segment of a category, e.g. 'interest:books'."""
    return f"{INTEREST_PREFIX}{category}"


@dataclass(frozen=True)
class BehaviourRules:
    """Thresholds of the behavioural segments; a customer can be in several segments.

    new_visitors: no completed order, and signed up (or first seen) at most `new_days` ago.
    engaged_visitors: no completed order, at least `engaged_min_sessions_90d` sessions in
        the 90 days before the reference date.
    recent_buyers: last completed order at most `recent_days` ago.
    loyal_buyers: at least `loyal_min_orders` completed orders, the last one at most
        `loyal_max_recency_days` ago.
    occasional_buyers: 1 to `loyal_min_orders - 1` completed orders, the last one at most
        `inactive_days` ago.
    at_risk_of_churn: at least `at_risk_min_orders` completed orders, the last one more than
        `at_risk_after_days` and at most `inactive_days` ago.
    cart_abandoners: at least `cart_min_abandoned_90d` abandoned carts in the last 90 days
        and an abandonment rate of at least `cart_min_rate` (needs session data).
    inactive: known for more than `inactive_days`, without an order or a visit in the last
        `inactive_days` (a recent sign-up who has not come back yet is not inactive).
    interest:<category>: the favourite category holds at least `interest_min_share` of the
        customer's revenue.
    """

    new_days: int = 30
    engaged_min_sessions_90d: int = 3
    recent_days: int = 30
    loyal_min_orders: int = 4
    loyal_max_recency_days: int = 180
    at_risk_min_orders: int = 2
    at_risk_after_days: int = 90
    inactive_days: int = 365
    cart_min_abandoned_90d: int = 1
    cart_min_rate: float = 0.5
    interest_min_share: float = 0.4

    def validate(self) -> BehaviourRules:
        """Return self, or raise ValidationError naming the threshold that makes no sense."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValidationError(f"segment threshold {f.name} must be 0 or more, got {value}")
        for name in ("cart_min_rate", "interest_min_share"):
            if getattr(self, name) > 1:
                raise ValidationError(f"segment threshold {name} is a share between 0 and 1")
        if self.loyal_min_orders < 2:
            raise ValidationError("loyal buyers need at least 2 orders (loyal_min_orders >= 2)")
        if self.at_risk_after_days >= self.inactive_days:
            raise ValidationError(
                "at_risk_after_days must be below inactive_days: customers at risk of churn "
                "are those between the two"
            )
        return self


def load_rules(cur: duckdb.DuckDBPyConnection) -> BehaviourRules:
    """The shop's saved thresholds, or the defaults when none were saved."""
    raw = get_setting(cur, RULES_SETTING)
    if not raw:
        return BehaviourRules()
    known = {f.name for f in fields(BehaviourRules)}
    try:
        saved = {k: v for k, v in json.loads(raw).items() if k in known}
        return BehaviourRules(**saved).validate()
    except (ValueError, TypeError, ValidationError):
        # A damaged setting must not block feature computation: fall back to defaults.
        return BehaviourRules()


def save_rules(cur: duckdb.DuckDBPyConnection, rules: BehaviourRules) -> None:
    set_setting(cur, RULES_SETTING, json.dumps(asdict(rules.validate())))


# rank() - 1 is the number of scored customers with a strictly worse value: ties share it.
_SEGMENTS_SQL = """
INSERT INTO customer_segments
WITH scored AS (
    SELECT customer_id,
        1 + (5 * (rank() OVER (ORDER BY recency_days DESC) - 1)) // count(*) OVER () AS r,
        1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) // count(*) OVER () AS f,
        1 + (5 * (rank() OVER (ORDER BY monetary) - 1)) // count(*) OVER () AS m
    FROM customer_features
    WHERE frequency > 0
),
days_inactive AS (
    SELECT customer_id, date_diff('day', CAST(last_active_at AS DATE), reference_date) AS d
    FROM customer_features
)
SELECT
    c.customer_id, s.r, s.f, s.m,
    CASE WHEN s.r IS NOT NULL THEN (CAST($grid AS VARCHAR[][]))[6 - s.r][s.f] END,
    list_filter([
        CASE WHEN c.frequency = 0 AND c.tenure_days <= $new_days THEN 'new_visitors' END,
        CASE WHEN c.frequency = 0 AND c.sessions_90d >= $engaged_min_sessions_90d
             THEN 'engaged_visitors' END,
        CASE WHEN c.recency_days <= $recent_days THEN 'recent_buyers' END,
        CASE WHEN c.frequency >= $loyal_min_orders
              AND c.recency_days <= $loyal_max_recency_days THEN 'loyal_buyers' END,
        CASE WHEN c.frequency BETWEEN 1 AND $loyal_min_orders - 1
              AND c.recency_days <= $inactive_days THEN 'occasional_buyers' END,
        CASE WHEN c.frequency >= $at_risk_min_orders AND c.recency_days > $at_risk_after_days
              AND c.recency_days <= $inactive_days THEN 'at_risk_of_churn' END,
        CASE WHEN c.abandoned_carts_90d >= $cart_min_abandoned_90d
              AND c.cart_abandonment_rate >= $cart_min_rate THEN 'cart_abandoners' END,
        CASE WHEN c.tenure_days > $inactive_days AND (d.d IS NULL OR d.d > $inactive_days)
             THEN 'inactive' END,
        CASE WHEN c.category_shares[c.favourite_category] >= $interest_min_share
             THEN $interest_prefix || c.favourite_category END
    ], lambda x: x IS NOT NULL),
    $computed_at
FROM customer_features c
LEFT JOIN scored s USING (customer_id)
LEFT JOIN days_inactive d USING (customer_id)
"""


def write_segments(cur: duckdb.DuckDBPyConnection, rules: BehaviourRules) -> None:
    """Fill customer_segments from customer_features; call inside the caller's transaction.

    Out: one row per customer_features row with r_score, f_score, m_score and rfm_group
    (NULL for customers without a completed order) and `segments`, the list of behavioural
    segment keys (BEHAVIOUR_SEGMENTS and 'interest:<category>').
    """
    params: dict[str, object] = asdict(rules.validate())
    params["grid"] = [list(RFM_GRID[r]) for r in (5, 4, 3, 2, 1)]
    params["interest_prefix"] = INTEREST_PREFIX
    params["computed_at"] = datetime.now()
    cur.execute(_SEGMENTS_SQL, params)


def assign_segments(cur: duckdb.DuckDBPyConnection, rules: BehaviourRules | None = None) -> int:
    """Recompute segments from the current customer_features (new thresholds); rows written.

    When `rules` is given it is validated and saved as the shop's thresholds, so that the
    next feature computation keeps it.
    """
    # Imported here: explore imports this module.
    from persona_engine.explore import write_cubes
    from persona_engine.features import FEATURES_STATE_SETTING

    chosen = (rules if rules is not None else load_rules(cur)).validate()
    with transaction(cur):
        if rules is not None:
            save_rules(cur, chosen)
        cur.execute("DELETE FROM customer_segments")
        write_segments(cur, chosen)
        write_cubes(cur, only=["segments"])
        # A new stamp, same consenting count: the explorer's cached results are recomputed.
        state = get_setting(cur, FEATURES_STATE_SETTING)
        if state:
            set_setting(
                cur, FEATURES_STATE_SETTING,
                f"{datetime.now().isoformat()}|{state.rsplit('|', 1)[1]}",
            )
    return int(fetch_value(cur, "SELECT count(*) FROM customer_segments") or 0)
