"""Persona Studio's domain package: store, features, segments, clustering, personas, KPIs.

It never imports streamlit, so it works the same from the CLI, a notebook or a test.
"""

__version__ = "0.1.0"
