"""The `generic` preset: one file per table in the documented layout, or any layout mapped.

Tables: customers, products, orders, order_items, sessions, and transactions (a log of
purchases without order ids or products: one order per line). Which table a file holds
comes from its mapping entry, else its name (orders.csv), else its columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from persona_engine.errors import ImportRejected
from persona_engine.ingest.context import BuildContext
from persona_engine.ingest.mapping import GENERIC_LAYOUTS, mapping_for, table_for_file
from persona_engine.ingest.parse import Field, resolve_columns
from persona_engine.ingest.sources import StagedFile

# Processing order: referenced tables before the tables that reference them.
ORDER = ("customers", "products", "orders", "transactions", "order_items", "sessions")
KEYS = {"customers": "customer_id", "products": "product_id", "orders": "order_id",
        "sessions": "session_id"}

# Status words (lower case) in English, French and German; anything else is a soft problem.
STATUS_WORDS = {
    "completed": ("completed", "complete", "paid", "fulfilled", "delivered", "shipped", "closed",
                  "done", "success", "succeeded", "partially_refunded", "partially refunded",
                  "payée", "payé", "livrée", "expédiée", "terminée", "bezahlt", "geliefert",
                  "versandt", "abgeschlossen"),
    "cancelled": ("cancelled", "canceled", "voided", "void", "failed", "expired", "declined",
                  "annulée", "annulé", "storniert", "abgebrochen"),
    "returned": ("returned", "refunded", "return", "refund", "retournée", "remboursée",
                 "remboursé", "zurückgegeben", "erstattet"),
}

RULES = {
    "repeats": "identical repeated rows kept once",
    "bare_customers": "customers found only in orders, transactions or sessions: created "
                      "without attributes",
    "bare_products": "products found only in order items: created without name or price",
    "transactions": "transaction-log lines imported as one order each",
    "refunds": "transaction-log lines with a negative amount imported as returned orders",
    "no_status": "orders without a status column imported as completed",
    "session_orders": "sessions naming an order that is not in the orders: order link dropped",
}


def _layout(table: str) -> str:
    fields = GENERIC_LAYOUTS[table]
    required = [f.name for f in fields if f.required]
    optional = [f.name for f in fields if not f.required]
    return f"the generic {table} layout ({', '.join(required)}; optional: {', '.join(optional)})"


def _status_sql(column: str) -> str:
    # column is a code constant; the words are code constants.
    parts = [
        f"WHEN lower(trim({column})) IN ({', '.join(repr(w) for w in words)}) THEN '{status}'"
        for status, words in STATUS_WORDS.items()
    ]
    return f"CASE WHEN {column} IS NULL THEN 'completed' {' '.join(parts)} END"


def _assign_tables(ctx: BuildContext) -> list[tuple[StagedFile, str, Mapping[str, Any] | None]]:
    assigned = []
    for staged in ctx.staged:
        entry = mapping_for(staged.source.name, ctx.mapping)
        table = entry["table"] if entry else table_for_file(staged.source.name, list(staged.columns))
        if table is None:
            raise ImportRejected(
                f"{staged.label}: cannot tell which table this file holds; name it customers, "
                "products, orders, order_items, sessions or transactions (.csv, .parquet, .xlsx), "
                'or give a mapping with "table"'
            )
        assigned.append((staged, table, entry))
    tables = {t for _, t, _ in assigned}
    if not tables & {"orders", "transactions"}:
        raise ImportRejected(
            f"no orders among {', '.join(s.label for s in ctx.staged)}: an import needs an orders "
            "file or a transaction log (customer id, date, amount)"
        )
    if "order_items" in tables and "orders" not in tables:
        raise ImportRejected("order items were given without an orders file; expected orders.csv too")
    return assigned


def build(ctx: BuildContext) -> None:
    """Fill the canonical staging tables from generic files."""
    assigned = _assign_tables(ctx)
    consent_column = ctx.consent_column
    consent_tables: set[str] = set()
    unions: dict[str, list[str]] = {t: [] for t in ORDER}
    for table in ORDER:
        for index, (staged, t, entry) in enumerate(assigned):
            if t != table:
                continue
            fields = list(GENERIC_LAYOUTS[table])
            explicit: dict[str, str] = dict(entry["columns"]) if entry else {}
            hard: tuple[str, ...] = ()
            if consent_column is not None and table in ("customers", "transactions"):
                if consent_column in staged.columns or any(
                    c.lower() == consent_column.lower() for c in staged.columns
                ):
                    if table == "transactions":
                        fields.append(Field("consent_analytics", "boolean"))
                    explicit["consent_analytics"] = consent_column
                    hard = ("consent_analytics",)
                    consent_tables.add(table)
            resolved = resolve_columns(staged, fields, _layout(table), explicit)
            target = ctx.temp(f"ingest_g_{table}_{index}")
            ctx.typed(staged, fields, resolved, target, hard_fields=hard)
            _flag_rows(ctx, staged, table, target, resolved)
            ctx.finish_file(staged, target)
            unions[table].append(_select_fields(table, fields, target))
        if unions[table]:
            ctx.cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {ctx.temp('ingest_g_' + table)} AS "  # noqa: S608
                + " UNION ALL BY NAME ".join(unions[table])
            )
            if table in KEYS:
                _dedupe(ctx, table)
    if consent_column is not None and not consent_tables:
        raise ImportRejected(
            f"consent column '{consent_column}' is in none of the customers or transactions files "
            f"({', '.join(s.label for s in ctx.staged)}); name a column that holds each "
            "customer's yes/no, or declare all or none"
        )
    _fill_canonical(ctx, {t for _, t, _ in assigned}, consent_tables)


def _select_fields(table: str, fields: list[Field], target: str) -> str:
    # rowid kept as _row: messages name the file line of a row.
    names = ", ".join(f.name for f in fields)
    extra = ", _status" if table == "orders" else ""
    return f"SELECT _file, rowid AS _row, {names}{extra} FROM {target} WHERE NOT _bad"  # noqa: S608


def _flag_rows(ctx: BuildContext, staged: StagedFile, table: str, target: str,
               resolved: Mapping[str, str]) -> None:
    if table == "orders":
        ctx.cur.execute(f"ALTER TABLE {target} ADD COLUMN _status VARCHAR")
        ctx.cur.execute(f"UPDATE {target} SET _status = {_status_sql('status')}")  # noqa: S608
        if "status" not in resolved:
            ctx.rule(RULES["no_status"], staged.rows)
        ctx.flag_rows(
            staged, target, "_status IS NULL", resolved.get("status"), "status",
            ("status not understood", "statuses not understood"),
            "expected completed, cancelled or returned (or paid, refunded, voided...)",
            "unknown_status",
        )
    if table == "order_items":
        ctx.flag_rows(
            staged, target, "order_id NOT IN (SELECT order_id FROM ingest_g_orders)",
            resolved.get("order_id"), "order_id",
            ("order item of an order missing from the orders",
             "order items of orders missing from the orders"),
            "expected every order_id to be in the orders file", "unknown_order",
        )


def _dedupe(ctx: BuildContext, table: str) -> None:
    key = KEYS[table]  # a code constant
    union = f"ingest_g_{table}"
    fields = ", ".join(f.name for f in GENERIC_LAYOUTS[table])
    conflict = ctx.cur.execute(f"""
        SELECT {key} FROM (SELECT DISTINCT {fields} FROM {union})
        GROUP BY {key} HAVING count(*) > 1 ORDER BY {key} LIMIT 1
    """).fetchall()  # noqa: S608
    if conflict:
        value = conflict[0][0]
        lines = ctx.cur.execute(
            f"SELECT _file, _row FROM {union} WHERE {key} = ? ORDER BY _file, _row LIMIT 2",  # noqa: S608
            [value],
        ).fetchall()
        where = " and ".join(ctx.where(f, row) for f, row in lines)
        raise ImportRejected(
            f"{table}: {key} {value!r} appears on {where} with different content; expected one "
            f"row per {key} (identical repeats are fine)"
        )
    total = ctx.count(f"SELECT count(*) FROM {union}")  # noqa: S608
    ctx.cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE {union} AS SELECT * FROM {union}
        QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _file, _row) = 1
    """)  # noqa: S608
    ctx.rule(RULES["repeats"], total - ctx.count(f"SELECT count(*) FROM {union}"))  # noqa: S608


def _fill_canonical(ctx: BuildContext, tables: set[str], consent_tables: set[str]) -> None:
    cur = ctx.cur
    if "customers" in tables:
        cur.execute("""
            INSERT INTO ingest_customers
            SELECT customer_id, created_at, first_name, last_name, email, age, gender,
                   marital_status, city, region, country, education, occupation,
                   CAST(income AS DOUBLE), acquisition_channel, preferred_device,
                   newsletter_opt_in, consent_analytics
            FROM ingest_g_customers
        """)
    if "products" in tables:
        cur.execute("""
            INSERT INTO ingest_products
            SELECT product_id, name, category, brand, CAST(price AS DOUBLE) FROM ingest_g_products
        """)
    if "orders" in tables:
        cur.execute("""
            INSERT INTO ingest_orders
            SELECT order_id, customer_id, ordered_at, channel, device, payment_method,
                   CAST(amount AS DOUBLE), CAST(coalesce(discount, 0) AS DOUBLE), _status, currency
            FROM ingest_g_orders
        """)
    if "transactions" in tables:
        _fill_transactions(ctx)
    if "order_items" in tables:
        cur.execute("""
            INSERT INTO ingest_order_items (order_external_id, product_external_id, quantity, unit_price)
            SELECT order_id, product_id, quantity, CAST(unit_price AS DOUBLE) FROM ingest_g_order_items
        """)
    if "sessions" in tables:
        ctx.rule(RULES["session_orders"], ctx.count(
            "SELECT count(*) FROM ingest_g_sessions WHERE order_id IS NOT NULL "
            "AND order_id NOT IN (SELECT external_id FROM ingest_orders)"))
        cur.execute("""
            INSERT INTO ingest_sessions
            SELECT session_id, customer_id, started_at, device, source, pages_viewed, duration_s,
                   viewed_product, added_to_cart, checkout_started,
                   CASE WHEN order_id IN (SELECT external_id FROM ingest_orders) THEN order_id END
            FROM ingest_g_sessions
        """)
    # Customers and products named by other files but absent from their own file.
    before = ctx.count("SELECT count(*) FROM ingest_customers")
    cur.execute("""
        INSERT INTO ingest_customers (external_id, created_at)
        SELECT customer, min(seen_at) FROM (
            SELECT customer_external_id AS customer, ordered_at AS seen_at FROM ingest_orders
            UNION ALL
            SELECT customer_external_id, started_at FROM ingest_sessions
        ) WHERE customer IS NOT NULL
          AND customer NOT IN (SELECT external_id FROM ingest_customers)
        GROUP BY customer
    """)
    bare = ctx.count("SELECT count(*) FROM ingest_customers") - before
    if "customers" in tables:
        ctx.rule(RULES["bare_customers"], bare)
    if "transactions" in consent_tables:
        cur.execute("""
            UPDATE ingest_customers c SET consent = t.consent FROM (
                SELECT customer_id, coalesce(bool_and(consent_analytics), false) AS consent
                FROM ingest_g_transactions GROUP BY customer_id
            ) t
            WHERE c.external_id = t.customer_id AND c.consent IS NULL
        """)
    before = ctx.count("SELECT count(*) FROM ingest_products")
    cur.execute("""
        INSERT INTO ingest_products (external_id)
        SELECT DISTINCT product_external_id FROM ingest_order_items
        WHERE product_external_id IS NOT NULL
          AND product_external_id NOT IN (SELECT external_id FROM ingest_products)
    """)
    ctx.rule(RULES["bare_products"], ctx.count("SELECT count(*) FROM ingest_products") - before)


def _fill_transactions(ctx: BuildContext) -> None:
    # One order per line. Its id is built from the line's content and its rank among
    # the same customer's lines at the same moment, so importing the same log again
    # gives the same ids (and the replace-import never doubles anything).
    cur = ctx.cur
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE {ctx.temp('ingest_g_txn_orders')} AS
        SELECT 'txn-' || customer_id || '-' || strftime(ordered_at, '%Y%m%d%H%M%S') || '-'
                   || row_number() OVER (PARTITION BY customer_id, ordered_at
                                         ORDER BY amount, quantity, _file, _row) AS order_id,
               customer_id, ordered_at, amount, quantity, currency
        FROM ingest_g_transactions
    """)  # noqa: S608 - code constants only
    cur.execute("""
        INSERT INTO ingest_orders
        SELECT order_id, customer_id, ordered_at, NULL, NULL, NULL, CAST(amount AS DOUBLE), 0,
               CASE WHEN amount < 0 THEN 'returned' ELSE 'completed' END, currency
        FROM ingest_g_txn_orders
    """)
    cur.execute("""
        INSERT INTO ingest_order_items (order_external_id, product_external_id, quantity, unit_price)
        SELECT order_id, NULL, quantity, CAST(amount / quantity AS DOUBLE)
        FROM ingest_g_txn_orders WHERE quantity IS NOT NULL AND quantity <> 0
    """)
    ctx.rule(RULES["transactions"], ctx.count("SELECT count(*) FROM ingest_g_txn_orders"))
    ctx.rule(RULES["refunds"], ctx.count("SELECT count(*) FROM ingest_g_txn_orders WHERE amount < 0"))
