"""Customer clusters: feature matrix -> k selection -> clusters -> profiles, every run stored.

A run reads `customer_features` joined to `analysis_customers` (consenting customers only),
turns the chosen features into a numeric matrix (log of skewed money and count features,
ratios as they are, hour of day on a circle, category spend shares, one-hot categoricals;
gaps filled by regression from the other features; 1st-99th percentile clipping; scaled to
unit variance and weighted), clusters it with scikit-learn, and stores the run
(`clustering_runs`), each customer's cluster (`cluster_assignments`), each cluster's profile
(`cluster_profiles`) and a 2-D projection sample (`cluster_projection`).

Randomness only comes from the run's `seed`: the same data, parameters and seed give the
same clusters.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.metrics import adjusted_rand_score, silhouette_samples
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.store import fetch_df, fetch_value, transaction

# Called after each step with (steps done, total steps, name of the step just done).
ProgressCallback = Callable[[int, int, str], None]

Transform = Literal["log", "ratio", "linear", "hour", "shares", "onehot"]
FeatureGroup = Literal["behaviour", "demographics"]


@dataclass(frozen=True)
class ClusterFeature:
    """One input of the feature matrix.

    transform: log = log(1 + x) for skewed money and count features; ratio / linear = the
    value itself; hour = (sin, cos) of the hour on a 24-hour circle, so 23 h and 0 h are
    neighbours; shares = one column per product category (share of the customer's spend);
    onehot = one 0/1 column per value (the 12 most frequent values, the rest together).
    weight multiplies the scaled column(s): how much the feature counts in distances.
    default: part of the default feature set of its group.
    """

    key: str
    group: FeatureGroup
    transform: Transform
    weight: float = 1.0
    default: bool = True


# The documented default feature set is every feature with default=True. It describes how
# customers shop (basket value, discounts, device, browsing, how often they buy, time of
# day, categories) and who they are (age, income). Basket value and income weigh 1.5: the
# price level a customer shops at is what most separates shoppers in retail. Category
# shares weigh 0.5 each (there are up to 12 of them: together they would drown the rest).
# Left out by default, and why:
# - monetary, orders_90d: repeat frequency and basket value, which are in.
# - recency_days, tenure_days, sessions_90d: when someone bought or came lately says more
#   about their lifecycle stage (the RFM groups of the explorer) than about who they are.
# - cart_abandonment_rate: 1.0 for every visitor who never bought, so it mostly separates
#   buyers from non-buyers; it shows in the profiles.
# - return_rate, newsletter_opt_in, main_source, main_device, occupation, gender,
#   marital_status, education, region: weak or redundant signals that add noise to the
#   distances (checked on the sample shop: each lowers the recovery of its archetypes).
# Any of them can be chosen explicitly (`features=[...]`, `--features a,b,c`).
CLUSTER_FEATURES: dict[str, ClusterFeature] = {
    f.key: f
    for f in (
        ClusterFeature("average_order_value", "behaviour", "log", weight=1.5),
        ClusterFeature("discount_share", "behaviour", "ratio"),
        ClusterFeature("mobile_share", "behaviour", "ratio"),
        ClusterFeature("frequency", "behaviour", "log"),
        ClusterFeature("sessions_total", "behaviour", "log"),
        ClusterFeature("pages_per_session", "behaviour", "log"),
        ClusterFeature("preferred_hour", "behaviour", "hour"),
        ClusterFeature("category_shares", "behaviour", "shares", weight=0.5),
        ClusterFeature("monetary", "behaviour", "log", default=False),
        ClusterFeature("orders_90d", "behaviour", "log", default=False),
        ClusterFeature("recency_days", "behaviour", "log", default=False),
        ClusterFeature("tenure_days", "behaviour", "log", default=False),
        ClusterFeature("sessions_90d", "behaviour", "log", default=False),
        ClusterFeature("cart_abandonment_rate", "behaviour", "ratio", default=False),
        ClusterFeature("return_rate", "behaviour", "ratio", default=False),
        ClusterFeature("main_source", "behaviour", "onehot", default=False),
        ClusterFeature("main_device", "behaviour", "onehot", default=False),
        ClusterFeature("newsletter_opt_in", "behaviour", "ratio", default=False),
        ClusterFeature("age", "demographics", "linear"),
        ClusterFeature("income", "demographics", "log", weight=1.5),
        ClusterFeature("occupation", "demographics", "onehot", default=False),
        ClusterFeature("gender", "demographics", "onehot", default=False),
        ClusterFeature("marital_status", "demographics", "onehot", default=False),
        ClusterFeature("education", "demographics", "onehot", default=False),
        ClusterFeature("region", "demographics", "onehot", default=False),
    )
}

FEATURE_SETS: tuple[str, ...] = ("both", "behaviour", "demographics")
METHODS: tuple[str, ...] = ("auto", "kmeans", "minibatch", "gmm")
K_RANGE: tuple[int, ...] = (3, 4, 5, 6, 7, 8)
MINIBATCH_ABOVE = 200_000  # customers; above this "auto" uses MiniBatchKMeans
MIN_CUSTOMERS = 30
SAMPLE_SIZE = 20_000  # rows the k candidates and the stability re-runs are fitted on
SILHOUETTE_SIZE = 5_000  # rows silhouettes are measured on (pairwise distances: n^2)
PROJECTION_SIZE = 3_000  # points of the stored 2-D scatter
IMPUTE_SAMPLE = 50_000  # rows the gap-filling regressions are fitted on
STABILITY_RERUNS = 3
KPOD_ROUNDS = 5  # refits that fill gaps from the cluster centres (see fit_clusters)
MAX_ONEHOT_LEVELS = 12
MAX_CATEGORIES = 12
# Threads for scikit-learn's maths: half the cores, at most 4. The app's other sessions and
# DuckDB share the machine, and an oversubscribed OpenMP pool is several times slower than
# one thread (measured: KMeans on 18,000 x 17 took 2.2 s with 2 threads on a busy 2-core
# machine, 0.4 s with 1).
MATHS_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))

STEPS: tuple[str, ...] = (
    "loading customers",
    "building the feature matrix",
    "choosing the number of clusters",
    "clustering",
    "scoring",
    "stability",
    "profiles",
    "saving",
)

# Columns of the profiles: interpretable units (currency, days, shares), whether or not the
# run clustered on them, so that a profile describes the whole customer.
PROFILE_NUMERIC: tuple[str, ...] = (
    "frequency", "monetary", "average_order_value", "recency_days", "tenure_days",
    "orders_90d", "sessions_total", "sessions_90d", "pages_per_session",
    "cart_abandonment_rate", "discount_share", "return_rate", "mobile_share",
    "newsletter_opt_in", "age", "income",
)
PROFILE_CATEGORICAL: tuple[str, ...] = (
    "gender", "marital_status", "occupation", "education", "region", "main_device",
    "main_source", "favourite_category", "preferred_weekday", "preferred_hour",
)
MAX_PROFILE_LEVELS = 30

# Columns read for a run: customer_features (f) and analysis_customers (c). Constants, so
# the f-string SQL below only ever holds these identifiers.
_FRAME_COLUMNS: dict[str, str] = {
    "frequency": "f.frequency", "monetary": "f.monetary",
    "average_order_value": "f.average_order_value", "recency_days": "f.recency_days",
    "tenure_days": "f.tenure_days", "orders_90d": "f.orders_90d",
    "sessions_total": "f.sessions_total", "sessions_90d": "f.sessions_90d",
    "pages_per_session": "f.pages_per_session", "cart_abandonment_rate": "f.cart_abandonment_rate",
    "discount_share": "f.discount_share", "return_rate": "f.return_rate",
    "mobile_share": "f.mobile_share", "newsletter_opt_in": "CAST(f.newsletter_opt_in AS DOUBLE)",
    "main_source": "f.main_source", "main_device": "f.main_device",
    "favourite_category": "f.favourite_category", "preferred_weekday": "f.preferred_weekday",
    "preferred_hour": "f.preferred_hour", "age": "CAST(c.age AS DOUBLE)", "income": "c.income",
    "gender": "c.gender", "marital_status": "c.marital_status", "occupation": "c.occupation",
    "education": "c.education", "region": "c.region",
}


# ---------------------------------------------------------------- feature selection


def resolve_features(features: str | Sequence[str] | None) -> tuple[str, list[str]]:
    """(feature_set name, feature keys) for a set name, a comma-separated list or a list.

    ValidationError names the unknown keys and the known ones.
    """
    if features is None:
        features = "both"
    if isinstance(features, str):
        name = features.strip()
        if name in FEATURE_SETS:
            groups = ("behaviour", "demographics") if name == "both" else (name,)
            return name, [k for k, f in CLUSTER_FEATURES.items() if f.default and f.group in groups]
        features = [part for part in name.split(",") if part.strip()]
    keys = [k.strip() for k in features]
    unknown = [k for k in keys if k not in CLUSTER_FEATURES]
    if unknown:
        raise ValidationError(
            f"unknown clustering feature(s) {', '.join(unknown)}; choose a set "
            f"({', '.join(FEATURE_SETS)}) or features among: {', '.join(CLUSTER_FEATURES)}"
        )
    if not keys:
        raise ValidationError("choose at least one feature to cluster on")
    return "custom", list(dict.fromkeys(keys))


# ---------------------------------------------------------------- loading


def _top_categories(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        "SELECT category FROM customer_category_revenue WHERE category IS NOT NULL"
        " GROUP BY category ORDER BY sum(revenue) DESC, category LIMIT ?",
        [MAX_CATEGORIES],
    ).fetchall()
    return sorted(r[0] for r in rows)


def load_customer_frame(cur: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, list[str]]:
    """Everything a run needs, one row per consenting customer with features.

    Out: customer_id, every key of _FRAME_COLUMNS, and share_0..share_{m-1} (share of the
    customer's spend in each of the shop's top categories; NULL for customers who never
    bought) in the order of the returned category list. NoDataError when features were
    never computed.
    """
    categories = _top_categories(cur)
    columns = ", ".join(f"{expr} AS {name}" for name, expr in _FRAME_COLUMNS.items())
    shares = "".join(
        f", CASE WHEN f.category_shares IS NULL THEN NULL ELSE coalesce(f.category_shares[?], 0) END AS share_{i}"
        for i in range(len(categories))
    )
    # Identifiers come from _FRAME_COLUMNS and a counter; category names are bound values.
    sql = (
        f"SELECT f.customer_id, {columns}{shares}"  # noqa: S608
        " FROM customer_features f JOIN analysis_customers c USING (customer_id)"
        " ORDER BY f.customer_id"
    )
    frame = cur.execute(sql, categories).df()
    if frame.empty:
        raise NoDataError(
            "no customer features yet: compute them first (python -m persona_engine features --db ...)"
        )
    return frame, categories


# ---------------------------------------------------------------- feature matrix


@dataclass
class FeatureMatrix:
    """The numbers a run clusters on, and how they were made from the customer frame.

    values: n x d float32, scaled and weighted; raw: n x d float64 before scaling (log
    values, shares, 0/1 flags, gaps filled, clipped) - centroids are kept in this space so
    that a later run can compare them after applying its own scaling.
    """

    customer_ids: np.ndarray
    values: np.ndarray
    raw: np.ndarray
    columns: list[str]
    feature_of: list[str]  # feature key of each column
    center: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    missing: np.ndarray  # n x d bool: the cell had no data and was filled
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> why it was left out

    def scaled(self, raw: np.ndarray) -> np.ndarray:
        """Apply this matrix's scaling and weights to values in the raw space."""
        return (raw - self.center) / self.scale * self.weight  # type: ignore[no-any-return]


def _numeric_columns(frame: pd.DataFrame, feature: ClusterFeature, categories: Sequence[str]
                     ) -> list[tuple[str, np.ndarray]]:
    key = feature.key
    if feature.transform == "shares":
        return [(f"share:{c}", frame[f"share_{i}"].to_numpy(dtype="float64", na_value=np.nan))
                for i, c in enumerate(categories)]
    values = frame[key].to_numpy(dtype="float64", na_value=np.nan)
    if feature.transform == "log":
        return [(key, np.log1p(np.clip(values, 0, None)))]
    if feature.transform == "hour":
        angle = 2 * np.pi * values / 24
        return [(f"{key}:sin", np.sin(angle)), (f"{key}:cos", np.cos(angle))]
    return [(key, values)]


def _onehot_columns(frame: pd.DataFrame, key: str) -> list[tuple[str, np.ndarray]]:
    values = frame[key].astype("string")
    counts = values.value_counts(dropna=True)
    if len(counts) < 2:
        return []
    top = list(counts.index[:MAX_ONEHOT_LEVELS])
    out = [(f"{key}={v}", (values == v).fillna(False).to_numpy(dtype="float64")) for v in top]
    if len(counts) > MAX_ONEHOT_LEVELS:
        rest = (values.notna() & ~values.isin(top)).to_numpy(dtype="float64")
        out.append((f"{key}=(other)", rest))
    return out


def _fill_gaps(raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill NaN cells by regression on the row's other columns (two rounds, Ridge).

    Why not the median: a customer without orders has no basket value or discount share,
    and the median would put every such customer at the same point; the other columns
    (age, income, device, browsing) say which kind of shopper they resemble.
    Predictions stay within the column's observed range.
    """
    missing = np.isnan(raw)
    if not missing.any():
        return raw
    filled = np.where(missing, np.nanmedian(raw, axis=0), raw)
    low, high = np.nanmin(raw, axis=0), np.nanmax(raw, axis=0)
    n = len(raw)
    sample = rng.choice(n, size=min(n, IMPUTE_SAMPLE), replace=False)
    gap_columns = [j for j in range(raw.shape[1]) if missing[:, j].any()]
    for _ in range(2):
        for j in gap_columns:
            others = np.array([i for i in range(raw.shape[1]) if i != j], dtype=np.int64)
            if not len(others):
                continue
            known = sample[~missing[sample, j]]
            if len(known) < 10:
                continue
            model = Ridge(alpha=1.0).fit(filled[np.ix_(known, others)], filled[known, j])
            rows = np.flatnonzero(missing[:, j])
            filled[rows, j] = np.clip(model.predict(filled[np.ix_(rows, others)]), low[j], high[j])
    return filled


def build_feature_matrix(
    frame: pd.DataFrame, features: Sequence[str], categories: Sequence[str], seed: int = 0
) -> FeatureMatrix:
    """Turn the customer frame (from `load_customer_frame`) into the matrix a run clusters.

    In: frame with customer_id and the columns of the chosen features; feature keys of
    CLUSTER_FEATURES. Numeric columns: transform, fill gaps, clip to the 1st-99th
    percentile, scale to unit variance, multiply by the feature's weight. One-hot columns:
    0/1 times weight / sqrt(2), so two customers with different values are as far apart as
    one standard deviation of a numeric feature. A feature with no data at all (no sessions
    in an imported shop, no income) or no variation is left out and reported in `dropped`.
    """
    rng = np.random.default_rng(seed)
    dropped: dict[str, str] = {}
    numeric: list[tuple[str, str, np.ndarray, float]] = []
    onehot: list[tuple[str, str, np.ndarray, float]] = []
    for key in features:
        feature = CLUSTER_FEATURES[key]
        if feature.transform == "onehot":
            cols = _onehot_columns(frame, key)
            if not cols:
                dropped[key] = "fewer than two known values"
            onehot.extend((name, key, values, feature.weight) for name, values in cols)
            continue
        cols = _numeric_columns(frame, feature, categories)
        kept = [(n, v) for n, v in cols if np.isfinite(v).any() and np.nanstd(v) > 0]
        if not kept:
            dropped[key] = "no data" if not any(np.isfinite(v).any() for _, v in cols) else "no variation"
        numeric.extend((name, key, values, feature.weight) for name, values in kept)
    if not numeric and not onehot:
        raise NoDataError(
            "none of the chosen features has data to cluster on"
            + (f" ({'; '.join(f'{k}: {v}' for k, v in dropped.items())})" if dropped else "")
        )
    n = len(frame)
    parts_raw: list[np.ndarray] = []
    parts_missing: list[np.ndarray] = []
    center: list[float] = []
    scale: list[float] = []
    weight: list[float] = []
    if numeric:
        block = np.column_stack([v for _, _, v, _ in numeric])
        parts_missing.append(np.isnan(block))
        block = _fill_gaps(block, rng)
        sample = block[rng.choice(n, size=min(n, IMPUTE_SAMPLE), replace=False)]
        low, high = np.quantile(sample, [0.01, 0.99], axis=0)
        block = np.clip(block, low, high)
        sd = block.std(axis=0)
        parts_raw.append(block)
        center.extend(block.mean(axis=0))
        scale.extend(np.where(sd > 0, sd, 1.0))
        weight.extend(w for _, _, _, w in numeric)
    if onehot:
        parts_raw.append(np.column_stack([v for _, _, v, _ in onehot]))
        parts_missing.append(np.zeros((n, len(onehot)), dtype=bool))
        center.extend(0.0 for _ in onehot)
        scale.extend(math.sqrt(2) for _ in onehot)
        weight.extend(w for _, _, _, w in onehot)
    raw = np.hstack(parts_raw)
    matrix = FeatureMatrix(
        customer_ids=frame["customer_id"].to_numpy(dtype="int64"),
        values=np.empty((0, 0), dtype="float32"),
        raw=raw,
        columns=[c for c, _, _, _ in numeric] + [c for c, _, _, _ in onehot],
        feature_of=[k for _, k, _, _ in numeric] + [k for _, k, _, _ in onehot],
        center=np.asarray(center), scale=np.asarray(scale), weight=np.asarray(weight),
        missing=np.hstack(parts_missing), dropped=dropped,
    )
    matrix.values = matrix.scaled(raw).astype("float32")
    return matrix


# ---------------------------------------------------------------- clustering maths


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def _fit_once(
    X: np.ndarray, k: int, method: str, seed: int, init: np.ndarray | None, n_init: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one model on X; (labels, centres)."""
    if method == "gmm":
        gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed,
                              n_init=1 if init is not None else 2, means_init=init, reg_covar=1e-4)
        gmm.fit(X)
        return gmm.predict(X), gmm.means_
    if method == "minibatch":
        mb = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096,
                             n_init=1 if init is not None else 3,
                             init=init if init is not None else "k-means++", max_no_improvement=20)
        mb.fit(X)
        return mb.labels_, mb.cluster_centers_
    km = KMeans(n_clusters=k, random_state=seed, n_init=1 if init is not None else n_init,
                init=init if init is not None else "k-means++")
    km.fit(X)
    return km.labels_, km.cluster_centers_


def fit_clusters(
    X: np.ndarray, missing: np.ndarray, k: int, method: str, seed: int,
    init: np.ndarray | None = None, n_init: int = 4, rounds: int = KPOD_ROUNDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster rows with gaps: (labels, centres, X with its gaps filled by the centres).

    k-POD (Chi, Chi & Baraniuk, 2016): fit, fill each missing cell with the value of the
    row's cluster centre, fit again from the same centres, until the labels stop changing.
    A customer without orders then joins the cluster its known values (age, income,
    browsing) match, instead of gathering with other non-buyers around the regression
    guesses made for them. X is not modified.
    """
    X = X.copy()
    labels, centres = _fit_once(X, k, method, seed, init, n_init)
    if not missing.any():
        return labels, centres, X
    for _ in range(rounds):
        X[missing] = centres[labels][missing]
        new_labels, centres = _fit_once(X, k, method, seed, centres, 1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    X[missing] = centres[labels][missing]
    return labels, centres, X


def assign(X: np.ndarray, missing: np.ndarray, centres: np.ndarray, chunk: int = 200_000
           ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row on its known cells only: (labels, distance).

    The distance is the root of the squared differences over the known cells, scaled up
    by (cells / known cells) so that rows with gaps are not made to look closer.
    """
    n, d = X.shape
    labels = np.empty(n, dtype=np.int64)
    distance = np.empty(n, dtype=np.float64)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        known = ~missing[rows]
        block = np.where(known, X[rows], 0.0).astype("float64")
        squared = np.stack([(((block - c) * known) ** 2).sum(axis=1) for c in centres], axis=1)
        labels[rows] = squared.argmin(axis=1)
        scale = d / np.maximum(known.sum(axis=1), 1)
        distance[rows] = np.sqrt(squared[np.arange(len(block)), labels[rows]] * scale)
    return labels, distance


def silhouette_by_k(
    X: np.ndarray, missing: np.ndarray, ks: Iterable[int], method: str, seed: int
) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """Silhouette of each candidate k on a seeded sample, and each k's centres.

    Each k is fitted on up to SAMPLE_SIZE rows (MiniBatch runs are fitted as KMeans there:
    the sample is small) and scored on SILHOUETTE_SIZE of them.
    """
    rng = np.random.default_rng(seed)
    fit_rows = _sample(len(X), SAMPLE_SIZE, rng)
    score_rows = _sample(len(fit_rows), SILHOUETTE_SIZE, rng)
    Xs, Ms = X[fit_rows], missing[fit_rows]
    scores: dict[int, float] = {}
    centres: dict[int, np.ndarray] = {}
    for k in ks:
        if k >= len(Xs):
            continue
        labels, c, filled = fit_clusters(Xs, Ms, k, "gmm" if method == "gmm" else "kmeans", seed)
        sub = labels[score_rows]
        if len(set(sub.tolist())) < 2:
            continue
        scores[k] = float(silhouette_samples(filled[score_rows], sub).mean())
        centres[k] = c
    if not scores:
        raise NoDataError("too few distinct customers to compare numbers of clusters")
    return scores, centres


def best_k(scores: Mapping[int, float]) -> int:
    """The k with the highest silhouette (the smaller k on a tie)."""
    return min(scores, key=lambda k: (-round(scores[k], 6), k))


def stability_score(
    X: np.ndarray, missing: np.ndarray, labels: np.ndarray, k: int, method: str, seed: int,
    eval_rows: np.ndarray, reruns: int = STABILITY_RERUNS,
) -> tuple[float, list[float]]:
    """Agreement of the run with re-runs on bootstrap samples and other seeds.

    Each re-run draws a bootstrap sample (with replacement) of up to SAMPLE_SIZE customers,
    fits the same method with seed + r, and assigns the evaluation customers to its
    nearest centres; the score is the mean adjusted Rand index between those assignments
    and the run's (1 = identical partitions, 0 = chance).
    """
    values = []
    for r in range(1, reruns + 1):
        rng = np.random.default_rng(seed + 1000 * r)
        boot = rng.choice(len(X), size=min(len(X), SAMPLE_SIZE), replace=True)
        _, centres, _ = fit_clusters(X[boot], missing[boot], k, "gmm" if method == "gmm" else "kmeans", seed + r)
        predicted, _ = assign(X[eval_rows], missing[eval_rows], centres)
        values.append(float(adjusted_rand_score(labels[eval_rows], predicted)))
    return float(np.mean(values)), values


def _relabel_by_size(labels: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number clusters 0..k-1 from the largest to the smallest (ties: first centre first)."""
    k = len(centres)
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))
    mapping = np.empty(k, dtype=int)
    mapping[order] = np.arange(k)
    return mapping[labels], centres[order]


# ---------------------------------------------------------------- profiles


@dataclass
class ClusterProfile:
    """Sums and counts behind one cluster's description (mergeable: add two profiles).

    numeric: feature -> (sum, count of known values); categorical: feature -> value ->
    customers; category_spend: category -> sum of spend shares over buyers, with the
    number of buyers under "_buyers".
    """

    customers: int
    revenue: float
    orders: int
    numeric: dict[str, tuple[float, int]]
    categorical: dict[str, dict[str, int]]
    category_spend: dict[str, float]

    def mean(self, feature: str) -> float | None:
        total, count = self.numeric.get(feature, (0.0, 0))
        return total / count if count else None

    def shares(self, feature: str) -> dict[str, float]:
        """Share of the cluster's customers with each known value of a categorical feature."""
        counts = self.categorical.get(feature, {})
        known = sum(counts.values())
        return {v: c / known for v, c in counts.items()} if known else {}

    def spend_share(self, category: str) -> float | None:
        buyers = self.category_spend.get("_buyers", 0)
        return self.category_spend.get(category, 0.0) / buyers if buyers else None

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers, "revenue": self.revenue, "orders": self.orders,
            "numeric": {k: list(v) for k, v in self.numeric.items()},
            "categorical": self.categorical, "category_spend": self.category_spend,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterProfile:
        return cls(
            customers=int(data["customers"]), revenue=float(data["revenue"]), orders=int(data["orders"]),
            numeric={k: (float(v[0]), int(v[1])) for k, v in data["numeric"].items()},
            categorical={k: {str(a): int(b) for a, b in v.items()} for k, v in data["categorical"].items()},
            category_spend={k: float(v) for k, v in data["category_spend"].items()},
        )


def merge_profiles(profiles: Sequence[ClusterProfile]) -> ClusterProfile:
    """One profile for several clusters taken together (a persona made of merged clusters)."""
    if not profiles:
        raise ValidationError("merge needs at least one cluster")
    numeric: dict[str, tuple[float, int]] = {}
    categorical: dict[str, dict[str, int]] = {}
    spend: dict[str, float] = {}
    for p in profiles:
        for k, (s, c) in p.numeric.items():
            s0, c0 = numeric.get(k, (0.0, 0))
            numeric[k] = (s0 + s, c0 + c)
        for k, counts in p.categorical.items():
            target = categorical.setdefault(k, {})
            for level, c in counts.items():
                target[level] = target.get(level, 0) + c
        for k, amount in p.category_spend.items():
            spend[k] = spend.get(k, 0.0) + amount
    return ClusterProfile(
        customers=sum(p.customers for p in profiles), revenue=sum(p.revenue for p in profiles),
        orders=sum(p.orders for p in profiles), numeric=numeric, categorical=categorical,
        category_spend=spend,
    )


def _levels(series: pd.Series) -> pd.Series:
    """A categorical column as text ("21" for the hour 21, not "21.0"); missing stays NA."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("Float64").round().astype("Int64").astype("string")
    return series.astype("string")


def profiles_by_cluster(
    frame: pd.DataFrame, labels: np.ndarray, k: int, categories: Sequence[str]
) -> dict[int, ClusterProfile]:
    """Sums and counts of each cluster's customers (rows of `load_customer_frame`).

    Vectorised group-bys, so that a million customers take seconds.
    """
    groups = pd.Series(labels, index=frame.index, name="cluster")
    numeric = frame[list(PROFILE_NUMERIC)].astype("float64")
    sums = numeric.groupby(groups).sum(min_count=0)
    counts = numeric.notna().groupby(groups).sum()
    sizes = groups.value_counts()
    revenue = frame["monetary"].astype("float64").groupby(groups).sum()
    orders = frame["frequency"].astype("float64").groupby(groups).sum()
    level_counts = {}
    for key in PROFILE_CATEGORICAL:
        levels = _levels(frame[key])
        level_counts[key] = levels.groupby(groups).value_counts(dropna=True)
    if categories:
        share_columns = [f"share_{i}" for i in range(len(categories))]
        shares = frame[share_columns].astype("float64")
        share_sums = shares.groupby(groups).sum()
        buyers = shares["share_0"].notna().groupby(groups).sum()
    out = {}
    for c in range(k):
        if c not in sizes.index:
            out[c] = ClusterProfile(0, 0.0, 0, {f: (0.0, 0) for f in PROFILE_NUMERIC},
                                    {f: {} for f in PROFILE_CATEGORICAL}, {"_buyers": 0.0})
            continue
        categorical = {}
        for key, table in level_counts.items():
            values = table.loc[c] if c in table.index.get_level_values(0) else pd.Series(dtype="int64")
            categorical[key] = {str(v): int(n) for v, n in values.head(MAX_PROFILE_LEVELS).items()}
        spend: dict[str, float] = {}
        if categories:
            spend = {cat: float(share_sums.at[c, f"share_{i}"]) for i, cat in enumerate(categories)}
            spend["_buyers"] = float(buyers.get(c, 0))
        else:
            spend["_buyers"] = 0.0
        out[c] = ClusterProfile(
            customers=int(sizes[c]), revenue=float(revenue[c]), orders=int(orders[c]),
            numeric={f: (float(sums.at[c, f]), int(counts.at[c, f])) for f in PROFILE_NUMERIC},
            categorical=categorical, category_spend=spend,
        )
    return out


def profile_of(frame: pd.DataFrame, categories: Sequence[str]) -> ClusterProfile:
    """Sums and counts of one group of customers (rows of `load_customer_frame`)."""
    return profiles_by_cluster(frame, np.zeros(len(frame), dtype=int), 1, categories)[0]


@dataclass(frozen=True)
class BaseStats:
    """The whole clustered base: its profile and each numeric feature's standard deviation."""

    profile: ClusterProfile
    sd: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile.to_json(), "sd": self.sd}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaseStats:
        return cls(ClusterProfile.from_json(data["profile"]), {k: float(v) for k, v in data["sd"].items()})


def _spread(values: np.ndarray) -> float:
    """Standard deviation of the known values; 0 when they do not vary (beyond rounding),
    so that no z-score divides a rounding error by a rounding error."""
    known = values[np.isfinite(values)]
    if not len(known):
        return 0.0
    sd = float(known.std())
    return sd if sd > 1e-9 * max(1.0, float(np.abs(known).max())) else 0.0


def base_stats(frame: pd.DataFrame, categories: Sequence[str]) -> BaseStats:
    """The base's profile, and the (population) standard deviation of each numeric feature
    and of each category's spend share ("category:<name>", over buyers)."""
    sd = {}
    for key in PROFILE_NUMERIC:
        values = frame[key].to_numpy(dtype="float64", na_value=np.nan)
        sd[key] = _spread(values)
    for i, category in enumerate(categories):
        sd[f"category:{category}"] = _spread(frame[f"share_{i}"].to_numpy(dtype="float64", na_value=np.nan))
    return BaseStats(profile_of(frame, categories), sd)


def feature_table(profile: ClusterProfile, base: BaseStats) -> pd.DataFrame:
    """Every numeric feature of a cluster against the base.

    Out: feature, mean (cluster), base_mean, index (100 x mean / base_mean; None when the
    base mean is 0), z (difference in base standard deviations), known (customers with a
    value).
    """
    rows = []
    for key in PROFILE_NUMERIC:
        mean, base_mean = profile.mean(key), base.profile.mean(key)
        sd = base.sd.get(key, 0.0)
        index = 100 * mean / base_mean if mean is not None and base_mean else None
        z = (mean - base_mean) / sd if mean is not None and base_mean is not None and sd > 0 else None
        rows.append({"feature": key, "mean": mean, "base_mean": base_mean, "index": index, "z": z,
                     "known": profile.numeric.get(key, (0.0, 0))[1]})
    return pd.DataFrame(rows)


def skews(profile: ClusterProfile, base: BaseStats, feature: str, top: int = 5, by: str = "skew") -> pd.DataFrame:
    """The values of a categorical feature in the cluster against the base.

    Out: value, share (of the cluster's customers with a known value), base_share, lift
    (share / base_share). by="skew" sorts by share x lift (common and over-represented
    first); by="share" by share (most common first).
    """
    shares, base_shares = profile.shares(feature), base.profile.shares(feature)
    rows = [{"value": v, "share": s, "base_share": base_shares.get(v, 0.0),
             "lift": s / base_shares[v] if base_shares.get(v) else None} for v, s in shares.items()]
    frame = pd.DataFrame(rows, columns=["value", "share", "base_share", "lift"])
    if frame.empty:
        return frame
    frame["rank"] = frame["share"] * (frame["lift"].fillna(1.0) if by == "skew" else 1.0)
    return frame.sort_values(["rank", "value"], ascending=[False, True]).drop(columns="rank").head(top).reset_index(drop=True)


# Features a trait can be stated about in plain words, and the smallest effect worth saying.
TRAIT_FEATURES: tuple[str, ...] = (
    "average_order_value", "discount_share", "mobile_share", "frequency", "sessions_total",
    "pages_per_session", "cart_abandonment_rate", "return_rate", "recency_days", "age", "income",
    "monetary", "tenure_days",
)
MIN_TRAIT_Z = 0.3


@dataclass(frozen=True)
class Trait:
    """A way a cluster differs from the base: `ratio` = cluster mean / base mean."""

    feature: str  # a PROFILE_NUMERIC key, or "category:<name>" for a spend share
    direction: Literal["higher", "lower"]
    z: float
    ratio: float | None
    value: float
    base: float


def distinguishing_traits(profile: ClusterProfile, base: BaseStats, top: int = 5) -> list[Trait]:
    """The cluster's strongest differences from the base, strongest first.

    Numeric features by |z| (difference in base standard deviations); spend shares of
    categories join with their own z over the base's buyers. Only |z| >= MIN_TRAIT_Z counts.
    """
    traits = []
    table = feature_table(profile, base).set_index("feature")
    for key in TRAIT_FEATURES:
        z = table.at[key, "z"]
        if z is None or pd.isna(z) or abs(z) < MIN_TRAIT_Z:
            continue
        mean, base_mean = float(table.at[key, "mean"]), float(table.at[key, "base_mean"])
        traits.append(Trait(key, "higher" if z > 0 else "lower", float(z),
                            mean / base_mean if base_mean else None, mean, base_mean))
    for category in base.profile.category_spend:
        if category == "_buyers":
            continue
        share, base_share = profile.spend_share(category), base.profile.spend_share(category)
        spread = base.sd.get(f"category:{category}", 0.0)
        if share is None or base_share is None or spread <= 0:
            continue
        z = (share - base_share) / spread
        if z >= MIN_TRAIT_Z:  # "buys less of X" says little about a persona
            traits.append(Trait(f"category:{category}", "higher", z,
                                share / base_share if base_share else None, share, base_share))
    return sorted(traits, key=lambda t: (-abs(t.z), t.feature))[:top]


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class ClusterSummary:
    cluster: int
    size: int
    share: float
    revenue_share: float | None
    silhouette: float | None


@dataclass(frozen=True)
class ClusteringRun:
    """A stored run: parameters, quality, clusters and their profiles."""

    run_id: int
    created_at: Any
    method: str
    k: int
    feature_set: str
    features: list[str]
    seed: int | None
    n_customers: int
    silhouette: float | None
    stability: float | None
    k_scores: dict[int, float]
    clusters: list[ClusterSummary]
    profiles: dict[int, ClusterProfile]
    base: BaseStats
    params: dict[str, Any]
    centroids: dict[str, Any]

    def traits(self, cluster: int, top: int = 5) -> list[Trait]:
        return distinguishing_traits(self.profiles[cluster], self.base, top)

    def to_json(self) -> dict[str, Any]:
        """The `--json` shape documented in the README."""
        return {
            "run_id": self.run_id, "k": self.k, "silhouette": self.silhouette, "stability": self.stability,
            "clusters": [{"cluster": c.cluster, "size": c.size, "share": c.share} for c in self.clusters],
        }


def _resolve_method(method: str, n: int) -> str:
    if method not in METHODS:
        raise ValidationError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        return "minibatch" if n > MINIBATCH_ABOVE else "kmeans"
    return method


def parse_k(k: int | str) -> int | None:
    """None for "auto", else the number of clusters (2 to 20); ValidationError otherwise."""
    if isinstance(k, str):
        if k.strip().lower() == "auto":
            return None
        try:
            k = int(k)
        except ValueError:
            raise ValidationError(f"k must be 'auto' or a whole number from 2 to 20; got {k!r}") from None
    if not 2 <= k <= 20:
        raise ValidationError(f"k must be 'auto' or a whole number from 2 to 20; got {k}")
    return k


def cluster_customers(
    cur: duckdb.DuckDBPyConnection,
    *,
    k: int | str = "auto",
    seed: int = 0,
    features: str | Sequence[str] | None = "both",
    method: str = "auto",
    user: str | None = None,
    progress: ProgressCallback | None = None,
) -> ClusteringRun:
    """Cluster the consenting customers and store the run; returns it (see `load_run`).

    k: "auto" picks k in K_RANGE by silhouette on a seeded sample; a number fixes it.
    features: a set name (FEATURE_SETS), a comma-separated string or a list of keys.
    method: auto (KMeans, MiniBatchKMeans above MINIBATCH_ABOVE customers), kmeans,
    minibatch or gmm (Gaussian mixture with full covariances, fitted on a sample).
    """
    total, done = len(STEPS), 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, STEPS[done - 1])

    feature_set, keys = resolve_features(features)
    fixed_k = parse_k(k)
    frame, categories = load_customer_frame(cur)
    with threadpool_limits(limits=MATHS_THREADS):
        return _cluster(cur, frame, categories, feature_set, keys, fixed_k, seed, method, user, step)


def _cluster(
    cur: duckdb.DuckDBPyConnection, frame: pd.DataFrame, categories: list[str], feature_set: str,
    keys: list[str], fixed_k: int | None, seed: int, method: str, user: str | None, step: Callable[[], None],
) -> ClusteringRun:
    n = len(frame)
    if n < MIN_CUSTOMERS:
        raise NoDataError(f"only {n} consenting customers with features: clustering needs at least {MIN_CUSTOMERS}")
    effective = _resolve_method(method, n)
    step()
    matrix = build_feature_matrix(frame, keys, categories, seed)
    X = matrix.values
    step()

    if fixed_k is None:
        k_scores, k_centres = silhouette_by_k(X, matrix.missing, [c for c in K_RANGE if c < n], effective, seed)
        chosen = best_k(k_scores)
        init = k_centres[chosen]
    else:
        if fixed_k >= n:
            raise ValidationError(f"k = {fixed_k} needs more than {fixed_k} customers; the shop has {n}")
        k_scores, chosen = {}, fixed_k
        init = None
    step()

    rng = np.random.default_rng(seed)
    if effective == "gmm" or init is None or effective == "kmeans":
        # The best of several starts on a sample, then the whole base from there: a bad
        # start costs little on the sample and the full fit converges in a few steps.
        rows = _sample(n, SAMPLE_SIZE, rng)
        sample_method = "gmm" if effective == "gmm" else "kmeans"
        _, init, _ = fit_clusters(X[rows], matrix.missing[rows], chosen, sample_method, seed, init=None,
                                  n_init=10)
    if effective == "gmm":
        # A full-covariance mixture on a million rows is slow and no better than on a
        # large sample: fit on the sample, assign everyone to the nearest mean.
        rows = _sample(n, SAMPLE_SIZE * 2, rng)
        _, centres, _ = fit_clusters(X[rows], matrix.missing[rows], chosen, "gmm", seed, init=init)
        labels, _ = assign(X, matrix.missing, centres)
        filled = X.copy()
        filled[matrix.missing] = centres[labels][matrix.missing]
    else:
        labels, centres, filled = fit_clusters(X, matrix.missing, chosen, effective, seed, init=init)
    labels, centres = _relabel_by_size(np.asarray(labels), np.asarray(centres))
    found = len(np.unique(labels))
    _, distance = assign(X, matrix.missing, centres)
    step()

    score_rows = _sample(n, SILHOUETTE_SIZE * 2, np.random.default_rng(seed + 1))
    customer_silhouette = np.full(n, np.nan)
    if found > 1:
        customer_silhouette[score_rows] = silhouette_samples(filled[score_rows], labels[score_rows])
    overall = float(np.nanmean(customer_silhouette)) if found > 1 else None
    step()

    stability, reruns = stability_score(X, matrix.missing, labels, chosen, effective, seed, score_rows)
    step()

    base = base_stats(frame, categories)
    profiles = profiles_by_cluster(frame, labels, chosen, categories)
    projection_rows = score_rows[:PROJECTION_SIZE]
    pca = PCA(n_components=2, random_state=seed).fit(filled[score_rows])
    coords = pca.transform(filled[projection_rows])
    step()

    unscaled = centres / matrix.weight * matrix.scale + matrix.center
    params = {
        "k_requested": "auto" if fixed_k is None else fixed_k,
        "method_requested": method,
        "feature_weights": {key: CLUSTER_FEATURES[key].weight for key in keys},
        "dropped_features": matrix.dropped,
        "categories": list(categories),
        "silhouette_sample": int(len(score_rows)),
        "stability_reruns": reruns,
        "projection_variance": [float(v) for v in pca.explained_variance_ratio_],
        "base": base.to_json(),
    }
    centroids = {
        "columns": matrix.columns,
        "feature_of": matrix.feature_of,
        "raw": unscaled.tolist(),
        "scaled": centres.tolist(),
        "center": matrix.center.tolist(),
        "scale": matrix.scale.tolist(),
        "weight": matrix.weight.tolist(),
    }
    sizes = np.bincount(labels, minlength=chosen)
    total_revenue = base.profile.revenue
    with transaction(cur):
        run_id = int(cur.execute(
            "INSERT INTO clustering_runs (method, k, feature_set, features, params, seed, n_customers,"
            " silhouette, stability, k_scores, centroids, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
            [effective, chosen, feature_set, keys, json.dumps(params, default=_json_default), seed, n,
             overall, stability, json.dumps({str(a): b for a, b in k_scores.items()}), json.dumps(centroids), user],
        ).fetchall()[0][0])
        assignments = pd.DataFrame({
            "customer_id": matrix.customer_ids, "cluster": labels.astype("int32"),
            "silhouette": customer_silhouette, "distance": distance.astype("float64"),
        })
        cur.register("new_assignments", assignments)
        cur.execute(
            "INSERT INTO cluster_assignments (run_id, customer_id, cluster, silhouette, distance)"
            " SELECT ?, customer_id, cluster, silhouette, distance FROM new_assignments",
            [run_id],
        )
        cur.unregister("new_assignments")
        projection = pd.DataFrame({
            "customer_id": matrix.customer_ids[projection_rows], "cluster": labels[projection_rows].astype("int32"),
            "x": coords[:, 0], "y": coords[:, 1],
        })
        cur.register("new_projection", projection)
        cur.execute("INSERT INTO cluster_projection SELECT ?, customer_id, cluster, x, y FROM new_projection", [run_id])
        cur.unregister("new_projection")
        for c in range(chosen):
            members = customer_silhouette[(labels == c) & np.isfinite(customer_silhouette)]
            cur.execute(
                "INSERT INTO cluster_profiles (run_id, cluster, size, share, revenue_share, silhouette, profile)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, c, int(sizes[c]), float(sizes[c] / n),
                 profiles[c].revenue / total_revenue if total_revenue else None,
                 float(members.mean()) if len(members) else None, json.dumps(profiles[c].to_json())],
            )
    step()
    return load_run(cur, run_id)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def load_run(cur: duckdb.DuckDBPyConnection, run_id: int) -> ClusteringRun:
    """A stored run with its clusters and profiles; NotFoundError if there is none."""
    rows = cur.execute(
        "SELECT run_id, created_at, method, k, feature_set, features, seed, n_customers, silhouette,"
        " stability, k_scores, params, centroids FROM clustering_runs WHERE run_id = ?",
        [run_id],
    ).fetchall()
    if not rows:
        raise NotFoundError(f"clustering run {run_id} does not exist")
    (rid, created_at, method, k, feature_set, features, seed, n, sil, stab, k_scores, params, centroids) = rows[0]
    profile_rows = cur.execute(
        "SELECT cluster, size, share, revenue_share, silhouette, profile FROM cluster_profiles"
        " WHERE run_id = ? ORDER BY cluster",
        [run_id],
    ).fetchall()
    params = _loads(params) or {}
    return ClusteringRun(
        run_id=rid, created_at=created_at, method=method, k=k, feature_set=feature_set,
        features=list(features or []), seed=seed, n_customers=n, silhouette=sil, stability=stab,
        k_scores={int(a): float(b) for a, b in (_loads(k_scores) or {}).items()},
        clusters=[ClusterSummary(r[0], r[1], r[2], r[3], r[4]) for r in profile_rows],
        profiles={r[0]: ClusterProfile.from_json(_loads(r[5])) for r in profile_rows},
        base=BaseStats.from_json(params["base"]), params=params, centroids=_loads(centroids) or {},
    )


def latest_run_id(cur: duckdb.DuckDBPyConnection) -> int | None:
    value = fetch_value(cur, "SELECT max(run_id) FROM clustering_runs")
    return None if value is None else int(value)


def list_runs(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Runs, newest first: run_id, created_at, method, k, feature_set, n_customers,
    silhouette, stability, seed, created_by."""
    return fetch_df(
        cur,
        "SELECT run_id, created_at, method, k, feature_set, n_customers, silhouette, stability, seed, created_by"
        " FROM clustering_runs ORDER BY run_id DESC",
    )


def run_projection(cur: duckdb.DuckDBPyConnection, run_id: int) -> pd.DataFrame:
    """The run's 2-D sample: customer_id, cluster, x, y (first two principal components)."""
    return fetch_df(cur, "SELECT customer_id, cluster, x, y FROM cluster_projection WHERE run_id = ?"
                         " ORDER BY customer_id", [run_id])


def run_assignments(cur: duckdb.DuckDBPyConnection, run_id: int) -> pd.DataFrame:
    """customer_id, cluster of a run (consenting customers only: consent can be withdrawn
    after a run)."""
    return fetch_df(
        cur,
        "SELECT a.customer_id, a.cluster FROM cluster_assignments a"
        " WHERE a.run_id = ? AND a.customer_id IN (SELECT customer_id FROM analysis_customers)"
        " ORDER BY a.customer_id",
        [run_id],
    )
