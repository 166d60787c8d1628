"""online-retail preset: UCI Online Retail and Online Retail II lines, every rule by hand.

The main fixture holds 36 real lines of ../shared/data/online_retail.csv (copied verbatim)
chosen to hit each rule once; the expected figures below are worked out from those lines.
"""

from __future__ import annotations

import shutil

import openpyxl
import pandas as pd
import pytest

from persona_engine.errors import ImportRejected
from persona_engine.ingest import import_files, stable_id
from persona_engine.store import get_setting
from tests.fixtures.ingest.helpers import dangling_references, fixture, temp_objects

SAMPLE = fixture("online_retail_sample.csv")
HEADER_LINE = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def _import(cur, *files, **options):
    options.setdefault("compute_features", False)
    return import_files(cur, list(files), "online-retail", **options)


def _orders(cur):
    return {
        row[0]: row[1:]
        for row in cur.execute(
            "SELECT external_id, status, round(amount, 2), customer_id, ordered_at FROM orders"
        ).fetchall()
    }


def test_invoices_become_orders_with_hand_computed_amounts(cur):
    report = _import(cur, SAMPLE)
    orders = _orders(cur)
    # 536365: 6x2.55 + 6x3.39 + 8x2.75 + 6x3.39 + 6x3.39 + 2x7.65 + 6x4.25 = 139.12
    assert orders["536365"][:2] == ("completed", 139.12)
    assert orders["536365"][2] == 17850  # CustomerID 17850.0 read as the integer 17850
    # 536370: 24x3.75 + 24x3.75 + 12x3.75 + 12x0.85 + POSTAGE 3x18.0 = 289.20
    assert orders["536370"][:2] == ("completed", 289.2)
    # 537197: 13.50 + 13.50 + a free cake tin at 0.0 = 27.00
    assert orders["537197"][:2] == ("completed", 27.0)
    # 536409 lists the same luggage tag twice: both lines kept, 2 x 1.25.
    assert orders["536409"][:2] == ("completed", 2.5)
    # Cancellations keep their negative value and the cancelled status.
    assert orders["C536379"][:2] == ("cancelled", -27.5)
    assert orders["C543992"][:2] == ("cancelled", -18.0)
    # 549245's lines are stamped 11:59 and 12:00: the order is dated at the first.
    assert str(orders["549245"][3]) == "2011-04-07 11:59:00"
    # Not orders: 536414 (stock adjustment), 537632 (Amazon fee), A563185-7 (bad debt).
    assert set(orders) == {
        "536365", "536367", "536370", "536409", "536544", "537197", "549245", "581587",
        "C536379", "C536383", "C543992",
    }
    assert report.rows_written == {
        "customers": 9, "products": 30, "orders": 11, "order_items": 31, "sessions": 0,
    }
    assert dangling_references(cur) == dict.fromkeys(dangling_references(cur), 0)
    assert temp_objects(cur) == []


def test_revenue_splits_guests_from_customer_analyses(cur):
    _import(cur, SAMPLE)
    shop = cur.execute(
        "SELECT count(*), round(sum(amount), 2) FROM shop_orders WHERE status = 'completed'"
    ).fetchall()[0]
    customers = cur.execute(
        "SELECT count(*), round(sum(amount), 2) FROM analysis_orders WHERE status = 'completed'"
    ).fetchall()[0]
    # 8 completed invoices: 139.12 + 79.28 + 289.20 + 2.50 + 10.93 + 27.00 + 3.35 + 58.05
    assert shop == (8, 609.43)
    # The guest invoice 536544 (2.51 + 2x2.51 + 4x0.85 = 10.93) counts in shop totals only.
    assert customers == (7, 598.5)
    guest = cur.execute("SELECT customer_id FROM orders WHERE external_id = '536544'").fetchall()
    assert guest == [(None,)]


def test_rules_are_reported_with_their_counts(cur):
    report = _import(cur, SAMPLE)
    by_start = {rule.split(" (")[0].split(":")[0]: n for rule, n in report.rules.items()}
    assert by_start["stock-adjustment lines left out"] == 1  # 536414
    assert by_start["bad-debt adjustment lines left out"] == 3  # A563185-7
    assert by_start["Amazon fee lines left out"] == 1  # 537632
    assert by_start["zero-price lines kept at price 0 inside paid invoices"] == 1  # 537197
    # POST in 536370 and C543992, D in C536379, M in 549245
    assert by_start["postage, carriage, manual, discount, sample and bank-charge lines kept in "
                    "their invoice, as products in their own category"] == 4
    assert by_start["exact duplicate lines kept"] == 1  # 536409
    assert by_start["invoices whose lines carry different times"] == 1  # 549245
    assert by_start["orders without CustomerID imported as guest orders"] == 1  # 536544


def test_products_customers_and_missing_data(cur):
    _import(cur, SAMPLE)
    products = dict(cur.execute("SELECT external_id, category FROM products").fetchall())
    assert products["POST"] == "Postage" and products["M"] == "Manual adjustment"
    assert products["D"] == "Discount" and products["85123A"] is None
    assert "B" not in products and "AMAZONFEE" not in products
    # Trailing spaces of descriptions are trimmed; 22139 only appears without a description.
    names = dict(cur.execute("SELECT external_id, name FROM products").fetchall())
    assert names["22745"] == "POPPY'S PLAYHOUSE BEDROOM" and names["22139"] is None
    countries = dict(cur.execute("SELECT external_id, country FROM customers").fetchall())
    assert countries["12583"] == "France" and countries["12647"] == "Germany"
    # No demographics in the file: NULL, never zero.
    assert cur.execute(
        "SELECT count(age), count(gender), count(income) FROM customers").fetchall() == [(0, 0, 0)]
    assert cur.execute("SELECT DISTINCT currency, channel FROM orders").fetchall() == [("GBP", "web")]
    lacks = get_setting(cur, "missing_data")
    assert lacks is not None and "sessions" in lacks and "demographics" in lacks


def test_reimporting_the_same_file_gives_the_same_rows_and_ids(cur):
    _import(cur, SAMPLE)
    first = cur.execute("SELECT * FROM orders ORDER BY order_id").fetchall()
    items = cur.execute("SELECT * FROM order_items ORDER BY ALL").fetchall()
    _import(cur, SAMPLE)
    assert cur.execute("SELECT * FROM orders ORDER BY order_id").fetchall() == first
    assert cur.execute("SELECT * FROM order_items ORDER BY ALL").fetchall() == items
    # Ids follow the documented rule: plain numbers keep their value, others are hashed.
    ids = dict(cur.execute("SELECT external_id, order_id FROM orders").fetchall())
    assert ids["536365"] == 536365
    assert ids["C536379"] == stable_id("C536379") >= 1 << 62
    assert cur.execute("SELECT count(*) FROM imports").fetchall() == [(2,)]


def test_online_retail_ii_spelling_and_excel_dates(cur):
    _import(cur, fixture("online_retail_ii.csv"))
    orders = _orders(cur)
    # 489434: 12x6.95 + 12x6.75 + 12x6.75 + 48x2.10 = 346.20, on 1 December 2009 at 07:45
    assert orders["489434"][:2] == ("completed", 346.2)
    assert str(orders["489434"][3]) == "2009-12-01 07:45:00"
    # 12/13/2009 only reads month-first: the column is month-first, so 12/1/2009 is 1 Dec.
    assert str(orders["489451"][3]) == "2009-12-13 11:20:00"
    assert orders["C489449"][:2] == ("cancelled", -35.4)
    assert cur.execute("SELECT count(*) FROM customers").fetchall() == [(4,)]


def test_latin1_file_keeps_accents_and_pound_sign(cur):
    _import(cur, fixture("online_retail_latin1.csv"))
    names = dict(cur.execute("SELECT external_id, name FROM products").fetchall())
    assert names["23000"] == "TASSE CAFÉ AU LAIT ROSE"
    assert names["gift_0001_20"] == "Dotcomgiftshop Gift Voucher £20.00"
    category = cur.execute(
        "SELECT category FROM products WHERE external_id = 'gift_0001_20'").fetchall()
    assert category == [("Gift voucher",)]
    # 545902: 6x1.65 + 4x2.95 + 18.00 = 39.70
    assert _orders(cur)["545902"][:2] == ("completed", 39.7)


def test_windows_1252_file_with_euro_sign(cur, tmp_path):
    # Byte 0x80 is € in Windows-1252 and a control character in Latin-1.
    text = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n"
        "600001,90001,BOUGIE 5€ ÉTÉ,2,2011-05-02 10:00:00,5.0,12345.0,France\r\n"
    )
    path = tmp_path / "cp1252.csv"
    path.write_bytes(text.encode("cp1252"))
    _import(cur, path)
    assert cur.execute("SELECT name FROM products").fetchall() == [("BOUGIE 5€ ÉTÉ",)]


def test_excel_workbook_with_two_yearly_sheets(cur, tmp_path):
    # The UCI Online Retail II workbook has one sheet per year with the same header.
    lines = pd.read_csv(fixture("online_retail_ii.csv"), dtype=str)
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Year 2009-2010"
    second = workbook.create_sheet("Year 2010-2011")
    for sheet, part in ((first, lines.iloc[:6]), (second, lines.iloc[6:])):
        sheet.append(list(lines.columns))
        for row in part.itertuples(index=False):
            quantity, price = int(row.Quantity), float(row.Price)
            customer = float(row[6]) if isinstance(row[6], str) else None
            when = pd.to_datetime(row.InvoiceDate, format="%m/%d/%Y %H:%M").to_pydatetime()
            sheet.append([row.Invoice, row.StockCode, row.Description, quantity, when, price,
                          customer, row.Country])
    notes = workbook.create_sheet("Notes")
    notes.append(["This sheet explains the columns"])
    path = tmp_path / "online_retail_II.xlsx"
    workbook.save(path)
    report = _import(cur, path)
    assert report.total_rows_read == 12  # 6 + 6 lines; the Notes sheet is not data
    orders = _orders(cur)
    assert orders["489434"][:2] == ("completed", 346.2)
    assert str(orders["489436"][3]) == "2009-12-01 09:06:00"
    assert orders["489436"][2] == 13078  # 13078.0 in the workbook


def test_parquet_file(cur, tmp_path):
    frame = pd.read_csv(SAMPLE, dtype={"InvoiceNo": str, "StockCode": str})
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    path = tmp_path / "online_retail.parquet"
    frame.to_parquet(path)
    _import(cur, path)
    orders = _orders(cur)
    assert orders["536365"][:3] == ("completed", 139.12, 17850)
    assert len(orders) == 11


def test_several_files_a_folder_and_a_glob_give_the_same_shop(cur, tmp_path):
    lines = SAMPLE.read_text().splitlines()
    header, body = lines[0], lines[1:]
    folder = tmp_path / "daily"
    folder.mkdir()
    (folder / "2010-12.csv").write_text("\n".join([header, *body[:20]]) + "\n")
    (folder / "2011.csv").write_text("\n".join([header, *body[20:]]) + "\n")
    _import(cur, SAMPLE)
    whole = cur.execute("SELECT * FROM orders ORDER BY order_id").fetchall()
    _import(cur, folder)
    assert cur.execute("SELECT * FROM orders ORDER BY order_id").fetchall() == whole
    _import(cur, str(folder / "*.csv"))
    assert cur.execute("SELECT * FROM orders ORDER BY order_id").fetchall() == whole


def test_overlapping_daily_files_are_not_counted_twice(cur, tmp_path):
    # The same file twice (a copy) and a file repeating invoice 536365 identically.
    copy = tmp_path / "copy.csv"
    shutil.copy(SAMPLE, copy)
    lines = SAMPLE.read_text().splitlines()
    overlap = tmp_path / "overlap.csv"
    overlap.write_text("\n".join(lines[:8]) + "\n")  # header + the 7 lines of 536365
    report = _import(cur, SAMPLE, copy, overlap)
    assert any("same content" in note for note in report.notes)
    assert _orders(cur)["536365"][:2] == ("completed", 139.12)
    assert cur.execute("SELECT count(*) FROM order_items").fetchall() == [(31,)]


def test_same_invoice_with_different_lines_in_two_files_is_rejected(cur, tmp_path):
    lines = SAMPLE.read_text().splitlines()
    changed = tmp_path / "changed.csv"
    changed.write_text(lines[0] + "\n" + lines[1].replace(",6,", ",7,", 1) + "\n")
    with pytest.raises(ImportRejected, match=r"invoice 536365 appears in .* with different lines"):
        _import(cur, SAMPLE, changed)


def test_consent_column_conservative_per_customer(cur, tmp_path):
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame["Consent"] = "yes"
    # 17850 says no on one of its seven lines: no consent. 13047 leaves it empty: no.
    frame.loc[frame.index[frame["CustomerID"] == "17850.0"][3], "Consent"] = "no"
    frame.loc[frame["CustomerID"] == "13047.0", "Consent"] = ""
    path = tmp_path / "with_consent.csv"
    frame.to_csv(path, index=False)
    report = _import(cur, path, consent="column:Consent")
    consent = dict(cur.execute("SELECT external_id, consent_analytics FROM customers").fetchall())
    assert consent["17850"] is False and consent["13047"] is False and consent["12583"] is True
    assert sum(consent.values()) == 7  # 9 customers, 2 without consent
    assert report.consent == "column:Consent"
    assert get_setting(cur, "consent") == "column:Consent"
    assert cur.execute("SELECT consent FROM imports").fetchall() == [("column:Consent",)]


def test_consent_declared_none_and_all(cur):
    _import(cur, SAMPLE, consent="none")
    assert cur.execute("SELECT count(*) FROM analysis_customers").fetchall() == [(0,)]
    # Without consent, guest orders still count in shop totals (they are no one's data).
    assert cur.execute("SELECT count(*) FROM shop_orders").fetchall() == [(1,)]
    assert get_setting(cur, "consent") == "none"
    _import(cur, SAMPLE, consent="all")
    assert cur.execute("SELECT count(*) FROM analysis_customers").fetchall() == [(9,)]


def test_latin1_bytes_after_the_first_megabyte(cur, tmp_path):
    # 20,000 ASCII lines (about 2 MB), then one Latin-1 line: the encoding is decided on
    # the whole file, not on its first megabyte.
    lines = [HEADER_LINE]
    lines += [f"{600000 + i // 5},2{i % 1000:04d},PLAIN DESCRIPTION {i},1,2011-05-02 10:00:00,"
              "1.5,12345.0,United Kingdom" for i in range(20_000)]
    lines.append("700000,90001,CAFÉ £5,2,2011-05-02 10:00:00,5.0,12345.0,France")
    path = tmp_path / "late_latin1.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    report = _import(cur, path)
    assert report.problems == [] and report.total_rows_read == 20_001
    assert cur.execute("SELECT name FROM products WHERE external_id = '90001'").fetchall() == [
        ("CAFÉ £5",)]
