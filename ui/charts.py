"""Plotly figures shared by pages: one look, labelled axes, the app's colours."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ["#4C6EF5", "#F59F00", "#12B886", "#E64980", "#7950F2", "#15AABF", "#FA5252", "#82C91E"]
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
# Maps read their country outlines from the app's own static folder (static/topojson/),
# relative to the page so that a server.baseUrlPath is kept: no request leaves the server.
MAP_CONFIG = {**PLOTLY_CONFIG, "topojsonURL": "app/static/topojson/"}


def base_layout(height: int = 360) -> dict[str, Any]:
    """The app's look, as a Plotly layout."""
    return {
        "height": height, "margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "colorway": PALETTE,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "hoverlabel": {"namelength": -1},
    }


def style(fig: go.Figure, height: int = 360) -> go.Figure:
    fig.update_layout(base_layout(height))
    return fig


def bars_and_line(
    frame: pd.DataFrame, x: str, bars: str, line: str, *, x_title: str, bar_title: str, line_title: str,
    partial: pd.Series | None = None,
) -> go.Figure:
    """Bars on the left axis, a line on the right axis (e.g. weekly revenue and orders).

    `partial` marks bars that cover less than a full unit (a week cut by the period's
    edges): they are drawn paler so nobody reads them as a drop.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    opacity = [0.35 if p else 1.0 for p in partial] if partial is not None else 1.0
    fig.add_trace(go.Bar(x=frame[x], y=frame[bars], name=bar_title, marker_color=PALETTE[0],
                         marker_opacity=opacity), secondary_y=False)
    fig.add_trace(go.Scatter(x=frame[x], y=frame[line], name=line_title, mode="lines+markers",
                             line={"color": PALETTE[1], "width": 2}), secondary_y=True)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=bar_title, secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text=line_title, secondary_y=True, showgrid=False, rangemode="tozero")
    return style(fig)
