"""The explorer's filter bar and view picker, kept in the page's URL so a view can be shared.

Streamlit's `bind="query-params"` stores a multiselect's displayed labels in the URL, and
those are translated: a link made in French would not open in English, and a link naming
codes (`device=mobile`) would be dropped. So the URL holds data codes, written here with
st.query_params: `?country=France&device=mobile&rfm=champions&start=2025-01-01&view=behaviour`
(repeated parameters for several values). A fresh page load seeds the widgets from the URL;
afterwards the widgets lead and the URL follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st

from persona_engine.explore import PERIODS, CustomerFilter, FilterOptions, period_range
from ui.explorer_charts import segment_label
from ui.i18n import current_language, label, t


@dataclass(frozen=True)
class FilterParam:
    name: str  # URL parameter
    key: str  # widget key (what tests drive)
    field: str  # CustomerFilter field
    group: str | None  # catalogue group of its codes; None = shop values shown as they are


FILTERS: tuple[FilterParam, ...] = (
    FilterParam("country", "explorer_country", "countries", None),
    FilterParam("region", "explorer_region", "regions", None),
    FilterParam("channel", "explorer_channel", "acquisition_channels", "source"),
    FilterParam("device", "explorer_device", "devices", "device"),
    FilterParam("rfm", "explorer_rfm", "rfm_groups", "rfm_group"),
    FilterParam("segment", "explorer_segment", "segments", "segment"),
    FilterParam("persona", "explorer_persona", "persona_ids", None),
)
DATES_KEY = "explorer_dates"
# The date range a link opened with is the date widget's default for the whole session (a
# default that changed between runs would make a new widget); Clear filters empties it.
DATES_SEED = "explorer_dates_seed"
VIEW_KEY = "explorer_view"
VIEW_PARAM = "view"
VIEWS: tuple[str, ...] = ("demographics", "behaviour", "compare", "customers")


def _choices(options: FilterOptions, param: FilterParam) -> list[Any]:
    if param.field == "persona_ids":
        return [pid for pid, _ in options.personas]
    return list(getattr(options, param.field))


def _format(param: FilterParam, options: FilterOptions) -> Any:
    if param.field == "persona_ids":
        names = dict(options.personas)
        return lambda pid: names.get(pid, f"#{pid}")
    if param.group == "segment":
        return segment_label
    if param.group:
        group = param.group
        return lambda code: label(group, code)
    return str


def _url_dates(options: FilterOptions) -> tuple[date, ...]:
    """start/end of the URL, within the data's days; one side missing = the data's edge."""
    picked: list[date | None] = []
    for name in ("start", "end"):
        try:
            picked.append(date.fromisoformat(st.query_params.get(name, "")))
        except ValueError:
            picked.append(None)
    if picked == [None, None] or options.first_day is None or options.last_day is None:
        return ()
    start = max(picked[0] or options.first_day, options.first_day)
    end = min(picked[1] or options.last_day, options.last_day)
    return (start, end) if start <= end else ()


def _seed(options: FilterOptions) -> None:
    """Widget values from the URL on the page's first run; stale values dropped later."""
    for param in FILTERS:
        allowed = _choices(options, param)
        if param.key not in st.session_state:
            wanted = set(st.query_params.get_all(param.name))
            st.session_state[param.key] = [v for v in allowed if str(v) in wanted]
        elif any(v not in allowed for v in st.session_state[param.key]):
            # A new import can remove a country or a persona the session had picked.
            st.session_state[param.key] = [v for v in st.session_state[param.key] if v in allowed]
    if DATES_SEED not in st.session_state:
        st.session_state[DATES_SEED] = _url_dates(options)
    if VIEW_KEY not in st.session_state:
        view = st.query_params.get(VIEW_PARAM, VIEWS[0])
        st.session_state[VIEW_KEY] = view if view in VIEWS else VIEWS[0]


PERIOD_KEY = "explorer_period"


def _apply_period(first_day: date, last_day: date) -> None:
    """A period picked: it becomes the date range (a new widget default), then the pick is
    forgotten so that the same period can be picked again after the dates changed."""
    days = st.session_state.get(PERIOD_KEY)
    if days:
        picked = period_range(int(days), first_day, last_day)
        st.session_state[DATES_SEED] = picked
        st.session_state[DATES_KEY] = picked  # the widget in the browser shows it too
    st.session_state[PERIOD_KEY] = None


def _clear() -> None:
    for param in FILTERS:
        st.session_state[param.key] = []
    st.session_state[DATES_SEED] = ()
    st.session_state.pop(DATES_KEY, None)  # a new default: the widget starts again, empty


def _write_url(wanted: dict[str, list[str]]) -> None:
    """Set the page's URL parameters that differ from `wanted` (others are left alone)."""
    for name, values in wanted.items():
        if st.query_params.get_all(name) == values:
            continue
        if values:
            st.query_params[name] = values
        elif name in st.query_params:
            del st.query_params[name]


def filter_bar(options: FilterOptions) -> CustomerFilter | None:
    """Draw the bar; return its CustomerFilter (None while a date range is half picked)."""
    _seed(options)
    visible = [p for p in FILTERS if p.field != "persona_ids" or options.personas]
    with st.container(border=True):
        first, *rest = st.columns([2, 1.5, 1.5])  # the date range needs room for two dates
        range_picked = first.date_input(
            t("explorer.dates"), value=list(st.session_state[DATES_SEED]), min_value=options.first_day, max_value=options.last_day,
            key=DATES_KEY, help=t("explorer.dates_help"), persist_state="session",
            format="DD/MM/YYYY" if current_language() == "fr" else "YYYY/MM/DD",
            disabled=options.first_day is None,
        )
        if options.first_day is not None and options.last_day is not None:
            first.pills(
                t("explorer.periods"), list(PERIODS), key=PERIOD_KEY, format_func=lambda d: t(f"explorer.period_{d}"),
                on_change=_apply_period, args=(options.first_day, options.last_day), label_visibility="collapsed",
            )
        columns = rest + list(st.columns(len(visible) - len(rest)))
        picked: dict[str, list[Any]] = {}
        for param, column in zip(visible, columns, strict=False):
            picked[param.field] = column.multiselect(
                t(f"explorer.filter_{param.name}"), _choices(options, param),
                format_func=_format(param, options), key=param.key, placeholder=t("explorer.everyone"),
                help=t(f"explorer.filter_{param.name}_help"), persist_state="session",
            )
        st.button(t("explorer.clear_filters"), key="explorer_clear", on_click=_clear, type="tertiary",
                  icon=":material/filter_alt_off:")
    days: tuple[date, ...] = tuple(range_picked) if isinstance(range_picked, (tuple, list)) else ()
    wanted = {p.name: [str(v) for v in picked.get(p.field, [])] for p in FILTERS}
    wanted["start"] = [days[0].isoformat()] if len(days) == 2 else []
    wanted["end"] = [days[1].isoformat()] if len(days) == 2 else []
    _write_url(wanted)
    if len(days) == 1:
        st.info(t("explorer.pick_end_date"))
        return None
    return CustomerFilter(
        start=days[0] if days else None, end=days[1] if days else None,
        **{field: tuple(values) for field, values in picked.items()},
    )


def view_picker() -> str:
    """Which view the page computes: only that view's queries run."""
    view = st.segmented_control(
        t("explorer.view"), VIEWS, format_func=lambda v: t(f"explorer.view_{v}"), key=VIEW_KEY,
        required=True, persist_state="session", label_visibility="collapsed",
    )
    view = view if view in VIEWS else VIEWS[0]
    _write_url({VIEW_PARAM: [] if view == VIEWS[0] else [view]})
    return str(view)
