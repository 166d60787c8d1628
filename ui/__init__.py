"""Streamlit side of Persona Studio: caches, language catalogues, shared widgets.

Pages import from here; persona_engine never does.
"""

import streamlit as st

try:
    from streamlit.runtime.pages_manager import PagesManager
except ImportError:  # pragma: no cover - a Streamlit without the old pages/ mode
    PagesManager = None

# Streamlit decides from the mere presence of a pages/ folder that the app uses the old
# folder-based navigation, until app.py's st.navigation runs once. The first browser after a
# server start could then land on a bare page without the app's sidebar. The app routes with
# st.navigation only, so say so before the first page renders, and rerun that first run.
if PagesManager is not None and PagesManager.uses_pages_directory:
    PagesManager.uses_pages_directory = False
    st.rerun()
