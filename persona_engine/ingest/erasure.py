"""GDPR right to erasure: remove one customer from every table, log counts only.

Every table with a `customer_id` column is found in the catalogue, so a table added by a
later migration is covered without touching this module. Rows that belong to the
customer without naming them (order items of their orders, events of their sessions)
go too; an anonymous session that led to one of their orders loses that link.
"""

from __future__ import annotations

import json
import re

import duckdb
import pandas as pd

from persona_engine.errors import NotFoundError, ValidationError
from persona_engine.store import fetch_df, transaction

_TABLES_WITH_CUSTOMER_ID = """
SELECT c.table_name
FROM information_schema.columns c
JOIN information_schema.tables t
  ON t.table_name = c.table_name AND t.table_schema = c.table_schema
WHERE c.column_name = 'customer_id' AND t.table_type = 'BASE TABLE'
  AND t.table_schema = 'main' AND t.table_catalog = current_database()
ORDER BY c.table_name
"""


def _quoted(name: str) -> str:
    # Table names come from the database catalogue (the schema's own tables), not from
    # input; quoting keeps any name a valid identifier.
    return '"' + name.replace('"', '""') + '"'


def erase_customer(cur: duckdb.DuckDBPyConnection, customer_id: int, erased_by: str) -> dict[str, int]:
    """Delete every row about `customer_id`; returns {table: rows removed} (non-zero only).

    Removes the customer's rows from every table with a customer_id column (customers,
    orders, sessions, events, customer_features, persona_members, cluster_assignments,
    sample_truth, rollups...), the order_items of their orders and the events of their
    sessions, and unlinks anonymous sessions from their orders. One transaction; the
    erasure_log row holds who erased, when, and these counts: no id, no personal data.
    Raises NotFoundError if no customer has this id.
    """
    exists = cur.execute(
        "SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]
    ).fetchall()[0][0]
    if not exists:
        raise NotFoundError(f"no customer with id {customer_id}: nothing was erased")
    removed: dict[str, int] = {}

    def run(label: str, sql: str) -> None:
        count = int(cur.execute(sql, [customer_id]).fetchall()[0][0])
        if count:
            removed[label] = removed.get(label, 0) + count

    with transaction(cur):
        run("order_items", "DELETE FROM order_items WHERE order_id IN "
                           "(SELECT order_id FROM orders WHERE customer_id = ?)")
        # Events of their sessions that do not carry the customer id themselves.
        run("events", "DELETE FROM events WHERE customer_id IS NULL AND session_id IN "
                      "(SELECT session_id FROM sessions WHERE customer_id = ?)")
        run("sessions unlinked from an erased order",
            "UPDATE sessions SET order_id = NULL WHERE customer_id IS NULL AND order_id IN "
            "(SELECT order_id FROM orders WHERE customer_id = ?)")
        tables = [row[0] for row in cur.execute(_TABLES_WITH_CUSTOMER_ID).fetchall()]
        # Children before customers, so nothing points at a missing customer midway.
        for table in sorted(tables, key=lambda t: t == "customers"):
            run(table, f"DELETE FROM {_quoted(table)} WHERE customer_id = ?")  # noqa: S608
        cur.execute(
            "INSERT INTO erasure_log (erased_by, rows_removed) VALUES (?, ?)",
            [erased_by, json.dumps(removed, sort_keys=True)],
        )
    return removed


# An id as a spreadsheet writes it: 17850.0 for 17850.
_FLOAT_ID = re.compile(r"([0-9]+)\.0+")

# Every way a person may name a customer: the internal id, the id of the source files
# (as written, or lower-cased as Shopify emails are stored), or the SHA-256 a
# pseudonymised import keyed the email by.
_FIND_CUSTOMER = """
SELECT DISTINCT customer_id FROM customers
WHERE customer_id = TRY_CAST($text AS BIGINT)
   OR external_id = $text
   OR external_id = lower($text)
   OR external_id = sha256(lower($text))
ORDER BY customer_id
LIMIT 3
"""


def find_customer(cur: duckdb.DuckDBPyConnection, text: str) -> int:
    """The customer_id a person means by `text`: the app's id, or the id in the source files.

    Accepts the internal customer_id, the source's id (`17850`, `17850.0`, `C001`), a
    Shopify customer's email (also when the import pseudonymised it). Raises
    NotFoundError when nobody matches, ValidationError when the text names two customers.
    """
    value = text.strip()
    if not value:
        raise ValidationError("type a customer id (as in your files, or the app's id) first")
    float_id = _FLOAT_ID.fullmatch(value)
    if float_id:
        value = float_id.group(1)
    rows = cur.execute(_FIND_CUSTOMER, {"text": value}).fetchall()
    if not rows:
        raise NotFoundError(f"no customer with id {value!r}: nothing was erased; check the id in your files")
    if len(rows) > 1:
        raise ValidationError(
            f"{value!r} names {len(rows)} different customers (an app id and another customer's "
            "file id): type the id exactly as it is in your files"
        )
    return int(rows[0][0])


def list_erasures(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The erasure log, newest first: erased_at, erased_by, rows_removed (total rows) and
    tables (JSON {table: rows}). It holds no customer id and no personal data."""
    frame = fetch_df(cur, "SELECT erased_at, erased_by, rows_removed FROM erasure_log ORDER BY erased_at DESC")
    counts = [json.loads(r) if r else {} for r in frame["rows_removed"]]
    return pd.DataFrame({
        "erased_at": frame["erased_at"],
        "erased_by": frame["erased_by"],
        "rows_removed": [sum(c.values()) for c in counts],
        "tables": counts,
    })
