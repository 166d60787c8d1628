"""The live editor: a fragment that polls the persona's version and never loses unsaved input.

Every POLL_SECONDS the fragment asks `current_version` (one row). When someone else saved,
it reloads the persona and rebases this person's editor (ui.editor_state.rebase): fields
they have not touched take the new value before the widgets are drawn, touched fields keep
their text, and a touched field the other person changed too becomes a conflict with three
ways out: keep mine, take theirs, merge by hand. Widget values live in session_state under
one key per persona and field, so switching personas or pages keeps them too.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from persona_engine import collab
from persona_engine.errors import PersonaStudioError, ValidationError
from persona_engine.export import image_mime
from persona_engine.personas import (
    KINDS,
    PERSONA_FIELDS,
    STATUSES,
    current_version,
    get_persona,
    save_persona,
)
from persona_engine.safe_text import plain_markdown
from ui import data
from ui.editor_identity import Identity
from ui.editor_state import (
    EDITABLE,
    EditorState,
    from_widget,
    merge_suggestion,
    pending_changes,
    rebase,
    to_widget,
    touched,
)
from ui.editor_view import avatar, field_label, person_list, render_value
from ui.i18n import label, t

POLL_SECONDS = 1.5  # others' saves show within 3 s even with a slow rerun
HEARTBEAT_SECONDS = 15
MESSAGE_SECONDS = 8
STATES_KEY = "editor_states"
MESSAGES_KEY = "editor_messages"
# How the form groups the fields, in the order of PERSONA_FIELDS within each group.
GROUPS: dict[str, tuple[str, ...]] = {
    "identity": ("name", "nickname", "kind", "status", "avatar", "quote"),
    "story": ("bio", "demographics", "day_in_the_life", "personal_context", "professional_context"),
    "needs": ("goals", "frustrations", "motivations", "buying_triggers", "objections"),
    "reach": ("preferred_channels", "media_preferences", "tech_affinity", "brand_relationship", "key_messages",
              "success_factors"),
}
CHOICES = {"kind": KINDS, "status": STATUSES}


def widget_key(persona_id: int, name: str) -> str:
    return f"pe_{persona_id}_{name}"


def _widgets(persona_id: int) -> dict[str, Any]:
    return {f: st.session_state[widget_key(persona_id, f)] for f in EDITABLE
            if widget_key(persona_id, f) in st.session_state}


def _state(persona_id: int) -> EditorState:
    return st.session_state[STATES_KEY][persona_id]  # type: ignore[no-any-return]


def _say(persona_id: int, level: str, text: str) -> None:
    # Kept for a few refreshes, so the message does not vanish with the next poll.
    st.session_state.setdefault(MESSAGES_KEY, {})[persona_id] = (level, text, time.monotonic() + MESSAGE_SECONDS)


# ---------------------------------------------------------------- sync with the database


def _refresh(state: EditorState, who: Identity) -> None:
    """Rebase onto the stored version; announce others' saves. Runs before widgets are drawn."""
    cur = data.cursor()
    persona = get_persona(cur, state.persona_id)
    notices = collab.changes_since(cur, state.persona_id, state.base_version)
    updates = rebase(state, persona, _widgets(state.persona_id), notices, who.user_name)
    for name, value in updates.items():
        st.session_state[widget_key(state.persona_id, name)] = value
    for notice in notices:
        if notice.changed_by != who.user_name:
            fields = ", ".join(field_label(f) for f in notice.fields)
            st.toast(t("editor.changed_by", who=plain_markdown(notice.changed_by or "?"), fields=fields),
                     icon=":material/sync:")


def sync(persona_id: int, who: Identity | None) -> EditorState:
    """Open the editor state of this persona, or bring it up to date; write presence."""
    states: dict[int, EditorState] = st.session_state.setdefault(STATES_KEY, {})
    state = states.get(persona_id)
    cur = data.cursor()
    if state is None:
        state = EditorState.open(get_persona(cur, persona_id))
        states[persona_id] = state
    elif current_version(cur, persona_id)[0] != state.base_version:
        _refresh(state, who or Identity("", "", "viewer"))
    for name in EDITABLE:  # first visit, or a widget state Streamlit dropped
        st.session_state.setdefault(widget_key(persona_id, name), to_widget(name, state.base[name]))
    if who is not None:
        editing = who.can("editor") and bool(touched(state, _widgets(persona_id)))
        if time.monotonic() - state.last_beat > HEARTBEAT_SECONDS or editing != state.last_editing:
            collab.heartbeat(cur, persona_id, who.user_name, editing=editing)
            state.last_beat, state.last_editing = time.monotonic(), editing
    return state


# ---------------------------------------------------------------- actions (button callbacks)


def _save_changes(persona_id: int, user: str, changes: dict[str, Any]) -> None:
    state = _state(persona_id)
    who = Identity(user, user, "editor")
    try:
        result = save_persona(data.cursor(), persona_id, changes, state.base_version, user)
        _refresh(state, who)
    except PersonaStudioError as e:
        _say(persona_id, "error", f"{t('shell.error_prefix')}: {e}")
        return
    if result.conflicts:
        _say(persona_id, "warning", t("editor.saved_with_conflicts", n=len(result.applied),
                                      conflicts=", ".join(field_label(c.field) for c in result.conflicts)))
    elif result.applied:
        _say(persona_id, "success", t("editor.saved", version=result.version,
                                      fields=", ".join(field_label(f) for f in result.applied)))
    else:
        _say(persona_id, "info", t("editor.nothing_changed"))


def _save(persona_id: int, user: str) -> None:
    changes = pending_changes(_state(persona_id), _widgets(persona_id))
    if not changes:
        _say(persona_id, "info", t("editor.nothing_to_save"))
        return
    _save_changes(persona_id, user, changes)


def _discard(persona_id: int) -> None:
    state = _state(persona_id)
    for name in EDITABLE:
        st.session_state[widget_key(persona_id, name)] = to_widget(name, state.base[name])
    state.conflicts.clear()


def _keep_mine(persona_id: int, user: str, name: str) -> None:
    mine = from_widget(name, st.session_state[widget_key(persona_id, name)])
    _state(persona_id).conflicts.pop(name, None)
    _save_changes(persona_id, user, {name: mine})


def _take_theirs(persona_id: int, name: str) -> None:
    state = _state(persona_id)
    conflict = state.conflicts.pop(name, None)
    if conflict is not None:
        st.session_state[widget_key(persona_id, name)] = to_widget(name, conflict.theirs)


def _save_merged(persona_id: int, user: str, name: str) -> None:
    merged = st.session_state.get(f"{widget_key(persona_id, name)}_merge", "")
    st.session_state[widget_key(persona_id, name)] = merged
    st.session_state[f"{widget_key(persona_id, name)}_merging"] = False
    _state(persona_id).conflicts.pop(name, None)
    _save_changes(persona_id, user, {name: from_widget(name, merged)})


def _upload_picture(persona_id: int, user: str) -> None:
    upload = st.session_state.get(widget_key(persona_id, "upload"))
    if upload is None:
        _say(persona_id, "info", t("editor.pick_a_picture"))
        return
    raw = upload.getvalue()
    try:
        mime = image_mime(raw)
    except ValidationError as e:
        _say(persona_id, "error", f"{t('shell.error_prefix')}: {e}")
        return
    _save_changes(persona_id, user, {"avatar_image": raw, "avatar_mime": mime})


def _remove_picture(persona_id: int, user: str) -> None:
    _save_changes(persona_id, user, {"avatar_image": None, "avatar_mime": None})


# ---------------------------------------------------------------- drawing


def _presence(persona_id: int, state: EditorState) -> None:
    here = collab.present_users(data.cursor(), persona_id)
    names = [f"{plain_markdown(r.display_name)}{' ✎' if r.editing else ''}" for r in here.itertuples()]
    st.caption(t("editor.here_now", names=person_list(names) or t("editor.nobody_else")))
    for notice in reversed(state.notices[-3:]):
        st.caption(t("editor.notice", who=plain_markdown(notice.changed_by or "?"),
                      fields=", ".join(field_label(f) for f in notice.fields),
                      time=notice.changed_at.strftime("%H:%M:%S"), version=notice.version))


def _conflicts(persona_id: int, state: EditorState, user: str) -> None:
    for name, conflict in list(state.conflicts.items()):
        key = widget_key(persona_id, name)
        with st.container(border=True):
            st.warning(t("editor.conflict", field=field_label(name), who=plain_markdown(conflict.changed_by or "?")),
                       icon=":material/call_split:")
            mine = from_widget(name, st.session_state.get(key))
            st.code(collab.text_diff(collab.value_text(name, conflict.theirs), collab.value_text(name, mine)),
                    language="diff", wrap_lines=True)
            st.caption(t("editor.conflict_legend"))
            cols = st.columns(3)
            cols[0].button(t("editor.keep_mine"), key=f"{key}_keep", on_click=_keep_mine, args=(persona_id, user, name))
            cols[1].button(t("editor.take_theirs"), key=f"{key}_take", on_click=_take_theirs, args=(persona_id, name))
            if cols[2].button(t("editor.merge"), key=f"{key}_merge_open"):
                st.session_state[f"{key}_merging"] = True
                st.session_state[f"{key}_merge"] = merge_suggestion(name, conflict.theirs, mine)
            if st.session_state.get(f"{key}_merging"):
                st.text_area(t("editor.merge_text"), key=f"{key}_merge", height=160)
                st.button(t("editor.save_merged"), key=f"{key}_merge_save", type="primary",
                          on_click=_save_merged, args=(persona_id, user, name))


def _field_widget(persona_id: int, name: str, disabled: bool) -> None:
    key, kind = widget_key(persona_id, name), PERSONA_FIELDS[name].kind
    text = field_label(name)
    if kind == "choice":
        prefix = "persona_kind" if name == "kind" else "persona_status"
        st.selectbox(text, CHOICES[name], key=key, format_func=lambda c: label(prefix, c), disabled=disabled,
                     persist_state="session")
    elif kind == "list":
        st.text_area(text, key=key, height=110, help=t("editor.list_help"), disabled=disabled,
                     persist_state="session")
    elif kind == "markdown":
        st.text_area(text, key=key, height=130, help=t("editor.markdown_help"), disabled=disabled,
                     persist_state="session")
    else:
        st.text_input(text, key=key, disabled=disabled, persist_state="session",
                      help=t("editor.avatar_help") if name == "avatar" else None,
                      max_chars=PERSONA_FIELDS[name].max_length if name != "avatar" else None)


def _picture(persona_id: int, user: str) -> None:
    st.file_uploader(t("editor.picture"), type=["png", "jpg", "jpeg", "gif", "webp"], max_upload_size=2,
                     key=widget_key(persona_id, "upload"), help=t("editor.picture_help"))
    with st.container(horizontal=True):
        st.button(t("editor.use_picture"), key=widget_key(persona_id, "upload_save"),
                  on_click=_upload_picture, args=(persona_id, user))
        st.button(t("editor.remove_picture"), key=widget_key(persona_id, "upload_remove"),
                  on_click=_remove_picture, args=(persona_id, user))


def _save_bar(persona_id: int, state: EditorState, user: str, where: str) -> None:
    """What is unsaved, and Save / Discard (drawn above and below the long form)."""
    unsaved = [field_label(f) for f in pending_changes(state, _widgets(persona_id))]
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(t("editor.save"), key=f"pe_{persona_id}_save_{where}", type="primary", on_click=_save,
                  args=(persona_id, user), icon=":material/save:")
        st.button(t("editor.discard"), key=f"pe_{persona_id}_discard_{where}", on_click=_discard,
                  args=(persona_id,), disabled=not unsaved)
        if state.conflicts:
            st.caption(t("editor.to_resolve", fields=", ".join(field_label(f) for f in state.conflicts)))
        st.caption(t("editor.unsaved", fields=", ".join(unsaved)) if unsaved
                   else t("editor.all_saved", version=state.base_version))


@st.fragment(run_every=POLL_SECONDS)
def live_editor(persona_id: int, who: Identity) -> None:
    """The editing form, refreshed with others' saves every POLL_SECONDS."""
    try:
        state = sync(persona_id, who)
    except PersonaStudioError as e:
        st.error(f"{t('shell.error_prefix')}: {e}")
        return
    # Parts whose number of elements varies (notices, messages, conflicts) each sit in one
    # container, so the form's widgets keep their place in the page from one refresh to the
    # next: a widget that moved would be redrawn and lose the text typed but not yet sent.
    with st.container():
        _presence(persona_id, state)
        message = st.session_state.get(MESSAGES_KEY, {}).get(persona_id)
        if message and message[2] > time.monotonic():
            getattr(st, message[0])(message[1])
    with st.container():
        _save_bar(persona_id, state, who.user_name, "top")
    with st.container():
        _conflicts(persona_id, state, who.user_name)
    for group, names in GROUPS.items():
        st.subheader(t(f"editor.group_{group}"))
        if group == "identity":
            avatar(get_persona(data.cursor(), persona_id).fields)
        for pair in zip(names[::2], names[1::2] + ("",) * (len(names) % 2), strict=True):
            for column, name in zip(st.columns(2), pair, strict=True):
                if name:
                    with column:
                        _field_widget(persona_id, name, disabled=name in state.conflicts)
        if group == "identity":
            _picture(persona_id, who.user_name)
    _save_bar(persona_id, state, who.user_name, "bottom")


@st.fragment(run_every=POLL_SECONDS)
def live_view(persona_id: int, who: Identity | None) -> None:
    """Read-only live view (viewers, and people who have not given a name yet)."""
    try:
        state = sync(persona_id, who)
        persona = get_persona(data.cursor(), persona_id)
    except PersonaStudioError as e:
        st.error(f"{t('shell.error_prefix')}: {e}")
        return
    with st.container():
        _presence(persona_id, state)
    for group, names in GROUPS.items():
        st.subheader(t(f"editor.group_{group}"))
        if group == "identity":
            avatar(persona.fields)
        for name in names:
            if name != "avatar":
                render_value(name, persona.fields[name])
