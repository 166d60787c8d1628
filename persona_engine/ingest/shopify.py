"""The `shopify` preset: Shopify's orders export (Orders > Export > CSV).

One row per line item; order-level columns (Financial Status, Total, Discount Amount,
Billing ...) are filled on the first row of each order and may be blank on the others.
Orders are keyed by Name (#1001), customers by email: lower-cased, or its SHA-256 when
the user asks for pseudonymisation (then no name or email is stored).
"""

from __future__ import annotations

from persona_engine.errors import ImportRejected
from persona_engine.ingest.context import BuildContext
from persona_engine.ingest.parse import Field, resolve_columns

LAYOUT = (
    "the Shopify orders export layout: Name, Email, Financial Status, Created at, Total, "
    "Lineitem quantity, Lineitem name, Lineitem price (Paid at, Currency, Discount Amount, "
    "Lineitem sku, Billing City/Province/Country, Cancelled at, Refunded Amount, Source, ...)"
)

FIELDS = (
    Field("name", "text", required=True, needs_value=True, help="the order name, e.g. #1001"),
    Field("email", "text", required=True, help="the customer's email, empty for guests"),
    Field("financial_status", "text", required=True, help="paid, refunded, voided..."),
    Field("paid_at", "timestamp"),
    Field("accepts_marketing", "boolean"),
    Field("currency", "text"),
    Field("subtotal", "number"),
    Field("shipping", "number"),
    Field("taxes", "number"),
    Field("total", "number", required=True, help="what the customer paid"),
    Field("discount_amount", "number"),
    Field("created_at", "timestamp", required=True, needs_value=True, help="when the order was placed"),
    Field("lineitem_quantity", "integer", required=True, needs_value=True),
    Field("lineitem_name", "text", required=True, needs_value=True),
    Field("lineitem_price", "number", required=True, needs_value=True),
    Field("lineitem_sku", "text"),
    Field("billing_name", "text"),
    Field("billing_city", "text"),
    Field("billing_province", "text", aliases=("Billing Province Name",)),
    Field("billing_country", "text"),
    Field("cancelled_at", "timestamp"),
    Field("payment_method", "text"),
    Field("refunded_amount", "number"),
    Field("vendor", "text"),
    Field("source", "text"),
)

COMPLETED = ("paid", "partially_paid", "partially_refunded", "authorized", "pending")
RETURNED = ("refunded",)
CANCELLED = ("voided", "expired")

# Shopify "Source": the POS is the shop's store, the mobile apps are the app channel.
STORE_SOURCES = ("pos",)
APP_SOURCES = ("iphone", "android", "ios", "mobile_app", "shopify_mobile")

RULES = {
    "cancelled": "orders with a Cancelled at date, or voided or expired, imported as cancelled",
    "refunded": "refunded orders imported as returned, kept out of revenue",
    "partial": "partially refunded orders: amount = Total minus Refunded Amount",
    "pending": "pending or authorized orders counted as completed (payment not yet captured)",
    "guest": "orders without an email imported as guest orders",
    "no_total": "orders without a Total on any line: amount = line items - discount + "
                "shipping + taxes",
    "overlap": "orders found identically in several files: imported once",
    "pseudonymised": "customers keyed by the SHA-256 of their lower-cased email; no names or "
                     "emails stored",
}

_TYPED = "ingest_sh_typed"
_LINES = "ingest_sh_lines"
_ORDERS = "ingest_sh_orders"
_ORDER_LEVEL = ("email", "financial_status", "created_at", "total", "currency", "cancelled_at")


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def build(ctx: BuildContext) -> None:
    """Fill the canonical staging tables from Shopify orders exports."""
    consent_column = ctx.consent_column
    known_status = _words(COMPLETED + RETURNED + CANCELLED)
    fields = list(FIELDS)
    if consent_column is not None:
        fields.append(Field("consent", "boolean", required=True, help="the consent answer"))
    for staged in ctx.staged:
        explicit = {"consent": consent_column} if consent_column is not None else None
        ctx.require_consent_column(staged)
        resolved = resolve_columns(staged, fields, LAYOUT, explicit)
        ctx.typed(staged, fields, resolved, _TYPED, append=staged.index > 0,
                  hard_fields=("consent",))
        ctx.flag_rows(
            staged, _TYPED,
            f"financial_status IS NOT NULL AND lower(financial_status) NOT IN ({known_status})",
            resolved.get("financial_status"), "financial_status",
            ("financial status not understood", "financial statuses not understood"),
            "expected paid, partially_paid, partially_refunded, authorized, pending, refunded, "
            "voided or expired", "unknown_status",
        )
        ctx.finish_file(staged, _TYPED)
    consent_sql = "consent" if consent_column is not None else "CAST(NULL AS BOOLEAN) AS consent"
    names = ", ".join(f.name for f in FIELDS)
    key = "sha256(lower(email))" if ctx.pseudonymise else "lower(email)"
    # rowid kept as _row: messages name the file line of a row.
    ctx.cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {ctx.temp(_LINES)} AS "  # noqa: S608
        f"SELECT _file, rowid AS _row, {names}, {consent_sql}, {key} AS customer_key "
        f"FROM {_TYPED} WHERE NOT _bad"
    )
    ctx.drop(_TYPED)
    if len(ctx.staged) > 1:
        _merge_overlapping_files(ctx, names)
    _check_conflicts(ctx)
    _fill_canonical(ctx)
    ctx.drop(_LINES, _ORDERS)


def _merge_overlapping_files(ctx: BuildContext, names: str) -> None:
    # Two exports covering the same days: an order found in several files must have the
    # same rows in each (then it is kept once), else two orders share a Name.
    line = f"concat_ws('|', {names})"  # names: the code constant FIELDS
    merged = ctx.merge_overlapping_files(_LINES, "name", line, "_row", "order", "rows")
    if merged:
        ctx.rule(RULES["overlap"], merged)


def _check_conflicts(ctx: BuildContext) -> None:
    # Order-level columns are blank on an order's later rows; two different non-blank
    # values mean two orders share a Name (Shopify allows it), which cannot be merged.
    for column in _ORDER_LEVEL:  # code constants
        rows = ctx.cur.execute(f"""
            SELECT name FROM {_LINES} GROUP BY name HAVING count(DISTINCT {column}) > 1
            ORDER BY name LIMIT 1
        """).fetchall()  # noqa: S608
        if not rows:
            continue
        name = rows[0][0]
        examples = ctx.cur.execute(f"""
            SELECT _file, _row, CAST({column} AS VARCHAR) FROM (
                SELECT _file, _row, {column},
                       row_number() OVER (PARTITION BY {column} ORDER BY _file, _row) AS n
                FROM {_LINES} WHERE name = ? AND {column} IS NOT NULL
            ) WHERE n = 1 ORDER BY _file, _row LIMIT 2
        """, [name]).fetchall()  # noqa: S608
        shown = " and ".join(f"{value!r} on {ctx.where(f, row)}" for f, row, value in examples)
        raise ImportRejected(
            f"order {name} has two different values of {column.replace('_', ' ')} ({shown}); "
            "expected one order per Name: two orders share this name"
        )


def _fill_canonical(ctx: BuildContext) -> None:
    cur = ctx.cur
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE {ctx.temp(_ORDERS)} AS
        SELECT name,
               max(customer_key) AS customer_key,
               min(created_at) AS created_at,
               lower(max(financial_status)) AS financial_status,
               max(cancelled_at) AS cancelled_at,
               max(total) AS total,
               max(refunded_amount) AS refunded_amount,
               max(discount_amount) AS discount_amount,
               sum(lineitem_quantity * lineitem_price) AS items_total,
               max(shipping) AS shipping, max(taxes) AS taxes,
               max(currency) AS currency, max(payment_method) AS payment_method,
               lower(max(source)) AS source
        FROM {_LINES} GROUP BY name
    """)  # noqa: S608
    cur.execute(f"""
        INSERT INTO ingest_orders
        SELECT name, customer_key, created_at,
               CASE WHEN source IN ({_words(STORE_SOURCES)}) THEN 'store'
                    WHEN source IN ({_words(APP_SOURCES)}) THEN 'app' ELSE 'web' END,
               NULL, payment_method,
               CAST(coalesce(total, items_total - coalesce(discount_amount, 0)
                                    + coalesce(shipping, 0) + coalesce(taxes, 0))
                    - CASE WHEN financial_status = 'partially_refunded'
                           THEN coalesce(refunded_amount, 0) ELSE 0 END AS DOUBLE),
               CAST(coalesce(discount_amount, 0) AS DOUBLE),
               CASE WHEN cancelled_at IS NOT NULL OR financial_status IN ({_words(CANCELLED)})
                        THEN 'cancelled'
                    WHEN financial_status IN ({_words(RETURNED)}) THEN 'returned'
                    ELSE 'completed' END,
               currency
        FROM {_ORDERS}
    """)  # noqa: S608
    orders = _ORDERS
    ctx.rule(RULES["cancelled"], ctx.count(
        "SELECT count(*) FROM ingest_orders WHERE status = 'cancelled'"))
    ctx.rule(RULES["refunded"], ctx.count(
        "SELECT count(*) FROM ingest_orders WHERE status = 'returned'"))
    ctx.rule(RULES["partial"], ctx.count(
        f"SELECT count(*) FROM {orders} WHERE financial_status = 'partially_refunded'"))  # noqa: S608
    ctx.rule(RULES["pending"], ctx.count(
        f"SELECT count(*) FROM {orders} WHERE financial_status IN ('pending', 'authorized') "  # noqa: S608
        "AND cancelled_at IS NULL"))
    ctx.rule(RULES["guest"], ctx.count(
        "SELECT count(*) FROM ingest_orders WHERE customer_external_id IS NULL"))
    ctx.rule(RULES["no_total"], ctx.count(f"SELECT count(*) FROM {orders} WHERE total IS NULL"))  # noqa: S608

    cur.execute(f"""
        INSERT INTO ingest_order_items (order_external_id, product_external_id, quantity, unit_price)
        SELECT name, coalesce(lineitem_sku, lineitem_name), lineitem_quantity,
               CAST(lineitem_price AS DOUBLE)
        FROM {_LINES}
    """)  # noqa: S608
    cur.execute(f"""
        INSERT INTO ingest_products (external_id, name, brand, price)
        SELECT coalesce(lineitem_sku, lineitem_name), arg_max(lineitem_name, created_at),
               arg_max(vendor, created_at) FILTER (vendor IS NOT NULL),
               CAST(mode(lineitem_price) AS DOUBLE)
        FROM {_LINES} GROUP BY coalesce(lineitem_sku, lineitem_name)
    """)  # noqa: S608

    # Customer attributes come from their latest order that has them. Pseudonymised
    # imports keep only the coarse location and the marketing flag.
    personal = (
        "NULL, NULL, NULL" if ctx.pseudonymise else
        "split_part(billing_name, ' ', 1), "
        "nullif(trim(substr(billing_name, length(split_part(billing_name, ' ', 1)) + 2)), ''), "
        "email"
    )
    consent = (
        "coalesce(bool_and(consent), false)" if ctx.consent_column is not None
        else "CAST(NULL AS BOOLEAN)"
    )
    cur.execute(f"""
        INSERT INTO ingest_customers (external_id, created_at, first_name, last_name, email, city,
                                      region, country, newsletter_opt_in, consent)
        SELECT customer_key, created_at, {personal}, city, region, country, newsletter, consent
        FROM (
            SELECT customer_key, min(created_at) AS created_at,
                   lower(any_value(email)) AS email,
                   arg_max(billing_name, created_at) FILTER (billing_name IS NOT NULL) AS billing_name,
                   arg_max(billing_city, created_at) FILTER (billing_city IS NOT NULL) AS city,
                   arg_max(billing_province, created_at) FILTER (billing_province IS NOT NULL) AS region,
                   arg_max(billing_country, created_at) FILTER (billing_country IS NOT NULL) AS country,
                   arg_max(accepts_marketing, created_at) FILTER (accepts_marketing IS NOT NULL)
                       AS newsletter,
                   {consent} AS consent
            FROM {_LINES} WHERE customer_key IS NOT NULL GROUP BY customer_key
        )
    """)  # noqa: S608
    if ctx.pseudonymise:
        ctx.rule(RULES["pseudonymised"], ctx.count("SELECT count(*) FROM ingest_customers"))
