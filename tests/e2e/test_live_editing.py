"""Two browsers on one persona: a saved change reaches the other within 3 s, unsaved text stays,
and what people type (a <script> tag, javascript: links) is shown, never run."""

from __future__ import annotations

import time

import pytest

from persona_engine.personas import create_persona
from persona_engine.store import open_store
from tests.e2e.conftest import start_server, wait_for_app
from tests.test_export import build_shop

LIVE_LIMIT_S = 3.0
HOSTILE_BIO = (
    "Hunts **deals**.\n\n<script>alert('script tag')</script> <img src=x onerror=\"alert('img')\">\n\n"
    "[click](javascript:alert(1)) [again](JaVaScRiPt:alert(2)) <javascript:alert(4)>"
)


@pytest.fixture(scope="module")
def editor_server(tmp_path_factory):
    """The app on a small hand-made shop: persona 1 to edit (tests.test_export.build_shop) and
    persona 2, Script Sam, whose bio and goals hold scripts and javascript: links."""
    db = tmp_path_factory.mktemp("live") / "shop.duckdb"
    s = open_store(db)
    build_shop(s.cursor())
    create_persona(s.cursor(), {"name": "Script Sam", "bio": HOSTILE_BIO, "goals": ["[win](javascript:alert(3))"]},
                   "setup", members=[1, 2])
    s.close()
    users = db.parent / "users.toml"  # absent: no login, a display name is enough
    proc, url = start_server(db, {"PERSONA_STUDIO_USERS": str(users)})
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def open_editor(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1600}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    wait_for_app(page)
    box = page.get_by_role("textbox", name="Your name")
    box.fill(name)
    box.press("Enter")
    page.get_by_role("link", name="Persona editor").click()
    page.get_by_role("textbox", name="Quote").wait_for()
    return context, page, dialogs


def wait_for_value(locator, value: str, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if locator.input_value() == value:
            return time.monotonic() - start
        time.sleep(0.05)
    return float("inf")


def test_saved_change_reaches_the_other_browser_and_unsaved_text_stays(editor_server, browser):
    ctx_a, alice, dialogs_a = open_editor(browser, editor_server, "Alice")
    ctx_b, bob, dialogs_b = open_editor(browser, editor_server, "Bob")
    try:
        # Bob types in the bio and does not save (nor leave the field).
        bob.get_by_role("textbox", name="Bio").fill("Bob's draft, not saved yet")
        # Alice changes the quote and saves.
        alice.get_by_role("textbox", name="Quote").fill("Only ever on sale")
        alice.get_by_role("button", name="Save").first.click()
        alice.get_by_text("Saved as version 2: Quote.").wait_for()
        seen_after = wait_for_value(bob.get_by_role("textbox", name="Quote"), "Only ever on sale", 10)
        assert seen_after <= LIVE_LIMIT_S, f"Bob saw the new quote after {seen_after:.2f} s"
        bob.get_by_text("Alice changed Quote at").wait_for()  # the notice of who changed what
        time.sleep(2)  # more polls: the draft must survive them too
        assert bob.get_by_role("textbox", name="Bio").input_value() == "Bob's draft, not saved yet"
        assert "Alice" in bob.get_by_text("Here now:").inner_text()  # who is on the persona

        # Bob saves his bio: no conflict (Alice changed another field), and Alice gets it live.
        bob.get_by_role("button", name="Save").first.click()
        bob.get_by_text("Saved as version 3: Bio.").wait_for()
        assert wait_for_value(alice.get_by_role("textbox", name="Bio"), "Bob's draft, not saved yet", 10) <= LIVE_LIMIT_S
        assert alice.get_by_role("textbox", name="Quote").input_value() == "Only ever on sale"
        assert dialogs_a == [] and dialogs_b == []
    finally:
        ctx_a.close()
        ctx_b.close()


def test_script_tags_and_javascript_links_in_a_bio_never_run(editor_server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(editor_server)
        wait_for_app(page)
        # Without a name the editor is a read-only live view rendering the bio as Markdown.
        page.get_by_role("link", name="Persona editor").click()
        page.locator("[data-testid='stSelectbox']").filter(has_text="Persona").click()
        page.get_by_role("option", name="Script Sam").click()
        bio = page.locator("[data-testid='stMarkdownContainer']").filter(has_text="Hunts")
        bio.wait_for()
        assert bio.locator("strong").inner_text() == "deals"  # Markdown still works
        assert bio.locator("script, img").count() == 0
        assert "[click](javascript:alert(1))" in bio.inner_text()  # shown as text, not a link
        goals = page.locator("[data-testid='stMarkdownContainer'] li").filter(has_text="[win]")
        assert goals.locator("a").count() == 0
        javascript_links = page.locator("a[href^='javascript' i], a[href*='javascript:' i]")
        assert javascript_links.count() == 0
        for link in page.locator("a").all():  # no link on the page leads to script
            assert "javascript" not in (link.get_attribute("href") or "").lower()
        # The meeting card renders the same bio: same checks there.
        page.get_by_role("link", name="Meeting mode").click()
        page.get_by_role("heading", name="Script Sam").wait_for()  # the persona chosen on the editor
        assert page.locator("a[href*='javascript:' i]").count() == 0
        assert page.locator("[data-testid='stMarkdownContainer'] script").count() == 0
        page.wait_for_timeout(1500)
        assert dialogs == []
    finally:
        context.close()
