"""Segment explorer: a customer filter, and one small aggregated result per chart.

Every function takes a cursor and a CustomerFilter and returns a ChartData: a DataFrame of
a few rows aggregated in DuckDB, the number of customers it is built on, and, when the data
lacks what the chart needs, `available=False` with a reason code instead of zeros.

Charts read the per-customer rollups written by `features.compute_customer_features`,
which keeps a filter change cheap on a million customers. A date range cannot be answered
from lifetime rollups: then the charts of orders and sessions read the raw tables
restricted to the range, the monthly charts (new vs returning revenue, cohorts) keep every
month the range touches, and the RFM charts describe the customers active in the range
with their RFM as of the reference date.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from persona_engine.errors import ValidationError
from persona_engine.features import shop_has_sessions
from persona_engine.segments import (
    BEHAVIOUR_SEGMENTS,
    INTEREST_PREFIX,
    RFM_GROUPS,
    rfm_group_for,
)
from persona_engine.store import fetch_df, fetch_value

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

    start/end: a date range (both inclusive) on orders and sessions: customers who placed an
    order or visited in it, and the charts of orders and sessions count those in it.
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


# ---------------------------------------------------------------- SQL assembly


class _Sql:
    """Collects the bound values of one statement; `bind` returns their placeholder."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
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


_ACTIVE_TABLE = "explorer_active_customers"
_ACTIVE_KEY_TABLE = "explorer_active_key"


def _active_customers_table(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> str:
    """Name of a temporary table of the customers with an order or a session in the range.

    Finding them scans orders and sessions, which every chart of a page would otherwise
    repeat: the set is kept in a temporary table of this cursor (temporary tables are
    private to a cursor and work on read-only databases), rebuilt when the range or the
    feature computation changes.
    """
    start, end = _bounds(flt)
    computed = fetch_value(cur, "SELECT max(computed_at) FROM customer_features")
    key = f"{start.isoformat()}|{end.isoformat()}|{computed}"
    try:
        current = fetch_value(cur, f"SELECT key FROM {_ACTIVE_KEY_TABLE}")  # noqa: S608 - constant name
    except duckdb.CatalogException:
        current = None
    if current != key:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_ACTIVE_TABLE} AS "  # noqa: S608 - constant name
            "SELECT customer_id FROM analysis_orders WHERE ordered_at >= $s AND ordered_at < $e "
            "UNION "
            "SELECT customer_id FROM analysis_sessions WHERE started_at >= $s AND started_at < $e",
            {"s": start, "e": end},
        )
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {_ACTIVE_KEY_TABLE} AS SELECT $k AS key", {"k": key})  # noqa: S608
    return _ACTIVE_TABLE


def _audience_sql(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, q: _Sql) -> str:
    """SELECT of the filtered customers' ids (consenting customers with features).

    The consent view is joined on every query, so a customer who withdrew consent since the
    features were computed disappears at once.
    """
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
            where.append(
                f"list_has_any(s.segments, CAST({q.bind(list(flt.segments))} AS VARCHAR[]))"
            )
    if flt.persona_ids:
        where.append(
            "f.customer_id IN (SELECT customer_id FROM persona_members "  # noqa: S608 - placeholder only
            f"WHERE list_contains({q.bind(list(flt.persona_ids))}, persona_id))"
        )
    if flt.has_dates:
        active = _active_customers_table(cur, flt)
        where.append(f"f.customer_id IN (SELECT customer_id FROM {active})")  # noqa: S608 - constant name
    # Every fragment above is a code constant or a placeholder: values are bound.
    sql = "SELECT f.customer_id FROM customer_features f " + " ".join(joins)  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql


def _with_audience(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, q: _Sql, body: str) -> str:
    # Fragments are code constants; every value went through q.bind.
    return "WITH audience AS (" + _audience_sql(cur, flt, q) + ")\n" + body


def _features_ready(cur: duckdb.DuckDBPyConnection) -> bool:
    return bool(fetch_value(cur, "SELECT EXISTS (SELECT 1 FROM customer_features)"))


def _audience_size(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> int:
    q = _Sql()
    sql = _with_audience(cur, flt, q, "SELECT count(*) FROM audience")
    return int(fetch_value(cur, sql, q.params) or 0)


def _precheck(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, columns: Sequence[str]) -> tuple[ChartData | None, int]:
    """The unavailable result when features are missing or the filter keeps nobody."""
    if not _features_ready(cur):
        return _unavailable(NO_FEATURES, columns), 0
    n = _audience_size(cur, flt)
    if n == 0:
        return _unavailable(NO_MATCHING_CUSTOMERS, columns), 0
    return None, n


def _mark_small(df: pd.DataFrame, column: str = "customers") -> pd.DataFrame:
    df = df.copy()
    df["too_small"] = df[column].fillna(0) < MIN_GROUP_SIZE
    return df


def _share(part: pd.Series, total: float) -> pd.Series:
    return part / total if total else part * float("nan")


# ---------------------------------------------------------------- summary and options


SUMMARY_COLUMNS = ("customers", "share_of_base", "buyers", "orders", "revenue", "average_order_value")


def audience_summary(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Headline numbers of the filtered customers, one row.

    Out: customers, share_of_base (of all consenting customers with features), buyers
    (customers with a completed order), orders and revenue (completed, lifetime as of the
    reference date), average_order_value.
    """
    missing, n = _precheck(cur, flt, SUMMARY_COLUMNS)
    if missing:
        return missing
    q = _Sql()
    sql = _with_audience(
        cur,
        flt,
        q,
        """
        SELECT count(*) AS customers,
               count(*) / (SELECT count(*) FROM customer_features f
                           JOIN analysis_customers c USING (customer_id)) AS share_of_base,
               count(*) FILTER (f.frequency > 0) AS buyers,
               sum(f.frequency) AS orders,
               sum(f.monetary) AS revenue,
               sum(f.monetary) / nullif(sum(f.frequency), 0) AS average_order_value
        FROM audience a JOIN customer_features f USING (customer_id)
        """,
    )
    return ChartData(fetch_df(cur, sql, q.params), n)


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

    segments_present = set(
        distinct("SELECT DISTINCT unnest(segments) FROM customer_segments")
    )
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
    "interests": ("unnest(c.interests)", "interests", ()),
}
DEMOGRAPHIC_COLUMNS = ("value", "customers", "share", "too_small")


def _field_present(cur: duckdb.DuckDBPyConnection, column: str) -> bool:
    condition = f"len({column}) > 0" if column == "interests" else f"{column} IS NOT NULL"
    sql = f"SELECT EXISTS (SELECT 1 FROM analysis_customers WHERE {condition})"  # noqa: S608 - column from DEMOGRAPHIC_FIELDS
    return bool(fetch_value(cur, sql))


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
    expr, column, bands = DEMOGRAPHIC_FIELDS[field_name]
    missing, n = _precheck(cur, flt, DEMOGRAPHIC_COLUMNS)
    if missing:
        return missing
    if not _field_present(cur, column):
        return _unavailable(FIELD_MISSING, DEMOGRAPHIC_COLUMNS, n)
    q = _Sql()
    if field_name == "interests":
        body = (
            "SELECT unnest(CASE WHEN len(c.interests) > 0 THEN c.interests ELSE [NULL] END) "
            "AS value, count(*) AS customers "
            "FROM audience a JOIN analysis_customers c USING (customer_id) GROUP BY 1"
        )
    else:
        body = (
            f"SELECT {expr} AS value, count(*) AS customers "  # noqa: S608 - expr from DEMOGRAPHIC_FIELDS
            "FROM audience a JOIN analysis_customers c USING (customer_id) GROUP BY 1"
        )
    df = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
    df["customers"] = df["customers"].astype("int64")
    df["share"] = df["customers"] / n
    if bands:
        order = {b: i for i, b in enumerate(bands)}
        df["_order"] = df["value"].map(order).fillna(len(bands))
        df = df.sort_values("_order").drop(columns="_order")
    else:
        df = df.sort_values(["customers", "value"], ascending=[False, True], na_position="last")
    return ChartData(_mark_small(df).reset_index(drop=True), n)


# ---------------------------------------------------------------- RFM

RFM_GRID_COLUMNS = ("r_score", "f_score", "rfm_group", "customers", "revenue", "revenue_share", "too_small")
RFM_GROUP_COLUMNS = ("rfm_group", "customers", "share", "revenue", "revenue_share", "too_small")


def rfm_grid(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """The R x F heatmap: customers and revenue in each of the 25 cells.

    Out: r_score, f_score (1-5; 5 = most recent / most orders), rfm_group of the cell,
    customers, revenue (lifetime revenue of completed orders as of the reference date),
    revenue_share, too_small. All 25 cells are present, empty ones with 0. n_customers
    counts the filtered customers with an RFM score (buyers).
    """
    missing, _ = _precheck(cur, flt, RFM_GRID_COLUMNS)
    if missing:
        return missing
    q = _Sql()
    body = """
        SELECT s.r_score, s.f_score, count(*) AS customers, sum(f.monetary) AS revenue
        FROM audience a
        JOIN customer_segments s USING (customer_id)
        JOIN customer_features f USING (customer_id)
        WHERE s.r_score IS NOT NULL
        GROUP BY ALL
    """
    cells = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
    scored = int(cells["customers"].sum()) if len(cells) else 0
    if scored == 0:
        return _unavailable(NO_BUYERS, RFM_GRID_COLUMNS)
    grid = pd.DataFrame(
        [(r, f) for r in range(5, 0, -1) for f in range(1, 6)], columns=["r_score", "f_score"]
    )
    cells["r_score"] = cells["r_score"].astype("int64")
    cells["f_score"] = cells["f_score"].astype("int64")
    df = grid.merge(cells, on=["r_score", "f_score"], how="left")
    df["customers"] = df["customers"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0)
    df["rfm_group"] = [rfm_group_for(r, f) for r, f in zip(df["r_score"], df["f_score"], strict=True)]
    df["revenue_share"] = _share(df["revenue"], float(df["revenue"].sum()))
    return ChartData(_mark_small(df)[list(RFM_GRID_COLUMNS)], scored)


def rfm_groups(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Size and revenue share of each named RFM group, all eleven in RFM_GROUPS order.

    Out: rfm_group, customers, share (of the scored filtered customers), revenue,
    revenue_share, too_small. n_customers counts the scored filtered customers.
    """
    missing, _ = _precheck(cur, flt, RFM_GROUP_COLUMNS)
    if missing:
        return missing
    q = _Sql()
    body = """
        SELECT s.rfm_group, count(*) AS customers, sum(f.monetary) AS revenue
        FROM audience a
        JOIN customer_segments s USING (customer_id)
        JOIN customer_features f USING (customer_id)
        WHERE s.rfm_group IS NOT NULL
        GROUP BY ALL
    """
    groups = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
    scored = int(groups["customers"].sum()) if len(groups) else 0
    if scored == 0:
        return _unavailable(NO_BUYERS, RFM_GROUP_COLUMNS)
    df = pd.DataFrame({"rfm_group": list(RFM_GROUPS)}).merge(groups, on="rfm_group", how="left")
    df["customers"] = df["customers"].fillna(0).astype("int64")
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
    missing, n = _precheck(cur, flt, SEGMENT_COLUMNS)
    if missing:
        return missing
    q = _Sql()
    body = """
        SELECT segment, count(*) AS customers
        FROM (SELECT unnest(s.segments) AS segment
              FROM audience a JOIN customer_segments s USING (customer_id))
        GROUP BY 1
    """
    found = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
    base = pd.DataFrame({"segment": list(BEHAVIOUR_SEGMENTS)})
    interests = found[found["segment"].str.startswith(INTEREST_PREFIX)].sort_values(
        ["customers", "segment"], ascending=[False, True]
    )
    df = pd.concat(
        [base.merge(found, on="segment", how="left"), interests], ignore_index=True
    )
    df["customers"] = df["customers"].fillna(0).astype("int64")
    df["share"] = df["customers"] / n
    return ChartData(_mark_small(df)[list(SEGMENT_COLUMNS)], n)


# ---------------------------------------------------------------- sessions

FUNNEL_STEPS: tuple[str, ...] = ("sessions", "product_view", "cart", "checkout", "order")
FUNNEL_COLUMNS = ("step", "sessions", "share_of_sessions", "step_rate")


def funnel(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Sessions -> product view -> cart -> checkout -> order, for the filtered customers.

    Out: step (FUNNEL_STEPS), sessions reaching the step, share_of_sessions (of all their
    sessions), step_rate (of the previous step). "order" counts sessions whose order is
    completed, as the conversion KPI does. n_customers counts filtered customers with a
    session. Unavailable with NO_SESSIONS when the shop has no session data.
    """
    missing, _ = _precheck(cur, flt, FUNNEL_COLUMNS)
    if missing:
        return missing
    if not shop_has_sessions(cur):
        return _unavailable(NO_SESSIONS, FUNNEL_COLUMNS)
    q = _Sql()
    if flt.has_dates:
        start, end = _bounds(flt)
        body = f"""
            SELECT count(DISTINCT customer_id) AS customers, count(*) AS sessions,
                   count(*) FILTER (viewed_product) AS product_view,
                   count(*) FILTER (added_to_cart) AS cart,
                   count(*) FILTER (checkout_started) AS checkout,
                   count(*) FILTER (order_id IN (SELECT order_id FROM orders
                                                 WHERE status = 'completed')) AS "order"
            FROM analysis_sessions
            WHERE started_at >= {q.bind(start)} AND started_at < {q.bind(end)}
              AND customer_id IN (SELECT customer_id FROM audience)
        """  # noqa: S608 - only placeholders are formatted in
    else:
        body = """
            SELECT count(DISTINCT customer_id) AS customers, sum(sessions) AS sessions,
                   sum(product_view_sessions) AS product_view, sum(cart_sessions) AS cart,
                   sum(checkout_sessions) AS checkout, sum(order_sessions) AS "order"
            FROM customer_session_devices
            WHERE customer_id IN (SELECT customer_id FROM audience)
        """
    row = fetch_df(cur, _with_audience(cur, flt, q, body), q.params).iloc[0]
    customers = 0 if pd.isna(row["customers"]) else int(row["customers"])
    counts = [0 if pd.isna(row[s]) else int(row[s]) for s in FUNNEL_STEPS]
    total = counts[0]
    df = pd.DataFrame({"step": list(FUNNEL_STEPS), "sessions": counts})
    df["share_of_sessions"] = _share(df["sessions"].astype("float64"), float(total))
    previous = pd.Series([total, *counts[:-1]], dtype="float64")
    df["step_rate"] = [c / p if p else float("nan") for c, p in zip(counts, previous, strict=True)]
    df.loc[0, "step_rate"] = 1.0 if total else float("nan")
    return ChartData(df, customers)


def _split_total(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Separate the rows of a GROUPING SETS ((value), ()) query from its grand-total row."""
    total = df[df["is_total"] == 1]
    rows = df[df["is_total"] == 0].drop(columns="is_total").reset_index(drop=True)
    return rows, (total.iloc[0] if len(total) else None)


CART_COLUMNS = (
    "value", "customers", "cart_sessions", "abandoned_sessions", "abandonment_rate", "too_small",
)
# by -> (rollup table, column); identifiers come only from here.
_CART_BY = {
    "device": ("customer_session_devices", "device"),
    "source": ("customer_session_sources", "source"),
}


def cart_abandonment(
    cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, by: str = "device"
) -> ChartData:
    """Cart abandonment by session device or by session source.

    Out: value (device or source; None = not recorded), customers (with a cart session),
    cart_sessions, abandoned_sessions (cart and no completed order), abandonment_rate,
    too_small; by abandoned_sessions descending. n_customers counts filtered customers with
    a cart session. Unavailable with NO_SESSIONS without session data.
    """
    if by not in _CART_BY:
        raise ValidationError(f"cart abandonment is by 'device' or 'source', not {by!r}")
    table, column = _CART_BY[by]
    missing, _ = _precheck(cur, flt, CART_COLUMNS)
    if missing:
        return missing
    if not shop_has_sessions(cur):
        return _unavailable(NO_SESSIONS, CART_COLUMNS)
    q = _Sql()
    if flt.has_dates:
        start, end = _bounds(flt)
        body = f"""
            SELECT {column} AS value, grouping({column}) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   count(*) AS cart_sessions,
                   count(*) FILTER (NOT coalesce(order_id IN (SELECT order_id FROM orders
                                    WHERE status = 'completed'), false)) AS abandoned_sessions
            FROM analysis_sessions
            WHERE added_to_cart
              AND started_at >= {q.bind(start)} AND started_at < {q.bind(end)}
              AND customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS (({column}), ())
        """  # noqa: S608 - column from _CART_BY; values bound
    else:
        body = f"""
            SELECT {column} AS value, grouping({column}) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   sum(cart_sessions) AS cart_sessions,
                   sum(abandoned_cart_sessions) AS abandoned_sessions
            FROM {table}
            WHERE cart_sessions > 0 AND customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS (({column}), ())
        """  # noqa: S608 - table and column from _CART_BY
    df, total = _split_total(fetch_df(cur, _with_audience(cur, flt, q, body), q.params))
    n_customers = int(total["customers"]) if total is not None else 0
    for c in ("customers", "cart_sessions", "abandoned_sessions"):
        df[c] = df[c].fillna(0).astype("int64")
    df["abandonment_rate"] = df["abandoned_sessions"] / df["cart_sessions"].where(
        df["cart_sessions"] > 0
    )
    df = df.sort_values(
        ["abandoned_sessions", "value"], ascending=[False, True], na_position="last"
    )
    return ChartData(_mark_small(df)[list(CART_COLUMNS)].reset_index(drop=True), n_customers)


# ---------------------------------------------------------------- orders

MIX_COLUMNS = (
    "value", "customers", "orders", "revenue", "order_share", "revenue_share", "too_small",
)
ORDER_MIX_BY: tuple[str, ...] = ("channel", "device", "payment_method")


def _no_orders(cur: duckdb.DuckDBPyConnection) -> bool:
    return not fetch_value(cur, "SELECT EXISTS (SELECT 1 FROM customer_order_mix)")


def order_mix(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, by: str = "channel") -> ChartData:
    """Completed orders and revenue by sales channel, order device or payment method.

    Out: value (None = not recorded), customers, orders, revenue, order_share,
    revenue_share, too_small; by revenue descending. n_customers counts filtered customers
    with a completed order (in the date range when there is one).
    """
    if by not in ORDER_MIX_BY:
        raise ValidationError(f"order mix is by {', '.join(ORDER_MIX_BY)}, not {by!r}")
    missing, _ = _precheck(cur, flt, MIX_COLUMNS)
    if missing:
        return missing
    if _no_orders(cur):
        return _unavailable(NO_ORDERS, MIX_COLUMNS)
    q = _Sql()
    if flt.has_dates:
        start, end = _bounds(flt)
        body = f"""
            SELECT {by} AS value, grouping({by}) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   count(*) AS orders, sum(amount) AS revenue
            FROM analysis_orders
            WHERE status = 'completed'
              AND ordered_at >= {q.bind(start)} AND ordered_at < {q.bind(end)}
              AND customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS (({by}), ())
        """  # noqa: S608 - `by` checked against ORDER_MIX_BY; values bound
    else:
        body = f"""
            SELECT {by} AS value, grouping({by}) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   sum(orders) AS orders, sum(revenue) AS revenue
            FROM customer_order_mix
            WHERE customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS (({by}), ())
        """  # noqa: S608 - `by` checked against ORDER_MIX_BY
    df, total = _split_total(fetch_df(cur, _with_audience(cur, flt, q, body), q.params))
    if total is None or not total["orders"]:
        return _unavailable(NO_ORDERS, MIX_COLUMNS)
    df["customers"] = df["customers"].astype("int64")
    df["orders"] = df["orders"].astype("int64")
    df["order_share"] = df["orders"] / float(total["orders"])
    df["revenue_share"] = _share(df["revenue"], float(total["revenue"]))
    df = df.sort_values(["revenue", "value"], ascending=[False, True], na_position="last")
    return ChartData(_mark_small(df)[list(MIX_COLUMNS)].reset_index(drop=True), int(total["customers"]))


CATEGORY_COLUMNS = ("category", "customers", "revenue", "quantity", "revenue_share", "too_small")


def category_mix(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Revenue by product category (value of the items of completed orders).

    Out: category (None = product or category unknown), customers, revenue (quantity x
    unit price), quantity, revenue_share, too_small; by revenue descending. Unavailable
    with NO_ITEMS when orders have no line items.
    """
    missing, _ = _precheck(cur, flt, CATEGORY_COLUMNS)
    if missing:
        return missing
    if not fetch_value(cur, "SELECT EXISTS (SELECT 1 FROM customer_category_revenue)"):
        return _unavailable(NO_ORDERS if _no_orders(cur) else NO_ITEMS, CATEGORY_COLUMNS)
    q = _Sql()
    if flt.has_dates:
        start, end = _bounds(flt)
        body = f"""
            SELECT p.category, grouping(p.category) AS is_total,
                   count(DISTINCT o.customer_id) AS customers,
                   sum(i.quantity * i.unit_price) AS revenue, sum(i.quantity) AS quantity
            FROM analysis_orders o
            JOIN order_items i ON i.order_id = o.order_id
            LEFT JOIN products p ON p.product_id = i.product_id
            WHERE o.status = 'completed'
              AND o.ordered_at >= {q.bind(start)} AND o.ordered_at < {q.bind(end)}
              AND o.customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS ((p.category), ())
        """  # noqa: S608 - only placeholders are formatted in
    else:
        body = """
            SELECT category, grouping(category) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   sum(revenue) AS revenue, sum(quantity) AS quantity
            FROM customer_category_revenue
            WHERE customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS ((category), ())
        """
    df, total = _split_total(fetch_df(cur, _with_audience(cur, flt, q, body), q.params))
    if total is None or not total["revenue"]:
        return _unavailable(NO_ORDERS, CATEGORY_COLUMNS)
    df["customers"] = df["customers"].astype("int64")
    df["quantity"] = df["quantity"].astype("int64")
    df["revenue_share"] = df["revenue"] / float(total["revenue"])
    df = df.sort_values(["revenue", "category"], ascending=[False, True], na_position="last")
    return ChartData(_mark_small(df)[list(CATEGORY_COLUMNS)].reset_index(drop=True), int(total["customers"]))


WEEKDAY_HOUR_COLUMNS = ("weekday", "hour", "orders", "revenue")


def weekday_hour(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Completed orders by weekday (0 = Monday) and hour of day: all 7 x 24 cells.

    Out: weekday, hour, orders, revenue (0 in empty cells). n_customers counts filtered
    customers with a completed order.
    """
    missing, _ = _precheck(cur, flt, WEEKDAY_HOUR_COLUMNS)
    if missing:
        return missing
    if _no_orders(cur):
        return _unavailable(NO_ORDERS, WEEKDAY_HOUR_COLUMNS)
    q = _Sql()
    if flt.has_dates:
        start, end = _bounds(flt)
        body = f"""
            SELECT isodow(ordered_at) - 1 AS weekday, hour(ordered_at) AS hour,
                   grouping(isodow(ordered_at) - 1, hour(ordered_at)) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   count(*) AS orders, sum(amount) AS revenue
            FROM analysis_orders
            WHERE status = 'completed'
              AND ordered_at >= {q.bind(start)} AND ordered_at < {q.bind(end)}
              AND customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS ((isodow(ordered_at) - 1, hour(ordered_at)), ())
        """  # noqa: S608 - only placeholders are formatted in
    else:
        body = """
            SELECT weekday, hour, grouping(weekday, hour) AS is_total,
                   count(DISTINCT customer_id) AS customers,
                   sum(orders) AS orders, sum(revenue) AS revenue
            FROM customer_order_hours
            WHERE customer_id IN (SELECT customer_id FROM audience)
            GROUP BY GROUPING SETS ((weekday, hour), ())
        """
    raw = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
    raw["is_total"] = (raw["is_total"] > 0).astype("int64")
    cells, total = _split_total(raw)
    if total is None or not total["orders"]:
        return _unavailable(NO_ORDERS, WEEKDAY_HOUR_COLUMNS)
    grid = pd.DataFrame([(d, h) for d in range(7) for h in range(24)], columns=["weekday", "hour"])
    cells["weekday"] = cells["weekday"].astype("int64")
    cells["hour"] = cells["hour"].astype("int64")
    df = grid.merge(cells[["weekday", "hour", "orders", "revenue"]], on=["weekday", "hour"], how="left")
    df["orders"] = df["orders"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0)
    return ChartData(df, int(total["customers"]))


def _month_bounds(flt: CustomerFilter, q: _Sql, column: str) -> str:
    """Condition keeping the months (first days) a date range touches; TRUE without one."""
    conditions = []
    if flt.start:
        conditions.append(f"{column} >= date_trunc('month', CAST({q.bind(flt.start)} AS DATE))")
    if flt.end:
        conditions.append(f"{column} <= CAST({q.bind(flt.end)} AS DATE)")
    return " AND ".join(conditions) or "TRUE"


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
    missing, _ = _precheck(cur, flt, NEW_RETURNING_COLUMNS)
    if missing:
        return missing
    if _no_orders(cur):
        return _unavailable(NO_ORDERS, NEW_RETURNING_COLUMNS)
    q = _Sql()
    months = _month_bounds(flt, q, "m.month")
    body = f"""
        SELECT month, grouping(month) AS is_total,
               sum(revenue) FILTER (is_new) AS new_revenue,
               sum(revenue) FILTER (NOT is_new) AS returning_revenue,
               count(DISTINCT customer_id) FILTER (is_new) AS new_customers,
               count(DISTINCT customer_id) FILTER (NOT is_new) AS returning_customers,
               count(DISTINCT customer_id) AS customers
        FROM (SELECT m.customer_id, m.month, m.revenue,
                     m.month = CAST(date_trunc('month', f.first_order_at) AS DATE) AS is_new
              FROM customer_order_months m
              JOIN customer_features f USING (customer_id)
              WHERE m.customer_id IN (SELECT customer_id FROM audience) AND {months})
        GROUP BY GROUPING SETS ((month), ())
    """  # noqa: S608 - only placeholders and constant column names are formatted in
    df, total = _split_total(fetch_df(cur, _with_audience(cur, flt, q, body), q.params))
    if total is None or not total["customers"]:
        return _unavailable(NO_ORDERS, NEW_RETURNING_COLUMNS)
    for c in ("new_revenue", "returning_revenue"):
        df[c] = df[c].fillna(0.0)
    for c in ("new_customers", "returning_customers"):
        df[c] = df[c].fillna(0).astype("int64")
    df = df.sort_values("month").reset_index(drop=True)
    return ChartData(df[list(NEW_RETURNING_COLUMNS)], int(total["customers"]))


COHORT_COLUMNS = ("cohort", "months_since", "customers", "cohort_size", "retention", "too_small")


def cohort_retention(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """Retention triangle: of the customers whose first completed order fell in a month
    (the cohort), the share who bought again N months later.

    Out: cohort (first day of the month), months_since (0 = the first month, always 1.0),
    customers (of the cohort buying that month), cohort_size, retention, too_small (marks
    cohorts under MIN_GROUP_SIZE). With a date range, the cohorts and the months counted
    are those the range touches.
    """
    missing, _ = _precheck(cur, flt, COHORT_COLUMNS)
    if missing:
        return missing
    if _no_orders(cur):
        return _unavailable(NO_ORDERS, COHORT_COLUMNS)
    q = _Sql()
    cohort_months = _month_bounds(flt, q, "c.cohort")
    active_months = _month_bounds(flt, q, "m.month")
    body = f"""
        SELECT c.cohort,
               CAST(date_diff('month', c.cohort, m.month) AS INTEGER) AS months_since,
               count(*) AS customers
        FROM (SELECT customer_id, CAST(date_trunc('month', first_order_at) AS DATE) AS cohort
              FROM customer_features
              WHERE first_order_at IS NOT NULL
                AND customer_id IN (SELECT customer_id FROM audience)) c
        JOIN customer_order_months m USING (customer_id)
        WHERE {cohort_months} AND {active_months} AND m.month >= c.cohort
        GROUP BY ALL
        ORDER BY 1, 2
    """  # noqa: S608 - only placeholders and constant column names are formatted in
    sql = _with_audience(cur, flt, q, body)
    df = fetch_df(cur, sql, q.params)
    if df.empty:
        return _unavailable(NO_ORDERS, COHORT_COLUMNS)
    df["customers"] = df["customers"].astype("int64")
    sizes = df[df["months_since"] == 0].set_index("cohort")["customers"]
    df["cohort_size"] = df["cohort"].map(sizes).fillna(0).astype("int64")
    df["retention"] = df["customers"] / df["cohort_size"].where(df["cohort_size"] > 0)
    df = _mark_small(df, "cohort_size")
    return ChartData(df[list(COHORT_COLUMNS)].reset_index(drop=True), int(sizes.sum()))


# ---------------------------------------------------------------- customers

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
    missing, size = _precheck(cur, flt, BEST_COLUMNS)
    if missing:
        return missing
    q = _Sql()
    body = f"""
        SELECT f.customer_id, f.monetary, f.frequency, f.average_order_value, f.tenure_days,
               f.recency_days, s.rfm_group, c.country
        FROM audience a
        JOIN customer_features f USING (customer_id)
        JOIN analysis_customers c USING (customer_id)
        LEFT JOIN customer_segments s USING (customer_id)
        WHERE f.{column} IS NOT NULL
        ORDER BY f.{column} DESC, f.customer_id
        LIMIT {q.bind(n)}
    """  # noqa: S608 - column from BEST_BY; values bound
    df = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
    return ChartData(df, size)


AUDIENCE_COLUMNS = ("customer_id", "email")


def audience_export(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> ChartData:
    """The filtered customers for an audience export, by customer id.

    Out: customer_id, email. Only consenting customers are ever listed (analysis views);
    the email is given only when present and the customer opted in to the newsletter
    (marketing consent), else it is empty. Name the file with audience_file_name(flt).
    """
    if not _features_ready(cur):
        return _unavailable(NO_FEATURES, AUDIENCE_COLUMNS)
    q = _Sql()
    body = """
        SELECT c.customer_id,
               CASE WHEN c.newsletter_opt_in AND nullif(trim(c.email), '') IS NOT NULL
                    THEN c.email END AS email
        FROM audience a JOIN analysis_customers c USING (customer_id)
        ORDER BY c.customer_id
    """
    df = fetch_df(cur, _with_audience(cur, flt, q, body), q.params)
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
    for by in _CART_BY:
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
    n_a = _audience_size(cur, a) if _features_ready(cur) else 0
    n_b = _audience_size(cur, base) if _features_ready(cur) else 0
    parts_a = _compare_parts(cur, a)
    parts_b = _compare_parts(cur, base)
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
