"""The process-wide store and cached loaders. Every st.cache_* wrapper of the app lives here.

Loaders take the shop's `data_version` as an argument, so a new import or sample makes
their cached results stale at once; a ttl bounds them anyway.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import streamlit as st

from persona_engine import overview as overview_engine
from persona_engine.store import Store, get_setting, open_store, set_setting

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = ROOT / "data" / "shop.duckdb"
CACHE_TTL = 600


def database_path() -> Path:
    return Path(os.environ.get("PERSONA_STUDIO_DB", str(DEFAULT_DB))).resolve()


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return open_store(path)


def store() -> Store:
    return _store(str(database_path()))


def cursor() -> duckdb.DuckDBPyConnection:
    """This browser session's (thread's) cursor over the shared connection."""
    return store().cursor()


def setting(key: str) -> str | None:
    return get_setting(cursor(), key)


def data_version() -> str:
    """Cache key of the shop's current data: the file and its write counter."""
    return f"{database_path()}#{setting('data_version') or '0'}"


def bump_data_version() -> None:
    """Call after any write that changes shop data: cached loaders recompute."""
    cur = cursor()
    set_setting(cur, "data_version", str(int(get_setting(cur, "data_version", "0") or 0) + 1))
    st.cache_data.clear()


def after_shop_change() -> None:
    """A new shop (sample or import) is in: drop every cached result."""
    bump_data_version()


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def shop_summary(version: str) -> overview_engine.ShopSummary:
    return overview_engine.shop_summary(cursor())


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def shop_overview(version: str, start: date, end: date) -> overview_engine.Overview:
    return overview_engine.overview(cursor(), start, end)
