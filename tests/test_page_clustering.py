"""AppTest: the Clusters page runs a clustering from its widgets and shows the stored run."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from persona_engine.clustering import cluster_customers, load_run
from persona_engine.drafting import create_personas_from_run
from persona_engine.store import open_store
from tests.conftest import open_page, write_sample_shop

PAGE = "pages/clustering.py"


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory) -> Path:
    """A 3,000-customer sample shop with features, of this module only (runs are written)."""
    return write_sample_shop(tmp_path_factory.mktemp("clusters_page") / "shop.duckdb", 3000, 5)


@pytest.fixture
def shop(shop_file, monkeypatch) -> Path:
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(shop_file))
    return shop_file


def page(**state) -> AppTest:
    return open_page(PAGE, **state)


def table_with(at: AppTest, column: str):
    """The first table on the page that has this column (AppTest finds tables by position)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_run_a_fixed_k_from_the_widgets(shop):
    at = page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Clusters"
    at.radio(key="cluster_k_mode").set_value("fixed").run()  # enables the number of clusters
    at.number_input(key="cluster_k").set_value(4)
    at.selectbox(key="cluster_feature_set").set_value("behaviour")
    at.button(key="cluster_start").click().run()
    assert not at.exception, at.exception
    run_id = at.selectbox(key="cluster_run").value
    assert at.success[0].value == f"Run {run_id} ready: 4 clusters."
    store = open_store(shop)
    run = load_run(store.cursor(), run_id)
    assert run.k == 4 and run.feature_set == "behaviour" and run.params["k_requested"] == 4
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Clusters"] == "4" and metrics["Customers clustered"] == f"{run.n_customers:,}"
    assert metrics["Silhouette"] == f"{run.silhouette:.2f}"
    table = table_with(at, "What sets it apart")
    assert list(table["Customers"]) == [c.size for c in run.clusters]
    assert at.selectbox(key="cluster_pick").options == ["Cluster 0", "Cluster 1", "Cluster 2", "Cluster 3"]


def test_auto_k_shows_the_silhouette_curve_and_profiles_in_french(shop):
    store = open_store(shop)
    run = cluster_customers(store.cursor(), k="auto", seed=0)
    at = page(lang="fr", cluster_run=run.run_id)
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["Clients répartis", "Clusters", "Silhouette", "Stabilité"]
    assert f"Le calcul retient {run.k} clusters, le point le plus haut." in [c.value for c in at.caption]
    # The profile of cluster 0 lists its strongest traits, in French.
    traits = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert len(traits) >= 3 and any("moyenne" in text for text in traits)
    features = table_with(at, "Indicateur")
    assert "Panier moyen" in set(features["Indicateur"])
    at.selectbox(key="cluster_pick").set_value(run.k - 1).run()
    assert not at.exception
    size = run.clusters[-1].size
    assert f"Sur la base de {size:,} clients.".replace(",", "\u202f") in [c.value for c in at.caption]


def test_compare_with_personas_after_a_rerun(shop):
    store = open_store(shop)
    first = cluster_customers(store.cursor(), k=5, seed=0)
    ids = create_personas_from_run(store.cursor(), first.run_id, user="test")
    second = cluster_customers(store.cursor(), k=5, seed=9)
    at = page(cluster_run=second.run_id)
    assert not at.exception, at.exception
    matches = table_with(at, "Members still together")
    assert len(matches) == len(ids) == 5
    # Unchanged data: every persona's members are still together in the new run.
    assert list(matches["Members"]) == list(matches["Members still together"])


def test_a_shop_without_features_is_told_what_to_do(tmp_path, monkeypatch):
    from sample_data.generator import generate_shop

    path = tmp_path / "raw.duckdb"
    store = open_store(path)
    generate_shop(store.cursor(), n_customers=500, seed=1)
    store.close()
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    at = page()
    assert not at.exception, at.exception
    assert at.info[0].value.startswith("Customer features are not computed yet")
