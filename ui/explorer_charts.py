"""Explorer charts: the frame every chart shares (title, chart or a plain reason, the
customers behind it, a warning under 30), Plotly builders, and the words for data codes.

Builders take the engine's small aggregated frames (a few dozen rows) and return figures;
labels are translated on those rows only, never per customer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.basedatatypes import BaseTraceType

from persona_engine.explore import MIN_GROUP_SIZE, NO_SESSIONS, ChartData
from persona_engine.segments import INTEREST_PREFIX
from ui import charts, fmt
from ui.i18n import current_language, label, t

PALE = 0.35  # opacity of bars for groups too small to trust
SEQUENTIAL = "Blues"


def reason_text(reason: str | None) -> str:
    """A chart's unavailability reason code in words."""
    if reason == NO_SESSIONS:
        return t("common.no_session_data")  # the same words on every page
    return t(f"explorer.reason.{reason}")


def segment_label(code: str) -> str:
    """'loyal_buyers' -> 'Loyal buyers'; 'interest:Mode' -> 'Interest: Mode'."""
    if code.startswith(INTEREST_PREFIX):
        return t("explorer.interest_segment", category=code[len(INTEREST_PREFIX):])
    return label("segment", code)


def value_label(group: str | None, code: object) -> str:
    """Words for a value of a breakdown: translated codes, shop values as they are."""
    if code is None or (isinstance(code, float) and pd.isna(code)):
        return t("explorer.not_recorded")
    if group == "segment":
        return segment_label(str(code))
    return label(group, code) if group else str(code)


def labels(values: Sequence[object], group: str | None) -> list[str]:
    return [value_label(group, v) for v in values]


def figure(traces: Sequence[BaseTraceType], height: int = 340, **layout: Any) -> go.Figure:
    """A figure in the app's style, numbers written the way the reader's language writes
    them; `layout` adds to it (axes as dicts). Built in one go: each update_* call on a
    figure validates the layout again, several times the cost of the whole construction."""
    full = charts.base_layout(height)
    # The title is above the chart, in the page: a legend needs room at the top, nothing else.
    full["margin"] = {**full["margin"], "t": 40 if len(traces) > 1 else 10}
    full["separators"] = ",\u202f" if current_language() == "fr" else ".,"
    full.update(layout)
    return go.Figure(data=list(traces), layout=full)


def axis(title: str | None = None, **props: Any) -> dict[str, Any]:
    """An axis of a layout, with its title."""
    return {"title": {"text": title}, **props} if title is not None else dict(props)


def small_mark(n: int) -> str:
    """A count, with '*' when it is under MIN_GROUP_SIZE (cells of heatmaps); '–' for none."""
    if not n:
        return "–"
    return fmt.number(n) + ("*" if n < MIN_GROUP_SIZE else "")


def compact_money(value: float | None, currency: str | None) -> str:
    """Money short enough for a metric tile: €13.1M, 13,1 M€ (exact below a million)."""
    if value is None or pd.isna(value) or abs(value) < 1_000_000:
        return fmt.money(value, currency)
    return fmt.money(value / 1_000_000, currency, 1).replace(
        fmt.number(value / 1_000_000, 1), fmt.number(value / 1_000_000, 1) + t("explorer.million"))


def opacity(frame: pd.DataFrame) -> list[float] | float:
    if "too_small" not in frame:
        return 1.0
    return [PALE if small else 1.0 for small in frame["too_small"]]


def bars(
    names: list[str], values: pd.Series, *, value_title: str, text: list[str], hover: list[str],
    pale: list[float] | float = 1.0, horizontal: bool = False, percent: bool = True,
    height: int | None = None,
) -> go.Figure:
    """One series of bars; `text` is written on the bars, `hover` shown on hover."""
    ticks = {"tickformat": ".0%"} if percent else {}
    if horizontal:
        trace = go.Bar(y=names, x=values, orientation="h", text=text, hovertext=hover, hoverinfo="text",
                       marker={"color": charts.PALETTE[0], "opacity": pale}, textposition="auto")
        return figure([trace], height or max(220, 28 * len(names) + 90),
                      yaxis=axis(autorange="reversed", automargin=True),
                      xaxis=axis(value_title, rangemode="tozero", **ticks))
    trace = go.Bar(x=names, y=values, text=text, hovertext=hover, hoverinfo="text",
                   marker={"color": charts.PALETTE[0], "opacity": pale}, textposition="auto")
    return figure([trace], height or 340, yaxis=axis(value_title, rangemode="tozero", **ticks))


def paired_bars(
    names: list[str], first: pd.Series, second: pd.Series, *, first_name: str, second_name: str,
    value_title: str, hover_first: list[str], hover_second: list[str], horizontal: bool = True,
) -> go.Figure:
    """Two series side by side per value (two shares, or side A and side B)."""
    traces = []
    for i, (series, name, hover) in enumerate(
        ((first, first_name, hover_first), (second, second_name, hover_second))
    ):
        common = {"name": name, "hovertext": hover, "hoverinfo": "text", "marker_color": charts.PALETTE[i]}
        if horizontal:
            traces.append(go.Bar(y=names, x=series, orientation="h", **common))
        else:
            traces.append(go.Bar(x=names, y=series, **common))
    value_axis = axis(value_title, tickformat=".0%", rangemode="tozero")
    if horizontal:
        return figure(traces, max(240, 36 * len(names) + 110), barmode="group", xaxis=value_axis,
                      yaxis=axis(autorange="reversed", automargin=True))
    return figure(traces, 340, barmode="group", yaxis=value_axis)


def heatmap(
    z: Sequence[Sequence[float | None]], x: list[str], y: list[str], *, x_title: str, y_title: str, colour_title: str,
    text: list[list[str]] | None = None, hover: list[list[str]] | None = None, height: int = 380,
    zmax: float | None = None, percent: bool = False,
) -> go.Figure:
    """Cells coloured from 0; `text` written in the cells, `hover` on hover."""
    colorbar: dict[str, object] = {"title": {"text": colour_title}}
    if percent:
        colorbar["tickformat"] = ".0%"
    trace = go.Heatmap(
        z=z, x=x, y=y, colorscale=SEQUENTIAL, colorbar=colorbar,
        text=text, texttemplate="%{text}" if text is not None else None, textfont={"size": 11},
        hovertext=hover, hoverinfo="text" if hover is not None else None, xgap=1, ygap=1,
        zmin=0, zmax=zmax,
    )
    return figure([trace], height, xaxis=axis(x_title, type="category"),
                  yaxis=axis(y_title, type="category", autorange="reversed"))


def panel(
    title: str, chart_data: ChartData, build: Callable[[pd.DataFrame], go.Figure], key: str,
    *, basis: str | None = None, small_groups: bool = True,
) -> None:
    """A chart with its title, or why it cannot be drawn; then the customers behind it.

    `basis` words what the customers are when it is not simply "the filtered customers"
    (e.g. "customers with a visit"). Groups under MIN_GROUP_SIZE are drawn pale and said so.
    """
    st.markdown(f"**{title}**")
    if not chart_data.available:
        st.info(reason_text(chart_data.reason))
        return
    st.plotly_chart(build(chart_data.data), config=charts.PLOTLY_CONFIG, key=key)
    caption(chart_data, basis)
    frame = chart_data.data
    if small_groups and not chart_data.too_small and "too_small" in frame and bool(frame["too_small"].any()):
        st.caption(t("explorer.small_groups", min=MIN_GROUP_SIZE))


PENDING_HEIGHT = 300  # px: about a chart's, so that the page does not jump when it comes


def pending(title: str) -> None:
    """A chart's place while the data it reads is being prepared."""
    st.markdown(f"**{title}**")
    with st.container(border=True, height=PENDING_HEIGHT):
        st.caption(f":material/hourglass_top: {t('explorer.range_pending')}")


def caption(chart_data: ChartData, basis: str | None = None) -> None:
    """"Based on N customers" (with what they are), and a warning under MIN_GROUP_SIZE."""
    n = fmt.number(chart_data.n_customers)
    st.caption(t("explorer.based_on", n=n, basis=basis) if basis else t("common.customers_behind", n=n))
    if chart_data.too_small:
        st.warning(t("common.too_small", n=n))


def count_hover(frame: pd.DataFrame, names: list[str], share_column: str = "share") -> list[str]:
    """'Female: 1,234 customers (57.1%)' for each row."""
    return [
        t("explorer.hover_customers", value=name, n=fmt.number(n), share=fmt.percent(s))
        for name, n, s in zip(names, frame["customers"], frame[share_column], strict=True)
    ]


def percents(values: pd.Series, decimals: int = 1) -> list[str]:
    return [fmt.percent(float(v), decimals) if pd.notna(v) else "" for v in values]
