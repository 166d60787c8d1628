"""The sample shop from the app: first-start offer (Overview) and the generation with progress."""

from __future__ import annotations

import streamlit as st

from persona_engine.features import compute_customer_features
from persona_engine.overview import ShopSummary
from sample_data.generator import GenerationSummary, generate_shop
from ui import data
from ui.data_page_data import HeldProgress
from ui.i18n import t
from ui.shell import guard

SAMPLE_SEED = 42
SAMPLE_LOCALE = "fr_FR"


def generate_sample(n_customers: int) -> GenerationSummary | None:
    """Generate the sample shop and its features under a progress bar; None if it failed
    (the reason is then on screen). A browser that leaves meanwhile does not cut it short."""
    bar = HeldProgress(st.progress(0.0, text=t("data.sample_generating")))
    summary = None
    try:
        with guard():
            summary = generate_shop(
                data.cursor(), n_customers=n_customers, seed=SAMPLE_SEED, locale=SAMPLE_LOCALE,
                # Generation is most of the time; features take the last tenth of the bar.
                on_progress=lambda share: bar.show(0.9 * share, lambda: t("data.sample_generating")),
            )
            compute_customer_features(data.cursor(), progress=lambda done, total, message: bar.show(
                0.9 + 0.1 * done / max(total, 1), lambda: t("data.sample_features", message=message)))
    finally:
        # Even a failed generation changed the shop (it leaves it empty): caches are stale.
        data.after_shop_change()
    bar.release()
    return summary


def shop_page(section: str) -> tuple[str, ShopSummary]:
    """A page's title and intro (catalogue keys `<section>.title` and `<section>.intro`),
    then its shop: (data version, summary). Without a shop yet, offers the sample shop and
    stops the page there."""
    st.title(t(f"{section}.title"))
    st.caption(t(f"{section}.intro"))
    version = data.data_version()
    shop = data.shop_summary(version)
    if shop.is_empty:
        offer_sample_shop()
        st.stop()
    return version, shop


def offer_sample_shop() -> None:
    st.subheader(t("overview.empty_title"))
    st.write(t("overview.empty_body"))
    n = st.number_input(t("overview.generate_customers"), min_value=500, max_value=200_000, value=20_000,
                        step=500, key="sample_customers")
    if st.button(t("overview.generate_button"), type="primary", key="generate_sample"):
        if generate_sample(int(n)) is not None:
            st.rerun()
