"""AppTest: the Personas page drafts personas from a run (keep, merge, discard), shows the
gallery, opens a persona in the editor and lists consenting customers to interview."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from persona_engine.clustering import cluster_customers
from persona_engine.features import compute_customer_features
from persona_engine.personas import list_personas
from persona_engine.store import open_store
from tests.conftest import open_page
from ui.editor_actions import PERSONA_KEY
from ui.editor_identity import NAME_KEY

PAGE = "pages/personas.py"


@pytest.fixture
def shop(tmp_path_factory, monkeypatch) -> Path:
    """A fresh 3,000-customer shop with features and one 5-cluster run (personas are written)."""
    from sample_data.generator import generate_shop

    path = tmp_path_factory.mktemp("personas_page") / "shop.duckdb"
    store = open_store(path)
    generate_shop(store.cursor(), n_customers=3000, seed=3)
    compute_customer_features(store.cursor())
    cluster_customers(store.cursor(), k=5, seed=0)
    store.close()
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    return path


def page(**state) -> AppTest:
    return open_page(PAGE, **state)


def test_create_personas_merging_and_discarding_clusters(shop):
    at = page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Personas"
    infos = [i.value for i in at.info]
    assert infos[0].startswith("No persona yet") and "Give your name in the sidebar to create personas." in infos
    at = page(**{NAME_KEY: "Camille"})
    # Five drafts, one per cluster; merge cluster 4 into cluster 3, discard cluster 2.
    at.selectbox(key="pick_1_4").set_value("merge:3")
    at.selectbox(key="pick_1_2").set_value("discard").run()
    assert "This creates 3 draft personas." in [c.value for c in at.caption]
    at.button(key="personas_create").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "3 draft personas created. Open one from the gallery to edit it."
    store = open_store(shop)
    personas = list_personas(store.cursor())
    clusters = sorted(sorted(c) for c in store.cursor().execute(
        "SELECT source_clusters FROM personas").df()["source_clusters"])
    assert clusters == [[0], [1], [3, 4]]
    assert personas["updated_by"].eq("Camille").all()
    # The gallery: one card per persona, with its customers' share; three drafts in use.
    assert {b.key for b in at.button if b.key and b.key.startswith("persona_open_")} == {
        f"persona_open_{i}" for i in personas["persona_id"]}
    assert any(i.value.startswith("3 personas in use (drafts and active). Three to five") for i in at.info)


def test_open_a_persona_in_the_editor(shop):
    store = open_store(shop)
    from persona_engine.drafting import create_personas_from_run

    ids = create_personas_from_run(store.cursor(), 1, user="test")
    at = page(**{NAME_KEY: "Camille"})
    assert not at.exception, at.exception
    shares = [m.value for m in at.metric if m.label == "Customers"]
    assert len(shares) == 5
    at.button(key=f"persona_open_{ids[2]}").click().run()
    assert not at.exception, at.exception
    assert at.session_state[PERSONA_KEY] == ids[2]
    assert at.title[0].value == "Persona editor"


def test_shortlist_lists_consenting_members_only(shop):
    store = open_store(shop)
    from persona_engine.drafting import create_personas_from_run

    persona_id = create_personas_from_run(store.cursor(), 1, groups=[[0]], user="test")[0]
    best = store.cursor().execute(
        "SELECT pm.customer_id FROM persona_members pm JOIN customer_features f USING (customer_id)"
        " WHERE pm.persona_id = ? ORDER BY f.monetary DESC, f.frequency DESC, pm.customer_id LIMIT 2",
        [persona_id]).fetchall()
    top, second = best[0][0], best[1][0]
    store.cursor().execute("UPDATE customers SET consent_analytics = false WHERE customer_id = ?", [top])
    at = page(lang="fr")
    assert not at.exception, at.exception
    tables = [d.value for d in at.dataframe if "Prénom" in d.value.columns]
    assert [len(t) for t in tables] == [10, 10, 10]  # best, lowest revenue, most typical
    listed = set().union(*(set(t["Client"]) for t in tables))
    assert top not in listed  # withdrew consent: never listed
    assert tables[0]["Client"].iloc[0] == second
    assert at.get("download_button")[0].label == "Télécharger la liste (CSV)"


def test_a_run_already_drafted_says_so(shop):
    from persona_engine.drafting import create_personas_from_run

    store = open_store(shop)
    create_personas_from_run(store.cursor(), 1, groups=[[0], [1]], user="test")
    at = page()
    assert not at.exception, at.exception
    assert "2 personas were already drafted from run 1: creating again adds new ones beside them." in [
        w.value for w in at.warning]
