"""AppTest: the Overview page runs without exception and shows the engine's numbers."""

from __future__ import annotations

from datetime import date

from streamlit.testing.v1 import AppTest

from persona_engine.overview import overview
from persona_engine.store import open_store
from tests.conftest import open_page


def run_app(**state) -> AppTest:
    return open_page(timeout=60, **state)


def test_overview_shows_kpis_of_the_default_period(app_db):
    at = run_app()
    assert not at.exception, at.exception
    assert at.title[0].value == "Overview"
    labels = [m.label for m in at.metric]
    assert labels == ["Customers", "Orders", "Revenue", "Average order value", "Conversion rate",
                      "Repeat-purchase rate"]
    start, end = at.date_input(key="overview_period").value
    s = open_store(app_db, read_only=False)
    expected = overview(s.cursor(), start, end).current
    assert at.metric[1].value == f"{expected.orders:,}"
    assert (end - start).days == 89


def test_overview_in_french_and_a_chosen_period(app_db):
    at = run_app(lang="fr")
    at.date_input(key="overview_period").set_value((date(2026, 3, 1), date(2026, 3, 31))).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Vue d'ensemble"
    assert at.metric[1].label == "Commandes"
    assert "Comparé au 2026-01-29 – 2026-02-28." in [c.value for c in at.caption]


def test_empty_database_offers_the_sample_shop(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(tmp_path / "empty.duckdb"))
    at = run_app()
    assert not at.exception
    assert at.button(key="generate_sample") is not None
    at.number_input(key="sample_customers").set_value(500)
    at.button(key="generate_sample").click().run()
    assert not at.exception, at.exception
    assert len(at.metric) == 6  # the shop is there now
