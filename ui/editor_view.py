"""Read-only parts of the persona pages: values, facts with their sources, history, comments.

Everything people typed goes through persona_engine.safe_text before Streamlit renders it:
Markdown fields keep their formatting without dangerous links, names are shown literally.
Nothing here uses unsafe_allow_html.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from persona_engine import collab
from persona_engine.errors import PersonaStudioError
from persona_engine.persona_facts import GROUPS, Fact, PersonaFacts
from persona_engine.personas import PERSONA_FIELDS, restore_version
from persona_engine.safe_text import plain_markdown, safe_markdown
from ui import data, editor_data, fmt
from ui.editor_identity import Identity
from ui.i18n import label, t

HISTORY_LIMIT = 40


def field_label(name: str) -> str:
    return t(f"persona_fields.{name}")


def person_list(names: list[str]) -> str:
    return ", ".join(names)


def render_value(name: str, value: Any, show_label: bool = True) -> None:
    """One field, read-only: lists as bullets, Markdown rendered safely, choices translated."""
    kind = PERSONA_FIELDS[name].kind
    if show_label:
        st.markdown(f"**{field_label(name)}**")
    if value in (None, "", []):
        st.caption(t("editor.empty"))
    elif kind == "list":
        st.markdown("\n".join(f"- {safe_markdown(item)}" for item in value))
    elif kind == "markdown":
        st.markdown(safe_markdown(str(value)))
    elif kind == "choice":
        st.markdown(label("persona_kind" if name == "kind" else "persona_status", value))
    else:
        st.markdown(plain_markdown(str(value)))


# ---------------------------------------------------------------- facts


def fact_value(fact: Fact, currency: str | None) -> str:
    """A fact as people read it in the current language."""
    if fact.value is None:
        return t("common.not_available")
    if fact.unit == "text":
        code_group = {"top_gender": "gender", "top_acquisition_channel": "source", "main_device": "device"}
        text = label(code_group[fact.key], fact.value) if fact.key in code_group else str(fact.value)
        return f"{text} ({fmt.percent(fact.share, 0)})" if fact.share is not None else text
    value = float(fact.value)
    if fact.unit == "share":
        return fmt.percent(value)
    if fact.unit == "money":
        return fmt.money(value, currency, 2 if fact.key == "average_order_value" else 0)
    if fact.unit in ("count", "years", "days"):
        return fmt.number(value)
    return fmt.number(value, 2)


def facts_panel(facts: PersonaFacts) -> None:
    """The data-backed facts beside the editable fields, each with where it comes from."""
    st.subheader(t("editor.facts_title"))
    st.caption(t("common.customers_behind", n=fmt.number(facts.members)))
    if facts.members < 30:
        st.warning(t("common.too_small", n=fmt.number(facts.members)))
    for group in GROUPS:
        st.markdown(f"**{t(f'persona_facts.group_{group}')}**")
        for fact in facts.by_group(group):
            # Values such as a region name come from imported data: shown literally.
            st.markdown(f"{t(f'persona_facts.{fact.key}')}: **{plain_markdown(fact_value(fact, facts.currency))}**",
                        help=t("editor.fact_source", source=fact.source, n=fmt.number(fact.customers)))


# ---------------------------------------------------------------- history


def _restore(persona_id: int, version: int, user: str) -> None:
    try:
        result = restore_version(data.cursor(), persona_id, version, user)
    except PersonaStudioError as e:
        st.session_state["history_message"] = ("error", f"{t('shell.error_prefix')}: {e}")
        return
    st.session_state["history_message"] = ("success", t("editor.restored", version=version, new=result.version))


def _short(name: str, value: Any) -> str:
    text = collab.value_text(name, value)
    return text if text else "–"


@st.fragment(run_every=5)
def history_panel(persona_id: int, who: Identity | None) -> None:
    """Timeline, newest first: who, when, which fields, old -> new (line diff for long texts)."""
    message = st.session_state.pop("history_message", None)
    if message:
        getattr(st, message[0])(message[1])
    try:
        timeline = collab.history_timeline(data.cursor(), persona_id)
    except PersonaStudioError as e:
        st.error(f"{t('shell.error_prefix')}: {e}")
        return
    latest = timeline[0].version if timeline else 0
    for entry in timeline[:HISTORY_LIMIT]:
        fields = ", ".join(field_label(c.field) if c.field in PERSONA_FIELDS else c.field for c in entry.changes)
        title = t("editor.history_entry", version=entry.version, when=entry.changed_at.strftime("%Y-%m-%d %H:%M:%S"),
                  who=plain_markdown(entry.changed_by or "?"), fields=fields)
        with st.expander(title, expanded=entry.version == latest):
            for change in entry.changes:
                name = change.field
                st.markdown(f"**{field_label(name) if name in PERSONA_FIELDS else plain_markdown(name)}**")
                if change.diff is not None:
                    st.code(change.diff or " ", language="diff", wrap_lines=True)
                else:
                    st.code(f"- {_short(name, change.old)}\n+ {_short(name, change.new)}", language="diff",
                            wrap_lines=True)
            if who is not None and who.can("editor") and entry.version != latest:
                st.button(t("editor.restore", version=entry.version), key=f"restore_{persona_id}_{entry.version}",
                          on_click=_restore, args=(persona_id, entry.version, who.user_name),
                          icon=":material/history:")
    if len(timeline) > HISTORY_LIMIT:
        st.caption(t("editor.history_more", n=len(timeline) - HISTORY_LIMIT))


# ---------------------------------------------------------------- comments


def _post(persona_id: int, user: str) -> None:
    try:
        collab.add_comment(data.cursor(), persona_id, user, st.session_state["comment_department"],
                           st.session_state.get("comment_body", ""))
    except PersonaStudioError as e:
        st.session_state["comment_message"] = f"{t('shell.error_prefix')}: {e}"
        return
    st.session_state["comment_body"] = ""


def _delete_comment(comment_id: int, user: str) -> None:
    try:
        collab.delete_comment(data.cursor(), comment_id, user)
    except PersonaStudioError as e:
        st.session_state["comment_message"] = f"{t('shell.error_prefix')}: {e}"


@st.fragment(run_every=5)
def comment_thread(persona_id: int, who: Identity | None) -> None:
    """The persona's comments, oldest first, filtered by department; refreshed every 5 s."""
    department = st.session_state.get("comment_filter")
    thread = collab.list_comments(data.cursor(), persona_id, department or None)
    if thread.empty:
        st.caption(t("editor.no_comments"))
    for c in thread.itertuples(index=False):
        with st.container(border=True):
            st.caption(t("editor.comment_header", who=plain_markdown(c.author_name),
                         department=label("department", c.department), when=c.created_at.strftime("%Y-%m-%d %H:%M")))
            st.markdown(safe_markdown(c.body))
            if who is not None and (who.user_name == c.author or who.can("admin")):
                st.button(t("editor.delete_comment"), key=f"del_comment_{c.comment_id}", type="tertiary",
                          on_click=_delete_comment, args=(int(c.comment_id), who.user_name))


def comments_panel(persona_id: int, who: Identity | None) -> None:
    st.segmented_control(t("editor.department_filter"), list(collab.DEPARTMENTS), key="comment_filter",
                         format_func=lambda d: label("department", d))
    comment_thread(persona_id, who)
    if who is None or not who.can("editor"):
        st.caption(t("editor.comments_read_only"))
        return
    message = st.session_state.pop("comment_message", None)
    if message:
        st.error(message)
    st.selectbox(t("editor.department"), list(collab.DEPARTMENTS), key="comment_department",
                 format_func=lambda d: label("department", d))
    st.text_area(t("editor.comment"), key="comment_body", height=90, help=t("editor.markdown_help"))
    st.button(t("editor.post"), key="comment_post", on_click=_post, args=(persona_id, who.user_name),
              icon=":material/send:")


def facts_for(persona_id: int) -> PersonaFacts:
    return editor_data.facts(data.data_version(), persona_id)


def avatar(persona_fields: dict, width: int = 96) -> None:
    """The persona's picture: the uploaded image, the drafted SVG, else an emoji or initials."""
    image, text = persona_fields["avatar_image"], (persona_fields["avatar"] or "").strip()
    if image:
        st.image(image, width=width)
    elif text.startswith("<svg") or text.startswith("<?xml"):
        st.image(text, width=width)  # drawn as an <img>: scripts inside an SVG do not run there
    else:
        initials = "".join(w[0] for w in str(persona_fields["name"]).split()[:2]).upper()
        st.markdown(f"# {plain_markdown(text or initials)}")
