"""Persona Studio: routing only. Pages live in pages/, shared UI in ui/."""

import streamlit as st

from ui import shell


def run() -> None:
    st.set_page_config(page_title="Persona Studio", page_icon=":material/diversity_3:", layout="wide")
    shell.init_session()
    page = st.navigation(shell.navigation_pages())
    shell.sidebar()
    page.run()


run()
