"""Widgets, tables and charts of the Clusters page (and trait wording shared with Personas)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from persona_engine.clustering import (
    CLUSTER_FEATURES,
    FEATURE_SETS,
    METHODS,
    ClusteringRun,
    Trait,
    cluster_customers,
    feature_table,
    skews,
)
from persona_engine.drafting import Reevaluation
from ui import charts, data, fmt
from ui.i18n import catalogue, current_language, label, t

RUN_KEY = "cluster_run"  # also the URL parameter (?cluster_run=3)
_PERCENT = {"discount_share", "mobile_share", "cart_abandonment_rate", "return_rate", "newsletter_opt_in"}
_MONEY = {"average_order_value", "monetary", "income"}
_SKEW_FEATURES = ("gender", "marital_status", "occupation", "education", "main_source", "main_device",
                  "favourite_category", "region")
_CODE_GROUPS = {"gender": "gender", "marital_status": "marital_status", "main_source": "source",
                "main_device": "device"}


def feature_label(key: str) -> str:
    for table in ("feature_name", "clustering.feature_names"):
        if f"{table}.{key}" in catalogue(current_language()) or f"{table}.{key}" in catalogue("en"):
            return t(f"{table}.{key}")
    return key


def format_feature(feature: str, value: float | None, currency: str | None) -> str:
    if value is None or pd.isna(value):
        return "–"
    if feature in _PERCENT or feature.startswith("category:"):
        return fmt.percent(value, 0)
    if feature in _MONEY:
        return fmt.money(value, currency)
    return fmt.number(value, 1 if feature in ("frequency", "pages_per_session") else 0)


def trait_text(trait: Trait, currency: str | None) -> str:
    """A trait in plain words: "browses on a phone 1.5× more than average (86% of visits vs 57%)"."""
    ratio = trait.ratio or 0.0
    if trait.direction == "lower" and ratio:
        ratio = 1 / ratio
    values = {"ratio": fmt.number(ratio, 1), "value": format_feature(trait.feature, trait.value, currency),
              "base": format_feature(trait.feature, trait.base, currency)}
    if trait.feature.startswith("category:"):
        return t("clustering.trait.category", category=trait.feature.split(":", 1)[1], **values)
    return t(f"clustering.trait.{trait.feature}_{trait.direction}", **values)


def cluster_name(cluster: int) -> str:
    return t("clustering.cluster_name", n=cluster)


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class RunParams:
    k: int | str
    seed: int
    features: str | list[str]
    method: str


def run_controls() -> RunParams | None:
    """The settings of a new run; None when a custom feature list is empty."""
    left, middle, right = st.columns(3)
    with left:
        # Labels are computed now, not in format_func: a format_func called later (by a test
        # harness, outside the run) would not see the session's language.
        modes = {m: t(f"clustering.k_{m}") for m in ("auto", "fixed")}
        mode = st.radio(t("clustering.k_mode"), list(modes), key="cluster_k_mode", horizontal=True,
                        format_func=modes.get, help=t("clustering.k_auto_help"))
        k = st.number_input(t("clustering.k"), min_value=2, max_value=20, value=5, step=1, key="cluster_k",
                            disabled=mode == "auto")
    with middle:
        sets = {s: t(f"clustering.feature_sets.{s}") for s in (*FEATURE_SETS, "custom")}
        feature_set = st.selectbox(t("clustering.feature_set"), list(sets), key="cluster_feature_set",
                                   format_func=sets.get, help=t("clustering.feature_set_help"))
        chosen: str | list[str] = feature_set
        if feature_set == "custom":
            names = {k: feature_label(k) for k in CLUSTER_FEATURES}
            chosen = st.multiselect(t("clustering.features"), list(names), key="cluster_features",
                                    default=[k for k, f in CLUSTER_FEATURES.items() if f.default],
                                    format_func=names.get)
    with right:
        methods = {m: t(f"clustering.methods.{m}") for m in METHODS}
        method = st.selectbox(t("clustering.method"), list(methods), key="cluster_method",
                              format_func=methods.get, help=t("clustering.method_help"))
        seed = st.number_input(t("clustering.seed"), min_value=0, max_value=1_000_000, value=0, step=1,
                               key="cluster_seed", help=t("clustering.seed_help"))
    if feature_set == "custom" and not chosen:
        st.info(t("clustering.pick_features"))
        return None
    return RunParams("auto" if mode == "auto" else int(k), int(seed), chosen, method)


def start_run(params: RunParams, user: str | None) -> ClusteringRun:
    """Cluster now, with a progress bar; the new run becomes the page's selected run."""
    bar = st.progress(0.0, text=t("clustering.running"))

    def progress(done: int, total: int, step: str) -> None:
        bar.progress(done / total, text=t("clustering.step", step=step, done=done, total=total))

    run = cluster_customers(data.cursor(), k=params.k, seed=params.seed, features=params.features,
                            method=params.method, user=user, progress=progress)
    bar.empty()
    st.session_state[RUN_KEY] = run.run_id
    return run


# ---------------------------------------------------------------- run overview


def pick_run(runs: pd.DataFrame) -> int:
    labels = {
        int(r.run_id): t("clustering.run_label", run=r.run_id, k=r.k, customers=fmt.number(r.n_customers),
                         date=pd.Timestamp(r.created_at).strftime("%Y-%m-%d %H:%M"))
        for r in runs.itertuples()
    }
    if st.session_state.get(RUN_KEY) not in labels:
        st.session_state[RUN_KEY] = next(iter(labels))
    return int(st.selectbox(t("clustering.run_picker"), list(labels), key=RUN_KEY, format_func=labels.get,
                            bind="query-params"))


def run_summary(run: ClusteringRun) -> None:
    tiles = [
        (t("clustering.customers"), fmt.number(run.n_customers), None),
        (t("clustering.clusters"), fmt.number(run.k), None),
        (t("clustering.silhouette"), fmt.number(run.silhouette, 2), t("clustering.silhouette_help")),
        (t("clustering.stability"), fmt.number(run.stability, 2), t("clustering.stability_help")),
    ]
    for column, (title, value, help_text) in zip(st.columns(4), tiles, strict=True):
        column.metric(title, value, help=help_text, border=True)
    features = ", ".join(feature_label(f) for f in run.features)
    st.caption(t("clustering.settings", method=t(f"clustering.methods.{run.method}"), features=features,
                 seed=run.seed))
    dropped = run.params.get("dropped_features") or {}
    if dropped:
        st.caption(t("clustering.dropped", features=", ".join(feature_label(f) for f in dropped)))


def silhouette_curve(run: ClusteringRun) -> go.Figure:
    ks = sorted(run.k_scores)
    fig = go.Figure(go.Scatter(x=ks, y=[run.k_scores[k] for k in ks], mode="lines+markers",
                               line={"color": charts.PALETTE[0], "width": 2}, name=t("clustering.silhouette")))
    fig.add_trace(go.Scatter(x=[run.k], y=[run.k_scores.get(run.k)], mode="markers", showlegend=False,
                             marker={"size": 14, "color": charts.PALETTE[1]}))
    fig.update_xaxes(title_text=t("clustering.curve_x"), dtick=1)
    fig.update_yaxes(title_text=t("clustering.curve_y"))
    return charts.style(fig, height=300)


def clusters_table(run: ClusteringRun, currency: str | None) -> pd.DataFrame:
    rows = []
    for c in run.clusters:
        traits = run.traits(c.cluster, 2)
        rows.append({
            t("clustering.col_cluster"): cluster_name(c.cluster),
            t("clustering.col_customers"): c.size,
            t("clustering.col_share"): c.share * 100,
            t("clustering.col_revenue"): (c.revenue_share or 0.0) * 100,
            t("clustering.col_silhouette"): c.silhouette,
            t("clustering.col_traits"): "; ".join(trait_text(tr, currency) for tr in traits),
        })
    return pd.DataFrame(rows)


def show_clusters_table(run: ClusteringRun, currency: str | None) -> None:
    frame = clusters_table(run, currency)
    st.dataframe(frame, hide_index=True, key="cluster_table", column_config={
        t("clustering.col_share"): st.column_config.NumberColumn(format="%.1f%%"),
        t("clustering.col_revenue"): st.column_config.NumberColumn(format="%.1f%%"),
        t("clustering.col_silhouette"): st.column_config.NumberColumn(format="%.2f"),
    })


# ---------------------------------------------------------------- one cluster


def cluster_profile(run: ClusteringRun, currency: str | None) -> None:
    names = {c.cluster: cluster_name(c.cluster) for c in run.clusters}
    cluster = st.selectbox(t("clustering.cluster_picker"), list(names), key="cluster_pick", format_func=names.get)
    summary = next(c for c in run.clusters if c.cluster == cluster)
    profile = run.profiles[cluster]
    st.caption(t("clustering.profile_caption", customers=fmt.number(summary.size), share=fmt.percent(summary.share),
                 revenue=fmt.percent(summary.revenue_share)))
    st.markdown(f"**{t('clustering.traits_title')}**")
    traits = run.traits(cluster, 5)
    if not traits:
        st.caption(t("clustering.no_traits"))
    for trait in traits:
        st.markdown(f"- {trait_text(trait, currency)}")
    st.markdown(f"**{t('clustering.features_title')}**")
    table = feature_table(profile, run.base)
    table = table[table["known"] > 0]
    st.dataframe(pd.DataFrame({
        t("clustering.col_feature"): [feature_label(f) for f in table["feature"]],
        t("clustering.col_mean"): [format_feature(f, v, currency) for f, v in zip(table["feature"], table["mean"],
                                                                                    strict=True)],
        t("clustering.col_base"): [format_feature(f, v, currency) for f, v in zip(table["feature"],
                                                                                    table["base_mean"], strict=True)],
        t("clustering.col_index"): table["index"].round(0),
        t("clustering.col_z"): table["z"].round(2),
    }), hide_index=True, key="cluster_features_table")
    st.markdown(f"**{t('clustering.skews_title')}**")
    columns = st.columns(2)
    for i, feature in enumerate(_SKEW_FEATURES):
        frame = skews(profile, run.base, feature, top=4)
        if frame.empty:
            continue
        group = _CODE_GROUPS.get(feature)
        with columns[i % 2]:
            st.caption(feature_label(feature))
            st.dataframe(pd.DataFrame({
                t("clustering.col_value"): [label(group, v) if group else v for v in frame["value"]],
                t("clustering.col_value_share"): [fmt.percent(v) for v in frame["share"]],
                t("clustering.col_base_share"): [fmt.percent(v) for v in frame["base_share"]],
                t("clustering.col_lift"): [fmt.number(v, 1) if v is not None else "–" for v in frame["lift"]],
            }), hide_index=True, key=f"cluster_skew_{feature}")
    st.caption(t("clustering.customers_behind", n=fmt.number(summary.size)))


def projection_chart(points: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for cluster, group in points.groupby("cluster", sort=True):
        fig.add_trace(go.Scattergl(x=group["x"], y=group["y"], mode="markers", name=cluster_name(int(cluster)),
                                   marker={"size": 5, "opacity": 0.6,
                                           "color": charts.PALETTE[int(cluster) % len(charts.PALETTE)]}))
    fig.update_xaxes(title_text=t("clustering.map_x"), zeroline=False)
    fig.update_yaxes(title_text=t("clustering.map_y"), zeroline=False)
    return charts.style(fig, height=480)


# ---------------------------------------------------------------- re-evaluation


def reevaluation_table(reev: Reevaluation) -> pd.DataFrame:
    rows = []
    for m in reev.matches:
        validated = t("clustering.never") if m.last_validated_at is None else m.last_validated_at.strftime("%Y-%m-%d")
        rows.append({
            t("clustering.col_persona"): m.name,
            t("clustering.col_matched"): cluster_name(m.cluster) if m.cluster is not None else "–",
            t("clustering.col_distance"): m.distance,
            t("clustering.col_before"): m.members_before,
            t("clustering.col_after"): m.size_after,
            t("clustering.col_stayed"): m.stayed,
            t("clustering.col_validated"): validated + (f" ⚠ {t('clustering.stale')}" if m.stale else ""),
        })
    return pd.DataFrame(rows)


def drift_table(reev: Reevaluation, currency: str | None) -> pd.DataFrame:
    rows = []
    for m in reev.matches:
        for feature, (then, now) in m.drift.items():
            if then is None and now is None:
                continue
            rows.append({t("clustering.col_persona"): m.name, t("clustering.col_drift_feature"): feature_label(feature),
                         t("clustering.col_then"): format_feature(feature, then, currency),
                         t("clustering.col_now"): format_feature(feature, now, currency)})
    return pd.DataFrame(rows)


def flows_chart(reev: Reevaluation) -> go.Figure:
    """Sankey: personas (left) -> clusters of this run (right), width = customers."""
    flows = reev.flows
    personas = list(dict.fromkeys(flows["name"]))
    clusters = sorted(int(c) for c in flows["cluster"].unique())
    nodes = personas + [cluster_name(c) for c in clusters]
    colours = [charts.PALETTE[i % len(charts.PALETTE)] for i in range(len(personas))]
    colours += [charts.PALETTE[c % len(charts.PALETTE)] for c in clusters]
    sources = [personas.index(n) for n in flows["name"]]

    def translucent(colour: str) -> str:
        red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgba({red},{green},{blue},0.35)"

    fig = go.Figure(go.Sankey(
        node={"label": nodes, "pad": 18, "thickness": 16, "color": colours},
        link={"source": sources, "target": [len(personas) + clusters.index(int(c)) for c in flows["cluster"]],
              "value": flows["customers"].tolist(), "color": [translucent(colours[s]) for s in sources]},
        textfont={"color": "#1f2937", "size": 13, "shadow": "none"},
    ))
    return charts.style(fig, height=max(300, 60 * len(nodes)))
