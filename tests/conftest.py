"""Shared fixtures: an in-memory migrated store, and cursors over it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from persona_engine import explore
from persona_engine.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def open_page(
    page: str | None = None, *, timeout: int = 90, query: dict[str, Any] | None = None, **state: Any
) -> AppTest:
    """A new session of the app (AppTest), with these session-state values and URL query
    parameters, run once on `page` (pages/....py), or on the default page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for key, value in state.items():
        at.session_state[key] = value
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if page is not None:
        at.switch_page(page)
    return at.run()


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh, migrated in-memory database."""
    s = open_store(":memory:")
    yield s
    s.close()


@pytest.fixture
def cur(store: Store) -> duckdb.DuckDBPyConnection:
    return store.cursor()


def write_sample_shop(path: Path, n_customers: int, seed: int, features: bool = True) -> Path:
    """Generate the sample shop into a database file (with customer features) and close it."""
    from persona_engine.features import compute_customer_features
    from sample_data.generator import generate_shop

    s = open_store(path)
    generate_shop(s.cursor(), n_customers=n_customers, seed=seed)
    if features:
        compute_customer_features(s.cursor())
    s.close()
    return path


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> Path:
    """A small generated shop in a database file, shared by page and browser tests."""
    return write_sample_shop(tmp_path_factory.mktemp("shop") / "shop.duckdb", 3000, 42, features=False)


@pytest.fixture
def app_db(sample_db, monkeypatch) -> Path:
    """Point the app at the sample shop file (read by ui.data.database_path)."""
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(sample_db))
    return sample_db


def held_rollups(
    monkeypatch: pytest.MonkeyPatch, sessions_only: bool = False, day_tables: bool = False,
) -> threading.Event:
    """Make a date range's rollups wait for the returned event before they are built: its
    order and session rollups, or with `sessions_only` its session rollups. Unless
    `day_tables`, the day tables answer no chart meanwhile: the charts wait for the
    rollups, as those of a filter the day tables cannot answer do."""
    if not day_tables:
        monkeypatch.setattr(explore, "_range_days", lambda *args, **kwargs: None)
    go = threading.Event()
    build, build_orders = explore._build_range, explore._build_order_rollups

    def held(cur, prefix, create, start, end, templates):
        if tuple(templates) == explore._RANGE_SESSION_SQL:
            assert go.wait(30), "the rollups were never let through"
        build(cur, prefix, create, start, end, templates)

    def held_orders(cur, prefix, key, start, end):
        if not sessions_only:
            assert go.wait(30), "the rollups were never let through"
        build_orders(cur, prefix, key, start, end)

    monkeypatch.setattr(explore, "_build_range", held)
    monkeypatch.setattr(explore, "_build_order_rollups", held_orders)
    return go
