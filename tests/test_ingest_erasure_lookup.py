"""Finding the customer a person means (app id, file id, Shopify email) and the erasure log listing."""

from __future__ import annotations

import hashlib

import pytest

from persona_engine.errors import NotFoundError, ValidationError
from persona_engine.ingest import (
    erase_customer,
    find_customer,
    import_files,
    list_erasures,
    stable_id,
)
from tests.fixtures.ingest.helpers import fixture


def test_an_online_retail_customer_by_the_id_in_the_file(cur):
    import_files(cur, [fixture("online_retail_sample.csv")], "online-retail", compute_features=False)
    # 17850 is its own app id; the file writes it 17850.0, which means the same customer.
    assert find_customer(cur, "17850") == 17850
    assert find_customer(cur, " 17850.0 ") == 17850


def test_a_generic_customer_by_file_id_or_app_id(cur):
    import_files(cur, [fixture("customers.csv"), fixture("orders.csv")], "generic", compute_features=False)
    camille = stable_id("C001")
    assert find_customer(cur, "C001") == camille
    assert find_customer(cur, str(camille)) == camille


@pytest.mark.parametrize("pseudonymise", [False, True])
def test_a_shopify_customer_by_email_in_any_case(cur, pseudonymise):
    import_files(cur, [fixture("shopify_orders_export.csv")], "shopify", pseudonymise=pseudonymise,
                 compute_features=False)
    key = "alice@example.com"
    expected = stable_id(hashlib.sha256(key.encode()).hexdigest() if pseudonymise else key)
    assert find_customer(cur, "Alice@Example.com") == expected


def test_unknown_empty_and_ambiguous_ids(cur):
    with pytest.raises(ValidationError, match="type a customer id"):
        find_customer(cur, "  ")
    with pytest.raises(NotFoundError, match="no customer with id 'nobody'"):
        find_customer(cur, "nobody")
    # App id 5 and another customer whose file id is "5": the text names two customers.
    cur.execute("INSERT INTO customers (customer_id, external_id) VALUES (5, 'C5'), (99, '5')")
    with pytest.raises(ValidationError, match="names 2 different customers"):
        find_customer(cur, "5")


def test_the_erasure_log_lists_who_when_and_how_many_rows(cur):
    import_files(cur, [fixture("customers.csv"), fixture("orders.csv")], "generic", compute_features=False)
    removed = erase_customer(cur, stable_id("C002"), erased_by="dpo")
    log = list_erasures(cur)
    assert list(log.columns) == ["erased_at", "erased_by", "rows_removed", "tables"]
    # Hugo (C002): his customer row and his orders 1002 and 1007 (orders.csv), nothing else.
    assert removed == {"customers": 1, "orders": 2}
    assert (log["erased_by"].tolist(), log["rows_removed"].tolist()) == (["dpo"], [3])
