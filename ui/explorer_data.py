"""Cached loaders of the segment explorer: one per persona_engine.explore call.

Every loader takes the shop's data version and the CustomerFilter (a frozen dataclass,
hashed by value), so a filter seen before renders from memory and a new import or sample
makes every result stale at once. A filter on personas adds the personas' fingerprint to
the key: members change without the data version changing. The audience export is never
cached: it reads the consent view at the moment of the click.

The engine keeps the filtered customers in the temporary tables of the cursor it is given
(the rollups of a date range are shared by every cursor of the store). Streamlit runs every
rerun on a new thread, so the per-thread `data.cursor()` would rebuild them at each click.
Each browser session therefore gets its own cursor, kept in its session state, and used
under a lock: a rerun that interrupts another waits for the query in progress instead of
sharing the cursor with it.

The rollups of the usual periods (explore.PERIODS) are prepared once per data version, on
a thread of their own, when the explorer first opens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pandas as pd
import streamlit as st

from persona_engine import explore, kpis
from persona_engine.explore import ChartData, Comparison, CustomerFilter, FilterOptions
from persona_engine.features import compute_customer_features, features_computed_at
from persona_engine.segments import BehaviourRules, assign_segments, load_rules
from persona_engine.store import Store
from ui import data

SESSION_CURSOR = "explorer_session_cursor"


@dataclass
class _SessionCursor:
    store: Store
    cursor: duckdb.DuckDBPyConnection
    lock: threading.Lock = field(default_factory=threading.Lock)
    personas: str = ""  # the personas' fingerprint the engine's cached results were made with


@contextmanager
def engine_cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """This browser session's explorer cursor, held for the duration of one engine call."""
    store = data.store()
    held = st.session_state.get(SESSION_CURSOR)
    if not isinstance(held, _SessionCursor) or held.store is not store:  # first use, or another shop file
        held = _SessionCursor(store, store.connection.cursor())
        st.session_state[SESSION_CURSOR] = held
    with held.lock:
        yield held.cursor


# Chart name -> engine function taking (cursor, filter); the only names `chart` accepts.
_CHARTS: dict[str, Callable[[duckdb.DuckDBPyConnection, CustomerFilter], ChartData]] = {
    "summary": explore.audience_summary,
    "rfm_grid": explore.rfm_grid,
    "rfm_groups": explore.rfm_groups,
    "segments": explore.behaviour_segments,
    "funnel": explore.funnel,
    "category_mix": explore.category_mix,
    "weekday_hour": explore.weekday_hour,
    "new_vs_returning": explore.new_vs_returning_revenue,
    "cohorts": explore.cohort_retention,
}


def personas_signature() -> str:
    """A fingerprint of the personas and their members (kpis.personas_signature)."""
    return kpis.personas_signature(data.cursor())


def personas_key(*filters: CustomerFilter) -> str:
    """The personas' fingerprint when a filter selects personas, else '' (no scan).

    The engine's per-cursor cache knows features and consent, not persona members: when
    the members changed since this session's cursor last filtered on personas, its cached
    results are dropped before the next call.
    """
    if not any(f.persona_ids for f in filters):
        return ""
    signature = personas_signature()
    held = st.session_state.get(SESSION_CURSOR)
    if isinstance(held, _SessionCursor) and held.personas != signature:
        with held.lock:
            if held.personas:
                explore.clear_cache(held.cursor, ranges=False)  # ranges do not depend on personas
            held.personas = signature
    return signature


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=16)
def options(version: str, personas: str) -> FilterOptions:
    """What the filter bar offers; `personas` is kpis.personas_signature (names change)."""
    with engine_cursor() as cur:
        return explore.filter_options(cur)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def features_ready(version: str) -> datetime | None:
    """When customer features were last computed (None: never, the explorer is empty)."""
    return features_computed_at(data.cursor())


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=512)
def chart(version: str, personas: str, name: str, flt: CustomerFilter) -> ChartData:
    """One of the _CHARTS for this filter."""
    with engine_cursor() as cur:
        return _CHARTS[name](cur, flt)


def range_rollups_ready(flt: CustomerFilter, wait_s: float, hurry: bool = True, orders_only: bool = False) -> bool:
    """explore.range_rollups_ready (never cached: it changes while the range is built)."""
    with engine_cursor() as cur:
        return explore.range_rollups_ready(cur, flt, wait_s, hurry, orders_only)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=256)
def demographic(version: str, personas: str, flt: CustomerFilter, field: str) -> ChartData:
    """explore.demographic_breakdown: value, customers, share, too_small."""
    with engine_cursor() as cur:
        return explore.demographic_breakdown(cur, flt, field)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=256)
def order_mix(version: str, personas: str, flt: CustomerFilter, by: str) -> ChartData:
    """explore.order_mix by channel, device or payment_method."""
    with engine_cursor() as cur:
        return explore.order_mix(cur, flt, by)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=128)
def cart_abandonment(version: str, personas: str, flt: CustomerFilter, by: str) -> ChartData:
    """explore.cart_abandonment by session device or source."""
    with engine_cursor() as cur:
        return explore.cart_abandonment(cur, flt, by)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=64)
def best(version: str, personas: str, flt: CustomerFilter, by: str, n: int) -> ChartData:
    """explore.best_customers: BEST_COLUMNS, best first."""
    with engine_cursor() as cur:
        return explore.best_customers(cur, flt, by, n)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=32)
def comparison(version: str, personas: str, a: CustomerFilter, b: CustomerFilter) -> Comparison:
    """explore.compare of side a against side b."""
    with engine_cursor() as cur:
        return explore.compare(cur, a, b)


def audience_csv(store: Store, flt: CustomerFilter) -> bytes:
    """CSV (customer_id, email) of the filtered consenting customers, read now.

    Runs when the download button is clicked, on the button's own thread: it takes the
    store, not the page's cursor, and opens that thread's cursor.
    """
    chart_data = explore.audience_export(store.cursor(), flt)
    frame = chart_data.data if chart_data.available else pd.DataFrame(columns=list(explore.AUDIENCE_COLUMNS))
    return frame.to_csv(index=False).encode("utf-8")


def rules() -> BehaviourRules:
    """The shop's segment thresholds (one settings row: read fresh)."""
    return load_rules(data.cursor())


def save_rules(new_rules: BehaviourRules) -> int:
    """Recompute every customer's segments with new thresholds; customers written."""
    written = assign_segments(data.cursor(), new_rules)
    data.bump_data_version()
    return written


_log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False, max_entries=4)
def prepare_periods(version: str, first_day: date, last_day: date) -> threading.Thread:
    """Start building the usual periods' rollups (once per data version and process)."""
    store = data.store()

    def prepare() -> None:
        try:
            explore.prepare_periods(store.connection.cursor(), first_day, last_day)
        except Exception:  # a later click builds the period itself; nothing is lost
            _log.exception("preparing the explorer periods failed")

    # Not a daemon (said explicitly: a thread inherits the flag of Streamlit's script thread):
    # stopping the process waits for it rather than cutting the database's work short.
    thread = threading.Thread(target=prepare, name="explorer-periods", daemon=False)
    thread.start()
    return thread


def compute_features() -> int:
    """Compute customer features (first use of a shop imported without them)."""
    written = compute_customer_features(data.cursor())
    data.bump_data_version()
    return written
