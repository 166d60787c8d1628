"""Personas: the gallery, drafting personas from a clustering run (keep, merge, discard
clusters), and interview shortlists to check a persona against real customers."""

import streamlit as st

from ui import clustering_data, editor_data
from ui import personas_view as view
from ui.clustering_view import pick_run
from ui.editor_identity import current_identity
from ui.i18n import t
from ui.sample import shop_page
from ui.shell import guard

version, shop = shop_page("personas")

created = st.session_state.pop("personas_created", None)
if created:
    st.success(t("personas.created", n=created))

personas = editor_data.personas()
gallery_tab, create_tab, shortlist_tab = st.tabs(
    [t("personas.tab_gallery"), t("personas.tab_create"), t("personas.tab_shortlist")], key="personas_tab")

with gallery_tab:
    if personas.empty:
        st.info(t("personas.no_personas"))
    else:
        view.count_guidance(personas)
        with guard():
            view.gallery(personas, version, shop.currency)

with create_tab:
    st.caption(t("personas.create_intro"))
    runs = clustering_data.runs(version, clustering_data.latest_run_id())
    if runs.empty:
        st.info(t("personas.no_runs"))
        st.page_link("pages/clustering.py", label=t("personas.go_to_clusters"), icon=":material/bubble_chart:")
    else:
        run_id = pick_run(runs)
        with guard():
            view.picking(run_id, version, current_identity(), shop.currency, personas)

with shortlist_tab:
    st.caption(t("personas.shortlist_intro"))
    if personas.empty:
        st.info(t("personas.no_personas"))
    else:
        with guard():
            view.shortlist(personas, version, shop.currency)
