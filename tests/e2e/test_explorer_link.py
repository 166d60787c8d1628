"""In a real browser: a shared explorer link opens with its filters applied, and changing a
filter rewrites the link."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from urllib.parse import parse_qs, urlparse

import pytest

from persona_engine.explore import CustomerFilter, audience_summary
from persona_engine.features import compute_customer_features
from persona_engine.store import open_store
from sample_data.generator import generate_shop
from tests.e2e.conftest import start_server, wait_for_app

LINK = "country=France&device=mobile&rfm=champions&rfm=loyal&start=2025-10-01&end=2026-09-30&view=behaviour"
LINKED = CustomerFilter(start=date(2025, 10, 1), end=date(2026, 9, 30), countries=("France",),
                        devices=("mobile",), rfm_groups=("champions", "loyal"))
WITHOUT_LOYAL = CustomerFilter(start=date(2025, 10, 1), end=date(2026, 9, 30), countries=("France",),
                               devices=("mobile",), rfm_groups=("champions",))


@pytest.fixture(scope="module")
def explorer_server(tmp_path_factory) -> Iterator[tuple[str, dict[str, int]]]:
    """A server on its own sample shop with features; the expected counts are read first
    (the server's process then holds the file)."""
    db = tmp_path_factory.mktemp("explorer_e2e") / "shop.duckdb"
    s = open_store(db)
    cur = s.cursor()
    generate_shop(cur, n_customers=3000, seed=42)
    compute_customer_features(cur)
    expected = {
        "linked": int(audience_summary(cur, LINKED).data.loc[0, "customers"]),
        "without_loyal": int(audience_summary(cur, WITHOUT_LOYAL).data.loc[0, "customers"]),
    }
    s.close()
    proc, url = start_server(db)
    yield url, expected
    proc.terminate()
    proc.wait(timeout=10)


def customers_tile(page) -> str:
    tile = page.locator("[data-testid='stMetric']").filter(has_text="Customers")
    return tile.locator("[data-testid='stMetricValue']").inner_text()


def shows_customers(page, n: int) -> None:
    """Wait until a metric tile shows n (the page renders in steps after a load or a click)."""
    page.wait_for_function(
        "n => [...document.querySelectorAll(\"[data-testid='stMetricValue']\")].some(e => e.innerText === n)",
        arg=f"{n:,}", timeout=30_000,
    )


def multiselect(page, label: str):
    return page.locator("[data-testid='stMultiSelect']").filter(has_text=label)


def chips(page, label: str) -> list[str]:
    """The values shown as chips in a multiselect (the live combobox, not its template)."""
    tags = multiselect(page, label).locator(".react-aria-ComboBox [data-tag]")
    return [tag.get_attribute("aria-label") or "" for tag in tags.all()]


def test_a_shared_link_opens_with_its_filters_applied(explorer_server, page):
    url, expected = explorer_server
    assert 30 < expected["without_loyal"] < expected["linked"]  # the link keeps a real audience
    page.goto(f"{url}/explorer?{LINK}")
    wait_for_app(page)
    page.get_by_role("heading", name="Segment explorer").wait_for()
    shows_customers(page, expected["linked"])  # the run with the link's filters has finished
    assert chips(page, "Country") == ["France"]
    assert chips(page, "Main device") == ["Mobile"]
    assert chips(page, "RFM group") == ["Champions", "Loyal"]
    dates = [i.get_attribute("value") for i in page.locator("[data-testid='stDateInput'] input").all()]
    assert dates == ["2025-10-01", "2026-09-30"]
    assert customers_tile(page) == f"{expected['linked']:,}"
    # The Behaviour view named in the link is the one shown.
    page.get_by_text("RFM grid: customers per cell, colour = revenue").wait_for()

    # Removing "Loyal" updates the numbers and the link that would be shared.
    multiselect(page, "RFM group").locator(".react-aria-ComboBox button[aria-label='Remove Loyal']").click()
    shows_customers(page, expected["without_loyal"])
    wait_for_app(page)
    params = parse_qs(urlparse(page.url).query)
    assert params["rfm"] == ["champions"]
    assert params["country"] == ["France"] and params["device"] == ["mobile"]


def test_the_country_map_draws_from_the_apps_own_outlines(explorer_server, page):
    """The map's outlines come from the app's static folder: with every other host blocked,
    the countries of the shop are drawn and filled."""
    url, _ = explorer_server
    outside: list[str] = []

    def block_outside(route) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", block_outside)
    page.goto(f"{url}/explorer?view=demographics")
    wait_for_app(page)
    page.get_by_text("Where customers live").first.wait_for()
    chart = page.locator("[data-testid='stPlotlyChart']").filter(has=page.locator(".geo"))
    filled = chart.locator("path.choroplethlocation")
    filled.first.wait_for(timeout=30_000)
    assert filled.count() >= 3  # the sample shop's countries
    assert not [u for u in outside if "topojson" in u or "cdn.plot.ly" in u]
