"""Data page: go back to the generated sample shop, and erase one customer (GDPR).

Both replace or remove data for everyone, so each asks for a confirmation first; the
confirmation state is a small session value, cleared once done or cancelled.
"""

from __future__ import annotations

import streamlit as st

from persona_engine.ingest import erase_customer, find_customer
from persona_engine.safe_text import plain_markdown
from ui import data, fmt
from ui.data_page_import import DONE_KEY
from ui.data_page_view import table_word
from ui.i18n import t
from ui.sample import generate_sample
from ui.shell import guard

SAMPLE_CUSTOMERS = 20_000
ERASE_TARGET = "data_erase_target"  # (id as typed, internal customer_id) awaiting confirmation
ERASE_DONE = "data_erase_done"  # {table: rows removed} of the erasure just made
SAMPLE_DONE = "data_sample_done"


def sample_panel(may_write: bool) -> None:
    """Reset to the sample shop: confirm, generate with a progress bar, compute features."""
    done = st.session_state.pop(SAMPLE_DONE, None)
    if done:
        st.success(t("data.sample_done", customers=fmt.number(done[0]), orders=fmt.number(done[1])))
    st.write(t("data.sample_intro", n=fmt.number(SAMPLE_CUSTOMERS)))
    if not may_write:
        return
    if not st.session_state.get("data_reset_confirm"):
        if st.button(t("data.sample_button"), key="data_reset"):
            st.session_state["data_reset_confirm"] = True
            st.rerun()
        return
    st.warning(t("data.sample_confirm"))
    buttons = st.container(horizontal=True)  # side by side, each as wide as its words
    confirmed = buttons.button(t("data.sample_yes"), key="data_reset_yes", type="primary")
    if buttons.button(t("data.sample_no"), key="data_reset_no"):
        st.session_state["data_reset_confirm"] = False
        st.rerun()
    if confirmed:
        st.session_state["data_reset_confirm"] = False
        st.session_state.pop(DONE_KEY, None)
        summary = generate_sample(SAMPLE_CUSTOMERS)
        if summary is not None:
            st.session_state[SAMPLE_DONE] = (summary.customers, summary.orders)
        if SAMPLE_DONE in st.session_state:  # else guard() shows why, and it stays on screen
            st.rerun()


def erasure_panel(may_write: bool, erased_by: str) -> None:
    """Find a customer by id, confirm, erase them from every table, show the counts removed."""
    st.write(t("data.erase_intro"))
    removed = st.session_state.pop(ERASE_DONE, None)
    if removed is not None:
        st.success(t("data.erased", rows=fmt.number(sum(removed.values()))))
        st.dataframe({t("data.col_table"): [table_word(k) for k in removed],
                      t("data.col_rows"): list(removed.values())}, hide_index=True, key="data_erased_counts")
        st.caption(t("data.erase_source_note"))
    if not may_write:
        return
    if st.session_state.pop("data_erase_clear", False):
        st.session_state["data_erase_id"] = ""  # before the widget exists: allowed
    typed = st.text_input(t("data.erase_id"), key="data_erase_id", help=t("data.erase_id_help"), max_chars=320)
    if st.button(t("data.erase_find"), key="data_erase_find"):
        st.session_state.pop(ERASE_TARGET, None)
        with guard():
            st.session_state[ERASE_TARGET] = (typed.strip(), find_customer(data.cursor(), typed))
    target = st.session_state.get(ERASE_TARGET)
    if target is None or target[0] != typed.strip():  # the id was edited since: find again
        return
    shown, customer_id = target
    st.warning(t("data.erase_confirm", id=plain_markdown(shown), internal=customer_id))
    buttons = st.container(horizontal=True)
    confirmed = buttons.button(t("data.erase_yes"), key="data_erase_yes", type="primary")
    if buttons.button(t("data.erase_no"), key="data_erase_no"):
        st.session_state.pop(ERASE_TARGET, None)
        st.rerun()
    if confirmed:
        st.session_state.pop(ERASE_TARGET, None)
        st.session_state.pop(DONE_KEY, None)  # that report describes the shop before this change
        with guard():
            counts = erase_customer(data.cursor(), customer_id, erased_by=erased_by)
            data.after_shop_change()
            st.session_state[ERASE_DONE] = counts
            st.session_state["data_erase_clear"] = True
            st.rerun()

