"""Cached loaders of the Impact and Actions pages, the persona panel, and the action writes.

The impact table costs about 2 s on a big shop, so it is cached on the shop's data version
and on a fingerprint of the personas (kpis.personas_signature): creating personas from a
clustering run or editing members makes the cached tables stale at once. Its key holds the
start date and targeted personas themselves, not the action id alone, so editing an action
needs no cache clearing. Actions are read fresh on every run (a few rows).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from persona_engine import actions as actions_engine
from persona_engine import kpis, playbook
from persona_engine.actions import Action
from persona_engine.errors import PersonaStudioError
from ui import data

# Chart span around the windows: enough weeks to see the trend the action interrupts.
CHART_MARGIN_WEEKS = 4
PERSONA_TREND_WEEKS = 26


def personas_signature() -> str:
    return kpis.personas_signature(data.cursor())


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=64)
def impact_rows(
    version: str,
    signature: str,
    starts_on: date,
    targeted: tuple[int, ...],
    window_days: int,
    control: str | int,
    metrics: tuple[str, ...],
    action_id: int | None,
) -> list[kpis.ImpactRow]:
    """kpis.impact_table for these arguments (every persona with members x metric)."""
    return kpis.impact_table(
        data.cursor(), starts_on, targeted, window_days=window_days, control=control,
        metrics=metrics, action_id=action_id,
    )


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=128)
def weekly(
    version: str,
    signature: str,
    persona_id: int | None,
    metric: str,
    start: date,
    end: date,
    exclude: tuple[int, ...] = (),
) -> pd.DataFrame:
    """kpis.weekly_series: week_start, value (NaN over an empty denominator), numerator,
    denominator, complete."""
    return kpis.weekly_series(data.cursor(), persona_id, metric, start, end, exclude_persona_ids=exclude)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=128)
def audience_size(version: str, signature: str, persona_id: int | None, exclude: tuple[int, ...] = ()) -> int:
    return kpis.audience_size(data.cursor(), persona_id, exclude)


def chart_span(windows: kpis.ImpactWindows, metric: str) -> tuple[date, date]:
    """First and last day (exclusive) of the weekly chart: the windows (with the retention
    cohort window when it is the metric) plus a few weeks each side, within the shop's data."""
    summary = data.shop_summary(data.data_version())
    first = windows.cohort_from if metric == "retention_rate" else windows.before_from
    start = first.date() - timedelta(weeks=CHART_MARGIN_WEEKS)
    end = windows.after_to.date() + timedelta(weeks=CHART_MARGIN_WEEKS)
    if summary.first_order is not None:
        start = max(start, summary.first_order)
    if summary.last_order is not None:
        end = min(end, summary.last_order + timedelta(days=1))
    return start, max(end, start + timedelta(days=1))


def trend_span(earliest_action: date | None = None) -> tuple[date, date] | None:
    """The last PERSONA_TREND_WEEKS weeks of the shop's data, stretched back to a few weeks
    before `earliest_action` so every action shows on the trend; None for an empty shop."""
    summary = data.shop_summary(data.data_version())
    if summary.last_order is None:
        return None
    end = summary.last_order + timedelta(days=1)
    start = end - timedelta(weeks=PERSONA_TREND_WEEKS)
    if earliest_action is not None:
        start = min(start, earliest_action - timedelta(weeks=CHART_MARGIN_WEEKS))
    if summary.first_order is not None:
        start = max(start, summary.first_order)
    return start, max(end, start + timedelta(days=1))


# --- Actions -------------------------------------------------------------------------------


def actions() -> list[Action]:
    """Every action, most recent start first (read fresh)."""
    return actions_engine.list_actions(data.cursor())


def actions_for_persona(persona_id: int) -> list[Action]:
    return actions_engine.list_actions(data.cursor(), persona_id)


def action(action_id: int) -> Action:
    return actions_engine.get_action(data.cursor(), action_id)


def planted_personas(archetypes: tuple[str, ...]) -> pd.DataFrame:
    """Personas whose members are mostly one of `archetypes` (sample shop only):
    persona_id, archetype, share. Empty on real data or before personas exist."""
    if not archetypes:
        return pd.DataFrame(columns=["persona_id", "archetype", "share"])
    try:
        frame = kpis.persona_archetypes(data.cursor())
    except PersonaStudioError:
        return pd.DataFrame(columns=["persona_id", "archetype", "share"])
    return frame[frame["archetype"].isin(list(archetypes))].reset_index(drop=True)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=64)
def suggestions(version: str, signature: str, persona_id: int, language: str) -> list[playbook.Suggestion]:
    """Plays of the playbook that fit the persona, strongest first, in `language`."""
    return playbook.suggestions_for_persona(data.cursor(), persona_id, language)
