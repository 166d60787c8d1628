"""The Actions page's parts: the list of marketing actions, the form that creates, edits and
deletes one, and the playbook's suggested actions per persona (one click to an action).

Writes go through persona_engine.actions / playbook, which validate everything; their
messages are shown on the next run. Actions are not shop data: writing one clears no cache
(the impact table's cache key holds the action's date and personas themselves).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from persona_engine import actions as actions_engine
from persona_engine import playbook
from persona_engine.actions import CHANNELS, Action
from persona_engine.errors import PersonaStudioError
from persona_engine.safe_text import plain_markdown
from ui import data, fmt, impact_data
from ui.editor_identity import Identity
from ui.i18n import current_language, label, t
from ui.impact_controls import action_option
from ui.impact_view import metric_name

NEW = 0  # the "new action" entry of the picker
FORM_KEYS = ("action_name", "action_description", "action_channel", "action_starts", "action_ends",
             "action_personas")


def code_text(group: str, code: str) -> str:
    """A segment or trait code in words (actions.segment.x / actions.trait.x), else as is."""
    key = f"actions.{group}.{code}"
    text = t(key)
    return code.replace("_", " ") if text == key else text


def _note(level: str, text: str) -> None:
    st.session_state["actions_message"] = (level, text)


def show_message() -> None:
    message = st.session_state.pop("actions_message", None)
    if message:
        getattr(st, message[0])(message[1])


def _persona_list(ids: tuple[int, ...], names: dict[int, str]) -> str:
    return ", ".join(names.get(p, f"#{p}") for p in ids) or t("actions.no_persona_yet")


# --- List ----------------------------------------------------------------------------------


def actions_table(actions: list[Action], names: dict[int, str]) -> None:
    if not actions:
        st.info(t("actions.none_yet"))
        return
    frame = pd.DataFrame([{
        "name": a.name,
        "starts_on": a.starts_on.isoformat(),
        "ends_on": a.ends_on.isoformat() if a.ends_on else "",
        "channel": label("action_channel", a.channel) if a.channel else "",
        "personas": _persona_list(a.persona_ids, names),
        "owner": a.created_by or "",
    } for a in actions])
    config = {c: st.column_config.Column(t(f"actions.col_{c}")) for c in frame.columns}
    st.dataframe(frame, hide_index=True, column_config=config, key="actions_list")
    if any(not a.persona_ids for a in actions):
        st.warning(t("actions.untargeted_hint"))


# --- Create, edit, delete ------------------------------------------------------------------


def _load(action: Action | None, default_personas: list[int]) -> None:
    """Put an action's values (or blanks for a new one) into the form's widgets."""
    st.session_state["action_name"] = action.name if action else ""
    st.session_state["action_description"] = (action.description or "") if action else ""
    st.session_state["action_channel"] = action.channel if action else None
    st.session_state["action_starts"] = action.starts_on if action else date.today()
    st.session_state["action_ends"] = action.ends_on if action else None
    st.session_state["action_personas"] = list(action.persona_ids) if action and action.persona_ids else default_personas


def _save(who: Identity | None) -> None:
    s = st.session_state
    values = {
        "name": s.get("action_name") or "", "description": s.get("action_description") or None,
        "channel": s.get("action_channel"), "starts_on": s.get("action_starts"),
        "ends_on": s.get("action_ends"), "persona_ids": list(s.get("action_personas") or []),
    }
    if values["starts_on"] is None:
        _note("error", f"{t('shell.error_prefix')}: {t('actions.start_required')}")
        return
    try:
        picked = int(s.get("action_pick") or NEW)
        if picked == NEW:
            action_id = actions_engine.create_action(
                data.cursor(), created_by=who.display_name if who else None, **values)
            s["action_pick"] = action_id
            s["action_loaded"] = action_id
            _note("success", t("actions.created", name=plain_markdown(values["name"])))
        else:
            actions_engine.update_action(data.cursor(), picked, **values)
            _note("success", t("actions.saved", name=plain_markdown(values["name"])))
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")


def _delete() -> None:
    picked = int(st.session_state.get("action_pick") or NEW)
    try:
        name = impact_data.action(picked).name
        actions_engine.delete_action(data.cursor(), picked)
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state["action_pick"] = NEW
    _note("success", t("actions.deleted", name=plain_markdown(name)))


def _planted_hint(action: Action, names: dict[int, str]) -> list[int]:
    """For the sample shop's planted action: say which personas match its archetype and
    return them, to preselect. Empty for other actions or before personas exist."""
    if action.persona_ids or not action.archetypes:
        return []
    matches = impact_data.planted_personas(action.archetypes)
    archetypes = ", ".join(action.archetypes)
    if matches.empty:
        st.info(t("actions.planted_no_match", archetypes=archetypes))
        return []
    found = ", ".join(f"{plain_markdown(names.get(int(p), f'#{p}'))} ({fmt.percent(float(s), 0)})"
                      for p, s in zip(matches["persona_id"], matches["share"], strict=True))
    st.info(t("actions.planted_match", archetypes=archetypes, personas=found))
    return [int(p) for p in matches["persona_id"] if int(p) in names]


def action_form(actions: list[Action], names: dict[int, str], who: Identity | None, can_edit: bool) -> None:
    """Pick an action (or "new"), edit its fields, save; delete behind a confirmation."""
    by_id = {a.action_id: a for a in actions}
    if st.session_state.get("action_pick", NEW) not in (NEW, *by_id):
        st.session_state["action_pick"] = NEW
    # Labels are fixed at render time: a format_func calling t() later would miss the language.
    choices = {NEW: t("actions.new"), **{i: action_option(a) for i, a in by_id.items()}}
    picked = st.selectbox(t("actions.pick"), list(choices), key="action_pick", format_func=choices.__getitem__)
    action = by_id.get(int(picked))
    if action is not None and not action.persona_ids:
        st.warning(t("actions.no_target_yet"))
    default_personas = _planted_hint(action, names) if action is not None else []
    if st.session_state.get("action_loaded") != picked:
        _load(action, default_personas)
        st.session_state["action_loaded"] = picked
    if not names:
        st.info(t("actions.no_personas"))

    with st.form("action_form", border=True):
        st.text_input(t("actions.name"), key="action_name", max_chars=actions_engine.MAX_NAME_LENGTH)
        st.text_area(t("actions.description"), key="action_description",
                     max_chars=actions_engine.MAX_DESCRIPTION_LENGTH, height=100)
        left, middle, right = st.columns(3)
        channels = {c: label("action_channel", c) for c in CHANNELS}
        left.selectbox(t("actions.channel"), list(channels), key="action_channel", index=None,
                       format_func=channels.__getitem__, placeholder=t("actions.channel_none"))
        middle.date_input(t("actions.starts_on"), key="action_starts", help=t("actions.starts_on_help"))
        right.date_input(t("actions.ends_on"), key="action_ends", help=t("actions.ends_on_help"))
        st.multiselect(t("actions.personas"), list(names), key="action_personas",
                       format_func=lambda p: names.get(p, f"#{p}"), help=t("actions.personas_help"))
        owner = (action.created_by if action else (who.display_name if who else None))
        st.caption(t("actions.owner", name=plain_markdown(owner)) if owner else t("actions.owner_none"))
        st.form_submit_button(t("actions.create") if action is None else t("actions.save"), key="action_save",
                              type="primary", on_click=_save, args=(who,), disabled=not can_edit)

    if action is not None and can_edit:
        with st.popover(t("actions.delete"), icon=":material/delete:"):
            st.caption(t("actions.delete_confirm", name=plain_markdown(action.name)))
            st.button(t("actions.delete_yes"), key="action_delete", on_click=_delete, type="primary")


# --- Suggestions ---------------------------------------------------------------------------


def _create_from(key: str, persona_id: int, who: Identity | None) -> None:
    starts_on = st.session_state.get("suggest_starts") or date.today()
    try:
        action_id = playbook.create_action_from_suggestion(
            data.cursor(), key, persona_id, starts_on, language=current_language(),
            created_by=who.display_name if who else None)
    except PersonaStudioError as e:
        _note("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state["action_pick"] = action_id
    _note("success", t("actions.created_from_suggestion", name=plain_markdown(impact_data.action(action_id).name)))


def _trait_value(trait: str, value: object) -> str:
    if isinstance(value, float) and (trait.startswith("segment:") or trait.endswith(("_rate", "_share", "_opt_in"))):
        return fmt.percent(value, 0)
    return fmt.number(value, 1) if isinstance(value, float) else str(value)


def _evidence_text(evidence: tuple[playbook.Evidence, ...]) -> str:
    """"days since last order 150 (shop 62)": each trait that made the play fit."""
    parts: list[str] = []
    seen: set[str] = set()
    for e in evidence:
        if e.trait in seen:  # two conditions on one trait (a floor and a ratio to the shop)
            continue
        seen.add(e.trait)
        name = code_text("trait", e.trait.removeprefix("segment:"))
        text = f"{name} {_trait_value(e.trait, e.persona_value)}"
        if e.shop_value is not None and not isinstance(e.shop_value, str):
            text += " " + t("actions.shop_value", value=_trait_value(e.trait, e.shop_value))
        parts.append(text)
    return "; ".join(parts)


def suggestions_panel(names: dict[int, str], who: Identity | None, can_edit: bool) -> None:
    """The playbook's plays that fit a persona, each with a button that makes it an action."""
    if not names:
        st.info(t("actions.no_personas"))
        return
    left, right = st.columns([2, 1])
    persona_id = left.selectbox(t("actions.suggest_persona"), list(names), key="suggest_persona",
                                format_func=lambda p: names.get(p, f"#{p}"))
    st.session_state.setdefault("suggest_starts", date.today())
    right.date_input(t("actions.suggest_starts"), key="suggest_starts", help=t("actions.suggest_starts_help"))
    found = impact_data.suggestions(data.data_version(), impact_data.personas_signature(), int(persona_id),
                                    current_language())
    if not found:
        st.info(t("actions.no_suggestion"))
        return
    st.caption(t("actions.suggest_intro", n=len(found)))
    columns = st.columns(2)
    for i, s in enumerate(found):
        with columns[i % 2].container(border=True):
            st.markdown(f"**{plain_markdown(s.name)}**")
            st.caption(t("actions.suggest_meta", segment=code_text("segment", s.target_segment),
                         metric=metric_name(s.goal_metric), channel=label("action_channel", s.channel)))
            st.markdown(plain_markdown(s.goal))
            st.markdown("> " + plain_markdown(s.message))
            if s.evidence:
                st.caption(t("actions.suggest_why", traits=plain_markdown(_evidence_text(s.evidence))))
            st.button(t("actions.suggest_create"), key=f"suggest_create_{s.key}", on_click=_create_from,
                      args=(s.key, int(persona_id), who), disabled=not can_edit, icon=":material/add_task:")
