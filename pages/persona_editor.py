"""Persona editor: edit one persona together, live, with its facts, history and comments."""

import streamlit as st

from ui import editor_data
from ui.editor_actions import admin_actions, new_persona_actions, persona_picker
from ui.editor_identity import current_identity, login_required
from ui.editor_live import live_editor, live_view
from ui.editor_view import comments_panel, facts_for, facts_panel, history_panel
from ui.i18n import t
from ui.impact_persona import persona_impact_panel
from ui.shell import guard

st.title(t("editor.title"))
st.caption(t("editor.intro"))

who = current_identity()
if who is None and login_required():
    st.info(t("editor.sign_in_first"))
    st.stop()

personas = editor_data.personas()
if who is not None and who.can("editor"):
    new_persona_actions(who)
if personas.empty:
    st.info(t("editor.no_personas") if who is None else t("editor.no_personas_named"))
    st.stop()

persona_id = persona_picker(personas)
if persona_id is None:
    st.stop()

if who is None:
    st.info(t("editor.name_first"))
elif not who.can("editor"):
    st.info(t("editor.viewer_mode"))

edit_tab, history_tab, comments_tab = st.tabs(
    [t("editor.tab_edit"), t("editor.tab_history"), t("editor.tab_comments")], key="editor_tab")
with edit_tab:
    form, side = st.columns([2, 1], gap="large")
    with form:
        if who is not None and who.can("editor"):
            live_editor(persona_id, who)
        else:
            live_view(persona_id, who)
    with side, guard():
        facts_panel(facts_for(persona_id))
with history_tab:
    history_panel(persona_id, who)
with comments_tab:
    comments_panel(persona_id, who)
persona_impact_panel(persona_id)

if who is not None and who.can("admin"):
    admin_actions(persona_id, who)
