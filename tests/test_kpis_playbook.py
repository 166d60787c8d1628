"""The behavioural playbook: a valid data file, suggestions that fit a persona's traits, and
one call from a suggestion to a tracked action."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from persona_engine import actions, playbook, segments
from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.playbook import Profile

# --- The data file -------------------------------------------------------------------------


def test_every_play_is_complete_in_english_and_french():
    plays = playbook.load_playbook()
    keys = {p.key for p in plays}
    # The examples are all there.
    assert {"welcome_offer", "cart_reminder", "reactivation", "early_access",
            "category_recommendations", "birthday_offer"} <= keys
    for play in plays:
        assert set(play.text) == {"en", "fr"}
        assert play.text["en"]["message"] != play.text["fr"]["message"]


def test_plays_only_use_real_features_and_segments(cur):
    columns = {row[0] for row in cur.execute("DESCRIBE customer_features").fetchall()}
    known_segments = set(segments.RFM_GROUPS) | set(segments.BEHAVIOUR_SEGMENTS)
    for play in playbook.load_playbook():
        for condition in play.conditions:
            if condition.feature is not None:
                assert condition.feature in columns, (play.key, condition.feature)
            else:
                assert condition.segment in known_segments, (play.key, condition.segment)


@pytest.mark.parametrize(
    "condition, message",
    [
        ('{ feature = "shoe_size", at_least = 40 }', "unknown feature 'shoe_size'"),
        ('{ feature = "recency_days" }', "exactly one of"),
        ('{ feature = "main_source", at_least = 1 }', "categorical"),
        ('{ segment = "loyal_buyers", at_least = 0.2 }', "share_at_least"),
        ('{ feature = "recency_days", at_least = -3 }', "positive number"),
    ],
)
def test_a_broken_playbook_is_refused_with_the_play_named(tmp_path: Path, condition, message):
    path = tmp_path / "playbook.toml"
    path.write_text(
        '[[play]]\nkey = "broken"\ntarget_segment = "x"\ngoal_metric = "conversion_rate"\n'
        f'channel = "email"\nconditions = [{condition}]\n'
        '[play.en]\nname = "a"\ngoal = "b"\nmessage = "c"\n'
        '[play.fr]\nname = "a"\ngoal = "b"\nmessage = "c"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match=message) as raised:
        playbook.load_playbook(path)
    assert "'broken'" in str(raised.value)


def test_a_play_without_french_is_refused(tmp_path: Path):
    path = tmp_path / "playbook.toml"
    path.write_text(
        '[[play]]\nkey = "en_only"\ntarget_segment = "x"\ngoal_metric = "retention_rate"\n'
        'channel = "email"\nconditions = [{ feature = "frequency", at_least = 2 }]\n'
        '[play.en]\nname = "a"\ngoal = "b"\nmessage = "c"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match=r"\[fr\] needs name, goal and message"):
        playbook.load_playbook(path)


# --- Matching a profile ----------------------------------------------------------------------

SHOP = Profile(
    members=1000,
    features={
        "recency_days": 60.0, "frequency": 2.0, "average_order_value": 70.0, "tenure_days": 400.0,
        "cart_abandonment_rate": 0.3, "discount_share": 0.2, "return_rate": 0.08,
        "mobile_share": 0.5, "pages_per_session": 6.0, "newsletter_opt_in": 0.4,
        "favourite_category": "fashion",
    },
    segments={"cart_abandoners": 0.15, "loyal_buyers": 0.1},
)


def _profile(**features):
    base = dict(SHOP.features)
    base.update(features.pop("features", {}))
    return Profile(members=50, features=base, segments=features.pop("segments", {}))


def test_cart_abandoners_get_the_cart_reminder():
    # 40% of members are cart abandoners (threshold 25% -> strength 1.6) and their median
    # abandonment is 0.7 (threshold 0.5 -> 1.4); an "any" play takes the stronger: 1.6.
    persona = _profile(features={"cart_abandonment_rate": 0.7}, segments={"cart_abandoners": 0.4})
    found = {s.key: s for s in playbook.suggest(persona, SHOP)}
    assert found["cart_reminder"].strength == pytest.approx(1.6)
    assert found["cart_reminder"].goal_metric == "conversion_rate"
    assert {e.trait for e in found["cart_reminder"].evidence} == {
        "segment:cart_abandoners", "cart_abandonment_rate"
    }


def test_loyal_premium_buyers_get_early_access_and_premium_bundles_not_a_welcome():
    persona = _profile(
        features={"frequency": 6.0, "average_order_value": 150.0, "tenure_days": 900.0,
                  "favourite_category": "tech"},
        segments={"loyal_buyers": 0.5},
    )
    found = {s.key: s for s in playbook.suggest(persona, SHOP)}
    # early_access: loyal share 0.5 / 0.3 = 1.67, frequency 6 / 2 = 3 vs 1.5 -> 2.0: max 2.0.
    assert found["early_access"].strength == pytest.approx(2.0)
    # premium_bundle: AOV 150 / 70 = 2.14 vs 1.3 -> 1.648.
    assert found["premium_bundle"].strength == pytest.approx(150 / 70 / 1.3, abs=1e-3)
    assert "welcome_offer" not in found and "free_shipping_threshold" not in found
    # Strongest first; the category is filled into the message.
    strengths = [s.strength for s in playbook.suggest(persona, SHOP)]
    assert strengths == sorted(strengths, reverse=True)
    assert found["category_recommendations"].message.startswith("New in tech")


def test_suggestions_speak_french():
    persona = _profile(features={"mobile_share": 0.9})
    found = {s.key: s for s in playbook.suggest(persona, SHOP, language="fr")}
    assert found["app_push_offer"].name == "Offre dans l'application à leur heure habituelle"
    assert found["app_push_offer"].channel == "push"
    with pytest.raises(ValidationError, match="unknown language"):
        playbook.suggest(persona, SHOP, language="de")


def test_shop_relative_conditions_need_the_shop_profile():
    # AOV 40 is 0.57 of the shop's 70: under the 0.75 threshold -> free delivery threshold;
    # without a shop profile the comparison cannot be made and the play is not suggested.
    persona = _profile(features={"average_order_value": 40.0})
    assert "free_shipping_threshold" in {s.key for s in playbook.suggest(persona, SHOP)}
    assert "free_shipping_threshold" not in {s.key for s in playbook.suggest(persona, None)}


# --- From the database -----------------------------------------------------------------------


def _features_row(customer_id, recency, frequency, aov, cart, favourite, newsletter):
    return (customer_id, recency, frequency, frequency * aov, aov, 300, 0, 3, 10, 5.0, cart,
            0.1, 0.05, 0.5, "direct", favourite, newsletter)


@pytest.fixture
def persona_shop(cur: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    cur.executemany(
        "INSERT INTO customers (customer_id, consent_analytics) VALUES (?, ?)",
        [(1, True), (2, True), (3, True), (4, True), (5, False)],
    )
    cur.executemany(
        "INSERT INTO customer_features (customer_id, recency_days, frequency, monetary, "
        "average_order_value, tenure_days, orders_90d, sessions_90d, sessions_total, "
        "pages_per_session, cart_abandonment_rate, discount_share, return_rate, mobile_share, "
        "main_source, favourite_category, newsletter_opt_in, computed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
        [
            _features_row(1, 10, 1, 20.0, 0.8, "kids", True),
            _features_row(2, 30, 2, 30.0, 0.6, "kids", False),
            _features_row(3, 200, 1, 25.0, 0.9, "home", False),
            _features_row(4, 5, 9, 200.0, 0.1, "tech", True),
            _features_row(5, 1, 50, 999.0, 0.0, "tech", True),  # no consent: never counted
        ],
    )
    cur.executemany(
        "INSERT INTO customer_segments (customer_id, rfm_group, segments, computed_at) "
        "VALUES (?, ?, ?, current_timestamp)",
        [(1, "new", ["cart_abandoners"]), (2, "promising", ["cart_abandoners"]),
         (3, "lost", ["cart_abandoners", "inactive"]), (4, "champions", ["loyal_buyers"]),
         (5, "champions", ["loyal_buyers"])],
    )
    cur.execute("INSERT INTO personas (persona_id, name) VALUES (1, 'Parents'), (2, 'Empty')")
    cur.executemany(
        "INSERT INTO persona_members (persona_id, customer_id) VALUES (1, ?)", [(1,), (2,), (3,), (5,)]
    )
    return cur


def test_persona_profile_medians_shares_and_segments(persona_shop):
    profile = playbook.persona_profile(persona_shop, 1)
    # Members 1, 2, 3 (5 has no consent): recency 10, 30, 200 -> median 30; cart abandonment
    # 0.8, 0.6, 0.9 -> 0.8; newsletter 1 of 3; favourite category "kids" twice.
    assert profile.members == 3
    assert profile.features["recency_days"] == 30
    assert profile.features["cart_abandonment_rate"] == pytest.approx(0.8)
    assert profile.features["newsletter_opt_in"] == pytest.approx(1 / 3)
    assert profile.features["favourite_category"] == "kids"
    assert profile.segments["cart_abandoners"] == 1.0
    assert profile.segments["lost"] == pytest.approx(1 / 3)
    shop = playbook.shop_profile(persona_shop)
    assert shop.members == 4 and shop.features["frequency"] == pytest.approx(1.5)  # 1, 2, 1, 9


def test_suggestions_for_a_persona_from_the_database(persona_shop):
    found = {s.key for s in playbook.suggestions_for_persona(persona_shop, 1)}
    assert "cart_reminder" in found and "early_access" not in found


def test_profile_errors(persona_shop):
    with pytest.raises(NoDataError, match="no customer features for persona 2"):
        playbook.persona_profile(persona_shop, 2)
    with pytest.raises(NotFoundError, match="persona 9 does not exist"):
        playbook.persona_profile(persona_shop, 9)


def test_a_suggestion_becomes_a_tracked_action(persona_shop):
    action_id = playbook.create_action_from_suggestion(
        persona_shop, "category_recommendations", 1, date(2026, 5, 4), language="fr",
        created_by="ines",
    )
    action = actions.get_action(persona_shop, action_id)
    assert action.name == "Recommandations dans la catégorie préférée"
    assert action.persona_ids == (1,) and action.channel == "email"
    assert action.starts_on == date(2026, 5, 4) and action.created_by == "ines"
    assert "Nouveautés kids" in (action.description or "")
    with pytest.raises(NotFoundError, match="no play 'coupon_rain'"):
        playbook.create_action_from_suggestion(persona_shop, "coupon_rain", 1, date(2026, 5, 4))
