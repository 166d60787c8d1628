"""A persona's own impact panel: its weekly KPI trend beside the whole shop, and the
marketing actions that targeted it, each linking to its impact table."""

from __future__ import annotations

from html import escape

import plotly.graph_objects as go
import streamlit as st

from persona_engine.actions import Action
from persona_engine.kpis import DEFAULT_METRICS
from persona_engine.safe_text import plain_markdown
from ui import charts, data, fmt, impact_data
from ui.i18n import label, t
from ui.impact_controls import action_option
from ui.impact_view import metric_name, value_kind
from ui.shell import guard


def _trend_chart(persona, shop, metric: str, actions: list[Action], currency: str | None) -> go.Figure:
    """Weekly values of the persona and the shop; each action's start as a dotted line."""
    scale = 100.0 if value_kind(metric) == "rate" else 1.0
    fig = go.Figure()
    for frame, name, colour, dash in ((persona, t("impact.persona_trend_persona"), charts.PALETTE[0], "solid"),
                                      (shop, t("impact.persona_trend_shop"), charts.PALETTE[1], "dash")):
        fig.add_trace(go.Scatter(x=frame["week_start"], y=frame["value"] * scale, name=name, mode="lines+markers",
                                 line={"color": colour, "dash": dash, "width": 2}))
    for a in actions:
        fig.add_shape(type="line", x0=a.starts_on, x1=a.starts_on, y0=0, y1=1, yref="paper",
                      line={"color": "#1F2430", "width": 1, "dash": "dot"})
        # Action names are people's text: escaped for Plotly's mini-HTML labels.
        fig.add_annotation(x=a.starts_on, y=1, yref="paper", text=escape(a.name[:40]), showarrow=False,
                           xanchor="left", yanchor="top", textangle=-90, font={"size": 10})
    unit = "%" if scale == 100.0 else (currency or "")
    fig.update_xaxes(title_text=t("impact.persona_trend_x"))
    fig.update_yaxes(title_text=f"{metric_name(metric)} ({unit})" if unit else metric_name(metric), rangemode="tozero")
    return charts.style(fig, height=300)


def _actions_list(actions: list[Action]) -> None:
    if not actions:
        st.caption(t("impact.persona_no_actions"))
        return
    for a in actions:
        period = a.starts_on.isoformat() + (f" → {a.ends_on.isoformat()}" if a.ends_on else "")
        channel = f" · {label('action_channel', a.channel)}" if a.channel else ""
        st.markdown(f"**{plain_markdown(a.name)}**  \n{plain_markdown(period + channel)}")
        st.page_link("pages/impact.py", label=t("impact.persona_open_impact"), icon=":material/query_stats:",
                     query_params={"impact_action": action_option(a)})


def persona_impact_panel(persona_id: int) -> None:
    """The persona's KPI trend over the last weeks of data and the actions that targeted it."""
    st.subheader(t("impact.persona_panel_title"))
    with guard():
        version, signature = data.data_version(), impact_data.personas_signature()
        actions = impact_data.actions_for_persona(persona_id)
        span = impact_data.trend_span(min((a.starts_on for a in actions), default=None))
        if span is None:
            st.caption(t("impact.persona_no_data"))
            return
        st.session_state.setdefault("persona_trend_metric", DEFAULT_METRICS[0])
        labels = {m: metric_name(m) for m in DEFAULT_METRICS}
        metric = st.segmented_control(t("impact.persona_trend_metric"), list(labels), required=True,
                                      key="persona_trend_metric", format_func=labels.__getitem__)
        persona = impact_data.weekly(version, signature, persona_id, metric, *span)
        shop = impact_data.weekly(version, signature, None, metric, *span)
        in_span = [a for a in actions if span[0] <= a.starts_on < span[1]]
        summary = data.shop_summary(version)
        st.plotly_chart(_trend_chart(persona, shop, metric, in_span, summary.currency), config=charts.PLOTLY_CONFIG,
                        key=f"persona_trend_{persona_id}")
        st.caption(t("impact.persona_trend_caption",
                     n=fmt.number(impact_data.audience_size(version, signature, persona_id)),
                     m=fmt.number(impact_data.audience_size(version, signature, None))))
        st.markdown(f"**{t('impact.persona_actions_title')}**")
        _actions_list(actions)
