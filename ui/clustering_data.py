"""Cached loaders of the Clusters and Personas pages.

Runs never change once stored, so a run's loaders are keyed by its id (and the shop's data
version, which a new shop bumps). Anything that depends on personas is keyed by
`personas_signature`, which changes with every persona edit, member change or validation.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from persona_engine import clustering, drafting
from persona_engine.features import features_computed_at
from persona_engine.kpis import personas_signature as _personas_signature
from ui import data


def latest_run_id() -> int | None:
    """Uncached on purpose: one indexed read that tells the cached loaders a run was added."""
    return clustering.latest_run_id(data.cursor())


def personas_signature() -> str:
    """The impact pages' fingerprint of personas and members, plus validations (which the
    stale flags depend on and which do not change a persona's version)."""
    cur = data.cursor()
    validated = cur.execute("SELECT max(last_validated_at) FROM personas").fetchall()[0][0]
    return f"{_personas_signature(cur)}|{validated}"


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def has_features(version: str) -> bool:
    return features_computed_at(data.cursor()) is not None


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def runs(version: str, latest: int | None) -> pd.DataFrame:
    """run_id, created_at, method, k, feature_set, n_customers, silhouette, stability, ..."""
    return clustering.list_runs(data.cursor())


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def run(version: str, run_id: int) -> clustering.ClusteringRun:
    return clustering.load_run(data.cursor(), run_id)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def projection(version: str, run_id: int) -> pd.DataFrame:
    return clustering.run_projection(data.cursor(), run_id)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def drafts(version: str, run_id: int, groups: tuple[tuple[int, ...], ...] | None) -> list[drafting.PersonaDraft]:
    return drafting.draft_personas(data.cursor(), run_id, [list(g) for g in groups] if groups else None)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def reevaluation(version: str, run_id: int, signature: str) -> drafting.Reevaluation:
    return drafting.match_personas(data.cursor(), run_id)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def persona_traits(version: str, signature: str, persona_id: int) -> list[clustering.Trait]:
    return drafting.persona_traits(data.cursor(), persona_id, top=3)


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def shortlist(version: str, signature: str, persona_id: int) -> pd.DataFrame:
    return drafting.interview_shortlist(data.cursor(), persona_id)
