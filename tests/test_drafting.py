"""Persona drafting from clusters, picking (merge, discard), interview shortlists,
re-evaluation against a new run, and `personas create-from-run`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pandas as pd
import pytest
from faker.providers.person.en_US import Provider as EnglishNames
from faker.providers.person.fr_FR import Provider as FrenchNames

from persona_engine import explore
from persona_engine.cli import main
from persona_engine.clustering import cluster_customers, run_assignments
from persona_engine.drafting import (
    avatar_svg,
    create_personas_from_run,
    draft_personas,
    interview_shortlist,
    match_personas,
    persona_count_advice,
    persona_traits,
)
from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.explore import CustomerFilter, audience_summary
from persona_engine.features import compute_customer_features
from persona_engine.personas import PERSONA_FIELDS, get_persona, list_personas, mark_validated
from persona_engine.store import open_store, set_setting
from tests.test_clustering import SEGMENTS, make_segment_shop

# Fields the data of a cluster never speaks to: a draft leaves them for the team.
LEFT_FOR_THE_TEAM = {"quote", "goals", "objections", "key_messages", "success_factors", "personal_context"}


@pytest.fixture
def shop(cur) -> pd.DataFrame:
    return make_segment_shop(cur)


@pytest.fixture
def run(cur, shop):
    return cluster_customers(cur, k=3, seed=0)


def _cluster_of(cur, run_id: int, shop: pd.DataFrame, segment: str) -> int:
    labels = run_assignments(cur, run_id).set_index("customer_id")["cluster"]
    first = int(shop.loc[shop.segment == segment, "customer_id"].iloc[0])
    return int(labels[first])


def _drafts_by_segment(cur, run, shop) -> dict:
    drafts = {d.clusters[0]: d for d in draft_personas(cur, run.run_id)}
    return {s: drafts[_cluster_of(cur, run.run_id, shop, s)] for s in SEGMENTS}


def test_drafts_fill_fields_from_data_and_leave_the_rest_empty(cur, shop, run):
    drafts = _drafts_by_segment(cur, run, shop)
    bargain = drafts["bargain"]
    # The shop has no locale setting: French (fr_FR) is the default, numbers written the French way.
    discount = shop.loc[shop.segment == "bargain", "discount_share"].mean()
    base_discount = shop["discount_share"].mean()
    assert bargain.fields["buying_triggers"] == [
        f"Promotions et codes de réduction : {round(100 * discount)}\u202f% des commandes en utilisent un "
        f"(tous clients : {round(100 * base_discount)}\u202f%)"
    ]
    assert bargain.evidence["buying_triggers"]["discount_share"]["cluster"] == pytest.approx(discount)
    # Browsers abandon 90% of their carts: a frustration, with its numbers.
    browser = drafts["browser"]
    abandonment = shop.loc[shop.segment == "browser", "cart_abandonment_rate"].mean()
    assert browser.fields["frustrations"][0].startswith(f"Abandonne {round(100 * abandonment)}\u202f% de ses paniers")
    assert "cart_abandonment_rate" in browser.evidence["frustrations"]
    # Premium buyers buy at full price; they shop in the morning on a computer.
    premium = drafts["premium"]
    assert premium.fields["buying_triggers"][0].startswith("Achète au prix fort")
    assert premium.fields["day_in_the_life"].startswith("Fait ses achats le matin (vers 9\u202fh)")
    assert premium.fields["day_in_the_life"].endswith("sur ordinateur.")  # no order data: no rhythm sentence
    assert browser.fields["day_in_the_life"].startswith("Fait ses achats le soir (vers 22\u202fh)")
    age = shop.loc[shop.segment == "premium", "age"].mean()
    assert f"Âge : {round(age)} ans en moyenne" in premium.fields["demographics"]
    assert "100\u202f% d'hommes" in premium.fields["demographics"]
    assert premium.fields["preferred_channels"][0].startswith("Visites directes (100\u202f% des clients, 3,0×")
    for draft in drafts.values():
        assert LEFT_FOR_THE_TEAM.isdisjoint(draft.fields)  # visibly empty, not invented
        assert set(draft.fields) <= set(PERSONA_FIELDS)
        drafted = set(draft.fields) - {"status", "avatar"}
        assert drafted <= set(draft.evidence), drafted - set(draft.evidence)


def test_discount_share_near_the_average_gives_no_buying_trigger(cur, shop):
    # Make every customer's discount share the same: no cluster differs from the base.
    cur.execute("UPDATE customer_features SET discount_share = 0.3")
    run = cluster_customers(cur, k=3, seed=0)
    for draft in draft_personas(cur, run.run_id):
        assert "buying_triggers" not in draft.fields and "buying_triggers" not in draft.evidence


def test_names_are_alliterative_with_the_dominant_gender(cur, shop, run):
    drafts = _drafts_by_segment(cur, run, shop)
    female, male = set(FrenchNames.first_names_female), set(FrenchNames.first_names_male)
    for segment, draft in drafts.items():
        words = draft.fields["name"].split(" ")  # "Prénom la Adjectif" or "Prénom l'Adjectif"
        first, adjective = words[0], words[-1].removeprefix("l'")
        assert first[0].upper() == adjective[0].upper().translate(str.maketrans("ÉÈÊÂÎÔÛ", "EEEAIOU")), draft.fields["name"]
        expected = female if SEGMENTS[segment]["gender"] == "female" else male
        assert first in expected, (segment, first)
        assert draft.evidence["name"]["gender"] == SEGMENTS[segment]["gender"]
    assert len({d.fields["name"] for d in drafts.values()}) == 3
    # The strongest trait of the bargain hunters is their discount share: "futée", "maligne"...
    assert drafts["bargain"].evidence["name"]["trait"] == "discount_share"


def test_english_shop_gets_english_text_and_names(cur, shop, run):
    set_setting(cur, "locale", "en_US")
    set_setting(cur, "currency", "USD")
    drafts = _drafts_by_segment(cur, run, shop)
    premium = drafts["premium"]
    first = premium.fields["name"].split(" ")[-1]
    assert first in set(EnglishNames.first_names_male)
    aov = shop.loc[shop.segment == "premium", "average_order_value"].mean()
    assert f"- Average basket: ${aov:,.0f}" in premium.fields["bio"]
    assert premium.fields["buying_triggers"][0].startswith("Buys at full price")


def test_kinds_primary_by_revenue_and_anti_for_discount_only_buyers(cur, shop, run):
    drafts = _drafts_by_segment(cur, run, shop)
    # Bargain hunters use a discount on ~90% of orders (>= 70%): anti-persona suggested.
    assert drafts["bargain"].fields["kind"] == "anti"
    # Premium customers bring most revenue (200 x 12 per customer): primary.
    revenue = shop.groupby("segment")["monetary"].sum()
    assert revenue.idxmax() == "premium" and drafts["premium"].fields["kind"] == "primary"
    assert drafts["premium"].revenue_share == pytest.approx(revenue["premium"] / revenue.sum())
    assert drafts["browser"].fields["kind"] == "secondary"


def test_avatar_is_our_own_svg_with_initials():
    svg = avatar_svg("Chloé la Curieuse", "#4C6EF5")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}text").text == "CC"
    assert ET.fromstring(avatar_svg("<b>&", "#fff")).find("{http://www.w3.org/2000/svg}text").text == "B"


def test_pick_merge_and_discard_clusters(cur, shop, run):
    bargain, premium, browser = (_cluster_of(cur, run.run_id, shop, s) for s in ("bargain", "premium", "browser"))
    cur.execute("UPDATE customers SET consent_analytics = false WHERE customer_id = 1")  # after the run
    ids = create_personas_from_run(cur, run.run_id, groups=[[bargain, browser]], user="ana")
    assert len(ids) == 1  # premium discarded
    persona = get_persona(cur, ids[0])
    assert sorted(persona.source_clusters) == sorted([bargain, browser]) and persona.source_run_id == run.run_id
    assert persona["status"] == "draft"
    members = set(cur.execute("SELECT customer_id FROM persona_members WHERE persona_id = ?", [ids[0]]).df()["customer_id"])
    expected = set(shop.loc[shop.segment.isin(["bargain", "browser"]), "customer_id"]) - {1}
    assert members == expected  # 119: the customer who withdrew consent is left out
    assert persona.evidence["bio"]["customers"] == 120  # the run's cluster sizes
    with pytest.raises(ValidationError, match="picked for two personas"):
        create_personas_from_run(cur, run.run_id, groups=[[bargain], [bargain, premium]])
    with pytest.raises(ValidationError, match="there is no cluster 7"):
        create_personas_from_run(cur, run.run_id, groups=[[7]])


def test_default_picks_every_cluster_of_the_latest_run(cur, shop, run):
    ids = create_personas_from_run(cur)
    listed = list_personas(cur)
    assert len(ids) == 3 and sorted(listed["members"]) == [60, 60, 60]
    assert list(listed["kind"]) == ["primary", "secondary", "anti"]  # listed by kind
    # Personas come in cluster order; each keeps its cluster's traits.
    assert persona_traits(cur, ids[0], 5) == run.traits(0, 5)
    assert persona_traits(cur, ids[2], 3) == run.traits(2, 3)


def test_personas_from_a_run_get_their_explorer_cubes(cur, shop, run):
    # The personas' explorer cubes are written together, after their members: a filter on
    # one of them reads its cubes and counts its members, as the customers' rows do.
    compute_customer_features(cur)
    ids = create_personas_from_run(cur)
    for persona_id in ids:
        flt = CustomerFilter(persona_ids=[persona_id])
        assert explore._audience(cur, flt).persona
        members = cur.execute(
            "SELECT count(*) FROM persona_members JOIN customer_features USING (customer_id) WHERE persona_id = ?",
            [persona_id],
        ).fetchall()[0][0]
        assert audience_summary(cur, flt).data.loc[0, "customers"] == members > 0


def test_no_run_yet(cur, shop):
    with pytest.raises(NoDataError, match="no clustering run yet"):
        create_personas_from_run(cur)


def test_count_advice():
    assert [persona_count_advice(n) for n in (1, 3, 5, 6, 7, 8)] == ["few", "ok", "ok", "many", "many", "too_many"]


# ---------------------------------------------------------------- shortlists


def test_shortlists_hold_consenting_members_best_worst_and_typical(cur, shop, run):
    premium = _cluster_of(cur, run.run_id, shop, "premium")
    persona_id = create_personas_from_run(cur, run.run_id, groups=[[premium]])[0]
    members = shop[shop.segment == "premium"].set_index("customer_id")
    top = int(members["monetary"].idxmax())
    cur.execute("UPDATE customers SET consent_analytics = false WHERE customer_id = ?", [top])
    lists = interview_shortlist(cur, persona_id, n=10)
    assert list(lists["list"].value_counts().sort_index().items()) == [
        ("best", 10), ("representative", 10), ("worst", 10)]
    assert top not in set(lists["customer_id"])
    consenting = members.drop(index=top)
    best = lists[lists.list == "best"]
    assert list(best["customer_id"]) == list(consenting["monetary"].sort_values(ascending=False).index[:10])
    worst = lists[lists.list == "worst"]
    assert list(worst["customer_id"]) == list(consenting["monetary"].sort_values().index[:10])
    assert best["email"].str.endswith("@example.org").all()
    distances = cur.execute(
        "SELECT customer_id, distance FROM cluster_assignments WHERE run_id = ? AND cluster = ?",
        [run.run_id, premium]).df().set_index("customer_id")["distance"].drop(index=top)
    assert list(lists[lists.list == "representative"]["customer_id"]) == list(distances.sort_values().index[:10])
    with pytest.raises(NotFoundError):
        interview_shortlist(cur, 999)


# ---------------------------------------------------------------- re-evaluation


def test_rerun_on_unchanged_data_maps_to_the_same_personas(cur, shop, run):
    ids = create_personas_from_run(cur, run.run_id)
    rerun = cluster_customers(cur, k=3, seed=11)
    result = match_personas(cur, rerun.run_id)
    assert len(result.matches) == 3 and result.unmatched_clusters == []
    new_labels = run_assignments(cur, rerun.run_id).set_index("customer_id")["cluster"]
    for match in result.matches:
        members = cur.execute("SELECT customer_id FROM persona_members WHERE persona_id = ?",
                              [match.persona_id]).df()["customer_id"]
        assert new_labels[members].nunique() == 1  # everyone stayed together...
        assert match.cluster == int(new_labels[members].iloc[0])  # ...in the matched cluster
        assert match.stayed == match.members_before == match.size_after == 60
        assert match.distance == pytest.approx(0, abs=1e-3)
        before, after = match.drift["average_order_value"]
        assert before == pytest.approx(after)
    assert sorted(m.persona_id for m in result.matches) == sorted(ids)
    assert result.flows["customers"].sum() == 180


def test_drift_and_flows_after_the_data_changed(cur, shop, run):
    ids = create_personas_from_run(cur, run.run_id)
    # Ten bargain hunters now buy like premium customers.
    movers = shop.loc[shop.segment == "bargain", "customer_id"].iloc[:10].tolist()
    premium = shop[shop.segment == "premium"].iloc[0]
    cur.execute(
        "UPDATE customer_features SET average_order_value = ?, discount_share = ?, mobile_share = ?, preferred_hour = ?,"
        " sessions_total = ?, pages_per_session = ?, frequency = ?, category_shares = MAP(['High-tech', 'Maison'], [0.6, 0.4])"
        " WHERE customer_id IN (SELECT unnest(?))",
        [premium.average_order_value, premium.discount_share, premium.mobile_share, int(premium.preferred_hour),
         int(premium.sessions_total), premium.pages_per_session, int(premium.frequency), movers],
    )
    cur.execute("UPDATE customers SET age = 55, income = 80000 WHERE customer_id IN (SELECT unnest(?))", [movers])
    rerun = cluster_customers(cur, k=3, seed=0)
    result = match_personas(cur, rerun.run_id)
    by_id = {m.persona_id: m for m in result.matches}
    bargain_persona = next(i for i in ids if 1 in set(cur.execute(
        "SELECT customer_id FROM persona_members WHERE persona_id = ?", [i]).df()["customer_id"]))
    match = by_id[bargain_persona]
    assert match.members_before == 60 and match.stayed == 50 and match.size_after == 50
    flows = result.flows[result.flows.persona_id == bargain_persona].set_index("cluster")["customers"]
    assert sorted(flows.tolist()) == [10, 50]


def test_personas_not_validated_for_90_days_are_flagged(cur, shop, run):
    ids = create_personas_from_run(cur, run.run_id)
    cur.execute("UPDATE personas SET created_at = ? WHERE persona_id = ?", [datetime.now() - timedelta(days=120), ids[0]])
    cur.execute("UPDATE personas SET created_at = ?, last_validated_at = ? WHERE persona_id = ?",
                [datetime.now() - timedelta(days=200), datetime.now() - timedelta(days=30), ids[1]])
    result = {m.persona_id: m for m in match_personas(cur, run.run_id).matches}
    assert result[ids[0]].stale and result[ids[0]].days_since_validation == 120
    assert not result[ids[1]].stale and result[ids[1]].days_since_validation == 30
    assert not result[ids[2]].stale  # drafted today
    mark_validated(cur, ids[0], "ana")
    assert not {m.persona_id: m for m in match_personas(cur, run.run_id).matches}[ids[0]].stale


# ---------------------------------------------------------------- command line


def test_create_from_run_command(tmp_path, capsys):
    path = tmp_path / "shop.duckdb"
    store = open_store(path)
    make_segment_shop(store.cursor())
    run_id = cluster_customers(store.cursor(), k=3, seed=0).run_id
    store.close()
    assert main(["personas", "create-from-run", "--db", str(path), "--run", str(run_id),
                 "--clusters", "0+1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and out[0]["clusters"] == [0, 1] and out[0]["run_id"] == run_id
    assert main(["personas", "create-from-run", "--db", str(path), "--clusters", "0,x"]) == 1
    assert "--clusters takes cluster numbers" in capsys.readouterr().err
    assert main(["personas", "create-from-run", "--db", str(path), "--run", "99"]) == 1
    assert capsys.readouterr().err.strip() == "error: clustering run 99 does not exist"


def test_a_shop_without_demographics_or_sessions_drafts_what_it_can(cur, shop):
    # Like an imported order history: no age, income or gender, no session data.
    cur.execute("UPDATE customers SET age = NULL, income = NULL, gender = NULL, marital_status = NULL,"
                " occupation = NULL, region = NULL")
    cur.execute("UPDATE customer_features SET mobile_share = NULL, sessions_total = NULL, sessions_90d = NULL,"
                " pages_per_session = NULL, cart_abandonment_rate = NULL, main_source = NULL")
    run = cluster_customers(cur, k=3, seed=0)
    assert set(run.params["dropped_features"]) == {"age", "income", "mobile_share", "sessions_total",
                                                    "pages_per_session"}
    for draft in draft_personas(cur, run.run_id):
        # Nothing to say about who they are, their channels or their devices: left empty.
        for empty in ("demographics", "professional_context", "preferred_channels", "tech_affinity"):
            assert empty not in draft.fields, (empty, draft.fields.get(empty))
        # Returns come from orders and may still be a frustration; cart abandonment cannot.
        assert "cart_abandonment_rate" not in draft.evidence.get("frustrations", {})
        assert {"name", "bio", "day_in_the_life", "brand_relationship"} <= set(draft.fields)
        assert draft.evidence["name"]["gender"] in ("female", "male")  # no gender data: alternates
