"""Rejected imports: one line naming file, line or column and what was expected; the
database (already holding a shop) is byte-for-byte unchanged, and no temp table is left."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from persona_engine.errors import ImportRejected
from persona_engine.ingest import SoftProblemsFound, check_files, import_files
from tests.fixtures.ingest.helpers import db_fingerprint, fixture, temp_objects

SAMPLE = fixture("online_retail_sample.csv")
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


@pytest.fixture
def shop(cur):
    """A database holding the imported sample lines, fingerprinted."""
    import_files(cur, [SAMPLE], "online-retail", compute_features=False)
    return cur, db_fingerprint(cur)


def _rejected(shop, files, preset="online-retail", match=None, **options) -> str:
    cur, before = shop
    with pytest.raises(ImportRejected, match=match) as caught:
        import_files(cur, files, preset, compute_features=False, **options)
    message = str(caught.value)
    assert "\n" not in message, "the message must be one line"
    assert db_fingerprint(cur) == before, "a rejected import must change nothing"
    assert temp_objects(cur) == []
    return message


def _lines_with_bad_dates(tmp_path: Path) -> Path:
    # The sample's 36 lines, with three dates that are no dates at all.
    lines = SAMPLE.read_text().splitlines()
    for number in (13, 20, 30):  # file lines 14, 21 and 31
        cells = lines[number].split(",")
        cells[4] = "31/31/2011"
        lines[number] = ",".join(cells)
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_required_column(shop, tmp_path):
    path = tmp_path / "no_dates.csv"
    path.write_text("InvoiceNo,StockCode,Description,Quantity,UnitPrice,CustomerID,Country\n"
                    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2.55,17850.0,United Kingdom\n")
    message = _rejected(shop, [path])
    assert message.startswith("no_dates.csv: column 'invoice_date' or 'InvoiceDate'")
    assert "is missing" in message and "found: InvoiceNo, StockCode" in message


def test_unparsable_dates_stop_with_the_first_example(shop, tmp_path):
    message = _rejected(shop, [_lines_with_bad_dates(tmp_path)])
    assert message.startswith(
        "orders.csv, column 'InvoiceDate': 3 values are not dates, e.g. line 14: '31/31/2011'; "
        "expected YYYY-MM-DD HH:MM or M/D/YYYY H:MM"
    )


def test_soft_problems_report_every_example_and_skip_imports_the_rest(shop, tmp_path):
    cur, _ = shop
    path = _lines_with_bad_dates(tmp_path)
    with pytest.raises(SoftProblemsFound) as caught:
        import_files(cur, [path], "online-retail", compute_features=False)
    problem = caught.value.report.problems[0]
    assert (problem.column, problem.count) == ("InvoiceDate", 3)
    assert problem.examples == ["line 14: '31/31/2011'", "line 21: '31/31/2011'",
                                "line 31: '31/31/2011'"]
    # The dry run lists the same problem and writes nothing.
    before = db_fingerprint(cur)
    checked = check_files(cur, [path], "online-retail")
    assert checked.problems[0].count == 3 and not checked.committed
    assert db_fingerprint(cur) == before
    # Skipping leaves out line 14 (536370's 12 green clocks at 3.75), line 21 (536414, a
    # stock adjustment anyway) and line 31 (549245's 12:00 lunch bag at 1.65).
    report = import_files(cur, [path], "online-retail", on_soft_errors="skip",
                          compute_features=False)
    assert report.rows_skipped == 3 and report.committed
    amounts = dict(cur.execute(
        "SELECT external_id, round(amount, 2) FROM orders "
        "WHERE external_id IN ('536370', '549245')").fetchall())
    assert amounts == {"536370": 244.2, "549245": 1.7}  # 289.20 - 12 x 3.75; 2 x 0.85


def test_too_many_bad_rows_are_refused_even_when_skipping(shop, tmp_path):
    lines = SAMPLE.read_text().splitlines()
    for number in range(1, 13):  # 12 of 36 lines: a format problem, not a few bad rows
        cells = lines[number].split(",")
        cells[3] = "six"
        lines[number] = ",".join(cells)
    path = tmp_path / "words.csv"
    path.write_text("\n".join(lines) + "\n")
    message = _rejected(shop, [path], on_soft_errors="skip")
    assert "12 values are not whole numbers, e.g. line 2: 'six'" in message
    assert "too many to skip" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("utf16_no_bom.csv", (HEADER + "\n").encode("utf-16-le"), "unknown encoding"),
        ("mojibake.csv", HEADER.encode() + b"\n536365,1,\x81\x8d\x90,1,2011-01-01,1.0,,UK\n",
         "unknown encoding"),
        ("empty.csv", b"", "is empty: expected a header line and at least one data line"),
        ("header_only.csv", (HEADER + "\n").encode(), "is empty"),
        ("blank_lines.csv", b"\n\n\n", "is empty"),
        ("fake.parquet", b"InvoiceNo,StockCode\n1,2\n", "is not a Parquet file"),
        ("fake.xlsx", b"InvoiceNo,StockCode\n1,2\n", "is not an Excel .xlsx workbook"),
        ("legacy.xls.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "legacy Excel .xls"),
    ],
)
def test_unreadable_files(shop, tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    message = _rejected(shop, [path])
    assert message.startswith(name) and expected in message


def test_workbook_named_csv(shop, tmp_path):
    path = tmp_path / "orders.csv"
    book = openpyxl.Workbook()
    book.active.append(["InvoiceNo"])
    book.save(path)
    message = _rejected(shop, [path])
    assert message.startswith("orders.csv is a zip archive or an Excel workbook, not a .csv file")


def test_file_of_another_preset(shop):
    message = _rejected(shop, [fixture("shopify_orders_export.csv")])
    assert "column 'invoice' or 'InvoiceNo'" in message and "found: Name, Email" in message
    assert "expected the Online Retail layout: InvoiceNo (or Invoice)" in message


def test_one_invoice_with_two_customers(shop, tmp_path):
    path = tmp_path / "clash.csv"
    path.write_text(
        HEADER + "\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,13047.0,United Kingdom\n"
    )
    message = _rejected(shop, [path])
    assert message.startswith("invoice 536365 has lines with different customers (13047 on clash.csv "
                              "line 3, 17850 on clash.csv line 2)") or message.startswith(
        "invoice 536365 has lines with different customers (17850 on clash.csv line 2, 13047 on "
        "clash.csv line 3)")


def test_generic_order_id_with_conflicting_content(shop, tmp_path):
    path = tmp_path / "orders.csv"
    lines = fixture("orders.csv").read_text().splitlines()
    lines.append(lines[1].replace("69.80", "70.00"))  # order 1001 again, another amount
    path.write_text("\n".join(lines) + "\n")
    message = _rejected(shop, [path], preset="generic")
    assert message == (
        "orders: order_id '1001' appears on orders.csv line 2 and orders.csv line 9 with different "
        "content; expected one row per order_id (identical repeats are fine)"
    )


def test_shopify_name_with_two_totals(shop, tmp_path):
    lines = fixture("shopify_orders_export.csv").read_text().splitlines()
    second = lines[2].split(",")
    second[11] = "99.00"  # Total on #1001's second row, different from 78.80
    lines[2] = ",".join(second)
    path = tmp_path / "orders_export.csv"
    path.write_text("\n".join(lines) + "\n")
    message = _rejected(shop, [path], preset="shopify")
    assert message.startswith("order #1001 has two different values of total")
    assert "line 2" in message and "line 3" in message


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda cur, p: import_files(cur, [p], "magento"), "unknown preset 'magento'"),
        (lambda cur, p: import_files(cur, [p], "online-retail", consent="some"),
         "consent declaration 'some' is not understood"),
        (lambda cur, p: import_files(cur, [p / "missing.csv"], "online-retail"), "file not found"),
        (lambda cur, p: import_files(cur, [p], "online-retail"), "the folder holds no file"),
        (lambda cur, p: import_files(cur, [SAMPLE], "online-retail", consent="column:Consent"),
         "the consent column 'Consent' \\(declared as column:Consent\\) is missing"),
        (lambda cur, p: import_files(cur, [SAMPLE], "online-retail", mapping={"table": "orders"}),
         "a column mapping applies to the generic preset only"),
    ],
)
def test_bad_requests(shop, tmp_path, call: Callable, expected):
    cur, before = shop
    with pytest.raises(ImportRejected, match=expected):
        call(cur, tmp_path)
    assert db_fingerprint(cur) == before


def test_copying_the_sample_keeps_the_fingerprint(shop, tmp_path):
    # The fingerprint itself must notice a change: importing other data alters it.
    cur, before = shop
    other = tmp_path / "ii.csv"
    shutil.copy(fixture("online_retail_ii.csv"), other)
    import_files(cur, [other], "online-retail", compute_features=False)
    assert db_fingerprint(cur) != before


def test_malformed_lines_are_soft_problems_and_later_line_numbers_stay_right(shop, tmp_path):
    cur, _ = shop
    lines = SAMPLE.read_text().splitlines()
    lines[4] = lines[4] + ",EXTRA"  # file line 5 has nine fields
    cells = lines[9].split(",")  # file line 10: a date that is no date
    cells[4] = "yesterday"
    lines[9] = ",".join(cells)
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    report = check_files(cur, [path], "online-retail")
    malformed, dates = report.problems
    assert malformed.message.startswith("broken.csv: 1 line cannot be split into columns, "
                                        "e.g. line 5: ")
    # Line 10 is the 8th row read (line 5 was set aside): its number must still be 10.
    assert dates.examples == ["line 10: 'yesterday'"]
    imported = import_files(cur, [path], "online-retail", on_soft_errors="skip",
                            compute_features=False)
    assert imported.total_rows_read == 36 and imported.rows_skipped == 2
    assert cur.execute("SELECT count(*) FROM order_items").fetchall() == [(29,)]  # 31 - 2
