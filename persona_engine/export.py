"""Persona cards out of the app (Markdown, JSON, PDF) and persona JSON back in.

A card holds the persona's editable fields and its data-backed facts (persona_facts), never
customer-level rows, so exports respect the consent rule by construction. Text people typed
is made safe for each format: dangerous Markdown links become text (safe_text.safe_markdown)
and the PDF escapes everything before its own markup is added.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from persona_engine.errors import ValidationError
from persona_engine.persona_facts import GROUPS, Fact, PersonaFacts, persona_facts
from persona_engine.personas import PERSONA_FIELDS, Persona, create_persona, get_persona
from persona_engine.safe_text import pdf_markup, safe_markdown

CardFormat = Literal["md", "json", "pdf"]
CARD_FORMATS: tuple[CardFormat, ...] = ("md", "json", "pdf")
MEDIA_TYPES = {"md": "text/markdown", "json": "application/json", "pdf": "application/pdf"}
JSON_FORMAT = "persona-studio.persona"
JSON_FORMAT_VERSION = 1
# Images people may upload or import. SVG is left out: it can carry scripts.
IMAGE_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8",
               "image/webp": b"RIFF"}
CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}

# English labels of the card (the app passes its own translated labels when it exports).
LABELS: dict[str, str] = {
    "name": "Name", "nickname": "Nickname", "kind": "Kind", "status": "Status", "avatar": "Avatar",
    "quote": "Quote", "bio": "Bio", "demographics": "Demographics", "goals": "Goals",
    "frustrations": "Frustrations", "motivations": "Motivations", "buying_triggers": "Buying triggers",
    "objections": "Objections", "preferred_channels": "Preferred channels",
    "media_preferences": "Media preferences", "tech_affinity": "Tech affinity",
    "personal_context": "Personal context", "professional_context": "Professional context",
    "brand_relationship": "Brand relationship", "day_in_the_life": "A day in the life",
    "key_messages": "Key messages", "success_factors": "Success factors",
    "members": "Customers in the persona", "customer_share": "Share of all customers",
    "median_age": "Median age", "median_income": "Median yearly income", "top_gender": "Most common gender",
    "top_region": "Most common region", "top_occupation": "Most common occupation",
    "top_acquisition_channel": "Main acquisition channel", "orders_per_member": "Completed orders per customer",
    "revenue_share": "Share of shop revenue", "top_category": "Top category by revenue",
    "main_device": "Main device", "median_recency_days": "Days since last order (median)",
    "average_order_value": "Average order value", "repeat_purchase_rate": "Repeat-purchase rate",
    "conversion_rate": "Conversion rate",
    "group_size": "Size", "group_demographics": "Demographics", "group_behaviour": "Behaviour",
    "group_kpis": "KPIs", "facts": "Facts from the shop's data", "based_on": "based on {n} customers",
    "version": "Version {version}, last changed {when} by {who}", "not_available": "not available",
}
# Card sections after the header, in reading order (name, nickname, avatar and quote open the card).
BODY_FIELDS = tuple(f for f in PERSONA_FIELDS if f not in ("name", "nickname", "kind", "status", "avatar",
                                                           "avatar_image", "avatar_mime", "quote"))


@dataclass(frozen=True)
class PersonaCard:
    persona: Persona
    facts: PersonaFacts


def persona_card(cur: duckdb.DuckDBPyConnection, persona_id: int) -> PersonaCard:
    """Everything a card shows: the persona (NotFoundError if missing) and its facts."""
    return PersonaCard(get_persona(cur, persona_id), persona_facts(cur, persona_id))


def export_card(cur: duckdb.DuckDBPyConnection, persona_id: int, fmt: str,
                labels: Mapping[str, str] | None = None) -> bytes:
    """The persona card in `fmt` (md, json or pdf), as bytes ready to write or download."""
    if fmt not in CARD_FORMATS:
        raise ValidationError(f"format must be one of {', '.join(CARD_FORMATS)}; got {fmt!r}")
    card = persona_card(cur, persona_id)
    if fmt == "md":
        return card_markdown(card, labels).encode("utf-8")
    if fmt == "json":
        return json.dumps(card_json(card), indent=2, ensure_ascii=False).encode("utf-8")
    return card_pdf(card, labels)


def card_file_name(card: PersonaCard, fmt: str) -> str:
    """persona-3-frugal-fred.pdf: the id keeps names unique, the slug makes them readable."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(card.persona["name"]).lower()).strip("-")[:40] or "persona"
    return f"persona-{card.persona.persona_id}-{slug}.{fmt}"


# ---------------------------------------------------------------- values as text


def _money(value: float, currency: str | None, decimals: int = 2) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency or "", currency or "")
    amount = f"{value:,.{decimals}f}"
    return f"{symbol}{amount}" if len(symbol) == 1 else f"{amount} {symbol}".strip()


def fact_text(fact: Fact, currency: str | None, labels: Mapping[str, str] | None = None) -> str:
    """A fact's value as people read it: 31%, €42.10, 38 years, "Île-de-France (24%)"."""
    words = {**LABELS, **(labels or {})}
    if fact.value is None:
        return words["not_available"]
    if fact.unit == "text":
        share = f" ({fact.share:.0%})" if fact.share is not None else ""
        return f"{fact.value}{share}"
    value = float(fact.value)
    if fact.unit == "share":
        return f"{value:.1%}"
    if fact.unit == "money":  # cents matter for a basket, not for a yearly income
        return _money(value, currency, 2 if fact.key == "average_order_value" else 0)
    if fact.unit == "count":
        return f"{value:,.0f}"
    if fact.unit in ("years", "days"):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


# ---------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """User text for the Markdown file: safe links, and "<" as an entity so that a viewer
    that renders HTML shows tags such as <script> as text."""
    return safe_markdown(text.replace("<", "&lt;"))


def _markdown_value(kind: str, value: Any) -> str:
    if kind == "list":
        return "\n".join(f"- {_md(item)}" for item in value) if value else "–"
    return _md(str(value)) if value else "–"


def card_markdown(card: PersonaCard, labels: Mapping[str, str] | None = None) -> str:
    """The card as a Markdown document: header, quote, facts table, every field."""
    words = {**LABELS, **(labels or {})}
    p, facts = card.persona, card.facts
    title = p["name"] + (f" — “{p['nickname']}”" if p["nickname"] else "")
    lines = [f"# {_md(title)}", ""]
    lines.append(f"*{words['kind']}: {p['kind']} · {words['status']}: {p['status']}*")
    lines.append("")
    if p["quote"]:
        lines += [f"> {_md(p['quote'])}", ""]
    lines += [f"## {words['facts']}", "", "| | | |", "|---|---|---|"]
    for group in GROUPS:
        for fact in facts.by_group(group):
            based = words["based_on"].format(n=f"{fact.customers:,}")
            lines.append(f"| {words.get(fact.key, fact.key)} | {_cell(fact_text(fact, facts.currency, words))} | {based} |")
    lines.append("")
    for name in BODY_FIELDS:
        value = p[name]
        if not value:
            continue
        lines += [f"## {words.get(name, name)}", "", _markdown_value(PERSONA_FIELDS[name].kind, value), ""]
    when = p.updated_at.strftime("%Y-%m-%d %H:%M") if p.updated_at else "?"
    lines.append(f"*{words['version'].format(version=p.version, when=when, who=p.updated_by or '?')}*")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------- JSON


def card_json(card: PersonaCard) -> dict[str, Any]:
    """The card as a JSON-ready dict (format documented in the README).

    fields: every PERSONA_FIELDS entry (avatar_image as base64, or null); facts: the
    data-backed figures with their source. `import_persona_json` reads `fields` back.
    """
    p = card.persona
    fields: dict[str, Any] = dict(p.fields)
    image = fields.get("avatar_image")
    fields["avatar_image"] = base64.b64encode(image).decode("ascii") if image else None
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "exported_at": datetime.now().isoformat(timespec="seconds"),
        "persona": {
            "persona_id": p.persona_id, "version": p.version,
            "updated_at": p.updated_at.isoformat(timespec="seconds") if p.updated_at else None,
            "updated_by": p.updated_by,
            "last_validated_at": p.last_validated_at.isoformat(timespec="seconds") if p.last_validated_at else None,
            "source_run_id": p.source_run_id,
        },
        "fields": fields,
        "currency": card.facts.currency,
        "facts": [
            {"key": f.key, "group": f.group, "value": f.value, "unit": f.unit, "share": f.share,
             "customers": f.customers, "source": f.source}
            for f in card.facts.facts
        ],
    }


def image_mime(data: bytes) -> str:
    """The image type of `data` from its first bytes (PNG, JPEG, GIF, WebP); ValidationError otherwise."""
    for mime, magic in IMAGE_TYPES.items():
        if data.startswith(magic) and (mime != "image/webp" or data[8:12] == b"WEBP"):
            return mime
    raise ValidationError("the avatar must be a PNG, JPEG, GIF or WebP picture")


def parse_persona_json(payload: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The persona fields of an exported card (or of a bare {"name": ...} object), checked.

    Unknown field names are refused with the list of known ones; values are checked by
    `create_persona`. Facts and ids in the file are ignored: facts come from the data and the
    imported persona gets a new id.
    """
    if isinstance(payload, str | bytes):
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValidationError(f"the file is not valid JSON: {e}") from e
    else:
        data = dict(payload)
    if not isinstance(data, dict):
        raise ValidationError("a persona JSON file holds one object, with a `fields` object inside")
    if "format" in data:
        if data["format"] != JSON_FORMAT:
            raise ValidationError(f"this is not a Persona Studio persona (format {data['format']!r})")
        if data.get("format_version") != JSON_FORMAT_VERSION:
            raise ValidationError(f"persona format version {data.get('format_version')!r} is not supported; "
                                  f"this app reads version {JSON_FORMAT_VERSION}")
    fields = data.get("fields", data if "format" not in data else None)
    if not isinstance(fields, dict):
        raise ValidationError("the file has no `fields` object with the persona's attributes")
    unknown = sorted(set(fields) - set(PERSONA_FIELDS))
    if unknown:
        raise ValidationError(f"unknown persona fields {', '.join(unknown)}; known fields: {', '.join(PERSONA_FIELDS)}")
    clean = {k: v for k, v in fields.items() if v is not None}
    image = clean.pop("avatar_image", None)
    clean.pop("avatar_mime", None)  # taken from the picture itself below
    if image is not None:
        if not isinstance(image, str):
            raise ValidationError("avatar_image must be a base64 text")
        try:
            raw = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValidationError("avatar_image is not valid base64") from e
        clean["avatar_image"] = raw
        clean["avatar_mime"] = image_mime(raw)
    return clean


def import_persona_json(cur: duckdb.DuckDBPyConnection, payload: str | bytes | Mapping[str, Any], user: str) -> int:
    """Create a persona (version 1, no members) from a persona JSON; returns its new id.

    Needs the editor role. Nothing is written when a field is unknown or of the wrong type.
    """
    return create_persona(cur, parse_persona_json(payload), user)


# ---------------------------------------------------------------- PDF

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_FONT = "PersonaSans"


def _register_fonts() -> tuple[str, str, str]:
    """A Unicode TrueType family (€, accents, narrow spaces): DejaVu when installed, else the
    Vera fonts that ship with reportlab. Core PDF fonts lack many of these characters."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if _FONT in pdfmetrics.getRegisteredFontNames():
        return _FONT, f"{_FONT}-Bold", f"{_FONT}-Italic"
    if (_DEJAVU / "DejaVuSans.ttf").exists():
        files = [_DEJAVU / n for n in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
                                        "DejaVuSans-BoldOblique.ttf")]
    else:
        import reportlab

        base = Path(reportlab.__file__).parent / "fonts"
        files = [base / n for n in ("Vera.ttf", "VeraBd.ttf", "VeraIt.ttf", "VeraBI.ttf")]
    names = (_FONT, f"{_FONT}-Bold", f"{_FONT}-Italic", f"{_FONT}-BoldItalic")
    for name, file in zip(names, files, strict=True):
        pdfmetrics.registerFont(TTFont(name, str(file)))
    addMapping(_FONT, 0, 0, names[0])
    addMapping(_FONT, 1, 0, names[1])
    addMapping(_FONT, 0, 1, names[2])
    addMapping(_FONT, 1, 1, names[3])
    return names[0], names[1], names[2]


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")


def _pdf_inline(text: str) -> str:
    """A line of Markdown as reportlab markup: escaped first, then only our own <b>/<i> tags
    added, so nothing a user typed can become markup; links print as "text (address)"."""
    escaped = pdf_markup(_LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text))
    return _ITALIC.sub(r"<i>\1</i>", _BOLD.sub(r"<b>\1</b>", escaped))


def card_pdf(card: PersonaCard, labels: Mapping[str, str] | None = None) -> bytes:
    """The card as an A4 PDF: avatar, name, quote, facts table, then every filled field."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import (
        Image,
        ListFlowable,
        ListItem,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    regular, bold, italic = _register_fonts()
    words = {**LABELS, **(labels or {})}
    p, facts = card.persona, card.facts
    body = ParagraphStyle("body", fontName=regular, fontSize=10, leading=14)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor=colors.HexColor("#5C6170"))
    title = ParagraphStyle("title", parent=body, fontName=bold, fontSize=22, leading=27)
    heading = ParagraphStyle("heading", parent=body, fontName=bold, fontSize=12, leading=16, spaceBefore=10,
                             spaceAfter=4, textColor=colors.HexColor("#4C6EF5"))
    quote = ParagraphStyle("quote", parent=body, fontName=italic, fontSize=12, leading=16, leftIndent=8,
                           textColor=colors.HexColor("#343A40"))
    initials_style = ParagraphStyle("initials", parent=title, alignment=TA_CENTER, textColor=colors.white)

    def paragraph(markdown_text: str, style: ParagraphStyle) -> Paragraph:
        try:
            return Paragraph(_pdf_inline(markdown_text).replace("\n", "<br/>"), style)
        except ValueError:  # bold and italic marks that cross each other: print the text as typed
            return Paragraph(pdf_markup(markdown_text), style)

    story: list[Any] = []
    avatar: Any = None
    if p["avatar_image"]:
        try:
            ImageReader(io.BytesIO(p["avatar_image"])).getSize()
            avatar = Image(io.BytesIO(p["avatar_image"]), width=28 * mm, height=28 * mm, kind="proportional")
        except Exception:  # an unreadable picture must not stop the export: initials instead
            avatar = None
    if avatar is None:
        initials = "".join(w[0] for w in str(p["name"]).split()[:2]).upper() or "?"
        avatar = Table([[Paragraph(pdf_markup(initials), initials_style)]], colWidths=[28 * mm], rowHeights=[28 * mm],
                       style=TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#4C6EF5")),
                                         ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    header = [Paragraph(pdf_markup(p["name"]), title)]
    if p["nickname"]:
        header.append(Paragraph(pdf_markup(f"“{p['nickname']}”"), quote))
    header.append(Paragraph(pdf_markup(f"{words['kind']}: {p['kind']} · {words['status']}: {p['status']}"), small))
    story.append(Table([[avatar, header]], colWidths=[32 * mm, None],
                       style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")])))
    if p["quote"]:
        story += [Spacer(1, 6), Paragraph(pdf_markup(f"“{p['quote']}”"), quote)]

    story.append(Paragraph(pdf_markup(words["facts"]), heading))
    rows = []
    for group in GROUPS:
        for fact in facts.by_group(group):
            rows.append([Paragraph(pdf_markup(words.get(fact.key, fact.key)), body),
                         Paragraph(pdf_markup(fact_text(fact, facts.currency, words)), body),
                         Paragraph(pdf_markup(words["based_on"].format(n=f"{fact.customers:,}")), small)])
    story.append(Table(rows, colWidths=[60 * mm, 60 * mm, None], style=TableStyle([
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#DEE2E6")), ("VALIGN", (0, 0), (-1, -1), "TOP")])))

    for name in BODY_FIELDS:
        value = p[name]
        if not value:
            continue
        story.append(Paragraph(pdf_markup(words.get(name, name)), heading))
        lines = value if PERSONA_FIELDS[name].kind == "list" else None
        if lines is None:
            text_lines = str(value).splitlines()
            bullets = [ln[2:] for ln in text_lines if ln.startswith(("- ", "* "))]
            if bullets and len(bullets) == len([ln for ln in text_lines if ln.strip()]):
                lines = bullets
        if lines is not None:
            story.append(ListFlowable([ListItem(paragraph(item, body)) for item in lines],
                                      bulletType="bullet", bulletFontName=regular, leftIndent=12))
        else:
            for para in re.split(r"\n\s*\n", str(value)):
                para = re.sub(r"^#+\s*", "", para.strip())
                if para:
                    story.append(paragraph(para, body))
    when = p.updated_at.strftime("%Y-%m-%d %H:%M") if p.updated_at else "?"
    story += [Spacer(1, 10), Paragraph(pdf_markup(words["version"].format(
        version=p.version, when=when, who=p.updated_by or "?")), small)]

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=str(p["name"]), author="Persona Studio")
    doc.build(story)
    return out.getvalue()
