"""AppTest: the segment explorer runs on a generated shop, every filter reaches the engine
and the URL, each view renders, and the audience export never lists a non-consenting customer.

Expected numbers come from persona_engine.explore on the same file (the engine is tested
against pandas in test_explore.py); here the question is whether the page shows them.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from persona_engine import auth, explore
from persona_engine.explore import CustomerFilter, audience_summary, best_customers, rfm_groups
from persona_engine.features import compute_customer_features
from persona_engine.personas import create_persona
from persona_engine.segments import load_rules
from persona_engine.store import open_store
from tests.conftest import held_rollups, open_page
from ui.explorer_data import SESSION_CURSOR, audience_csv
from ui.explorer_filters import FILTERS

PAGE = "pages/explorer.py"
PERSONA_MEMBERS = 200  # customers 1-400, odd ids: some have no consent and must never count


@pytest.fixture(scope="session")
def explorer_db(sample_db, tmp_path_factory) -> Path:
    """The 3,000-customer sample shop with customer features and one persona."""
    path = tmp_path_factory.mktemp("explorer") / "shop.duckdb"
    shutil.copy(sample_db, path)
    s = open_store(path)
    cur = s.cursor()
    compute_customer_features(cur)
    create_persona(cur, {"name": "Odd ones"}, "tests", members=range(1, 2 * PERSONA_MEMBERS, 2))
    s.close()
    return path


@pytest.fixture
def shop(explorer_db, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(explorer_db))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))  # no sign-in
    return explorer_db


def engine_customers(db: Path, flt: CustomerFilter) -> int:
    s = open_store(db)
    try:
        return int(audience_summary(s.cursor(), flt).data.loc[0, "customers"])
    finally:
        s.close()


def open_explorer(query: dict[str, str | list[str]] | None = None, **state) -> AppTest:
    return open_page(PAGE, query=query, **state)


def customers_shown(at: AppTest) -> int:
    return int(at.metric[0].value.replace(",", ""))


def test_explorer_shows_the_engines_headline_numbers(shop):
    at = open_explorer()
    assert not at.exception, at.exception
    assert at.title[0].value == "Segment explorer"
    assert [m.label for m in at.metric] == ["Customers", "Buyers", "Completed orders", "Revenue",
                                            "Average order value"]
    everyone = engine_customers(shop, CustomerFilter())
    # 3,000 generated customers, of whom those without analytics consent are left out.
    assert 2000 < everyone < 3000
    assert customers_shown(at) == everyone
    assert at.error == [] and at.warning == []


# A value of each filter that keeps some customers but not all (checked below).
PICKS: dict[str, list] = {
    "explorer_country": ["France"],
    "explorer_region": ["Île-de-France"],
    "explorer_channel": ["email", "social"],
    "explorer_device": ["mobile"],
    "explorer_rfm": ["champions"],
    "explorer_segment": ["cart_abandoners"],
    "explorer_persona": [1],
}


@pytest.mark.parametrize("param", FILTERS, ids=[p.name for p in FILTERS])
def test_each_filter_changes_the_numbers_as_the_engine_says_and_goes_in_the_url(shop, param):
    at = open_explorer()
    everyone = customers_shown(at)
    picked = PICKS[param.key]
    at.multiselect(key=param.key).set_value(picked).run()
    assert not at.exception, at.exception
    expected = engine_customers(shop, CustomerFilter(**{param.field: tuple(picked)}))
    assert 0 < expected < everyone, f"{param.name}: pick a value that keeps some customers"
    assert customers_shown(at) == expected
    url_value = at.query_params[param.name]
    assert (url_value if isinstance(url_value, list) else [url_value]) == [str(v) for v in picked]


def test_persona_filter_counts_only_consenting_members(shop):
    s = open_store(shop)
    consenting = s.cursor().execute(
        "SELECT count(*) FROM customers WHERE consent_analytics AND customer_id % 2 = 1 AND customer_id < ?",
        [2 * PERSONA_MEMBERS],
    ).fetchall()[0][0]
    s.close()
    assert consenting < PERSONA_MEMBERS  # some members have no consent: they must not count
    at = open_explorer()
    at.multiselect(key="explorer_persona").set_value([1]).run()
    assert customers_shown(at) == consenting


def test_the_explorer_runs_as_a_page_run_that_background_builds_wait_for(shop, monkeypatch):
    # The engine's calls happen inside a page run (explore.page_run), whether the page is
    # opened through the app or on its own; between runs none is counted.
    counts: list[int] = []
    audience = explore._audience

    def counted(cur, flt):
        counts.append(explore._PAGE_RUNS.running())
        return audience(cur, flt)

    monkeypatch.setattr(explore, "_audience", counted)
    st.cache_data.clear()  # the page's results of earlier tests would spare the engine
    at = open_explorer()
    assert not at.exception, at.exception
    assert counts and set(counts) == {1}
    assert explore._PAGE_RUNS.running() == 0


def test_behaviour_charts_of_a_new_range_follow_when_its_rollups_are_built(shop, monkeypatch):
    # The first use of a date range builds its customers; its rollups come from a thread.
    # Until they are there, the behaviour view draws what does not need them and says the
    # other charts are coming; the next run (the page polls) draws them all.
    go = held_rollups(monkeypatch)
    pending = "this chart appears in a few seconds"
    flt = CustomerFilter(start=date(2026, 2, 3), end=date(2026, 2, 24))
    try:
        at = open_explorer({"start": "2026-02-03", "end": "2026-02-24", "view": "behaviour"})
        assert not at.exception, at.exception
        waiting = [c.value for c in at.caption if pending in c.value]
        drawn = len(at.get("plotly_chart"))
        # Funnel, cart abandonment by device and by source, three order mixes, categories,
        # weekday x hour.
        assert len(waiting) == 8
        assert drawn >= 4  # RFM grid and groups, segments, new vs returning, cohorts
    finally:
        go.set()
    rollups_built(at.session_state[SESSION_CURSOR].cursor, flt)
    at.run()
    assert not at.exception, at.exception
    assert not [c.value for c in at.caption if pending in c.value]
    assert len(at.get("plotly_chart")) == drawn + 8


def test_order_charts_of_a_new_range_come_before_its_session_charts(shop, monkeypatch):
    # The order rollups are built first: once they are there, the next run draws the order
    # mixes, categories and weekday x hour, and the funnel and cart abandonment still wait.
    go = held_rollups(monkeypatch, sessions_only=True)
    pending = "this chart appears in a few seconds"
    flt = CustomerFilter(start=date(2026, 1, 6), end=date(2026, 2, 17))
    query = {"start": "2026-01-06", "end": "2026-02-17", "view": "behaviour"}
    try:
        at = open_explorer(query)
        assert not at.exception, at.exception
        cur = at.session_state[SESSION_CURSOR].cursor
        rollups_built(cur, flt, orders_only=True)
        assert not explore.range_rollups_ready(cur, flt)
        at.run()
        assert not at.exception, at.exception
        waiting = [c.value for c in at.caption if pending in c.value]
        assert len(waiting) == 3
        drawn = chart_keys(at)
        order_charts = {"explorer_mix_channel", "explorer_mix_device", "explorer_mix_payment_method",
                        "explorer_category_mix", "explorer_weekday_hour"}
        assert order_charts <= drawn
        assert not drawn & {"explorer_funnel", "explorer_cart_device", "explorer_cart_source"}
    finally:
        go.set()
    rollups_built(cur, flt)
    at.run()
    assert not at.exception, at.exception
    assert not [c.value for c in at.caption if pending in c.value]
    assert chart_keys(at) == drawn | {"explorer_funnel", "explorer_cart_device", "explorer_cart_source"}


def day_tables_written(at: AppTest) -> None:
    """Wait until the day tables are written (the explorer's thread writes them when it
    opens, unless they are there)."""
    cur = at.session_state[SESSION_CURSOR].cursor
    deadline = time.monotonic() + 60
    while True:
        days = explore._customer_days(cur, f"{explore._state(cur).key}|")
        if days is not None and days.day_tables:
            return
        assert time.monotonic() < deadline
        explore.prepare_customer_days(cur)  # unless the explorer's thread is writing them
        time.sleep(0.05)


SESSION_CHART_KEYS = {"explorer_funnel", "explorer_cart_device", "explorer_cart_source"}
ORDER_CHART_KEYS = {"explorer_mix_channel", "explorer_mix_device", "explorer_mix_payment_method",
                    "explorer_category_mix", "explorer_weekday_hour"}


def test_behaviour_charts_of_a_new_range_come_at_once_from_the_day_tables(shop, monkeypatch):
    # Once the day tables are written (when the explorer opens), a new range on dates alone
    # draws every behaviour chart in its first run, nothing waits for its rollups.
    at = open_explorer({"view": "behaviour"})
    assert not at.exception, at.exception
    day_tables_written(at)
    read: list[str] = []
    from_days = explore._day_bundle
    monkeypatch.setattr(explore, "_day_bundle", lambda *a: read.append(a[3]) or from_days(*a))
    st.cache_data.clear()
    at.date_input(key="explorer_dates").set_value((date(2026, 2, 2), date(2026, 3, 19))).run()
    assert not at.exception, at.exception
    assert not [c.value for c in at.caption if "this chart appears in a few seconds" in c.value]
    assert SESSION_CHART_KEYS | ORDER_CHART_KEYS <= chart_keys(at)
    assert {"sessions_device", "sessions_source", "order_mix", "categories", "weekday_hour"} <= set(read)


def test_order_charts_of_a_new_range_and_a_country_come_at_once_from_the_day_tables(shop, monkeypatch):
    # A country inside a new range: the day tables of the orders answer it (a membership
    # test per row), those of the sessions do not. The order charts are drawn in the first
    # run; the funnel and cart abandonment wait for the range's session rollups.
    at = open_explorer({"view": "behaviour"})
    assert not at.exception, at.exception
    day_tables_written(at)
    go = held_rollups(monkeypatch, day_tables=True)  # the range's order rollups wait too
    flt = CustomerFilter(start=date(2026, 1, 13), end=date(2026, 3, 3), countries=("France",))
    try:
        st.cache_data.clear()
        at.multiselect(key="explorer_country").set_value(["France"])
        at.date_input(key="explorer_dates").set_value((flt.start, flt.end)).run()
        assert not at.exception, at.exception
        assert len([c for c in at.caption if "this chart appears in a few seconds" in c.value]) == 3
        drawn = chart_keys(at)
        assert ORDER_CHART_KEYS <= drawn and not drawn & SESSION_CHART_KEYS
    finally:
        go.set()
    cur = at.session_state[SESSION_CURSOR].cursor
    rollups_built(cur, flt)
    at.run()
    assert not at.exception, at.exception
    assert SESSION_CHART_KEYS | ORDER_CHART_KEYS <= chart_keys(at)


def rollups_built(cur: duckdb.DuckDBPyConnection, flt: CustomerFilter, orders_only: bool = False) -> None:
    """Wait (30 s at most) until the range's rollups, or its order rollups, are built."""
    deadline = time.monotonic() + 30
    while not explore.range_rollups_ready(cur, flt, orders_only=orders_only):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def chart_keys(at: AppTest) -> set[str]:
    """The keys of the Plotly charts drawn (their element ids end with them)."""
    return {c.proto.id.rsplit("-", 1)[1] for c in at.get("plotly_chart")}


def test_date_range_filter(shop):
    at = open_explorer()
    at.date_input(key="explorer_dates").set_value((date(2026, 3, 1), date(2026, 3, 31))).run()
    assert not at.exception, at.exception
    expected = engine_customers(shop, CustomerFilter(start=date(2026, 3, 1), end=date(2026, 3, 31)))
    assert 0 < expected < 2000
    assert customers_shown(at) == expected
    assert at.query_params["start"] == "2026-03-01" and at.query_params["end"] == "2026-03-31"


def test_a_shared_link_opens_with_its_filters(shop):
    query = {"country": "France", "device": "mobile", "rfm": ["champions", "loyal"], "view": "behaviour",
             "start": "2025-06-01", "end": "2026-05-31"}
    at = open_explorer(query)
    assert not at.exception, at.exception
    assert at.multiselect(key="explorer_country").value == ["France"]
    assert at.multiselect(key="explorer_device").value == ["mobile"]
    assert at.multiselect(key="explorer_rfm").value == ["champions", "loyal"]
    assert at.date_input(key="explorer_dates").value == (date(2025, 6, 1), date(2026, 5, 31))
    expected = engine_customers(shop, CustomerFilter(
        start=date(2025, 6, 1), end=date(2026, 5, 31), countries=("France",), devices=("mobile",),
        rfm_groups=("champions", "loyal")))
    assert customers_shown(at) == expected
    assert at.session_state["explorer_view"] == "behaviour"


def test_unknown_values_in_a_link_are_dropped(shop):
    at = open_explorer({"country": ["Atlantis", "France"], "rfm": "best_friends", "view": "nowhere"})
    assert not at.exception, at.exception
    assert at.multiselect(key="explorer_country").value == ["France"]
    assert at.multiselect(key="explorer_rfm").value == []
    assert at.session_state["explorer_view"] == "demographics"


@pytest.mark.parametrize("view", ["demographics", "behaviour", "compare", "customers"])
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_view_runs_in_both_languages(shop, view, lang):
    at = open_explorer({"view": view, "device": "tablet"}, lang=lang)
    assert not at.exception, at.exception
    assert at.error == []
    # A chart per breakdown, each with the customers behind it.
    assert any("customers" in c.value or "clients" in c.value for c in at.caption)


def test_compare_view_sides_and_standouts(shop):
    at = open_explorer({"view": "compare"})
    assert not at.exception, at.exception
    # Side A opens on the champions, side B on everyone.
    assert at.multiselect(key="explorer_compare_a_rfm_groups").value == ["champions"]
    s = open_store(shop)
    champions = rfm_groups(s.cursor(), CustomerFilter()).data.set_index("rfm_group").loc["champions", "customers"]
    s.close()
    sizes = [c.value for c in at.caption if c.value.startswith("A: ")]
    assert sizes and f"({champions:,} customers)" in sizes[0]
    standouts = at.dataframe[0].value  # the only table of the view
    assert len(standouts) > 0
    # The RFM group is what side A was picked on: not listed as a finding.
    assert "RFM group" not in set(standouts["Breakdown"])


def test_best_customers_table_matches_the_engine(shop):
    at = open_explorer({"view": "customers", "country": "France"})
    assert not at.exception, at.exception
    table = at.dataframe[0].value  # the only table of the view
    s = open_store(shop)
    best = best_customers(s.cursor(), CustomerFilter(countries=("France",)), "revenue", 20).data
    s.close()
    assert len(table) == 20
    assert list(table["Customer id"]) == [str(c) for c in best["customer_id"]]
    assert at.download_button(key="explorer_export").label == "Download the audience (CSV)"


def test_audience_csv_lists_consenting_customers_of_the_filter_only(shop):
    s = open_store(shop)
    cur = s.cursor()
    flt = CustomerFilter(countries=("France",), devices=("mobile",))
    frame = pd.read_csv(pd.io.common.BytesIO(audience_csv(s, flt)))
    raw = cur.execute(
        "SELECT c.customer_id, c.consent_analytics, c.country, f.main_device "
        "FROM customers c LEFT JOIN customer_features f USING (customer_id)"
    ).df()
    s.close()
    assert list(frame.columns) == ["customer_id", "email"]
    refused = set(raw.loc[~raw["consent_analytics"], "customer_id"])
    assert refused and not (set(frame["customer_id"]) & refused)
    # Plain pandas reference: consenting, French, mainly on mobile.
    expected = raw[raw["consent_analytics"] & (raw["country"] == "France") & (raw["main_device"] == "mobile")]
    assert sorted(frame["customer_id"]) == sorted(expected["customer_id"])


def test_glossary_defines_every_feature_and_rules_show_thresholds(shop):
    at = open_explorer()
    text = "\n".join(m.value for m in at.markdown)
    assert "**Recency** (days): Days from the last completed order" in text
    assert "**Newsletter opt-in** (yes or no)" in text
    # Default thresholds in the words of the segments (BehaviourRules defaults).
    assert "at least 4 completed orders, the last one at most 180 days ago" in text


def test_changing_a_threshold_recomputes_segments(sample_db, tmp_path, monkeypatch):
    path = tmp_path / "rules.duckdb"
    shutil.copy(sample_db, path)
    s = open_store(path)
    compute_customer_features(s.cursor())
    s.close()
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))
    at = open_explorer({"segment": "recent_buyers"}, display_name="Camille")
    before = customers_shown(at)
    at.number_input(key="explorer_rule_recent_days").set_value(10)
    at.button(key="explorer_rules_save").click().run()
    assert not at.exception, at.exception
    assert any("Segments recomputed" in m.value for m in at.success)
    s = open_store(path)
    assert load_rules(s.cursor()).recent_days == 10
    s.close()
    # Bought in the last 10 days is a subset of bought in the last 30: fewer customers.
    assert customers_shown(at) < before


def test_without_customer_features_the_page_says_so_and_offers_to_compute_them(sample_db, tmp_path, monkeypatch):
    path = tmp_path / "no_features.duckdb"
    shutil.copy(sample_db, path)  # generated without features (the CLI and the app compute them)
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))
    at = open_explorer(display_name="Camille")
    assert not at.exception, at.exception
    assert at.info[0].value.startswith("Customer features have not been computed")
    at.button(key="explorer_compute").click().run()
    assert not at.exception, at.exception
    assert customers_shown(at) == engine_customers(path, CustomerFilter())


def test_clear_filters_removes_them_from_the_page_and_the_url(shop):
    at = open_explorer({"country": "France", "device": "mobile", "start": "2026-03-01", "end": "2026-03-31"})
    assert customers_shown(at) == engine_customers(
        shop, CustomerFilter(start=date(2026, 3, 1), end=date(2026, 3, 31), countries=("France",), devices=("mobile",)))
    at.button(key="explorer_clear").click().run()
    assert not at.exception, at.exception
    assert customers_shown(at) == engine_customers(shop, CustomerFilter())
    assert not {"country", "device", "start", "end"} & set(at.query_params)


def test_sessions_keep_their_cursor_and_share_a_date_range(shop):
    # Every rerun runs on a new thread; a session's filtered customers live in the
    # temporary tables of its own cursor, kept between clicks. The range rollups are
    # shared by every session of the store: a second session opening the same range
    # finds them built.
    def ranges(cur) -> list[tuple[int, str]]:
        rows = cur.execute("SELECT generation, key FROM explorer_ranges.ranges").fetchall()
        return sorted(r for r in rows if "2026-03-01" in r[1])

    st.cache_data.clear()  # results of earlier tests would spare the page its engine calls
    at = open_explorer({"start": "2026-03-01", "end": "2026-03-31"})
    first = at.session_state[SESSION_CURSOR].cursor
    at.multiselect(key="explorer_device").set_value(["mobile"]).run()
    assert at.session_state[SESSION_CURSOR].cursor is first
    built = ranges(first)
    assert len(built) == 1
    # (Another filter inside the range: the same filter would come from Streamlit's cache.)
    other = open_explorer({"start": "2026-03-01", "end": "2026-03-31", "device": "tablet"})
    assert not other.exception, other.exception
    assert other.session_state[SESSION_CURSOR].cursor is not first
    assert ranges(other.session_state[SESSION_CURSOR].cursor) == built
    expected = CustomerFilter(start=date(2026, 3, 1), end=date(2026, 3, 31), devices=("tablet",))
    assert customers_shown(other) == engine_customers(shop, expected)


def test_a_usual_period_sets_the_date_range_in_one_click(shop):
    from persona_engine.explore import filter_options, period_range

    s = open_store(shop)
    try:
        options = filter_options(s.cursor())
    finally:
        s.close()
    at = open_explorer()
    at.button_group(key="explorer_period").set_value(90).run()
    assert not at.exception, at.exception
    start, end = period_range(90, options.first_day, options.last_day)
    assert at.date_input(key="explorer_dates").value == (start, end)
    assert at.query_params["start"] == start.isoformat() and at.query_params["end"] == end.isoformat()
    assert customers_shown(at) == engine_customers(shop, CustomerFilter(start=start, end=end))
    # The pick is forgotten once applied: the same period can be picked again later.
    assert at.button_group(key="explorer_period").value is None


def test_a_filter_that_keeps_nobody_says_so(shop):
    # Québec is a region of Canada: no customer lives in France and in Québec.
    at = open_explorer({"country": "France", "region": "Québec"})
    assert not at.exception, at.exception
    assert engine_customers(shop, CustomerFilter()) > 0
    assert [i.value for i in at.info] == ["No customer matches these filters: remove one."]
    assert at.metric == []


def test_a_small_audience_is_flagged(shop):
    flt = CustomerFilter(countries=("Luxembourg",))
    n = engine_customers(shop, flt)
    assert 0 < n < 30  # about 1% of 3,000 customers live abroad in Luxembourg
    at = open_explorer({"country": "Luxembourg"})
    assert not at.exception, at.exception
    assert f"Only {n} customers: too few to trust (under 30)." in [w.value for w in at.warning]


def test_new_persona_members_show_at_the_next_run(sample_db, tmp_path, monkeypatch):
    # The engine caches a filter's customers per cursor, keyed on features and consent; a
    # persona re-drafted with other members must not be served from that cache.
    from persona_engine.personas import set_members

    path = tmp_path / "members.duckdb"
    shutil.copy(sample_db, path)
    s = open_store(path)
    compute_customer_features(s.cursor())
    create_persona(s.cursor(), {"name": "First ten"}, "tests", members=range(1, 11))
    s.close()
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))
    at = open_explorer({"persona": "1"})
    assert customers_shown(at) == engine_customers(path, CustomerFilter(persona_ids=(1,)))
    # The app holds the file: change the members through the app's own store.
    from ui import data

    set_members(data.store().cursor(), 1, range(1, 101), None)
    at.run()
    expected = int(data.store().cursor().execute(
        "SELECT count(*) FROM customers WHERE consent_analytics AND customer_id <= 100").fetchall()[0][0])
    assert 10 < expected <= 100
    assert customers_shown(at) == expected
