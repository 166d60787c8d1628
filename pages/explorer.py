"""Segment explorer: who the customers are and how they behave, for any filter of them."""

import streamlit as st

from persona_engine.explore import page_run
from ui import explorer_data, fmt
from ui.explorer_behaviour import behaviour_view
from ui.explorer_charts import compact_money
from ui.explorer_compare import compare_view
from ui.explorer_customers import customers_view
from ui.explorer_demographics import demographics_view
from ui.explorer_filters import filter_bar, view_picker
from ui.explorer_glossary import glossary, segment_rules, shop_writer
from ui.i18n import t
from ui.sample import shop_page
from ui.shell import guard


def explorer() -> None:
    version, shop = shop_page("explorer")
    if explorer_data.features_ready(version) is None:
        st.info(t("explorer.no_features"))
        if shop_writer() and st.button(t("explorer.compute_features"), key="explorer_compute", type="primary"):
            with guard(), st.spinner(t("explorer.computing_features")):
                explorer_data.compute_features()
                st.rerun()
        st.stop()

    options = explorer_data.options(version, explorer_data.personas_signature())
    if options.first_day is not None and options.last_day is not None:
        explorer_data.prepare_periods(version, options.first_day, options.last_day)
    flt = filter_bar(options)
    if flt is None:
        st.stop()
    personas = explorer_data.personas_key(flt)

    with guard():
        # The first call for a filter finds its customers (and rolls up a new date range, shared
        # with the other sessions): the only step that can take seconds on a large shop.
        with st.spinner(t("explorer.computing_range" if flt.has_dates else "explorer.computing"), show_time=True):
            summary = explorer_data.chart(version, personas, "summary", flt)
        if not summary.available:
            st.info(t(f"explorer.reason.{summary.reason}"))
            st.stop()
        row = summary.data.iloc[0]
        tiles = [
            ("customers", fmt.number(row["customers"])),
            ("buyers", fmt.number(row["buyers"])),
            ("orders", fmt.number(row["orders"])),
            ("revenue", compact_money(row["revenue"], shop.currency)),
            ("aov", fmt.money(row["average_order_value"], shop.currency, 2) if row["orders"] else "–"),
        ]
        for column, (key, value) in zip(st.columns(len(tiles)), tiles, strict=True):
            column.metric(t(f"explorer.metric_{key}"), value, help=t(f"explorer.metric_{key}_help"), border=True)
        st.caption(t("explorer.share_of_base", share=fmt.percent(row["share_of_base"])))
        if summary.too_small:
            st.warning(t("common.too_small", n=fmt.number(summary.n_customers)))

        view = view_picker()
        if view == "demographics":
            demographics_view(version, personas, flt)
        elif view == "behaviour":
            behaviour_view(version, personas, flt, shop.currency)
        elif view == "compare":
            compare_view(version, flt, options)
        else:
            customers_view(version, personas, flt, shop.currency)

    with st.expander(t("explorer.glossary_title"), icon=":material/menu_book:"):
        glossary()
    with st.expander(t("explorer.rules_title"), icon=":material/tune:"):
        segment_rules()


# Run as a page of its own too (tests open it directly): the explorer's background builds
# wait for it either way (page runs nest).
with page_run():
    explorer()
