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


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> Path:
    """A small generated shop in a database file, shared by page and browser tests."""
    from sample_data.generator import generate_shop

    path = tmp_path_factory.mktemp("shop") / "shop.duckdb"
    s = open_store(path)
    generate_shop(s.cursor(), n_customers=3000, seed=42)
    s.close()
    return path


@pytest.fixture
def app_db(sample_db, monkeypatch) -> Path:
    """Point the app at the sample shop file (read by ui.data.database_path)."""
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(sample_db))
    return sample_db
