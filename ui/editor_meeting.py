"""Meeting mode: one persona card, large and clean, refreshed live while colleagues edit."""

from __future__ import annotations

import streamlit as st

from persona_engine.errors import PersonaStudioError
from persona_engine.export import MEDIA_TYPES, card_file_name, persona_card
from persona_engine.personas import current_version, get_persona
from persona_engine.safe_text import plain_markdown, safe_markdown
from ui import data, editor_data
from ui.editor_view import avatar, fact_value, facts_for, field_label, render_value
from ui.i18n import label, t

KPI_FACTS = ("members", "average_order_value", "repeat_purchase_rate", "conversion_rate", "revenue_share")
TRAIT_ROWS = (("goals", "frustrations", "motivations"), ("buying_triggers", "objections", "preferred_channels"),
              ("key_messages", "media_preferences", "success_factors"))
# Hides Streamlit's sidebar, header and toolbar: a fixed style sheet, no user text in it.
PRESENTATION_CSS = """<style>
section[data-testid="stSidebar"], header[data-testid="stHeader"], div[data-testid="stToolbar"],
div[data-testid="stSidebarCollapsedControl"] {display: none !important;}
div[data-testid="stMainBlockContainer"] {padding-top: 1.5rem; max-width: 1400px;}
</style>"""


def presentation_style() -> None:
    st.html(PRESENTATION_CSS)


@st.fragment(run_every=3)
def meeting_card(persona_id: int) -> None:
    """The card: avatar, name, quote, KPIs, key traits, story. Polls the version like the editor."""
    try:
        persona = get_persona(data.cursor(), persona_id)
        facts = facts_for(persona_id)
    except PersonaStudioError as e:
        st.error(f"{t('shell.error_prefix')}: {e}")
        return
    f = persona.fields
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        avatar(f, width=220)
    with right:
        st.title(plain_markdown(f["name"]), anchor=False)
        if f["nickname"]:
            st.subheader(plain_markdown(f"“{f['nickname']}”"), anchor=False)
        st.caption(f"{label('persona_kind', f['kind'])} · {label('persona_status', f['status'])}")
        if f["quote"]:
            st.markdown(f"> ### {plain_markdown('“' + f['quote'] + '”')}")
    for column, key in zip(st.columns(len(KPI_FACTS)), KPI_FACTS, strict=True):
        fact = facts.get(key)
        column.metric(t(f"persona_facts.{key}"), fact_value(fact, facts.currency), border=True,
                      help=t("editor.fact_source", source=fact.source, n=f"{fact.customers:,}"))
    st.caption(t("common.customers_behind", n=f"{facts.members:,}"))
    for row in TRAIT_ROWS:
        for column, name in zip(st.columns(3), row, strict=True):
            with column.container(border=True):
                render_value(name, f[name])
    if f["bio"]:
        st.markdown(f"**{field_label('bio')}**")
        st.markdown(safe_markdown(f["bio"]))
    version, by, at = current_version(data.cursor(), persona_id)
    st.caption(t("meeting.live", version=version, who=plain_markdown(by or "?"),
                 when=at.strftime("%H:%M:%S") if at else "?"))


def export_buttons(persona_id: int) -> None:
    """Download the card as Markdown, JSON or PDF (built when clicked)."""
    card = persona_card(data.cursor(), persona_id)
    labels = editor_data.card_labels()
    for column, fmt in zip(st.columns(3), ("md", "json", "pdf"), strict=True):
        column.download_button(
            t(f"meeting.download_{fmt}"), editor_data.export_callable(persona_id, fmt, labels),
            file_name=card_file_name(card, fmt), mime=MEDIA_TYPES[fmt], key=f"download_{fmt}",
            on_click="ignore", icon=":material/download:",
        )
