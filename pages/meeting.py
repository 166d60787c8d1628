"""Meeting mode: a persona card to put on the big screen, live, and its exports."""

import streamlit as st

from ui import editor_data
from ui.editor_actions import persona_picker
from ui.editor_identity import current_identity, login_required
from ui.editor_meeting import export_buttons, meeting_card, presentation_style
from ui.i18n import t
from ui.shell import guard

if current_identity() is None and login_required():
    st.title(t("meeting.title"))
    st.info(t("editor.sign_in_first"))
    st.stop()

personas = editor_data.personas()
if personas.empty:
    st.title(t("meeting.title"))
    st.info(t("editor.no_personas"))
    st.stop()

top = st.columns([3, 1], vertical_alignment="bottom")
with top[0]:
    persona_id = persona_picker(personas)
with top[1]:
    presenting = st.toggle(t("meeting.presentation"), key="meeting_presentation", help=t("meeting.presentation_help"))
if presenting:
    presentation_style()
if persona_id is None:
    st.stop()

meeting_card(persona_id)
st.divider()
with guard():
    export_buttons(persona_id)
