"""Explorer, compare view: two groups of customers side by side over every breakdown, the
differences that stand out (largest index against side B) listed first.

Each side starts from the filter bar and replaces, for the fields picked on that side, the
bar's value: with "France" in the bar, side A "Champions" against an untouched side B reads
"French champions against all French customers".
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from persona_engine.explore import MIN_GROUP_SIZE, Comparison, CustomerFilter, FilterOptions
from ui import charts, explorer_data, fmt
from ui.explorer_charts import labels, paired_bars, reason_text, segment_label, value_label
from ui.i18n import label, t

# Compare breakdown -> catalogue group of its values (None: the shop's own words).
BREAKDOWN_GROUPS: dict[str, str | None] = {
    "age_band": None, "gender": "gender", "marital_status": "marital_status", "country": None,
    "region": None, "education": None, "occupation": None, "income_band": None, "interests": None,
    "rfm_group": "rfm_group", "segment": "segment", "order_channel": "channel", "order_device": "device",
    "order_payment_method": "payment_method", "category": None, "cart_abandonment_device": "device",
    "cart_abandonment_source": "source", "funnel": "funnel_step",
}
# Side pickers: CustomerFilter field -> (FilterOptions attribute, catalogue group)
PICKERS: dict[str, tuple[str, str | None]] = {
    "rfm_groups": ("rfm_groups", "rfm_group"),
    "segments": ("segments", "segment"),
    "persona_ids": ("personas", None),
    "countries": ("countries", None),
}
STANDOUTS = 12
DEFAULT_A = "champions"  # side A's RFM group when the view first opens
MAX_VALUES = 15  # values per breakdown chart, the largest first


def _side(side: str, base: CustomerFilter, options: FilterOptions) -> tuple[CustomerFilter, dict[str, list[str]]]:
    """One side's pickers; its filter and, per field picked, the words naming the picks."""
    names = dict(options.personas)
    picks: dict[str, Any] = {}
    words: dict[str, list[str]] = {}
    st.markdown(f"**{t(f'explorer.side_{side}')}**")
    for field, (attribute, group) in PICKERS.items():
        choices = [pid for pid, _ in options.personas] if field == "persona_ids" else getattr(options, attribute)
        if not choices:
            continue

        def show(v: Any, group: str | None = group) -> str:
            if group == "segment":
                return segment_label(v)
            return label(group, v) if group else names.get(v, str(v))

        key = f"explorer_compare_{side}_{field}"
        if side == "a" and field == "rfm_groups" and DEFAULT_A in choices:
            st.session_state.setdefault(key, [DEFAULT_A])  # something to compare on first open
        chosen = st.multiselect(t(f"explorer.pick_{field}"), choices, format_func=show,
                                key=key, placeholder=t("explorer.no_change"))
        if chosen:
            picks[field] = tuple(chosen)
            words[field] = [show(v) for v in chosen]
    return replace(base, **picks), words


# A side picked on a field differs on that field's breakdown by construction: not news.
PICKED_BREAKDOWN = {"rfm_groups": "rfm_group", "segments": "segment", "countries": "country"}


def _standouts(result: Comparison, picked: set[str]) -> pd.DataFrame:
    obvious = {PICKED_BREAKDOWN[f] for f in picked if f in PICKED_BREAKDOWN}
    top = result.standouts[~result.standouts["breakdown"].isin(obvious)].head(STANDOUTS)
    return pd.DataFrame({
        t("explorer.col_breakdown"): [label("breakdown", b) for b in top["breakdown"]],
        t("explorer.col_value"): [value_label(BREAKDOWN_GROUPS.get(b), v) for b, v in zip(top["breakdown"], top["value"], strict=True)],
        t("explorer.col_measure"): [label("compare_metric", m) for m in top["metric"]],
        t("explorer.col_a"): [fmt.percent(v) for v in top["a"]],
        t("explorer.col_b"): [fmt.percent(v) for v in top["b"]],
        t("explorer.col_index"): [fmt.number(v) for v in top["index"]],
    })


def _breakdown_chart(result: Comparison, key: str) -> None:
    rows = result.breakdown(key)
    rows = rows.assign(_size=rows[["a", "b"]].max(axis=1))
    if key != "funnel" and key not in ("age_band", "income_band"):
        rows = rows.sort_values("_size", ascending=False)
    rows = rows.head(MAX_VALUES)
    names = labels(list(rows["value"]), BREAKDOWN_GROUPS.get(key))
    hover = [t("explorer.compare_hover", value=n, a=fmt.percent(a), b=fmt.percent(b),
               index=fmt.number(i) if pd.notna(i) else "–", na=fmt.number(ca), nb=fmt.number(cb))
             for n, a, b, i, ca, cb in zip(names, rows["a"], rows["b"], rows["index"], rows["customers_a"],
                                           rows["customers_b"], strict=True)]
    metric = str(rows["metric"].iloc[0]) if len(rows) else "share"
    fig = paired_bars(names, rows["a"], rows["b"], first_name=t("explorer.side_a"), second_name=t("explorer.side_b"),
                      value_title=label("compare_metric", metric), hover_first=hover, hover_second=hover)
    st.markdown(f"**{label('breakdown', key)}**")
    st.plotly_chart(fig, config=charts.PLOTLY_CONFIG, key=f"explorer_compare_chart_{key}")
    if bool(rows["too_small"].any()):
        st.caption(t("explorer.compare_small", min=MIN_GROUP_SIZE))


def _describe(words: dict[str, list[str]]) -> str:
    return " · ".join(", ".join(w) for w in words.values()) or t("explorer.side_everyone")


@st.fragment
def compare_view(version: str, base: CustomerFilter, options: FilterOptions) -> None:
    """Pickers for each side, then the standouts and one chart per breakdown."""
    st.caption(t("explorer.compare_intro"))
    left, right = st.columns(2)
    with left:
        side_a, words_a = _side("a", base, options)
    with right:
        side_b, words_b = _side("b", base, options)
    if side_a == side_b:
        st.info(t("explorer.compare_same"))
        return
    personas = explorer_data.personas_key(side_a, side_b)
    result = explorer_data.comparison(version, personas, side_a, side_b)
    st.caption(t("explorer.compare_sizes", a=_describe(words_a), b=_describe(words_b), na=fmt.number(result.n_a),
                 nb=fmt.number(result.n_b)))
    if not result.n_a or not result.n_b:
        st.info(t("explorer.compare_empty"))
        return
    for n in (result.n_a, result.n_b):
        if n < MIN_GROUP_SIZE:
            st.warning(t("common.too_small", n=fmt.number(n)))
    st.subheader(t("explorer.standouts_title"))
    table = _standouts(result, set(words_a) | set(words_b))
    if table.empty:
        st.info(t("explorer.no_standouts"))
    else:
        st.dataframe(table, hide_index=True, key="explorer_standouts", height=35 * (len(table) + 1) + 3)
        st.caption(t("explorer.index_note"))
    keys = [k for k in BREAKDOWN_GROUPS if k not in result.unavailable and not result.breakdown(k).empty]
    for i in range(0, len(keys), 2):
        for column, key in zip(st.columns(2), keys[i:i + 2], strict=False):
            with column:
                _breakdown_chart(result, key)
    if result.unavailable:
        missing = [f"{label('breakdown', k)} ({reason_text(r)})" for k, r in result.unavailable.items()]
        st.caption(t("explorer.compare_unavailable", items="; ".join(missing)))
