"""Shared fixtures: an in-memory migrated store, and cursors over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from persona_engine.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh, migrated in-memory database."""
    s = open_store(":memory:")
    yield s
    s.close()


@pytest.fixture
def cur(store: Store) -> duckdb.DuckDBPyConnection:
    return store.cursor()
