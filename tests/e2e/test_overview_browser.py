"""In a real browser: the Overview shows the right KPI, and the language switch works."""

from __future__ import annotations

from pathlib import Path

from persona_engine.overview import default_period, overview, shop_summary
from persona_engine.store import open_store
from sample_data.generator import generate_shop
from tests.e2e.conftest import wait_for_app

NARROW_NBSP = "\u202f"


def expected_orders(tmp_path: Path) -> int:
    # The server's file is locked by its process: rebuild the same shop (same seed) here.
    s = open_store(tmp_path / "same.duckdb")
    cur = s.cursor()
    generate_shop(cur, n_customers=3000, seed=42)
    start, end = default_period(shop_summary(cur))
    orders = overview(cur, start, end).current.orders
    s.close()
    return orders


def test_overview_kpi_and_language_switch(server, page, tmp_path):
    orders = expected_orders(tmp_path)
    assert orders > 1000
    page.goto(server)
    wait_for_app(page)
    page.get_by_role("heading", name="Overview").wait_for()
    tile = page.locator("[data-testid='stMetric']").filter(has_text="Orders")
    assert tile.locator("[data-testid='stMetricValue']").inner_text() == f"{orders:,}"

    # Switch to French in the sidebar.
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
    page.get_by_role("option", name="Français").click()
    page.get_by_role("heading", name="Vue d'ensemble").wait_for()
    wait_for_app(page)
    tile = page.locator("[data-testid='stMetric']").filter(has_text="Commandes")
    french = f"{orders:,}".replace(",", NARROW_NBSP)
    assert tile.locator("[data-testid='stMetricValue']").inner_text() == french


def test_first_visit_after_start_on_a_direct_link_gets_the_app_frame(page, tmp_path):
    # Streamlit treats an app with a pages/ folder as folder-navigated until st.navigation
    # has run once; ui/__init__.py corrects that so a first visitor on a deep link still gets
    # the app's sidebar (language switch), not a bare page.
    from tests.e2e.conftest import start_server

    db = tmp_path / "fresh.duckdb"
    s = open_store(db)
    generate_shop(s.cursor(), n_customers=300, seed=1)
    s.close()
    proc, url = start_server(db)
    try:
        page.goto(f"{url}/persona_editor")
        wait_for_app(page)
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").wait_for()
        assert page.locator("[data-testid='stSidebarNav']").count() == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
