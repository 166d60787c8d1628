"""DuckDB store: connection, schema migrations, small typed query helpers."""

from persona_engine.store.connection import (
    MEMORY,
    Store,
    connect,
    get_setting,
    migrate,
    open_store,
    set_setting,
    table_exists,
    transaction,
)
from persona_engine.store.queries import fetch_df, fetch_one, fetch_value

__all__ = [
    "MEMORY",
    "Store",
    "connect",
    "fetch_df",
    "fetch_one",
    "fetch_value",
    "get_setting",
    "migrate",
    "open_store",
    "set_setting",
    "table_exists",
    "transaction",
]
