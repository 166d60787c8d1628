"""Clustering: feature matrix, k selection, methods, stored runs, profiles, recovery of the
sample shop's planted archetypes, and the `cluster` command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from persona_engine.cli import main
from persona_engine.clustering import (
    CLUSTER_FEATURES,
    assign,
    build_feature_matrix,
    cluster_customers,
    feature_table,
    fit_clusters,
    list_runs,
    load_customer_frame,
    load_run,
    merge_profiles,
    parse_k,
    resolve_features,
    run_assignments,
    run_projection,
    skews,
)
from persona_engine.errors import NoDataError, ValidationError
from persona_engine.features import compute_customer_features
from persona_engine.store import Store, open_store

# ---------------------------------------------------------------- a hand-made shop

# Three kinds of customers, far apart on purpose, so that any sound clustering finds them.
SEGMENTS = {
    "bargain": dict(gender="female", age=30, income=25_000, aov=25, discount=0.9, frequency=8, mobile=0.5,
                    abandonment=0.3, returns=0.05, hour=13, sessions=40, pages=6, source="email",
                    marital="single", occupation="employee", shares={"Mode": 0.7, "Maison": 0.3}),
    "premium": dict(gender="male", age=55, income=80_000, aov=200, discount=0.05, frequency=12, mobile=0.2,
                    abandonment=0.2, returns=0.01, hour=9, sessions=30, pages=5, source="direct",
                    marital="married", occupation="executive", shares={"High-tech": 0.6, "Maison": 0.4}),
    "browser": dict(gender="female", age=22, income=12_000, aov=50, discount=0.3, frequency=1, mobile=0.85,
                    abandonment=0.9, returns=0.1, hour=22, sessions=80, pages=14, source="social",
                    marital="single", occupation="student", shares={"Sport": 0.8, "Mode": 0.2}),
}


def make_segment_shop(cur: duckdb.DuckDBPyConnection, per_segment: int = 60, seed: int = 0) -> pd.DataFrame:
    """Insert customers, customer_features and category revenue for three segments.

    Returns the frame inserted (customer_id, segment and every feature value), which tests
    use as their independent reference.
    """
    rng = np.random.default_rng(seed)
    rows = []
    cid = 0
    for name, s in SEGMENTS.items():
        for _ in range(per_segment):
            cid += 1
            frequency = max(1, int(round(s["frequency"] * rng.uniform(0.8, 1.2))))
            aov = s["aov"] * rng.uniform(0.85, 1.15)
            rows.append(dict(
                customer_id=cid, segment=name, gender=s["gender"], age=int(s["age"] + rng.integers(-3, 4)),
                income=s["income"] * rng.uniform(0.9, 1.1), marital=s["marital"], occupation=s["occupation"],
                frequency=frequency, monetary=round(aov * frequency, 2), average_order_value=aov,
                discount_share=float(np.clip(s["discount"] + rng.normal(0, 0.03), 0, 1)),
                mobile_share=float(np.clip(s["mobile"] + rng.normal(0, 0.03), 0, 1)),
                cart_abandonment_rate=float(np.clip(s["abandonment"] + rng.normal(0, 0.03), 0, 1)),
                return_rate=s["returns"], preferred_hour=int((s["hour"] + rng.integers(-1, 2)) % 24),
                preferred_weekday=int(rng.integers(0, 7)), sessions_total=int(s["sessions"] * rng.uniform(0.9, 1.1)),
                pages_per_session=s["pages"] * rng.uniform(0.9, 1.1), main_source=s["source"],
                shares=s["shares"], tenure_days=int(rng.integers(300, 700)), recency_days=int(rng.integers(5, 60)),
            ))
    frame = pd.DataFrame(rows)
    now = datetime(2026, 10, 1)
    cur.executemany(
        "INSERT INTO customers (customer_id, first_name, last_name, email, gender, age, income, marital_status,"
        " occupation, region, consent_analytics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'Bretagne', true)",
        [(r.customer_id, f"First{r.customer_id}", f"Last{r.customer_id}", f"c{r.customer_id}@example.org",
          r.gender, r.age, r.income, r.marital, r.occupation) for r in frame.itertuples()],
    )
    cur.executemany(
        "INSERT INTO customer_features (customer_id, recency_days, frequency, monetary, average_order_value,"
        " tenure_days, orders_90d, sessions_90d, sessions_total, pages_per_session, cart_abandonment_rate,"
        " discount_share, return_rate, mobile_share, main_source, favourite_category, category_shares,"
        " preferred_weekday, preferred_hour, newsletter_opt_in, computed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 1, 5, ?, ?, ?, ?, ?, ?, ?, ?, MAP(?, ?), ?, ?, true, ?)",
        [(r.customer_id, r.recency_days, r.frequency, r.monetary, r.average_order_value, r.tenure_days,
          r.sessions_total, r.pages_per_session, r.cart_abandonment_rate, r.discount_share, r.return_rate,
          r.mobile_share, r.main_source, max(r.shares, key=r.shares.get), list(r.shares), list(r.shares.values()),
          r.preferred_weekday, r.preferred_hour, now) for r in frame.itertuples()],
    )
    cur.executemany(
        "INSERT INTO customer_category_revenue (customer_id, category, revenue, quantity, orders) VALUES (?, ?, ?, 1, 1)",
        [(r.customer_id, c, share * r.monetary) for r in frame.itertuples() for c, share in r.shares.items()],
    )
    return frame


@pytest.fixture
def segment_shop(cur) -> pd.DataFrame:
    return make_segment_shop(cur)


def _labels(cur: duckdb.DuckDBPyConnection, run_id: int) -> pd.Series:
    return run_assignments(cur, run_id).set_index("customer_id")["cluster"]


# ---------------------------------------------------------------- feature choice


def test_feature_sets_and_custom_lists():
    name, keys = resolve_features("both")
    assert name == "both" and keys == [k for k, f in CLUSTER_FEATURES.items() if f.default]
    assert resolve_features("demographics") == ("demographics", ["age", "income"])
    assert resolve_features("age, discount_share") == ("custom", ["age", "discount_share"])
    with pytest.raises(ValidationError, match="unknown clustering feature.*favourite_colour"):
        resolve_features(["age", "favourite_colour"])


def test_k_is_auto_or_a_number_from_2_to_20():
    assert parse_k("auto") is None and parse_k("AUTO") is None and parse_k("4") == 4 and parse_k(8) == 8
    for bad in ("1", "21", "five", 0):
        with pytest.raises(ValidationError, match="k must be"):
            parse_k(bad)


# ---------------------------------------------------------------- feature matrix


def test_feature_matrix_transforms(cur, segment_shop):
    frame, categories = load_customer_frame(cur)
    assert categories == ["High-tech", "Maison", "Mode", "Sport"]
    matrix = build_feature_matrix(frame, ["average_order_value", "preferred_hour", "category_shares", "main_source"],
                                  categories, seed=0)
    assert matrix.columns[:3] == ["average_order_value", "preferred_hour:sin", "preferred_hour:cos"]
    # Money is on a log scale: the raw value of customer 1 is log(1 + AOV).
    assert matrix.raw[0, 0] == pytest.approx(np.log1p(segment_shop.loc[0, "average_order_value"]))
    # The hour lies on a circle: 23 h and 1 h are as close as 11 h and 13 h.
    hour = matrix.columns.index("preferred_hour:sin")

    def point(h: float) -> np.ndarray:
        return np.array([np.sin(2 * np.pi * h / 24), np.cos(2 * np.pi * h / 24)])

    assert np.linalg.norm(point(23) - point(1)) == pytest.approx(np.linalg.norm(point(11) - point(13)))
    assert matrix.raw[0, hour] == pytest.approx(point(segment_shop.loc[0, "preferred_hour"])[0])
    # Category shares: customer 1 spends 70% on Mode.
    assert matrix.raw[0, matrix.columns.index("share:Mode")] == pytest.approx(0.7)
    # One-hot columns: 0/1 scaled by 1/sqrt(2), so customers with different values (email
    # for customer 1, social for the last one) are 1 apart, as 1 sd of a numeric feature.
    sources = [i for i, c in enumerate(matrix.columns) if c.startswith("main_source=")]
    assert len(sources) == 3
    assert matrix.values[0, matrix.columns.index("main_source=email")] == pytest.approx(1 / np.sqrt(2))
    assert np.linalg.norm(matrix.values[0, sources] - matrix.values[-1, sources]) == pytest.approx(1.0)
    # Numeric columns are centred and scaled to unit variance (weight 1.5 for AOV).
    assert matrix.values[:, 0].mean() == pytest.approx(0, abs=1e-5)
    assert matrix.values[:, 0].std() == pytest.approx(CLUSTER_FEATURES["average_order_value"].weight, rel=1e-4)


def test_features_without_data_are_left_out_and_gaps_filled(cur, segment_shop):
    cur.execute("UPDATE customer_features SET mobile_share = NULL")  # a shop without sessions
    cur.execute("UPDATE customer_features SET average_order_value = NULL WHERE customer_id <= 5")
    frame, categories = load_customer_frame(cur)
    matrix = build_feature_matrix(frame, ["mobile_share", "average_order_value", "age"], categories)
    assert matrix.dropped == {"mobile_share": "no data"} and matrix.columns == ["average_order_value", "age"]
    assert matrix.missing[:5, 0].all() and not matrix.missing[5:, 0].any()
    # Filled gaps stay within the observed range of the column.
    observed = matrix.raw[5:, 0]
    assert (matrix.raw[:5, 0] >= observed.min() - 1e-9).all() and (matrix.raw[:5, 0] <= observed.max() + 1e-9).all()
    with pytest.raises(NoDataError, match="mobile_share: no data"):
        build_feature_matrix(frame, ["mobile_share"], categories)


def test_rows_with_gaps_join_the_cluster_their_known_values_match():
    # Two blobs around (0, 0, 0) and (5, 5, 5). The last row knows (5, 5, ?) and starts with
    # a bad guess, -20, for its gap: nearer blob A at first (21.2 against 25.0). Filling the
    # gap from its cluster's centre and refitting moves it to blob B, where its known values are.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.1, (50, 3)), rng.normal(5, 0.1, (50, 3)), [[5.0, 5.0, -20.0]]])
    missing = np.zeros_like(X, dtype=bool)
    missing[-1, 2] = True
    labels, centres, filled = fit_clusters(X, missing, 2, "kmeans", seed=0)
    assert labels[-1] == labels[60] != labels[0]
    assert filled[-1, 2] == pytest.approx(centres[labels[-1], 2]) and filled[-1, 2] == pytest.approx(5, abs=0.1)
    partial, distance = assign(X, missing, centres)
    assert (partial == labels).all()
    # Its distance counts the known columns only, scaled up by 3 columns / 2 known.
    expected = np.sqrt(((X[-1, :2] - centres[labels[-1], :2]) ** 2).sum() * 3 / 2)
    assert distance[-1] == pytest.approx(expected)


# ---------------------------------------------------------------- runs on the hand-made shop


@pytest.mark.parametrize("method", ["kmeans", "minibatch", "gmm"])
def test_each_method_recovers_well_separated_segments(cur, segment_shop, method):
    run = cluster_customers(cur, k="auto", seed=0, method=method)
    assert run.k == 3 and run.method == method  # silhouette picks the three segments
    labels = _labels(cur, run.run_id)
    truth = segment_shop.set_index("customer_id")["segment"].loc[labels.index]
    assert adjusted_rand_score(truth, labels) == 1.0
    assert run.silhouette > 0.5 and run.stability == pytest.approx(1.0)
    assert sorted(run.k_scores) == [3, 4, 5, 6, 7, 8] and max(run.k_scores, key=run.k_scores.get) == 3


def test_run_is_stored_with_parameters_and_quality(cur, segment_shop):
    run = cluster_customers(cur, k=3, seed=5, features="behaviour", user="ana")
    stored = list_runs(cur).iloc[0]
    assert stored.run_id == run.run_id and stored.k == 3 and stored.feature_set == "behaviour"
    assert stored.created_by == "ana" and stored.seed == 5 and stored.n_customers == 180
    assert run.features == resolve_features("behaviour")[1]
    assert run.params["k_requested"] == 3 and run.k_scores == {}
    # Sizes: 60 per segment; clusters are numbered from the largest, and every customer has one.
    assert [c.size for c in run.clusters] == [60, 60, 60]
    assert sum(c.share for c in run.clusters) == pytest.approx(1.0)
    assert len(run_assignments(cur, run.run_id)) == 180
    projection = run_projection(cur, run.run_id)
    assert len(projection) == 180 and set(projection["cluster"]) == {0, 1, 2}


def test_same_seed_same_clusters(cur, segment_shop):
    first = cluster_customers(cur, k=4, seed=3)
    second = cluster_customers(cur, k=4, seed=3)
    assert second.run_id == first.run_id + 1
    assert (_labels(cur, first.run_id) == _labels(cur, second.run_id)).all()
    assert second.silhouette == first.silhouette and second.stability == first.stability


def test_too_few_customers_or_no_features(cur):
    with pytest.raises(NoDataError, match="no customer features yet"):
        cluster_customers(cur)
    make_segment_shop(cur, per_segment=5)
    with pytest.raises(NoDataError, match="only 15 consenting customers"):
        cluster_customers(cur)


def test_customers_without_consent_are_not_clustered(cur, segment_shop):
    cur.execute("UPDATE customers SET consent_analytics = false WHERE customer_id IN (1, 2, 3)")
    run = cluster_customers(cur, k=3)
    assert run.n_customers == 177
    assert not set(_labels(cur, run.run_id).index) & {1, 2, 3}


# ---------------------------------------------------------------- profiles


def test_profiles_match_a_pandas_reference(cur, segment_shop):
    run = cluster_customers(cur, k=3, seed=0)
    labels = _labels(cur, run.run_id)
    ref = segment_shop.set_index("customer_id").loc[labels.index].assign(cluster=labels.values)
    premium = int(ref.loc[ref.segment == "premium", "cluster"].iloc[0])
    members = ref[ref.cluster == premium]
    profile = run.profiles[premium]
    table = feature_table(profile, run.base).set_index("feature")
    # Mean, index and z-score of the basket value against the whole base (population sd).
    mean, base_mean, base_sd = members.average_order_value.mean(), ref.average_order_value.mean(), \
        ref.average_order_value.std(ddof=0)
    assert table.at["average_order_value", "mean"] == pytest.approx(mean)
    assert table.at["average_order_value", "index"] == pytest.approx(100 * mean / base_mean)
    assert table.at["average_order_value", "z"] == pytest.approx((mean - base_mean) / base_sd)
    # Revenue share: the cluster's share of the consenting customers' completed revenue.
    summary = next(c for c in run.clusters if c.cluster == premium)
    assert summary.revenue_share == pytest.approx(members.monetary.sum() / ref.monetary.sum())
    assert summary.share == pytest.approx(1 / 3)
    # Demographic skew: all premium customers are men (one third of the base).
    gender = skews(profile, run.base, "gender").set_index("value")
    assert gender.at["male", "share"] == 1.0 and gender.at["male", "lift"] == pytest.approx(3.0)
    # Spend share of High-tech: 60% for every premium customer, 20% over the base's buyers.
    assert profile.spend_share("High-tech") == pytest.approx(0.6)
    assert run.base.profile.spend_share("High-tech") == pytest.approx(0.2)
    # Top traits in plain numbers: a much bigger basket, far fewer discounts.
    traits = {t.feature: t for t in run.traits(premium, 5)}
    assert traits["average_order_value"].direction == "higher"
    assert traits["average_order_value"].ratio == pytest.approx(mean / base_mean)
    # Merging two clusters gives the profile of their customers together.
    other = (premium + 1) % 3
    merged = merge_profiles([run.profiles[premium], run.profiles[other]])
    both = ref[ref.cluster.isin([premium, other])]
    assert merged.customers == 120 and merged.mean("age") == pytest.approx(both.age.mean())


# ---------------------------------------------------------------- the sample shop


@pytest.fixture(scope="module")
def sample_shop(tmp_path_factory) -> Iterator[tuple[Path, Store]]:
    from sample_data.generator import generate_shop

    path = tmp_path_factory.mktemp("clustering") / "shop.duckdb"
    store = open_store(path)
    generate_shop(store.cursor(), n_customers=12_000, seed=7)
    compute_customer_features(store.cursor())
    yield path, store
    store.close()


def _ari_against_truth(cur: duckdb.DuckDBPyConnection, run_id: int) -> float:
    frame = cur.execute(
        "SELECT a.cluster, t.archetype FROM cluster_assignments a JOIN sample_truth t USING (customer_id)"
        " WHERE a.run_id = ?", [run_id]).df()
    return float(adjusted_rand_score(frame["archetype"], frame["cluster"]))


def test_sample_shop_archetypes_are_recovered(sample_shop):
    # The generator plants five archetypes; measured on 20,000-customer shops (seeds 1-3):
    # ARI 0.92, 0.92, 0.93 with k = 5, and --k auto picks 5 each time.
    _, store = sample_shop
    cur = store.cursor()
    auto = cluster_customers(cur, k="auto", seed=0)
    assert auto.k == 5, auto.k_scores
    assert _ari_against_truth(cur, auto.run_id) >= 0.8
    consenting = cur.execute("SELECT count(*) FROM customer_features").fetchall()[0][0]
    assert auto.n_customers == consenting  # ~90%: customers without consent have no features
    assert auto.stability >= 0.9


def test_cluster_command_prints_the_documented_json(sample_shop, capsys):
    path, store = sample_shop
    store.close()  # one process holds the file at a time: the command opens it itself
    try:
        code = main(["cluster", "--db", str(path), "--k", "5", "--seed", "1", "--json"])
        out = json.loads(capsys.readouterr().out)
    finally:
        store.connection  # noqa: B018 - reopen for the other tests of the module
    assert code == 0
    assert set(out) == {"run_id", "k", "silhouette", "stability", "clusters"}
    assert out["k"] == 5 and len(out["clusters"]) == 5
    assert [c["cluster"] for c in out["clusters"]] == [0, 1, 2, 3, 4]
    sizes = [c["size"] for c in out["clusters"]]
    assert sizes == sorted(sizes, reverse=True)
    stored = load_run(store.cursor(), out["run_id"])
    assert sum(sizes) == stored.n_customers
    assert out["clusters"][0]["share"] == pytest.approx(sizes[0] / stored.n_customers)
    assert _ari_against_truth(store.cursor(), out["run_id"]) >= 0.8


def test_cluster_command_reports_bad_input_in_one_line(sample_shop, capsys):
    path, _ = sample_shop
    assert main(["cluster", "--db", str(path), "--k", "one"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: k must be 'auto' or a whole number from 2 to 20; got 'one'"]
