"""In a real browser: the sample shop's planted action is given its target personas on the
Actions page, and the Impact page then measures it for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from persona_engine import kpis
from persona_engine.actions import list_actions
from persona_engine.clustering import cluster_customers
from persona_engine.drafting import create_personas_from_run
from persona_engine.features import compute_customer_features
from persona_engine.personas import list_personas
from persona_engine.store import open_store
from sample_data.archetypes import PLANTED_ACTION
from sample_data.generator import generate_shop
from tests.e2e.conftest import start_server, wait_for_app


@pytest.fixture(scope="module")
def impact_server(tmp_path_factory) -> Iterator[tuple[str, str, list[str]]]:
    """The app on a 3,000-customer English sample shop with five drafted personas; yields
    (url, the planted action as the pickers show it, names of the personas mostly made of
    its target archetype)."""
    db = tmp_path_factory.mktemp("e2e_impact") / "shop.duckdb"
    store = open_store(db)
    cur = store.cursor()
    generate_shop(cur, n_customers=3000, seed=42, locale="en_US")
    compute_customer_features(cur)
    run = cluster_customers(cur, k=5, seed=0)
    create_personas_from_run(cur, run.run_id, user="test")
    (action,) = list_actions(cur)
    assert not action.persona_ids  # the sample's action targets no persona until the team says so
    names = dict(zip(list_personas(cur)["persona_id"], list_personas(cur)["name"], strict=True))
    matches = kpis.persona_archetypes(cur)
    targets = [names[p] for p in matches.loc[matches["archetype"] == PLANTED_ACTION.target, "persona_id"]]
    store.close()
    assert targets
    proc, url = start_server(db)
    yield url, f"#{action.action_id} {action.name} · {action.starts_on.isoformat()}", targets
    proc.terminate()
    proc.wait(timeout=10)


def test_an_action_targeted_on_the_actions_page_is_measured_on_the_impact_page(impact_server, page):
    url, option, targets = impact_server
    page.goto(f"{url}/actions")
    wait_for_app(page)
    page.get_by_role("heading", name="Actions").wait_for()
    page.get_by_role("tab", name="Create or edit").click()
    page.get_by_role("combobox", name="Action", exact=True).click()
    page.get_by_role("option", name=option).click()
    wait_for_app(page)
    # The planted action's personas are proposed; saving makes them its targets.
    form = page.locator("[data-testid='stForm']")
    for name in targets:
        expect(form.get_by_text(name).first).to_be_visible(timeout=30_000)
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("saved.").first).to_be_visible(timeout=30_000)

    page.goto(f"{url}/impact")
    wait_for_app(page)
    page.get_by_role("heading", name="Before and after, per persona").wait_for(timeout=60_000)
    caption = page.get_by_text("Targets ")
    for name in targets:
        expect(caption).to_contain_text(name)
    expect(caption).to_contain_text(f"started on {PLANTED_ACTION.starts_on}")
    # The weekly chart of a targeted persona, both windows and the control, comes last.
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
