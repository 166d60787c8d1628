"""The data-backed facts of a persona: size, demographics, behaviour and KPIs of its members.

These sit beside the editable fields, read-only, each with where it comes from, so a team
editing the persona in a meeting keeps the real customers in view. Only consenting members
count (the `analysis_*` views); revenue and orders are completed orders only, over all the
data the shop holds. Definitions follow the README's KPI section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb

from persona_engine.features import default_reference_date
from persona_engine.store import fetch_one, get_setting

Unit = Literal["count", "share", "money", "years", "days", "number", "text"]
Group = Literal["size", "demographics", "behaviour", "kpis"]
GROUPS: tuple[Group, ...] = ("size", "demographics", "behaviour", "kpis")


@dataclass(frozen=True)
class Fact:
    """One read-only figure about a persona's members.

    key: stable name (also the catalogue key of its label); value: None when it cannot be
    computed (no orders, no sessions...); share: for a "top" value, the share of members who
    have it; customers: how many members the figure rests on; source: where it comes from.
    """

    key: str
    group: Group
    value: float | str | None
    unit: Unit
    customers: int
    source: str
    share: float | None = None


@dataclass(frozen=True)
class PersonaFacts:
    persona_id: int
    members: int  # consenting members
    currency: str | None
    facts: tuple[Fact, ...]

    def get(self, key: str) -> Fact:
        return next(f for f in self.facts if f.key == key)

    def by_group(self, group: Group) -> list[Fact]:
        return [f for f in self.facts if f.group == group]


# Members who gave analytics consent: everything below starts from this set.
_MEMBERS = """
    SELECT DISTINCT pm.customer_id FROM persona_members pm
    JOIN analysis_customers c ON c.customer_id = pm.customer_id
    WHERE pm.persona_id = $persona
"""

_SIZE_AND_ORDERS = f"""
WITH m AS ({_MEMBERS}),
per AS (
    SELECT o.customer_id, count(*) AS orders, sum(o.amount) AS revenue, max(o.ordered_at) AS last_order
    FROM analysis_orders o JOIN m USING (customer_id)
    WHERE o.status = 'completed' GROUP BY 1
)
SELECT (SELECT count(*) FROM m),
       (SELECT count(*) FROM analysis_customers),
       (SELECT count(*) FROM per),
       (SELECT count(*) FROM per WHERE orders >= 2),
       (SELECT coalesce(sum(orders), 0) FROM per),
       (SELECT coalesce(sum(revenue), 0) FROM per),
       (SELECT coalesce(sum(amount), 0) FROM analysis_orders WHERE status = 'completed'),
       (SELECT median(date_diff('day', last_order::DATE, $ref::DATE)) FROM per)
"""  # noqa: S608 - _MEMBERS is a constant

_DEMOGRAPHICS = f"""
WITH m AS ({_MEMBERS})
SELECT median(c.age), count(c.age), median(c.income), count(c.income)
FROM analysis_customers c JOIN m USING (customer_id)
"""  # noqa: S608 - _MEMBERS is a constant

# The most common value of one customer column among members, with its share.
_TOP_COLUMNS = ("gender", "region", "occupation", "acquisition_channel")
_TOP_VALUE = """
WITH m AS ({members})
SELECT c.{column}, count(*) / sum(count(*)) OVER () AS share, sum(count(*)) OVER () AS n
FROM analysis_customers c JOIN m USING (customer_id)
WHERE c.{column} IS NOT NULL
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1
"""

_TOP_CATEGORY = f"""
WITH m AS ({_MEMBERS})
SELECT p.category, sum(i.quantity * i.unit_price) / sum(sum(i.quantity * i.unit_price)) OVER () AS share
FROM analysis_orders o JOIN m USING (customer_id)
JOIN order_items i ON i.order_id = o.order_id
JOIN products p ON p.product_id = i.product_id
WHERE o.status = 'completed' AND p.category IS NOT NULL
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1
"""  # noqa: S608 - _MEMBERS is a constant

_SESSIONS = f"""
WITH m AS ({_MEMBERS}),
s AS (
    SELECT s.customer_id, s.device, (o.status = 'completed') AS converted
    FROM analysis_sessions s JOIN m USING (customer_id)
    LEFT JOIN orders o ON o.order_id = s.order_id
)
SELECT count(*), count(*) FILTER (WHERE converted), count(DISTINCT customer_id),
       (SELECT device FROM s WHERE device IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1),
       (SELECT count(*) FROM s WHERE device = (SELECT device FROM s WHERE device IS NOT NULL
                                               GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1))
FROM s
"""  # noqa: S608 - _MEMBERS is a constant


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def persona_facts(cur: duckdb.DuckDBPyConnection, persona_id: int) -> PersonaFacts:
    """Facts about the persona's consenting members (persona_members x analysis_* views).

    Size: members, share of consenting customers. Demographics: median age and income, most
    common gender, region, occupation. Behaviour: completed orders per member, revenue share,
    top category by revenue, main device, main acquisition channel, median days since last
    order. KPIs: average order value, repeat-purchase rate, conversion rate of their sessions.
    """
    params = {"persona": persona_id}
    row = fetch_one(cur, _SIZE_AND_ORDERS, {**params, "ref": default_reference_date(cur)})
    assert row is not None
    members, all_customers, buyers, repeaters, orders, revenue, shop_revenue, recency = row
    facts: list[Fact] = [
        Fact("members", "size", members, "count", members, "persona members with analytics consent"),
        Fact("customer_share", "size", _ratio(members, all_customers), "share", members,
             "members / all customers with analytics consent"),
    ]
    drow = fetch_one(cur, _DEMOGRAPHICS, params)
    assert drow is not None
    age, n_age, income, n_income = drow
    facts += [
        Fact("median_age", "demographics", None if age is None else float(age), "years", n_age,
             "customers.age of members (median)"),
        Fact("median_income", "demographics", None if income is None else float(income), "money", n_income,
             "customers.income of members, yearly (median)"),
    ]
    for column in _TOP_COLUMNS:
        # `column` comes from the constant _TOP_COLUMNS; the persona id is bound.
        top = fetch_one(cur, _TOP_VALUE.format(members=_MEMBERS, column=column), params)
        group: Group = "behaviour" if column == "acquisition_channel" else "demographics"
        facts.append(Fact(
            f"top_{column}", group, top[0] if top else None, "text", int(top[2]) if top else 0,
            f"customers.{column}: most common value among members", None if top is None else float(top[1]),
        ))
    category = fetch_one(cur, _TOP_CATEGORY, params)
    srow = fetch_one(cur, _SESSIONS, params)
    assert srow is not None
    sessions, converted, session_customers, device, device_sessions = srow
    facts += [
        Fact("orders_per_member", "behaviour", _ratio(orders, members), "number", members,
             "completed orders of members / members"),
        Fact("revenue_share", "behaviour", _ratio(revenue, shop_revenue), "share", buyers,
             "members' completed revenue / revenue of all consenting customers"),
        Fact("top_category", "behaviour", category[0] if category else None, "text",
             buyers, "order_items x products: category with the most revenue from members' completed orders",
             float(category[1]) if category else None),
        Fact("main_device", "behaviour", device, "text", session_customers,
             "sessions.device: most used by members", _ratio(device_sessions or 0, sessions)),
        Fact("median_recency_days", "behaviour", None if recency is None else float(recency), "days", buyers,
             "days from each buyer's last completed order to the reference date, the day after the "
             "shop's last order (median)"),
        Fact("average_order_value", "kpis", _ratio(revenue, orders), "money", buyers,
             "revenue of members' completed orders / their number"),
        Fact("repeat_purchase_rate", "kpis", _ratio(repeaters, buyers), "share", buyers,
             "members with 2+ completed orders / members with 1+"),
        Fact("conversion_rate", "kpis", _ratio(converted, sessions), "share", session_customers,
             "members' sessions with a completed order / their sessions (not available without session data)"),
    ]
    return PersonaFacts(persona_id, int(members), get_setting(cur, "currency"), tuple(facts))
