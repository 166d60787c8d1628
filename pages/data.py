"""Data: import the shop's own files, check their quality, reset to the sample, erase a customer."""

import streamlit as st

from ui import data
from ui.data_page_admin import erasure_panel, sample_panel
from ui.data_page_data import erasures, imports, missing_data, quality
from ui.data_page_import import check_and_import, import_form, last_import
from ui.data_page_view import erasures_panel, imports_panel, quality_panel
from ui.editor_identity import current_identity, login_required
from ui.i18n import t
from ui.shell import guard

st.title(t("data.title"))
st.caption(t("data.intro"))

# Replacing the shop or erasing a customer changes the data for everyone: with sign-in,
# admins only; without, anyone who gave the name the erasure log records.
who = current_identity()
may_write = who is not None and (who.can("admin") or not login_required())
if not may_write:
    st.info(t("data.need_admin") if login_required() else t("data.need_name"))

import_tab, quality_tab, history_tab, sample_tab, erase_tab = st.tabs(
    [t("data.tab_import"), t("data.tab_quality"), t("data.tab_history"), t("data.tab_sample"),
     t("data.tab_erase")], key="data_tab")

with import_tab:
    last_import()
    if may_write:
        request = import_form()
        if request is not None:
            check_and_import(request)

with quality_tab, guard():
    quality_panel(quality(data.data_version()), missing_data())

with history_tab, guard():
    imports_panel(imports(data.data_version()))
    erasures_panel(erasures(data.data_version()))

with sample_tab:
    sample_panel(may_write)

with erase_tab:
    erasure_panel(may_write, who.user_name if who is not None else "")
