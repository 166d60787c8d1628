"""The generic layout (one target table per file) and column mappings onto it.

A mapping says which column of a file feeds which field of a target table:

    {"table": "orders", "columns": {"order_id": "Invoice", "ordered_at": "Date",
                                     "amount": "Total", "customer_id": "Client"}}

optionally with "file": a pattern (fnmatch, e.g. "orders_*.csv") naming the files it
applies to; a list of such objects maps several files. Mapping files are JSON, or YAML
when PyYAML is installed. `propose_mapping` suggests one from header names (for the
mapping form), matching names, known spellings and near-misses.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from persona_engine.errors import ImportRejected
from persona_engine.ingest.parse import Field, match_columns, normalise_name

MappingInput = str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None

GENERIC_LAYOUTS: dict[str, tuple[Field, ...]] = {
    "customers": (
        Field("customer_id", "id", required=True, needs_value=True,
              aliases=("customer", "customer number", "client id", "client", "customerid", "id"),
              help="the customer's id in your shop"),
        Field("created_at", "timestamp", aliases=("signup date", "registered at", "created", "date created")),
        Field("first_name", "text", aliases=("firstname", "given name", "prenom")),
        Field("last_name", "text", aliases=("lastname", "surname", "family name", "nom")),
        Field("email", "text", aliases=("e-mail", "mail", "email address")),
        Field("age", "integer"),
        Field("gender", "text", aliases=("sex", "genre")),
        Field("marital_status", "text", aliases=("marital", "family status")),
        Field("city", "text", aliases=("town", "ville")),
        Field("region", "text", aliases=("state", "province", "county")),
        Field("country", "text", aliases=("country code", "pays")),
        Field("education", "text", aliases=("education level",)),
        Field("occupation", "text", aliases=("job", "profession", "socio-professional category")),
        Field("income", "number", aliases=("yearly income", "annual income", "revenue")),
        Field("acquisition_channel", "text", aliases=("channel", "source", "acquisition source")),
        Field("preferred_device", "text", aliases=("device",)),
        Field("newsletter_opt_in", "boolean", aliases=("newsletter", "accepts marketing", "opt in")),
        Field("consent_analytics", "boolean", aliases=("consent", "analytics consent")),
    ),
    "products": (
        Field("product_id", "id", required=True, needs_value=True,
              aliases=("sku", "product", "stock code", "item id", "id"), help="the product's id"),
        Field("name", "text", aliases=("title", "product name", "description")),
        Field("category", "text", aliases=("product type", "type", "department")),
        Field("brand", "text", aliases=("vendor", "manufacturer")),
        Field("price", "number", aliases=("unit price", "list price")),
    ),
    "orders": (
        Field("order_id", "id", required=True, needs_value=True,
              aliases=("order", "order number", "invoice", "invoice no", "id"), help="the order's id"),
        Field("customer_id", "id", aliases=("customer", "client id", "client", "customerid")),
        Field("ordered_at", "timestamp", required=True, needs_value=True,
              aliases=("order date", "date", "created at", "invoice date", "timestamp"),
              help="when the order was placed"),
        Field("channel", "text", aliases=("sales channel", "source")),
        Field("device", "text"),
        Field("payment_method", "text", aliases=("payment", "payment type")),
        Field("amount", "number", required=True, needs_value=True,
              aliases=("total", "order total", "revenue", "value", "montant"),
              help="what the customer paid, after discount"),
        Field("discount", "number", aliases=("discount amount", "discounts")),
        Field("status", "text", aliases=("order status", "financial status", "state")),
        Field("currency", "text"),
    ),
    "order_items": (
        Field("order_id", "id", required=True, needs_value=True,
              aliases=("order", "order number", "invoice", "invoice no"), help="the order's id"),
        Field("product_id", "id", aliases=("sku", "product", "stock code", "item id")),
        Field("quantity", "integer", required=True, needs_value=True, aliases=("qty", "units")),
        Field("unit_price", "number", required=True, needs_value=True,
              aliases=("price", "unit cost", "item price")),
    ),
    "sessions": (
        Field("session_id", "id", required=True, needs_value=True,
              aliases=("session", "visit id", "id"), help="the session's id"),
        Field("customer_id", "id", aliases=("customer", "user id", "client id")),
        Field("started_at", "timestamp", required=True, needs_value=True,
              aliases=("start", "session start", "timestamp", "date"), help="when the session started"),
        Field("device", "text", aliases=("device category",)),
        Field("source", "text", aliases=("traffic source", "channel", "medium")),
        Field("pages_viewed", "integer", aliases=("pages", "pageviews", "page views")),
        Field("duration_s", "integer", aliases=("duration", "seconds", "session duration")),
        Field("viewed_product", "boolean", aliases=("product view",)),
        Field("added_to_cart", "boolean", aliases=("add to cart", "cart")),
        Field("checkout_started", "boolean", aliases=("checkout", "began checkout")),
        Field("order_id", "id", aliases=("order", "transaction id")),
    ),
    # A transaction log: one purchase per line, no order id, no product.
    "transactions": (
        Field("customer_id", "id", required=True, needs_value=True,
              aliases=("customer", "client id", "client", "customerid", "user id"),
              help="who bought"),
        Field("ordered_at", "timestamp", required=True, needs_value=True,
              aliases=("date", "order date", "timestamp", "purchase date", "transaction date"),
              help="when they bought"),
        Field("amount", "number", required=True, needs_value=True,
              aliases=("total", "revenue", "value", "spend", "montant"), help="what they paid"),
        Field("quantity", "integer", aliases=("qty", "units", "items")),
        Field("currency", "text"),
    ),
}

# File names (without suffix, normalised) that say which table a file holds.
TABLE_FILE_NAMES = {
    "customers": ("customers", "customer", "clients"),
    "products": ("products", "product", "catalog", "catalogue"),
    "orders": ("orders", "order"),
    "order_items": ("orderitems", "items", "orderlines", "lineitems", "orderitem"),
    "sessions": ("sessions", "session", "visits"),
    "transactions": ("transactions", "transactionlog", "transaction", "purchases"),
}


def _parse_text(text: str, source: str) -> Any:
    if source.lower().endswith((".yml", ".yaml")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ImportRejected(f"{source} is not valid YAML: {str(e).splitlines()[0]}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportRejected(
            f"{source} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}; "
            'expected {"table": "orders", "columns": {"order_id": "Invoice", ...}}'
        ) from e


def load_mapping(mapping: MappingInput) -> list[dict[str, Any]]:
    """A validated list of mapping entries {"table", "columns", "file"} from any accepted form."""
    if mapping is None:
        return []
    data: Any = mapping
    source = "the mapping"
    if isinstance(mapping, str | Path):
        path = Path(mapping)
        source = path.name
        if not path.is_file():
            raise ImportRejected(f"mapping file {mapping} not found")
        data = _parse_text(path.read_text(encoding="utf-8-sig"), path.name)
    entries = [data] if isinstance(data, Mapping) else list(data) if isinstance(data, list) else None
    if entries is None:
        raise ImportRejected(f"{source}: expected an object or a list of objects with 'table' and 'columns'")
    result: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ImportRejected(f"{source}: each mapping entry must be an object with 'table' and 'columns'")
        table = entry.get("table")
        if table not in GENERIC_LAYOUTS:
            raise ImportRejected(
                f"{source}: table {table!r} is not one of: {', '.join(GENERIC_LAYOUTS)}"
            )
        columns = entry.get("columns", {})
        if not isinstance(columns, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items()
        ):
            raise ImportRejected(
                f"{source}: 'columns' of table {table} must map field names to column names"
            )
        known = {f.name for f in GENERIC_LAYOUTS[table]}
        unknown = sorted(set(columns) - known)
        if unknown:
            raise ImportRejected(
                f"{source}: table {table} has no field {unknown[0]!r}; expected: {', '.join(sorted(known))}"
            )
        file_pattern = entry.get("file")
        if file_pattern is not None and not isinstance(file_pattern, str):
            raise ImportRejected(f"{source}: 'file' must be a file name or pattern")
        result.append({"table": table, "columns": dict(columns), "file": file_pattern})
    return result


def mapping_for(file_name: str, mappings: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The mapping entry that applies to a file: a matching "file" pattern first, else the
    only entry without a pattern."""
    for entry in mappings:
        pattern = entry.get("file")
        if pattern and fnmatch.fnmatch(file_name, pattern):
            return entry
    unpatterned = [e for e in mappings if not e.get("file")]
    return unpatterned[0] if len(unpatterned) == 1 else None


def propose_mapping(columns: Sequence[str], target: str) -> dict[str, str | None]:
    """For each field of a generic target table, the file column that most likely feeds it.

    columns: the file's header names (e.g. `preview_file(path).columns`).
    target: customers, products, orders, order_items, sessions or transactions.
    Returns {field: column or None}, each column proposed at most once: exact names and
    known spellings first ("Invoice Date" -> ordered_at), then close spellings
    ("Custmer ID" -> customer_id).
    """
    if target not in GENERIC_LAYOUTS:
        raise ImportRejected(f"unknown table {target!r}; expected one of: {', '.join(GENERIC_LAYOUTS)}")
    fields = GENERIC_LAYOUTS[target]
    by_key: dict[str, str] = {}
    for name in columns:
        by_key.setdefault(normalise_name(name), name)
    # Pass 1: exact names, then known spellings, in field order (required fields first
    # in every layout, so they get first pick).
    exact = match_columns(columns, fields)
    proposal: dict[str, str | None] = {f.name: exact.get(f.name) for f in fields}
    used: set[str] = set(exact.values())
    # Pass 2: near-misses of the field name or a spelling (typos, plurals, prefixes).
    for f in fields:
        if proposal[f.name] is not None:
            continue
        free = {k: c for k, c in by_key.items() if c not in used}
        candidates = [normalise_name(f.name), *(normalise_name(a) for a in f.aliases)]
        for key in candidates:
            close = difflib.get_close_matches(key, list(free), n=1, cutoff=0.8)
            if close:
                proposal[f.name] = free[close[0]]
                used.add(free[close[0]])
                break
    return proposal


def table_for_file(file_name: str, header: Sequence[str]) -> str | None:
    """Which generic table a file holds, from its name (orders.csv) or else its columns."""
    stem = file_name.lower()
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm"):
        stem = stem.removesuffix(suffix)
    key = normalise_name(stem)
    for table, names in TABLE_FILE_NAMES.items():
        if key in names:
            return table
    # By columns: the tables whose required fields all match, the most matched first.
    from persona_engine.ingest.parse import match_columns

    scored: list[tuple[int, str]] = []
    for table, fields in GENERIC_LAYOUTS.items():
        matched = match_columns(header, fields)
        if all(f.name in matched for f in fields if f.required):
            scored.append((len(matched), table))
    scored.sort(reverse=True)
    if len(scored) == 1 or (len(scored) > 1 and scored[0][0] > scored[1][0]):
        return scored[0][1]
    return None
