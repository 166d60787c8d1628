"""Language catalogues: every user-facing string of the pages, one TOML file per language.

Keys are "section.name" (a TOML table per page). `t()` falls back to English, then to the
key itself, so a missing translation shows up plainly instead of breaking a page.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES = {"en": "English", "fr": "Français"}
DEFAULT_LANGUAGE = "en"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    with open(LOCALES_DIR / f"{lang}.toml", "rb") as f:
        return _flatten(tomllib.load(f))


def browser_language() -> str:
    try:
        locale = st.context.locale or ""
    except Exception:  # outside a browser session (AppTest, bare mode)
        locale = ""
    return "fr" if locale.lower().startswith("fr") else DEFAULT_LANGUAGE


def current_language() -> str:
    lang = st.session_state.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str | None = None, **values: Any) -> str:
    """The text for `key` in the current language, with {placeholders} filled from `values`."""
    lang = lang or current_language()
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**values) if values else text


def label(group: str, code: Any) -> str:
    """Translate a data code (gender 'female', device 'mobile'...) when the catalogue knows it."""
    if code is None:
        return t("common.unknown")
    key = f"codes.{group}.{code}"
    text = t(key)
    return str(code) if text == key else text
