"""GDPR right to erasure: remove one customer from every table, log counts only.

Every table with a `customer_id` column is found in the catalogue, so a table added by a
later migration is covered without touching this module. Rows that belong to the
customer without naming them (order items of their orders, events of their sessions)
go too; an anonymous session that led to one of their orders loses that link.
"""

from __future__ import annotations

import json

import duckdb

from persona_engine.errors import NotFoundError
from persona_engine.store import transaction

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
