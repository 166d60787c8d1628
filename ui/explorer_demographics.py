"""Explorer, demographics view: age, gender, family, place, education, work, income, interests."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from persona_engine.explore import FIELD_MISSING, CustomerFilter
from ui import charts, explorer_data, fmt
from ui.explorer_charts import (
    bars,
    caption,
    count_hover,
    figure,
    labels,
    opacity,
    panel,
    percents,
    reason_text,
)
from ui.explorer_geo import iso3
from ui.i18n import t

# field -> catalogue group of its codes (None: the shop's own words), horizontal bars
FIELDS: dict[str, tuple[str | None, bool]] = {
    "age_band": (None, False),
    "gender": ("gender", False),
    "marital_status": ("marital_status", False),
    "income_band": (None, False),
    "education": (None, True),
    "occupation": (None, True),
    "region": (None, True),
    "interests": (None, True),
}
GRID = ("age_band", "gender", "marital_status", "income_band", "education", "occupation")
MAX_REGIONS = 20  # the largest regions; the rest are summed in the customers caption


def _breakdown(field: str, frame: pd.DataFrame) -> go.Figure:
    group, horizontal = FIELDS[field]
    names = labels(list(frame["value"]), group)
    text = [fmt.number(n) for n in frame["customers"]]
    title = t("explorer.share_of_customers")
    return bars(names, frame["share"], value_title=title, text=text, hover=count_hover(frame, names),
                pale=opacity(frame), horizontal=horizontal)


def _show(version: str, personas: str, flt: CustomerFilter, field: str, key: str) -> None:
    chart = explorer_data.demographic(version, personas, flt, field)
    frame_limit = MAX_REGIONS if field == "region" else None

    def build(frame: pd.DataFrame) -> go.Figure:
        return _breakdown(field, frame.head(frame_limit) if frame_limit else frame)

    panel(t(f"explorer.demo_{field}"), chart, build, key)
    if field == "region" and chart.available and len(chart.data) > MAX_REGIONS:
        st.caption(t("explorer.more_regions", n=len(chart.data) - MAX_REGIONS))
    if field == "interests" and chart.available:
        st.caption(t("explorer.interests_note"))


def _map(frame: pd.DataFrame) -> go.Figure:
    codes = [iso3(v) for v in frame["value"]]
    placed = frame.assign(iso3=codes).dropna(subset=["iso3"])
    hover = count_hover(placed, list(placed["value"].astype(str)))
    trace = go.Choropleth(
        locations=placed["iso3"], z=placed["customers"], locationmode="ISO-3", colorscale="Blues", zmin=0,
        hovertext=hover, hoverinfo="text", marker_line_color="white",
        colorbar={"title": {"text": t("explorer.customers")}},
    )
    return figure([trace], 380, geo={"fitbounds": "locations", "showcountries": True, "countrycolor": "#bbb",
                                     "showland": True, "landcolor": "#f3f3f3",
                                     "projection": {"type": "natural earth"}})


def location(version: str, personas: str, flt: CustomerFilter) -> None:
    """A map of countries when the data has countries, a bar chart of them beside it (exact
    numbers, and every value, including the ones the map cannot place); else the regions
    alone."""
    st.markdown(f"**{t('explorer.demo_location')}**")
    countries = explorer_data.demographic(version, personas, flt, "country")
    if not countries.available:
        _show(version, personas, flt, "region", "explorer_demo_region")
        return
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(_map(countries.data), config=charts.MAP_CONFIG, key="explorer_demo_map")
    with right:
        frame = countries.data
        names = [str(v) if v is not None else t("explorer.not_recorded") for v in frame["value"]]
        fig = bars(names, frame["share"], value_title=t("explorer.share_of_customers"),
                   text=percents(frame["share"]), hover=count_hover(frame, names), pale=opacity(frame),
                   horizontal=True)
        st.plotly_chart(fig, config=charts.PLOTLY_CONFIG, key="explorer_demo_countries")
    caption(countries)
    st.caption(t("explorer.map_note"))
    off_map = [str(v) for v in countries.data["value"] if v is not None and iso3(v) is None]
    if off_map:
        st.caption(t("explorer.off_map", names=", ".join(off_map)))
    regions = explorer_data.demographic(version, personas, flt, "region")
    if regions.available:
        _show(version, personas, flt, "region", "explorer_demo_region")


def demographics_view(version: str, personas: str, flt: CustomerFilter) -> None:
    """The fields the shop has, two charts a row; one sentence for the fields it lacks
    (an imported transaction file often has no demographics at all)."""
    charts_of = {f: explorer_data.demographic(version, personas, flt, f) for f in (*GRID, "interests", "country", "region")}
    missing = [f for f, c in charts_of.items() if not c.available and c.reason == FIELD_MISSING]
    present = [f for f in GRID if f not in missing]
    for i in range(0, len(present), 2):
        for column, field in zip(st.columns(2), present[i:i + 2], strict=False):
            with column:
                _show(version, personas, flt, field, f"explorer_demo_{field}")
    if "country" not in missing or "region" not in missing:
        location(version, personas, flt)
    if "interests" not in missing:
        _show(version, personas, flt, "interests", "explorer_demo_interests")
    if missing:
        fields = ", ".join(t(f"codes.breakdown.{f}") for f in missing)
        st.info(f"{reason_text(FIELD_MISSING)} {t('explorer.fields_missing', fields=fields)}")
