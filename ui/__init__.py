"""Streamlit side of Persona Studio: caches, language catalogues, shared widgets.

Pages import from here; persona_engine never does.
"""
