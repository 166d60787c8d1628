"""The Impact page's widgets: what to measure (an action, or a date and targeted personas),
the window, the metrics, the control, and the persona and metric of the detail.

Widget keys are stable (tests drive them); the action and the window are bound to the URL,
so a manager can share the link to one action's impact (?impact_action=3&impact_window=30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from persona_engine.actions import Action
from persona_engine.kpis import (
    DEFAULT_METRICS,
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    METRICS,
    MIN_WINDOW_DAYS,
)
from ui.i18n import current_language, t
from ui.impact_view import metric_name, persona_label

UNTARGETED = "untargeted"


@dataclass(frozen=True)
class Subject:
    """What the table measures: a start date, the targeted personas, the action if any."""

    starts_on: date
    targeted: tuple[int, ...]
    action: Action | None


def persona_names(personas: pd.DataFrame) -> dict[int, str]:
    """persona_id -> "Name – Nickname" (list_personas columns in)."""
    return {int(r.persona_id): persona_label(r.name, r.nickname or None) for r in personas.itertuples()}


def pick_subject(actions: list[Action], names: dict[int, str], default_date: date | None) -> Subject | None:
    """An action, or a bare date with the personas taken as targeted; None until complete."""
    st.session_state.setdefault("impact_source", "action" if actions else "date")
    # Option labels are fixed at render time (AppTest and reruns call format_func later,
    # outside the session's language).
    sources = {s: t(f"impact.source_{s}") for s in ("action", "date")}
    source = st.segmented_control(t("impact.source"), list(sources), key="impact_source", required=True,
                                  format_func=sources.__getitem__)
    if source == "action":
        if not actions:
            st.info(t("impact.no_actions"))
            return None
        by_id = {a.action_id: a for a in actions}
        if st.session_state.get("impact_action", actions[0].action_id) not in by_id:
            del st.session_state["impact_action"]  # deleted since it was picked
        picked = st.selectbox(t("impact.action"), list(by_id), key="impact_action", bind="query-params",
                              format_func=lambda i: action_option(by_id[i]))
        action = by_id[int(picked)]
        return Subject(action.starts_on, tuple(action.persona_ids), action)
    left, right = st.columns([1, 2])
    st.session_state.setdefault("impact_date", default_date)
    starts_on = left.date_input(t("impact.date"), key="impact_date", help=t("impact.date_help"),
                                format="DD/MM/YYYY" if current_language() == "fr" else "YYYY/MM/DD")
    targeted = right.multiselect(t("impact.targeted"), list(names), key="impact_targeted",
                                 format_func=lambda i: names.get(i, "?"), help=t("impact.targeted_help"))
    if not isinstance(starts_on, date):
        return None
    return Subject(starts_on, tuple(int(p) for p in targeted), None)


def action_option(action: Action) -> str:
    """How an action reads in the picker, and in the URL (?impact_action=...): the id keeps
    two actions of the same name and date apart; no translated words, so a shared link
    works in either language."""
    return f"#{action.action_id} {action.name} · {action.starts_on.isoformat()}"


def pick_window_and_metrics() -> tuple[int, tuple[str, ...]]:
    st.session_state.setdefault("impact_metrics", list(DEFAULT_METRICS))
    left, right = st.columns([1, 2])
    # No session-state default here: it would override a window given in the URL.
    window = left.slider(t("impact.window"), MIN_WINDOW_DAYS, MAX_WINDOW_DAYS, value=DEFAULT_WINDOW_DAYS,
                         key="impact_window", help=t("impact.window_help"), bind="query-params")
    names = {m: metric_name(m) for m in METRICS}
    metrics = right.multiselect(t("impact.metrics"), list(names), key="impact_metrics", format_func=names.__getitem__)
    return int(window), tuple(m for m in METRICS if m in metrics)  # the table's order, whatever the clicks


def pick_control(names: dict[int, str], targeted: tuple[int, ...]) -> str | int:
    """"untargeted" or an untargeted persona's id."""
    options: dict[str | int, str] = {UNTARGETED: t("impact.control_untargeted")}
    options.update({p: n for p, n in names.items() if p not in targeted})
    if st.session_state.get("impact_control") not in options:
        st.session_state["impact_control"] = UNTARGETED  # the chosen persona became targeted
    return st.selectbox(t("impact.control"), list(options), key="impact_control", help=t("impact.control_help"),
                        format_func=options.__getitem__)


def pick_detail(names: dict[int, str], persona_ids: list[int], targeted: tuple[int, ...],
                metrics: tuple[str, ...]) -> tuple[int, str]:
    """The persona and metric of the summary and chart; a targeted persona first."""
    first = next((p for p in persona_ids if p in targeted), persona_ids[0])
    if st.session_state.get("impact_persona") not in persona_ids:
        st.session_state["impact_persona"] = first
    if st.session_state.get("impact_metric") not in metrics:
        st.session_state["impact_metric"] = metrics[0]
    left, right = st.columns(2)
    persona_id = left.selectbox(t("impact.detail_persona"), persona_ids, key="impact_persona",
                                format_func=lambda p: names.get(int(p), "?"))
    labels = {m: metric_name(m) for m in metrics}
    metric = right.selectbox(t("impact.detail_metric"), list(labels), key="impact_metric",
                             format_func=labels.__getitem__)
    return int(persona_id), str(metric)


def chart_control(control: str | int, persona_id: int, targeted: tuple[int, ...]) -> tuple[int | None, tuple[int, ...]]:
    """(control persona id or None, personas to leave out) of the chart's comparison line.

    Like the table's rows: the untargeted control never holds the persona itself; when the
    chosen persona is the control persona, it is compared with the untargeted customers.
    """
    if control != UNTARGETED and int(control) != persona_id:
        return int(control), ()
    return None, tuple(sorted({*targeted, persona_id}))


def default_date(last_order: date | None) -> date | None:
    """A start date with a full 30-day window after it inside the data."""
    return None if last_order is None else last_order - timedelta(days=DEFAULT_WINDOW_DAYS)
