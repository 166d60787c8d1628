"""Actions: the marketing actions whose impact is tracked, and the playbook's suggestions."""

import streamlit as st

from ui import editor_data, impact_data
from ui.editor_identity import current_identity, login_required
from ui.i18n import t
from ui.impact_actions import action_form, actions_table, show_message, suggestions_panel
from ui.impact_controls import persona_names
from ui.shell import guard

st.title(t("actions.title"))
st.caption(t("actions.intro"))

who = current_identity()
# Without a credentials file everyone may edit; with one, editors and admins only.
can_edit = who.can("editor") if who is not None else not login_required()
if not can_edit:
    st.info(t("actions.read_only"))

names = persona_names(editor_data.personas())
show_message()
with guard():
    actions = impact_data.actions()
    list_tab, edit_tab, suggest_tab = st.tabs(
        [t("actions.tab_list"), t("actions.tab_edit"), t("actions.tab_suggestions")], key="actions_tab")
    with list_tab:
        actions_table(actions, names)
        st.page_link("pages/impact.py", label=t("actions.open_impact"), icon=":material/query_stats:")
    with edit_tab:
        action_form(actions, names, who, can_edit)
    with suggest_tab:
        suggestions_panel(names, who, can_edit)
