"""Choosing a persona, creating or importing one, and the admin's delete and restore."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from persona_engine.errors import PersonaStudioError
from persona_engine.export import import_persona_json
from persona_engine.personas import create_persona, delete_persona, undelete_persona
from ui import data, editor_data
from ui.editor_identity import Identity
from ui.i18n import t

PERSONA_KEY = "persona"  # shared by the editor and meeting pages, and the URL (?persona=3)


def persona_picker(personas: pd.DataFrame) -> int | None:
    """The persona select box (bound to the URL); returns the chosen persona_id."""
    names = {int(r.persona_id): r.name + (f" – {r.nickname}" if r.nickname else "") for r in personas.itertuples()}
    return st.selectbox(t("editor.persona"), list(names), key=PERSONA_KEY, format_func=lambda i: names.get(i, "?"),
                        bind="query-params", persist_state="session")


def _note(level: str, text: str) -> None:
    st.session_state["persona_action_message"] = (level, text)


def _create(user: str) -> None:
    name = str(st.session_state.get("new_persona_name") or "").strip()
    try:
        persona_id = create_persona(data.cursor(), {"name": name}, user)
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state[PERSONA_KEY] = persona_id
    st.session_state["new_persona_name"] = ""
    _note("success", t("editor.created", name=name))


def _import(user: str) -> None:
    upload = st.session_state.get("import_persona_file")
    if upload is None:
        _note("info", t("editor.import_pick_file"))
        return
    try:
        persona_id = import_persona_json(data.cursor(), upload.getvalue(), user)
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state[PERSONA_KEY] = persona_id
    _note("success", t("editor.imported", id=persona_id))


def new_persona_actions(who: Identity) -> None:
    """A popover to start a blank persona or import one from a JSON export."""
    message = st.session_state.pop("persona_action_message", None)
    if message:
        getattr(st, message[0])(message[1])
    with st.popover(t("editor.new_or_import"), icon=":material/add:"):
        st.text_input(t("editor.new_name"), key="new_persona_name", max_chars=120)
        st.button(t("editor.create"), key="create_persona", on_click=_create, args=(who.user_name,), type="primary")
        st.divider()
        st.file_uploader(t("editor.import_file"), type=["json"], key="import_persona_file",
                         help=t("editor.import_help"))
        st.button(t("editor.import"), key="import_persona", on_click=_import, args=(who.user_name,))


def _delete(persona_id: int, user: str) -> None:
    try:
        delete_persona(data.cursor(), persona_id, user)
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state.pop(PERSONA_KEY, None)
    _note("success", t("editor.deleted"))


def _undelete(user: str) -> None:
    persona_id = st.session_state.get("undelete_choice")
    if persona_id is None:
        return
    try:
        undelete_persona(data.cursor(), int(persona_id), user)
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state[PERSONA_KEY] = int(persona_id)
    _note("success", t("editor.undeleted"))


def admin_actions(persona_id: int, who: Identity) -> None:
    """Admins only (the engine checks too): delete this persona, bring back a deleted one."""
    with st.expander(t("editor.admin"), icon=":material/admin_panel_settings:"):
        confirm = st.checkbox(t("editor.delete_confirm"), key="delete_confirm")
        st.button(t("editor.delete"), key="delete_persona", disabled=not confirm, on_click=_delete,
                  args=(persona_id, who.user_name))
        deleted = editor_data.deleted_personas()
        if not deleted.empty:
            names = dict(zip(deleted["persona_id"].astype(int), deleted["name"], strict=True))
            st.selectbox(t("editor.deleted_personas"), list(names), key="undelete_choice",
                         format_func=lambda i: names.get(i, "?"))
            st.button(t("editor.undelete"), key="undelete_persona", on_click=_undelete, args=(who.user_name,))
