"""RFM scores against a pandas reference, groups as a partition, behavioural segments."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from persona_engine.errors import ValidationError
from persona_engine.features import compute_customer_features
from persona_engine.segments import (
    BEHAVIOUR_SEGMENTS,
    RFM_GRID,
    RFM_GROUPS,
    BehaviourRules,
    assign_segments,
    load_rules,
    rfm_group_for,
)
from persona_engine.store import open_store
from tests.test_features import NEVER_BOUGHT, build_small_shop, computed_features


@pytest.fixture(scope="module")
def shop() -> duckdb.DuckDBPyConnection:
    store = open_store(":memory:")
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    yield cur
    store.close()


def segments_table(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return cur.execute("SELECT * FROM customer_segments ORDER BY customer_id").df().set_index("customer_id")


def reference_scores(features: pd.DataFrame) -> pd.DataFrame:
    """Quintiles of the min-rank, written independently with pandas: ties share a score."""
    buyers = features[features["frequency"] > 0]
    n = len(buyers)

    def score(rank: pd.Series) -> pd.Series:
        return 1 + (5 * (rank.astype(int) - 1)) // n

    return pd.DataFrame({
        # Larger recency = older = worse: rank 1 goes to the oldest buyer.
        "r_score": score(buyers["recency_days"].rank(method="min", ascending=False)),
        "f_score": score(buyers["frequency"].rank(method="min")),
        "m_score": score(buyers["monetary"].rank(method="min")),
    })


@pytest.mark.parametrize("score", ["r_score", "f_score", "m_score"])
def test_scores_match_pandas_reference(shop, score):
    expected = reference_scores(computed_features(shop))
    got = segments_table(shop)
    assert len(expected) == 29  # customers 1-29 bought; 30 never did; 31 has no consent
    assert got.loc[expected.index, score].astype(int).to_dict() == expected[score].to_dict()
    # The reference is not flat: several scores are used.
    assert expected[score].nunique() >= 3


def test_frequency_ties_share_a_score_hand_computed(shop):
    # 29 buyers: twelve with 1 order, six with 2, five with 3, three with 4, two with 6,
    # one with 10. Score = 1 + floor(5 * buyers strictly below / 29):
    # 1 order: 0 below -> 1; 2: 12 below -> 1 + 60 // 29 = 3; 3: 18 -> 1 + 90 // 29 = 4;
    # 4: 23 -> 1 + 115 // 29 = 4; 6: 26 -> 1 + 130 // 29 = 5; 10: 28 -> 1 + 140 // 29 = 5.
    rows = shop.execute(
        "SELECT f.frequency, min(s.f_score), max(s.f_score) FROM customer_features f "
        "JOIN customer_segments s USING (customer_id) WHERE f.frequency > 0 GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [(1, 1, 1), (2, 3, 3), (3, 4, 4), (4, 4, 4), (6, 5, 5), (10, 5, 5)]


def test_non_buyers_are_not_scored_and_have_no_group(shop):
    row = shop.execute(
        "SELECT r_score, f_score, m_score, rfm_group FROM customer_segments WHERE customer_id = ?",
        [NEVER_BOUGHT],
    ).fetchall()
    assert row == [(None, None, None, None)]


def test_groups_partition_the_scored_customers(shop):
    got = segments_table(shop)
    scored = got[got["r_score"].notna()]
    # Every scored customer has exactly one group (one column, never empty), all known.
    assert scored["rfm_group"].notna().all()
    assert set(scored["rfm_group"]) <= set(RFM_GROUPS)
    # Group sizes add up to the 29 buyers: no overlap, no one left out.
    assert scored["rfm_group"].value_counts().sum() == 29
    # The group is the one of the (R, F) cell.
    for _, row in scored.iterrows():
        assert row["rfm_group"] == rfm_group_for(int(row["r_score"]), int(row["f_score"]))


def test_grid_maps_every_cell_to_one_of_the_eleven_groups():
    cells = [(r, f) for r in range(1, 6) for f in range(1, 6)]
    groups = [rfm_group_for(r, f) for r, f in cells]
    assert len(groups) == 25
    assert set(groups) == set(RFM_GROUPS)  # each of the 11 groups owns at least one cell
    assert RFM_GRID[5][4] == "champions" and RFM_GRID[1][0] == "lost"
    with pytest.raises(ValidationError):
        rfm_group_for(0, 3)


def reference_segments(features: pd.DataFrame, rules: BehaviourRules) -> dict[str, set[int]]:
    """The behavioural segments written again with pandas from the documented rules."""
    f = features
    days_inactive = (pd.to_datetime(f["reference_date"]) - pd.to_datetime(f["last_active_at"]).dt.normalize()).dt.days
    fav_share = [
        shares.get(fav) if isinstance(shares, dict) and fav is not None else None
        for shares, fav in zip(f["category_shares"], f["favourite_category"], strict=True)
    ]
    f = f.assign(fav_share=fav_share, days_inactive=days_inactive)
    out = {
        "new_visitors": f[(f["frequency"] == 0) & (f["tenure_days"] <= rules.new_days)],
        "engaged_visitors": f[(f["frequency"] == 0) & (f["sessions_90d"] >= rules.engaged_min_sessions_90d)],
        "recent_buyers": f[f["recency_days"] <= rules.recent_days],
        "loyal_buyers": f[(f["frequency"] >= rules.loyal_min_orders) & (f["recency_days"] <= rules.loyal_max_recency_days)],
        "occasional_buyers": f[(f["frequency"] >= 1) & (f["frequency"] < rules.loyal_min_orders) & (f["recency_days"] <= rules.inactive_days)],
        "at_risk_of_churn": f[(f["frequency"] >= rules.at_risk_min_orders) & (f["recency_days"] > rules.at_risk_after_days) & (f["recency_days"] <= rules.inactive_days)],
        "cart_abandoners": f[(f["abandoned_carts_90d"] >= rules.cart_min_abandoned_90d) & (f["cart_abandonment_rate"] >= rules.cart_min_rate)],
        "inactive": f[(f["tenure_days"] > rules.inactive_days) & (f["days_inactive"].isna() | (f["days_inactive"] > rules.inactive_days))],
    }
    result = {k: set(v.index) for k, v in out.items()}
    for cid, row in f.iterrows():
        if row["fav_share"] is not None and row["fav_share"] >= rules.interest_min_share:
            result.setdefault(f"interest:{row['favourite_category']}", set()).add(cid)
    return result


def members(cur: duckdb.DuckDBPyConnection) -> dict[str, set[int]]:
    rows = cur.execute("SELECT customer_id, unnest(segments) FROM customer_segments").fetchall()
    out: dict[str, set[int]] = {}
    for cid, segment in rows:
        out.setdefault(segment, set()).add(cid)
    return out


def test_behaviour_segments_match_the_rules(shop):
    rules = BehaviourRules()
    expected = reference_segments(computed_features(shop), rules)
    got = members(shop)
    for segment in BEHAVIOUR_SEGMENTS:
        assert got.get(segment, set()) == expected[segment], segment
    interests = {k: v for k, v in expected.items() if k.startswith("interest:")}
    assert {k: v for k, v in got.items() if k.startswith("interest:")} == interests
    # The shop exercises every rule: each segment has members, and not everyone.
    for segment in BEHAVIOUR_SEGMENTS:
        assert 0 < len(expected[segment]) < 32, segment


def test_new_thresholds_are_saved_and_change_membership(store):
    cur = store.cursor()
    build_small_shop(cur)
    compute_customer_features(cur)
    loyal_default = members(cur).get("loyal_buyers", set())
    # With 2 orders enough to be loyal (and a whole year to come back), the six customers
    # with two orders (13-18) can join: the reference says exactly who.
    rules = BehaviourRules(loyal_min_orders=2, loyal_max_recency_days=365)
    assert assign_segments(cur, rules) == 32
    assert load_rules(cur) == rules
    expected = reference_segments(computed_features(cur), rules)["loyal_buyers"]
    assert members(cur).get("loyal_buyers", set()) == expected
    assert len(expected) > len(loyal_default)
    # The saved thresholds survive a feature recomputation.
    compute_customer_features(cur)
    assert members(cur).get("loyal_buyers", set()) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"recent_days": -1},
        {"cart_min_rate": 1.5},
        {"loyal_min_orders": 1},
        {"at_risk_after_days": 400, "inactive_days": 365},
    ],
)
def test_nonsense_thresholds_are_refused(changes):
    with pytest.raises(ValidationError):
        BehaviourRules(**changes).validate()


def test_damaged_saved_rules_fall_back_to_defaults(cur):
    cur.execute("INSERT INTO shop_settings VALUES ('segment_rules', '{not json')")
    assert load_rules(cur) == BehaviourRules()
