"""The `online-retail` preset: UCI "Online Retail" / "Online Retail II" invoice-line files.

One row per invoice line: InvoiceNo (or Invoice), StockCode, Description, Quantity,
InvoiceDate, UnitPrice (or Price), CustomerID (or Customer ID), Country. Invoices become
orders, lines order items, stock codes products. The rules below say how each kind of
line is read; the README ("Importing your own data") lists them for users.
"""

from __future__ import annotations

from persona_engine.errors import ImportRejected
from persona_engine.ingest.context import BuildContext
from persona_engine.ingest.parse import Field, resolve_columns

LAYOUT = (
    "the Online Retail layout: InvoiceNo (or Invoice), StockCode, Description, Quantity, InvoiceDate, "
    "UnitPrice (or Price), CustomerID (or Customer ID), Country"
)

FIELDS = (
    Field("invoice", "text", required=True, needs_value=True,
          aliases=("InvoiceNo", "Invoice", "Invoice Number"), help="the invoice number"),
    Field("stock_code", "text", required=True, needs_value=True,
          aliases=("StockCode", "Stock Code"), help="the product code"),
    Field("description", "text", aliases=("Description",)),
    Field("quantity", "integer", required=True, needs_value=True, aliases=("Quantity",),
          help="units on the line, negative on cancellations"),
    Field("invoice_date", "timestamp", required=True, needs_value=True,
          aliases=("InvoiceDate", "Invoice Date"), help="the invoice date and time"),
    Field("unit_price", "number", required=True, needs_value=True,
          aliases=("UnitPrice", "Price", "Unit Price"), help="the price of one unit"),
    Field("customer_id", "id", required=True, aliases=("CustomerID", "Customer ID"),
          help="the customer number, empty for guests"),
    Field("country", "text", aliases=("Country",)),
)

# The UCI shop sells in pounds sterling through its website.
CURRENCY = "GBP"
CHANNEL = "web"

# Stock codes that are not merchandise keep their line (the customer was billed for
# them) but get a category naming what they are, so product analyses can leave them out.
SERVICE_CATEGORIES = {
    "POST": "Postage",
    "DOT": "Postage",
    "C2": "Postage",
    "M": "Manual adjustment",
    "D": "Discount",
    "S": "Samples",
    "BANK CHARGES": "Fees",
    "CRUK": "Fees",
}
GIFT_VOUCHER_CATEGORY = "Gift voucher"

# Two lines of one invoice stamped further apart than this are not one invoice.
MAX_INVOICE_SPREAD_MINUTES = 60

RULES = {
    "sale": "invoices imported as completed orders",
    "cancellation": "cancellation invoices (number starting with C) imported as cancelled "
                    "orders, kept out of revenue",
    "guest": "orders without CustomerID imported as guest orders: in shop totals, "
             "not in customer analyses",
    "stock_adjustment": "stock-adjustment lines left out (invoices without a customer whose "
                        "lines are all priced 0: damaged, found, check...)",
    "free_shipment": "free-shipment lines left out (invoices of a customer whose lines are all "
                     "priced 0: not a sale)",
    "bad_debt": "bad-debt adjustment lines left out (invoices starting with A, StockCode B)",
    "marketplace_fee": "Amazon fee lines left out (StockCode AMAZONFEE: a cost, not a sale)",
    "zero_price": "zero-price lines kept at price 0 inside paid invoices (free items)",
    "service": "postage, carriage, manual, discount, sample and bank-charge lines kept in their "
               "invoice, as products in their own category",
    "duplicates": "exact duplicate lines kept: the shop's invoice lists the line twice",
    "spread": "invoices whose lines carry different times: dated at their first line",
    "countries": "customers with lines in several countries: the most frequent country kept",
    "overlap": "invoices found identically in several files: imported once",
}

_LINES = "ingest_or_lines"
_INVOICES = "ingest_or_invoices"
_BY_COUNTRY = "ingest_or_by_country"

# Line-level exclusions: accounting entries that are not sales whatever their invoice.
_EXCLUDED_LINE = "(l.stock_code = 'B' OR upper(l.stock_code) = 'AMAZONFEE')"


def build(ctx: BuildContext) -> None:
    """Fill the canonical staging tables from online-retail line files."""
    consent_column = ctx.consent_column
    for staged in ctx.staged:
        fields = list(FIELDS)
        explicit = None
        if consent_column is not None:
            fields.append(Field("consent", "boolean", required=True, help="the consent answer"))
            explicit = {"consent": consent_column}
        ctx.require_consent_column(staged)
        resolved = resolve_columns(staged, fields, LAYOUT, explicit)
        ctx.typed(staged, fields, resolved, _LINES, append=staged.index > 0,
                  hard_fields=("consent",), row_hash=True)
        ctx.finish_file(staged, _LINES)
    if len(ctx.staged) > 1:
        _merge_overlapping_files(ctx)
    _summarise_invoices(ctx)
    _check_invoice_conflicts(ctx)
    _count_rules(ctx)
    _fill_canonical(ctx)


def _merge_overlapping_files(ctx: BuildContext) -> None:
    # Daily exports re-sent, or a folder plus a re-export: an invoice present in several
    # files must have the same lines in each (then it is kept once), else it is a conflict.
    line = ("concat_ws('|', stock_code, description, quantity, invoice_date, unit_price, "
            "customer_id, country)")
    merged = ctx.merge_overlapping_files(_LINES, "invoice", line, "rowid", "invoice", "lines", kept="NOT _bad")
    if merged:
        ctx.rule(RULES["overlap"], merged)


def _summarise_invoices(ctx: BuildContext) -> None:
    # One pass over the lines gives everything invoice-level: the checks, the kind of
    # each invoice, the order it becomes and the line counts the rules report.
    ctx.cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE {ctx.temp(_INVOICES)} AS
        SELECT invoice, ingest_key(invoice) AS order_id, kind, customer_id, first_at, amount,
               kept_lines,
               customers, countries, spread_minutes, times, lines, zero_price_lines,
               service_lines, excluded_b, excluded_fee,
               CASE WHEN kind IN ('sale', 'cancellation') AND kept_lines > 0 THEN true
                    ELSE false END AS is_order
        FROM (
            SELECT invoice,
                CASE WHEN upper(invoice) LIKE 'A%' THEN 'bad_debt'
                     WHEN upper(invoice) LIKE 'C%' THEN 'cancellation'
                     WHEN bool_and(unit_price = 0) AND bool_or(customer_id IS NOT NULL)
                         THEN 'free_shipment'
                     WHEN bool_and(unit_price = 0) THEN 'stock_adjustment'
                     ELSE 'sale' END AS kind,
                max(customer_id) AS customer_id,
                min(invoice_date) AS first_at,
                sum(quantity * unit_price) FILTER (NOT {_EXCLUDED_LINE}) AS amount,
                count(*) FILTER (NOT {_EXCLUDED_LINE}) AS kept_lines,
                -- min <> max instead of count(DISTINCT): same answer, no hash per group.
                min(customer_id) <> max(customer_id) AS customers,
                min(country) <> max(country) AS countries,
                date_diff('minute', min(invoice_date), max(invoice_date)) AS spread_minutes,
                min(invoice_date) <> max(invoice_date) AS times,
                count(*) AS lines,
                count(*) FILTER (unit_price = 0 AND NOT {_EXCLUDED_LINE}) AS zero_price_lines,
                count(*) FILTER (upper(stock_code) IN ({_codes_sql()})) AS service_lines,
                count(*) FILTER (l.stock_code = 'B') AS excluded_b,
                count(*) FILTER (upper(l.stock_code) = 'AMAZONFEE' AND l.stock_code <> 'B')
                    AS excluded_fee
            FROM {_LINES} l WHERE NOT _bad GROUP BY invoice
        )
    """)  # noqa: S608


def _check_invoice_conflicts(ctx: BuildContext) -> None:
    # One invoice, one customer, one country, one moment: anything else means two
    # different invoices share a number (conflicting content), which no rule can settle.
    rows = ctx.cur.execute(f"""
        SELECT invoice, customers, countries FROM {_INVOICES}
        WHERE customers OR countries OR spread_minutes > ?
        ORDER BY invoice LIMIT 1
    """, [MAX_INVOICE_SPREAD_MINUTES]).fetchall()  # noqa: S608
    if rows:
        invoice, customers, countries = rows[0]
        column, what = (
            ("customer_id", "customers") if customers
            else ("country", "countries") if countries
            else ("invoice_date", f"dates more than {MAX_INVOICE_SPREAD_MINUTES} minutes apart")
        )
        # column is one of three code constants above.
        examples = ctx.cur.execute(f"""
            SELECT _file, rowid, CAST({column} AS VARCHAR) FROM {_LINES}
            WHERE NOT _bad AND invoice = ?
            QUALIFY row_number() OVER (PARTITION BY {column} ORDER BY rowid) = 1
            ORDER BY rowid LIMIT 2
        """, [invoice]).fetchall()  # noqa: S608
        shown = ", ".join(f"{value} on {ctx.where(f, rowid)}" for f, rowid, value in examples)
        raise ImportRejected(
            f"invoice {invoice} has lines with different {what} ({shown}); expected one "
            f"customer, one country and one date per invoice: two invoices share this number"
        )
    ctx.rule(RULES["spread"], ctx.count(f"SELECT count(*) FROM {_INVOICES} WHERE times"))  # noqa: S608


def _count_rules(ctx: BuildContext) -> None:
    sums = ctx.cur.execute(f"""
        SELECT
            sum(lines - excluded_b) FILTER (kind = 'stock_adjustment'),
            sum(lines - excluded_b) FILTER (kind = 'free_shipment'),
            sum(lines) FILTER (kind = 'bad_debt') + sum(excluded_b) FILTER (kind <> 'bad_debt'),
            sum(excluded_fee) FILTER (kind <> 'bad_debt'),
            sum(zero_price_lines) FILTER (kind = 'sale' AND is_order),
            sum(service_lines) FILTER (is_order),
            count(*) FILTER (is_order AND kind = 'sale'),
            count(*) FILTER (is_order AND kind = 'cancellation'),
            count(*) FILTER (is_order AND customer_id IS NULL)
        FROM {_INVOICES}
    """).fetchall()[0]  # noqa: S608
    names = ("stock_adjustment", "free_shipment", "bad_debt", "marketplace_fee", "zero_price",
             "service", "sale", "cancellation", "guest")
    for name, value in zip(names, sums, strict=True):
        ctx.rule(RULES[name], int(value or 0))
    ctx.rule(RULES["duplicates"], ctx.count(
        f"SELECT count(*) - count(DISTINCT _line_hash) FROM {_LINES} WHERE NOT _bad"  # noqa: S608
    ))


def _fill_canonical(ctx: BuildContext) -> None:
    cur = ctx.cur
    cur.execute(f"""
        INSERT INTO ingest_orders
        SELECT invoice, customer_id, first_at, ?, NULL, NULL, CAST(amount AS DOUBLE), 0,
               CASE WHEN kind = 'cancellation' THEN 'cancelled' ELSE 'completed' END, ?
        FROM {_INVOICES} WHERE is_order
    """, [CHANNEL, CURRENCY])  # noqa: S608
    # Ten million lines are not copied once more: the items are a view the writer reads.
    cur.execute("DROP TABLE ingest_order_items")
    cur.execute(f"""
        CREATE TEMP VIEW ingest_order_items AS
        SELECT l.invoice AS order_external_id, l.stock_code AS product_external_id,
               l.quantity, CAST(l.unit_price AS DOUBLE) AS unit_price,
               i.order_id, p.product_id
        FROM {_LINES} l
        JOIN {_INVOICES} i ON i.invoice = l.invoice AND i.is_order
        JOIN (SELECT external_id, ingest_key(external_id) AS product_id FROM ingest_products) p
          ON p.external_id = l.stock_code
        WHERE NOT l._bad AND NOT {_EXCLUDED_LINE}
    """)  # noqa: S608

    # Products: every stock code on a line that is not an accounting entry, named after
    # its most frequent description on priced lines (adjustment lines carry notes such as
    # "damaged" instead of a name), priced at its most frequent price on sale lines
    # (positive price and quantity, invoice neither C nor A).
    cur.execute(f"""
        INSERT INTO ingest_products
        WITH variants AS (
            SELECT stock_code, description, unit_price,
                   count(*) AS n,
                   count(*) FILTER (unit_price > 0) AS priced,
                   count(*) FILTER (unit_price > 0 AND quantity > 0
                                    AND upper(invoice) NOT LIKE 'C%'
                                    AND upper(invoice) NOT LIKE 'A%') AS sold
            FROM {_LINES} l WHERE NOT _bad AND NOT {_EXCLUDED_LINE}
            GROUP BY stock_code, description, unit_price
        ), names AS (
            SELECT stock_code, description,
                   row_number() OVER (PARTITION BY stock_code
                                      ORDER BY sum(priced) DESC, sum(n) DESC, description) AS rank
            FROM variants WHERE description IS NOT NULL GROUP BY stock_code, description
        ), prices AS (
            SELECT stock_code, unit_price,
                   row_number() OVER (PARTITION BY stock_code
                                      ORDER BY sum(sold) DESC, unit_price) AS rank
            FROM variants GROUP BY stock_code, unit_price HAVING sum(sold) > 0
        )
        SELECT codes.stock_code, names.description,
               CASE WHEN upper(codes.stock_code) LIKE 'GIFT%' THEN ?
                    ELSE map_extract(MAP {_service_map_sql()}, upper(codes.stock_code))[1] END,
               NULL, CAST(prices.unit_price AS DOUBLE)
        FROM (SELECT DISTINCT stock_code FROM variants) codes
        LEFT JOIN names ON names.stock_code = codes.stock_code AND names.rank = 1
        LEFT JOIN prices ON prices.stock_code = codes.stock_code AND prices.rank = 1
    """, [GIFT_VOUCHER_CATEGORY])  # noqa: S608

    # Customers: every CustomerID in the file (also those with only cancellations), with
    # the country of most of their lines (ties: the latest), first seen on their first
    # invoice. With a consent column, a customer consents when at least one of their lines
    # says yes and none says no (blank answers say nothing; no answer at all is a no);
    # without one, the declaration decides (NULL here).
    consent = "bool_and(consent)" if ctx.consent_column is not None else "CAST(NULL AS BOOLEAN)"
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE {ctx.temp(_BY_COUNTRY)} AS
        SELECT customer_id, country, count(*) AS n, min(invoice_date) AS first_at,
               max(invoice_date) AS last_at, {consent} AS consent
        FROM {_LINES} WHERE NOT _bad AND customer_id IS NOT NULL
        GROUP BY customer_id, country
    """)  # noqa: S608
    cur.execute(f"""
        INSERT INTO ingest_customers (external_id, created_at, country, consent)
        SELECT customer_id, min(first_at), arg_max(country, (n, last_at)),
               {"coalesce(bool_and(consent), false)" if ctx.consent_column else "NULL"}
        FROM {_BY_COUNTRY} GROUP BY customer_id
    """)  # noqa: S608
    ctx.rule(RULES["countries"], ctx.count(
        f"SELECT count(*) FROM (SELECT customer_id FROM {_BY_COUNTRY} "  # noqa: S608
        "GROUP BY customer_id HAVING count(*) > 1)"))


def _codes_sql() -> str:
    # A list literal from the code constant SERVICE_CATEGORIES (no input reaches it).
    return ", ".join(f"'{code}'" for code in SERVICE_CATEGORIES)


def _service_map_sql() -> str:
    # A MAP literal from the code constant above (no input reaches it).
    pairs = ", ".join(f"'{code}': '{category}'" for code, category in SERVICE_CATEGORIES.items())
    return "{" + pairs + "}"
