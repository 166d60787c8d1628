"""Explorer, customers view: the best customers of the filter, and the audience export."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from persona_engine.explore import BEST_BY, CustomerFilter, audience_file_name
from ui import data, explorer_data, fmt
from ui.explorer_charts import caption, reason_text
from ui.i18n import label, t

BEST_N = (10, 20, 50, 100, 500)


def _table(frame: pd.DataFrame, currency: str | None) -> pd.DataFrame:
    """The best customers with readable headers and values (a few hundred rows at most)."""
    return pd.DataFrame({
        t("explorer.col_customer"): frame["customer_id"].astype(str),
        t("explorer.col_revenue", currency=currency or ""): frame["monetary"].round(2),
        t("explorer.col_orders"): frame["frequency"],
        t("explorer.col_aov", currency=currency or ""): frame["average_order_value"].round(2),
        t("explorer.col_tenure"): frame["tenure_days"],
        t("explorer.col_recency"): frame["recency_days"],
        t("explorer.col_rfm_group"): [label("rfm_group", g) if g is not None else "–" for g in frame["rfm_group"]],
        t("explorer.col_country"): [str(c) if c is not None else "–" for c in frame["country"]],
    })


def _column_config(currency: str | None) -> dict[str, Any]:
    money = st.column_config.NumberColumn(format="accounting")  # two decimals, the reader's separators
    return {
        t("explorer.col_revenue", currency=currency or ""): money,
        t("explorer.col_aov", currency=currency or ""): money,
        t("explorer.col_orders"): st.column_config.NumberColumn(format="localized"),
        t("explorer.col_tenure"): st.column_config.NumberColumn(format="localized"),
        t("explorer.col_recency"): st.column_config.NumberColumn(format="localized"),
    }


@st.fragment
def best_customers(version: str, personas: str, flt: CustomerFilter, currency: str | None) -> None:
    st.subheader(t("explorer.best_title"))
    by_col, n_col = st.columns([3, 1])
    by = by_col.segmented_control(t("explorer.best_by"), list(BEST_BY), format_func=lambda b: t(f"explorer.best_by_{b}"),
                                  key="explorer_best_by", default="revenue", required=True)
    n = n_col.selectbox(t("explorer.best_n"), BEST_N, index=1, key="explorer_best_n")
    chart = explorer_data.best(version, personas, flt, str(by or "revenue"), int(n))
    if not chart.available:
        st.info(reason_text(chart.reason))
        return
    if chart.data.empty:
        st.info(t("explorer.best_none"))
        return
    st.dataframe(_table(chart.data, currency), hide_index=True, key="explorer_best_table",
                 column_config=_column_config(currency))
    st.caption(t("explorer.best_note", n=fmt.number(len(chart.data)), of=fmt.number(chart.n_customers)))


def audience_export(flt: CustomerFilter, customers: int) -> None:
    """A CSV of the filtered consenting customers, built when the button is clicked."""
    st.subheader(t("explorer.export_title"))
    st.write(t("explorer.export_body", n=fmt.number(customers)))
    store = data.store()  # the click runs on another thread: it opens its own cursor
    st.download_button(
        t("explorer.export_button"), lambda: explorer_data.audience_csv(store, flt),
        file_name=audience_file_name(flt), mime="text/csv", key="explorer_export", on_click="ignore",
        icon=":material/download:", type="primary",
    )
    st.caption(t("explorer.export_file", name=audience_file_name(flt)))


def customers_view(version: str, personas: str, flt: CustomerFilter, currency: str | None) -> None:
    summary = explorer_data.chart(version, personas, "summary", flt)
    best_customers(version, personas, flt, currency)
    caption(summary)
    audience_export(flt, summary.n_customers)
