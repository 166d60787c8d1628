"""First start: offer to generate the sample shop, with a progress bar."""

from __future__ import annotations

import streamlit as st

from persona_engine.features import compute_customer_features
from sample_data.generator import generate_shop
from ui import data
from ui.i18n import t
from ui.shell import guard


def offer_sample_shop() -> None:
    st.subheader(t("overview.empty_title"))
    st.write(t("overview.empty_body"))
    n = st.number_input(t("overview.generate_customers"), min_value=500, max_value=200_000, value=20_000,
                        step=500, key="sample_customers")
    if st.button(t("overview.generate_button"), type="primary", key="generate_sample"):
        bar = st.progress(0.0, text=t("overview.generating"))
        with guard():
            summary = generate_shop(
                data.cursor(), n_customers=int(n), seed=42, locale="fr_FR",
                on_progress=lambda done: bar.progress(done, text=t("overview.generating")),
            )
            compute_customer_features(data.cursor())
            data.after_shop_change()
            st.success(t("overview.generated", customers=f"{summary.customers:,}", orders=f"{summary.orders:,}"))
            st.rerun()
