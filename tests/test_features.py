"""Customer features: every feature against a plain pandas reference on a small hand-made shop.

The shop (build_small_shop) is also used by test_segments.py and test_explore.py. It has 33
customers: 1-29 buy (ties in frequency: twelve buy once, six twice...), 30 never buys but
visited four times in the last month (and has no created_at), 31 buys and visits but
refused analytics consent, 32 signed up ten days ago and did nothing yet, 33 signed up
long ago and last visited 400 days ago. Some
orders are returned or cancelled, some sessions put items in a cart and do not convert,
every fourth customer has no session, and one guest order and two anonymous sessions
exist. The last order is on 2024-06-30, so the default reference date is 2024-07-01.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from persona_engine.features import (
    FEATURE_STEPS,
    FEATURES,
    compute_customer_features,
    default_reference_date,
)
from persona_engine.store import open_store

REF = date(2024, 7, 1)
REF_TS = datetime(2024, 7, 1)

# Completed orders per customer; 30 never buys; 31 has no consent.
FREQUENCY = {i: 1 for i in range(1, 13)}
FREQUENCY.update({i: 2 for i in range(13, 19)})
FREQUENCY.update({i: 3 for i in range(19, 24)})
FREQUENCY.update({24: 4, 25: 4, 26: 4, 27: 6, 28: 6, 29: 10, 30: 0, 31: 5})
RETURNED = {13, 19, 24, 31}  # one extra returned order each
CANCELLED = {14, 20}  # one extra cancelled order each
NO_CONSENT = 31
NEVER_BOUGHT = 30
NEW_SIGNUP = 32
LAPSED_VISITOR = 33
CONSENTING = [*range(1, 31), NEW_SIGNUP, LAPSED_VISITOR]
CATEGORIES = {1: "books", 2: "books", 3: "tech", 4: "tech", 5: "home", 6: "home"}
DEVICES = ("mobile", "desktop", "tablet")
SOURCES = ("search", "email", "social", "direct")


def _country(i: int) -> str:
    return ("BE", "FR", "DE")[i % 3]


def build_small_shop(cur: duckdb.DuckDBPyConnection, with_sessions: bool = True) -> None:
    """Insert the hand-made shop described in the module docstring."""
    customers = []
    for i in range(1, 34):
        country = _country(i)
        region = {"FR": ("idf", "ara")[i % 2], "BE": "wallonia", "DE": "bavaria"}[country]
        created = {
            NEVER_BOUGHT: None,
            NEW_SIGNUP: REF_TS - timedelta(days=10),
            LAPSED_VISITOR: REF_TS - timedelta(days=800),
        }.get(i, REF_TS - timedelta(days=30 + 20 * i))
        customers.append((
            i, created, None if i % 5 == 0 else f"c{i}@example.com", 18 + (3 * i) % 50,
            ("female", "male")[i % 2], ("single", "married", "divorced")[i % 3], region, country,
            None, ("employee", "student")[i % 2], 15000.0 + 2500 * i,
            [["books", "tech"], ["home"], []][i % 3], SOURCES[i % 4], ("mobile", "desktop")[i % 2],
            i % 2 == 0, i != NO_CONSENT,
        ))
    cur.executemany(
        "INSERT INTO customers (customer_id, created_at, email, age, gender, marital_status, "
        "region, country, education, occupation, income, interests, acquisition_channel, "
        "preferred_device, newsletter_opt_in, consent_analytics) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        customers,
    )
    cur.executemany(
        "INSERT INTO products (product_id, name, category, price) VALUES (?, ?, ?, ?)",
        [(p, f"product {p}", c, 10.0) for p, c in CATEGORIES.items()],
    )
    orders, items = [], []
    customer_orders: dict[int, list[int]] = {}
    order_id = 0
    for i in range(1, 32):  # 32 and 33 never order
        statuses = ["completed"] * FREQUENCY[i]
        statuses += ["returned"] * (i in RETURNED) + ["cancelled"] * (i in CANCELLED)
        for j, status in enumerate(statuses):
            order_id += 1
            days_before = 1 if (i, j) == (1, 0) else 1 + (7 * i + 23 * j) % 300
            at = REF_TS - timedelta(days=days_before) + timedelta(hours=(8 + i + 3 * j) % 24, minutes=15)
            orders.append((
                order_id, i, at, ("web", "app", "store")[(i + j) % 3], DEVICES[(i + 2 * j) % 3],
                ("card", "paypal")[(i + j) % 2], 20.0 + i + 5 * j,
                5.0 if (i + j) % 3 == 0 else 0.0, status,
            ))
            customer_orders.setdefault(i, []).append(order_id)
            items.append((order_id, (i + j) % 6 + 1, 1 + j % 2, 10.0 + i % 5))
            if (i + j) % 2 == 0:
                items.append((order_id, (i + j + 3) % 6 + 1, 1, 7.5))
    # A guest order (no customer): counts for the shop's last order date only.
    orders.append((order_id + 1, None, REF_TS - timedelta(days=50), "web", "mobile", "card", 99.0, 0.0, "completed"))
    cur.executemany(
        "INSERT INTO orders (order_id, customer_id, ordered_at, channel, device, payment_method, "
        "amount, discount, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        orders,
    )
    cur.executemany(
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)",
        items,
    )
    if not with_sessions:
        return
    sessions = []
    session_id = 0
    for i in range(1, 32):
        if i % 4 == 0:
            continue
        own = customer_orders.get(i, [])
        # Customer 30 visited 2, 9, 16 and 23 days ago: a new, engaged visitor.
        visits = 4 if i == NEVER_BOUGHT else 1 + i % 5
        for s in range(visits):
            session_id += 1
            cart = (i + s) % 2 == 0
            checkout = cart and s % 3 == 0
            days_before = 2 + 7 * s if i == NEVER_BOUGHT else 1 + (5 * i + 11 * s) % 200
            started = REF_TS - timedelta(days=days_before) + timedelta(hours=(10 + s + i) % 24)
            sessions.append((
                session_id, i, started, DEVICES[(i + s) % 3], SOURCES[(i * s + s) % 4],
                None if (i, s) == (5, 0) else 2 + (s + i) % 6, 60 * (s + 1),
                s % 4 != 3, cart, checkout, own[s % len(own)] if checkout and own else None,
            ))
    session_id += 1  # the lapsed visitor's only visit
    sessions.append((session_id, LAPSED_VISITOR, REF_TS - timedelta(days=400), "desktop", "search", 4, 90, True, False, False, None))
    for k in range(2):  # anonymous visitors
        session_id += 1
        sessions.append((session_id, None, REF_TS - timedelta(days=3 + k), "mobile", "social", 3, 30, True, True, False, None))
    cur.executemany(
        "INSERT INTO sessions (session_id, customer_id, started_at, device, source, pages_viewed, "
        "duration_s, viewed_product, added_to_cart, checkout_started, order_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        sessions,
    )


# ---------------------------------------------------------------- pandas reference


def _mode(values: pd.Series) -> object:
    """Most frequent value; ties go to the smallest (the documented rule)."""
    counts = values.dropna().value_counts()
    if counts.empty:
        return None
    best = counts.max()
    return sorted(counts[counts == best].index)[0]


def reference_features(cur: duckdb.DuckDBPyConnection, ref: date = REF) -> pd.DataFrame:
    """Every feature recomputed with plain pandas from the raw tables, indexed by customer."""
    ref_ts = datetime.combine(ref, datetime.min.time())
    since = ref_ts - timedelta(days=90)
    customers = cur.execute("SELECT * FROM customers").df()
    customers = customers[customers["consent_analytics"]].set_index("customer_id")
    orders = cur.execute("SELECT * FROM orders").df()
    orders = orders[orders["customer_id"].isin(customers.index) & (orders["ordered_at"] < ref_ts)]
    items = cur.execute("SELECT * FROM order_items").df().merge(
        cur.execute("SELECT product_id, category FROM products").df(), on="product_id", how="left"
    )
    sessions = cur.execute("SELECT * FROM sessions").df()
    has_sessions = len(sessions) > 0
    sessions = sessions[sessions["customer_id"].isin(customers.index) & (sessions["started_at"] < ref_ts)]
    completed_ids = set(orders.loc[orders["status"] == "completed", "order_id"])
    all_completed = set(cur.execute("SELECT order_id FROM orders WHERE status = 'completed'").df()["order_id"])

    rows = {}
    for cid, c in customers.iterrows():
        o = orders[orders["customer_id"] == cid]
        done = o[o["status"] == "completed"]
        returned = int((o["status"] == "returned").sum())
        s = sessions[sessions["customer_id"] == cid]
        freq = len(done)
        monetary = float(done["amount"].sum())
        last = done["ordered_at"].max() if freq else None
        first_activity = min(
            [t for t in (o["ordered_at"].min() if len(o) else None, s["started_at"].min() if len(s) else None) if t is not None],
            default=None,
        )
        start = c["created_at"] if not pd.isna(c["created_at"]) else first_activity
        tenure = None if start is None else max(0, (ref - start.date()).days)
        carts = s[s["added_to_cart"] == True]  # noqa: E712 - pandas boolean column with NULLs
        abandoned = carts[~carts["order_id"].isin(all_completed)]
        mine = items[items["order_id"].isin(done["order_id"]) & items["category"].notna()].copy()
        mine["value"] = mine["quantity"] * mine["unit_price"]
        by_cat = mine.groupby("category")["value"].sum()
        if len(by_cat):
            favourite = sorted(by_cat.index, key=lambda k: (-by_cat[k], k))[0]
            shares = {k: v / by_cat.sum() for k, v in by_cat.items()}
        else:
            favourite, shares = None, None
        when = done["ordered_at"] if freq else s["started_at"]
        source = _mode(s["source"]) if len(s) else None
        device = _mode(s["device"]) if len(s) else (_mode(done["device"]) if freq else None)
        last_seen = [t for t in (o["ordered_at"].max() if len(o) else None, s["started_at"].max() if len(s) else None) if t is not None]
        rows[cid] = {
            "recency_days": (ref - last.date()).days if freq else None,
            "frequency": freq,
            "monetary": monetary,
            "average_order_value": monetary / freq if freq else None,
            "tenure_days": tenure,
            "orders_90d": int((done["ordered_at"] >= since).sum()),
            "sessions_90d": int((s["started_at"] >= since).sum()) if has_sessions else None,
            "sessions_total": len(s) if has_sessions else None,
            "pages_per_session": s["pages_viewed"].mean() if s["pages_viewed"].notna().any() else None,
            "cart_abandonment_rate": len(abandoned) / len(carts) if len(carts) else None,
            "abandoned_carts_90d": int((abandoned["started_at"] >= since).sum()) if has_sessions else None,
            "discount_share": (done["discount"] > 0).sum() / freq if freq else None,
            "return_rate": returned / (freq + returned) if freq + returned else None,
            "mobile_share": (s["device"] == "mobile").sum() / len(s) if len(s) else None,
            "main_source": source if source is not None else c["acquisition_channel"],
            "main_device": device if device is not None else c["preferred_device"],
            "favourite_category": favourite,
            "category_shares": shares,
            "preferred_weekday": _mode(when.dt.weekday) if len(when) else None,
            "preferred_hour": _mode(when.dt.hour) if len(when) else None,
            "newsletter_opt_in": bool(c["newsletter_opt_in"]),
            "last_active_at": max(last_seen) if last_seen else None,
        }
    assert completed_ids  # the shop has completed orders: the reference is not vacuous
    return pd.DataFrame.from_dict(rows, orient="index")


def computed_features(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    rows = cur.execute("SELECT * FROM customer_features ORDER BY customer_id").fetchall()
    names = [d[0] for d in cur.description]
    return pd.DataFrame([dict(zip(names, r, strict=True)) for r in rows]).set_index("customer_id")


def _same(a: object, b: object) -> bool:
    missing_a = not isinstance(a, dict) and bool(pd.isna(a))  # None, NaN and NaT
    missing_b = not isinstance(b, dict) and bool(pd.isna(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            math.isclose(a[k], b[k], rel_tol=1e-9) for k in a
        )
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9)  # type: ignore[arg-type]
    return bool(a == b)


@pytest.fixture(scope="module")
def shop() -> duckdb.DuckDBPyConnection:
    store = open_store(":memory:")
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    yield cur
    store.close()


@pytest.fixture(scope="module")
def reference(shop: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return reference_features(shop)


FEATURE_COLUMNS = [*FEATURES, "last_active_at"]


@pytest.mark.parametrize("feature", FEATURE_COLUMNS)
def test_feature_matches_pandas_reference(shop, reference, feature):
    computed = computed_features(shop)
    # Same customers: the 32 consenting ones (31 refused consent).
    assert sorted(computed.index) == CONSENTING
    wrong = {
        cid: (computed.loc[cid, feature], reference.loc[cid, feature])
        for cid in reference.index
        if not _same(computed.loc[cid, feature], reference.loc[cid, feature])
    }
    assert wrong == {}


def test_reference_covers_every_feature_and_sees_variety(reference):
    # A reference that is constant cannot catch a wrong feature: each numeric feature must
    # take at least two values on this shop.
    assert set(FEATURES) <= set(reference.columns)
    for name, info in FEATURES.items():
        if info.kind == "numeric":
            assert reference[name].dropna().nunique() >= 2, name


def test_hand_computed_customers(shop):
    f = computed_features(shop)
    # Customer 1: one order 20 + 1 = 21.0 the day before the reference date.
    assert f.loc[1, "frequency"] == 1 and f.loc[1, "monetary"] == 21.0
    assert f.loc[1, "recency_days"] == 1
    # Customer 29: ten completed orders of 20 + 29 + 5j, j = 0..9: 10 * 49 + 5 * 45 = 715.
    assert f.loc[29, "frequency"] == 10 and f.loc[29, "monetary"] == 715.0
    assert f.loc[29, "average_order_value"] == 71.5
    # Customer 13: two completed and one returned order: return rate 1/3.
    assert f.loc[13, "return_rate"] == pytest.approx(1 / 3)
    # Customer 30 never bought: no recency, no AOV, frequency 0; tenure from the first
    # session because created_at is empty: 23 days before the reference date.
    assert f.loc[30, "frequency"] == 0
    assert pd.isna(f.loc[30, "recency_days"]) and pd.isna(f.loc[30, "average_order_value"])
    assert f.loc[30, "tenure_days"] == 23
    assert f.loc[30, "sessions_90d"] == 4
    # Customer 32 did nothing yet: tenure from created_at (10 days), 0 sessions.
    assert f.loc[32, "tenure_days"] == 10 and f.loc[32, "sessions_total"] == 0
    # Customer 4 has no session: 0 sessions (the shop records sessions), rates unknown.
    assert f.loc[4, "sessions_total"] == 0 and pd.isna(f.loc[4, "mobile_share"])
    assert pd.isna(f.loc[4, "pages_per_session"])


def test_non_consenting_customer_has_no_row(shop):
    assert shop.execute("SELECT count(*) FROM customer_features WHERE customer_id = 31").fetchall()[0][0] == 0
    for table in ("customer_session_devices", "customer_order_values", "customer_category_revenue", "customer_segments"):
        count = shop.execute(f"SELECT count(*) FROM {table} WHERE customer_id = 31").fetchall()[0][0]
        assert count == 0, table


def test_default_reference_date_is_day_after_last_order(shop):
    assert default_reference_date(shop) == date(2024, 7, 1)
    assert shop.execute("SELECT DISTINCT reference_date FROM customer_features").fetchall() == [(date(2024, 7, 1),)]


def test_explicit_reference_date_ignores_later_activity(store):
    cur = store.cursor()
    build_small_shop(cur)
    earlier = date(2024, 4, 1)
    compute_customer_features(cur, reference_date=earlier)
    computed = computed_features(cur)
    expected = reference_features(cur, ref=earlier)
    # Customer 29 bought ten times in total, fewer before April: the reference agrees.
    assert computed.loc[29, "frequency"] == expected.loc[29, "frequency"] < 10
    for feature in ("frequency", "monetary", "recency_days", "orders_90d", "sessions_total", "favourite_category"):
        for cid in expected.index:
            assert _same(computed.loc[cid, feature], expected.loc[cid, feature]), (feature, cid)


def test_shop_without_sessions_gets_null_session_features(store):
    cur = store.cursor()
    build_small_shop(cur, with_sessions=False)
    compute_customer_features(cur)
    nulls = cur.execute(
        "SELECT count(*) FILTER (sessions_total IS NULL), count(*) FILTER (sessions_90d IS NULL), "
        "count(*) FILTER (abandoned_carts_90d IS NULL), count(*) FILTER (mobile_share IS NULL), "
        "count(*) FROM customer_features"
    ).fetchall()[0]
    # All 32 consenting customers: unknown, not zero.
    assert nulls == (32, 32, 32, 32, 32)
    # The order features are still there: customer 29's 10 orders.
    assert cur.execute("SELECT frequency FROM customer_features WHERE customer_id = 29").fetchall() == [(10,)]


def test_recompute_replaces_previous_content(shop):
    first = compute_customer_features(shop)
    second = compute_customer_features(shop)
    assert first == second == 32
    assert shop.execute("SELECT count(*), count(DISTINCT customer_id) FROM customer_features").fetchall() == [(32, 32)]
    # Rollups are replaced too, not appended: customer 29's ten orders are counted once.
    assert shop.execute(
        "SELECT sum(orders) FROM customer_order_values WHERE customer_id = 29 AND dimension = 'channel'"
    ).fetchall() == [(10,)]


def test_progress_reports_every_step(store):
    cur = store.cursor()
    build_small_shop(cur)
    calls: list[tuple[int, int, str]] = []
    compute_customer_features(cur, progress=lambda d, t, label: calls.append((d, t, label)))
    assert calls == [(i + 1, len(FEATURE_STEPS), s) for i, s in enumerate(FEATURE_STEPS)]


def test_empty_shop_writes_nothing(cur):
    assert compute_customer_features(cur) == 0


def test_features_command(tmp_path):
    db = tmp_path / "shop.duckdb"
    store = open_store(db)
    build_small_shop(store.cursor())
    store.close()
    run = subprocess.run(
        [sys.executable, "-m", "persona_engine", "features", "--db", str(db)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "32 customers" in run.stdout
    store = open_store(db)
    assert store.cursor().execute("SELECT count(*) FROM customer_features").fetchall() == [(32,)]
    store.close()


def test_features_command_on_missing_database_directory_is_one_line(tmp_path):
    db = tmp_path / "shop.duckdb"
    # A database with no shop data: a clear message, exit 1.
    open_store(db).close()
    run = subprocess.run(
        [sys.executable, "-m", "persona_engine", "features", "--db", str(db)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "no customers" in run.stderr
