"""In a real browser: drafted avatars are drawn as images, and a gallery card opens the
persona in the editor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from persona_engine.clustering import cluster_customers
from persona_engine.drafting import create_personas_from_run
from persona_engine.features import compute_customer_features
from persona_engine.personas import list_personas
from persona_engine.store import open_store
from sample_data.generator import generate_shop
from tests.e2e.conftest import start_server, wait_for_app


@pytest.fixture(scope="module")
def personas_server(tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """The app on a 3,000-customer shop with five drafted personas; yields (url, names)."""
    db = tmp_path_factory.mktemp("e2e_personas") / "shop.duckdb"
    store = open_store(db)
    cur = store.cursor()
    generate_shop(cur, n_customers=3000, seed=42)
    compute_customer_features(cur)
    run = cluster_customers(cur, k=5, seed=0)
    create_personas_from_run(cur, run.run_id, user="test")
    names = list(list_personas(cur)["name"])  # the gallery's order: kind, then id
    store.close()
    proc, url = start_server(db)
    yield url, names
    proc.terminate()
    proc.wait(timeout=10)


def test_gallery_avatars_are_images_and_open_goes_to_the_editor(personas_server, page):
    url, names = personas_server
    page.goto(f"{url}/personas")
    wait_for_app(page)
    page.get_by_role("heading", name="Personas").first.wait_for()
    opens = page.locator("[data-testid='stMain']").get_by_role("button", name="Open", exact=True)
    expect(opens).to_have_count(5)
    # Our own SVG, shown through an <img> (a script inside it would not run).
    sources = page.locator("[data-testid='stImage'] img").evaluate_all("els => els.map(e => e.src)")
    assert len(sources) == 5 and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    opens.nth(1).click()
    page.get_by_role("heading", name="Persona editor").wait_for()
    wait_for_app(page)
    # The editor shows the persona of the card clicked (not its default, the first one).
    expect(page.locator("[data-testid='stMain']").get_by_text(names[1], exact=True).first).to_be_visible()
