"""Data-quality summary of the shop: rows, date range and missing values per table.

What a marketer checks after an import: did everything arrive, over which period, which
columns are empty (no demographics? no devices?), how many customers cannot be analysed
because they did not consent.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

# Shop tables and the column that dates their rows (None: the table has no date).
QUALITY_TABLES: tuple[tuple[str, str | None], ...] = (
    ("customers", "created_at"),
    ("products", None),
    ("orders", "ordered_at"),
    ("order_items", None),
    ("sessions", "started_at"),
    ("events", "ts"),
)


@dataclass
class DataQuality:
    """tables: one row per table: table, rows, date_column, first, last.
    missing: one row per table and column: table, column, missing (rows with NULL),
        missing_share (0-1; NaN for an empty table).
    customers, customers_without_consent: counts (the latter are left out of analyses).
    """

    tables: pd.DataFrame
    missing: pd.DataFrame
    customers: int
    customers_without_consent: int


def _columns(cur: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND table_schema = 'main' AND table_catalog = current_database() ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def _quoted(name: str) -> str:
    # Column names come from the catalogue of the schema's own tables, not from input.
    return '"' + name.replace('"', '""') + '"'


def data_quality(cur: duckdb.DuckDBPyConnection) -> DataQuality:
    """Rows, date range and share of missing values per column of every shop table.

    Reads the raw tables (counts only, no personal value leaves this function), so the
    figures describe everything stored, consenting or not.
    """
    table_rows: list[dict[str, object]] = []
    missing_rows: list[dict[str, object]] = []
    for table, date_column in QUALITY_TABLES:
        columns = _columns(cur, table)
        if not columns:
            continue
        counts = ", ".join(f"count({_quoted(c)})" for c in columns)
        dates = (f", min({_quoted(date_column)}), max({_quoted(date_column)})"
                 if date_column in columns else ", NULL, NULL")
        # table comes from QUALITY_TABLES; columns from the catalogue (quoted above).
        row = cur.execute(f"SELECT count(*), {counts}{dates} FROM {table}").fetchall()[0]  # noqa: S608
        total = int(row[0])
        table_rows.append({
            "table": table, "rows": total, "date_column": date_column,
            "first": row[-2], "last": row[-1],
        })
        for column, filled in zip(columns, row[1:1 + len(columns)], strict=True):
            missing = total - int(filled)
            missing_rows.append({
                "table": table, "column": column, "missing": missing,
                "missing_share": missing / total if total else float("nan"),
            })
    customers, without = cur.execute(
        "SELECT count(*), count(*) FILTER (NOT consent_analytics) FROM customers"
    ).fetchall()[0]
    return DataQuality(
        tables=pd.DataFrame(table_rows, columns=["table", "rows", "date_column", "first", "last"]),
        missing=pd.DataFrame(missing_rows, columns=["table", "column", "missing", "missing_share"]),
        customers=int(customers),
        customers_without_consent=int(without or 0),
    )
