"""The frame around every page: page registry, session defaults, sidebar, error guard."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from persona_engine.errors import PersonaStudioError
from ui import data, fmt
from ui.data_page_data import consent_text
from ui.editor_identity import sidebar_identity
from ui.i18n import LANGUAGES, browser_language, t

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
log = logging.getLogger("persona_studio")


@dataclass(frozen=True)
class PageSpec:
    key: str  # catalogue key under [nav] and the page's URL path
    file: str  # file name in pages/
    icon: str
    section: str  # catalogue key under [nav] of its navigation section


# A page is listed here once it works; there are no placeholders.
PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "overview.py", ":material/dashboard:", "section_explore"),
    PageSpec("explorer", "explorer.py", ":material/travel_explore:", "section_explore"),
    PageSpec("personas", "personas.py", ":material/groups:", "section_personas"),
    PageSpec("clustering", "clustering.py", ":material/bubble_chart:", "section_personas"),
    PageSpec("persona_editor", "persona_editor.py", ":material/edit_note:", "section_personas"),
    PageSpec("meeting", "meeting.py", ":material/co_present:", "section_personas"),
    PageSpec("impact", "impact.py", ":material/query_stats:", "section_impact"),
    PageSpec("actions", "actions.py", ":material/campaign:", "section_impact"),
    PageSpec("data", "data.py", ":material/database:", "section_data"),
)


def init_session() -> None:
    """Small session values, set once."""
    st.session_state.setdefault("lang", browser_language())


def navigation_pages() -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    for i, spec in enumerate(PAGES):
        page = st.Page(PAGES_DIR / spec.file, title=t(f"nav.{spec.key}"), icon=spec.icon,
                       url_path=spec.key, default=i == 0)
        sections.setdefault(t(f"nav.{spec.section}"), []).append(page)
    return sections


def sidebar() -> None:
    with st.sidebar:
        st.selectbox(t("shell.language"), options=list(LANGUAGES), format_func=LANGUAGES.get, key="lang")
        summary = data.shop_summary(data.data_version())
        if summary.source == "sample":
            st.caption(t("shell.source_sample", seed=data.setting("sample_seed") or "?"))
        elif summary.source:
            st.caption(t("shell.source_import"))
        consent = consent_text(summary.consent)  # the declaration made for this data
        if consent:
            st.caption(consent)
        if summary.customers_without_consent:
            st.caption(t("shell.consent_note", n=fmt.number(summary.customers_without_consent)))
        sidebar_identity()


@contextmanager
def guard() -> Iterator[None]:
    """Show a persona_engine error as a one-line message instead of a traceback."""
    try:
        yield
    except PersonaStudioError as e:
        st.error(f"{t('shell.error_prefix')}: {e}")
