"""Segment explorer: a customer filter, and one small aggregated result per chart.

Every function takes a cursor and a CustomerFilter and returns a ChartData: a DataFrame of
a few rows aggregated in DuckDB, the number of customers it is built on, and, when the data
lacks what the chart needs, `available=False` with a reason code instead of zeros.

Charts read the per-customer rollups written by `features.compute_customer_features`,
which keeps a filter change cheap on a million customers, and several charts share one
aggregation: the filtered customers and each aggregation are computed once per filter and
kept, per cursor, in temporary tables until the filter, the features or consent change.
A date range cannot be answered from lifetime rollups: then the charts of orders and
sessions read the raw tables restricted to the range, the monthly charts (new vs returning
revenue, cohorts) keep every month the range touches, and the RFM charts describe the
customers active in the range with their RFM as of the reference date.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import duckdb
import pandas as pd

from persona_engine.errors import ValidationError
from persona_engine.features import FEATURES_STATE_SETTING, ORDER_VALUE_KEYS
from persona_engine.segments import (
    BEHAVIOUR_SEGMENTS,
    INTEREST_PREFIX,
    RFM_GROUPS,
    rfm_group_for,
)
from persona_engine.store import fetch_df, fetch_value

_log = logging.getLogger(__name__)

# Groups of fewer customers than this are marked too small to trust (issue 4).
MIN_GROUP_SIZE = 30

# Reason codes of an unavailable chart; the UI catalogue words them.
NO_FEATURES = "no_features"  # customer features were never computed
NO_MATCHING_CUSTOMERS = "no_matching_customers"  # the filter keeps nobody
NO_SESSIONS = "no_sessions"  # the shop has no session data (imported transactions)
NO_ORDERS = "no_orders"  # no completed order among the filtered customers
NO_BUYERS = "no_buyers"  # nobody with an RFM score among the filtered customers
NO_ITEMS = "no_items"  # orders without line items or products: no category mix
FIELD_MISSING = "field_missing"  # no customer of the shop has this field


@dataclass(frozen=True)
class ChartData:
    """The data of one chart.

    `data`: a small aggregated DataFrame (columns documented by each function), with a
    `too_small` column on breakdowns marking groups of fewer than MIN_GROUP_SIZE customers.
    `n_customers`: how many customers the chart is built on. `reason`: why the chart is not
    available (one of the reason codes above) when `available` is False.
    """

    data: pd.DataFrame
    n_customers: int
    available: bool = True
    reason: str | None = None

    @property
    def too_small(self) -> bool:
        return self.n_customers < MIN_GROUP_SIZE


def _unavailable(reason: str, columns: Sequence[str] = (), n_customers: int = 0) -> ChartData:
    return ChartData(pd.DataFrame(columns=list(columns)), n_customers, False, reason)


# ---------------------------------------------------------------- the filter


def _tuple(values: Iterable[Any] | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        return (values,)
    return tuple(dict.fromkeys(values))  # de-duplicated, order kept


@dataclass(frozen=True)
class CustomerFilter:
    """Which customers the explorer shows; empty fields do not filter.

    start/end: a date range (both inclusive) on orders and sessions: customers with a
    completed order or a visit in it, and the charts of orders and sessions count those in
    it.
    devices: the customer's main device (most used for visits, else for orders).
    rfm_groups: RFM_GROUPS keys. segments: BEHAVIOUR_SEGMENTS keys or 'interest:<category>';
    a customer in any of them matches. persona_ids: members of any of these personas.
    Several values in a field are alternatives (OR); fields combine with AND.
    """

    start: date | None = None
    end: date | None = None
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    acquisition_channels: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    rfm_groups: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    persona_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Lists become tuples so that a filter is hashable (cache keys in the UI).
        for f in fields(self):
            if f.name not in ("start", "end"):
                object.__setattr__(self, f.name, _tuple(getattr(self, f.name)))
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                object.__setattr__(self, name, value.date())
        if self.start and self.end and self.start > self.end:
            raise ValidationError(
                f"the date range starts after it ends ({self.start} > {self.end}): swap the dates"
            )
        unknown = [g for g in self.rfm_groups if g not in RFM_GROUPS]
        if unknown:
            raise ValidationError(
                f"unknown RFM group {', '.join(unknown)}; choose among {', '.join(RFM_GROUPS)}"
            )
        bad = [
            s for s in self.segments
            if s not in BEHAVIOUR_SEGMENTS and not s.startswith(INTEREST_PREFIX)
        ]
        if bad:
            raise ValidationError(
                f"unknown segment {', '.join(bad)}; choose among {', '.join(BEHAVIOUR_SEGMENTS)} "
                f"or {INTEREST_PREFIX}<category>"
            )
        try:
            object.__setattr__(self, "persona_ids", tuple(int(p) for p in self.persona_ids))
        except (TypeError, ValueError) as e:
            raise ValidationError(f"persona ids are numbers, got {self.persona_ids}") from e

    @property
    def has_dates(self) -> bool:
        return self.start is not None or self.end is not None

    @property
    def is_everyone(self) -> bool:
        return self == CustomerFilter()

    def to_query_params(self) -> dict[str, str]:
        """Short string form for a URL (st.query_params); empty fields are left out."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not value:
                continue
            if isinstance(value, date):
                out[f.name] = value.isoformat()
            else:
                out[f.name] = ",".join(str(v) for v in value)
        return out

    @classmethod
    def from_query_params(cls, params: Mapping[str, str | Sequence[str]]) -> CustomerFilter:
        """Inverse of to_query_params; unknown keys are ignored, bad values raise ValidationError."""
        kwargs: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, raw in params.items():
            if key not in names:
                continue
            text = raw if isinstance(raw, str) else ",".join(raw)
            if key in ("start", "end"):
                try:
                    kwargs[key] = date.fromisoformat(text) if text else None
                except ValueError as e:
                    raise ValidationError(f"{key} must be a date like 2025-01-31, got {text!r}") from e
            else:
                kwargs[key] = tuple(v for v in text.split(",") if v)
        return cls(**kwargs)

    def slug(self) -> str:
        """A file-name-safe description of the filter, e.g. 'FR_champions_2025-01-01_2025-03-31'."""
        parts: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not value:
                continue
            if isinstance(value, date):
                parts.append(value.isoformat())
            else:
                prefix = "persona" if f.name == "persona_ids" else ""
                parts.append("+".join(f"{prefix}{v}" for v in value))
        text = "_".join(parts) or "everyone"
        text = re.sub(r"[^A-Za-z0-9+_.-]+", "-", text)
        return text[:120]


# ---------------------------------------------------------------- SQL assembly and caches


class _Sql:
    """Collects the bound values of one statement; `bind` returns their placeholder."""

    def __init__(self, prefix: str = "p") -> None:
        self.prefix = prefix  # another prefix keeps two statements' values apart in one query
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"${name}"


def _bounds(flt: CustomerFilter) -> tuple[datetime, datetime]:
    """[start, end) timestamps of the filter's date range (open sides are far away)."""
    start = datetime.combine(flt.start, datetime.min.time()) if flt.start else datetime(1900, 1, 1)
    end = (
        datetime.combine(flt.end + timedelta(days=1), datetime.min.time())
        if flt.end
        else datetime(9999, 1, 1)
    )
    return start, end


# The page of one filter change asks for about twenty charts, which share the filtered
# customer set and, several at a time, one aggregation. Large intermediate sets (the
# filtered customers, the rollups of a date range) live in the cursor's temporary tables
# (private to the cursor, possible on a read-only database), registered with the key they
# were computed for; a new key recomputes them.
_REGISTRY = "explorer_cache_keys"
# Small results (a few hundred rows) are kept in memory: (id of the cursor, name) -> (key,
# result). Keys carry the time features were computed, so a result never outlives them.
_MEMO: dict[tuple[int, str], tuple[str, pd.DataFrame]] = {}
_MEMO_LOCK = threading.Lock()
_MEMO_SIZE = 2000
_AUDIENCE = "explorer_audience"
_EXCLUDED = "explorer_excluded"
# The filtered customers as a bitmap over the customer ids of the features (one bit per id
# between the smallest and the largest): a membership test is then a bit read per row, not a
# hash table built per query, four to five times cheaper on a large audience. Ids spread
# wider than _MAX_BITMAP (external ids of some imports) keep the hash-table tests.
_AUDIENCE_BITS = "explorer_audience_bits"
_MAX_BITMAP = 1 << 28


@dataclass(frozen=True)
class _State:
    """What the cached results depend on besides the filter."""

    key: str  # changes when features are recomputed or consent changes
    unchanged_consent: bool  # the consenting customers are the ones features were computed for
    segment_cubes: bool  # the cubes have their segment sets (built since migration 13)


_T = TypeVar("_T")


def _once_per_page_run(cur: duckdb.DuckDBPyConnection, name: str, compute: Callable[[], _T]) -> _T:
    """compute(), once per cursor and page run (every chart of a page asks); at each call
    outside a page run."""
    memo = _PAGE_RUNS.memo()
    hit = memo.get((name, id(cur))) if memo is not None else None
    if hit is not None and hit[0] is cur:  # the cursor is kept with it: its id is not reused
        return hit[1]  # type: ignore[no-any-return]
    value = compute()
    if memo is not None:
        memo[(name, id(cur))] = (cur, value)
    return value


def _state(cur: duckdb.DuckDBPyConnection) -> _State | None:
    """None when features were never computed. Read once per cursor and page run: new
    features or a consent change show at the next run."""
    return _once_per_page_run(cur, "state", lambda: _read_state(cur))


def _read_state(cur: duckdb.DuckDBPyConnection) -> _State | None:
    row = cur.execute(
        "SELECT (SELECT value FROM shop_settings WHERE key = ?), "  # noqa: S608 - SEGMENT_CELL is a constant
        "(SELECT count(*) FROM customers WHERE consent_analytics), "
        f"EXISTS (SELECT 1 FROM cube_stats WHERE {SEGMENT_CELL} IS NOT NULL)",
        [FEATURES_STATE_SETTING],
    ).fetchall()[0]
    saved, consenting, segment_cubes = row
    if not saved:
        return None
    computed_for = int(saved.rsplit("|", 1)[1])
    return _State(f"{saved}|{consenting}", computed_for == consenting, bool(segment_cubes))


def _registry_key(cur: duckdb.DuckDBPyConnection, name: str) -> str | None:
    try:
        return fetch_value(cur, f"SELECT key FROM {_REGISTRY} WHERE name = ?", [name])  # noqa: S608 - constant  # type: ignore[no-any-return]
    except duckdb.CatalogException:  # first use on this cursor
        cur.execute(f"CREATE TEMP TABLE {_REGISTRY} (name VARCHAR PRIMARY KEY, key VARCHAR)")  # noqa: S608 - constant
        return None


def _register(cur: duckdb.DuckDBPyConnection, name: str, key: str) -> None:
    cur.execute(f"INSERT OR REPLACE INTO {_REGISTRY} VALUES (?, ?)", [name, key])  # noqa: S608 - constant


def _cached(
    cur: duckdb.DuckDBPyConnection, name: str, key: str, build: Callable[[], tuple[str, dict[str, Any]]]
) -> pd.DataFrame:
    """The (small) result of `build()`'s query for this key, computed once per key.

    `name` says what it is (a code constant); `build` returns the SELECT and its bound
    values. Results are kept in memory per cursor, one per name: a new key replaces it.
    """
    slot = (id(cur), name)
    with _MEMO_LOCK:
        hit = _MEMO.get(slot)
    if hit is not None and hit[0] == key:
        return hit[1].copy()
    sql, params = build()
    df = fetch_df(cur, sql, params)
    with _MEMO_LOCK:
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.clear()  # a crude bound: results are recomputed on demand
        _MEMO[slot] = (key, df)
    return df.copy()


def clear_cache(cur: duckdb.DuckDBPyConnection, ranges: bool = True) -> None:
    """Forget every cached explorer result of this cursor (they are recomputed on demand),
    and, unless `ranges` is False, the date ranges the store's cursors share."""
    with _MEMO_LOCK:
        for slot in [s for s in _MEMO if s[0] == id(cur)]:
            del _MEMO[slot]
    cur.execute(f"DROP TABLE IF EXISTS {_REGISTRY}")  # noqa: S608 - constant
    if ranges and _shared_ranges(cur):
        with _RANGE_LOCK:
            built = cur.execute(f"SELECT generation, key FROM {_SHARED_RANGES}.ranges").fetchall()  # noqa: S608 - constant
            locks = [(g, _RANGE_BUILDS.setdefault(k, threading.Lock())) for g, k in built]
        for generation, lock in locks:
            with _PAGE_RUNS.holding(lock), _RANGE_LOCK:  # a build in progress ends first
                _drop_range(cur, f"{_SHARED_RANGES}.r{int(generation)}_")
                cur.execute(f"DELETE FROM {_SHARED_RANGES}.ranges WHERE generation = ?", [generation])  # noqa: S608 - constant
        with _RANGE_LOCK:  # the customers' days too; a build in progress drops its own at its end
            _drop_customer_days(cur, [g for (g,) in cur.execute(f"SELECT generation FROM {_ACTIVITY}").fetchall()])  # noqa: S608 - constant


def _filter_key(state: _State, flt: CustomerFilter) -> str:
    return f"{state.key}|{flt!r}"


# Page runs come first. The builds of date ranges done in the background (the usual periods
# when the explorer opens, a new range's rollups and cubes after its first use) pause before
# each statement while a page runs in this process: on a two-core machine a page sharing
# the cores with them takes twice as long. A statement already running goes on; a pause
# lasts _YIELD_MAX_S at most, so that pages following each other without a gap delay the
# builds but never stop them. A page waiting for a build (its range's rollups) steps aside
# while it waits, or the two would wait for each other.
# The background builds also run one statement at a time between them (several ranges
# picked in a row each have a thread): a page starting meanwhile shares the cores with one
# statement at most. A build a page waits for (urgent) does not wait for that turn, and
# the others pause while its statements run, as they do for pages.
_YIELD_MAX_S = 10.0
_TURN_POLL_S = 0.05


class _PageRuns:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._turn = threading.Lock()  # held by the background build whose statement runs
        self._urgent = 0  # statements of urgent builds running
        # .page: depth of page runs; .background: urgent() of a build; .turn: it holds _turn;
        # .urgent: its statement is counted in _urgent
        self._local = threading.local()

    @contextlib.contextmanager
    def page(self) -> Iterator[None]:
        """A page run; nested ones (the app around a page) count once."""
        depth = getattr(self._local, "page", 0)
        if not depth:
            self._local.memo = {}
            with self._changed:
                self._running += 1
        self._local.page = depth + 1
        try:
            yield
        finally:
            self._local.page = depth
            if not depth:
                self._local.memo = None
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def memo(self) -> dict[Any, Any] | None:
        """What this thread's page run keeps for its length (None outside a page run)."""
        return getattr(self._local, "memo", None) if getattr(self._local, "page", 0) else None

    @contextlib.contextmanager
    def step_aside(self) -> Iterator[None]:
        """Around a wait for a build: this page run does not hold the builds back."""
        if not getattr(self._local, "page", 0):
            yield
            return
        with self._changed:
            self._running -= 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._running += 1

    @contextlib.contextmanager
    def holding(self, lock: threading.Lock) -> Iterator[None]:
        """Hold a build's lock, stepping aside while waiting for it (a background build
        gives up its turn: the build holding the lock may need it)."""
        self.end_turn()
        with self.step_aside():
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def background(self, urgent: Callable[[], bool] = lambda: False) -> Iterator[None]:
        """A background build; it stops pausing once `urgent()` (wake() says when)."""
        self._local.background = urgent
        try:
            yield
        finally:
            self._local.background = None
            self.end_turn()

    def end_turn(self) -> None:
        """A background build gives up its turn before its next statement (pause)."""
        if getattr(self._local, "turn", False):
            self._local.turn = False
            self._turn.release()
        if getattr(self._local, "urgent", False):
            self._local.urgent = False
            with self._changed:
                self._urgent -= 1
                self._changed.notify_all()

    def wake(self) -> None:
        """Paused builds check again whether they are urgent."""
        with self._changed:
            self._changed.notify_all()

    def running(self) -> int:
        with self._changed:
            return self._running

    def pause(self) -> None:
        """In a background build, before a statement: wait until no page and no urgent
        build's statement runs (_YIELD_MAX_S at most), then for the turn of the build's
        statement; an urgent build goes ahead."""
        urgent = getattr(self._local, "background", None)
        if urgent is None:
            return
        self.end_turn()  # the statement before this one has ended
        deadline = time.monotonic() + _YIELD_MAX_S
        while True:
            with self._changed:
                while (
                    (self._running or self._urgent) and not urgent()
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._changed.wait(left)
                if urgent():
                    self._urgent += 1
                    self._local.urgent = True
                    return
            if self._turn.acquire(timeout=_TURN_POLL_S):
                self._local.turn = True
                return


_PAGE_RUNS = _PageRuns()


def page_run() -> contextlib.AbstractContextManager[None]:
    """Context of one run of a page: the background builds of date ranges wait for it."""
    return _PAGE_RUNS.page()


# Rollups of one date range, shaped like the lifetime rollups, built on demand: using a
# range scans its orders and sessions once, and every other filter change inside that range
# is as cheap as without a range. They are shared by every cursor of the store, in an
# in-memory database attached to it, so that the sessions of a meeting opening the same
# link pay for the range once; the last _RANGE_SLOTS ranges are kept. A read-only store
# cannot attach one: each cursor then keeps its own range in temporary tables.
# Range tables are named <prefix><suffix>; the prefix is returned by _ensure_range.
# kind -> (lifetime table, suffix of the table for a date range); charts read
# `_Audience.table(kind)`.
_ROLLUPS: dict[str, tuple[str, str]] = {
    "session_devices": ("customer_session_devices", "session_devices"),
    "session_sources": ("customer_session_sources", "session_sources"),
    "order_values": ("customer_order_values", "order_values"),
    "order_hours": ("customer_order_hours", "order_hours"),
    "categories": ("customer_category_revenue", "category_revenue"),
}
_RANGE_CUSTOMERS = "customers"  # suffix: the customers active in the range, with their counts
_SHARED_RANGES = "explorer_ranges"  # the attached in-memory database
_LOCAL_RANGES = "explorer_range_"  # prefix of a cursor's own (temporary) range tables
_RANGE_SLOTS = 5  # the usual periods, prepared ahead, and two more
_RANGE_IN_USE_S = 60.0  # a range read this recently is not dropped below twice the slots
_RANGE_LOCK = threading.Lock()

# $s, $e: the range as [start, end) timestamps. A session converted when its order is
# completed; the order is placed during the visit, so only the completed orders of the range
# (and the day after it, for visits that end after midnight) are looked up. Order ids are
# unique (the writers of `orders` see to it), so the join adds no rows. {create} is the
# statement creating a table and {p} the prefix of the range's tables.
_RANGE_SESSION_SQL: tuple[str, ...] = (
    # The range's sessions of known customers, with whether each converted, read once;
    # then grouped per customer and device and per customer and source (two plain
    # groupings of these narrow rows are cheaper than grouping sets over the join).
    # Consent is applied to the groups, fewer rows than the sessions.
    """
    {create} {p}session_groups AS
    SELECT s.customer_id, s.device, s.source, s.viewed_product, s.added_to_cart, s.checkout_started,
        o.order_id IS NOT NULL AS ordered
    FROM sessions s
    LEFT JOIN (SELECT order_id FROM orders WHERE status = 'completed'
               AND ordered_at >= $s AND ordered_at < $e + INTERVAL 1 DAY) o
           ON o.order_id = s.order_id
    WHERE s.started_at >= $s AND s.started_at < $e AND s.customer_id IS NOT NULL
    """,
    """
    {create} {p}session_devices AS
    SELECT * FROM (
        SELECT customer_id, device, count(*) AS sessions,
            count(*) FILTER (viewed_product) AS product_view_sessions,
            count(*) FILTER (added_to_cart) AS cart_sessions,
            count(*) FILTER (checkout_started) AS checkout_sessions,
            count(*) FILTER (ordered) AS order_sessions,
            count(*) FILTER (added_to_cart AND NOT ordered) AS abandoned_cart_sessions
        FROM {p}session_groups GROUP BY customer_id, device
    )
    WHERE customer_id IN (SELECT customer_id FROM analysis_customers)
    """,
    """
    {create} {p}session_sources AS
    SELECT * FROM (
        SELECT customer_id, source, count(*) AS sessions,
            count(*) FILTER (added_to_cart) AS cart_sessions,
            count(*) FILTER (ordered) AS order_sessions,
            count(*) FILTER (added_to_cart AND NOT ordered) AS abandoned_cart_sessions
        FROM {p}session_groups GROUP BY customer_id, source
    )
    WHERE customer_id IN (SELECT customer_id FROM analysis_customers)
    """,
    "DROP TABLE {p}session_groups",
)
# The range's order rollups: the order mixes, weekday x hour and categories. Built before
# the session rollups (_RANGE_SESSION_SQL): they take half as long, and draw five charts.
_RANGE_ORDER_SQL: tuple[str, ...] = (
    """
    {create} {p}order_values AS
    SELECT customer_id,""" + ORDER_VALUE_KEYS + """,
        count(*) AS orders, sum(amount) AS revenue
    FROM analysis_orders
    WHERE status = 'completed' AND ordered_at >= $s AND ordered_at < $e
    GROUP BY GROUPING SETS ((customer_id, channel), (customer_id, device),
                            (customer_id, payment_method))
    """,  # noqa: S608 - code constants
    """
    {create} {p}order_hours AS
    SELECT customer_id, isodow(ordered_at) - 1 AS weekday, hour(ordered_at) AS hour,
        count(*) AS orders, sum(amount) AS revenue
    FROM analysis_orders
    WHERE status = 'completed' AND ordered_at >= $s AND ordered_at < $e
    GROUP BY ALL
    """,
    """
    {create} {p}category_revenue AS
    SELECT o.customer_id, p.category, sum(i.quantity * i.unit_price) AS revenue,
        sum(i.quantity) AS quantity
    FROM analysis_orders o
    JOIN order_items i ON i.order_id = o.order_id
    LEFT JOIN products p ON p.product_id = i.product_id
    WHERE o.status = 'completed' AND o.ordered_at >= $s AND o.ordered_at < $e
    GROUP BY ALL
    """,
)
# The same from the day tables of the orders (_DAY_TABLES), when they cover the range: a
# few hundred thousand rows per day, customer and value instead of the orders, their items
# and products. $a, $b: the range's days (_day_params); {<kind>}: the day table.
_RANGE_ORDER_DAYS_SQL: tuple[str, ...] = (
    """
    {create} {p}order_values AS
    SELECT customer_id,""" + ORDER_VALUE_KEYS + """,
        CAST(sum(orders) AS BIGINT) AS orders, sum(revenue) AS revenue
    FROM {orders}
    WHERE d >= $a AND d < $b
    GROUP BY GROUPING SETS ((customer_id, channel), (customer_id, device), (customer_id, payment_method))
    """,  # noqa: S608 - code constants
    """
    {create} {p}order_hours AS
    SELECT customer_id, weekday, hour, CAST(sum(orders) AS BIGINT) AS orders, sum(revenue) AS revenue
    FROM {hours}
    WHERE d >= $a AND d < $b
    GROUP BY ALL
    """,
    """
    {create} {p}category_revenue AS
    SELECT customer_id, category, sum(revenue) AS revenue, sum(quantity) AS quantity
    FROM {categories}
    WHERE d >= $a AND d < $b
    GROUP BY ALL
    """,
)
_RANGE_SQL = (*_RANGE_ORDER_SQL, *_RANGE_SESSION_SQL)  # every rollup of a range
# The customers active in the range (a completed order or a visit in it), with their
# counts there: what the audience and the demographics need, straight from the orders and
# sessions, without the rollups (built when a chart needs them). The buyers and the visitors
# are grouped apart and joined (cheaper than regrouping their union); consent is applied to
# the joined rows, fewer than the orders and sessions. Who bought items of a known category
# needs the order lines: the category chart counts them from the range's rollup.
# {visitors}: the range's visitors (customer_id, carter), from _RANGE_VISITORS_SQL or from
# the customers' days (_range_visitors).
_RANGE_CUSTOMERS_SQL = """
    {create} {p}customers AS
    WITH buyers AS (
        SELECT customer_id, count(*) AS orders, sum(amount) AS revenue
        FROM orders
        WHERE status = 'completed' AND ordered_at >= $s AND ordered_at < $e
        GROUP BY customer_id
    ), visitors AS ({visitors})
    SELECT coalesce(b.customer_id, v.customer_id) AS customer_id,
        coalesce(b.orders, 0) AS orders, coalesce(b.revenue, 0) AS revenue,
        v.customer_id IS NOT NULL AS visitor, coalesce(v.carter, false) AS carter
    FROM buyers b
    FULL JOIN visitors v ON v.customer_id = b.customer_id
    WHERE coalesce(b.customer_id, v.customer_id) IN (SELECT customer_id FROM analysis_customers)
"""
_RANGE_VISITORS_SQL = """
        SELECT customer_id, bool_or(coalesce(added_to_cart, false)) AS carter
        FROM sessions
        WHERE started_at >= $s AND started_at < $e AND customer_id IS NOT NULL
        GROUP BY customer_id
"""

# The days each customer visited the shop, and the days they put something in the cart, as
# bits: one per day from the first day of the sessions, _DAY_BITS to a column (v<n> for the
# visits, c<n> for the carts of days n * _DAY_BITS onwards). The visitors of a date range
# are then a test of a column or two per customer instead of a pass over the range's
# sessions: on a 60-day range of a 1,000,000-customer shop, its customers take 0.3 s
# instead of 0.6 s. Built ahead with the usual periods (prepare_periods), once per state of
# the features; a range used before they are there reads the sessions. Every customer with
# a session has a row, consenting or not: consent is applied where they are read. They
# cover the last _DAY_COLUMNS columns of days at most (2.8 years; 214 MB for a million
# customers over two years): a range starting before them reads the sessions.
# _ACTIVITY holds the current generation of the days (their table is activity_<generation>)
# and what they were built for: the state's key, the first day, the number of columns and
# whether they cover every session.
_DAY_BITS = 128
_DAY_COLUMNS = 8
_ACTIVITY = f"{_SHARED_RANGES}.activity"
_ACTIVITY_CHUNKS = 4  # built in this many statements, so that pages run between them
_ACTIVITY_BUILD = threading.Lock()

# The day tables: what the charts of a date range's rollups (funnel, cart abandonment,
# order mixes, categories, weekday x hour) add up, per day. The orders' tables have a row
# per day, customer and value: they answer any filter inside the range (a membership test
# per row). The sessions' sums are per day and value only (a row per session and customer
# would be as large as the sessions): they answer a filter on dates alone (every customer
# of the range kept, _Audience.whole_range); the cart sessions' customers per day and
# value count the customers behind those sums (a bitmap of the customer ids per value).
# A new range's charts then read its days' rows, sorted by day, instead of waiting for its
# rollups (4 s of work for 60 days of a 1,000,000-customer shop). Written after the
# customers' days, from the same first day, of consenting customers only (a consent change
# is a new state); kept in an in-memory database of their own, compressed once each is
# written (CHECKPOINT). $origin: day 0; $low, $high: the customer ids of one chunk. d: the
# day (from day 0); od: the day of the session's completed order, if any.
_DAYS_DB = "explorer_days"
_DAY_TABLES: dict[str, str] = {
    "sessions": """
        SELECT date_diff('day', $origin, s.started_at::DATE) AS d, s.device, s.source,
            date_diff('day', $origin, o.ordered_at::DATE) AS od, count(*) AS sessions,
            count(*) FILTER (s.viewed_product) AS product_view, count(*) FILTER (s.added_to_cart) AS cart,
            count(*) FILTER (s.checkout_started) AS checkout
        FROM analysis_sessions s
        LEFT JOIN (SELECT order_id, ordered_at FROM orders WHERE status = 'completed') o ON o.order_id = s.order_id
        WHERE s.started_at >= $origin AND s.customer_id >= $low AND s.customer_id < $high
        GROUP BY ALL ORDER BY d
    """,
    "carts": """
        SELECT DISTINCT date_diff('day', $origin, started_at::DATE) AS d, customer_id, device, source
        FROM analysis_sessions
        WHERE added_to_cart AND started_at >= $origin AND customer_id >= $low AND customer_id < $high
        ORDER BY d
    """,
    "orders": """
        SELECT date_diff('day', $origin, ordered_at::DATE) AS d, customer_id, channel, device, payment_method,
            count(*) AS orders, sum(amount) AS revenue
        FROM analysis_orders
        WHERE status = 'completed' AND ordered_at >= $origin AND customer_id >= $low AND customer_id < $high
        GROUP BY ALL ORDER BY d
    """,
    "hours": """
        SELECT date_diff('day', $origin, ordered_at::DATE) AS d, customer_id, isodow(ordered_at) - 1 AS weekday,
            hour(ordered_at) AS hour, count(*) AS orders, sum(amount) AS revenue
        FROM analysis_orders
        WHERE status = 'completed' AND ordered_at >= $origin AND customer_id >= $low AND customer_id < $high
        GROUP BY ALL ORDER BY d
    """,
    "categories": """
        SELECT date_diff('day', $origin, o.ordered_at::DATE) AS d, o.customer_id, p.category,
            sum(i.quantity * i.unit_price) AS revenue, sum(i.quantity) AS quantity
        FROM analysis_orders o
        JOIN order_items i ON i.order_id = o.order_id
        LEFT JOIN products p ON p.product_id = i.product_id
        WHERE o.status = 'completed' AND o.ordered_at >= $origin AND o.customer_id >= $low AND o.customer_id < $high
        GROUP BY ALL ORDER BY d
    """,
}
_CHECKPOINT_TRIES = 50  # a checkpoint fails while another cursor's transaction has written


def _day_table(kind: str, generation: int) -> str:
    return f"{_DAYS_DB}.{kind}_{int(generation)}"


def _activity_table(generation: int) -> str:
    return f"{_SHARED_RANGES}.activity_{int(generation)}"


def _drop_customer_days(cur: duckdb.DuckDBPyConnection, generations: Iterable[int]) -> None:
    """Drop these generations of the customers' days, their tables and their rows (the
    caller holds _RANGE_LOCK)."""
    for generation in generations:
        cur.execute(f"DROP TABLE IF EXISTS {_activity_table(generation)}")
        _drop_day_tables(cur, generation)
        cur.execute(f"DELETE FROM {_ACTIVITY} WHERE generation = ?", [generation])  # noqa: S608 - constant


def _drop_day_tables(cur: duckdb.DuckDBPyConnection, generation: int) -> None:
    for kind in _DAY_TABLES:
        cur.execute(f"DROP TABLE IF EXISTS {_day_table(kind, generation)}")


class _Days(NamedTuple):
    """The customers' days of one state of the features (_ACTIVITY's row)."""

    table: str  # the bits (_activity_table)
    origin: date  # day 0
    words: int  # columns of each kind
    covers_all: bool  # no session or order is before the origin
    generation: int
    lo: int  # the customer ids the day tables' bitmaps span
    hi: int
    day_tables: bool  # the day tables (_DAY_TABLES) are written


def _customer_days(cur: duckdb.DuckDBPyConnection, range_key: str) -> _Days | None:
    """The customers' days built for the state this range's key was made for; None when
    there are none."""
    found = cur.execute(
        f"SELECT generation, origin, words, covers_all, lo, hi, day_tables FROM {_ACTIVITY} "  # noqa: S608 - constant
        "WHERE starts_with(?, key || '|')",
        [range_key],
    ).fetchall()
    if not found:
        return None
    generation, origin, words, covers_all, lo, hi, day_tables = found[0]
    return _Days(_activity_table(generation), origin, words, covers_all, generation, lo, hi, day_tables)


def _range_visitors(table: str, origin: date, words: int, start: datetime, end: datetime) -> tuple[str, dict[str, int]]:
    """The visitors of [start, end), two midnights, from a table of the customers' days:
    the statement, and its parameters (the bits of the range in each column it touches)."""
    first, stop = (start.date() - origin).days, (end.date() - origin).days
    masks = {}
    for word in range(max(first, 0) // _DAY_BITS, min((stop - 1) // _DAY_BITS, words - 1) + 1):
        low, high = max(first - word * _DAY_BITS, 0), min(stop - word * _DAY_BITS, _DAY_BITS)
        masks[f"m{word}"] = ((1 << (high - low)) - 1) << low
    visited = " OR ".join(f"(v{m[1:]} & ${m}::UHUGEINT) <> 0" for m in masks) or "false"
    carted = " OR ".join(f"(c{m[1:]} & ${m}::UHUGEINT) <> 0" for m in masks) or "false"
    return f"SELECT customer_id, coalesce({carted}, false) AS carter FROM {table} WHERE {visited}", masks  # noqa: S608 - column numbers and a constant name


def _days_of_range(cur: duckdb.DuckDBPyConnection, range_key: str, start: datetime, end: datetime) -> _Days | None:
    """The customers' days that cover the range [start, end) of this key: built for its
    state, the range of whole days, none of its sessions and orders before their first day.
    None otherwise."""
    days = _customer_days(cur, range_key) if range_key else None
    if (
        days is None or start.time() != datetime.min.time() or end.time() != datetime.min.time()
        or not (days.covers_all or start.date() >= days.origin)
    ):
        return None
    return days


def _day_params(days: _Days, start: datetime, end: datetime, sql: str) -> dict[str, Any]:
    """The bound values of a statement over the day tables that it uses: $a, $b (the range's
    first day and the day after its last, from day 0), $lo, $hi (the span of the customer
    ids)."""
    values = {
        "a": max((start.date() - days.origin).days, 0), "b": (end.date() - days.origin).days,
        "lo": days.lo, "hi": days.hi,
    }
    return {k: v for k, v in values.items() if f"${k}" in sql}


def _build_range_customers(
    cur: duckdb.DuckDBPyConnection, prefix: str, create: str, start: datetime, end: datetime, range_key: str,
) -> None:
    """The range's customers (_RANGE_CUSTOMERS_SQL), their visits read from the customers'
    days when they are built for this range's state, from the sessions otherwise."""
    days = _days_of_range(cur, range_key, start, end)
    if days is not None:
        visitors, masks = _range_visitors(days.table, days.origin, days.words, start, end)
        sql = _RANGE_CUSTOMERS_SQL.format(create=create, p=prefix, visitors=visitors)
        _PAGE_RUNS.pause()
        try:
            cur.execute(sql, {**_range_params(sql, start, end), **masks})
            return
        except duckdb.CatalogException:  # newer days replaced them meanwhile: read the sessions
            pass
    _build_range(cur, prefix, create, start, end, (_RANGE_CUSTOMERS_SQL.replace("{visitors}", _RANGE_VISITORS_SQL),))


def prepare_customer_days(cur: duckdb.DuckDBPyConnection) -> bool:
    """Build the table of the customers' days (_ACTIVITY) for the current state of the
    features, unless it is there or being built. False when there is none to build: features
    never computed, a read-only store, a shop without sessions of known customers."""
    state = _state(cur)
    if state is None or not _shared_ranges(cur):
        return False
    if _customer_days(cur, f"{state.key}|") is not None:
        return True
    if not _ACTIVITY_BUILD.acquire(blocking=False):  # another thread builds them
        return False
    try:
        # The first and last days of the sessions and orders of known customers.
        first, last, low, high = cur.execute(
            "SELECT least(s.first, o.first), greatest(s.last, o.last), c.low, c.high FROM "
            "(SELECT min(started_at)::DATE AS first, max(started_at)::DATE AS last FROM sessions "
            " WHERE customer_id IS NOT NULL) s, "
            "(SELECT min(ordered_at)::DATE AS first, max(ordered_at)::DATE AS last FROM orders "
            " WHERE customer_id IS NOT NULL) o, "
            "(SELECT min(customer_id) AS low, max(customer_id) AS high FROM customers) c"
        ).fetchall()[0]
        if first is None:
            return False
        origin = max(first, last - timedelta(days=_DAY_COLUMNS * _DAY_BITS - 1))
        words = (last - origin).days // _DAY_BITS + 1
        with _RANGE_LOCK:
            generation = int(fetch_value(cur, f"SELECT coalesce(max(generation), 0) + 1 FROM {_ACTIVITY}") or 1)  # noqa: S608 - constant
            cur.execute(
                f"INSERT INTO {_ACTIVITY} (generation, origin, words, covers_all, lo, hi) "  # noqa: S608 - constant
                "VALUES (?, ?, ?, ?, ?, ?)",
                [generation, origin, words, origin == first, low, high],
            )
        table = _activity_table(generation)
        bits = ", ".join(
            f"bit_or(1::UHUGEINT << (d % {_DAY_BITS})::UHUGEINT) FILTER (d // {_DAY_BITS} = {w}) AS v{w}, "
            f"bit_or(1::UHUGEINT << (d % {_DAY_BITS})::UHUGEINT) FILTER (d // {_DAY_BITS} = {w} AND added_to_cart) AS c{w}"
            for w in range(words)
        )
        sql = (
            f"SELECT customer_id, {bits} FROM (SELECT customer_id, added_to_cart, "  # noqa: S608 - code constants
            "date_diff('day', $origin, started_at::DATE) AS d FROM sessions "
            "WHERE customer_id >= $low AND customer_id < $high"
            + ("" if origin == first else " AND started_at >= $origin")  # the days left out
            + ") GROUP BY customer_id"
        )
        step = (high - low) // _ACTIVITY_CHUNKS + 1
        chunks = [(chunk, chunk + step) for chunk in range(low, high + 1, step)]
        try:
            cur.execute(f"CREATE OR REPLACE TABLE {table} AS {sql} LIMIT 0", {"origin": origin, "low": 0, "high": 0})
            for chunk_low, chunk_high in chunks:
                _PAGE_RUNS.pause()
                cur.execute(f"INSERT INTO {table} {sql}", {"origin": origin, "low": chunk_low, "high": chunk_high})
            with _RANGE_LOCK:  # the new days replace the old ones (built for another state)
                kept = cur.execute(
                    f"UPDATE {_ACTIVITY} SET key = ? WHERE generation = ? RETURNING generation",  # noqa: S608 - constant
                    [state.key, generation],
                ).fetchall()
                if not kept:  # the caches were cleared meanwhile
                    _drop_customer_days(cur, [generation])
                    return False
                old = cur.execute(f"SELECT generation FROM {_ACTIVITY} WHERE generation <> ?", [generation]).fetchall()  # noqa: S608 - constant
                _drop_customer_days(cur, [g for (g,) in old])
        except BaseException:
            with _RANGE_LOCK:
                _drop_customer_days(cur, [generation])
            raise
        if high - low < _MAX_BITMAP:  # the bitmaps of customer ids that count customers fit
            _write_day_tables(cur, generation, origin, chunks)
        return True
    finally:
        _ACTIVITY_BUILD.release()


def _write_day_tables(
    cur: duckdb.DuckDBPyConnection, generation: int, origin: date, chunks: Sequence[tuple[int, int]]
) -> None:
    """Write the day tables (_DAY_TABLES) of this generation of the customers' days, one
    chunk of customers per statement; each is compressed once written. A failure leaves
    the days without them (the charts then read the ranges' rollups)."""
    try:
        for kind, sql in _DAY_TABLES.items():
            table = _day_table(kind, generation)
            cur.execute(f"CREATE OR REPLACE TABLE {table} AS {sql} LIMIT 0", {"origin": origin, "low": 0, "high": 0})
            for low, high in chunks:
                _PAGE_RUNS.pause()
                cur.execute(f"INSERT INTO {table} {sql}", {"origin": origin, "low": low, "high": high})
            _compress_days(cur)
        with _RANGE_LOCK:
            kept = cur.execute(
                f"UPDATE {_ACTIVITY} SET day_tables = true WHERE generation = ? RETURNING generation",  # noqa: S608 - constant
                [generation],
            ).fetchall()
            if not kept:  # the caches were cleared, or newer days replaced these, meanwhile
                _drop_day_tables(cur, generation)
    except duckdb.Error:
        _log.debug("writing the day tables failed", exc_info=True)
        with _RANGE_LOCK:
            _drop_day_tables(cur, generation)
    except BaseException:
        with _RANGE_LOCK:
            _drop_day_tables(cur, generation)
        raise


def _compress_days(cur: duckdb.DuckDBPyConnection) -> None:
    """Compress what was written to the day tables' database: a checkpoint, which waits for
    a moment when no statement of another cursor is using that database. Left uncompressed
    (about 5 times the memory) when none comes."""
    for _ in range(_CHECKPOINT_TRIES):
        _PAGE_RUNS.pause()
        try:
            cur.execute(f"CHECKPOINT {_DAYS_DB}")
            return
        except duckdb.TransactionException:
            _PAGE_RUNS.end_turn()  # other builds' statements go on meanwhile
            time.sleep(0.1)
    _log.debug("the day tables stay uncompressed: no moment to checkpoint them")


def _range_params(sql: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The range's bounds ($s, $e) that the statement uses."""
    return {k: v for k, v in (("s", start), ("e", end)) if f"${k}" in sql}


def _build_range(
    cur: duckdb.DuckDBPyConnection, prefix: str, create: str, start: datetime, end: datetime,
    templates: Sequence[str],
) -> None:
    for template in templates:
        sql = template.format(create=create, p=prefix)
        _PAGE_RUNS.pause()
        cur.execute(sql, _range_params(sql, start, end))


def _drop_range(cur: duckdb.DuckDBPyConnection, prefix: str) -> None:
    tables = (*(s for _, s in _ROLLUPS.values()), _RANGE_CUSTOMERS, "session_groups", *CUBE_TABLES.values())
    for suffix in dict.fromkeys(tables):
        cur.execute(f"DROP TABLE IF EXISTS {prefix}{suffix}")


def _shared_ranges(cur: duckdb.DuckDBPyConnection) -> bool:
    """Attach the in-memory database of shared ranges (once per store; asked once per
    cursor and page run); False when the store is read-only."""
    return _once_per_page_run(cur, "shared_ranges", lambda: _attach_shared_ranges(cur))


def _attach_shared_ranges(cur: duckdb.DuckDBPyConnection) -> bool:
    # Once attached, a read tells so: a statement changing the catalog (even one that
    # changes nothing, CREATE TABLE IF NOT EXISTS) waits for a background build's statement
    # writing a table there, 0.3 s in the middle of a page run on a large shop.
    with contextlib.suppress(duckdb.Error):
        cur.execute(f"SELECT 1 FROM {_ACTIVITY} LIMIT 0")  # noqa: S608 - constant; the last thing written below
        return True
    try:
        cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_SHARED_RANGES}")
        cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_DAYS_DB} (COMPRESS)")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {_SHARED_RANGES}.ranges (generation INTEGER PRIMARY KEY, "
            "key VARCHAR NOT NULL, used DOUBLE NOT NULL, ready BOOLEAN NOT NULL, order_rollups BOOLEAN NOT NULL, "
            "rollups BOOLEAN NOT NULL, "
            "cubes BOOLEAN NOT NULL)"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {_ACTIVITY} (generation INTEGER PRIMARY KEY, key VARCHAR, "
            "origin DATE NOT NULL, words INTEGER NOT NULL, covers_all BOOLEAN NOT NULL, "
            "lo BIGINT NOT NULL, hi BIGINT NOT NULL, day_tables BOOLEAN NOT NULL DEFAULT false)"
        )
    except duckdb.Error:
        return False
    return True


def _write_range_cubes(cur: duckdb.DuckDBPyConnection, prefix: str, start: datetime, end: datetime) -> None:
    """The cubes of a date range: the lifetime cubes' cells, for the customers active in the
    range, over the range's rollups; the stats cube also counts who bought in the months
    the range touches. Filters on cells inside the range then read them."""
    for table in dict.fromkeys(CUBE_TABLES.values()):
        cur.execute(f"CREATE OR REPLACE TABLE {prefix}{table} AS SELECT * FROM {table} LIMIT 0")  # noqa: S608 - code constants
    cur.execute(f"ALTER TABLE {prefix}cube_stats ADD COLUMN month_buyers BIGINT")
    _fill_cubes(cur, [*_BUNDLES, "demographics"], prefix, lambda sql: _range_params(sql, start, end))


_RANGE_BUILDS: dict[str, threading.Lock] = {}  # range key -> lock of its build


def _range_key(state: _State, start: datetime, end: datetime) -> str:
    return f"{state.key}|{start.isoformat()}|{end.isoformat()}"


def _ensure_range(
    cur: duckdb.DuckDBPyConnection, state: _State, flt: CustomerFilter, cubes: bool = False
) -> tuple[str, bool]:
    """The prefix of the tables of the filter's date range, built unless they exist (its
    customers at least), and whether the range has its cubes (built when `cubes` is asked
    for)."""
    start, end = _bounds(flt)
    return _range_tables(cur, _range_key(state, start, end), start, end, _CUBED if cubes else _CUSTOMERS)


# How far a shared range is built: its customers (the audience and the demographics), its
# order rollups, its session rollups (with them, every chart can be drawn), its cubes. Each
# builds on the one before.
_CUSTOMERS, _ORDERS_ROLLED_UP, _ROLLED_UP, _CUBED = 1, 2, 3, 4
# rollup kind (a _ROLLUPS key) -> how far its range must be built
_ROLLUP_LEVELS = {
    "session_devices": _ROLLED_UP, "session_sources": _ROLLED_UP,
    "order_values": _ORDERS_ROLLED_UP, "order_hours": _ORDERS_ROLLED_UP, "categories": _ORDERS_ROLLED_UP,
}


def _range_tables(
    cur: duckdb.DuckDBPyConnection, key: str, start: datetime, end: datetime, level: int,
    existing: bool = False,
) -> tuple[str, bool]:
    """_ensure_range, for the range of this key and bounds, built up to `level`.

    Shared ranges get a new generation number each time one is built, never reused: a
    cursor still holding the prefix of a range since dropped gets an error, never another
    range's numbers. One lock per range: a session waits for the build of its range only.
    A read-only store keeps each cursor's range in temporary tables, built at once.
    With `existing`, a range dropped meanwhile (evicted, or the caches cleared) is left
    dropped: _RangeDropped.
    """
    if not _shared_ranges(cur):
        if _registry_key(cur, "range") != key:
            create = "CREATE OR REPLACE TEMP TABLE"
            _build_range_customers(cur, _LOCAL_RANGES, create, start, end, "")
            _build_range(cur, _LOCAL_RANGES, create, start, end, _RANGE_SQL)
            _register(cur, "range", key)
        return _LOCAL_RANGES, False
    table = f"{_SHARED_RANGES}.ranges"
    found = _range_found(cur, key)
    if found is None or found[1] < level:
        with _RANGE_LOCK:
            build_lock = _RANGE_BUILDS.setdefault(key, threading.Lock())
        with _PAGE_RUNS.holding(build_lock):
            found = _range_found(cur, key)  # built meanwhile by another session
            if found is None and existing:
                raise _RangeDropped(key)
            if found is None:
                found = (_new_range(cur, table, key, start, end), _CUSTOMERS)
                if level < _CUBED and RANGE_CUBES_LATER:
                    # This page reads the customers' rows; the next filter changes inside
                    # the range read its cubes, once a thread of their own has built them.
                    # Not a daemon (said explicitly: the flag is inherited from the caller's
                    # thread): the process waits for it rather than stopping it in the middle
                    # of the database's work.
                    later = _Later(threading.Thread(
                        target=_range_cubes_later, args=(cur.cursor(), key, start, end),
                        name="explorer-range-cubes", daemon=False,
                    ))
                    with _RANGE_LOCK:
                        _RANGE_LATER[key] = later
                    later.thread.start()
            prefix = f"{_SHARED_RANGES}.r{found[0]}_"
            for step, column, build in (
                (_ORDERS_ROLLED_UP, "order_rollups",
                 lambda: _build_order_rollups(cur, prefix, key, start, end)),
                (_ROLLED_UP, "rollups",
                 lambda: _build_range(cur, prefix, "CREATE OR REPLACE TABLE", start, end, _RANGE_SESSION_SQL)),
                (_CUBED, "cubes", lambda: _write_range_cubes(cur, prefix, start, end)),
            ):
                if found[1] < step <= level:
                    build()
                    with _RANGE_LOCK:
                        cur.execute(f"UPDATE {table} SET {column} = true WHERE generation = ?", [found[0]])  # noqa: S608 - constant names
                    found = (found[0], step)
    return f"{_SHARED_RANGES}.r{found[0]}_", found[1] >= _CUBED


def _build_order_rollups(cur: duckdb.DuckDBPyConnection, prefix: str, key: str, start: datetime, end: datetime) -> None:
    """A shared range's order rollups: from the day tables when they cover it, else from
    its orders."""
    days = _days_of_range(cur, key, start, end)
    if days is not None and days.day_tables:
        tables = {kind: _day_table(kind, days.generation) for kind in _DAY_TABLES}
        try:
            for template in _RANGE_ORDER_DAYS_SQL:
                sql = template.format(create="CREATE OR REPLACE TABLE", p=prefix, **tables)
                _PAGE_RUNS.pause()
                cur.execute(sql, _day_params(days, start, end, sql))
            return
        except duckdb.CatalogException:  # newer days replaced them meanwhile: read the orders
            pass
    _build_range(cur, prefix, "CREATE OR REPLACE TABLE", start, end, _RANGE_ORDER_SQL)


def _range_found(cur: duckdb.DuckDBPyConnection, key: str) -> tuple[int, int] | None:
    """The generation of the shared range of this key and how far it is built, or None;
    marks it used (once a second at most: once per page, not once per chart)."""
    table = f"{_SHARED_RANGES}.ranges"
    with _RANGE_LOCK:
        found = cur.execute(
            f"SELECT generation, order_rollups, rollups, cubes, used FROM {table} WHERE key = ? AND ready", [key]  # noqa: S608 - constant name
        ).fetchall()
        if not found:
            return None
        generation, order_rollups, rollups, has_cubes, used = found[0]
        now = time.time()
        if now - used > 1.0:
            cur.execute(f"UPDATE {table} SET used = ? WHERE generation = ?", [now, generation])  # noqa: S608 - constant name
        level = _CUBED if has_cubes else _ROLLED_UP if rollups else _ORDERS_ROLLED_UP if order_rollups else _CUSTOMERS
        return int(generation), level


class _RangeDropped(Exception):
    """The range a background build was for has been dropped."""


RANGE_CUBES_LATER = True  # build a new range's rollups and cubes on a thread after its first use
# The thread starts a moment after the range's first use, then pauses while pages run
# (_PageRuns), unless a page waits for its rollups (range_rollups_ready): it then starts at
# once and its rollups do not pause.
_RANGE_LATER_DELAY_S = 1.0
_RANGE_REDRAW_S = 1.0  # after rollups a page waited for, the time it takes to ask for its redraw


@dataclass
class _Later:
    """The thread building a range's rollups and cubes after its first use."""

    thread: threading.Thread
    hurry: threading.Event = field(default_factory=threading.Event)  # a page waits for its rollups


_RANGE_LATER: dict[str, _Later] = {}  # range key -> its thread, while it runs


def _range_cubes_later(cur: duckdb.DuckDBPyConnection, key: str, start: datetime, end: datetime) -> None:
    with _RANGE_LOCK:
        later = _RANGE_LATER.get(key)
    hurry = later.hurry if later is not None else threading.Event()
    try:
        hurry.wait(_RANGE_LATER_DELAY_S)
        # The rollups first, on their own: a page needing them waits for them only.
        # A range dropped meanwhile (evicted, or the caches cleared after new data) is not
        # built again: nobody may ask for it any more.
        with _PAGE_RUNS.background(urgent=hurry.is_set):
            _range_tables(cur, key, start, end, _ROLLED_UP, existing=True)
        if hurry.is_set():
            # The page waiting for the rollups redraws itself within a poll: let it start
            # first, so that the cubes then pause for it.
            time.sleep(_RANGE_REDRAW_S)
        with _PAGE_RUNS.background():
            _range_tables(cur, key, start, end, _CUBED, existing=True)
    except _RangeDropped:
        pass
    except Exception:  # the range stays readable from its rollups; nothing is lost
        _log.debug("building the cubes of a date range failed", exc_info=True)
    finally:
        with _RANGE_LOCK:
            if later is not None and _RANGE_LATER.get(key) is later:
                del _RANGE_LATER[key]
        with contextlib.suppress(duckdb.Error):  # the store may have been closed meanwhile
            cur.close()


# Beyond this many customers in a range, its rollups take longer than a page would wait for
# them (0.25 s of work at about 50,000 customers on two cores; 2 to 4 s at 800,000).
_WAIT_MAX_CUSTOMERS = 50_000


def range_rollups_ready(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, wait_s: float = 0.0, hurry: bool = True,
    orders_only: bool = False,
) -> bool:
    """Whether the charts of the filter's date range that read its rollups (funnel, cart
    abandonment, order mixes, categories, weekday x hour) can be drawn without building
    them first (or answered from the day tables: those of the orders for any filter, those
    of the sessions for a filter keeping every customer of the range); with `orders_only`,
    those that read its order rollups (the order mixes, categories, weekday x hour).

    A new range's rollups are built by a thread after its first use, the order rollups
    first; with `hurry` this wakes the thread up and keeps its rollups from pausing for
    pages; then waits `wait_s` at most for them, unless the range has more than
    _WAIT_MAX_CUSTOMERS customers (its rollups then take longer than any such wait). True
    without such a thread (no date range, a read-only store, a range built another way or
    not yet used): the charts then build what they need themselves.
    """
    if not flt.has_dates:
        return True
    state = _state(cur)
    if state is None or not _shared_ranges(cur):
        return True
    key = _range_key(state, *_bounds(flt))
    with _RANGE_LOCK:
        later = _RANGE_LATER.get(key)
    if later is None:
        return True
    audience = _audience(cur, flt)
    if audience is not None and _range_days(cur, audience, sessions=not orders_only) is not None:
        return True  # the day tables answer
    if wait_s and audience is not None and audience.dated and int(
        fetch_value(cur, f"SELECT count(*) FROM {audience.ranges}{_RANGE_CUSTOMERS}") or 0  # noqa: S608 - constant names
    ) > _WAIT_MAX_CUSTOMERS:
        wait_s = 0.0  # its rollups take seconds: the page does not wait for them
    if hurry:
        later.hurry.set()
        _PAGE_RUNS.wake()
    deadline = time.monotonic() + wait_s
    with _PAGE_RUNS.step_aside():
        while True:
            found = _range_found(cur, key)
            if found is not None and found[1] >= (_ORDERS_ROLLED_UP if orders_only else _ROLLED_UP):
                return True
            if not later.thread.is_alive():  # it failed: the charts build the rollups
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.05))


def _new_range(cur: duckdb.DuckDBPyConnection, table: str, key: str, start: datetime, end: datetime) -> int:
    """Build a range's customers under a new generation number; returns the number."""
    with _RANGE_LOCK:
        # Beyond the most recent ranges, drop those no page has read for a while: a range
        # read moments ago may be in the middle of a page run. Twice the slots at most,
        # whatever their use. Ranges being built are left alone.
        kept = cur.execute(f"SELECT generation, used, key FROM {table} WHERE ready ORDER BY used DESC", []).fetchall()  # noqa: S608 - constant name
        now = time.time()
        for i, (old, used, old_key) in enumerate(kept):
            building = _RANGE_BUILDS.get(old_key)
            if building is not None and building.locked():  # its rollups or cubes are being written
                continue
            if i >= 2 * _RANGE_SLOTS - 1 or (i >= _RANGE_SLOTS - 1 and now - used > _RANGE_IN_USE_S):
                _drop_range(cur, f"{_SHARED_RANGES}.r{int(old)}_")
                cur.execute(f"DELETE FROM {table} WHERE generation = ?", [old])  # noqa: S608 - constant name
        generation = int(fetch_value(cur, f"SELECT coalesce(max(generation), 0) + 1 FROM {table}") or 1)  # noqa: S608 - constant name
        cur.execute(f"INSERT INTO {table} VALUES (?, ?, ?, false, false, false, false)", [generation, key, now])  # noqa: S608 - constant name
    prefix = f"{_SHARED_RANGES}.r{generation}_"
    try:
        _build_range_customers(cur, prefix, "CREATE OR REPLACE TABLE", start, end, key)
    except BaseException:
        with _RANGE_LOCK:
            _drop_range(cur, prefix)
            cur.execute(f"DELETE FROM {table} WHERE generation = ?", [generation])  # noqa: S608 - constant name
        raise
    with _RANGE_LOCK:
        cur.execute(f"UPDATE {table} SET ready = true, used = ? WHERE generation = ?", [time.time(), generation])  # noqa: S608 - constant name
    return generation


# The usual periods a marketer looks at, in days up to the data's last day: the filter bar
# offers them in one click, and the app prepares their rollups ahead (prepare_periods).
PERIODS: tuple[int, ...] = (30, 90, 365)


def period_range(days: int, first_day: date, last_day: date) -> tuple[date, date]:
    """The last `days` days of the data (both ends inclusive), never before its first day."""
    return max(first_day, last_day - timedelta(days=days - 1)), last_day


def prepare_periods(cur: duckdb.DuckDBPyConnection, first_day: date, last_day: date) -> list[int]:
    """Build the rollups of PERIODS ahead, shared with every session of the store, so that
    picking one of them is as quick as any other filter; most used first. Returns the
    periods prepared: none when features were never computed or the store is read-only
    (ranges are then per session)."""
    state = _state(cur)
    if state is None or not _shared_ranges(cur):
        return []
    done = []
    with _PAGE_RUNS.background():  # pages run first
        prepare_customer_days(cur)  # every range built after them reads them, the periods too
        for days in sorted(PERIODS, key=lambda d: (d != 90, d)):
            start, end = period_range(days, first_day, last_day)
            _ensure_range(cur, state, CustomerFilter(start=start, end=end), cubes=True)
            done.append(days)
    return done


def _audience_sql(
    flt: CustomerFilter, q: _Sql, features: str = "customer_features", ranges: str = _LOCAL_RANGES
) -> str:
    """SELECT of the filtered customers (consenting customers with features) and the flags
    that say which charts they count in. `features` may narrow customer_features to a
    subquery (code constant) of candidates; `ranges` is the prefix of the date range's
    tables (from _ensure_range)."""
    joins = ["JOIN analysis_customers c ON c.customer_id = f.customer_id"]
    where: list[str] = []
    if flt.countries:
        where.append(f"list_contains({q.bind(list(flt.countries))}, c.country)")
    if flt.regions:
        where.append(f"list_contains({q.bind(list(flt.regions))}, c.region)")
    if flt.acquisition_channels:
        where.append(
            f"list_contains({q.bind(list(flt.acquisition_channels))}, c.acquisition_channel)"
        )
    if flt.devices:
        where.append(f"list_contains({q.bind(list(flt.devices))}, f.main_device)")
    if flt.rfm_groups or flt.segments:
        joins.append("JOIN customer_segments s ON s.customer_id = f.customer_id")
        if flt.rfm_groups:
            where.append(f"list_contains({q.bind(list(flt.rfm_groups))}, s.rfm_group)")
        if flt.segments:
            # One list_contains per segment: several times faster than list_has_any with
            # a cast list, and the same match (in any of them).
            where.append("(" + " OR ".join(
                f"list_contains(s.segments, {q.bind(segment)})" for segment in flt.segments
            ) + ")")
    if flt.persona_ids:
        where.append(
            "f.customer_id IN (SELECT customer_id FROM persona_members "  # noqa: S608 - placeholder only
            f"WHERE list_contains({q.bind(list(flt.persona_ids))}, persona_id))"
        )
    if flt.has_dates:
        # Customers with a completed order or a visit in the range, with their counts there
        # (the range rollups are built first, by _ensure_range).
        joins.append(f"JOIN {ranges}{_RANGE_CUSTOMERS} r ON r.customer_id = f.customer_id")
        counts = (
            "r.orders AS frequency, r.revenue AS monetary, r.visitor, r.carter, "
            "CAST(NULL AS BOOLEAN) AS categorised"
        )
    else:
        counts = (
            "f.frequency, f.monetary, f.sessions_total > 0 AS visitor, "
            "f.cart_abandonment_rate IS NOT NULL AS carter, "
            "f.favourite_category IS NOT NULL AS categorised"
        )
    # Every fragment above is a code constant or a placeholder: values are bound.
    sql = f"SELECT f.customer_id, {counts} FROM {features} f " + " ".join(joins)  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql


@dataclass(frozen=True)
class _Audience:
    """The filtered customers of one call: a SQL condition on `<alias>.customer_id`, the
    cache key of everything computed for them, and their counts."""

    key: str
    state_key: str  # what shop-wide facts cached for this call depend on
    cube: bool  # answered from the cubes: `cube_where` over the cell dimensions
    cube_where: str
    cube_params: dict[str, Any]
    dated: bool  # a date range: the range rollups replace the lifetime ones
    complement: bool  # most of the universe is kept: membership tests the excluded ones
    customers: int
    buyers: int
    visitors: int
    carters: int
    # Customers with items of a known category; None for a date range read from the
    # customers' rows (category_mix counts them from the range's rollup).
    categorised: int | None
    orders: int
    revenue: float
    ranges: str = _LOCAL_RANGES  # prefix of the date range's tables, when dated
    persona: bool = False  # the cubes read are the persona cubes
    range_key: str = ""  # the date range's key and bounds (_range_tables), when dated
    range_bounds: tuple[datetime, datetime] | None = None
    # The ids the audience bitmap (_AUDIENCE_BITS) covers, (lo, hi), when membership reads it.
    bits_span: tuple[int, int] | None = None
    # Every customer of the date range is kept (a filter on dates alone, mostly): the
    # range's rollups hold the audience's rows only, no membership test is needed there.
    whole_range: bool = False

    @property
    def bitmap(self) -> bool:
        """Membership reads the audience bitmap."""
        return self.bits_span is not None

    def rollups(self, cur: duckdb.DuckDBPyConnection, kind: str) -> None:
        """Build the date range's rollups of this kind (a _ROLLUPS key) unless they exist
        (its customers always do)."""
        if self.dated and self.range_bounds is not None:
            _range_tables(cur, self.range_key, *self.range_bounds, _ROLLUP_LEVELS[kind])

    def cube_table(self, name: str) -> str:
        """The cube of bundle `name` (a CUBE_TABLES key) the charts read: lifetime, range or
        persona."""
        prefix = PERSONA_CUBES if self.persona else self.ranges if self.dated else ""
        return f"{prefix}{CUBE_TABLES[name]}"

    def table(self, kind: str) -> str:
        """The rollup of this kind (a _ROLLUPS key) the charts read: lifetime or range."""
        lifetime, suffix = _ROLLUPS[kind]
        return f"{self.ranges}{suffix}" if self.dated else lifetime

    def member(self, alias: str, universe: str = "rollup") -> str:
        """SQL condition: `<alias>.customer_id` is a filtered customer.

        `universe` says which customers the table holds: "rollup" (the rollups the charts
        read: customers with features, or active in the date range), "features" (tables
        of customers with features) or "customers" (any consenting customer). When the
        audience is most of its universe, the condition excludes the few customers left
        out instead of looking up the many kept: a much smaller hash table per query.
        """
        if self.whole_range and universe == "rollup":
            return "TRUE"
        if self.bits_span is not None:
            # Ids outside the bitmap's span are no audience member (CASE evaluates get_bit
            # on the rows inside it only). The span is written as numbers: read from the
            # bitmap's table, it made the planner join that table on a range of ids.
            lo, hi = self.bits_span
            return (
                f"CASE WHEN {alias}.customer_id BETWEEN {lo} AND {hi} "  # noqa: S608 - constant names, integers
                f"THEN get_bit((SELECT b FROM {_AUDIENCE_BITS}), CAST({alias}.customer_id - {lo} AS INTEGER)) = 1 "
                "ELSE false END"
            )
        if self.complement and (universe == "rollup" or (universe == "features" and not self.dated)):
            return f"{alias}.customer_id NOT IN (SELECT customer_id FROM {_EXCLUDED})"  # noqa: S608 - alias and table are code constants
        return f"{alias}.customer_id IN (SELECT customer_id FROM {_AUDIENCE})"  # noqa: S608 - alias and table are code constants


def _audience(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> _Audience | None:
    """The filtered customers, or None when features were never computed.

    A filter on the cell dimensions alone is answered from the cubes, nothing is
    materialised. Otherwise the set is kept in a temporary table until the filter, the
    features or consent change; the consent view is part of its query, so a withdrawal
    takes effect at the next call.
    """
    state = _state(cur)
    if state is None:
        return None
    key = _filter_key(state, flt)
    bounds = _bounds(flt) if flt.has_dates else None
    range_key = _range_key(state, *bounds) if bounds else ""
    ranges, range_cubes = _range_tables(cur, range_key, *bounds, _CUSTOMERS) if bounds else (_LOCAL_RANGES, False)
    # A date range with its cubes answers the filters on cells as the lifetime cubes do; a
    # persona with its cubes too (without a date range).
    cube = _uses_cubes(replace(flt, start=None, end=None), state) and (range_cubes or not flt.has_dates)
    if cube and flt.persona_ids:
        cube = not flt.has_dates and _personas_cubed(cur, state, flt.persona_ids, _has_cells(flt))
    if cube:
        q = _Sql()
        where = _cube_where(flt, q)
        shell = _Audience(key, state.key, True, where, q.params, flt.has_dates, False, 0, 0, 0, 0, 0, 0, 0.0,
                          ranges=ranges, persona=bool(flt.persona_ids))
        row = _bundle(cur, shell, "stats").iloc[0]
    else:
        if _registry_key(cur, "audience") != key:
            q = _Sql()
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {_AUDIENCE} AS " + _audience_sql(flt, q, ranges=ranges),  # noqa: S608 - constant name
                q.params,
            )
            _register(cur, "audience", key)
        stats_sql = (
            "SELECT count(*) AS customers, count(*) FILTER (frequency > 0) AS buyers, "  # noqa: S608 - constant name
            "count(*) FILTER (visitor) AS visitors, count(*) FILTER (carter) AS carters, "
            "count(*) FILTER (categorised) AS categorised, "
            "coalesce(sum(frequency), 0) AS orders, coalesce(sum(monetary), 0) AS revenue "
            f"FROM {_AUDIENCE}"
        )
        row = _cached(cur, "audience_stats", key, lambda: (stats_sql, {})).iloc[0]
    customers = 0 if pd.isna(row["customers"]) else int(row["customers"])
    complement = whole_range = False
    universe = f"{ranges}{_RANGE_CUSTOMERS}" if flt.has_dates else "customer_features"

    def universe_size() -> int:
        return int(_cached(
            cur, "universe_size", f"{key}|{universe}",
            lambda: (f"SELECT count(*) AS n FROM {universe}", {}),  # noqa: S608 - constant names
        ).iloc[0]["n"])

    if not cube and customers and flt.has_dates:
        # The audience is taken from the range's customers: as many means all of them.
        whole_range = customers == universe_size()
    bits_span = _ensure_bitmap(cur, state, key) if not cube and customers else None
    if not cube and customers and bits_span is None:
        complement = 2 * customers > universe_size()
        if complement and _registry_key(cur, "excluded") != key:
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {_EXCLUDED} AS SELECT customer_id FROM {universe} "  # noqa: S608 - constant names
                f"WHERE customer_id NOT IN (SELECT customer_id FROM {_AUDIENCE})"
            )
            _register(cur, "excluded", key)

    def count(column: str) -> int:
        return 0 if pd.isna(row[column]) else int(row[column])

    return _Audience(
        key=key, state_key=state.key, cube=cube, cube_where=where if cube else "",
        cube_params=q.params if cube else {}, dated=flt.has_dates, complement=complement, bits_span=bits_span,
        customers=customers, buyers=count("buyers"), visitors=count("visitors"),
        carters=count("carters"), categorised=None if flt.has_dates and not cube else count("categorised"),
        orders=count("orders"),
        revenue=0.0 if pd.isna(row["revenue"]) else float(row["revenue"]), ranges=ranges,
        persona=cube and bool(flt.persona_ids), range_key=range_key, range_bounds=bounds,
        whole_range=whole_range,
    )


def _personas_cubed(cur: duckdb.DuckDBPyConnection, state: _State, persona_ids: Sequence[int], cells: bool) -> bool:
    """Whether the persona cubes answer a filter on these personas: each has its rows (per
    cell when `cells`, else per segment set; written with its members, so a persona of
    before them, or without any member with features, has none), and, when there are
    several, no customer is a member of two of them (their rows then add up to each member
    counted once)."""
    ids = sorted(int(p) for p in persona_ids)
    kind = "IS NULL" if cells else "IS NOT NULL"
    sql = (
        f"SELECT (SELECT count(DISTINCT {PERSONA_CELL}) FROM {PERSONA_CUBES}cube_stats "  # noqa: S608 - constant names
        f"WHERE list_contains($ids, {PERSONA_CELL}) AND {SEGMENT_CELL} {kind}) = len($ids) AND "
        "(len($ids) = 1 OR (SELECT count(*) = count(DISTINCT customer_id) FROM persona_members "
        "WHERE list_contains($ids, persona_id))) AS cubed"
    )
    key = f"{state.key}|{ids}|{kind}"
    return bool(_cached(cur, "personas_cubed", key, lambda: (sql, {"ids": ids})).iloc[0]["cubed"])


def _ensure_bitmap(cur: duckdb.DuckDBPyConnection, state: _State, key: str) -> tuple[int, int] | None:
    """Build the bitmap of the audience table for this key and return the ids it covers
    (lo, hi); None when the ids spread too wide for one (membership then uses the
    audience table)."""
    bounds = _cached(
        cur, "id_bounds", state.key,
        lambda: ("SELECT min(customer_id) AS lo, max(customer_id) AS hi FROM customer_features", {}),
    ).iloc[0]
    if pd.isna(bounds["lo"]) or int(bounds["hi"]) - int(bounds["lo"]) >= _MAX_BITMAP:
        return None
    lo, hi = int(bounds["lo"]), int(bounds["hi"])
    if _registry_key(cur, "bitmap") != key:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_AUDIENCE_BITS} AS "  # noqa: S608 - constant names
            f"SELECT bitstring_agg(customer_id, $lo, $hi) AS b FROM {_AUDIENCE}",
            {"lo": lo, "hi": hi},
        )
        _register(cur, "bitmap", key)
    return lo, hi


def _precheck(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, columns: Sequence[str]
) -> tuple[ChartData | None, _Audience]:
    """The unavailable result when features are missing or the filter keeps nobody."""
    audience = _audience(cur, flt)
    empty = _Audience("", "", False, "", {}, False, False, 0, 0, 0, 0, 0, 0, 0.0)
    if audience is None:
        return _unavailable(NO_FEATURES, columns), empty
    if audience.customers == 0:
        return _unavailable(NO_MATCHING_CUSTOMERS, columns), audience
    return None, audience


def _mark_small(df: pd.DataFrame, column: str = "customers") -> pd.DataFrame:
    df = df.copy()
    df["too_small"] = df[column].fillna(0) < MIN_GROUP_SIZE
    return df


def _share(part: pd.Series, total: float) -> pd.Series:
    return part / total if total else part * float("nan")


def _ints(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for c in columns:
        df[c] = df[c].fillna(0).astype("int64")
    return df


def _shop_fact(cur: duckdb.DuckDBPyConnection, a: _Audience, name: str, sql: str) -> bool:
    """A yes/no fact about the whole shop (has sessions, has orders...), cached per state."""
    df = _cached(cur, f"fact_{name}", a.state_key, lambda: (f"SELECT ({sql}) AS fact", {}))  # noqa: S608 - constant SQL
    return bool(df.iloc[0]["fact"])


def _base_size(cur: duckdb.DuckDBPyConnection, a: _Audience) -> int:
    """Consenting customers with features: the "everyone" every share is relative to."""
    df = _cached(
        cur, "base_size", a.state_key,
        lambda: (
            "SELECT count(*) AS n FROM customer_features f "
            "JOIN analysis_customers c USING (customer_id)",
            {},
        ),
    )
    return int(df.iloc[0]["n"])


def _has_sessions(cur: duckdb.DuckDBPyConnection, a: _Audience) -> bool:
    return _shop_fact(cur, a, "sessions", "SELECT EXISTS (SELECT 1 FROM sessions)")


def _has_orders(cur: duckdb.DuckDBPyConnection, a: _Audience) -> bool:
    return _shop_fact(cur, a, "orders", "SELECT EXISTS (SELECT 1 FROM customer_order_values)")


# ---------------------------------------------------------------- aggregations and cubes

# The cells of the cubes: a filter on these columns and on behavioural segments (no persona
# or date) is answered from the cubes. Column names are those of the cube tables.
CELL_DIMENSIONS: tuple[str, ...] = (
    "country", "region", "acquisition_channel", "main_device", "rfm_group",
)
# The last cell dimension: the number of the customer's whole set of behavioural segments
# (cube_segment_sets), so that each customer counts in one cell and a filter on segments
# (in any of them) reads the cells whose set holds one. NULL in cubes built before sets
# existed (migration 13): those answer filters without a segment only.
SEGMENT_CELL = "segment_set"
# The persona cubes (tables PERSONA_CUBES + a cube's name) count each persona's members
# twice over, with the persona's id in this column: per segment set (the other cell columns
# are NULL), and per cell of the other dimensions (segment set NULL). A filter on personas
# and on segments, or on personas and on cells, reads them; several personas when no
# customer is in two of them.
PERSONA_CELL = "persona_id"
PERSONA_CUBES = "persona_"
_FILTER_CELLS = (
    ("countries", "country"), ("regions", "region"),
    ("acquisition_channels", "acquisition_channel"), ("devices", "main_device"),
    ("rfm_groups", "rfm_group"),
)


@dataclass(frozen=True)
class _Bundle:
    """One aggregation several charts share, written once for three uses: over the
    filtered customers' rows, to build its cube at feature time, and to read the cube.

    `source` is a FROM clause whose customer rows have the alias `r` (`{rollup}` stands for
    the lifetime or date-range rollup of kind `rollup`); `keys` and `measures` are
    (expression, name) pairs; measures add up across cells (counts and sums).
    """

    source: str
    keys: tuple[tuple[str, str], ...]
    measures: tuple[tuple[str, str], ...]
    where: str = "TRUE"
    universe: str = "rollup"
    rollup: str | None = None


_SESSION_MEASURES = (
    ("count(*)", "customers"),
    ("count(*) FILTER (r.cart_sessions > 0)", "cart_customers"),
    ("sum(r.sessions)", "sessions"),
)
_BUNDLES: dict[str, _Bundle] = {
    "stats": _Bundle(
        source="customer_features r",
        keys=(),
        measures=(
            ("count(*)", "customers"),
            ("count(*) FILTER (r.frequency > 0)", "buyers"),
            ("count(*) FILTER (r.sessions_total > 0)", "visitors"),
            ("count(*) FILTER (r.cart_abandonment_rate IS NOT NULL)", "carters"),
            ("count(*) FILTER (r.favourite_category IS NOT NULL)", "categorised"),
            ("coalesce(sum(r.frequency), 0)", "orders"),
            ("coalesce(sum(r.monetary), 0)", "revenue"),
        ),
        universe="features",
    ),
    "rfm": _Bundle(
        source="customer_segments r JOIN customer_features f ON f.customer_id = r.customer_id",
        keys=(("r.r_score", "r_score"), ("r.f_score", "f_score")),
        measures=(("count(*)", "customers"), ("sum(f.monetary)", "revenue")),
        where="r.r_score IS NOT NULL",
        universe="features",
    ),
    "segments": _Bundle(
        source="(SELECT customer_id, unnest(segments) AS segment FROM customer_segments) r",
        keys=(("r.segment", "segment"),),
        measures=(("count(*)", "customers"),),
        universe="features",
    ),
    "sessions_device": _Bundle(
        source="{rollup} r",
        keys=(("'device'", "dimension"), ("r.device", "value")),
        measures=(
            *_SESSION_MEASURES,
            ("sum(r.product_view_sessions)", "product_view"),
            ("sum(r.cart_sessions)", "cart"),
            ("sum(r.checkout_sessions)", "checkout"),
            ("sum(r.order_sessions)", '"order"'),
            ("sum(r.abandoned_cart_sessions)", "abandoned"),
        ),
        rollup="session_devices",
    ),
    "sessions_source": _Bundle(
        source="{rollup} r",
        keys=(("'source'", "dimension"), ("r.source", "value")),
        measures=(
            *_SESSION_MEASURES,
            ("CAST(NULL AS BIGINT)", "product_view"),
            ("sum(r.cart_sessions)", "cart"),
            ("CAST(NULL AS BIGINT)", "checkout"),
            ("sum(r.order_sessions)", '"order"'),
            ("sum(r.abandoned_cart_sessions)", "abandoned"),
        ),
        rollup="session_sources",
    ),
    "order_mix": _Bundle(
        source="{rollup} r",
        keys=(("r.dimension", "dimension"), ("r.value", "value")),
        measures=(("count(*)", "customers"), ("sum(r.orders)", "orders"), ("sum(r.revenue)", "revenue")),
        rollup="order_values",
    ),
    "categories": _Bundle(
        source="{rollup} r",
        keys=(("r.category", "category"),),
        measures=(("count(*)", "customers"), ("sum(r.revenue)", "revenue"), ("sum(r.quantity)", "quantity")),
        rollup="categories",
    ),
    "weekday_hour": _Bundle(
        source="{rollup} r",
        keys=(("r.weekday", "weekday"), ("r.hour", "hour")),
        measures=(("sum(r.orders)", "orders"), ("sum(r.revenue)", "revenue")),
        rollup="order_hours",
    ),
    "months": _Bundle(
        source="customer_order_months r",
        keys=(("r.cohort", "cohort"), ("r.month", "month")),
        measures=(("count(*)", "customers"), ("sum(r.revenue)", "revenue")),
        universe="features",
    ),
}
# The stats of a date range's cube: its customers' counts in the range ({ranges}customers),
# who bought items of a known category there (its category rollup), and who bought in the
# months the range touches ($s, $e: the range), for the monthly charts.
_RANGE_STATS = _Bundle(
    source=(
        "(SELECT rc.*, rc.customer_id IN (SELECT customer_id FROM customer_order_months "
        "WHERE month >= date_trunc('month', CAST($s AS DATE)) AND month < CAST($e AS DATE)) AS month_buyer, "
        "rc.customer_id IN (SELECT customer_id FROM {ranges}category_revenue WHERE category IS NOT NULL) "
        "AS categorised FROM {ranges}customers rc) r"
    ),
    keys=(),
    measures=(
        ("count(*)", "customers"),
        ("count(*) FILTER (r.orders > 0)", "buyers"),
        ("count(*) FILTER (r.visitor)", "visitors"),
        ("count(*) FILTER (r.carter)", "carters"),
        ("count(*) FILTER (r.categorised)", "categorised"),
        ("coalesce(sum(r.orders), 0)", "orders"),
        ("coalesce(sum(r.revenue), 0)", "revenue"),
        ("count(*) FILTER (r.month_buyer)", "month_buyers"),
    ),
)
# Bundle -> cube table; the demographics have their own queries (one pass, many fields).
CUBE_TABLES: dict[str, str] = {
    "stats": "cube_stats",
    "demographics": "cube_demographics",
    "rfm": "cube_rfm",
    "segments": "cube_segments",
    "sessions_device": "cube_sessions",
    "sessions_source": "cube_sessions",
    "order_mix": "cube_order_mix",
    "categories": "cube_categories",
    "weekday_hour": "cube_weekday_hour",
    "months": "cube_months",
}


def _select_list(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{expr} AS {name}" for expr, name in pairs)


def _bundle(
    cur: duckdb.DuckDBPyConnection, a: _Audience, name: str, extra: str = "TRUE",
    extra_params: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The result of bundle `name` for the filtered customers: from its cube when the filter
    allows, else from the customers' rows. `extra` is one more condition over `r` (its
    values in `extra_params`) on a key column of the bundle."""
    spec = _BUNDLES[name]
    keys = ", ".join(n for _, n in spec.keys)
    if a.cube:
        measures = ", ".join(f"sum({n}) AS {n}" for _, n in spec.measures)
        table = a.cube_table(name)
        dimension = " AND dimension = " + spec.keys[0][0] if CUBE_TABLES[name] == "cube_sessions" else ""
        # Names come from _BUNDLES and CUBE_TABLES; the filter's values are bound in cube_params.
        sql = (
            f"SELECT {keys + ', ' if keys else ''}{measures} FROM {table} r "  # noqa: S608
            f"WHERE {a.cube_where}{dimension} AND {extra} GROUP BY ALL"
        )
        return _cached(cur, name, a.key, lambda: (sql, {**a.cube_params, **(extra_params or {})}))
    days = _range_days(cur, a, name in _DAY_SESSION_BUNDLES) if name in _DAY_BUNDLES and extra == "TRUE" else None
    if days is not None:
        return _day_bundle(cur, a, days, name)
    source = spec.source.format(rollup=a.table(spec.rollup)) if spec.rollup else spec.source
    sql = (
        f"SELECT {_select_list(spec.keys + spec.measures)} FROM {source} "  # noqa: S608 - names from _BUNDLES; extra is a constant condition
        f"WHERE {spec.where} AND {a.member('r', spec.universe)} AND {extra} GROUP BY ALL"
    )

    def build() -> tuple[str, dict[str, Any]]:
        if spec.rollup:
            a.rollups(cur, spec.rollup)
        return sql, dict(extra_params or {})

    return _cached(cur, name, a.key, build)


def _day_sessions_sql(by: str, steps: bool) -> str:
    """The sessions bundle by `by` (device or source) from the day tables: sums per value
    of the range's days, and the customers with a cart session per value; the step counts
    of the funnel only by device, as the rollups have them. A session converted when its
    completed order is of the range or the day after it (as _RANGE_SESSION_SQL)."""
    steps_sql = (
        "sum(product_view) AS product_view, sum(cart) AS cart, sum(checkout) AS checkout" if steps else
        "CAST(NULL AS BIGINT) AS product_view, sum(cart) AS cart, CAST(NULL AS BIGINT) AS checkout"
    )
    return f"""
        WITH t AS (
            SELECT {by} AS value, sum(sessions) AS sessions, {steps_sql},
                coalesce(sum(sessions) FILTER (od >= $a AND od <= $b), 0) AS "order",
                sum(cart) - coalesce(sum(cart) FILTER (od >= $a AND od <= $b), 0) AS abandoned
            FROM {{sessions}} WHERE d >= $a AND d < $b GROUP BY ALL
        ), c AS (
            SELECT {by} AS value, bit_count(bitstring_agg(customer_id, $lo, $hi)) AS cart_customers
            FROM {{carts}} WHERE d >= $a AND d < $b GROUP BY ALL
        )
        SELECT '{by}' AS dimension, t.value, coalesce(c.cart_customers, 0) AS cart_customers, t.sessions,
            t.product_view, t.cart, t.checkout, t."order", t.abandoned
        FROM t LEFT JOIN c ON c.value IS NOT DISTINCT FROM t.value
    """  # noqa: S608 - code constants


# Bundle -> its query over the day tables ({<kind>}: the table of that kind; {member}: the
# audience's membership test on `r`); $a, $b: the range's first day and the day after its
# last (from day 0); $lo, $hi: the span of the customer ids. Same columns as the bundle's,
# but the sessions bundles' customers per value (no chart reads them: _sessions drops them).
_DAY_BUNDLES: dict[str, str] = {
    "sessions_device": _day_sessions_sql("device", steps=True),
    "sessions_source": _day_sessions_sql("source", steps=False),
    "order_mix": """
        SELECT""" + ORDER_VALUE_KEYS + """,
            bit_count(bitstring_agg(customer_id, $lo, $hi)) AS customers, sum(orders) AS orders,
            sum(revenue) AS revenue
        FROM {orders} r WHERE r.d >= $a AND r.d < $b AND {member}
        GROUP BY GROUPING SETS ((channel), (device), (payment_method))
    """,
    "categories": """
        SELECT category, bit_count(bitstring_agg(customer_id, $lo, $hi)) AS customers, sum(revenue) AS revenue,
            sum(quantity) AS quantity
        FROM {categories} r WHERE r.d >= $a AND r.d < $b AND {member} GROUP BY ALL
    """,
    "weekday_hour": """
        SELECT weekday, hour, sum(orders) AS orders, sum(revenue) AS revenue
        FROM {hours} r WHERE r.d >= $a AND r.d < $b AND {member} GROUP BY ALL
    """,
    "categorised": """
        SELECT coalesce(bit_count(bitstring_agg(customer_id, $lo, $hi)), 0) AS n
        FROM {categories} r WHERE r.d >= $a AND r.d < $b AND r.category IS NOT NULL AND {member}
    """,
}
_DAY_SESSION_BUNDLES = ("sessions_device", "sessions_source")  # for a filter on dates alone


def _range_days(cur: duckdb.DuckDBPyConnection, a: _Audience, sessions: bool = True) -> _Days | None:
    """The customers' days whose day tables answer this audience's charts of the sessions
    (with `sessions`; only when it keeps every customer of its range), or of the orders: a
    date range of whole days without its cubes, and day tables written for the range's
    state covering its first day. None otherwise."""
    if not (a.dated and (a.whole_range or not sessions) and not a.cube and a.range_bounds is not None):
        return None
    days = _days_of_range(cur, a.range_key, *a.range_bounds)
    return days if days is not None and days.day_tables else None


def _day_bundle(cur: duckdb.DuckDBPyConnection, a: _Audience, days: _Days, name: str) -> pd.DataFrame:
    """Bundle `name` (a _DAY_BUNDLES key) of the audience's date range, from the day tables."""
    assert a.range_bounds is not None  # _range_days says so
    sql = _DAY_BUNDLES[name].format(
        member=a.member("r"), **{kind: _day_table(kind, days.generation) for kind in _DAY_TABLES},
    )
    params = _day_params(days, *a.range_bounds, sql)
    return _cached(cur, name, a.key, lambda: (sql, params))


def _cube_where(flt: CustomerFilter, q: _Sql) -> str:
    conditions = [
        f"list_contains({q.bind(list(getattr(flt, field)))}, {column})"
        for field, column in _FILTER_CELLS
        if getattr(flt, field)
    ]
    if flt.segments:
        conditions.append(
            f"{SEGMENT_CELL} IN (SELECT segment_set FROM cube_segment_sets "  # noqa: S608 - constant names, bound values
            f"WHERE list_has_any(segments, {q.bind(list(flt.segments))}))"
        )
    if flt.persona_ids:
        # The persona cubes (_uses_cubes, _personas_cubed): the rows per cell when cells are
        # filtered, else those per segment set (each member is in both kinds).
        conditions.append(f"list_contains({q.bind(list(flt.persona_ids))}, {PERSONA_CELL})")
        if _has_cells(flt):
            conditions.append(f"{SEGMENT_CELL} IS NULL")
        elif not flt.segments:
            conditions.append(f"{SEGMENT_CELL} IS NOT NULL")
    return " AND ".join(conditions) or "TRUE"


def _has_cells(flt: CustomerFilter) -> bool:
    """Whether the filter keeps some values of a cell dimension (not segments)."""
    return any(getattr(flt, field) for field, _ in _FILTER_CELLS)


def _uses_cubes(flt: CustomerFilter, state: _State) -> bool:
    """Whether the cubes can answer: only cell dimensions and segments filtered (segments
    when the cubes have their segment sets), or personas with cell dimensions or with
    segments (the persona cubes have each persona's rows per cell and per segment set, not
    both; _personas_cubed says whether they hold the personas), and consent unchanged since
    they were built (they hold the customers consenting then)."""
    return (
        state.unchanged_consent
        and not flt.has_dates and not (flt.persona_ids and flt.segments and _has_cells(flt))
        and (not flt.segments or state.segment_cubes)
    )


# The segment sets, numbered in a fixed order (written with the lifetime cubes).
_SEGMENT_SETS_SQL = (
    "DELETE FROM cube_segment_sets",
    """
    INSERT INTO cube_segment_sets
    SELECT row_number() OVER (ORDER BY segments), segments
    FROM (SELECT DISTINCT list_sort(coalesce(segments, [])) AS segments FROM customer_segments)
    """,
)
def _same_cell(left: str, right: str, columns: Sequence[str]) -> str:
    """Join condition: rows `left` and `right` have the same values (NULL included) in
    these cell columns."""
    return " AND ".join(f"{left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in columns)


# The cell of each customer with features, as a small integer: cubes are grouped on it
# (cheaper than six text columns) and the cell's dimensions are joined back at the end.
# {only}: a join keeping some customers (those of a date range, or the members of some
# personas as `pm`), or nothing. Two more columns may split the cells: {persona}, one
# persona of the customer (a customer in several of the personas written has a cell in
# each), or {personas}, the list of the customer's personas; else NULL.
_CELLS_SQL = (
    """
    CREATE OR REPLACE TEMP TABLE feature_cells AS
    SELECT f.customer_id, c.country, c.region, c.acquisition_channel, f.main_device, s.rfm_group,
        sets.segment_set, {persona} AS persona_id, {personas} AS personas
    FROM customer_features f
    JOIN analysis_customers c ON c.customer_id = f.customer_id
    JOIN customer_segments s ON s.customer_id = f.customer_id
    JOIN cube_segment_sets sets ON sets.segments = list_sort(coalesce(s.segments, []))
    {only}
    """,
    """
    CREATE OR REPLACE TEMP TABLE feature_cell_dims AS
    SELECT row_number() OVER () AS cell_id, *
    FROM (SELECT DISTINCT country, region, acquisition_channel, main_device, rfm_group,
              segment_set, persona_id, personas
          FROM feature_cells)
    """,
    "CREATE OR REPLACE TEMP TABLE feature_cells AS SELECT f.customer_id, d.cell_id "
    "FROM feature_cells f JOIN feature_cell_dims d ON "
    + _same_cell("d", "f", (*CELL_DIMENSIONS, SEGMENT_CELL, PERSONA_CELL, "personas")),
)
# The members of some personas ($personas), one row per persona and customer.
_PERSONA_MEMBERS_JOIN = (
    "JOIN (SELECT DISTINCT persona_id, customer_id FROM persona_members "
    "WHERE list_contains($personas, persona_id)) pm ON pm.customer_id = f.customer_id"
)
# Every customer's personas (a sorted list; NULL for a customer in none).
_PERSONA_LISTS_JOIN = (
    "LEFT JOIN (SELECT customer_id, list_sort(list(DISTINCT persona_id)) AS personas "
    "FROM persona_members GROUP BY customer_id) pm ON pm.customer_id = f.customer_id"
)


def _cell_dims(alias: str = "") -> str:
    """The cell columns a cube row is written with, of the table `alias` when given."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{d}" for d in (*CELL_DIMENSIONS, SEGMENT_CELL))


def _cube_cells_sql(name: str, ranges: str | None = None) -> str:
    """SELECT of the rows of cube `name` (a bundle or "demographics") per cell of
    feature_cells (cell_id, the bundle's keys and measures): from the lifetime rollups, or
    from those of the date range whose tables start with `ranges`."""
    if name == "demographics":
        columns = ", ".join(f"{DEMOGRAPHIC_FIELDS[n][0]} AS d_{n}" for n in _SINGLE_VALUED)
        sets = ", ".join(f"(cell_id, d_{n})" for n in _SINGLE_VALUED)
        field = " ".join(f"WHEN grouping(d_{n}) = 0 THEN '{n}'" for n in _SINGLE_VALUED)
        value = " ".join(f"WHEN grouping(d_{n}) = 0 THEN CAST(d_{n} AS VARCHAR)" for n in _SINGLE_VALUED)
        # Identifiers and expressions come from DEMOGRAPHIC_FIELDS.
        return (
            f"SELECT cell_id, CASE {field} END AS field, CASE {value} END AS value, "  # noqa: S608
            f"count(*) AS customers FROM (SELECT cell.cell_id, {columns} FROM analysis_customers c "
            "JOIN feature_cells cell ON cell.customer_id = c.customer_id) "
            f"GROUP BY GROUPING SETS ({sets}) "
            "UNION ALL SELECT cell_id, 'interests', interest, count(*) FROM ("
            "SELECT cell.cell_id, unnest(CASE WHEN len(c.interests) > 0 THEN c.interests "
            "ELSE [NULL] END) AS interest FROM analysis_customers c "
            "JOIN feature_cells cell ON cell.customer_id = c.customer_id) GROUP BY ALL"
        )
    spec = _RANGE_STATS if name == "stats" and ranges is not None else _BUNDLES[name]
    rollup = ""
    if spec.rollup:
        lifetime, suffix = _ROLLUPS[spec.rollup]
        rollup = lifetime if ranges is None else f"{ranges}{suffix}"
    source = spec.source.format(rollup=rollup, ranges=ranges or "")
    return (
        f"SELECT cell.cell_id, {_select_list(spec.keys + spec.measures)} FROM {source} "  # noqa: S608 - names from _BUNDLES
        f"JOIN feature_cells cell ON cell.customer_id = r.customer_id "
        f"WHERE {spec.where} GROUP BY ALL"
    )


def _cube_columns(name: str) -> tuple[list[str], list[str]]:
    """The keys and the measures of a lifetime cube's rows (besides the cells)."""
    if name == "demographics":
        return ["field", "value"], ["customers"]
    spec = _BUNDLES[name]
    return [n for _, n in spec.keys], [n for _, n in spec.measures]


# With the persona cubes written in the pass of the lifetime cubes, cells have a list of
# personas: the lifetime cells are those cells without it (cube_lifetime_map maps the
# first to the second).
_LIFETIME_CELLS_SQL = (
    f"""
    CREATE OR REPLACE TEMP TABLE cube_lifetime_cells AS
    SELECT row_number() OVER () AS lifetime_id, *
    FROM (SELECT DISTINCT {_cell_dims()} FROM feature_cell_dims)
    """,  # noqa: S608 - constant column names
    "CREATE OR REPLACE TEMP TABLE cube_lifetime_map AS SELECT d.cell_id, l.lifetime_id "
    "FROM feature_cell_dims d JOIN cube_lifetime_cells l ON "
    + _same_cell("l", "d", (*CELL_DIMENSIONS, SEGMENT_CELL)),
)


def write_cubes(cur: duckdb.DuckDBPyConnection, only: Sequence[str] | None = None) -> None:
    """Rebuild the explorer cubes (CUBE_TABLES) and the persona cubes from
    customer_features, the rollups, customer_segments and persona_members; call inside the
    caller's transaction. `only` limits the rebuild to some bundles; "segments" rebuilds
    them all, since every cube's cells hold the customers' segment sets (new segment
    thresholds move customers between cells). Sets are numbered in a fixed order, so cubes
    left as they are keep matching numbers."""
    names = [*_BUNDLES, "demographics"]
    if only is not None and "segments" not in only:
        names = list(only)
    for sql in _SEGMENT_SETS_SQL:
        cur.execute(sql)
    for table in dict.fromkeys(CUBE_TABLES[n] for n in names):
        cur.execute(f"DELETE FROM {table}")  # noqa: S608 - names from CUBE_TABLES
        cur.execute(f"DELETE FROM {PERSONA_CUBES}{table}")  # noqa: S608 - names from CUBE_TABLES
    _fill_cubes(cur, names, split_personas=bool(fetch_value(cur, "SELECT EXISTS (SELECT 1 FROM persona_members)")))


def write_persona_cubes(cur: duckdb.DuckDBPyConnection, persona_ids: Sequence[int], members: bool = True) -> None:
    """Rewrite the persona cubes of these personas from their current members (call inside
    the transaction that sets the members, so that the two never disagree); with
    `members` False, only drop them (their filters then read the customers' rows)."""
    ids = [int(p) for p in persona_ids]
    if not ids:
        return
    for table in dict.fromkeys(CUBE_TABLES.values()):
        cur.execute(f"DELETE FROM {PERSONA_CUBES}{table} WHERE list_contains($ids, {PERSONA_CELL})", {"ids": ids})  # noqa: S608 - names from CUBE_TABLES
    if members:
        _fill_cubes(cur, [*_BUNDLES, "demographics"], members_of=ids)


def _fill_cubes(
    cur: duckdb.DuckDBPyConnection, names: Sequence[str], ranges: str | None = None,
    params: Callable[[str], dict[str, Any]] = lambda sql: {},
    members_of: Sequence[int] = (), split_personas: bool = False,
) -> None:
    """Insert the rows of the cubes `names` (bundles, "demographics").

    - With `ranges`: the cubes of that date range, over its customers and rollups.
    - With `members_of` (persona ids): the persona cubes of their members only.
    - Else the lifetime cubes over every customer with features; with `split_personas`,
      the persona cubes of every persona as well, in the same pass: the rows are first
      written per cell and list of personas, then summed over the lists for the lifetime
      cubes and per persona of the lists for the persona cubes (measures add up).

    `params` gives a statement's bound values.
    """
    persona = personas_list = "CAST(NULL AS INTEGER)"
    only = ""
    cell_params: dict[str, Any] = {}
    if ranges is not None:
        only = f"JOIN {ranges}{_RANGE_CUSTOMERS} rc ON rc.customer_id = f.customer_id"
    elif members_of:
        only, persona = _PERSONA_MEMBERS_JOIN, "pm.persona_id"
        cell_params = {"personas": [int(p) for p in members_of]}
    elif split_personas:
        only, personas_list = _PERSONA_LISTS_JOIN, "pm.personas"
    for template in _CELLS_SQL:
        sql = template.format(only=only, persona=persona, personas=personas_list)
        _PAGE_RUNS.pause()
        cur.execute(sql, cell_params if "$personas" in sql else {})
    if split_personas:
        for sql in _LIFETIME_CELLS_SQL:
            cur.execute(sql)
    persona_dims = f"{_cell_dims()}, {PERSONA_CELL}"
    for name in names:
        table, cells = CUBE_TABLES[name], _cube_cells_sql(name, ranges)
        keys, measures = _cube_columns(name)
        grouped = ", ".join([*keys, *(f"sum({m}) AS {m}" for m in measures)])
        # Persona cubes: the cells' rows summed per persona, once per segment set and once
        # per cell of the other dimensions.
        personas_sql = (
            f"INSERT INTO {PERSONA_CUBES}{table} BY NAME SELECT {persona_dims}, {grouped} "  # noqa: S608 - names from CUBE_TABLES and _BUNDLES
            "FROM {cells} JOIN ({cell_personas}) m USING (cell_id) GROUP BY GROUPING SETS ("
            + ", ".join(f"({', '.join((*dims, PERSONA_CELL, *keys))})" for dims in ((SEGMENT_CELL,), CELL_DIMENSIONS))
            + ")"
        )
        if members_of:
            cur.execute(personas_sql.format(
                cells=f"({cells})", cell_personas=f"SELECT cell_id, {persona_dims} FROM feature_cell_dims",  # noqa: S608 - constant names
            ))
        elif not split_personas:
            # BY NAME: the segment column was added last to the tables (migration 12).
            sql = (
                f"INSERT INTO {ranges or ''}{table} BY NAME SELECT {_cell_dims('d')}, agg.* EXCLUDE (cell_id) "  # noqa: S608 - names from CUBE_TABLES
                f"FROM ({cells}) agg JOIN feature_cell_dims d USING (cell_id)"
            )
            _PAGE_RUNS.pause()
            cur.execute(sql, params(sql))
        else:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE cube_by_personas AS {cells}")
            # Names come from CUBE_TABLES and _BUNDLES; nothing is bound.
            cur.execute(
                f"INSERT INTO {table} BY NAME SELECT {_cell_dims('l')}, agg.* EXCLUDE (lifetime_id) FROM ("  # noqa: S608
                f"SELECT m.lifetime_id, {grouped} FROM cube_by_personas "
                "JOIN cube_lifetime_map m USING (cell_id) GROUP BY ALL) agg JOIN cube_lifetime_cells l USING (lifetime_id)"
            )
            cur.execute(personas_sql.format(
                cells="cube_by_personas",
                cell_personas=f"SELECT cell_id, {_cell_dims()}, unnest(personas) AS {PERSONA_CELL} FROM feature_cell_dims",  # noqa: S608 - constant names
            ))
    for temp in ("cube_by_personas", "cube_lifetime_cells", "cube_lifetime_map", "feature_cells", "feature_cell_dims"):
        cur.execute(f"DROP TABLE IF EXISTS {temp}")


# ---------------------------------------------------------------- summary and options


SUMMARY_COLUMNS = ("customers", "share_of_base", "buyers", "orders", "revenue", "average_order_value")


def audience_summary(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Headline numbers of the filtered customers, one row.

    Out: customers, share_of_base (of all consenting customers with features), buyers
    (customers with a completed order), orders and revenue (completed, lifetime as of the
    reference date), average_order_value.
    """
    missing, a = _precheck(cur, flt, SUMMARY_COLUMNS)
    if missing:
        return missing
    base_size = _base_size(cur, a)
    df = pd.DataFrame([{
        "customers": a.customers,
        "share_of_base": a.customers / base_size if base_size else float("nan"),
        "buyers": a.buyers,
        "orders": a.orders,
        "revenue": a.revenue,
        "average_order_value": a.revenue / a.orders if a.orders else float("nan"),
    }])
    return ChartData(df, a.customers)


@dataclass(frozen=True)
class FilterOptions:
    """The values the filter bar offers, read from the data."""

    countries: list[str]
    regions: list[str]
    acquisition_channels: list[str]
    devices: list[str]
    rfm_groups: list[str]
    segments: list[str]
    personas: list[tuple[int, str]]  # (persona_id, name)
    first_day: date | None
    last_day: date | None


def filter_options(cur: duckdb.DuckDBPyConnection) -> FilterOptions:
    """Distinct values for each filter of the bar (consenting customers only)."""

    def distinct(sql: str) -> list[str]:
        return [r[0] for r in cur.execute(sql).fetchall() if r[0] is not None]

    segments_present = set(distinct("SELECT DISTINCT unnest(segments) FROM customer_segments"))
    segments = [s for s in BEHAVIOUR_SEGMENTS if s in segments_present] + sorted(
        s for s in segments_present if s.startswith(INTEREST_PREFIX)
    )
    personas = [
        (int(r[0]), str(r[1]))
        for r in cur.execute(
            "SELECT persona_id, name FROM personas WHERE deleted_at IS NULL ORDER BY persona_id"
        ).fetchall()
    ]
    days = cur.execute(
        "SELECT CAST(least(min(o.first), min(s.first)) AS DATE), "
        "CAST(greatest(max(o.last), max(s.last)) AS DATE) FROM "
        "(SELECT min(ordered_at) AS first, max(ordered_at) AS last FROM analysis_orders) o, "
        "(SELECT min(started_at) AS first, max(started_at) AS last FROM analysis_sessions) s"
    ).fetchall()[0]
    return FilterOptions(
        countries=distinct("SELECT DISTINCT country FROM analysis_customers ORDER BY 1"),
        regions=distinct("SELECT DISTINCT region FROM analysis_customers ORDER BY 1"),
        acquisition_channels=distinct(
            "SELECT DISTINCT acquisition_channel FROM analysis_customers ORDER BY 1"
        ),
        devices=distinct("SELECT DISTINCT main_device FROM customer_features ORDER BY 1"),
        rfm_groups=list(RFM_GROUPS),
        segments=segments,
        personas=personas,
        first_day=days[0],
        last_day=days[1],
    )


# ---------------------------------------------------------------- demographics

AGE_BANDS: tuple[str, ...] = ("<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
INCOME_BANDS: tuple[str, ...] = ("<20k", "20k-35k", "35k-50k", "50k-75k", "75k-100k", "100k+")

# field -> (SQL expression over analysis_customers `c`, the column that must be present,
# the band order when the values are bands). Identifiers come only from this table.
_AGE_SQL = (
    "CASE WHEN c.age < 18 THEN '<18' WHEN c.age < 25 THEN '18-24' WHEN c.age < 35 THEN '25-34' "
    "WHEN c.age < 45 THEN '35-44' WHEN c.age < 55 THEN '45-54' WHEN c.age < 65 THEN '55-64' "
    "WHEN c.age IS NOT NULL THEN '65+' END"
)
_INCOME_SQL = (
    "CASE WHEN c.income < 20000 THEN '<20k' WHEN c.income < 35000 THEN '20k-35k' "
    "WHEN c.income < 50000 THEN '35k-50k' WHEN c.income < 75000 THEN '50k-75k' "
    "WHEN c.income < 100000 THEN '75k-100k' WHEN c.income IS NOT NULL THEN '100k+' END"
)
DEMOGRAPHIC_FIELDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "age_band": (_AGE_SQL, "age", AGE_BANDS),
    "gender": ("c.gender", "gender", ()),
    "marital_status": ("c.marital_status", "marital_status", ()),
    "country": ("c.country", "country", ()),
    "region": ("c.region", "region", ()),
    "education": ("c.education", "education", ()),
    "occupation": ("c.occupation", "occupation", ()),
    "income_band": (_INCOME_SQL, "income", INCOME_BANDS),
    "interests": ("c.interests", "interests", ()),
}
_SINGLE_VALUED = tuple(f for f in DEMOGRAPHIC_FIELDS if f != "interests")
DEMOGRAPHIC_COLUMNS = ("value", "customers", "share", "too_small")


def _field_counts(cur: duckdb.DuckDBPyConnection, a: _Audience) -> dict[str, int]:
    """How many consenting customers have each demographic field (0 = absent from the data)."""
    counts = ", ".join(
        f"count(*) FILTER (len(c.{col}) > 0) AS {name}" if name == "interests"
        else f"count(c.{col}) AS {name}"
        for name, (_, col, _) in DEMOGRAPHIC_FIELDS.items()
    )
    df = _cached(
        cur, "field_counts", a.state_key,
        lambda: (f"SELECT {counts} FROM analysis_customers c", {}),  # noqa: S608 - columns from DEMOGRAPHIC_FIELDS
    )
    return {name: int(df.iloc[0][name]) for name in DEMOGRAPHIC_FIELDS}


def _demographics(cur: duckdb.DuckDBPyConnection, a: _Audience) -> pd.DataFrame:
    """Customers per value of every demographic field, in one pass: field, value, customers."""
    if a.cube:
        sql = (
            f"SELECT field, value, sum(customers) AS customers FROM {a.cube_table('demographics')} "  # noqa: S608 - cube_where binds its values
            f"WHERE {a.cube_where} GROUP BY ALL"
        )
        return _cached(cur, "demographics", a.key, lambda: (sql, dict(a.cube_params)))

    def build() -> tuple[str, dict[str, Any]]:
        columns = ", ".join(f"{DEMOGRAPHIC_FIELDS[n][0]} AS {n}" for n in _SINGLE_VALUED)
        sets = ", ".join(f"({n})" for n in _SINGLE_VALUED)
        field = " ".join(f"WHEN grouping({n}) = 0 THEN '{n}'" for n in _SINGLE_VALUED)
        value = " ".join(f"WHEN grouping({n}) = 0 THEN CAST({n} AS VARCHAR)" for n in _SINGLE_VALUED)
        # Identifiers and expressions come from DEMOGRAPHIC_FIELDS; no value is formatted in.
        sql = (
            f"SELECT CASE {field} END AS field, CASE {value} END AS value, "  # noqa: S608
            f"count(*) AS customers FROM (SELECT {columns} FROM analysis_customers c "
            f"WHERE {a.member('c', 'customers')}) GROUP BY GROUPING SETS ({sets}) "
            "UNION ALL "
            "SELECT 'interests', interest, count(*) FROM (SELECT unnest(CASE WHEN "
            "len(c.interests) > 0 THEN c.interests ELSE [NULL] END) AS interest "
            f"FROM analysis_customers c WHERE {a.member('c', 'customers')}) GROUP BY 2"
        )
        return sql, {}

    return _cached(cur, "demographics", a.key, build)


def demographic_breakdown(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, field_name: str
) -> ChartData:
    """Customers per value of a demographic field (one of DEMOGRAPHIC_FIELDS).

    Out: value (None = not recorded), customers, share (of the filtered customers; for
    interests a customer counts once per interest, so shares add up to more than 1),
    too_small. Bands (age_band, income_band; income in the shop's currency per year) come in
    band order, other values by customers descending. Unavailable with FIELD_MISSING when no
    customer of the shop has the field.
    """
    if field_name not in DEMOGRAPHIC_FIELDS:
        raise ValidationError(
            f"unknown demographic field {field_name!r}; choose among {', '.join(DEMOGRAPHIC_FIELDS)}"
        )
    bands = DEMOGRAPHIC_FIELDS[field_name][2]
    missing, a = _precheck(cur, flt, DEMOGRAPHIC_COLUMNS)
    if missing:
        return missing
    if not _field_counts(cur, a)[field_name]:
        return _unavailable(FIELD_MISSING, DEMOGRAPHIC_COLUMNS, a.customers)
    all_fields = _demographics(cur, a)
    df = all_fields[all_fields["field"] == field_name][["value", "customers"]].copy()
    df = _ints(df, "customers")
    df["share"] = df["customers"] / a.customers
    if bands:
        order = {b: i for i, b in enumerate(bands)}
        df["_order"] = df["value"].map(order).fillna(len(bands))
        df = df.sort_values("_order").drop(columns="_order")
    else:
        df = df.sort_values(["customers", "value"], ascending=[False, True], na_position="last")
    return ChartData(_mark_small(df).reset_index(drop=True), a.customers)


# ---------------------------------------------------------------- RFM and segments

RFM_GRID_COLUMNS = ("r_score", "f_score", "rfm_group", "customers", "revenue", "revenue_share", "too_small")
RFM_GROUP_COLUMNS = ("rfm_group", "customers", "share", "revenue", "revenue_share", "too_small")


def _rfm_cells(cur: duckdb.DuckDBPyConnection, a: _Audience) -> pd.DataFrame:
    """All 25 R x F cells of the filtered customers: customers and lifetime revenue."""
    cells = _bundle(cur, a, "rfm")
    grid = pd.DataFrame(
        [(r, f) for r in range(5, 0, -1) for f in range(1, 6)], columns=["r_score", "f_score"]
    )
    cells = _ints(cells, "r_score", "f_score")
    df = grid.merge(cells, on=["r_score", "f_score"], how="left")
    df = _ints(df, "customers")
    df["revenue"] = df["revenue"].fillna(0.0)
    df["rfm_group"] = [rfm_group_for(r, f) for r, f in zip(df["r_score"], df["f_score"], strict=True)]
    return df


def rfm_grid(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """The R x F heatmap: customers and revenue in each of the 25 cells.

    Out: r_score, f_score (1-5; 5 = most recent / most orders), rfm_group of the cell,
    customers, revenue (lifetime revenue of completed orders as of the reference date),
    revenue_share, too_small. All 25 cells are present, empty ones with 0. n_customers
    counts the filtered customers with an RFM score (buyers).
    """
    missing, a = _precheck(cur, flt, RFM_GRID_COLUMNS)
    if missing:
        return missing
    df = _rfm_cells(cur, a)
    scored = int(df["customers"].sum())
    if scored == 0:
        return _unavailable(NO_BUYERS, RFM_GRID_COLUMNS)
    df["revenue_share"] = _share(df["revenue"], float(df["revenue"].sum()))
    return ChartData(_mark_small(df)[list(RFM_GRID_COLUMNS)], scored)


def rfm_groups(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Size and revenue share of each named RFM group, all eleven in RFM_GROUPS order.

    Out: rfm_group, customers, share (of the scored filtered customers), revenue,
    revenue_share, too_small. n_customers counts the scored filtered customers.
    """
    missing, a = _precheck(cur, flt, RFM_GROUP_COLUMNS)
    if missing:
        return missing
    cells = _rfm_cells(cur, a)
    scored = int(cells["customers"].sum())
    if scored == 0:
        return _unavailable(NO_BUYERS, RFM_GROUP_COLUMNS)
    groups = cells.groupby("rfm_group", as_index=False)[["customers", "revenue"]].sum()
    df = pd.DataFrame({"rfm_group": list(RFM_GROUPS)}).merge(groups, on="rfm_group", how="left")
    df = _ints(df, "customers")
    df["revenue"] = df["revenue"].fillna(0.0)
    df["share"] = df["customers"] / scored
    df["revenue_share"] = _share(df["revenue"], float(df["revenue"].sum()))
    return ChartData(_mark_small(df)[list(RFM_GROUP_COLUMNS)], scored)


SEGMENT_COLUMNS = ("segment", "customers", "share", "too_small")


def behaviour_segments(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Customers in each behavioural segment (a customer can be in several).

    Out: segment (BEHAVIOUR_SEGMENTS in order, then interest:<category> by size), customers,
    share (of the filtered customers), too_small. Segments with nobody are listed with 0.
    """
    missing, a = _precheck(cur, flt, SEGMENT_COLUMNS)
    if missing:
        return missing
    found = _bundle(cur, a, "segments")
    base = pd.DataFrame({"segment": list(BEHAVIOUR_SEGMENTS)})
    interests = found[found["segment"].str.startswith(INTEREST_PREFIX)].sort_values(
        ["customers", "segment"], ascending=[False, True]
    )
    df = pd.concat([base.merge(found, on="segment", how="left"), interests], ignore_index=True)
    df = _ints(df, "customers")
    df["share"] = df["customers"] / a.customers
    return ChartData(_mark_small(df)[list(SEGMENT_COLUMNS)], a.customers)


# ---------------------------------------------------------------- sessions

FUNNEL_STEPS: tuple[str, ...] = ("sessions", "product_view", "cart", "checkout", "order")
FUNNEL_COLUMNS = ("step", "sessions", "share_of_sessions", "step_rate")
CART_COLUMNS = (
    "value", "customers", "cart_sessions", "abandoned_sessions", "abandonment_rate", "too_small",
)
SESSION_BREAKDOWNS: tuple[str, ...] = ("device", "source")


def _sessions(cur: duckdb.DuckDBPyConnection, a: _Audience) -> pd.DataFrame:
    """Session counts of the filtered customers per device and per source, in one pass.

    Out: dimension ('device', 'source' or 'total'), value, cart_customers, sessions,
    product_view, cart, checkout, order, abandoned, and customers in the total row (those
    of the values are read by no chart: the day tables do not count them). Rows of the
    rollups are unique per customer and value, so count(*) counts customers; the total row
    sums the devices and takes its customers from the audience.
    """
    df = pd.concat(
        [_bundle(cur, a, "sessions_device"), _bundle(cur, a, "sessions_source")],
        ignore_index=True,
    ).drop(columns="customers", errors="ignore")
    devices_rows = df[df["dimension"] == "device"]
    total = devices_rows.drop(columns=["dimension", "value"]).sum(numeric_only=True).to_dict()
    total.update(dimension="total", value=None, customers=a.visitors, cart_customers=a.carters)
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def funnel(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Sessions -> product view -> cart -> checkout -> order, for the filtered customers.

    Out: step (FUNNEL_STEPS), sessions reaching the step, share_of_sessions (of all their
    sessions), step_rate (of the previous step). "order" counts sessions whose order is
    completed, as the conversion KPI does. n_customers counts filtered customers with a
    session. Unavailable with NO_SESSIONS when the shop has no session data.
    """
    missing, a = _precheck(cur, flt, FUNNEL_COLUMNS)
    if missing:
        return missing
    if not _has_sessions(cur, a):
        return _unavailable(NO_SESSIONS, FUNNEL_COLUMNS)
    rows = _sessions(cur, a)
    total = rows[rows["dimension"] == "total"].iloc[0]
    counts = [0 if pd.isna(total[s]) else int(total[s]) for s in FUNNEL_STEPS]
    df = pd.DataFrame({"step": list(FUNNEL_STEPS), "sessions": counts})
    df["share_of_sessions"] = _share(df["sessions"].astype("float64"), float(counts[0]))
    previous = [counts[0], *counts[:-1]]
    df["step_rate"] = [c / p if p else float("nan") for c, p in zip(counts, previous, strict=True)]
    return ChartData(df, int(total["customers"]))


def cart_abandonment(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, by: str = "device"
) -> ChartData:
    """Cart abandonment by session device or by session source.

    Out: value (device or source; None = not recorded), customers (with a cart session),
    cart_sessions, abandoned_sessions (cart and no completed order), abandonment_rate,
    too_small; by abandoned_sessions descending. n_customers counts filtered customers with
    a cart session. Unavailable with NO_SESSIONS without session data.
    """
    if by not in SESSION_BREAKDOWNS:
        raise ValidationError(f"cart abandonment is by 'device' or 'source', not {by!r}")
    missing, a = _precheck(cur, flt, CART_COLUMNS)
    if missing:
        return missing
    if not _has_sessions(cur, a):
        return _unavailable(NO_SESSIONS, CART_COLUMNS)
    rows = _sessions(cur, a)
    total = rows[rows["dimension"] == "total"].iloc[0]
    df = rows[(rows["dimension"] == by) & (rows["cart"] > 0)]
    df = pd.DataFrame({
        "value": df["value"],
        "customers": df["cart_customers"],
        "cart_sessions": df["cart"],
        "abandoned_sessions": df["abandoned"],
    })
    df = _ints(df, "customers", "cart_sessions", "abandoned_sessions")
    df["abandonment_rate"] = df["abandoned_sessions"] / df["cart_sessions"]
    df = df.sort_values(["abandoned_sessions", "value"], ascending=[False, True], na_position="last")
    return ChartData(
        _mark_small(df)[list(CART_COLUMNS)].reset_index(drop=True), int(total["cart_customers"])
    )


# ---------------------------------------------------------------- orders

MIX_COLUMNS = (
    "value", "customers", "orders", "revenue", "order_share", "revenue_share", "too_small",
)
ORDER_MIX_BY: tuple[str, ...] = ("channel", "device", "payment_method")


def _order_mixes(cur: duckdb.DuckDBPyConnection, a: _Audience) -> pd.DataFrame:
    """Completed orders per channel, device and payment method, in one pass.

    Out: dimension (ORDER_MIX_BY or 'total'), value, customers, orders, revenue. Rows of the
    rollup are unique per customer, dimension and value: count(*) counts customers.
    """
    df = _bundle(cur, a, "order_mix")
    total = pd.DataFrame([{
        "dimension": "total", "value": None, "customers": a.buyers, "orders": a.orders,
        "revenue": a.revenue,
    }])
    return pd.concat([df, total], ignore_index=True)


def order_mix(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, by: str = "channel") -> ChartData:
    """Completed orders and revenue by sales channel, order device or payment method.

    Out: value (None = not recorded), customers, orders, revenue, order_share,
    revenue_share, too_small; by revenue descending. n_customers counts filtered customers
    with a completed order (in the date range when there is one).
    """
    if by not in ORDER_MIX_BY:
        raise ValidationError(f"order mix is by {', '.join(ORDER_MIX_BY)}, not {by!r}")
    missing, a = _precheck(cur, flt, MIX_COLUMNS)
    if missing:
        return missing
    if not _has_orders(cur, a):
        return _unavailable(NO_ORDERS, MIX_COLUMNS)
    mixes = _order_mixes(cur, a)
    total = mixes[mixes["dimension"] == "total"].iloc[0]
    if pd.isna(total["orders"]) or not total["orders"]:
        return _unavailable(NO_ORDERS, MIX_COLUMNS)
    df = mixes[mixes["dimension"] == by][["value", "customers", "orders", "revenue"]].copy()
    df = _ints(df, "customers", "orders")
    df["order_share"] = df["orders"] / float(total["orders"])
    df["revenue_share"] = _share(df["revenue"], float(total["revenue"]))
    df = df.sort_values(["revenue", "value"], ascending=[False, True], na_position="last")
    return ChartData(
        _mark_small(df)[list(MIX_COLUMNS)].reset_index(drop=True), int(total["customers"])
    )


CATEGORY_COLUMNS = ("category", "customers", "revenue", "quantity", "revenue_share", "too_small")


def _range_categorised(cur: duckdb.DuckDBPyConnection, a: _Audience) -> int:
    """Filtered customers with items of a known category in the date range: those of the
    range's category rollup (completed orders of the range) with a category."""
    sql = (
        f"SELECT count(DISTINCT r.customer_id) AS n FROM {a.table('categories')} r "  # noqa: S608 - constant names
        f"WHERE r.category IS NOT NULL AND {a.member('r')}"
    )

    def build() -> tuple[str, dict[str, Any]]:
        a.rollups(cur, "categories")
        return sql, {}

    days = _range_days(cur, a, sessions=False)
    if days is not None:
        return int(_day_bundle(cur, a, days, "categorised").iloc[0]["n"])
    return int(_cached(cur, "range_categorised", a.key, build).iloc[0]["n"])


def category_mix(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Revenue by product category (value of the items of completed orders).

    Out: category (None = product or category unknown), customers, revenue (quantity x
    unit price), quantity, revenue_share, too_small; by revenue descending. n_customers
    counts filtered customers with items of a known category. Unavailable with NO_ITEMS
    when orders have no line items.
    """
    missing, a = _precheck(cur, flt, CATEGORY_COLUMNS)
    if missing:
        return missing
    if not _shop_fact(cur, a, "items", "SELECT EXISTS (SELECT 1 FROM customer_category_revenue)"):
        return _unavailable(NO_ITEMS if _has_orders(cur, a) else NO_ORDERS, CATEGORY_COLUMNS)
    df = _bundle(cur, a, "categories")
    n_customers = a.categorised if a.categorised is not None else _range_categorised(cur, a)
    total_revenue = float(df["revenue"].sum()) if len(df) else 0.0
    if not total_revenue:
        return _unavailable(NO_ORDERS, CATEGORY_COLUMNS)
    df = _ints(df.copy(), "customers", "quantity")
    df["revenue_share"] = df["revenue"] / total_revenue
    df = df.sort_values(["revenue", "category"], ascending=[False, True], na_position="last")
    return ChartData(_mark_small(df)[list(CATEGORY_COLUMNS)].reset_index(drop=True), n_customers)


WEEKDAY_HOUR_COLUMNS = ("weekday", "hour", "orders", "revenue")


def weekday_hour(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Completed orders by weekday (0 = Monday) and hour of day: all 7 x 24 cells.

    Out: weekday, hour, orders, revenue (0 in empty cells). n_customers counts filtered
    customers with a completed order (in the date range when there is one).
    """
    missing, a = _precheck(cur, flt, WEEKDAY_HOUR_COLUMNS)
    if missing:
        return missing
    if not _has_orders(cur, a):
        return _unavailable(NO_ORDERS, WEEKDAY_HOUR_COLUMNS)
    cells = _bundle(cur, a, "weekday_hour")
    n_customers = a.buyers
    if not len(cells) or not cells["orders"].sum():
        return _unavailable(NO_ORDERS, WEEKDAY_HOUR_COLUMNS)
    grid = pd.DataFrame([(d, h) for d in range(7) for h in range(24)], columns=["weekday", "hour"])
    cells = _ints(cells[["weekday", "hour", "orders", "revenue"]].copy(), "weekday", "hour")
    df = grid.merge(cells, on=["weekday", "hour"], how="left")
    df = _ints(df, "orders")
    df["revenue"] = df["revenue"].fillna(0.0)
    return ChartData(df, n_customers)


def _month_bounds(flt: CustomerFilter, q: _Sql, column: str) -> str:
    """Condition keeping the months (first days) a date range touches; TRUE without one."""
    conditions = []
    if flt.start:
        conditions.append(f"{column} >= date_trunc('month', CAST({q.bind(flt.start)} AS DATE))")
    if flt.end:
        conditions.append(f"{column} <= CAST({q.bind(flt.end)} AS DATE)")
    return " AND ".join(conditions) or "TRUE"


def _months(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, a: _Audience) -> tuple[pd.DataFrame, int]:
    """Customers and revenue per (first-order month, order month), and how many customers
    bought in the months kept (every month a date range touches)."""

    q = _Sql("m")  # joins the cube's bound values
    df = _bundle(cur, a, "months", _month_bounds(flt, q, "r.month"), q.params)
    if not flt.has_dates:
        return df, a.buyers
    if a.cube:  # the range's stats cube counts them
        sql = f"SELECT sum(month_buyers) AS n FROM {a.cube_table('stats')} WHERE {a.cube_where}"  # noqa: S608 - cube_where binds its values
        n = _cached(cur, "months_customers", a.key, lambda: (sql, dict(a.cube_params))).iloc[0]["n"]
        return df, 0 if pd.isna(n) else int(n)

    def count() -> tuple[str, dict[str, Any]]:
        q = _Sql()
        sql = (
            "SELECT count(DISTINCT customer_id) AS n FROM customer_order_months m "  # noqa: S608 - placeholders and constant conditions only
            f"WHERE {a.member('m', 'features')} AND {_month_bounds(flt, q, 'm.month')}"
        )
        return sql, q.params

    return df, int(_cached(cur, "months_customers", a.key, count).iloc[0]["n"])


NEW_RETURNING_COLUMNS = (
    "month", "new_revenue", "returning_revenue", "new_customers", "returning_customers",
)


def new_vs_returning_revenue(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Monthly revenue from new and from returning customers.

    A customer is new in the month of their first completed order ever, and returning in
    every later month they buy. Out: month (first day), new_revenue, returning_revenue,
    new_customers, returning_customers; months in order. With a date range, every month
    the range touches is kept whole.
    """
    missing, a = _precheck(cur, flt, NEW_RETURNING_COLUMNS)
    if missing:
        return missing
    if not _has_orders(cur, a):
        return _unavailable(NO_ORDERS, NEW_RETURNING_COLUMNS)
    rows, n_customers = _months(cur, flt, a)
    if rows.empty:
        return _unavailable(NO_ORDERS, NEW_RETURNING_COLUMNS)
    rows = rows.assign(new=rows["cohort"] == rows["month"])
    new = rows[rows["new"]].groupby("month")[["revenue", "customers"]].sum()
    back = rows[~rows["new"]].groupby("month")[["revenue", "customers"]].sum()
    df = pd.DataFrame(index=sorted(set(rows["month"])))
    df["new_revenue"] = new["revenue"]
    df["returning_revenue"] = back["revenue"]
    df["new_customers"] = new["customers"]
    df["returning_customers"] = back["customers"]
    df = df.fillna({"new_revenue": 0.0, "returning_revenue": 0.0})
    df = _ints(df, "new_customers", "returning_customers")
    df = df.rename_axis("month").reset_index()
    return ChartData(df[list(NEW_RETURNING_COLUMNS)], n_customers)


COHORT_COLUMNS = ("cohort", "months_since", "customers", "cohort_size", "retention", "too_small")


def cohort_retention(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Retention triangle: of the customers whose first completed order fell in a month
    (the cohort), the share who bought again N months later.

    Out: cohort (first day of the month), months_since (0 = the first month, always 1.0),
    customers (of the cohort buying that month), cohort_size, retention, too_small (marks
    cohorts under MIN_GROUP_SIZE). With a date range, the cohorts and the months counted
    are those the range touches.
    """
    missing, a = _precheck(cur, flt, COHORT_COLUMNS)
    if missing:
        return missing
    if not _has_orders(cur, a):
        return _unavailable(NO_ORDERS, COHORT_COLUMNS)
    rows, _ = _months(cur, flt, a)
    sizes = rows[rows["cohort"] == rows["month"]].set_index("cohort")["customers"]
    # Cohorts that started before the range have no month 0 in it: they are left out.
    df = rows[rows["cohort"].isin(sizes.index)].copy()
    if df.empty:
        return _unavailable(NO_ORDERS, COHORT_COLUMNS)
    cohort = pd.to_datetime(df["cohort"])
    month = pd.to_datetime(df["month"])
    df["months_since"] = (
        (month.dt.year - cohort.dt.year) * 12 + (month.dt.month - cohort.dt.month)
    ).astype("int64")
    df = _ints(df, "customers")
    df["cohort_size"] = df["cohort"].map(sizes).astype("int64")
    df["retention"] = df["customers"] / df["cohort_size"]
    df = _mark_small(df, "cohort_size").sort_values(["cohort", "months_since"])
    return ChartData(df[list(COHORT_COLUMNS)].reset_index(drop=True), int(sizes.sum()))


# ---------------------------------------------------------------- customers

_BEST_CANDIDATES = 5000
BEST_BY: dict[str, str] = {
    "revenue": "monetary",
    "frequency": "frequency",
    "aov": "average_order_value",
    "tenure": "tenure_days",
}
BEST_COLUMNS = (
    "customer_id", "monetary", "frequency", "average_order_value", "tenure_days",
    "recency_days", "rfm_group", "country",
)


def best_customers(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, by: str = "revenue", n: int = 20
) -> ChartData:
    """The top `n` filtered customers by revenue, frequency, AOV or tenure (BEST_BY keys).

    Out: BEST_COLUMNS, best first (ties by customer id). Customers without a value for the
    measure (no order for AOV) are left out. n_customers counts the filtered customers.
    """
    if by not in BEST_BY:
        raise ValidationError(f"best customers by {', '.join(BEST_BY)}, not {by!r}")
    if not 1 <= n <= 10_000:
        raise ValidationError(f"the number of best customers runs from 1 to 10,000, got {n}")
    column = BEST_BY[by]
    missing, a = _precheck(cur, flt, BEST_COLUMNS)
    if missing:
        return missing
    details = f"""
        SELECT f.customer_id, f.monetary, f.frequency, f.average_order_value, f.tenure_days,
               f.recency_days, s.rfm_group, c.country
        FROM top f
        JOIN analysis_customers c USING (customer_id)
        LEFT JOIN customer_segments s USING (customer_id)
        ORDER BY f.{column} DESC, f.customer_id
    """  # noqa: S608 - column from BEST_BY
    if not a.cube:
        sql = f"""
            WITH top AS (SELECT * FROM customer_features f
                         WHERE f.{column} IS NOT NULL AND {a.member("f", "features")}
                         ORDER BY f.{column} DESC, f.customer_id LIMIT {int(n)})
        """ + details  # noqa: S608 - column from BEST_BY; member() a constant condition; n an int
        df = _cached(cur, "best", f"{a.key}|{column}|{n}", lambda: (sql, {}))
        return ChartData(df, a.customers)
    # The cubes have no customers. The best customers overall are the only candidates
    # worth checking first: if at least n of them pass the filter, the n best that do
    # are the answer (anyone else ranks below all of them); if not, all are checked.
    ranked = f"(SELECT * FROM customer_features WHERE {column} IS NOT NULL ORDER BY {column} DESC, customer_id LIMIT {_BEST_CANDIDATES})"  # noqa: S608 - column from BEST_BY
    for features in (ranked, "customer_features"):
        q = _Sql()
        sql = f"""
            WITH top AS (SELECT * FROM customer_features f
                         WHERE f.{column} IS NOT NULL
                           AND f.customer_id IN (SELECT customer_id FROM ({_audience_sql(flt, q, features, a.ranges)}))
                         ORDER BY f.{column} DESC, f.customer_id LIMIT {int(n)})
        """ + details  # noqa: S608 - column from BEST_BY; the audience query binds its values; n an int
        def statement(sql: str = sql, params: dict[str, Any] = q.params) -> tuple[str, dict[str, Any]]:
            return sql, params

        df = _cached(cur, f"best_{features == ranked}", f"{a.key}|{column}|{n}", statement)
        if len(df) >= n or features != ranked:
            break
    return ChartData(df, a.customers)


AUDIENCE_COLUMNS = ("customer_id", "email")


def audience_export(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """The filtered customers for an audience export, by customer id.

    Out: customer_id, email. Only consenting customers are ever listed: the consent view is
    read afresh on every export, never from a cache. The email is given only when present
    and the customer opted in to the newsletter (marketing consent), else it is empty.
    Name the file with audience_file_name(flt).
    """
    state = _state(cur)
    if state is None:
        return _unavailable(NO_FEATURES, AUDIENCE_COLUMNS)
    ranges = _ensure_range(cur, state, flt)[0] if flt.has_dates else _LOCAL_RANGES
    q = _Sql()
    sql = (
        "SELECT c.customer_id, CASE WHEN c.newsletter_opt_in "  # noqa: S608 - the audience query binds every value
        "AND nullif(trim(c.email), '') IS NOT NULL THEN c.email END AS email "
        f"FROM ({_audience_sql(flt, q, ranges=ranges)}) a JOIN analysis_customers c USING (customer_id) "
        "ORDER BY c.customer_id"
    )
    df = fetch_df(cur, sql, q.params)
    if df.empty:
        return _unavailable(NO_MATCHING_CUSTOMERS, AUDIENCE_COLUMNS)
    return ChartData(df, len(df))


def audience_file_name(flt: CustomerFilter, today: date | None = None) -> str:
    """CSV file name that says which customers are in it, e.g. 'audience_FR_champions_2026-11-23.csv'."""
    day = (today or date.today()).isoformat()
    return f"audience_{flt.slug()}_{day}.csv"


# ---------------------------------------------------------------- compare mode

COMPARE_COLUMNS = (
    "breakdown", "value", "metric", "a", "b", "customers_a", "customers_b", "index",
    "difference", "too_small",
)


@dataclass(frozen=True)
class Comparison:
    """Two filters side by side over every breakdown.

    `rows`: one row per breakdown and value with the metric of each side (`a`, `b`: a
    share of customers, orders or revenue, or a rate), the customers behind it on each side,
    `index` = 100 * a / b (100 = same as the base), `difference` = a - b, and `too_small`
    when either side has fewer than MIN_GROUP_SIZE customers behind the value.
    `standouts`: the rows that are not too small, largest difference first (by
    |ln(index / 100)|, so that half and double count the same). `unavailable`: breakdown ->
    reason code for breakdowns the data cannot give.
    """

    rows: pd.DataFrame
    standouts: pd.DataFrame
    n_a: int
    n_b: int
    unavailable: dict[str, str] = field(default_factory=dict)

    def breakdown(self, key: str) -> pd.DataFrame:
        return self.rows[self.rows["breakdown"] == key].reset_index(drop=True)


def _compare_parts(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter
) -> dict[str, tuple[ChartData, str, str, str | None]]:
    """breakdown key -> (chart, value column, metric column, customers column or None)."""
    parts: dict[str, tuple[ChartData, str, str, str | None]] = {}
    for name in DEMOGRAPHIC_FIELDS:
        parts[name] = (demographic_breakdown(cur, flt, name), "value", "share", "customers")
    parts["rfm_group"] = (rfm_groups(cur, flt), "rfm_group", "share", "customers")
    parts["segment"] = (behaviour_segments(cur, flt), "segment", "share", "customers")
    for by in ORDER_MIX_BY:
        parts[f"order_{by}"] = (order_mix(cur, flt, by), "value", "order_share", "customers")
    parts["category"] = (category_mix(cur, flt), "category", "revenue_share", "customers")
    for by in SESSION_BREAKDOWNS:
        parts[f"cart_abandonment_{by}"] = (
            cart_abandonment(cur, flt, by), "value", "abandonment_rate", "customers",
        )
    parts["funnel"] = (funnel(cur, flt), "step", "share_of_sessions", None)
    return parts


def compare(
    cur: duckdb.DuckDBPyConnection, a: CustomerFilter, b: CustomerFilter | None = None
) -> Comparison:
    """Compare filter `a` with filter `b`, or with everyone (in a's date range) when b is None."""
    base = b if b is not None else CustomerFilter(start=a.start, end=a.end)
    parts_a = _compare_parts(cur, a)
    audience_a = _audience(cur, a)
    parts_b = _compare_parts(cur, base)
    audience_b = _audience(cur, base)
    n_a = audience_a.customers if audience_a else 0
    n_b = audience_b.customers if audience_b else 0
    frames: list[pd.DataFrame] = []
    unavailable: dict[str, str] = {}
    for key, (chart_a, value_col, metric, customers_col) in parts_a.items():
        chart_b = parts_b[key][0]
        if not chart_a.available or not chart_b.available:
            unavailable[key] = (chart_a.reason if not chart_a.available else chart_b.reason) or ""
            continue
        left = pd.DataFrame({
            "value": chart_a.data[value_col],
            "a": chart_a.data[metric],
            "customers_a": (
                chart_a.data[customers_col] if customers_col else chart_a.n_customers
            ),
        })
        right = pd.DataFrame({
            "value": chart_b.data[value_col],
            "b": chart_b.data[metric],
            "customers_b": (
                chart_b.data[customers_col] if customers_col else chart_b.n_customers
            ),
        })
        merged = left.merge(right, on="value", how="outer")
        merged.insert(0, "breakdown", key)
        merged.insert(2, "metric", metric)
        frames.append(merged)
    columns = list(COMPARE_COLUMNS)
    if not frames:
        empty = pd.DataFrame(columns=columns)
        return Comparison(empty, empty, n_a, n_b, unavailable)
    rows = pd.concat(frames, ignore_index=True)
    for side in ("customers_a", "customers_b"):
        rows[side] = rows[side].fillna(0).astype("int64")
    rows["a"] = rows["a"].astype("float64").fillna(0.0)
    rows["b"] = rows["b"].astype("float64").fillna(0.0)
    rows["index"] = 100.0 * rows["a"] / rows["b"].where(rows["b"] > 0)
    rows["difference"] = rows["a"] - rows["b"]
    rows["too_small"] = (rows["customers_a"] < MIN_GROUP_SIZE) | (
        rows["customers_b"] < MIN_GROUP_SIZE
    )
    rows = rows[columns]
    standouts = rows[~rows["too_small"] & (rows["a"] > 0) & (rows["b"] > 0)].copy()
    standouts["_strength"] = [abs(math.log(i / 100.0)) for i in standouts["index"]]
    standouts = (
        standouts.sort_values(["_strength", "breakdown"], ascending=[False, True])
        .drop(columns="_strength")
        .reset_index(drop=True)
    )
    return Comparison(rows, standouts, n_a, n_b, unavailable)
