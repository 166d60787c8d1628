"""Persona Studio: routing only. Pages live in pages/, shared UI in ui/."""

import streamlit as st

from persona_engine.explore import page_run
from ui import shell


def run() -> None:
    st.set_page_config(page_title="Persona Studio", page_icon=":material/diversity_3:", layout="wide")
    with page_run():  # the explorer's background builds wait for it
        shell.init_session()
        page = st.navigation(shell.navigation_pages())
        shell.sidebar()
        page.run()


run()
