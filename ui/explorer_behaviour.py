"""Explorer, behaviour view: RFM grid and groups, segments, funnel, cart abandonment, order
mixes, categories, weekday x hour, new vs returning revenue, cohort retention."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from persona_engine.explore import MIN_GROUP_SIZE, ORDER_MIX_BY, SESSION_BREAKDOWNS, CustomerFilter
from ui import charts, explorer_data, fmt
from ui.explorer_charts import (
    axis,
    bars,
    count_hover,
    figure,
    heatmap,
    labels,
    opacity,
    paired_bars,
    panel,
    pending,
    percents,
    small_mark,
)
from ui.i18n import label, t

MIX_GROUPS = {"channel": "channel", "device": "device", "payment_method": "payment_method"}


def _rfm_grid(frame: pd.DataFrame, currency: str) -> go.Figure:
    # One dict per cell: a lookup per value in an indexed frame costs more than the chart.
    cells = {(int(row["r_score"]), int(row["f_score"])): row for row in frame.to_dict("records")}
    rows, cols = [5, 4, 3, 2, 1], [1, 2, 3, 4, 5]
    z = [[float(cells[(r, f)]["revenue"]) for f in cols] for r in rows]
    text = [[f"{small_mark(cells[(r, f)]['customers'])}<br>{wrap(label('rfm_group', cells[(r, f)]['rfm_group']))}"
             for f in cols] for r in rows]
    hover = [[t("explorer.rfm_cell_hover", r=r, f=f, group=label("rfm_group", cells[(r, f)]["rfm_group"]),
                n=fmt.number(cells[(r, f)]["customers"]), revenue=fmt.money(cells[(r, f)]["revenue"], currency),
                share=fmt.percent(cells[(r, f)]["revenue_share"])) for f in cols] for r in rows]
    return heatmap(z, [str(c) for c in cols], [str(r) for r in rows], x_title=t("explorer.rfm_f_axis"),
                   y_title=t("explorer.rfm_r_axis"), colour_title=t("explorer.revenue_in", currency=currency),
                   text=text, hover=hover, height=460)


def wrap(text: str, width: int = 11) -> str:
    """Break a group name into short lines so that it fits in a grid cell."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "<br>".join(lines)


def _rfm_groups(frame: pd.DataFrame) -> go.Figure:
    names = labels(list(frame["rfm_group"]), "rfm_group")
    hover = [t("explorer.group_hover", value=n, customers=fmt.number(c), share=fmt.percent(s), revenue=fmt.percent(r))
             for n, c, s, r in zip(names, frame["customers"], frame["share"], frame["revenue_share"], strict=True)]
    return paired_bars(names, frame["share"], frame["revenue_share"], first_name=t("explorer.share_of_customers"),
                       second_name=t("explorer.share_of_revenue"), value_title=t("explorer.share"),
                       hover_first=hover, hover_second=hover)


def _segments(frame: pd.DataFrame) -> go.Figure:
    names = labels(list(frame["segment"]), "segment")
    return bars(names, frame["share"], value_title=t("explorer.share_of_customers"),
                text=[fmt.number(n) for n in frame["customers"]], hover=count_hover(frame, names),
                pale=opacity(frame), horizontal=True)


def _funnel(frame: pd.DataFrame) -> go.Figure:
    names = labels(list(frame["step"]), "funnel_step")
    text = [f"{fmt.number(n)} ({fmt.percent(s)})" for n, s in zip(frame["sessions"], frame["share_of_sessions"], strict=True)]
    hover = [t("explorer.funnel_text", step_name=name, n=fmt.number(n), share=fmt.percent(s), step=fmt.percent(r))
             for name, n, s, r in zip(names, frame["sessions"], frame["share_of_sessions"], frame["step_rate"], strict=True)]
    # Wide steps hold their label; narrow ones get it beside them.
    inside = ["inside" if share >= 0.5 else "outside" for share in frame["share_of_sessions"].fillna(0)]
    trace = go.Funnel(y=names, x=frame["sessions"], text=text, textinfo="text", textposition=inside,
                      hoverinfo="text", hovertext=hover, marker={"color": charts.PALETTE[0]})
    return figure([trace], 340, xaxis=axis(t("explorer.sessions_axis")))


def _cart(frame: pd.DataFrame, by: str) -> go.Figure:
    names = labels(list(frame["value"]), by)
    hover = [t("explorer.cart_hover", value=n, rate=fmt.percent(r), abandoned=fmt.number(a), carts=fmt.number(c),
               customers=fmt.number(k))
             for n, r, a, c, k in zip(names, frame["abandonment_rate"], frame["abandoned_sessions"],
                                      frame["cart_sessions"], frame["customers"], strict=True)]
    return bars(names, frame["abandonment_rate"], value_title=t("explorer.abandonment_rate"),
                text=percents(frame["abandonment_rate"]), hover=hover, pale=opacity(frame), horizontal=True)


def _mix(frame: pd.DataFrame, by: str, currency: str) -> go.Figure:
    names = labels(list(frame["value"]), MIX_GROUPS[by])
    hover = [t("explorer.mix_hover", value=n, orders=fmt.number(o), revenue=fmt.money(r, currency),
               customers=fmt.number(c)) for n, o, r, c in
             zip(names, frame["orders"], frame["revenue"], frame["customers"], strict=True)]
    return paired_bars(names, frame["revenue_share"], frame["order_share"], first_name=t("explorer.share_of_revenue"),
                       second_name=t("explorer.share_of_orders"), value_title=t("explorer.share"),
                       hover_first=hover, hover_second=hover)


def _categories(frame: pd.DataFrame, currency: str) -> go.Figure:
    names = labels(list(frame["category"]), None)
    hover = [t("explorer.category_hover", value=n, revenue=fmt.money(r, currency), share=fmt.percent(s),
               customers=fmt.number(c)) for n, r, s, c in
             zip(names, frame["revenue"], frame["revenue_share"], frame["customers"], strict=True)]
    return bars(names, frame["revenue_share"], value_title=t("explorer.share_of_revenue"),
                text=percents(frame["revenue_share"]), hover=hover, pale=opacity(frame), horizontal=True)


def _weekday_hour(frame: pd.DataFrame) -> go.Figure:
    grid = frame.pivot(index="weekday", columns="hour", values="orders").reindex(index=range(7), columns=range(24))
    days = [label("weekday", d) for d in range(7)]
    z = [[int(v) for v in row] for row in grid.fillna(0).to_numpy()]
    hover = [[t("explorer.weekday_hover", day=days[d], hour=h, n=fmt.number(z[d][h])) for h in range(24)]
             for d in range(7)]
    return heatmap(z, [f"{h:02d}" for h in range(24)], days, x_title=t("explorer.hour_axis"), y_title="",
                   colour_title=t("explorer.orders"), hover=hover, height=330)


def _new_returning(frame: pd.DataFrame, currency: str) -> go.Figure:
    months = [m.strftime("%Y-%m") for m in pd.to_datetime(frame["month"])]
    traces = []
    for i, kind in enumerate(("new", "returning")):
        hover = [t(f"explorer.{kind}_hover", month=m, revenue=fmt.money(r, currency), n=fmt.number(c))
                 for m, r, c in zip(months, frame[f"{kind}_revenue"], frame[f"{kind}_customers"], strict=True)]
        traces.append(go.Bar(x=months, y=frame[f"{kind}_revenue"], name=t(f"explorer.{kind}_customers"),
                             hovertext=hover, hoverinfo="text", marker_color=charts.PALETTE[i]))
    return figure(traces, 360, barmode="stack",
                  legend={**charts.base_layout()["legend"], "traceorder": "normal"},
                  xaxis=axis(t("explorer.month_axis"), type="category"),
                  yaxis=axis(t("explorer.revenue_in", currency=currency), rangemode="tozero"))


def _cohorts(frame: pd.DataFrame) -> go.Figure:
    """Cohorts down, months after the first order across. Month 0 (always 100%) is left out:
    it would take the whole colour scale; the cohort's size is in its row label instead."""
    frame = frame.assign(cohort_name=[c.strftime("%Y-%m") for c in pd.to_datetime(frame["cohort"])])
    sizes = frame.drop_duplicates("cohort_name").set_index("cohort_name")["cohort_size"]
    grid = frame[frame["months_since"] > 0].pivot(index="cohort_name", columns="months_since", values="retention")
    grid = grid.reindex(list(sizes.index))
    rows = [f"{c} ({fmt.number(sizes[c])}{'*' if sizes[c] < MIN_GROUP_SIZE else ''})" for c in grid.index]
    z = [[None if pd.isna(v) else float(v) for v in row] for row in grid.to_numpy()]
    text = [[fmt.percent(v, 0) if v is not None else "" for v in row] for row in z]
    hover = [[t("explorer.cohort_hover", cohort=c, months=m, share=fmt.percent(v)) if v is not None else ""
              for m, v in zip(grid.columns, row, strict=True)] for c, row in zip(grid.index, z, strict=True)]
    top = max((v for row in z for v in row if v is not None), default=1.0)
    return heatmap(z, [str(m) for m in grid.columns], rows, x_title=t("explorer.months_since_axis"),
                   y_title=t("explorer.cohort_axis"), colour_title=t("explorer.retention"), text=text,
                   hover=hover, height=max(360, 22 * len(rows) + 120), zmax=top, percent=True)


# A new date range's rollups are built by a thread of their own, its order rollups first.
# Until they are there, the charts that read them keep their place: the others are drawn
# first, then the page waits ROLLUPS_WAIT_S at most for the rollups (enough on a small
# shop) and draws the rest, or says it is coming and polls every ROLLUPS_POLL_S seconds to
# redraw itself: once when the order rollups are there, again with the session rollups.
ROLLUPS_WAIT_S = 0.25
ROLLUPS_POLL_S = 0.3
ORDERS, SESSIONS = "orders", "sessions"  # the rollups a chart reads


@st.fragment(run_every=ROLLUPS_POLL_S)
def _when_rollups_ready(flt: CustomerFilter, orders_waiting: bool) -> None:
    """Redraw the whole page once more of the date range's rollups are built: all of them,
    or its order rollups when charts wait for them."""
    if explorer_data.range_rollups_ready(flt, 0.0) or (
        orders_waiting and explorer_data.range_rollups_ready(flt, 0.0, orders_only=True)
    ):
        st.rerun()


def _rollups_ready(flt: CustomerFilter, wait_s: float, hurry: bool) -> dict[str, bool]:
    """Which of the date range's rollups (ORDERS, SESSIONS) the charts can read, after
    waiting `wait_s` at most for all of them (explore.range_rollups_ready)."""
    every = explorer_data.range_rollups_ready(flt, wait_s, hurry)
    return {SESSIONS: every, ORDERS: every or explorer_data.range_rollups_ready(flt, 0.0, hurry, orders_only=True)}


def behaviour_view(version: str, personas: str, flt: CustomerFilter, currency: str | None) -> None:
    money = currency or ""
    ready = _rollups_ready(flt, 0.0, hurry=False)
    kept: list[tuple[DeltaGenerator, str, Callable[[], None]]] = []

    def place(title: str, rollups: str, draw: Callable[[], None]) -> None:
        """Draw a chart reading the range's rollups (ORDERS or SESSIONS), or keep its place
        until the end: it says the chart is coming, so that nothing moves while the page
        runs."""
        if ready[rollups]:
            draw()
        else:
            slot = st.empty()
            with slot.container():
                pending(title)
            kept.append((slot, rollups, draw))

    def show(name: str, title: str, build: Callable[[pd.DataFrame], go.Figure], basis: str | None = None,
             small_groups: bool = True, rollups: str | None = None) -> None:
        def draw() -> None:
            panel(t(title), explorer_data.chart(version, personas, name, flt), build, f"explorer_{name}",
                  basis=t(basis) if basis else None, small_groups=small_groups)

        if rollups:
            place(t(title), rollups, draw)
        else:
            draw()

    def cart(by: str) -> None:
        panel(t(f"explorer.cart_{by}_title"), explorer_data.cart_abandonment(version, personas, flt, by),
              partial(_cart, by=by), f"explorer_cart_{by}", basis=t("explorer.basis_carts"))

    def mix(by: str) -> None:
        panel(t(f"explorer.mix_{by}_title"), explorer_data.order_mix(version, personas, flt, by),
              partial(_mix, by=by, currency=money), f"explorer_mix_{by}", basis=t("explorer.basis_buyers"))

    left, right = st.columns([3, 2])
    with left:
        show("rfm_grid", "explorer.rfm_grid_title", lambda f: _rfm_grid(f, money), "explorer.basis_buyers",
             small_groups=False)
        st.caption(t("explorer.small_cells", min=MIN_GROUP_SIZE))
    with right:
        show("rfm_groups", "explorer.rfm_groups_title", _rfm_groups, "explorer.basis_buyers")
    left, right = st.columns(2)
    with left:
        show("segments", "explorer.segments_title", _segments)
        st.caption(t("explorer.segments_note"))
    with right:
        show("funnel", "explorer.funnel_title", _funnel, "explorer.basis_visitors", rollups=SESSIONS)
    for column, by in zip(st.columns(len(SESSION_BREAKDOWNS)), SESSION_BREAKDOWNS, strict=True):
        with column:
            place(t(f"explorer.cart_{by}_title"), SESSIONS, partial(cart, by))
    for column, by in zip(st.columns(len(ORDER_MIX_BY)), ORDER_MIX_BY, strict=True):
        with column:
            place(t(f"explorer.mix_{by}_title"), ORDERS, partial(mix, by))
    left, right = st.columns(2)
    with left:
        show("category_mix", "explorer.category_title", lambda f: _categories(f, money), "explorer.basis_buyers",
             rollups=ORDERS)
    with right:
        show("weekday_hour", "explorer.weekday_hour_title", _weekday_hour, "explorer.basis_buyers", rollups=ORDERS)
    show("new_vs_returning", "explorer.new_returning_title", lambda f: _new_returning(f, money),
         "explorer.basis_buyers")
    show("cohorts", "explorer.cohorts_title", _cohorts, "explorer.basis_cohorts", small_groups=False)
    st.caption(t("explorer.cohort_note", min=MIN_GROUP_SIZE))
    if flt.has_dates:
        st.caption(t("explorer.months_whole"))
    if kept:
        ready = _rollups_ready(flt, ROLLUPS_WAIT_S, hurry=True)
        for slot, rollups, draw in kept:
            if ready[rollups]:
                with slot.container():
                    draw()
        if not ready[SESSIONS]:
            _when_rollups_ready(flt, orders_waiting=not ready[ORDERS])
