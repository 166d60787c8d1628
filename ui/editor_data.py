"""Cached loaders and small reads for the persona editor and meeting pages.

Persona records are read fresh on every run (they change while people edit, and a version
check is one indexed row); the data-backed facts, which only change with the shop's data,
are cached on `data.data_version()`. The credentials file is copied into app_users again
whenever it changes on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from persona_engine import auth
from persona_engine.export import LABELS, export_card
from persona_engine.persona_facts import PersonaFacts, persona_facts
from persona_engine.personas import PERSONA_FIELDS, list_personas
from ui import data
from ui.i18n import t


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def facts(version: str, persona_id: int) -> PersonaFacts:
    return persona_facts(data.cursor(), persona_id)


@st.cache_resource(show_spinner=False)
def _synced_users(path: str, mtime_ns: int, db: str) -> int:
    # One sync per (file, modification time): editing the file takes effect at the next run.
    return auth.sync_credentials_file(data.cursor(), path)


def sync_users() -> None:
    """Copy the credentials file into app_users if it changed (ValidationError if it is broken)."""
    path = auth.credentials_path(data.database_path())
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    _synced_users(str(path), mtime, str(data.database_path()))


def credentials_file() -> Path:
    return auth.credentials_path(data.database_path())


def personas() -> pd.DataFrame:
    """persona_id, name, nickname, kind, status, ... of the personas not deleted (list_personas)."""
    return list_personas(data.cursor())


def deleted_personas() -> pd.DataFrame:
    frame = list_personas(data.cursor(), include_deleted=True)
    return frame[frame["deleted_at"].notna()].reset_index(drop=True)


def card_labels() -> dict[str, str]:
    """The card's words in the current language, for exports made from the app."""
    words = {name: t(f"persona_fields.{name}") for name in PERSONA_FIELDS}
    words.update({key: t(f"persona_facts.{key}") for key in LABELS if key not in PERSONA_FIELDS})
    return words


def export_callable(persona_id: int, fmt: str, labels: dict[str, str]) -> Callable[[], bytes]:
    """A no-argument function building the export when the download button is clicked.

    Streamlit runs it on another thread: it takes that thread's own cursor from the store.
    """
    store = data.store()
    return lambda: export_card(store.cursor(), persona_id, fmt, labels)
