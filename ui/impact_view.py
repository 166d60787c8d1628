"""How the Impact page shows an impact table: formatted numbers, coloured intervals, the
plain-words summary and the weekly chart with the action's windows.

Rates print as percentages and their changes in percentage points; amounts in the shop's
currency. A value over an empty denominator prints "not available", never 0. A cell is
coloured only when its 95% interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from html import escape
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pandas.io.formats.style import Styler

from persona_engine.kpis import METRICS, ImpactRow, ImpactSummary, ImpactWindows
from persona_engine.safe_text import plain_markdown
from ui import charts, fmt
from ui.i18n import t

UP_STYLE = "background-color: rgba(18, 184, 134, 0.22)"
DOWN_STYLE = "background-color: rgba(250, 82, 82, 0.20)"
TABLE_COLUMNS = ("persona", "targeted", "metric", "before", "after", "change", "change_ci",
                 "did", "did_ci", "note", "did_p_holm", "sample")


def persona_label(name: str, nickname: str | None) -> str:
    return f"{name} – {nickname}" if nickname else name


def metric_name(metric: str) -> str:
    return t(f"impact.metric_{metric}")


def value_kind(metric: str) -> str:
    return METRICS[metric].value_kind


# --- Numbers -------------------------------------------------------------------------------


def value_text(value: float | None, kind: str, currency: str | None) -> str:
    """A KPI value; "not available" when undefined (empty denominator)."""
    if value is None:
        return t("common.not_available")
    if kind == "rate":
        return fmt.percent(value, 1)
    if kind == "money":
        return fmt.money(value, currency, 2)
    return fmt.number(value, 2)


def _magnitude(value: float, kind: str, currency: str | None, unit: bool) -> str:
    if kind == "rate":
        number = fmt.number(abs(value) * 100, 1)
        return t("impact.points", value=number) if unit else number
    if kind == "money":
        return fmt.money(abs(value), currency, 2)
    return fmt.number(abs(value), 2)


def change_text(value: float | None, kind: str, currency: str | None, unit: bool = True) -> str:
    """A change with its sign: "+0.5 pt" for rates, "+€3.20" for amounts."""
    if value is None:
        return t("common.not_available")
    sign = "+" if value > 0 else ("-" if value < 0 else "")
    return sign + _magnitude(value, kind, currency, unit)


def interval_text(low: float | None, high: float | None, kind: str, currency: str | None) -> str:
    if low is None or high is None:
        return t("common.not_available")
    return t("impact.interval",
             low=change_text(low, kind, currency, unit=False), high=change_text(high, kind, currency, unit=False))


def excludes_zero(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and (low > 0 or high < 0)


# --- Table ---------------------------------------------------------------------------------


def _note(row: ImpactRow) -> str:
    notes = []
    if row.small_sample:
        notes.append(t("impact.note_small"))
    elif row.did_small_sample and row.did is not None:
        notes.append(t("impact.note_small_control"))
    if not row.window_complete:
        notes.append(t("impact.note_window_cut"))
    return " · ".join(notes)


def ordered(rows: Sequence[ImpactRow]) -> list[ImpactRow]:
    """Targeted personas first, then the others, each in the table's persona order."""
    return sorted(rows, key=lambda r: not r.targeted)


def table_frame(rows: Sequence[ImpactRow], currency: str | None) -> pd.DataFrame:
    """One display row per persona x metric, every cell text (columns TABLE_COLUMNS)."""
    out = []
    for r in ordered(rows):
        kind = value_kind(r.metric)
        out.append({
            "persona": persona_label(r.persona_name, r.persona_nickname),
            "targeted": t("impact.yes") if r.targeted else "",
            "metric": metric_name(r.metric),
            "before": value_text(r.before, kind, currency),
            "after": value_text(r.after, kind, currency),
            "change": change_text(r.change, kind, currency),
            "change_ci": interval_text(r.change_low, r.change_high, kind, currency),
            "did": "" if r.control_before is None else change_text(r.did, kind, currency),
            "did_ci": "" if r.control_before is None else interval_text(r.did_low, r.did_high, kind, currency),
            "did_p_holm": "" if r.did_p_value_holm is None else fmt.number(r.did_p_value_holm, 3),
            "sample": t("impact.sample_sizes", before=fmt.number(r.n_before), after=fmt.number(r.n_after),
                        units=t(f"impact.units_{r.units}")),
            "note": _note(r),
        })
    return pd.DataFrame(out, columns=list(TABLE_COLUMNS))


def table_styler(rows: Sequence[ImpactRow], frame: pd.DataFrame) -> Styler:
    """The display frame with coloured cells where an interval excludes 0 (green up, red
    down), translated headers; nothing else is coloured."""
    sorted_rows = ordered(rows)
    headers = {c: t(f"impact.col_{c}") for c in frame.columns}
    shown = frame.rename(columns=headers)

    def colours(_: pd.DataFrame) -> pd.DataFrame:
        styles = pd.DataFrame("", index=shown.index, columns=shown.columns)
        for i, r in enumerate(sorted_rows):
            if excludes_zero(r.change_low, r.change_high):
                style = UP_STYLE if (r.change or 0) > 0 else DOWN_STYLE
                styles.loc[i, [headers["change"], headers["change_ci"]]] = style
            if excludes_zero(r.did_low, r.did_high):
                style = UP_STYLE if (r.did or 0) > 0 else DOWN_STYLE
                styles.loc[i, [headers["did"], headers["did_ci"]]] = style
        return styles

    return shown.style.apply(colours, axis=None)


def table_height(n_rows: int) -> int:
    """Pixels that show every row up to 24 (Streamlit's default stops at 10), then scroll."""
    return 38 + 35 * min(n_rows, 24)


# Pixel widths: the short numbers get narrow columns so most of the table fits a laptop
# screen; the rest scrolls sideways.
COLUMN_WIDTHS = {"persona": 200, "targeted": 65, "metric": 150, "before": 70, "after": 70, "change": 80,
                 "change_ci": 130, "did": 80, "did_ci": 130, "note": 120, "did_p_holm": 90, "sample": 170}


def table_columns() -> dict[str, Any]:
    return {t(f"impact.col_{c}"): st.column_config.TextColumn(width=w) for c, w in COLUMN_WIDTHS.items()}


# --- Plain-words summary -------------------------------------------------------------------


def summary_text(s: ImpactSummary, control_name: str, currency: str | None, comparisons: int) -> str:
    """One paragraph: how the metric moved for the persona, for the control, the DiD and how
    sure it is. Persona names are escaped (shown literally in Markdown)."""
    kind = s.value_kind
    persona = plain_markdown(s.persona_name)
    metric = metric_name(s.metric)
    if s.before is None or s.after is None:
        return t("impact.summary_not_available", metric=metric, persona=persona)
    values = {
        "metric": metric, "persona": persona,
        "before": value_text(s.before, kind, currency), "after": value_text(s.after, kind, currency),
        "change": change_text(s.change, kind, currency),
        "low": change_text(s.change_low, kind, currency, unit=False) if s.change_low is not None else "?",
        "high": change_text(s.change_high, kind, currency, unit=False) if s.change_high is not None else "?",
    }
    parts = [t(f"impact.summary_{s.direction}", **values)]
    if s.control_change is not None:
        direction = "flat" if not s.control_change else ("up" if s.control_change > 0 else "down")
        parts.append(t(f"impact.summary_control_{direction}", control=plain_markdown(control_name),
                       change=_magnitude(s.control_change, kind, currency, True)))
    text = "".join(parts) + "."
    if s.did is not None and s.did_low is not None and s.did_high is not None:
        verdict = "impact.summary_did_conclusive" if s.did_conclusive else "impact.summary_did_inconclusive"
        text += " " + t("impact.summary_did", did=change_text(s.did, kind, currency),
                        low=change_text(s.did_low, kind, currency, unit=False),
                        high=change_text(s.did_high, kind, currency, unit=False)) + " " + t(verdict)
        if s.did_conclusive and not s.did_conclusive_after_holm:
            text += " " + t("impact.summary_holm_lost", n=comparisons)
    if s.small_sample:
        text += " " + t("impact.summary_small")
    return text


# --- Weekly chart --------------------------------------------------------------------------


def _y(frame: pd.DataFrame, kind: str) -> pd.Series:
    return frame["value"] * 100 if kind == "rate" else frame["value"]


def weekly_chart(
    persona: pd.DataFrame,
    control: pd.DataFrame,
    windows: ImpactWindows,
    metric: str,
    persona_name: str,
    control_name: str,
    currency: str | None,
) -> go.Figure:
    """The persona's weekly metric and the control's beside it; the action's start as a
    vertical line; the before and after windows shaded. Points sit mid-week (a week runs
    Monday to Sunday); weeks cut by the chart's edges are drawn hollow. Names are escaped:
    Plotly reads a little HTML in legend text."""
    kind = value_kind(metric)
    fig = go.Figure()
    for frame, name, colour, dash in ((persona, persona_name, charts.PALETTE[0], "solid"),
                                      (control, control_name, charts.PALETTE[1], "dash")):
        x = pd.to_datetime(frame["week_start"]) + timedelta(days=3, hours=12)
        fig.add_trace(go.Scatter(
            x=x, y=_y(frame, kind), name=escape(name), mode="lines+markers", connectgaps=False,
            line={"color": colour, "dash": dash, "width": 2},
            marker={"symbol": ["circle" if c else "circle-open" for c in frame["complete"]], "size": 7},
            customdata=frame["week_start"].astype(str),
            hovertemplate=f"{t('impact.chart_week_of')} %{{customdata}}<br>%{{y:.2f}}<extra>%{{fullData.name}}</extra>",
        ))
    shades = ((windows.before_from, windows.start, "rgba(120, 130, 150, 0.12)", t("impact.chart_before")),
              (windows.start, windows.after_to, "rgba(76, 110, 245, 0.10)", t("impact.chart_after")))
    for x0, x1, colour, text in shades:
        fig.add_vrect(x0=x0, x1=x1, fillcolor=colour, line_width=0, layer="below")
        fig.add_annotation(x=x0 + (x1 - x0) / 2, y=1, yref="paper", text=text, showarrow=False, yanchor="bottom")
    # A shape and a separate annotation: Plotly's add_vline cannot place a label on a date axis.
    fig.add_shape(type="line", x0=windows.start, x1=windows.start, y0=0, y1=1, yref="paper",
                  line={"color": "#1F2430", "width": 2})
    fig.add_annotation(x=windows.start, y=0, yref="paper", text=t("impact.chart_action", date=windows.starts_on.isoformat()),
                       showarrow=False, xanchor="left", yanchor="bottom", xshift=4)
    if kind == "rate":
        y_title = t("impact.chart_y_rate", metric=metric_name(metric))
    elif kind == "money":
        y_title = t("impact.chart_y_money", metric=metric_name(metric), currency=currency or "")
    else:
        y_title = metric_name(metric)
    fig.update_xaxes(title_text=t("impact.chart_x"))
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_layout(margin={"t": 60})
    return charts.style(fig, height=380)
