"""Clusters: run a clustering, read its quality, each cluster's profile, the map of customers,
and how the existing personas fare in it."""

import streamlit as st

from ui import charts, clustering_data, fmt
from ui import clustering_view as view
from ui.editor_identity import current_identity
from ui.i18n import t
from ui.sample import shop_page
from ui.shell import guard

version, shop = shop_page("clustering")
if not clustering_data.has_features(version):
    st.info(t("clustering.no_features"))
    st.stop()

latest = clustering_data.latest_run_id()
with st.expander(t("clustering.new_run"), expanded=latest is None):
    params = view.run_controls()
    if st.button(t("clustering.run"), type="primary", key="cluster_start", disabled=params is None):
        who = current_identity()
        with guard():
            new = view.start_run(params, who.user_name if who else None)
            st.success(t("clustering.done", run=new.run_id, k=new.k))
            latest = new.run_id

runs = clustering_data.runs(version, latest)
if runs.empty:
    st.info(t("clustering.no_runs"))
    st.stop()
run_id = view.pick_run(runs)
with guard():
    run = clustering_data.run(version, run_id)
    view.run_summary(run)
    currency = shop.currency

    clusters_tab, profile_tab, map_tab, compare_tab = st.tabs(
        [t("clustering.tab_clusters"), t("clustering.tab_profile"), t("clustering.tab_map"),
         t("clustering.tab_reevaluate")], key="cluster_tab")
    with clusters_tab:
        if run.k_scores:
            st.subheader(t("clustering.curve_title"))
            st.plotly_chart(view.silhouette_curve(run), config=charts.PLOTLY_CONFIG, key="cluster_curve")
            st.caption(t("clustering.curve_note", k=run.k))
        view.show_clusters_table(run, currency)
        st.caption(t("clustering.customers_behind", n=fmt.number(run.n_customers)))
    with profile_tab:
        view.cluster_profile(run, currency)
    with map_tab:
        points = clustering_data.projection(version, run_id)
        st.subheader(t("clustering.map_title"))
        st.plotly_chart(view.projection_chart(points), config=charts.PLOTLY_CONFIG, key="cluster_map")
        variance = sum(run.params.get("projection_variance", []))
        st.caption(t("clustering.map_caption", n=fmt.number(len(points)), variance=fmt.percent(variance, 0)))
    with compare_tab:
        st.caption(t("clustering.reevaluate_intro"))
        reev = clustering_data.reevaluation(version, run_id, clustering_data.personas_signature())
        if not reev.matches:
            st.info(t("clustering.no_personas"))
        else:
            st.dataframe(view.reevaluation_table(reev), hide_index=True, key="cluster_matches",
                         column_config={t("clustering.col_distance"): st.column_config.NumberColumn(format="%.2f")})
            if reev.unmatched_clusters:
                st.caption(t("clustering.unmatched", clusters=", ".join(map(view.cluster_name,
                                                                                  reev.unmatched_clusters))))
            if not reev.flows.empty:
                st.subheader(t("clustering.flows_title"))
                st.plotly_chart(view.flows_chart(reev), config=charts.PLOTLY_CONFIG, key="cluster_flows")
                st.caption(t("clustering.customers_behind", n=fmt.number(int(reev.flows["customers"].sum()))))
            st.subheader(t("clustering.drift_title"))
            st.dataframe(view.drift_table(reev, currency), hide_index=True, key="cluster_drift")
