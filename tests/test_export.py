"""Persona facts on a hand-made shop, card exports (Markdown, JSON, PDF with €), JSON import, CLI."""

from __future__ import annotations

import base64
import json
import re
import zlib

import pytest

from persona_engine.cli import main
from persona_engine.errors import NotFoundError, PermissionDenied, ValidationError
from persona_engine.export import (
    card_json,
    card_markdown,
    export_card,
    import_persona_json,
    parse_persona_json,
    persona_card,
)
from persona_engine.persona_facts import persona_facts
from persona_engine.personas import create_persona, get_persona
from persona_engine.store import open_store, set_setting

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

CUSTOMERS = [
    # id, age, gender, region, income, occupation, acquisition, consent
    (1, 30, "female", "Bretagne", 30000.0, "employee", "search", True),
    (2, 40, "female", "Bretagne", 50000.0, "manager", "email", True),
    (3, 50, "male", "Normandie", None, "employee", "search", True),
    (4, 99, "male", "Corse", 1e6, "retired", "social", False),  # member without consent: never counted
    (5, 20, "female", "Paris", 10000.0, "student", "social", True),  # not a member
]
ORDERS = [
    # order, customer, day, amount, status
    (101, 1, "2026-01-10", 40.0, "completed"),
    (102, 1, "2026-02-10", 60.0, "completed"),
    (103, 2, "2026-03-01", 100.0, "completed"),
    (104, 2, "2026-03-05", 500.0, "cancelled"),
    (105, 4, "2026-03-10", 1000.0, "completed"),
    (106, 5, "2026-03-31", 200.0, "completed"),
    (107, None, "2026-03-15", 50.0, "completed"),  # guest
]
ITEMS = [(101, 1, 1, 40.0), (102, 2, 2, 30.0), (103, 1, 1, 100.0), (104, 2, 1, 500.0), (105, 1, 1, 1000.0),
         (106, 2, 1, 200.0)]
SESSIONS = [
    # session, customer, device, order
    (1, 1, "mobile", 101), (2, 1, "mobile", None), (3, 2, "desktop", 104), (4, 3, "mobile", None),
    (5, 4, "mobile", 105), (6, 5, "desktop", 106),
]


def build_shop(cur) -> int:
    cur.executemany(
        "INSERT INTO customers (customer_id, age, gender, region, income, occupation, acquisition_channel,"
        " consent_analytics) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", CUSTOMERS)
    cur.executemany("INSERT INTO products (product_id, name, category, price) VALUES (?, ?, ?, ?)",
                    [(1, "Sneaker", "shoes", 40.0), (2, "Novel", "books", 30.0)])
    cur.executemany("INSERT INTO orders (order_id, customer_id, ordered_at, amount, status, currency)"
                    " VALUES (?, ?, ?::TIMESTAMP, ?, ?, 'EUR')", ORDERS)
    cur.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", ITEMS)
    cur.executemany("INSERT INTO sessions (session_id, customer_id, started_at, device, order_id)"
                    " VALUES (?, ?, TIMESTAMP '2026-03-01', ?, ?)", SESSIONS)
    set_setting(cur, "currency", "EUR")
    return create_persona(
        cur,
        {"name": "Frugal Fred", "nickname": "Fred", "quote": "Never full price, 5 € max",
         "bio": "Hunts **deals**.\n\n<script>alert('x')</script> [click](javascript:alert(1))",
         "goals": ["Save money", "Free delivery over 30 €"], "kind": "primary"},
        "alice", members=[1, 2, 3, 4],
    )


@pytest.fixture
def shop(cur) -> int:
    return build_shop(cur)


def test_facts_count_consenting_members_and_completed_orders(cur, shop):
    facts = persona_facts(cur, shop)
    value = {f.key: f.value for f in facts.facts}
    # Members 1, 2, 3 (4 has no consent); consenting customers 1, 2, 3, 5.
    assert facts.members == 3 and value["members"] == 3
    assert value["customer_share"] == pytest.approx(3 / 4)
    assert value["median_age"] == 40 and value["median_income"] == 40000  # income of 3 unknown
    assert facts.get("median_income").customers == 2
    assert (value["top_gender"], facts.get("top_gender").share) == ("female", pytest.approx(2 / 3))
    assert value["top_region"] == "Bretagne" and value["top_acquisition_channel"] == "search"
    # Completed orders of members: 101 (40), 102 (60), 103 (100); 104 cancelled, 105 no consent.
    assert value["orders_per_member"] == pytest.approx(3 / 3)
    assert value["average_order_value"] == pytest.approx(200 / 3)
    assert value["repeat_purchase_rate"] == pytest.approx(1 / 2)  # customer 1 twice, customer 2 once
    # Shop revenue of consenting customers: 40 + 60 + 100 + 200 = 400 (guest and no-consent out).
    assert value["revenue_share"] == pytest.approx(200 / 400)
    # Shoes 40 + 100 against books 60.
    assert (value["top_category"], facts.get("top_category").share) == ("shoes", pytest.approx(0.7))
    # Reference day 2026-04-01; last orders 2026-02-10 (50 days) and 2026-03-01 (31 days).
    assert value["median_recency_days"] == pytest.approx(40.5)
    # Sessions 1-4: only session 1 has a completed order (104 was cancelled).
    assert value["conversion_rate"] == pytest.approx(1 / 4)
    assert (value["main_device"], facts.get("main_device").share) == ("mobile", pytest.approx(3 / 4))
    assert facts.currency == "EUR"


def test_facts_without_members_are_not_available(cur, shop):
    empty = create_persona(cur, {"name": "Nobody"}, "alice")
    facts = persona_facts(cur, empty)
    assert facts.members == 0
    assert facts.get("average_order_value").value is None
    assert facts.get("conversion_rate").value is None
    assert facts.get("top_region").value is None


def test_markdown_card_has_fields_facts_and_no_live_javascript_link(cur, shop):
    text = export_card(cur, shop, "md").decode()
    assert text.startswith("# Frugal Fred — “Fred”\n")
    assert "> Never full price, 5 € max" in text
    assert "- Free delivery over 30 €" in text
    assert "| Average order value | €66.67 | based on 2 customers |" in text
    assert "| Conversion rate | 25.0% | based on 3 customers |" in text
    assert "| Median yearly income | €40,000 | based on 2 customers |" in text
    assert "](javascript" not in text and "[click]\\(javascript:alert(1))" in text
    assert "<script>" not in text and "&lt;script>alert('x')&lt;/script>" in text
    assert text.rstrip().endswith("by alice*")


def test_json_round_trip_creates_an_equal_persona(cur, shop):
    cur.execute("UPDATE personas SET avatar_image = ?, avatar_mime = 'image/png' WHERE persona_id = ?", [PNG, shop])
    payload = json.loads(export_card(cur, shop, "json"))
    assert payload["format"] == "persona-studio.persona" and payload["format_version"] == 1
    assert payload["fields"]["avatar_image"] == base64.b64encode(PNG).decode()
    assert {f["key"]: f["value"] for f in payload["facts"]}["members"] == 3
    new_id = import_persona_json(cur, json.dumps(payload), "bob")
    assert new_id != shop
    original, copy = get_persona(cur, shop), get_persona(cur, new_id)
    assert copy.fields == original.fields  # every field, image included
    assert copy.version == 1 and copy.updated_by == "bob"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "other.tool"}', "not a Persona Studio persona"),
        ('{"format": "persona-studio.persona", "format_version": 9, "fields": {}}', "version 9 is not supported"),
        ('{"name": "X", "favourite_colour": "red"}', "unknown persona fields favourite_colour"),
        ('{"name": "X", "goals": "not a list"}', "takes a list of texts"),
        ('{"name": "X", "kind": "tertiary"}', "must be one of primary"),
        ('{"nickname": "no name"}', "needs a name"),
        ('{"name": "X", "avatar_image": "%%%"}', "not valid base64"),
        ('{"name": "X", "avatar_image": "PHN2Zz48L3N2Zz4="}', "PNG, JPEG, GIF or WebP"),  # an SVG
        ("[1, 2]", "holds one object"),
    ],
)
def test_bad_persona_json_is_refused_and_nothing_is_created(cur, shop, payload, message):
    before = cur.execute("SELECT count(*) FROM personas").fetchall()[0][0]
    with pytest.raises(ValidationError, match=message):
        import_persona_json(cur, payload, "bob")
    assert cur.execute("SELECT count(*) FROM personas").fetchall()[0][0] == before


def test_viewer_cannot_import(cur, shop):
    from persona_engine.auth import hash_password

    cur.execute("INSERT INTO app_users VALUES ('vera', 'Vera', 'viewer', ?)", [hash_password("long enough", rounds=4)])
    with pytest.raises(PermissionDenied):
        import_persona_json(cur, '{"name": "X"}', "vera")


def test_bare_fields_object_is_accepted():
    assert parse_persona_json({"name": "Ann", "goals": ["a"], "avatar_mime": "text/html"}) == {
        "name": "Ann", "goals": ["a"]}  # avatar_mime only ever comes from a real picture


def _pdf_text(pdf: bytes) -> bytes:
    """Every decompressed content stream of the PDF, to look for drawn glyphs."""
    out = b""
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            out += zlib.decompressobj().decompress(stream)
        except zlib.error:
            out += stream
    return out


def test_pdf_embeds_a_font_with_the_euro_sign_and_escapes_markup(cur, shop):
    pdf = export_card(cur, shop, "pdf")
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5000
    assert b"/FontFile2" in pdf  # a TrueType font is embedded (core fonts cannot print every €)
    card = persona_card(cur, shop)
    assert "€" in card.persona["quote"]
    # Text is drawn through a subset font: its ToUnicode map lists U+20AC (€) as a drawn glyph.
    assert re.search(rb"<[0-9a-f]{2}> <20ac>", _pdf_text(pdf).lower())
    # The bio's <script> tag was printed as text: reportlab would have refused it as markup.
    assert b"<script>" not in pdf
    with_image = create_persona(cur, {"name": "Pic", "avatar_image": PNG, "avatar_mime": "image/png"}, "alice")
    assert export_card(cur, with_image, "pdf").startswith(b"%PDF-")
    broken = create_persona(cur, {"name": "Broken", "avatar_image": b"\x89PNG\r\n\x1a\nnope"}, "alice")
    assert export_card(cur, broken, "pdf").startswith(b"%PDF-")  # unreadable picture: initials instead


def test_card_json_and_markdown_take_translated_labels(cur, shop):
    card = persona_card(cur, shop)
    text = card_markdown(card, {"goals": "Objectifs", "facts": "Faits"})
    assert "## Objectifs" in text and "## Faits" in text
    assert card_json(card)["persona"]["persona_id"] == shop


def test_unknown_format_and_persona(cur, shop):
    with pytest.raises(ValidationError, match="md, json, pdf"):
        export_card(cur, shop, "docx")
    with pytest.raises(NotFoundError):
        export_card(cur, 999, "md")


# ---------------------------------------------------------------- CLI


@pytest.fixture
def shop_file(tmp_path):
    path = tmp_path / "shop.duckdb"
    s = open_store(path)
    persona_id = build_shop(s.cursor())
    s.close()
    return path, persona_id


def test_cli_export_writes_each_format(shop_file, tmp_path, capsys):
    db, persona_id = shop_file
    assert main(["export", "--db", str(db), "--persona", str(persona_id), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Frugal Fred")
    out = tmp_path / "card.pdf"
    assert main(["export", "--db", str(db), "--persona", str(persona_id), "--format", "pdf", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    assert main(["export", "--db", str(db), "--persona", str(persona_id), "--format", "json",
                 "--out", str(tmp_path / "card.json")]) == 0
    capsys.readouterr()
    assert main(["import-persona", "--db", str(db), "--user", "bob", str(tmp_path / "card.json")]) == 0
    assert "Imported persona 2 (Frugal Fred)" in capsys.readouterr().out


def test_cli_errors_are_one_line(shop_file, tmp_path, capsys):
    db, _ = shop_file
    assert main(["export", "--db", str(db), "--persona", "42", "--format", "md"]) == 1
    assert capsys.readouterr().err == "error: persona 42 does not exist\n"
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "X", "shoe_size": 42}')
    assert main(["import-persona", "--db", str(db), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown persona fields shoe_size") and err.count("\n") == 1
    assert main(["import-persona", "--db", str(db), str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
    assert main(["export", "--db", str(db), "--persona", "1", "--format", "pdf"]) == 1  # binary needs --out
    assert "--out" in capsys.readouterr().err

