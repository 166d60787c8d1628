"""KPI definitions, and how they moved around a marketing action, per persona, with intervals.

Definitions (DESIGN.md): revenue and orders count completed orders only; an order's revenue
is its `amount`. Every query reads the consent views (`analysis_*`), so customers without
analytics consent never enter a KPI.

- conversion_rate      sessions with a completed order / sessions             (unit: sessions)
- average_order_value  revenue / completed orders                             (unit: orders)
- retention_rate       of customers who bought in a window, the share who buy
                       again in the next window (repeat-purchase rate)        (unit: customers)
- revenue_per_customer revenue / customers of the set, buyers or not          (unit: customers)
- orders_per_customer  completed orders / customers of the set                (unit: customers)

A rate over an empty denominator is None, never 0.

`before_after` compares equal windows each side of an action's start date for every persona,
with 95% intervals that account for one customer contributing many sessions or orders and
for the same customers appearing before and after (see README, "Measuring impact").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from persona_engine import stats
from persona_engine.actions import get_action
from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.store import fetch_df, fetch_one

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

MIN_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 180
DEFAULT_WINDOW_DAYS = 30

# Below these a result is flagged "too small to conclude" (shown, not hidden): fewer
# contributing customers on either side, or, for rates, fewer events or non-events.
MIN_CUSTOMERS = 30
MIN_EVENTS = 5

DEFAULT_N_BOOT = 1_000
DEFAULT_SEED = 0
# Above this many customers, the bootstrap resamples random groups of customers instead of
# single customers (stats.bucket_of_customers): same variance, bounded cost.
DEFAULT_MAX_BUCKETS = 2_000

# A session's order is placed during the session, so looking for it within a day of the
# window is enough, and it keeps the 10M-order lookup small.
ORDER_LINK_MARGIN = timedelta(days=1)

@dataclass(frozen=True)
class Metric:
    """How a KPI is built from per-customer sums (see SUM_COLUMNS / DERIVED_COLUMNS).

    kind "rate": a proportion of units (Wilson/Newcombe intervals); "mean": an average
    per unit (bootstrap intervals). `unit` says what n_before/n_after count.
    """

    name: str
    kind: Literal["rate", "mean"]
    unit: Literal["sessions", "orders", "customers"]
    value_kind: Literal["rate", "money", "count"]
    before: tuple[str, str]  # (numerator column, denominator column)
    after: tuple[str, str]
    contributors: tuple[str, str]  # customers counted on each side


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("conversion_rate", "rate", "sessions", "rate",
               ("converted_before", "sessions_before"), ("converted_after", "sessions_after"),
               ("active_before", "active_after")),
        Metric("average_order_value", "mean", "orders", "money",
               ("revenue_before", "orders_before"), ("revenue_after", "orders_after"),
               ("cohort_after", "buyers_after")),
        Metric("retention_rate", "rate", "customers", "rate",
               ("retained_before", "cohort_before"), ("retained_after", "cohort_after"),
               ("cohort_before", "cohort_after")),
        Metric("revenue_per_customer", "mean", "customers", "money",
               ("revenue_before", "customers"), ("revenue_after", "customers"),
               ("customers", "customers")),
        Metric("orders_per_customer", "mean", "customers", "count",
               ("orders_before", "customers"), ("orders_after", "customers"),
               ("customers", "customers")),
    )
}
DEFAULT_METRICS: tuple[str, ...] = ("conversion_rate", "average_order_value", "retention_rate")


# --- Windows and audiences -----------------------------------------------------------------


def _as_timestamp(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise ValidationError(f"expected a date; got {value!r}")


def _check_window(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    s, e = _as_timestamp(start), _as_timestamp(end)
    if e <= s:
        raise ValidationError(f"the window ends ({e:%Y-%m-%d}) before it starts ({s:%Y-%m-%d})")
    return s, e


def check_window_days(window_days: int) -> int:
    """The window length in days, or ValidationError outside 7..180."""
    if isinstance(window_days, bool) or not isinstance(window_days, int):
        raise ValidationError(f"window length must be a whole number of days; got {window_days!r}")
    if not MIN_WINDOW_DAYS <= window_days <= MAX_WINDOW_DAYS:
        raise ValidationError(
            f"window length must be between {MIN_WINDOW_DAYS} and {MAX_WINDOW_DAYS} days; "
            f"got {window_days}"
        )
    return window_days


@dataclass(frozen=True)
class ImpactWindows:
    """The windows of a before/after comparison around `starts_on` (ends exclusive).

    Conversion, AOV and per-customer metrics compare [before_from, start) with
    [start, after_to). Retention needs a cohort for each side: before = customers who
    bought in [cohort_from, before_from), share buying again in [before_from, start);
    after = customers who bought in [before_from, start), share buying in [start, after_to).
    """

    starts_on: date
    window_days: int

    @property
    def start(self) -> datetime:
        return _as_timestamp(self.starts_on)

    @property
    def before_from(self) -> datetime:
        return self.start - timedelta(days=self.window_days)

    @property
    def cohort_from(self) -> datetime:
        return self.start - timedelta(days=2 * self.window_days)

    @property
    def after_to(self) -> datetime:
        return self.start + timedelta(days=self.window_days)


_AUDIENCE_COLUMNS = frozenset({"customer_id", "s.customer_id", "o.customer_id", "c.customer_id"})


@dataclass(frozen=True)
class Audience:
    """A set of consenting customers: members of any of `persona_ids` (all customers when
    empty), minus members of `exclude_persona_ids`, optionally limited to `customer_ids`."""

    persona_ids: tuple[int, ...] = ()
    exclude_persona_ids: tuple[int, ...] = ()
    customer_ids: tuple[int, ...] | None = None

    @classmethod
    def persona(cls, persona_id: int) -> Audience:
        return cls(persona_ids=(int(persona_id),))

    def sql(self, column: str) -> tuple[str, list[Any]]:
        """A WHERE condition on `column` (one of _AUDIENCE_COLUMNS) and its bound values."""
        if column not in _AUDIENCE_COLUMNS:
            raise ValueError(f"unexpected column {column!r}")
        parts: list[str] = []
        params: list[Any] = []
        # `column` is whitelisted above; every value is bound.
        members = "SELECT customer_id FROM persona_members WHERE persona_id IN (SELECT unnest(?::INTEGER[]))"
        if self.persona_ids:
            parts.append(f"{column} IN ({members})")
            params.append([int(p) for p in self.persona_ids])
        if self.exclude_persona_ids:
            parts.append(f"{column} NOT IN ({members})")
            params.append([int(p) for p in self.exclude_persona_ids])
        if self.customer_ids is not None:
            parts.append(f"{column} IN (SELECT unnest(?::BIGINT[]))")
            params.append([int(c) for c in self.customer_ids])
        return (" AND ".join(parts) or "TRUE"), params


EVERYONE = Audience()


# --- One function per KPI ------------------------------------------------------------------


@dataclass(frozen=True)
class KpiValue:
    """A KPI over a window: value = numerator / denominator, None when the denominator is 0."""

    value: float | None
    numerator: float
    denominator: float
    unit: str


def _kpi(numerator: Any, denominator: Any, unit: str) -> KpiValue:
    num = float(numerator or 0)
    den = float(denominator or 0)
    return KpiValue(num / den if den > 0 else None, num, den, unit)


# Completed orders near a span, for "does this session have a completed order".
_COMPLETED_NEAR = (
    "SELECT order_id FROM analysis_orders WHERE status = 'completed' "
    "AND ordered_at >= ? AND ordered_at < ?"
)


def _session_totals(
    cur: duckdb.DuckDBPyConnection, audience: Audience, start: datetime, end: datetime
) -> tuple[int, int]:
    where, params = audience.sql("s.customer_id")
    # `where` is built from code constants only (Audience.sql); values are bound.
    sql = f"""
        SELECT count(*),
               count(*) FILTER (WHERE s.order_id IN ({_COMPLETED_NEAR}))
        FROM analysis_sessions AS s
        WHERE s.started_at >= ? AND s.started_at < ? AND {where}
    """  # noqa: S608
    row = fetch_one(
        cur, sql,
        [start - ORDER_LINK_MARGIN, end + ORDER_LINK_MARGIN, start, end, *params],
    )
    assert row is not None
    return int(row[0]), int(row[1])


def _order_totals(
    cur: duckdb.DuckDBPyConnection, audience: Audience, start: datetime, end: datetime
) -> tuple[int, float]:
    where, params = audience.sql("o.customer_id")
    sql = f"""
        SELECT count(*), coalesce(sum(o.amount), 0)
        FROM analysis_orders AS o
        WHERE o.status = 'completed' AND o.ordered_at >= ? AND o.ordered_at < ? AND {where}
    """  # noqa: S608 - `where` comes from Audience.sql (constants); values are bound
    row = fetch_one(cur, sql, [start, end, *params])
    assert row is not None
    return int(row[0]), float(row[1])


def _customer_count(cur: duckdb.DuckDBPyConnection, audience: Audience) -> int:
    where, params = audience.sql("c.customer_id")
    sql = f"SELECT count(*) FROM analysis_customers AS c WHERE {where}"  # noqa: S608
    return int(fetch_one(cur, sql, params)[0])  # type: ignore[index]


def conversion_rate(
    cur: duckdb.DuckDBPyConnection, audience: Audience | None,
    start: date | datetime, end: date | datetime,
) -> KpiValue:
    """Sessions started in [start, end) that include a completed order / those sessions.

    Reads analysis_sessions (started_at, order_id, customer_id) and analysis_orders
    (order_id, status). None when the audience has no session in the window (for example a
    shop imported without session data): "not available", never 0.
    """
    s, e = _check_window(start, end)
    sessions, converted = _session_totals(cur, audience or EVERYONE, s, e)
    return _kpi(converted, sessions, "sessions")


def average_order_value(
    cur: duckdb.DuckDBPyConnection, audience: Audience | None,
    start: date | datetime, end: date | datetime,
) -> KpiValue:
    """Revenue of completed orders placed in [start, end) / their number (amount, status,
    ordered_at of analysis_orders). None without a completed order."""
    s, e = _check_window(start, end)
    orders, revenue = _order_totals(cur, audience or EVERYONE, s, e)
    return _kpi(revenue, orders, "orders")


def revenue_per_customer(
    cur: duckdb.DuckDBPyConnection, audience: Audience | None,
    start: date | datetime, end: date | datetime,
) -> KpiValue:
    """Revenue of completed orders in [start, end) / consenting customers of the audience,
    whether they bought or not. None for an empty audience."""
    s, e = _check_window(start, end)
    aud = audience or EVERYONE
    _, revenue = _order_totals(cur, aud, s, e)
    return _kpi(revenue, _customer_count(cur, aud), "customers")


def orders_per_customer(
    cur: duckdb.DuckDBPyConnection, audience: Audience | None,
    start: date | datetime, end: date | datetime,
) -> KpiValue:
    """Completed orders in [start, end) / consenting customers of the audience."""
    s, e = _check_window(start, end)
    aud = audience or EVERYONE
    orders, _ = _order_totals(cur, aud, s, e)
    return _kpi(orders, _customer_count(cur, aud), "customers")


def retention_rate(
    cur: duckdb.DuckDBPyConnection, audience: Audience | None,
    before_start: date | datetime, before_end: date | datetime,
    after_start: date | datetime, after_end: date | datetime,
) -> KpiValue:
    """Of the audience's customers with a completed order in [before_start, before_end),
    the share with a completed order in [after_start, after_end) too (repeat-purchase
    rate). None when nobody bought in the first window."""
    b0, b1 = _check_window(before_start, before_end)
    a0, a1 = _check_window(after_start, after_end)
    where, params = (audience or EVERYONE).sql("customer_id")
    sql = f"""
        WITH buyers AS (
            SELECT customer_id,
                   bool_or(ordered_at >= ? AND ordered_at < ?) AS bought_before,
                   bool_or(ordered_at >= ? AND ordered_at < ?) AS bought_after
            FROM analysis_orders
            WHERE status = 'completed' AND {where}
              AND ((ordered_at >= ? AND ordered_at < ?) OR (ordered_at >= ? AND ordered_at < ?))
            GROUP BY customer_id
        )
        SELECT count(*) FILTER (WHERE bought_before),
               count(*) FILTER (WHERE bought_before AND bought_after)
        FROM buyers
    """  # noqa: S608 - `where` comes from Audience.sql (constants); values are bound
    row = fetch_one(cur, sql, [b0, b1, a0, a1, *params, b0, b1, a0, a1])
    assert row is not None
    return _kpi(row[1], row[0], "customers")


def audience_size(
    cur: duckdb.DuckDBPyConnection, persona_id: int | None, exclude_persona_ids: Sequence[int] = ()
) -> int:
    """Consenting customers of a persona (every consenting customer when None), minus the
    members of `exclude_persona_ids`: the people behind a weekly_series with the same
    arguments."""
    audience = Audience(
        persona_ids=() if persona_id is None else (int(persona_id),),
        exclude_persona_ids=tuple(int(p) for p in exclude_persona_ids),
    )
    return _customer_count(cur, audience)


def personas_signature(cur: duckdb.DuckDBPyConnection) -> str:
    """A fingerprint of the personas and their members: it changes whenever an impact table
    would (members replaced, a persona created, renamed or deleted), so UI caches keyed on
    it never serve a table of yesterday's personas. One scan of persona_members."""
    members = fetch_one(
        cur, "SELECT count(*), coalesce(sum(hash(persona_id, customer_id)), 0) FROM persona_members"
    )
    personas = fetch_one(
        cur, "SELECT count(*), max(updated_at), max(version), count(deleted_at), max(persona_id) FROM personas"
    )
    return f"{members}|{personas}"


# --- Weekly series for charts --------------------------------------------------------------


def weekly_series(
    cur: duckdb.DuckDBPyConnection,
    persona_id: int | None,
    metric: str,
    start: date | datetime,
    end: date | datetime,
    exclude_persona_ids: Sequence[int] = (),
) -> pd.DataFrame:
    """One row per week (Monday) from the week of `start` to `end` (exclusive).

    persona_id None means every consenting customer; with `exclude_persona_ids` it is the
    untargeted control of an action. Columns out: week_start (date), value (float, NaN
    where the denominator is 0), numerator, denominator, complete (False for a last week
    cut by `end`). Retention is week over week: of the customers who bought in the
    previous week, the share who buy in this one.
    """
    spec = _metric(metric)
    s, e = _check_window(start, end)
    first_week = (s - timedelta(days=s.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    audience = Audience(
        persona_ids=() if persona_id is None else (int(persona_id),),
        exclude_persona_ids=tuple(int(p) for p in exclude_persona_ids),
    )
    if spec.name == "conversion_rate":
        where, params = audience.sql("s.customer_id")
        sql = f"""
            SELECT date_trunc('week', s.started_at)::DATE AS week_start,
                   count(*) FILTER (WHERE s.order_id IN ({_COMPLETED_NEAR})) AS numerator,
                   count(*) AS denominator
            FROM analysis_sessions AS s
            WHERE s.started_at >= ? AND s.started_at < ? AND {where}
            GROUP BY 1
        """  # noqa: S608 - `where` comes from Audience.sql (constants)
        values: list[Any] = [first_week - ORDER_LINK_MARGIN, e + ORDER_LINK_MARGIN, first_week, e, *params]
    elif spec.name == "retention_rate":
        where, params = audience.sql("customer_id")
        sql = f"""
            WITH weeks AS (
                SELECT DISTINCT customer_id, date_trunc('week', ordered_at)::DATE AS week
                FROM analysis_orders
                WHERE status = 'completed' AND ordered_at >= ? AND ordered_at < ? AND {where}
            )
            SELECT (w.week + INTERVAL 7 DAY)::DATE AS week_start,
                   count(n.customer_id) AS numerator, count(*) AS denominator
            FROM weeks AS w
            LEFT JOIN weeks AS n ON n.customer_id = w.customer_id
                                AND n.week = (w.week + INTERVAL 7 DAY)::DATE
            GROUP BY 1
        """  # noqa: S608 - `where` comes from Audience.sql (constants)
        values = [first_week - timedelta(days=7), e, *params]
    else:
        where, params = audience.sql("o.customer_id")
        sql = f"""
            SELECT date_trunc('week', o.ordered_at)::DATE AS week_start,
                   coalesce(sum(o.amount), 0) AS revenue, count(*) AS orders
            FROM analysis_orders AS o
            WHERE o.status = 'completed' AND o.ordered_at >= ? AND o.ordered_at < ? AND {where}
            GROUP BY 1
        """  # noqa: S608 - `where` comes from Audience.sql (constants)
        values = [first_week, e, *params]
    raw = fetch_df(cur, sql, values)
    if spec.name == "average_order_value":
        raw = raw.rename(columns={"revenue": "numerator", "orders": "denominator"})
    elif spec.name in ("revenue_per_customer", "orders_per_customer"):
        # Weeks without any order still have customers to divide by.
        raw["numerator"] = raw["revenue" if spec.name == "revenue_per_customer" else "orders"]
        raw["denominator"] = 0.0  # replaced below by the audience size, for every week
    weeks = pd.date_range(first_week, e - timedelta(microseconds=1), freq="7D")
    out = pd.DataFrame({"week_start": [w.date() for w in weeks]})
    raw["week_start"] = pd.to_datetime(raw["week_start"]).dt.date
    out = out.merge(raw[["week_start", "numerator", "denominator"]], on="week_start", how="left")
    out["numerator"] = out["numerator"].astype("float64").fillna(0.0)
    if spec.name in ("revenue_per_customer", "orders_per_customer"):
        out["denominator"] = float(_customer_count(cur, audience))
    out["denominator"] = out["denominator"].astype("float64").fillna(0.0)
    positive = out["denominator"] > 0
    out["value"] = (out["numerator"] / out["denominator"].where(positive)).astype("float64")
    out["complete"] = [_as_timestamp(w) + timedelta(days=7) <= e for w in out["week_start"]]
    return out[["week_start", "value", "numerator", "denominator", "complete"]]


def _metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ValidationError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}") from None


# --- Per-customer sums over the windows ---------------------------------------------------

# The windows' rows, one per session / completed order, are summed per customer in numpy
# (np.bincount), and a session's conversion is looked up in the fetched orders: on 2 cores
# this is about twice as fast as a GROUP BY over a million customers plus an IN join, and
# each table is scanned once.
_WINDOW_SESSIONS_SQL = """
SELECT customer_id, started_at, coalesce(order_id, -1) AS order_id
FROM analysis_sessions
WHERE started_at >= $before_from AND started_at < $after_to
"""
# Up to a day past the after window, for the orders of its last sessions (ORDER_LINK_MARGIN).
_WINDOW_ORDERS_SQL = """
SELECT order_id, customer_id, ordered_at, amount
FROM analysis_orders
WHERE status = 'completed' AND ordered_at >= $cohort_from AND ordered_at < $link_to
"""

SUM_COLUMNS: tuple[str, ...] = (
    "sessions_before", "converted_before", "sessions_after", "converted_after",
    "orders_cohort", "orders_before", "revenue_before", "orders_after", "revenue_after",
)
# Per-customer quantities derived from SUM_COLUMNS that the statistics sum over.
DERIVED_COLUMNS: tuple[str, ...] = (
    "sessions_before", "converted_before", "sessions_after", "converted_after",
    "orders_before", "revenue_before", "orders_after", "revenue_after",
    "cohort_before", "retained_before", "cohort_after", "retained_after",
    "customers", "active_before", "active_after", "buyers_after",
)
_COL = {name: i for i, name in enumerate(DERIVED_COLUMNS)}


@dataclass(frozen=True)
class CustomerSums:
    """Per-customer sums over the windows of one comparison, one entry per customer.

    Every consenting customer is present, with zeros when inactive in the windows.
    first_activity / last_activity: the earliest and latest session or order seen in the
    windows (None when there is none, or when built by hand).
    """

    customer_id: IntArray
    sessions_before: Array
    converted_before: Array
    sessions_after: Array
    converted_after: Array
    orders_cohort: Array
    orders_before: Array
    revenue_before: Array
    orders_after: Array
    revenue_after: Array
    first_activity: datetime | None = None
    last_activity: datetime | None = None

    def __len__(self) -> int:
        return int(self.customer_id.shape[0])

    def has_activity(self) -> bool:
        """Whether anyone had a session or a completed order in the windows."""
        return any(bool(np.any(getattr(self, c))) for c in SUM_COLUMNS)

    def derived(self, column: str) -> Array:
        """One of DERIVED_COLUMNS, per customer (flags as 0/1).

        cohort_before: bought in the cohort window; retained_before: and in the before
        window; cohort_after: bought in the before window; retained_after: and in the after
        window; active_*: had a session; buyers_after: bought in the after window.
        """
        if column in SUM_COLUMNS:
            return np.asarray(getattr(self, column), dtype=np.float64)
        if column == "customers":
            return np.ones(len(self))
        flags = {
            "cohort_before": lambda: self.orders_cohort > 0,
            "retained_before": lambda: (self.orders_cohort > 0) & (self.orders_before > 0),
            "cohort_after": lambda: self.orders_before > 0,
            "retained_after": lambda: (self.orders_before > 0) & (self.orders_after > 0),
            "active_before": lambda: self.sessions_before > 0,
            "active_after": lambda: self.sessions_after > 0,
            "buyers_after": lambda: self.orders_after > 0,
        }
        return flags[column]().astype(np.float64)


def _sorted_distinct(values: IntArray) -> IntArray:
    """Sorted distinct values. (np.unique is hash-based in numpy 2.4 and about 40 times
    slower than a sort on a million integers.)"""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


class IdIndex:
    """Positions of ids (customers, orders) in a sorted array of distinct ids.

    A direct lookup table when the ids span a range not much larger than their number (the
    usual case: O(1) per id), a binary search otherwise (Shopify-sized ids).
    """

    def __init__(self, ids: IntArray) -> None:
        self.ids = ids
        self._lookup: IntArray | None = None
        self._offset = int(ids[0]) if ids.size else 0
        if ids.size and int(ids[-1]) - self._offset <= 4 * ids.size + 1_000_000:
            lookup = np.full(int(ids[-1]) - self._offset + 1, -1, dtype=np.int64)
            lookup[ids - self._offset] = np.arange(ids.size, dtype=np.int64)
            self._lookup = lookup

    def positions(self, values: Any) -> IntArray:
        """Position of each value; -1 for a value that is not in the index."""
        values = np.asarray(values, dtype=np.int64)
        if self._lookup is not None:
            rel = values - self._offset
            inside = (rel >= 0) & (rel < self._lookup.size)
            return np.where(inside, self._lookup[np.where(inside, rel, 0)], -1)
        pos = np.searchsorted(self.ids, values)
        found = pos < self.ids.size
        found[found] = self.ids[pos[found]] == values[found]
        return np.where(found, pos, -1).astype(np.int64)


def customer_window_sums(cur: duckdb.DuckDBPyConnection, windows: ImpactWindows) -> CustomerSums:
    """Per-customer sums of sessions and completed orders over `windows`.

    Reads analysis_customers (every consenting customer, so inactive ones count too),
    analysis_sessions (customer_id, started_at, order_id) and analysis_orders
    (order_id, customer_id, ordered_at, amount, status).
    """
    population = np.asarray(
        cur.execute("SELECT customer_id FROM analysis_customers ORDER BY customer_id")
        .fetchnumpy()["customer_id"],
        dtype=np.int64,
    )
    n = population.shape[0]
    at = IdIndex(population)
    start = np.datetime64(windows.start, "us")
    before_from = np.datetime64(windows.before_from, "us")
    after_to = np.datetime64(windows.after_to, "us")

    orders = cur.execute(
        _WINDOW_ORDERS_SQL,
        {"cohort_from": windows.cohort_from, "link_to": windows.after_to + ORDER_LINK_MARGIN},
    ).fetchnumpy()
    ordered = np.asarray(orders["ordered_at"], dtype="datetime64[us]")
    near = ordered >= np.datetime64(windows.before_from - ORDER_LINK_MARGIN, "us")
    completed_near = IdIndex(_sorted_distinct(np.asarray(orders["order_id"], dtype=np.int64)[near]))
    inside = ordered < after_to
    # window 0 = cohort window, 1 = before, 2 = after
    window = (ordered[inside] >= before_from).astype(np.int64) + (ordered[inside] >= start)
    key = at.positions(np.asarray(orders["customer_id"])[inside]) * 3 + window
    order_count = np.bincount(key, minlength=3 * n).astype(np.float64)
    revenue = np.bincount(
        key, weights=np.asarray(orders["amount"], dtype=np.float64)[inside], minlength=3 * n
    ).astype(np.float64)
    seen = [ordered[inside].min(), ordered[inside].max()] if inside.any() else []
    del orders, ordered, key

    sessions = cur.execute(
        _WINDOW_SESSIONS_SQL, {"before_from": windows.before_from, "after_to": windows.after_to}
    ).fetchnumpy()
    started = np.asarray(sessions["started_at"], dtype="datetime64[us]")
    key = at.positions(sessions["customer_id"]) * 2 + (started >= start)
    session_count = np.bincount(key, minlength=2 * n).astype(np.float64)
    converted = completed_near.positions(sessions["order_id"]) >= 0
    converted_count = np.bincount(key, weights=converted, minlength=2 * n).astype(np.float64)
    if started.size:
        seen += [started.min(), started.max()]
    return CustomerSums(
        customer_id=population,
        sessions_before=session_count[0::2],
        converted_before=converted_count[0::2],
        sessions_after=session_count[1::2],
        converted_after=converted_count[1::2],
        orders_cohort=order_count[0::3],
        orders_before=order_count[1::3],
        revenue_before=revenue[1::3],
        orders_after=order_count[2::3],
        revenue_after=revenue[2::3],
        first_activity=_to_datetime(min(seen)) if seen else None,
        last_activity=_to_datetime(max(seen)) if seen else None,
    )


def _to_datetime(value: np.datetime64) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


# --- Group comparison (pure numpy) ---------------------------------------------------------


def _ratio(num: Array, den: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _log_ratio(a: Array, b: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a > 0) & (b > 0), np.log(a) - np.log(b), np.nan)


@dataclass
class _Side:
    """Point sums (P, K) and replicate sums (B, P, K) of one set of groups."""

    point: Array
    reps: Array

    def values(self, cols: tuple[str, str]) -> tuple[Array, Array]:
        num, den = _COL[cols[0]], _COL[cols[1]]
        return (
            _ratio(self.point[:, num], self.point[:, den]),
            _ratio(self.reps[:, :, num], self.reps[:, :, den]),
        )

    def total(self, col: str) -> Array:
        return self.point[:, _COL[col]]


def _rate_change_limits(
    b: Array, a: Array, reps_b: Array, reps_a: Array, n_b: Array, n_a: Array
) -> Callable[[Array], tuple[Array, Array]]:
    """Interval family of a rate's change (after - before) as a function of z.

    Wilson limits of each side on its effective sample size (clustered units), combined by
    MOVER with the before/after correlation of the customer bootstrap: exactly Newcombe's
    interval when every customer contributes one unit and the two sides are independent.
    """
    var_b = stats.bootstrap_sd(reps_b) ** 2
    var_a = stats.bootstrap_sd(reps_a) ** 2
    neff_b = stats.effective_sample_size(b, var_b, n_b)
    neff_a = stats.effective_sample_size(a, var_a, n_a)
    # Without a usable bootstrap (too few customers) fall back to plain Newcombe: units
    # counted as independent, sides uncorrelated. The row is flagged small anyway.
    usable = np.isfinite(var_b) & np.isfinite(var_a)
    r = np.where(usable, stats.bootstrap_correlation(reps_b, reps_a), 0.0)

    def limits(z: Array) -> tuple[Array, Array]:
        lb, ub = stats.wilson_limits(b, neff_b, z)
        la, ua = stats.wilson_limits(a, neff_a, z)
        return stats.mover_difference(a, la, ua, b, lb, ub, r)

    return limits


def compare_groups(
    sums: CustomerSums,
    groups: Sequence[IntArray],
    control: IntArray | None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    max_buckets: int = DEFAULT_MAX_BUCKETS,
    confidence: float = stats.CONFIDENCE,
) -> list[dict[str, Any]]:
    """Before/after statistics of each group of customers, and DiD against `control`.

    groups: indices into `sums` (one array per group); control: indices of the control
    customers, or None for no difference-in-differences. Each group is compared with the
    control minus its own members, so the two never share a customer. Returns one dict per
    (group, metric), group-major, with the ImpactRow statistics fields (p-values not yet
    adjusted). Customers are resampled whole (their before and after together) with
    Poisson weights, in random groups above `max_buckets` customers.
    """
    if n_boot < 50:
        raise ValidationError(f"use at least 50 bootstrap resamples; got {n_boot}")
    specs = [_metric(m) for m in metrics]
    z = stats.z_value(confidence)
    n = len(sums)
    rng = np.random.default_rng(seed)
    bucket = stats.bucket_of_customers(n, max_buckets, rng)
    n_buckets = int(bucket.max()) + 1 if n else 1
    group_blocks, control_blocks = _bucket_blocks(sums, bucket, n_buckets, groups, control)
    weights = stats.poisson_weights(n_boot, n_buckets, rng)
    shape = (n_boot, len(groups), len(DERIVED_COLUMNS))
    # One BLAS thread: these products are small, and on a busy 2-core machine waking a
    # second OpenBLAS thread costs more (up to 15 ms per product) than it saves.
    with _blas_controller().limit(limits=1, user_api="blas"):
        persona_reps = weights @ group_blocks.reshape(n_buckets, -1)
        control_reps = weights @ control_blocks.reshape(n_buckets, -1)
    persona = _Side(group_blocks.sum(axis=0), persona_reps.reshape(shape))
    ctrl = _Side(control_blocks.sum(axis=0), control_reps.reshape(shape))
    has_control = control is not None

    per_metric: dict[str, dict[str, NDArray[Any]]] = {}
    for spec in specs:
        per_metric[spec.name] = _metric_statistics(spec, persona, ctrl, has_control, z)

    out: list[dict[str, Any]] = []
    for j in range(len(groups)):
        for spec in specs:
            row = {key: _clean(value[j]) for key, value in per_metric[spec.name].items()}
            row["metric"] = spec.name
            row["units"] = spec.unit
            row["group_index"] = j
            out.append(row)
    return out


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Created once: finding the loaded BLAS libraries reads /proc and takes milliseconds."""
    return ThreadpoolController()


def _bucket_blocks(
    sums: CustomerSums,
    bucket: IntArray,
    n_buckets: int,
    groups: Sequence[IntArray],
    control: IntArray | None,
) -> tuple[Array, Array]:
    """Per-bucket sums (n_buckets, groups, DERIVED_COLUMNS) of each group and its control.

    Customers are first summed per "cell" (the same set of memberships: persona 3 and
    the control, say) in one pass per column, then each group adds up its cells. A group's
    control is the control's cells minus the group's own members.
    """
    n = len(sums)
    k = len(DERIVED_COLUMNS)
    p_count = len(groups)
    membership = np.zeros((n, p_count + 1), dtype=bool)
    for j, members in enumerate(groups):
        membership[members, j] = True
    if control is not None:
        membership[control, p_count] = True
    if p_count + 1 <= 20:
        # Membership bit patterns are small integers: number the patterns present in O(n).
        codes = membership @ (np.int64(1) << np.arange(p_count + 1, dtype=np.int64))
        present = np.bincount(codes, minlength=1 << (p_count + 1)) > 0
        found = np.flatnonzero(present)
        cell = (np.cumsum(present) - 1)[codes]
        cell_members = ((found[:, None] >> np.arange(p_count + 1)) & 1).astype(bool)
    else:
        cell_members, cell = np.unique(membership, axis=0, return_inverse=True)
    del membership
    key = cell.reshape(-1).astype(np.int64) * n_buckets + bucket
    size = cell_members.shape[0] * n_buckets
    cell_sums = np.empty((size, k), dtype=np.float64)
    for j, column in enumerate(DERIVED_COLUMNS):
        cell_sums[:, j] = np.bincount(key, weights=sums.derived(column), minlength=size)
    cells = cell_sums.reshape(cell_members.shape[0], n_buckets, k)
    group_blocks = np.zeros((n_buckets, p_count, k))
    control_blocks = np.zeros_like(group_blocks)
    for j in range(p_count):
        group_blocks[:, j, :] = cells[cell_members[:, j]].sum(axis=0)
        if control is not None:
            own_control = cell_members[:, p_count] & ~cell_members[:, j]
            control_blocks[:, j, :] = cells[own_control].sum(axis=0)
    return group_blocks, control_blocks


def _small_sample(spec: Metric, side: _Side, before: Array, after: Array) -> NDArray[np.bool_]:
    customers_b = side.total(spec.contributors[0])
    customers_a = side.total(spec.contributors[1])
    small = (np.minimum(customers_b, customers_a) < MIN_CUSTOMERS) | np.isnan(before) | np.isnan(after)
    if spec.kind == "rate":
        events = []
        for num, den in (spec.before, spec.after):
            k, n = side.total(num), side.total(den)
            events.append(np.minimum(k, n - k))
        small |= np.minimum(events[0], events[1]) < MIN_EVENTS
    return small


def _metric_statistics(
    spec: Metric, persona: _Side, ctrl: _Side, has_control: bool, z: float
) -> dict[str, NDArray[Any]]:
    b, reps_b = persona.values(spec.before)
    a, reps_a = persona.values(spec.after)
    cb, reps_cb = ctrl.values(spec.before)
    ca, reps_ca = ctrl.values(spec.after)
    change = a - b
    control_change = ca - cb
    did = change - control_change
    n_b, n_a = persona.total(spec.before[1]), persona.total(spec.after[1])
    cn_b, cn_a = ctrl.total(spec.before[1]), ctrl.total(spec.after[1])

    if spec.kind == "rate":
        limits = _rate_change_limits(b, a, reps_b, reps_a, n_b, n_a)
        control_limits = _rate_change_limits(cb, ca, reps_cb, reps_ca, cn_b, cn_a)

        def did_limits(zz: Array) -> tuple[Array, Array]:
            pl, ph = limits(zz)
            cl, ch = control_limits(zz)
            return stats.mover_difference(change, pl, ph, control_change, cl, ch)

        zs = np.full_like(change, z)
        change_low, change_high = limits(zs)
        p_value = stats.invert_to_p_value(limits, change)
        did_low, did_high = did_limits(zs)
        did_p = stats.invert_to_p_value(did_limits, did)
    else:
        se = stats.bootstrap_sd(reps_a - reps_b)
        change_low, change_high = change - z * se, change + z * se
        with np.errstate(divide="ignore", invalid="ignore"):
            p_value = stats.two_sided_p(change / se)
            se_did = stats.bootstrap_sd((reps_a - reps_b) - (reps_ca - reps_cb))
            did_p = stats.two_sided_p(did / se_did)
        did_low, did_high = did - z * se_did, did + z * se_did
        p_value = np.where(change == 0, 1.0, p_value)
        did_p = np.where(did == 0, 1.0, did_p)

    # Relative changes on the log scale, so their intervals stay above -100%.
    ratio = _ratio(a, b)
    se_log = stats.bootstrap_sd(_log_ratio(reps_a, reps_b))
    log_ok = (a > 0) & (b > 0)
    rel_low = np.where(log_ok, ratio * np.exp(-z * se_log) - 1.0, np.nan)
    rel_high = np.where(log_ok, ratio * np.exp(z * se_log) - 1.0, np.nan)
    control_ratio = _ratio(ca, cb)
    did_ratio = _ratio(ratio, control_ratio)
    se_did_log = stats.bootstrap_sd(_log_ratio(reps_a, reps_b) - _log_ratio(reps_ca, reps_cb))
    did_log_ok = log_ok & (ca > 0) & (cb > 0)
    did_rel_low = np.where(did_log_ok, did_ratio * np.exp(-z * se_did_log) - 1.0, np.nan)
    did_rel_high = np.where(did_log_ok, did_ratio * np.exp(z * se_did_log) - 1.0, np.nan)

    small = _small_sample(spec, persona, b, a) | np.isnan(change_low)
    control_small = _small_sample(spec, ctrl, cb, ca) if has_control else np.ones_like(small)
    did_small = small | control_small | np.isnan(did_low)

    nan = np.full_like(change, np.nan)
    return {
        "before": b,
        "after": a,
        "change": change,
        "change_low": change_low,
        "change_high": change_high,
        "relative_change": ratio - 1.0,
        "relative_change_low": rel_low,
        "relative_change_high": rel_high,
        "p_value": np.where(np.isnan(change_low), np.nan, p_value),
        "n_before": n_b,
        "n_after": n_a,
        "customers_before": persona.total(spec.contributors[0]),
        "customers_after": persona.total(spec.contributors[1]),
        "small_sample": small,
        "control_before": cb if has_control else nan,
        "control_after": ca if has_control else nan,
        "control_change": control_change if has_control else nan,
        "control_n_before": cn_b if has_control else nan,
        "control_n_after": cn_a if has_control else nan,
        "did": did if has_control else nan,
        "did_low": did_low if has_control else nan,
        "did_high": did_high if has_control else nan,
        "did_relative": did_ratio - 1.0 if has_control else nan,
        "did_relative_low": did_rel_low if has_control else nan,
        "did_relative_high": did_rel_high if has_control else nan,
        "did_p_value": np.where(np.isnan(did_low), np.nan, did_p) if has_control else nan,
        "did_small_sample": did_small,
    }


def _clean(value: Any) -> Any:
    """numpy scalar -> plain Python; NaN -> None (an undefined number is never 0)."""
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return None
    return number


# --- The impact table ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactRow:
    """One persona x metric line of the impact table (fields documented in the README)."""

    action_id: int | None
    starts_on: str
    window_days: int
    persona_id: int
    persona_name: str
    persona_nickname: str | None
    targeted: bool
    metric: str
    units: str
    before: float | None
    after: float | None
    change: float | None
    change_low: float | None
    change_high: float | None
    relative_change: float | None
    relative_change_low: float | None
    relative_change_high: float | None
    p_value: float | None
    p_value_holm: float | None
    n_before: int
    n_after: int
    customers_before: int
    customers_after: int
    small_sample: bool
    control: str
    control_persona_id: int | None
    control_before: float | None
    control_after: float | None
    control_change: float | None
    control_n_before: int | None
    control_n_after: int | None
    did: float | None
    did_low: float | None
    did_high: float | None
    did_relative: float | None
    did_relative_low: float | None
    did_relative_high: float | None
    did_p_value: float | None
    did_p_value_holm: float | None
    did_small_sample: bool
    interval_method: str
    window_complete: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


INTERVAL_METHODS = {
    "rate": "newcombe_wilson_clustered",
    "mean": "cluster_bootstrap",
}


def impact_frame(rows: Sequence[ImpactRow]) -> pd.DataFrame:
    """The rows as a DataFrame, one column per ImpactRow field."""
    return pd.DataFrame([r.to_dict() for r in rows], columns=[f.name for f in fields(ImpactRow)])


def _untargeted(n: int, index_of: dict[int, IntArray], targeted: Sequence[int]) -> IntArray:
    """Positions of the customers in none of the targeted personas."""
    excluded = np.zeros(n, dtype=bool)
    for pid in targeted:
        if pid in index_of:
            excluded[index_of[pid]] = True
    return np.flatnonzero(~excluded).astype(np.int64)


def _personas_with_members(
    cur: duckdb.DuckDBPyConnection, targeted: Sequence[int]
) -> pd.DataFrame:
    return fetch_df(
        cur,
        """
        SELECT p.persona_id, p.name, p.nickname
        FROM personas AS p
        WHERE (p.deleted_at IS NULL OR p.persona_id IN (SELECT unnest(?::INTEGER[])))
          AND p.persona_id IN (
              SELECT m.persona_id FROM persona_members AS m
              JOIN analysis_customers AS c ON c.customer_id = m.customer_id)
        ORDER BY p.persona_id
        """,
        [[int(t) for t in targeted]],
    )


def _member_positions(
    cur: duckdb.DuckDBPyConnection, persona_ids: Sequence[int], at: IdIndex
) -> dict[int, IntArray]:
    """Sorted, distinct positions of each persona's consenting members.

    Members without analytics consent have no position in `at` (built from
    analysis_customers) and are dropped here.
    """
    data = cur.execute(
        "SELECT persona_id, customer_id FROM persona_members "
        "WHERE persona_id IN (SELECT unnest(?::INTEGER[]))",
        [[int(p) for p in persona_ids]],
    ).fetchnumpy()
    pid = np.asarray(data["persona_id"], dtype=np.int64)
    positions = at.positions(data["customer_id"])
    keep = positions >= 0
    n = max(at.ids.size, 1)
    combined = _sorted_distinct(pid[keep] * n + positions[keep])  # by persona, then position
    pid, positions = combined // n, combined % n
    found, starts = np.unique(pid, return_index=True)
    chunks = np.split(positions, starts[1:]) if pid.size else []
    return {int(p): chunk for p, chunk in zip(found, chunks, strict=True)}


def impact_table(
    cur: duckdb.DuckDBPyConnection,
    starts_on: date,
    targeted_persona_ids: Sequence[int],
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    control: str | int = "untargeted",
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    max_buckets: int = DEFAULT_MAX_BUCKETS,
    action_id: int | None = None,
) -> list[ImpactRow]:
    """Before/after impact around a date for every persona with members (see before_after).

    Usable without a recorded action ("what happened around this date?"): personas in
    `targeted_persona_ids` are flagged targeted and left out of the untargeted control.
    """
    check_window_days(window_days)
    for m in metrics:
        _metric(m)
    if not metrics:
        raise ValidationError("choose at least one metric")
    targeted = sorted({int(p) for p in targeted_persona_ids})
    windows = ImpactWindows(starts_on, window_days)
    personas = _personas_with_members(cur, targeted)
    if personas.empty:
        raise NoDataError(
            "no persona has members yet: create personas from a clustering run first"
        )
    persona_ids = [int(p) for p in personas["persona_id"]]
    control_persona_id = _check_control(control, persona_ids, targeted)

    sums = customer_window_sums(cur, windows)
    if not sums.has_activity():
        raise NoDataError(
            f"no session or order between {windows.cohort_from:%Y-%m-%d} and "
            f"{windows.after_to:%Y-%m-%d}: pick an action inside the shop's data period"
        )
    index_of = _member_positions(cur, persona_ids, IdIndex(sums.customer_id))
    groups = [index_of.get(pid, np.zeros(0, dtype=np.int64)) for pid in persona_ids]
    control_index = (
        _untargeted(len(sums), index_of, targeted)
        if control_persona_id is None
        else index_of[control_persona_id]
    )

    stats_rows = compare_groups(
        sums, groups, control_index, metrics=metrics, n_boot=n_boot, seed=seed,
        max_buckets=max_buckets,
    )
    holm = stats.holm_adjust([r["p_value"] for r in stats_rows])
    did_holm = stats.holm_adjust([r["did_p_value"] for r in stats_rows])
    names = personas.set_index("persona_id")
    coverage = {
        start: _data_covers(cur, sums, start, windows.after_to)
        for start in (windows.before_from, windows.cohort_from)
    }
    rows: list[ImpactRow] = []
    for r, p_holm, d_holm in zip(stats_rows, holm, did_holm, strict=True):
        pid = persona_ids[r["group_index"]]
        spec = METRICS[r["metric"]]
        needed_from = windows.cohort_from if spec.name == "retention_rate" else windows.before_from
        own_control = control_persona_id == pid
        rows.append(
            ImpactRow(
                action_id=action_id,
                starts_on=windows.starts_on.isoformat(),
                window_days=window_days,
                persona_id=pid,
                persona_name=str(names.at[pid, "name"]),
                persona_nickname=_none_if_missing(names.at[pid, "nickname"]),
                targeted=pid in targeted,
                metric=spec.name,
                units=spec.unit,
                before=r["before"], after=r["after"], change=r["change"],
                change_low=r["change_low"], change_high=r["change_high"],
                relative_change=r["relative_change"],
                relative_change_low=r["relative_change_low"],
                relative_change_high=r["relative_change_high"],
                p_value=r["p_value"], p_value_holm=p_holm,
                n_before=int(r["n_before"] or 0), n_after=int(r["n_after"] or 0),
                customers_before=int(r["customers_before"] or 0),
                customers_after=int(r["customers_after"] or 0),
                small_sample=bool(r["small_sample"]),
                control="untargeted" if control_persona_id is None else "persona",
                control_persona_id=control_persona_id,
                control_before=None if own_control else r["control_before"],
                control_after=None if own_control else r["control_after"],
                control_change=None if own_control else r["control_change"],
                control_n_before=None if own_control else _int_or_none(r["control_n_before"]),
                control_n_after=None if own_control else _int_or_none(r["control_n_after"]),
                did=None if own_control else r["did"],
                did_low=None if own_control else r["did_low"],
                did_high=None if own_control else r["did_high"],
                did_relative=None if own_control else r["did_relative"],
                did_relative_low=None if own_control else r["did_relative_low"],
                did_relative_high=None if own_control else r["did_relative_high"],
                did_p_value=None if own_control else r["did_p_value"],
                did_p_value_holm=None if own_control else d_holm,
                did_small_sample=True if own_control else bool(r["did_small_sample"]),
                interval_method=INTERVAL_METHODS[spec.kind],
                window_complete=coverage[needed_from],
            )
        )
    return rows


# (view, timestamp column) pairs searched for the shop's data period; constants only.
_ACTIVITY_SOURCES = (("analysis_orders", "ordered_at"), ("analysis_sessions", "started_at"))


def _has_activity(cur: duckdb.DuckDBPyConnection, comparison: Literal["<", ">="], when: datetime) -> bool:
    """Whether any consenting order or session is dated `comparison` `when`."""
    for view, column in _ACTIVITY_SOURCES:
        # view, column and comparison are code constants; the date is bound.
        sql = f"SELECT 1 FROM {view} WHERE {column} {comparison} ? LIMIT 1"  # noqa: S608
        if fetch_one(cur, sql, [when]) is not None:
            return True
    return False


def _data_covers(
    cur: duckdb.DuckDBPyConnection, sums: CustomerSums, needed_from: datetime, needed_to: datetime
) -> bool:
    """Whether the shop's data reach both ends of [needed_from, needed_to), within a day.

    False when the data period cuts a window (an action in the first weeks of the data,
    or a window running past the last import): its numbers cover fewer days than asked.
    Activity seen inside the windows settles it almost always; otherwise one small query
    per end looks outside them.
    """
    slack = timedelta(days=1)
    starts = (sums.first_activity is not None and sums.first_activity < needed_from + slack) or (
        _has_activity(cur, "<", needed_from + slack)
    )
    ends = (sums.last_activity is not None and sums.last_activity >= needed_to - slack) or (
        _has_activity(cur, ">=", needed_to - slack)
    )
    return starts and ends


def _none_if_missing(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _check_control(control: str | int, persona_ids: Sequence[int], targeted: Sequence[int]) -> int | None:
    if isinstance(control, str) and control.strip().lower() == "untargeted":
        return None
    try:
        pid = int(control)
    except (TypeError, ValueError):
        raise ValidationError(
            f"control must be 'untargeted' or a persona id; got {control!r}"
        ) from None
    if pid not in persona_ids:
        listed = ", ".join(str(p) for p in persona_ids)
        raise ValidationError(f"control persona {pid} has no members; personas with members: {listed}")
    if pid in targeted:
        raise ValidationError(
            f"persona {pid} is targeted by this action, so it cannot be the control; "
            "choose an untargeted persona or 'untargeted'"
        )
    return pid


def before_after(
    cur: duckdb.DuckDBPyConnection,
    action_id: int,
    window_days: int = DEFAULT_WINDOW_DAYS,
    control: str | int = "untargeted",
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    max_buckets: int = DEFAULT_MAX_BUCKETS,
) -> list[ImpactRow]:
    """Impact table of an action: every persona with members x metric, before vs after.

    Windows of `window_days` (7 to 180) each side of the action's starts_on. control:
    "untargeted" (consenting customers in no targeted persona) or a persona id. Each row:
    before, after, change with its 95% interval and p-value, relative change, Holm-adjusted
    p-values across the whole table, sample sizes (in `units`), small-sample flag, and the
    difference-in-differences against the control, absolute and relative, with intervals.
    Same seed, same numbers.
    """
    action = get_action(cur, action_id)
    return impact_table(
        cur, action.starts_on, action.persona_ids, window_days=window_days, control=control,
        metrics=metrics, n_boot=n_boot, seed=seed, max_buckets=max_buckets,
        action_id=action.action_id,
    )


# --- Summary numbers for the plain-words paragraph -----------------------------------------


@dataclass(frozen=True)
class ImpactSummary:
    """The numbers of one persona x metric sentence; the UI words them.

    value_kind says how to print values: "rate" (percent; changes in points), "money",
    "count". direction is "up", "down" or "flat" (change exactly 0 or undefined).
    conclusive: the 95% interval of the change excludes 0; did_conclusive likewise for the
    difference-in-differences; *_after_holm: still below 0.05 after the Holm adjustment.
    """

    persona_id: int
    persona_name: str
    metric: str
    value_kind: str
    before: float | None
    after: float | None
    change: float | None
    change_low: float | None
    change_high: float | None
    relative_change: float | None
    direction: str
    conclusive: bool
    conclusive_after_holm: bool
    small_sample: bool
    control: str
    control_persona_id: int | None
    control_change: float | None
    did: float | None
    did_low: float | None
    did_high: float | None
    did_conclusive: bool
    did_conclusive_after_holm: bool


def _excludes_zero(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and (low > 0 or high < 0)


def impact_summary(rows: Sequence[ImpactRow], persona_id: int, metric: str) -> ImpactSummary:
    """Numbers for the plain-words summary of one persona and metric of an impact table."""
    for row in rows:
        if row.persona_id == persona_id and row.metric == metric:
            break
    else:
        raise NotFoundError(f"no row for persona {persona_id} and metric {metric!r} in this table")
    change = row.change
    direction = "flat" if not change else ("up" if change > 0 else "down")
    return ImpactSummary(
        persona_id=row.persona_id,
        persona_name=row.persona_nickname or row.persona_name,
        metric=row.metric,
        value_kind=METRICS[row.metric].value_kind,
        before=row.before,
        after=row.after,
        change=change,
        change_low=row.change_low,
        change_high=row.change_high,
        relative_change=row.relative_change,
        direction=direction,
        conclusive=_excludes_zero(row.change_low, row.change_high),
        conclusive_after_holm=row.p_value_holm is not None and row.p_value_holm < 0.05,
        small_sample=row.small_sample,
        control=row.control,
        control_persona_id=row.control_persona_id,
        control_change=row.control_change,
        did=row.did,
        did_low=row.did_low,
        did_high=row.did_high,
        did_conclusive=_excludes_zero(row.did_low, row.did_high),
        did_conclusive_after_holm=row.did_p_value_holm is not None and row.did_p_value_holm < 0.05,
    )


# --- Planted truth of the sample shop ------------------------------------------------------


def persona_archetypes(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Dominant sample-shop archetype of each persona (reads sample_truth).

    Columns out: persona_id, archetype, share (of the persona's consenting members).
    Empty when the shop has no planted truth (real data).
    """
    return fetch_df(
        cur,
        """
        WITH counts AS (
            SELECT m.persona_id, t.archetype, count(DISTINCT m.customer_id) AS n
            FROM persona_members AS m
            JOIN analysis_customers AS c ON c.customer_id = m.customer_id
            JOIN sample_truth AS t ON t.customer_id = m.customer_id
            GROUP BY 1, 2
        )
        SELECT persona_id, archetype, n / sum(n) OVER (PARTITION BY persona_id) AS share
        FROM counts
        QUALIFY row_number() OVER (PARTITION BY persona_id ORDER BY n DESC, archetype) = 1
        ORDER BY persona_id
        """,
    )


def planted_truth_check(
    cur: duckdb.DuckDBPyConnection,
    action_id: int,
    window_days: int = DEFAULT_WINDOW_DAYS,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Compare before_after on the sample shop's planted action with the planted effects.

    Targeted personas are the action's persona_ids or, when it has none (the generator
    only knows archetypes), the personas whose dominant archetype the action targets.

    The expected relative DiD of a persona is lift(persona) / lift(its control) - 1, where a
    side's lift is what the planted effects (table sample_effects) do to its metric given
    the archetypes it contains (see _planted_lift), so imperfect clusters get the truth they
    actually contain.

    Columns out: persona_id, persona_name, archetype, archetype_share, targeted, metric,
    expected_did_relative, did_relative, did_relative_low, did_relative_high,
    covers_expected, excludes_zero. Metrics without a planted effect are left out.
    """
    action = get_action(cur, action_id)
    dominant = persona_archetypes(cur)
    if dominant.empty:
        raise NoDataError("no planted truth: this is not a generated sample shop with personas")
    targeted = list(action.persona_ids) or [
        int(p) for p, a in zip(dominant["persona_id"], dominant["archetype"], strict=True)
        if a in set(action.archetypes)
    ]
    effects = fetch_df(
        cur, "SELECT archetype, metric, relative_effect FROM sample_effects WHERE action_id = ?",
        [action.action_id],
    )
    metrics = [m for m in METRICS if m in set(effects["metric"])]
    if not metrics:
        raise NoDataError(f"action {action_id} has no planted effect in sample_effects")
    rows = impact_table(
        cur, action.starts_on, targeted, window_days=window_days, metrics=metrics,
        n_boot=n_boot, seed=seed, action_id=action.action_id,
    )
    expected = _expected_did(cur, action.starts_on, window_days, targeted, effects, metrics)
    dom = dominant.set_index("persona_id")
    out = []
    for row in rows:
        exp = expected.get((row.persona_id, row.metric))
        low, high = row.did_relative_low, row.did_relative_high
        out.append({
            "persona_id": row.persona_id,
            "persona_name": row.persona_name,
            "archetype": dom["archetype"].get(row.persona_id),
            "archetype_share": dom["share"].get(row.persona_id),
            "targeted": row.targeted,
            "metric": row.metric,
            "expected_did_relative": exp,
            "did_relative": row.did_relative,
            "did_relative_low": low,
            "did_relative_high": high,
            "covers_expected": None if exp is None or low is None or high is None
            else bool(low <= exp <= high),
            "excludes_zero": _excludes_zero(low, high),
        })
    return pd.DataFrame(out)


def _planted_lift(
    metric: str,
    numerator: Mapping[str, float],
    denominator: Mapping[str, float],
    effect: Mapping[tuple[str, str], float],
) -> float | None:
    """Ratio after / before of a metric over a mix of archetypes under the planted effects.

    numerator / denominator: each archetype's before-window sums (converted sessions and
    sessions, revenue and orders...). The planted conversion effect c multiplies orders
    (sessions unchanged) and the AOV effect v multiplies each order's amount, so:
    conversion rate scales its numerator by 1 + c; AOV its numerator by (1 + c)(1 + v) and
    its denominator by 1 + c (the mix of orders shifts towards archetypes whose conversion
    rose); revenue per customer its numerator by (1 + c)(1 + v); orders per customer by
    1 + c. Other metrics use their own planted effect, if any, on the numerator.
    """

    def factors(archetype: str) -> tuple[float, float]:
        c = effect.get((archetype, "conversion_rate"), 0.0)
        v = effect.get((archetype, "average_order_value"), 0.0)
        return {
            "conversion_rate": (1 + c, 1.0),
            "average_order_value": ((1 + c) * (1 + v), 1 + c),
            "revenue_per_customer": ((1 + c) * (1 + v), 1.0),
            "orders_per_customer": (1 + c, 1.0),
        }.get(metric, (1 + effect.get((archetype, metric), 0.0), 1.0))

    num_before = sum(numerator.values())
    den_before = sum(denominator.values())
    if num_before <= 0 or den_before <= 0:
        return None
    num_after = sum(n * factors(a)[0] for a, n in numerator.items())
    den_after = sum(d * factors(a)[1] for a, d in denominator.items())
    return (num_after / num_before) / (den_after / den_before)


def _expected_did(
    cur: duckdb.DuckDBPyConnection,
    starts_on: date,
    window_days: int,
    targeted: Sequence[int],
    effects: pd.DataFrame,
    metrics: Sequence[str],
) -> dict[tuple[int, str], float]:
    windows = ImpactWindows(starts_on, window_days)
    sums = customer_window_sums(cur, windows)
    truth = fetch_df(cur, "SELECT customer_id, archetype FROM sample_truth")
    archetype = pd.Series(truth["archetype"].to_numpy(), index=truth["customer_id"].to_numpy())
    arche = archetype.reindex(sums.customer_id).to_numpy()
    personas = _personas_with_members(cur, targeted)
    in_persona = _member_positions(cur, personas["persona_id"].tolist(), IdIndex(sums.customer_id))
    control = np.zeros(len(sums), dtype=bool)
    control[_untargeted(len(sums), in_persona, targeted)] = True
    effect = {(a, m): e for a, m, e in effects[["archetype", "metric", "relative_effect"]].itertuples(index=False)}

    def lift(mask: NDArray[np.bool_], metric: str) -> float | None:
        spec = METRICS[metric]
        num = pd.Series(sums.derived(spec.before[0])[mask]).groupby(arche[mask]).sum()
        den = pd.Series(sums.derived(spec.before[1])[mask]).groupby(arche[mask]).sum()
        return _planted_lift(metric, num.to_dict(), den.to_dict(), effect)

    out: dict[tuple[int, str], float] = {}
    for pid, idx in in_persona.items():
        mask = np.zeros(len(sums), dtype=bool)
        mask[idx] = True
        own_control = control & ~mask
        for metric in metrics:
            lp, lc = lift(mask, metric), lift(own_control, metric)
            if lp is not None and lc is not None:
                out[(int(pid), metric)] = lp / lc - 1.0
    return out
