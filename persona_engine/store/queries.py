"""Typed helpers that run one bound query and read its result fully.

Reading results fully matters: a SELECT left half-read on a cursor blocks the next query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

Params = Sequence[Any] | Mapping[str, Any] | None


def fetch_df(cur: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> pd.DataFrame:
    """Run `sql` with bound `params` and return the whole result as a DataFrame."""
    return cur.execute(sql, params if params is not None else []).df()


def fetch_one(cur: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> tuple[Any, ...] | None:
    """First row of the result, or None when there is none."""
    rows = cur.execute(sql, params if params is not None else []).fetchall()
    return rows[0] if rows else None


def fetch_value(cur: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> Any:
    """First column of the first row, or None."""
    row = fetch_one(cur, sql, params)
    return row[0] if row else None
