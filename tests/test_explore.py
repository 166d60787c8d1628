"""Explorer queries: each filter, each chart against pandas, missing data, consent, compare."""

from __future__ import annotations

import math
import threading
import time
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import duckdb
import pandas as pd
import pytest

from persona_engine import explore
from persona_engine.errors import ValidationError
from persona_engine.explore import (
    FIELD_MISSING,
    NO_FEATURES,
    NO_MATCHING_CUSTOMERS,
    NO_SESSIONS,
    CustomerFilter,
    audience_export,
    audience_file_name,
    audience_summary,
    behaviour_segments,
    best_customers,
    cart_abandonment,
    category_mix,
    cohort_retention,
    compare,
    demographic_breakdown,
    filter_options,
    funnel,
    new_vs_returning_revenue,
    order_mix,
    range_rollups_ready,
    rfm_grid,
    rfm_groups,
    weekday_hour,
)
from persona_engine.features import compute_customer_features
from persona_engine.personas import create_persona
from persona_engine.segments import RFM_GROUPS, BehaviourRules, assign_segments, rfm_group_for
from persona_engine.store import open_store
from tests.conftest import held_rollups
from tests.test_features import (
    CONSENTING,
    NO_CONSENT,
    REF_TS,
    build_small_shop,
    computed_features,
    reference_features,
)
from tests.test_segments import reference_scores, reference_segments

EVERYONE = CustomerFilter()


@pytest.fixture(scope="module")
def shop() -> duckdb.DuckDBPyConnection:
    store = open_store(":memory:")
    cur = store.cursor()
    build_small_shop(cur)
    # Persona 1 has customers 2, 3 and the non-consenting 31 (who must never show);
    # persona 2 the odd ids (31 again), persona 3 ids 1 to 12 (sharing 6 with persona 2),
    # persona 4 the even ids from 14 (no member in common with personas 1 and 2).
    cur.executemany("INSERT INTO persona_members VALUES (1, ?, 1)", [(2,), (3,), (NO_CONSENT,)])
    cur.executemany("INSERT INTO persona_members VALUES (2, ?, 1)", [(i,) for i in range(1, 40, 2)])
    cur.executemany("INSERT INTO persona_members VALUES (3, ?, 1)", [(i,) for i in range(1, 13)])
    cur.executemany("INSERT INTO persona_members VALUES (4, ?, 1)", [(i,) for i in range(14, 40, 2)])
    compute_customer_features(cur)
    yield cur
    store.close()


@pytest.fixture(scope="module")
def raw(shop) -> dict[str, pd.DataFrame]:
    """The consenting customers' raw rows, read with plain SQL, for pandas references."""
    customers = shop.execute("SELECT * FROM customers WHERE consent_analytics").df()
    keep = set(customers["customer_id"])
    orders = shop.execute("SELECT * FROM orders").df()
    sessions = shop.execute("SELECT * FROM sessions").df()
    completed = set(orders.loc[orders["status"] == "completed", "order_id"])
    sessions["converted"] = sessions["order_id"].isin(completed)
    return {
        "customers": customers,
        "orders": orders[orders["customer_id"].isin(keep)],
        "completed": orders[orders["customer_id"].isin(keep) & (orders["status"] == "completed")],
        "sessions": sessions[sessions["customer_id"].isin(keep)],
        "items": shop.execute("SELECT i.*, p.category FROM order_items i LEFT JOIN products p USING (product_id)").df(),
    }


def size(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> int:
    return int(audience_summary(cur, flt).data.loc[0, "customers"])


# ---------------------------------------------------------------- one test per filter


def test_everyone_is_the_32_consenting_customers(shop):
    summary = audience_summary(shop, EVERYONE)
    assert summary.n_customers == 32 and not summary.too_small  # 32 >= 30
    row = summary.data.iloc[0]
    assert row["customers"] == 32 and row["buyers"] == 29 and row["share_of_base"] == 1.0
    # Revenue: every completed order of customers 1-29, summed by hand in features tests.
    assert row["revenue"] == pytest.approx(computed_features(shop)["monetary"].sum())


def test_country_filter(shop, raw):
    c = raw["customers"]
    expected = int((c["country"] == "FR").sum())
    assert expected == 10  # customers 1, 4, ..., 28 (31 is FR too but has no consent)
    flt = CustomerFilter(countries=("FR",))
    assert size(shop, flt) == expected
    chart = demographic_breakdown(shop, flt, "country")
    assert chart.data[["value", "customers"]].values.tolist() == [["FR", 10]]
    assert chart.too_small and bool(chart.data.loc[0, "too_small"])  # 10 < 30


def test_region_filter(shop, raw):
    c = raw["customers"]
    expected = int((c["region"] == "idf").sum())
    assert expected == 5  # FR customers with an even id: 4, 10, 16, 22, 28
    assert size(shop, CustomerFilter(regions=["idf"])) == expected


def test_acquisition_channel_filter(shop, raw):
    c = raw["customers"]
    expected = int(c["acquisition_channel"].isin(["email", "social"]).sum())
    assert size(shop, CustomerFilter(acquisition_channels=["email", "social"])) == expected
    assert 0 < expected < 32


def test_device_filter_uses_main_device(shop):
    reference = reference_features(shop)
    expected = int((reference["main_device"] == "tablet").sum())
    assert 0 < expected < 32
    assert size(shop, CustomerFilter(devices=["tablet"])) == expected


def test_rfm_group_filter(shop):
    scores = reference_scores(computed_features(shop))
    groups = [rfm_group_for(int(r), int(f)) for r, f in zip(scores["r_score"], scores["f_score"], strict=True)]
    chosen = sorted(set(groups))[:2]
    expected = sum(g in chosen for g in groups)
    assert 0 < expected < 29
    assert size(shop, CustomerFilter(rfm_groups=chosen)) == expected


def test_several_segments_are_read_from_the_cubes(shop):
    # Each customer is in one cube cell, with its whole set of segments: a filter on several
    # segments (in any of them) counts a customer in both once.
    state = explore._state(shop)
    assert state is not None and state.segment_cubes
    assert explore._uses_cubes(CustomerFilter(segments=["loyal_buyers"]), state)
    assert explore._uses_cubes(CustomerFilter(segments=["loyal_buyers", "cart_abandoners"]), state)
    assert explore._uses_cubes(CustomerFilter(segments=["loyal_buyers"], persona_ids=[1]), state)


def test_which_persona_filters_are_read_from_the_persona_cubes(shop):
    # The persona cubes hold each persona's rows per segment set and per cell of the other
    # dimensions: personas with either are read from them, not with both. Several personas
    # add up only when no customer is in two of them.
    def cube(**kwargs: Any) -> bool:
        flt = CustomerFilter(**kwargs)
        explore.clear_cache(shop)
        return explore._audience(shop, flt).cube

    assert cube(persona_ids=[2])
    assert cube(persona_ids=[2], countries=["FR"], devices=["mobile"])
    assert cube(persona_ids=[2], segments=["loyal_buyers"])
    assert not cube(persona_ids=[2], countries=["FR"], segments=["loyal_buyers"])
    assert cube(persona_ids=[2, 4]) and cube(persona_ids=[1, 4], rfm_groups=["lost", "at_risk"])
    assert not cube(persona_ids=[2, 3])  # members 1, 3, 5, 7, 9, 11 in both
    assert not cube(persona_ids=[1, 2], countries=["FR"])  # member 3 in both


def test_disjoint_personas_with_a_country_count_their_members(shop, raw):
    members = (set(range(1, 40, 2)) | set(range(14, 40, 2))) & set(computed_features(shop).index)
    customers = raw["customers"].set_index("customer_id")
    french = {c for c in members if customers.loc[c, "country"] == "FR"}
    flt = CustomerFilter(persona_ids=[2, 4], countries=["FR"])
    assert explore._audience(shop, flt).cube
    assert size(shop, flt) == len(french) > 3
    done = raw["completed"][raw["completed"]["customer_id"].isin(french)]
    mix = order_mix(shop, flt, "channel").data
    assert mix["orders"].sum() == len(done) > 0
    assert mix["revenue"].sum() == pytest.approx(done["amount"].sum())


def test_cubes_built_before_segment_sets_are_not_read_for_a_segment(store):
    # A shop whose cubes predate migration 13 has cells without segment sets: a segment
    # filter must read the customers' rows until features are recomputed, not find nobody;
    # other filters still read the cubes, each customer once.
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    expected = reference_segments(computed_features(cur), BehaviourRules())["loyal_buyers"]
    france = size(cur, CustomerFilter(countries=["FR"]))
    for table in dict.fromkeys(explore.CUBE_TABLES.values()):
        cur.execute(f"UPDATE {table} SET segment_set = NULL")  # noqa: S608 - constant names
    explore.clear_cache(cur)
    state = explore._state(cur)
    assert not state.segment_cubes
    assert size(cur, CustomerFilter(segments=["loyal_buyers"])) == len(expected) > 0
    assert explore._uses_cubes(CustomerFilter(countries=["FR"]), state)
    assert size(cur, CustomerFilter(countries=["FR"])) == france > 0


def test_behaviour_segment_filter(shop):
    expected = reference_segments(computed_features(shop), BehaviourRules())
    either = expected["loyal_buyers"] | expected["cart_abandoners"]
    assert size(shop, CustomerFilter(segments=["loyal_buyers"])) == len(expected["loyal_buyers"]) > 0
    # Several segments: a customer in any of them matches.
    assert size(shop, CustomerFilter(segments=["loyal_buyers", "cart_abandoners"])) == len(either)


def test_persona_filter_never_shows_non_consenting_members(shop):
    flt = CustomerFilter(persona_ids=[1])
    assert explore._audience(shop, flt).persona  # read from the persona cubes
    assert size(shop, flt) == 2  # 2 and 3; member 31 refused consent
    assert sorted(audience_export(shop, flt).data["customer_id"]) == [2, 3]


def test_several_personas_count_a_shared_member_once(shop, raw):
    with_features = set(computed_features(shop).index)
    members = (set(range(1, 40, 2)) | set(range(1, 13))) & with_features
    assert NO_CONSENT not in with_features and len(members) > 20
    flt = CustomerFilter(persona_ids=[2, 3])
    assert not explore._audience(shop, flt).cube  # the customers' rows, each member once
    assert size(shop, flt) == len(members)
    done = raw["completed"][raw["completed"]["customer_id"].isin(members)]
    assert order_mix(shop, flt, "channel").data["orders"].sum() == len(done) > 0


def test_persona_cubes_written_with_members_or_with_the_cubes_agree(shop):
    # The cubes' rebuild writes every persona's rows in the pass of the lifetime cubes
    # (summed per persona of each cell's list); setting members writes one persona's rows
    # from its members alone. Both must write the same rows.
    def rows() -> dict[str, pd.DataFrame]:
        out = {}
        for table in dict.fromkeys(explore.CUBE_TABLES.values()):
            df = shop.execute(f"SELECT * FROM {explore.PERSONA_CUBES}{table}").df()  # noqa: S608 - constant names
            out[table] = df.sort_values(list(df.columns), ignore_index=True)
        return out

    with_cubes = rows()
    assert set(with_cubes["cube_stats"]["persona_id"]) == {1, 2, 3, 4}
    shop.execute("BEGIN TRANSACTION")
    explore.write_persona_cubes(shop, [1, 2, 3, 4])
    shop.execute("COMMIT")
    with_members = rows()
    for table, df in with_cubes.items():
        pd.testing.assert_frame_equal(df, with_members[table], check_dtype=False, obj=table)


def test_a_persona_gets_its_cubes_with_its_members(store, monkeypatch):
    # Members set after features were computed: the persona cubes are written in the same
    # transaction, and give the charts of the members' rows. A persona whose members were
    # written otherwise (no cubes yet) reads the rows.
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    persona = create_persona(cur, {"name": "Even ids"}, "tests", members=range(2, 40, 2))
    cur.executemany("INSERT INTO persona_members VALUES (99, ?, NULL)", [(i,) for i in range(2, 40, 2)])
    flt, uncubed = CustomerFilter(persona_ids=[persona]), CustomerFilter(persona_ids=[99])
    assert explore._audience(cur, flt).persona
    assert not explore._audience(cur, uncubed).cube
    from_cubes = every_chart(cur, flt)
    assert_same_charts(every_chart(cur, uncubed), from_cubes)
    monkeypatch.setattr(explore, "_uses_cubes", lambda f, state: False)
    explore.clear_cache(cur)
    assert_same_charts(from_cubes, every_chart(cur, flt))
    assert from_cubes["summary"].n_customers > 10


def test_date_range_filter(shop, raw):
    start, end = date(2024, 6, 1), date(2024, 6, 15)
    lo, hi = datetime(2024, 6, 1), datetime(2024, 6, 16)
    o, s = raw["completed"], raw["sessions"]
    active = set(o.loc[(o["ordered_at"] >= lo) & (o["ordered_at"] < hi), "customer_id"])
    active |= set(s.loc[(s["started_at"] >= lo) & (s["started_at"] < hi), "customer_id"])
    flt = CustomerFilter(start=start, end=end)
    assert size(shop, flt) == len(active) > 0
    # Visitors and cart visitors of the range: the funnel's and the cart chart's customers.
    visits = s[(s["started_at"] >= lo) & (s["started_at"] < hi)]
    assert funnel(shop, flt).n_customers == visits["customer_id"].nunique() > 0
    carts = visits[visits["added_to_cart"].fillna(False).astype(bool)]
    assert cart_abandonment(shop, flt, "device").n_customers == carts["customer_id"].nunique() > 0
    # Orders in the range only: completed orders of the window, by hand with pandas.
    done = raw["completed"]
    in_range = done[(done["ordered_at"] >= lo) & (done["ordered_at"] < hi)]
    mix = order_mix(shop, flt, "channel")
    assert mix.data["orders"].sum() == len(in_range) > 0
    assert mix.data["revenue"].sum() == pytest.approx(in_range["amount"].sum())
    assert mix.n_customers == in_range["customer_id"].nunique()
    # The summary counts the orders of the range too, and a second filter inside the same
    # range (France) keeps only its customers' orders.
    summary = audience_summary(shop, flt).data.iloc[0]
    assert summary["orders"] == len(in_range) and summary["revenue"] == pytest.approx(in_range["amount"].sum())
    france = set(raw["customers"].loc[raw["customers"]["country"] == "FR", "customer_id"])
    fr_orders = in_range[in_range["customer_id"].isin(france)]
    fr = order_mix(shop, CustomerFilter(start=start, end=end, countries=["FR"]), "device")
    assert fr.data["orders"].sum() == len(fr_orders)
    assert size(shop, CustomerFilter(start=start, end=end, countries=["FR"])) == len(active & france)


def test_large_audience_charts_match_pandas(shop, raw, monkeypatch):
    # Most customers kept (all channels but one), read from the customers' rows (cubes
    # off): membership is tested through the few customers left out; the numbers must be
    # those of the kept customers.
    monkeypatch.setattr(explore, "_uses_cubes", lambda flt, state: False)
    explore.clear_cache(shop)
    c = raw["customers"]
    kept = set(c.loc[c["acquisition_channel"] != "direct", "customer_id"])
    assert 16 < len(kept) < 32
    flt = CustomerFilter(acquisition_channels=["search", "email", "social"])
    done = raw["completed"][raw["completed"]["customer_id"].isin(kept)]
    mix = order_mix(shop, flt, "payment_method").data.set_index("value")
    assert mix["orders"].to_dict() == done.groupby("payment_method").size().to_dict()
    s = raw["sessions"][raw["sessions"]["customer_id"].isin(kept)]
    assert funnel(shop, flt).data.loc[0, "sessions"] == len(s)
    groups = rfm_groups(shop, flt)
    assert groups.n_customers == done["customer_id"].nunique()


def every_chart(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter) -> dict[str, explore.ChartData]:
    charts = {f"demographics:{f}": demographic_breakdown(cur, flt, f) for f in explore.DEMOGRAPHIC_FIELDS}
    charts.update(
        summary=audience_summary(cur, flt), rfm_grid=rfm_grid(cur, flt), rfm_groups=rfm_groups(cur, flt),
        segments=behaviour_segments(cur, flt), funnel=funnel(cur, flt),
        cart_device=cart_abandonment(cur, flt, "device"), cart_source=cart_abandonment(cur, flt, "source"),
        category=category_mix(cur, flt), weekday_hour=weekday_hour(cur, flt),
        new_vs_returning=new_vs_returning_revenue(cur, flt), cohorts=cohort_retention(cur, flt),
        best=best_customers(cur, flt, "revenue", 5),
    )
    for by in explore.ORDER_MIX_BY:
        charts[f"order_mix:{by}"] = order_mix(cur, flt, by)
    return charts


def assert_same_charts(first: dict[str, explore.ChartData], second: dict[str, explore.ChartData]) -> None:
    """Two runs of every_chart gave the same charts, to the row."""
    assert first.keys() == second.keys()
    for name, chart in first.items():
        other = second[name]
        assert (chart.available, chart.reason, chart.n_customers) == (other.available, other.reason, other.n_customers), name
        pd.testing.assert_frame_equal(chart.data, other.data, check_dtype=False, obj=name)


@pytest.mark.parametrize(
    "flt",
    [
        EVERYONE,
        CustomerFilter(countries=["FR", "BE"]),
        CustomerFilter(acquisition_channels=["search", "email", "social"], devices=["mobile", "desktop"]),
        CustomerFilter(rfm_groups=["lost", "at_risk", "hibernating"]),
        # Segments, alone and with cell dimensions: read from the cells' segment sets
        # (loyal buyers are also in other segments: counting a customer twice shows).
        CustomerFilter(segments=["loyal_buyers"]),
        CustomerFilter(segments=["cart_abandoners"], countries=["FR", "BE"], devices=["mobile"]),
        CustomerFilter(segments=["loyal_buyers", "cart_abandoners", "recent_buyers"]),
        # One persona, alone and with segments: read from the persona cubes.
        CustomerFilter(persona_ids=[2]),
        CustomerFilter(persona_ids=[3], segments=["loyal_buyers", "cart_abandoners"]),
        # Personas with cell dimensions: their rows per cell; personas without a member in
        # common add up.
        CustomerFilter(persona_ids=[2], countries=["FR", "BE"]),
        CustomerFilter(persona_ids=[3], devices=["mobile", "desktop"], rfm_groups=["promising", "about_to_sleep"]),
        CustomerFilter(persona_ids=[2, 4]),
        CustomerFilter(persona_ids=[1, 4], segments=["loyal_buyers", "cart_abandoners"]),
        CustomerFilter(persona_ids=[2, 4], acquisition_channels=["search", "email"]),
    ],
)
def test_cubes_and_customer_rows_agree(shop, flt, monkeypatch):
    # Filters on the cell dimensions (and one segment) are read from the cubes; every chart
    # must be the same as when it is computed from the customers' rows.
    assert explore._uses_cubes(flt, explore._state(shop))
    explore.clear_cache(shop)
    assert explore._audience(shop, flt).cube
    from_cubes = every_chart(shop, flt)
    monkeypatch.setattr(explore, "_uses_cubes", lambda f, state: False)
    explore.clear_cache(shop)  # cached results are keyed by filter, not by path
    from_rows = every_chart(shop, flt)
    assert_same_charts(from_cubes, from_rows)
    assert from_cubes["summary"].n_customers > 0


@pytest.mark.parametrize(
    "flt",
    [
        CustomerFilter(segments=["cart_abandoners", "loyal_buyers"]),  # a few customers kept
        CustomerFilter(acquisition_channels=["search", "email", "social"]),  # most kept
        CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30), countries=["FR", "BE"]),
        CustomerFilter(persona_ids=[1]),
    ],
)
def test_audience_bitmap_and_hash_lookups_agree(shop, flt, monkeypatch):
    # Off the cubes, membership reads a bitmap of the audience's ids; with ids spread too
    # wide for one it looks the customers up in a table (or the few left out): same charts.
    monkeypatch.setattr(explore, "_uses_cubes", lambda f, state: False)
    explore.clear_cache(shop)
    with_bitmap = every_chart(shop, flt)
    assert explore._audience(shop, flt).bitmap
    monkeypatch.setattr(explore, "_MAX_BITMAP", 1)
    explore.clear_cache(shop)
    with_lookups = every_chart(shop, flt)
    assert not explore._audience(shop, flt).bitmap
    assert_same_charts(with_bitmap, with_lookups)
    assert with_bitmap["summary"].n_customers > 0


def test_customer_added_after_features_is_outside_the_bitmap_and_not_counted(store):
    # A consenting customer added after the features were computed, with an id above every
    # id the features know: no feature row, so in no chart, and no error reading the bitmap.
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    flt = CustomerFilter(segments=["cart_abandoners", "loyal_buyers"])
    before = every_chart(cur, flt)
    cur.execute(
        "INSERT INTO customers (customer_id, country, gender, consent_analytics) "
        "VALUES (10000000, 'FR', 'female', true)"
    )
    after = every_chart(cur, flt)
    assert explore._audience(cur, flt).bitmap
    assert_same_charts(before, after)


def test_cursors_of_a_store_share_date_ranges_and_evicted_ones_are_rebuilt(store, monkeypatch):
    # Two cursors (two browser sessions) on one store: the second finds the first's range
    # built. With room for two ranges, a third evicts the least recently used; a cursor
    # asking for an evicted range gets it rebuilt, with the same numbers.
    monkeypatch.setattr(explore, "_RANGE_SLOTS", 2)
    monkeypatch.setattr(explore, "_RANGE_IN_USE_S", 0.0)
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)  # no range busy with its cubes
    a, b = store.cursor(), store.cursor()
    build_small_shop(a)
    compute_customer_features(a)
    explore.clear_cache(a)
    june, july, august = (
        CustomerFilter(start=date(2024, m, 1), end=date(2024, m, 28)) for m in (6, 7, 8)
    )

    def generations() -> list[int]:
        return [g for (g,) in a.execute("SELECT generation FROM explorer_ranges.ranges ORDER BY 1").fetchall()]

    june_a = every_chart(a, june)
    assert generations() == [1]
    june_b = every_chart(b, june)
    assert generations() == [1]  # read, not built again
    assert_same_charts(june_a, june_b)
    every_chart(b, july)
    every_chart(b, august)  # june, the least recently used, is dropped
    assert generations() == [2, 3]
    again = every_chart(a, june)
    assert generations() == [3, 4]
    assert_same_charts(june_a, again)
    assert june_a["summary"].n_customers > 0


def test_a_range_read_moments_ago_is_kept_beyond_the_slots(store, monkeypatch):
    # A page run in progress may still read a range: it is not dropped for a new one until
    # it has gone unread for a while, within twice the slots.
    monkeypatch.setattr(explore, "_RANGE_SLOTS", 1)
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)  # no range busy with its cubes
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    for month in (6, 7, 8):
        audience_summary(cur, CustomerFilter(start=date(2024, month, 1), end=date(2024, month, 28)))
    assert cur.execute("SELECT count(*) FROM explorer_ranges.ranges").fetchall() == [(2,)]


def test_sessions_asking_for_a_new_range_at_once_build_it_once(tmp_path):
    # Four sessions (threads, one cursor each) open the same new range together: one
    # builds it, the others wait and read it, and all see the same numbers.
    store = open_store(tmp_path / "shop.duckdb")
    setup = store.cursor()
    build_small_shop(setup)
    compute_customer_features(setup)
    flt = CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30))
    results: list[pd.DataFrame] = []
    errors: list[BaseException] = []

    def session() -> None:
        try:
            cur = store.cursor()
            results.append(order_mix(cur, flt, "channel").data)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=session) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert setup.execute("SELECT count(*) FROM explorer_ranges.ranges").fetchall() == [(1,)]
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)
    assert results[0]["orders"].sum() > 0
    store.close()


def add_uncategorised_order(cur: duckdb.DuckDBPyConnection) -> None:
    """A completed order in June 2024, of a product without a category, by a customer who
    bought nothing else: a buyer of the range who is not counted by the category chart."""
    cur.execute("INSERT INTO products (product_id, name, category, price) VALUES (99, 'gift card', NULL, 25.0)")
    cur.execute(
        "INSERT INTO orders (order_id, customer_id, ordered_at, channel, device, payment_method, amount, "
        "discount, status) VALUES (9001, 32, TIMESTAMP '2024-06-20 11:00', 'web', 'mobile', 'card', 25.0, 0, 'completed')"
    )
    cur.execute("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (9001, 99, 1, 25.0)")


@pytest.mark.parametrize(
    "flt",
    [
        CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30)),
        CustomerFilter(start=date(2024, 6, 10), end=date(2024, 8, 20), countries=["FR", "BE"]),
        CustomerFilter(start=date(2024, 1, 1), end=date(2024, 12, 31), segments=["loyal_buyers", "cart_abandoners"],
                       devices=["mobile"]),
        CustomerFilter(start=date(2024, 3, 1), end=date(2024, 11, 30), rfm_groups=["lost", "at_risk", "hibernating"]),
        CustomerFilter(start=date(2024, 3, 11), end=date(2024, 6, 12)),
    ],
)
@pytest.mark.parametrize("days", [False, True], ids=["orders", "day tables"])
def test_date_range_cubes_and_customer_rows_agree(store, flt, days, monkeypatch):
    # A range prepared with its cubes answers filters on cells from them; every chart must
    # be the same as from the customers' rows of the range. With the day tables written
    # first, the range's order rollups are read from them (and the rows' order charts too):
    # the charts are those of the range read from its orders.
    cur = store.cursor()
    build_small_shop(cur)
    add_uncategorised_order(cur)
    # Orders on the days either side of the range (before the shop's last day, which they
    # would move), of a customer of each country: the range must leave them out however it
    # is read.
    for k, day in enumerate((flt.start - timedelta(days=1), flt.end + timedelta(days=1))):
        for customer in (1, 2, 3) if day < REF_TS.date() else ():
            order_id = 9100 + 10 * k + customer
            cur.execute(
                "INSERT INTO orders (order_id, customer_id, ordered_at, channel, device, payment_method, amount, "
                "discount, status) VALUES (?, ?, ?, 'app', 'tablet', 'paypal', 40.0, 0, 'completed')",
                [order_id, customer, datetime.combine(day, datetime.min.time()) + timedelta(hours=12)],
            )
            cur.execute("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, 1, 2, 20.0)", [order_id])
    compute_customer_features(cur)
    read: list[str] = []
    if days:
        assert explore.prepare_customer_days(cur)
        from_days = explore._day_params
        monkeypatch.setattr(explore, "_day_params", lambda d, s, e, sql: read.append(sql) or from_days(d, s, e, sql))
    state = explore._state(cur)
    assert explore._ensure_range(cur, state, flt, cubes=True)[1]
    from_cubes = every_chart(cur, flt)
    assert explore._audience(cur, flt).cube
    monkeypatch.setattr(explore, "_uses_cubes", lambda f, state: False)
    explore.clear_cache(cur, ranges=False)  # cached results are keyed by filter, not by path
    from_rows = every_chart(cur, flt)
    assert not explore._audience(cur, flt).cube
    assert_same_charts(from_cubes, from_rows)
    assert from_cubes["summary"].n_customers > 0
    if days:
        assert len([sql for sql in read if "order_values" in sql]) == 1  # the order rollups read them
        explore.clear_cache(cur)  # the days and the range too: the range is read from its orders
        assert_same_charts(from_cubes, every_chart(cur, flt))


def test_a_new_range_counts_its_customers_before_its_rollups(store, monkeypatch):
    # A range's first use builds its customers straight from orders and sessions: the
    # summary and the demographics need nothing more. Its rollups come with the first chart
    # that reads them. The counts are those of the raw rows, by hand with pandas.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    cur = store.cursor()
    build_small_shop(cur)
    add_uncategorised_order(cur)
    compute_customer_features(cur)
    flt = CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30))
    lo, hi = datetime(2024, 6, 1), datetime(2024, 10, 1)
    keep = set(cur.execute("SELECT customer_id FROM customers WHERE consent_analytics").df()["customer_id"])
    s = cur.execute("SELECT * FROM sessions").df()
    s = s[s["customer_id"].isin(keep) & (s["started_at"] >= lo) & (s["started_at"] < hi)]
    o = cur.execute("SELECT * FROM orders WHERE status = 'completed'").df()
    o = o[o["customer_id"].isin(keep) & (o["ordered_at"] >= lo) & (o["ordered_at"] < hi)]
    items = cur.execute("SELECT i.order_id, p.category FROM order_items i JOIN products p USING (product_id)").df()
    categorised = set(o.loc[o["order_id"].isin(items.loc[items["category"].notna(), "order_id"]), "customer_id"])

    def rollups_built() -> bool:
        return bool(cur.execute("SELECT bool_and(rollups) FROM explorer_ranges.ranges").fetchall()[0][0])

    summary = audience_summary(cur, flt).data.iloc[0]
    demographic_breakdown(cur, flt, "age_band")
    assert not rollups_built()
    a = explore._audience(cur, flt)
    assert a.customers == len(set(s["customer_id"]) | set(o["customer_id"])) > 0
    assert (a.visitors, a.carters) == (s["customer_id"].nunique(), s.loc[s["added_to_cart"] == True, "customer_id"].nunique())  # noqa: E712 - NULL is not True
    assert (a.buyers, a.orders) == (o["customer_id"].nunique(), len(o))
    assert a.categorised is None  # needs the order lines: counted from the rollups
    assert a.whole_range  # every customer of the range: its rollups need no membership test
    assert not explore._audience(cur, CustomerFilter(start=flt.start, end=flt.end, countries=("FR",))).whole_range
    assert summary["revenue"] == pytest.approx(o["amount"].sum())
    assert funnel(cur, flt).data.loc[0, "sessions"] == len(s) > 0
    assert rollups_built()
    assert category_mix(cur, flt).n_customers == len(categorised) > 0


def test_a_new_range_gets_its_cubes_after_its_first_use(store):
    # The first page of a new range reads its customers' rows; a thread then builds the
    # range's cubes, which the next filter changes inside the range read.
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    flt = CustomerFilter(start=date(2024, 5, 1), end=date(2024, 10, 31), countries=["FR"])
    first = every_chart(cur, flt)
    deadline = time.time() + 60
    while not cur.execute("SELECT bool_and(cubes) FROM explorer_ranges.ranges").fetchall()[0][0]:
        assert time.time() < deadline, "the range's cubes were not built"
        time.sleep(0.05)
    explore.clear_cache(cur, ranges=False)
    assert explore._audience(cur, flt).cube
    later = every_chart(cur, flt)
    assert_same_charts(first, later)


def test_background_builds_wait_while_a_page_runs(monkeypatch):
    # A background build pauses before its next statement while a page runs, goes on when
    # the page ends, and, however long a page runs, waits _YIELD_MAX_S at most.
    runs = explore._PageRuns()
    resumed = threading.Event()

    def build() -> None:
        with runs.background():
            runs.pause()
        resumed.set()

    with runs.page():
        worker = threading.Thread(target=build)
        worker.start()
        assert not resumed.wait(0.5)  # the page still runs
    assert resumed.wait(5)
    worker.join()
    # Page runs nest (the app around a page): they count once, until the outer one ends.
    with runs.page():
        with runs.page():
            assert runs.running() == 1
        assert runs.running() == 1
    assert runs.running() == 0
    # Outside a background build (a page, a test, the command line) nothing waits.
    with runs.page():
        started = time.monotonic()
        runs.pause()
        assert time.monotonic() - started < 0.1
    # Bounded: a page that never ends delays the build by _YIELD_MAX_S only.
    monkeypatch.setattr(explore, "_YIELD_MAX_S", 0.3)
    resumed.clear()
    with runs.page():
        started = time.monotonic()
        threading.Thread(target=build).start()
        assert resumed.wait(5)
        assert 0.25 < time.monotonic() - started < 3


def test_background_builds_run_one_statement_at_a_time():
    # Builds on threads of their own take turns: one statement at a time between them
    # (each statement here sleeps 0.1 s and records when it ran); an urgent build does
    # not wait for its turn; a build waiting for a lock gives up its turn, or the build
    # holding the lock and waiting for the turn would wait for it for ever.
    runs = explore._PageRuns()
    spans: list[tuple[float, float]] = []

    def build(statements: int = 3) -> None:
        with runs.background():
            for _ in range(statements):
                runs.pause()
                began = time.monotonic()
                time.sleep(0.1)
                spans.append((began, time.monotonic()))

    workers = [threading.Thread(target=build) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert len(spans) == 9
    spans.sort()
    assert all(end <= nxt + 0.005 for (_, end), (nxt, _) in zip(spans, spans[1:], strict=False))
    # Urgent: goes ahead while another build holds the turn.
    held, went = threading.Event(), threading.Event()

    def holder() -> None:
        with runs.background():
            runs.pause()
            held.set()
            went.wait(5)

    def urgent() -> None:
        with runs.background(urgent=lambda: True):
            runs.pause()
        went.set()

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(5)
    second = threading.Thread(target=urgent)
    second.start()
    assert went.wait(2)  # not after the holder's 5 s
    first.join(10)
    second.join(10)
    # The others pause while an urgent build's statement runs, and go on after it.
    urgent_runs, ended, resumed = threading.Event(), threading.Event(), threading.Event()

    def urgent_statement() -> None:
        with runs.background(urgent=lambda: True):
            runs.pause()
            urgent_runs.set()
            ended.wait(5)
            runs.pause()  # its next statement

    def other() -> None:
        with runs.background():
            runs.pause()
            resumed.set()

    one = threading.Thread(target=urgent_statement)
    one.start()
    assert urgent_runs.wait(5)
    two = threading.Thread(target=other)
    two.start()
    assert not resumed.wait(0.5)
    ended.set()
    one.join(5)
    assert resumed.wait(5)
    two.join(5)
    # A lock: the first build holds its turn and waits for a lock the second holds while it
    # waits for its turn; the first gives up its turn.
    lock, done = threading.Lock(), threading.Event()
    lock.acquire()

    def waits_for_lock() -> None:
        with runs.background():
            runs.pause()
            held.set()
            with runs.holding(lock):
                pass
        done.set()

    def holds_lock() -> None:
        with runs.background():
            runs.pause()
        lock.release()

    held.clear()
    one = threading.Thread(target=waits_for_lock)
    one.start()
    assert held.wait(5)
    two = threading.Thread(target=holds_lock)
    two.start()
    assert done.wait(5)
    one.join(5)
    two.join(5)


def test_a_page_waiting_for_a_paused_build_lets_it_finish(store, monkeypatch):
    # A thread builds a new range in the background while a page runs, so it pauses holding
    # the range's build lock; the page then asks for the same range. The page steps aside
    # while it waits for the lock: the build goes on at once instead of after its longest
    # pause, and the page reads the built range.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    monkeypatch.setattr(explore, "_YIELD_MAX_S", 30.0)
    setup = store.cursor()
    build_small_shop(setup)
    compute_customer_features(setup)
    state = explore._state(setup)
    start, end = datetime(2024, 6, 1), datetime(2024, 7, 1)
    key = explore._range_key(state, start, end)

    def background() -> None:
        with explore._PAGE_RUNS.background():
            explore._range_tables(store.cursor(), key, start, end, explore._ROLLED_UP)

    with explore.page_run():
        worker = threading.Thread(target=background)
        worker.start()
        deadline = time.monotonic() + 10
        while not (explore._RANGE_BUILDS.get(key) and explore._RANGE_BUILDS[key].locked()):
            assert time.monotonic() < deadline, "the background build did not start"
            time.sleep(0.01)
        time.sleep(0.2)  # paused before its first statement: the page runs
        assert setup.execute("SELECT count(*) FROM explorer_ranges.ranges WHERE ready").fetchall() == [(0,)]
        started = time.monotonic()
        prefix, _ = explore._range_tables(store.cursor(), key, start, end, explore._ROLLED_UP)
        assert time.monotonic() - started < 10
    worker.join(10)
    assert not worker.is_alive()
    o = setup.execute(
        "SELECT count(*) FROM analysis_orders WHERE status = 'completed' AND ordered_at >= ? AND ordered_at < ?",
        [start, end],
    ).fetchall()[0][0]
    assert setup.execute(f"SELECT sum(orders) FROM {prefix}order_values WHERE dimension = 'channel'").fetchall()[0][0] == o > 0


def test_a_page_waiting_for_a_new_ranges_rollups_hurries_their_thread(store, monkeypatch):
    # A new range's first use leaves its rollups to a thread that starts a moment later and
    # pauses while pages run. A page asking whether they are ready wakes the thread up
    # and keeps its rollups from pausing, even while another session's page runs; it
    # waits wait_s at most and says whether they are there.
    monkeypatch.setattr(explore, "_RANGE_LATER_DELAY_S", 60.0)
    monkeypatch.setattr(explore, "_YIELD_MAX_S", 60.0)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    flt = CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30))
    assert range_rollups_ready(cur, CustomerFilter())  # no date range: nothing to wait for
    go = held_rollups(monkeypatch)
    other_page = threading.Event()
    done = threading.Event()

    def another_session() -> None:
        with explore.page_run():
            other_page.set()
            done.wait(60)

    threading.Thread(target=another_session).start()
    try:
        assert other_page.wait(5)
        with explore.page_run():
            audience_summary(cur, flt)  # the range's first use: its customers only
            assert not range_rollups_ready(cur, flt, 0.0, hurry=False)  # only asks
            assert not any(later.hurry.is_set() for later in explore._RANGE_LATER.values())
            started = time.monotonic()
            assert not range_rollups_ready(cur, flt, 0.3)
            assert 0.25 < time.monotonic() - started < 5
            # A range of more customers than that: the page does not wait for rollups
            # that take seconds.
            most = explore._WAIT_MAX_CUSTOMERS
            monkeypatch.setattr(explore, "_WAIT_MAX_CUSTOMERS", size(cur, flt) - 1)
            started = time.monotonic()
            assert not range_rollups_ready(cur, flt, 2.0)
            assert time.monotonic() - started < 0.2
            monkeypatch.setattr(explore, "_WAIT_MAX_CUSTOMERS", most)
            go.set()
            started = time.monotonic()
            assert range_rollups_ready(cur, flt, 30)
            assert time.monotonic() - started < 10  # neither the delay nor a pause
        built = cur.execute("SELECT rollups, cubes FROM explorer_ranges.ranges").fetchall()
        assert built == [(True, False)]  # the cubes still pause for the other page
    finally:
        done.set()
    deadline = time.monotonic() + 60
    while explore._RANGE_LATER:
        assert time.monotonic() < deadline, "the range's thread did not end"
        time.sleep(0.05)
    assert cur.execute("SELECT cubes FROM explorer_ranges.ranges").fetchall() == [(True,)]
    lo, hi = datetime(2024, 6, 1), datetime(2024, 10, 1)
    s = cur.execute(
        "SELECT count(*) FROM sessions JOIN analysis_customers USING (customer_id) WHERE started_at >= ? AND started_at < ?",
        [lo, hi],
    ).fetchall()[0][0]
    assert funnel(cur, flt).data.loc[0, "sessions"] == s > 0


def test_a_range_dropped_before_its_thread_builds_it_stays_dropped(store, monkeypatch):
    # The caches are cleared (new data) while a new range's thread still waits to build its
    # rollups: the thread ends without building the range again, nobody would read it.
    monkeypatch.setattr(explore, "_RANGE_LATER_DELAY_S", 0.3)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    audience_summary(cur, CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30)))
    assert explore._RANGE_LATER
    explore.clear_cache(cur)
    deadline = time.monotonic() + 30
    while explore._RANGE_LATER:
        assert time.monotonic() < deadline, "the range's thread did not end"
        time.sleep(0.05)
    assert cur.execute("SELECT count(*) FROM explorer_ranges.ranges").fetchall() == [(0,)]


def test_without_a_thread_of_their_own_the_charts_build_a_ranges_rollups(store, monkeypatch):
    # No thread builds the rollups (as on a read-only store, or when turned off): the
    # charts build them when they read them, so nothing waits for a thread.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    flt = CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30))
    audience_summary(cur, flt)
    assert range_rollups_ready(cur, flt, 0.0)
    assert cur.execute("SELECT rollups FROM explorer_ranges.ranges").fetchall() == [(False,)]
    funnel(cur, flt)
    assert cur.execute("SELECT rollups FROM explorer_ranges.ranges").fetchall() == [(True,)]


def test_a_ranges_order_rollups_come_before_its_session_rollups(store, monkeypatch):
    # A new range's thread builds its order rollups first: the order charts can be drawn
    # (and read them without building anything) while the session rollups are held back.
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    flt = CustomerFilter(start=date(2024, 6, 1), end=date(2024, 9, 30))
    go = held_rollups(monkeypatch, sessions_only=True)
    try:
        audience_summary(cur, flt)
        assert range_rollups_ready(cur, flt, 30, orders_only=True)
        assert not range_rollups_ready(cur, flt, 0.0)
        assert cur.execute("SELECT order_rollups, rollups FROM explorer_ranges.ranges").fetchall() == [(True, False)]
        mix = order_mix(cur, flt, "channel")  # read while the session rollups are held back
        assert not range_rollups_ready(cur, flt, 0.0)
        lo, hi = datetime(2024, 6, 1), datetime(2024, 10, 1)
        orders = cur.execute(
            "SELECT count(*) FROM analysis_orders WHERE status = 'completed' AND ordered_at >= ? AND ordered_at < ?",
            [lo, hi],
        ).fetchall()[0][0]
        assert mix.data["orders"].sum() == orders > 0
    finally:
        go.set()
    assert range_rollups_ready(cur, flt, 30)


def test_filters_combine_with_and(shop, raw):
    c = raw["customers"]
    expected = int(((c["country"] == "FR") & (c["acquisition_channel"] == "email")).sum())
    assert size(shop, CustomerFilter(countries=["FR"], acquisition_channels=["email"])) == expected


def test_filter_matching_nobody_says_so(shop):
    chart = demographic_breakdown(shop, CustomerFilter(countries=["XX"]), "gender")
    assert not chart.available and chart.reason == NO_MATCHING_CUSTOMERS and chart.data.empty


def test_a_page_run_reads_the_shop_state_once_per_cursor(store):
    # Every chart of a page asks for the shop's state (features computed, consenting
    # customers): a page run reads it once per cursor, so a consent change shows at the
    # next run; a call outside page runs reads it afresh.
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    with explore.page_run():
        before = explore._state(cur)
        assert size(cur, EVERYONE) == 32
        cur.execute("UPDATE customers SET consent_analytics = false WHERE customer_id = 1")
        assert explore._state(cur) is before
    assert explore._state(cur).key != before.key
    assert size(cur, EVERYONE) == 31


def test_a_page_run_attaches_the_shared_ranges_once_per_cursor(store, monkeypatch):
    # Every chart of a dated page asks for the shared ranges: the attach runs once per
    # cursor and page run, and again outside page runs.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    attached = []
    attach = explore._attach_shared_ranges
    main = threading.current_thread()  # not a thread still building a range of another test

    def counted(c: duckdb.DuckDBPyConnection) -> bool:
        if threading.current_thread() is main:
            attached.append(c)
        return attach(c)

    monkeypatch.setattr(explore, "_attach_shared_ranges", counted)
    june = CustomerFilter(start=date(2024, 6, 1), end=date(2024, 6, 15))
    with explore.page_run():
        every_chart(cur, june)
        other = store.connection.cursor()  # another session's cursor
        every_chart(other, june)
    assert attached == [cur, other]
    assert size(cur, june) > 0 and len(attached) > 2


def test_attached_shared_ranges_are_found_by_a_read(store):
    # Once the shared ranges are attached, telling so takes one read: a statement changing
    # the catalog would wait for a background build writing a table there.
    cur = store.cursor()
    assert explore._attach_shared_ranges(cur)
    statements: list[str] = []

    class Spy:
        def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
            statements.append(sql)
            return cur.execute(sql, *args)

    assert explore._attach_shared_ranges(Spy())  # type: ignore[arg-type]
    assert len(statements) == 1 and statements[0].startswith("SELECT")


def test_withdrawn_consent_applies_before_recomputing(store):
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    assert size(cur, EVERYONE) == 32
    orders_before = order_mix(cur, EVERYONE, "channel").data["orders"].sum()
    cur.execute("UPDATE customers SET consent_analytics = false WHERE customer_id = 1")
    assert size(cur, EVERYONE) == 31
    assert 1 not in set(audience_export(cur, EVERYONE).data["customer_id"])
    # Customer 1's single order leaves the charts too.
    assert order_mix(cur, EVERYONE, "channel").data["orders"].sum() == orders_before - 1


def test_new_segment_thresholds_show_at_once(store):
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    before = behaviour_segments(cur, EVERYONE).data.set_index("segment")["customers"]
    rules = BehaviourRules(loyal_min_orders=2, loyal_max_recency_days=365)
    assign_segments(cur, rules)
    expected = reference_segments(computed_features(cur), rules)["loyal_buyers"]
    after = behaviour_segments(cur, EVERYONE).data.set_index("segment")["customers"]
    assert after["loyal_buyers"] == len(expected) > before["loyal_buyers"]
    assert size(cur, CustomerFilter(segments=["loyal_buyers"])) == len(expected)


# ---------------------------------------------------------------- charts against pandas


def test_demographics_against_pandas(shop, raw):
    c = raw["customers"]
    gender = demographic_breakdown(shop, EVERYONE, "gender").data
    assert dict(zip(gender["value"], gender["customers"], strict=True)) == c["gender"].value_counts().to_dict()
    ages = demographic_breakdown(shop, EVERYONE, "age_band").data
    bands = pd.cut(c["age"], [0, 18, 25, 35, 45, 55, 65, 200], right=False,
                   labels=["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"])
    expected = {k: v for k, v in bands.value_counts().to_dict().items() if v}
    assert dict(zip(ages["value"], ages["customers"], strict=True)) == expected
    assert list(ages["value"]) == [b for b in explore.AGE_BANDS if b in expected]  # band order
    interests = demographic_breakdown(shop, EVERYONE, "interests").data
    counts = c["interests"].explode().value_counts().to_dict()
    # Customers with no interest are counted under a missing value ("not recorded").
    unknown = interests[interests["value"].isna()]
    assert unknown["customers"].tolist() == [int((c["interests"].apply(len) == 0).sum())]
    known = interests[interests["value"].notna()]
    assert dict(zip(known["value"], known["customers"], strict=True)) == counts


def test_missing_demographic_field_is_reported(shop):
    chart = demographic_breakdown(shop, EVERYONE, "education")  # nobody has one
    assert not chart.available and chart.reason == FIELD_MISSING
    with pytest.raises(ValidationError):
        demographic_breakdown(shop, EVERYONE, "shoe_size")


def test_rfm_grid_and_groups(shop):
    features = computed_features(shop)
    scores = reference_scores(features).join(features["monetary"])
    grid = rfm_grid(shop, EVERYONE)
    assert grid.n_customers == 29 and len(grid.data) == 25
    expected = scores.groupby(["r_score", "f_score"]).agg(customers=("monetary", "size"), revenue=("monetary", "sum"))
    for _, row in grid.data.iterrows():
        key = (row["r_score"], row["f_score"])
        want = expected.loc[key] if key in expected.index else {"customers": 0, "revenue": 0.0}
        assert row["customers"] == want["customers"] and row["revenue"] == pytest.approx(want["revenue"])
    groups = rfm_groups(shop, EVERYONE).data
    assert list(groups["rfm_group"]) == list(RFM_GROUPS)
    assert groups["customers"].sum() == 29 and groups["share"].sum() == pytest.approx(1.0)
    assert groups["revenue_share"].sum() == pytest.approx(1.0)


def test_behaviour_segment_sizes(shop):
    expected = reference_segments(computed_features(shop), BehaviourRules())
    chart = behaviour_segments(shop, EVERYONE).data
    got = dict(zip(chart["segment"], chart["customers"], strict=True))
    assert got == {k: len(v) for k, v in expected.items()}


def test_funnel_against_pandas(shop, raw):
    s = raw["sessions"]
    chart = funnel(shop, EVERYONE)
    expected = [len(s), int(s["viewed_product"].sum()), int(s["added_to_cart"].sum()),
                int(s["checkout_started"].sum()), int(s["converted"].sum())]
    assert list(chart.data["sessions"]) == expected
    assert expected[-1] > 0 and expected[0] > expected[2]
    assert chart.n_customers == s["customer_id"].nunique()
    assert chart.data.loc[2, "step_rate"] == pytest.approx(expected[2] / expected[1])


def test_cart_abandonment_against_pandas(shop, raw):
    s = raw["sessions"]
    carts = s[s["added_to_cart"] == True]  # noqa: E712
    for by in ("device", "source"):
        chart = cart_abandonment(shop, EVERYONE, by).data.set_index("value")
        want = carts.groupby(by).agg(cart=("session_id", "size"), abandoned=("converted", lambda x: int((~x).sum())))
        assert chart["cart_sessions"].to_dict() == want["cart"].to_dict()
        assert chart["abandoned_sessions"].to_dict() == want["abandoned"].to_dict()


def test_order_mix_against_pandas(shop, raw):
    done = raw["completed"]
    for by in ("channel", "device", "payment_method"):
        chart = order_mix(shop, EVERYONE, by).data.set_index("value")
        assert chart["orders"].to_dict() == done.groupby(by).size().to_dict()
        assert chart["revenue_share"].sum() == pytest.approx(1.0)


def test_category_mix_against_pandas(shop, raw):
    done = raw["completed"]
    items = raw["items"][raw["items"]["order_id"].isin(done["order_id"])]
    want = (items["quantity"] * items["unit_price"]).groupby(items["category"]).sum()
    chart = category_mix(shop, EVERYONE).data.set_index("category")
    assert chart["revenue"].to_dict() == pytest.approx(want.to_dict())
    assert list(chart.index) == list(want.sort_values(ascending=False).index)


def test_weekday_hour_against_pandas(shop, raw):
    done = raw["completed"]
    chart = weekday_hour(shop, EVERYONE).data
    assert len(chart) == 7 * 24
    want = done.groupby([done["ordered_at"].dt.weekday, done["ordered_at"].dt.hour]).size()
    got = chart[chart["orders"] > 0].set_index(["weekday", "hour"])["orders"]
    assert got.to_dict() == want.to_dict()


def test_new_vs_returning_revenue(shop, raw):
    done = raw["completed"].copy()
    done["month"] = done["ordered_at"].dt.to_period("M").dt.to_timestamp().dt.date
    first = done.groupby("customer_id")["month"].transform("min")
    chart = new_vs_returning_revenue(shop, EVERYONE)
    assert chart.data["new_revenue"].sum() == pytest.approx(done.loc[done["month"] == first, "amount"].sum())
    assert chart.data["returning_revenue"].sum() == pytest.approx(done.loc[done["month"] != first, "amount"].sum())
    assert chart.n_customers == 29


def test_cohort_retention(shop, raw):
    done = raw["completed"].copy()
    done["month"] = done["ordered_at"].dt.to_period("M")
    first = done.groupby("customer_id")["month"].min()
    chart = cohort_retention(shop, EVERYONE).data
    start = chart[chart["months_since"] == 0]
    assert (start["retention"] == 1.0).all()
    assert start["cohort_size"].sum() == 29
    # Cohort sizes: customers per first-order month, with pandas.
    want = first.value_counts().sort_index()
    assert list(start["customers"]) == list(want.values)
    assert (chart["retention"] <= 1.0).all() and (chart["months_since"] > 0).any()


def test_date_range_over_all_data_matches_the_rollups(shop):
    # The raw-table path (any date range) and the rollup path (none) must agree when the
    # range covers every order and session.
    everything = CustomerFilter(start=date(2000, 1, 1), end=date(2024, 6, 30))
    assert size(shop, everything) == 31  # all but 32, who has done nothing yet
    for fn in (funnel, category_mix, weekday_hour):
        a, b = fn(shop, EVERYONE).data, fn(shop, everything).data
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    for by in ("device", "source"):
        pd.testing.assert_frame_equal(
            cart_abandonment(shop, EVERYONE, by).data, cart_abandonment(shop, everything, by).data,
            check_dtype=False,
        )
    pd.testing.assert_frame_equal(
        order_mix(shop, EVERYONE, "payment_method").data, order_mix(shop, everything, "payment_method").data,
        check_dtype=False,
    )


def range_customers(cur: duckdb.DuckDBPyConnection, start: date | None, end: date | None) -> pd.DataFrame:
    """The customers table of a date range, as the audience reads it."""
    state = explore._state(cur)
    prefix, _ = explore._ensure_range(cur, state, CustomerFilter(start=start, end=end))
    return cur.execute(f"SELECT * FROM {prefix}customers ORDER BY customer_id").df()


def reference_range_customers(cur: duckdb.DuckDBPyConnection, start: date | None, end: date | None) -> pd.DataFrame:
    """The same with pandas: consenting customers with a completed order or a visit in the
    range, their orders and revenue there, whether they visited and put something in a cart."""
    lo = pd.Timestamp(start or date(1900, 1, 1))
    hi = pd.Timestamp(end + timedelta(days=1)) if end else pd.Timestamp(date(9999, 1, 1))
    keep = set(cur.execute("SELECT customer_id FROM customers WHERE consent_analytics").df()["customer_id"])
    orders = cur.execute("SELECT customer_id, ordered_at, amount FROM orders WHERE status = 'completed'").df()
    orders = orders[(orders["ordered_at"] >= lo) & (orders["ordered_at"] < hi) & orders["customer_id"].isin(keep)]
    sessions = cur.execute("SELECT customer_id, started_at, added_to_cart FROM sessions").df()
    sessions = sessions[(sessions["started_at"] >= lo) & (sessions["started_at"] < hi) & sessions["customer_id"].isin(keep)]
    buyers = orders.groupby("customer_id").agg(orders=("amount", "size"), revenue=("amount", "sum"))
    visitors = sessions.assign(carter=sessions["added_to_cart"].fillna(False).astype(bool)).groupby("customer_id")["carter"].any()
    out = buyers.join(visitors.rename("carter").to_frame().assign(visitor=True), how="outer")
    out = out.fillna({"orders": 0, "revenue": 0.0, "visitor": False, "carter": False})
    return out.reset_index()[["customer_id", "orders", "revenue", "visitor", "carter"]].sort_values("customer_id")


@pytest.fixture(scope="module")
def generated() -> duckdb.DuckDBPyConnection:
    """A generated shop of two years of sessions (the customers' days span several columns)."""
    from sample_data.generator import generate_shop

    store = open_store(":memory:")
    cur = store.cursor()
    generate_shop(cur, n_customers=400, seed=11)
    compute_customer_features(cur)
    yield cur
    store.close()


@pytest.mark.parametrize("columns", [8, 1])
def test_range_customers_read_from_the_customers_days_match_the_sessions(generated, monkeypatch, columns):
    # The visitors of a range read from the customers' days (bits, 128 days to a column)
    # agree with a pass over the range's sessions and with pandas, whatever the range: one
    # day, across a column boundary, on a column's first and last days, starting before the
    # first session, ending after the last, open on either side, after the data. With days
    # covering the last 128 days only, the ranges starting before them read the sessions.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    monkeypatch.setattr(explore, "_DAY_COLUMNS", columns)
    cur = generated
    explore.clear_cache(cur)
    first, last = (d.date() for d in cur.execute("SELECT min(started_at), max(started_at) FROM sessions").fetchone())
    assert (last - first).days > 3 * explore._DAY_BITS  # the columns are all used
    day = timedelta(days=1)
    ranges = [
        (first, first), (first - 10 * day, first + 5 * day), (first + 120 * day, first + 140 * day),
        (first + 127 * day, first + 127 * day), (first + 128 * day, first + 128 * day),
        (first + 100 * day, first + 300 * day), (last - 59 * day, last), (last - 5 * day, last + 30 * day),
        (last + 1 * day, last + 40 * day), (None, first + 200 * day), (first + 300 * day, None),
    ]
    from_sessions = {r: range_customers(cur, *r) for r in ranges}
    explore.clear_cache(cur)
    assert explore.prepare_customer_days(cur)
    read, from_days = [], explore._range_visitors
    monkeypatch.setattr(explore, "_range_visitors", lambda *a: read.append(a) or from_days(*a))
    for r in ranges:
        got = range_customers(cur, *r)
        pd.testing.assert_frame_equal(got, from_sessions[r], check_dtype=False)
        want = reference_range_customers(cur, *r)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    origin, covers_all = cur.execute("SELECT origin, covers_all FROM explorer_ranges.activity").fetchone()
    assert covers_all == (columns == 8) and (last - origin).days < columns * explore._DAY_BITS
    covered = [r for r in ranges if covers_all or (r[0] is not None and r[0] >= origin)]
    assert len(read) == len(covered) >= 3  # these ranges read the days
    assert sum(len(from_sessions[r]) > 0 for r in ranges) == len(ranges) - 1  # only the range after the data is empty


RANGE_CHARTS: dict[str, Any] = {
    "funnel": funnel,
    "cart by device": lambda cur, f: cart_abandonment(cur, f, "device"),
    "cart by source": lambda cur, f: cart_abandonment(cur, f, "source"),
    **{f"mix by {by}": partial(order_mix, by=by) for by in ("channel", "device", "payment_method")},
    "categories": category_mix,
    "weekday x hour": weekday_hour,
}


def reference_range_charts(
    cur: duckdb.DuckDBPyConnection, start: date, end: date, countries: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The charts of a date range reading its rollups, with pandas, from the raw tables:
    consenting customers' (of these countries, if any) completed orders and sessions of
    [start, end]; a session converted when its completed order is of the range or the day
    after it."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end + timedelta(days=1))
    customers = cur.execute("SELECT customer_id, country FROM customers WHERE consent_analytics").df()
    keep = set((customers[customers["country"].isin(countries)] if countries else customers)["customer_id"])
    orders = cur.execute("SELECT * FROM orders WHERE status = 'completed'").df()
    sessions = cur.execute("SELECT * FROM sessions").df()
    items = cur.execute("SELECT i.*, p.category FROM order_items i LEFT JOIN products p USING (product_id)").df()
    bought = orders[(orders["ordered_at"] >= lo) & (orders["ordered_at"] < hi) & orders["customer_id"].isin(keep)]
    seen = sessions[(sessions["started_at"] >= lo) & (sessions["started_at"] < hi) & sessions["customer_id"].isin(keep)]
    converting = orders[(orders["ordered_at"] >= lo) & (orders["ordered_at"] < hi + pd.Timedelta(days=1))]["order_id"]
    seen = seen.assign(
        ordered=seen["order_id"].isin(set(converting)), cart=seen["added_to_cart"].fillna(False).astype(bool),
    )
    out: dict[str, Any] = {
        "funnel": [len(seen), int(seen["viewed_product"].fillna(False).sum()), int(seen["cart"].sum()),
                   int(seen["checkout_started"].fillna(False).sum()), int(seen["ordered"].sum())],
    }
    for by in ("device", "source"):
        carts = seen[seen["cart"]]
        out[f"cart by {by}"] = {
            v: (g["customer_id"].nunique(), len(g), int((~g["ordered"]).sum()))
            for v, g in carts.groupby(by, dropna=False)
        }
    for by in ("channel", "device", "payment_method"):
        out[f"mix by {by}"] = {
            v: (g["customer_id"].nunique(), len(g), g["amount"].sum()) for v, g in bought.groupby(by, dropna=False)
        }
    lines = items.merge(bought[["order_id", "customer_id"]], on="order_id")
    lines = lines.assign(revenue=lines["quantity"] * lines["unit_price"])
    out["categories"] = {
        v: (g["customer_id"].nunique(), g["revenue"].sum()) for v, g in lines.groupby("category", dropna=False)
    }
    out["weekday x hour"] = {
        (d, h): len(g) for (d, h), g in bought.groupby([bought["ordered_at"].dt.weekday, bought["ordered_at"].dt.hour])
    }
    return out


def assert_matches_reference(name: str, chart: explore.ChartData, want: Any) -> None:
    df = chart.data
    if name == "funnel":
        assert list(df["sessions"]) == want
    elif name.startswith("cart"):
        got = {v: (c, n, a) for v, c, n, a in zip(df["value"], df["customers"], df["cart_sessions"], df["abandoned_sessions"], strict=True)}
        assert got == want
    elif name.startswith("mix"):
        assert set(df["value"]) == set(want)
        for v, c, n, r in zip(df["value"], df["customers"], df["orders"], df["revenue"], strict=True):
            assert (c, n) == want[v][:2] and r == pytest.approx(want[v][2])
    elif name == "categories":
        assert set(df["category"]) == set(want)
        for v, c, r in zip(df["category"], df["customers"], df["revenue"], strict=True):
            assert c == want[v][0] and r == pytest.approx(want[v][1])
    else:
        got = {(d, h): n for d, h, n in zip(df["weekday"], df["hour"], df["orders"], strict=True) if n}
        assert got == want


@pytest.mark.parametrize("columns", [8, 1])
def test_range_charts_read_from_the_day_tables_match_the_rollups_and_pandas(generated, monkeypatch, columns):
    # The charts of a new range that read its rollups (funnel, cart abandonment, order
    # mixes, categories, weekday x hour) are drawn from the day tables for a filter on
    # dates alone: the same frames as from the rollups, and pandas' figures, whatever the
    # range. One range ends on the day of a session whose order came after midnight (it
    # converted). With days covering the last 128 days only, the ranges starting before
    # them read the rollups. A range with a country reads the day tables of the orders
    # (a membership test per row), and the session rollups.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    monkeypatch.setattr(explore, "_DAY_COLUMNS", columns)
    cur = generated
    first, last = (d.date() for d in cur.execute("SELECT min(started_at), max(started_at) FROM sessions").fetchone())
    late = cur.execute(
        "SELECT s.started_at::DATE FROM sessions s JOIN orders o USING (order_id) "
        "WHERE o.status = 'completed' AND o.ordered_at::DATE > s.started_at::DATE "
        "AND s.customer_id IN (SELECT customer_id FROM customers WHERE consent_analytics) "
        "ORDER BY s.started_at DESC LIMIT 1"
    ).fetchone()
    assert late is not None  # a session converting after midnight
    day = timedelta(days=1)
    ranges = [
        (last - 59 * day, last), (first + 127 * day, first + 128 * day), (last, last),
        (late[0] - 6 * day, late[0]), (first + 100 * day, first + 400 * day), (last - 20 * day, last + 30 * day),
    ]
    filters = [CustomerFilter(start=a, end=b) for a, b in ranges]
    country = cur.execute("SELECT country FROM customers GROUP BY ALL ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    filters.append(CustomerFilter(start=last - 59 * day, end=last, countries=(country,)))
    explore.clear_cache(cur)
    from_rollups = {(f, name): chart(cur, f) for f in filters for name, chart in RANGE_CHARTS.items()}
    explore.clear_cache(cur)
    assert explore.prepare_customer_days(cur)
    origin, covers_all, day_tables = cur.execute("SELECT origin, covers_all, day_tables FROM explorer_ranges.activity").fetchone()
    assert day_tables and covers_all == (columns == 8)
    read: list[str] = []
    from_days = explore._day_bundle
    monkeypatch.setattr(explore, "_day_bundle", lambda *a: read.append(a[3]) or from_days(*a))
    for f in filters:
        read.clear()
        reference = reference_range_charts(cur, f.start, f.end, f.countries)
        for name, chart in RANGE_CHARTS.items():
            got, want = chart(cur, f), from_rollups[(f, name)]
            assert got.n_customers == want.n_customers, (f, name)
            pd.testing.assert_frame_equal(got.data, want.data, check_dtype=False)
            assert_matches_reference(name, got, reference[name])
        reads_days = covers_all or f.start >= origin
        orders = {"order_mix", "categories", "categorised", "weekday_hour"}
        sessions = {"sessions_device", "sessions_source"} if not f.countries else set()
        assert set(read) == ((orders | sessions) if reads_days else set()), f
    assert sum(covers_all or f.start >= origin for f in filters) >= 4


def test_a_shop_without_sessions_gets_day_tables_for_its_orders(store, monkeypatch):
    # The days start from the first order when there are no sessions: a range's order
    # charts read the day tables, with the same frames as from its rollups; the session
    # charts say there are no sessions.
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    cur = store.cursor()
    build_small_shop(cur, with_sessions=False)
    compute_customer_features(cur)
    flt = CustomerFilter(start=date(2024, 2, 5), end=date(2024, 6, 20))
    orders = ("mix by channel", "mix by payment_method", "categories", "weekday x hour")
    from_rollups = {name: RANGE_CHARTS[name](cur, flt) for name in orders}
    explore.clear_cache(cur)
    assert explore.prepare_customer_days(cur)
    origin, day_tables = cur.execute("SELECT origin, day_tables FROM explorer_ranges.activity").fetchone()
    first = cur.execute("SELECT min(ordered_at)::DATE FROM orders WHERE customer_id IS NOT NULL").fetchone()[0]
    assert day_tables and origin == first
    read: list[str] = []
    from_days = explore._day_bundle
    monkeypatch.setattr(explore, "_day_bundle", lambda *a: read.append(a[3]) or from_days(*a))
    for name in orders:
        got, want = RANGE_CHARTS[name](cur, flt), from_rollups[name]
        assert got.n_customers == want.n_customers > 0
        pd.testing.assert_frame_equal(got.data, want.data, check_dtype=False)
    assert {"order_mix", "categories", "weekday_hour"} <= set(read)
    assert funnel(cur, flt).reason == "no_sessions"


def test_customer_days_are_built_once_per_state_and_dropped_with_the_caches(store, monkeypatch):
    monkeypatch.setattr(explore, "RANGE_CUBES_LATER", False)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    explore.clear_cache(cur)

    def built() -> tuple[list[tuple[Any, ...]], list[str]]:
        rows = cur.execute("SELECT generation, key FROM explorer_ranges.activity ORDER BY 1").fetchall()
        tables = cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'explorer_ranges' "
            "AND starts_with(table_name, 'activity_') ORDER BY 1"
        ).fetchall()
        return rows, [t for (t,) in tables]

    def day_tables() -> list[str]:
        tables = cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'explorer_days' ORDER BY 1")
        return [t for (t,) in tables.fetchall()]

    read, from_days = [], explore._range_visitors
    monkeypatch.setattr(explore, "_range_visitors", lambda *a: read.append(a) or from_days(*a))
    explore.prepare_periods(cur, date(2024, 1, 1), REF_TS.date())  # the days come first
    state = explore._state(cur)
    assert built() == ([(1, state.key)], ["activity_1"])
    assert day_tables() == sorted(f"{kind}_1" for kind in explore._DAY_TABLES)
    assert len(read) == len(explore.PERIODS)  # the periods read them
    assert explore.prepare_customer_days(cur) and built()[0] == [(1, state.key)]  # not built again
    # A withdrawn consent is a new state: a range reads the sessions until the days are
    # built again, and the withdrawn customer is in neither.
    # (A new range each time: a range once built is kept for its state.)
    june = (date(2024, 6, 1), date(2024, 6, 20))
    withdrawn = int(range_customers(cur, *june)["customer_id"].iloc[0])
    cur.execute("UPDATE customers SET consent_analytics = false WHERE customer_id = ?", [withdrawn])
    explore.clear_cache(cur, ranges=False)
    read.clear()
    wider = (date(2024, 6, 1), date(2024, 6, 21))
    assert withdrawn not in set(range_customers(cur, *wider)["customer_id"]) and not read
    assert explore.prepare_customer_days(cur)
    assert built() == ([(2, explore._state(cur).key)], ["activity_2"])  # the old days are dropped
    assert day_tables() == sorted(f"{kind}_2" for kind in explore._DAY_TABLES)
    widest = (date(2024, 6, 1), date(2024, 6, 22))
    got = range_customers(cur, *widest)
    assert len(read) == 1 and withdrawn not in set(got["customer_id"])
    pd.testing.assert_frame_equal(got, reference_range_customers(cur, *widest).reset_index(drop=True), check_dtype=False)
    # Days dropped between finding them and reading them (replaced by newer ones): the
    # range reads its sessions instead, with the same customers.
    cur.execute("DROP TABLE explorer_ranges.activity_2")
    last = (date(2024, 6, 1), date(2024, 6, 23))
    pd.testing.assert_frame_equal(
        range_customers(cur, *last), reference_range_customers(cur, *last).reset_index(drop=True), check_dtype=False
    )
    explore.clear_cache(cur)
    assert built() == ([], []) and day_tables() == []


# ---------------------------------------------------------------- missing data


def test_shop_without_sessions_says_so(store):
    cur = store.cursor()
    build_small_shop(cur, with_sessions=False)
    compute_customer_features(cur)
    for chart in (funnel(cur, EVERYONE), cart_abandonment(cur, EVERYONE, "source")):
        assert not chart.available and chart.reason == NO_SESSIONS and chart.data.empty
    assert order_mix(cur, EVERYONE, "channel").available  # orders are still there


def test_features_not_computed_says_so(store):
    cur = store.cursor()
    build_small_shop(cur)
    for chart in (audience_summary(cur, EVERYONE), rfm_grid(cur, EVERYONE), audience_export(cur, EVERYONE)):
        assert not chart.available and chart.reason == NO_FEATURES


# ---------------------------------------------------------------- customers and export


def test_best_customers(shop):
    features = computed_features(shop)
    by_revenue = best_customers(shop, EVERYONE, "revenue", 3).data
    assert list(by_revenue["customer_id"]) == list(features["monetary"].sort_values(ascending=False).index[:3])
    assert by_revenue.loc[0, "customer_id"] == 29 and by_revenue.loc[0, "monetary"] == 715.0
    by_tenure = best_customers(shop, EVERYONE, "tenure", 1).data
    assert by_tenure.loc[0, "customer_id"] == 33  # signed up 800 days ago
    aov = features["average_order_value"].dropna().sort_values(ascending=False, kind="stable")
    assert best_customers(shop, EVERYONE, "aov", 1).data.loc[0, "customer_id"] == aov.index[0]
    with pytest.raises(ValidationError):
        best_customers(shop, EVERYONE, "charm")


def test_best_customers_when_few_top_customers_pass_the_filter(shop, raw, monkeypatch):
    # Only the 3 best customers overall are tried first: too few French ones among them, so
    # every customer is checked; the answer is still the 5 best French customers.
    monkeypatch.setattr(explore, "_BEST_CANDIDATES", 3)
    explore.clear_cache(shop)
    features = computed_features(shop)
    france = set(raw["customers"].loc[raw["customers"]["country"] == "FR", "customer_id"])
    ranked = features.loc[sorted(france)].sort_values("monetary", ascending=False, kind="stable")
    best = best_customers(shop, CustomerFilter(countries=["FR"]), "revenue", 5).data
    assert list(best["customer_id"]) == list(ranked.index[:5])
    assert set(best["country"]) == {"FR"}


def test_audience_export_excludes_non_consenting_and_unsubscribed_emails(shop, raw):
    flt = CustomerFilter(countries=["FR"])  # customer 31 lives in FR but refused consent
    rows = audience_export(shop, flt).data
    assert NO_CONSENT not in set(rows["customer_id"])
    assert sorted(rows["customer_id"]) == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    c = raw["customers"].set_index("customer_id")
    for cid, email in zip(rows["customer_id"], rows["email"], strict=True):
        opted = bool(c.loc[cid, "newsletter_opt_in"]) and pd.notna(c.loc[cid, "email"])
        assert (email == c.loc[cid, "email"]) if opted else pd.isna(email), cid
    assert rows["email"].notna().sum() == 4  # 4, 16, 22, 28 opted in; 10 has no email
    everyone = audience_export(shop, EVERYONE).data
    assert sorted(everyone["customer_id"]) == CONSENTING


def test_file_name_describes_the_filter():
    flt = CustomerFilter(countries=["FR", "BE"], rfm_groups=["champions"], start=date(2024, 1, 1))
    assert audience_file_name(flt, today=date(2026, 11, 23)) == "audience_2024-01-01_FR+BE_champions_2026-11-23.csv"
    assert audience_file_name(EVERYONE, today=date(2026, 11, 23)) == "audience_everyone_2026-11-23.csv"


# ---------------------------------------------------------------- compare


def test_compare_with_everyone(shop):
    result = compare(shop, CustomerFilter(countries=["FR"]))
    assert (result.n_a, result.n_b) == (10, 32)
    fr = result.breakdown("country").set_index("value").loc["FR"]
    # FR is all of A and 10 of the 32 customers of the base: index 100 * 1 / (10 / 32) = 320.
    assert fr["a"] == 1.0 and fr["b"] == pytest.approx(10 / 32)
    assert fr["index"] == pytest.approx(320.0)
    assert bool(fr["too_small"])  # 10 customers behind it in A
    # Every standout stands on at least 30 customers on each side: none here.
    assert result.standouts.empty
    assert result.unavailable == {"education": FIELD_MISSING}


def test_compare_standouts_are_sorted_by_strength(shop, monkeypatch):
    monkeypatch.setattr(explore, "MIN_GROUP_SIZE", 1)
    result = compare(shop, CustomerFilter(countries=["FR"]), CustomerFilter(countries=["DE"]))
    strengths = [abs(math.log(i / 100)) for i in result.standouts["index"]]
    assert len(strengths) > 10 and strengths == sorted(strengths, reverse=True)
    # Country is FR on one side and DE on the other: no value is on both, so no standout.
    assert "country" not in set(result.standouts["breakdown"])


# ---------------------------------------------------------------- the filter itself


def test_filter_validation():
    with pytest.raises(ValidationError, match="swap"):
        CustomerFilter(start=date(2024, 2, 1), end=date(2024, 1, 1))
    with pytest.raises(ValidationError, match="RFM group"):
        CustomerFilter(rfm_groups=["vips"])
    with pytest.raises(ValidationError, match="segment"):
        CustomerFilter(segments=["robots"])
    assert CustomerFilter(segments=["interest:books"]).segments == ("interest:books",)


def test_filter_round_trips_through_query_params():
    flt = CustomerFilter(start=date(2024, 1, 1), countries=["FR", "BE"], persona_ids=[3], segments=["inactive"])
    params = flt.to_query_params()
    assert params == {"start": "2024-01-01", "countries": "FR,BE", "segments": "inactive", "persona_ids": "3"}
    assert CustomerFilter.from_query_params(params) == flt
    assert CustomerFilter.from_query_params({"unknown": "x"}) == EVERYONE
    with pytest.raises(ValidationError):
        CustomerFilter.from_query_params({"start": "yesterday"})


def test_filter_options(shop):
    options = filter_options(shop)
    assert options.countries == ["BE", "DE", "FR"]
    assert options.rfm_groups == list(RFM_GROUPS)
    assert "loyal_buyers" in options.segments and "interest:books" in options.segments
    assert options.last_day == date(2024, 6, 30)


def test_date_range_works_on_a_read_only_database(tmp_path):
    db = tmp_path / "shop.duckdb"
    store = open_store(db)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    store.close()
    ro = open_store(db, read_only=True)
    try:
        flt = CustomerFilter(start=(REF_TS - timedelta(days=30)).date())
        assert size(ro.cursor(), flt) > 0
        # Changing the range rebuilds the cached set of active customers.
        wider = CustomerFilter(start=(REF_TS - timedelta(days=300)).date())
        assert size(ro.cursor(), wider) > size(ro.cursor(), flt)
        # No shared ranges on a read-only store: nothing is prepared ahead, no error.
        assert explore.prepare_periods(ro.cursor(), date(2024, 1, 1), REF_TS.date()) == []
        assert not explore.prepare_customer_days(ro.cursor())
    finally:
        ro.close()


def test_usual_periods_are_prepared_ahead_and_read_by_a_later_filter(tmp_path):
    db = tmp_path / "shop.duckdb"
    store = open_store(db)
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    first, last = date(2024, 1, 1), REF_TS.date() - timedelta(days=1)
    assert explore.period_range(30, first, last) == (last - timedelta(days=29), last)
    assert explore.period_range(10_000, first, last) == (first, last)  # never before the data
    assert sorted(explore.prepare_periods(store.cursor(), first, last)) == sorted(explore.PERIODS)
    built = cur.execute("SELECT count(*) FROM explorer_ranges.ranges").fetchall()
    assert built == [(len(explore.PERIODS),)]
    start, end = explore.period_range(90, first, last)
    flt = CustomerFilter(start=start, end=end)
    prepared = every_chart(store.cursor(), flt)
    assert cur.execute("SELECT count(*) FROM explorer_ranges.ranges").fetchall() == built  # read, not built
    store.close()
    # The same numbers as a range built on demand, in a store of its own.
    fresh = open_store(db)
    try:
        on_demand = every_chart(fresh.cursor(), flt)
    finally:
        fresh.close()
    assert_same_charts(prepared, on_demand)
    assert prepared["summary"].n_customers > 0
