"""Personas from clusters: drafts, picking, interview shortlists and re-evaluation.

A draft fills every persona field the data says something about - demographics, channels
and devices, buying triggers (discount share), frustrations (cart abandonment, returns), a
day in the life (hours, weekdays, device) - and leaves the others empty, keeping the
numbers behind each field in `evidence`. Drafted text is content, written in the shop's
language (French for a fr_* locale, English otherwise), not in the reader's UI language.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import duckdb
import numpy as np
import pandas as pd
from faker import Faker
from scipy.optimize import linear_sum_assignment

from persona_engine.clustering import (
    BaseStats,
    ClusteringRun,
    ClusterProfile,
    Trait,
    distinguishing_traits,
    latest_run_id,
    load_run,
    merge_profiles,
    skews,
)
from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.explore import write_persona_cubes
from persona_engine.personas import create_persona
from persona_engine.store import fetch_df, get_setting, transaction

DEFAULT_LOCALE = "fr_FR"
STALE_AFTER_DAYS = 90  # personas not checked against real customers for longer are flagged
SWEET_SPOT = (3, 5)  # active personas a team can keep in mind
TOO_MANY = 7  # above this, warn
ANTI_DISCOUNT_SHARE = 0.7  # buys (nearly) only on discount
ANTI_RETURN_RATE = 0.2  # returns at least this share of orders...
ANTI_RETURN_LIFT = 2.0  # ...and at least twice the shop's rate
AVATAR_COLOURS = ("#4C6EF5", "#F59F00", "#12B886", "#E64980", "#7950F2", "#15AABF", "#FA5252", "#82C91E")
SHORTLIST_SIZE = 10


def content_language(locale: str | None) -> str:
    """The language drafted text is written in: 'fr' for French shops, 'en' otherwise."""
    return "fr" if (locale or DEFAULT_LOCALE).lower().startswith("fr") else "en"


# ---------------------------------------------------------------- wording (content)

# Adjectives for names, per (feature, direction): English words, French (masculine,
# feminine) pairs. Several per trait, with different first letters, so that a first name
# starting with the same letter can usually be found.
ADJECTIVES: dict[tuple[str, str], dict[str, list[Any]]] = {
    ("discount_share", "higher"): {"en": ["Frugal", "Thrifty", "Savvy", "Canny"],
                                   "fr": [("Futé", "Futée"), ("Malin", "Maligne"), ("Économe", "Économe"),
                                          ("Chineur", "Chineuse")]},
    ("discount_share", "lower"): {"en": ["Discerning", "Particular", "Refined"],
                                  "fr": [("Raffiné", "Raffinée"), ("Exigeant", "Exigeante"), ("Distingué", "Distinguée")]},
    ("average_order_value", "higher"): {"en": ["Lavish", "Premium", "Generous", "Deluxe"],
                                        "fr": [("Généreux", "Généreuse"), ("Prestigieux", "Prestigieuse"),
                                               ("Large", "Large")]},
    ("average_order_value", "lower"): {"en": ["Modest", "Careful", "Budget"],
                                       "fr": [("Modeste", "Modeste"), ("Mesuré", "Mesurée"), ("Prudent", "Prudente")]},
    ("frequency", "higher"): {"en": ["Loyal", "Regular", "Faithful", "Steady"],
                              "fr": [("Fidèle", "Fidèle"), ("Régulier", "Régulière"), ("Assidu", "Assidue")]},
    ("frequency", "lower"): {"en": ["Occasional", "Rare", "Seasonal"],
                             "fr": [("Occasionnel", "Occasionnelle"), ("Rare", "Rare"), ("Saisonnier", "Saisonnière")]},
    ("mobile_share", "higher"): {"en": ["Mobile", "Busy", "Nimble", "Connected"],
                                 "fr": [("Mobile", "Mobile"), ("Nomade", "Nomade"), ("Connecté", "Connectée"),
                                        ("Pressé", "Pressée")]},
    ("mobile_share", "lower"): {"en": ["Deliberate", "Desktop", "Patient"],
                                "fr": [("Posé", "Posée"), ("Patient", "Patiente"), ("Sédentaire", "Sédentaire")]},
    ("cart_abandonment_rate", "higher"): {"en": ["Hesitant", "Curious", "Wavering"],
                                          "fr": [("Hésitant", "Hésitante"), ("Curieux", "Curieuse"),
                                                 ("Flâneur", "Flâneuse")]},
    ("pages_per_session", "higher"): {"en": ["Curious", "Browsing", "Careful"],
                                      "fr": [("Curieux", "Curieuse"), ("Flâneur", "Flâneuse"), ("Attentif", "Attentive")]},
    ("pages_per_session", "lower"): {"en": ["Decisive", "Quick", "Direct"],
                                     "fr": [("Direct", "Directe"), ("Décidé", "Décidée"), ("Rapide", "Rapide")]},
    ("sessions_total", "higher"): {"en": ["Busy", "Frequent", "Keen"],
                                   "fr": [("Assidu", "Assidue"), ("Fervent", "Fervente"), ("Passionné", "Passionnée")]},
    ("sessions_total", "lower"): {"en": ["Occasional", "Rare", "Seasonal"],
                                  "fr": [("Occasionnel", "Occasionnelle"), ("Rare", "Rare"), ("Saisonnier", "Saisonnière")]},
    ("return_rate", "higher"): {"en": ["Picky", "Choosy", "Fussy"],
                                "fr": [("Pointilleux", "Pointilleuse"), ("Difficile", "Difficile"), ("Exigeant", "Exigeante")]},
    ("age", "higher"): {"en": ["Seasoned", "Wise", "Mature"],
                        "fr": [("Sage", "Sage"), ("Serein", "Sereine"), ("Mûr", "Mûre")]},
    ("age", "lower"): {"en": ["Young", "Youthful", "Jaunty"],
                       "fr": [("Jeune", "Jeune"), ("Juvénile", "Juvénile"), ("Jovial", "Joviale")]},
    ("income", "higher"): {"en": ["Affluent", "Wealthy", "Prosperous"],
                           "fr": [("Aisé", "Aisée"), ("Prospère", "Prospère")]},
    ("income", "lower"): {"en": ["Thrifty", "Modest", "Budget"],
                          "fr": [("Modeste", "Modeste"), ("Économe", "Économe")]},
    ("monetary", "higher"): {"en": ["Valuable", "Big-spending", "Generous"],
                             "fr": [("Généreux", "Généreuse"), ("Précieux", "Précieuse")]},
    ("recency_days", "higher"): {"en": ["Sleepy", "Distant", "Dormant"],
                                 "fr": [("Discret", "Discrète"), ("Distant", "Distante")]},
    ("recency_days", "lower"): {"en": ["Active", "Recent", "Eager"],
                                "fr": [("Actif", "Active"), ("Enthousiaste", "Enthousiaste")]},
    ("tenure_days", "higher"): {"en": ["Loyal", "Long-standing", "Trusty"],
                                "fr": [("Fidèle", "Fidèle"), ("Ancien", "Ancienne")]},
    ("category", "higher"): {"en": ["Keen", "Passionate", "Devoted"],
                             "fr": [("Passionné", "Passionnée"), ("Fervent", "Fervente"), ("Dévoué", "Dévouée")]},
}
FALLBACK_ADJECTIVES: dict[str, list[Any]] = {
    "en": ["Typical", "Classic", "Steady", "Balanced"],
    "fr": [("Tranquille", "Tranquille"), ("Classique", "Classique"), ("Serein", "Sereine")],
}

# Short labels for the nickname line: "Discount-driven · Fashion".
TAGS: dict[str, dict[tuple[str, str], str]] = {
    "en": {
        ("discount_share", "higher"): "discount-driven", ("discount_share", "lower"): "buys at full price",
        ("average_order_value", "higher"): "big baskets", ("average_order_value", "lower"): "small baskets",
        ("frequency", "higher"): "frequent buyer", ("frequency", "lower"): "rare buyer",
        ("mobile_share", "higher"): "mobile-first", ("mobile_share", "lower"): "on a computer",
        ("cart_abandonment_rate", "higher"): "abandons carts", ("cart_abandonment_rate", "lower"): "decisive at checkout",
        ("pages_per_session", "higher"): "browses a lot", ("pages_per_session", "lower"): "goes straight to it",
        ("sessions_total", "higher"): "visits often", ("sessions_total", "lower"): "rare visitor",
        ("return_rate", "higher"): "returns often", ("return_rate", "lower"): "rarely returns",
        ("age", "higher"): "older", ("age", "lower"): "younger",
        ("income", "higher"): "high income", ("income", "lower"): "modest income",
        ("monetary", "higher"): "high value", ("monetary", "lower"): "low value",
        ("recency_days", "higher"): "lapsing", ("recency_days", "lower"): "recently active",
        ("tenure_days", "higher"): "long-standing", ("tenure_days", "lower"): "new",
    },
    "fr": {
        ("discount_share", "higher"): "adepte des promos", ("discount_share", "lower"): "achète au prix fort",
        ("average_order_value", "higher"): "gros paniers", ("average_order_value", "lower"): "petits paniers",
        ("frequency", "higher"): "achète souvent", ("frequency", "lower"): "achète rarement",
        ("mobile_share", "higher"): "mobile d'abord", ("mobile_share", "lower"): "sur ordinateur",
        ("cart_abandonment_rate", "higher"): "abandonne ses paniers",
        ("cart_abandonment_rate", "lower"): "décidé(e) au paiement",
        ("pages_per_session", "higher"): "flâne beaucoup", ("pages_per_session", "lower"): "va droit au but",
        ("sessions_total", "higher"): "visite souvent", ("sessions_total", "lower"): "visite rarement",
        ("return_rate", "higher"): "retourne souvent", ("return_rate", "lower"): "retourne peu",
        ("age", "higher"): "plus âgé(e)", ("age", "lower"): "plus jeune",
        ("income", "higher"): "revenus élevés", ("income", "lower"): "revenus modestes",
        ("monetary", "higher"): "forte valeur", ("monetary", "lower"): "faible valeur",
        ("recency_days", "higher"): "s'éloigne", ("recency_days", "lower"): "actif(ve) récemment",
        ("tenure_days", "higher"): "client(e) de longue date", ("tenure_days", "lower"): "nouveau client",
    },
}

# Sentences of drafted fields. {x} placeholders take numbers already formatted.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "bio": "Stands for {share} of customers and {revenue_share} of revenue.",
        "trait_higher": "{feature}: {value} (all customers: {base})",
        "age": "Age: {value} years on average (all customers: {base})",
        "female_share": "{share} women", "male_share": "{share} men", "other_share": "{share} other",
        "income": "Income: {value} a year on average (all customers: {base})",
        "mostly": "Mostly {values}",
        "regions": "Regions: {values}",
        "occupation": "Occupation: {values}",
        "education": "Education: {values}",
        "value_share": "{value} ({share})",
        "value_share_lift": "{value} ({share} of customers, {lift}× the average)",
        "device": "{value} ({share} of visits)",
        "newsletter": "Newsletter: {value} subscribed (all customers: {base})",
        "discount_high": "Discounts and promo codes: {value} of orders use one (all customers: {base})",
        "discount_low": "Buys at full price: only {value} of orders use a discount (all customers: {base})",
        "abandonment": "Leaves {value} of carts without buying (all customers: {base}): price, delivery costs or doubt at checkout?",
        "returns": "Returns {value} of orders (all customers: {base}): products not as expected?",
        "category": "Shops for {category}: {value} of spend ({lift}× the average)",
        "mobile_first": "Mobile first: {value} of visits on a phone (all customers: {base})",
        "desktop": "Mostly on a computer: {value} of visits on a phone (all customers: {base})",
        "mixed_devices": "Uses phone and computer alike: {value} of visits on a phone",
        "relationship": "Customer for {tenure} on average, {orders} completed orders each, last one {recency} days ago (all customers: {base_orders} orders, {base_recency} days)",
        "relationship_no_orders": "Customer for {tenure} on average; most have not bought yet",
        "day": "Usually shops {part} (around {hour}), {days}, {device}.",
        "rhythm": "Visits about {visits} times a month and orders {orders} times a year; a basket is about {aov}.",
        "weekend": "more at weekends", "weekdays": "mostly on weekdays", "any_day": "any day of the week",
        "morning": "in the morning", "midday": "around lunchtime", "afternoon": "in the afternoon",
        "evening": "in the evening", "night": "late at night",
        "on_phone": "on a phone", "on_computer": "on a computer", "on_tablet": "on a tablet", "on_any": "on any device",
        "years": "{n} years", "months": "{n} months",
    },
    "fr": {
        "bio": "Représente {share} des clients et {revenue_share} du chiffre d'affaires.",
        "trait_higher": "{feature} : {value} (tous clients : {base})",
        "age": "Âge : {value} ans en moyenne (tous clients : {base})",
        "female_share": "{share} de femmes", "male_share": "{share} d'hommes", "other_share": "{share} autres",
        "income": "Revenu : {value} par an en moyenne (tous clients : {base})",
        "mostly": "Surtout {values}",
        "regions": "Régions : {values}",
        "occupation": "Profession : {values}",
        "education": "Études : {values}",
        "value_share": "{value} ({share})",
        "value_share_lift": "{value} ({share} des clients, {lift}× la moyenne)",
        "device": "{value} ({share} des visites)",
        "newsletter": "Newsletter : {value} abonnés (tous clients : {base})",
        "discount_high": "Promotions et codes de réduction : {value} des commandes en utilisent un (tous clients : {base})",
        "discount_low": "Achète au prix fort : seulement {value} des commandes avec une remise (tous clients : {base})",
        "abandonment": "Abandonne {value} de ses paniers (tous clients : {base}) : prix, frais de livraison ou doute au paiement ?",
        "returns": "Retourne {value} de ses commandes (tous clients : {base}) : produits différents de l'attente ?",
        "category": "Achète pour {category} : {value} de ses dépenses ({lift}× la moyenne)",
        "mobile_first": "Mobile d'abord : {value} des visites sur téléphone (tous clients : {base})",
        "desktop": "Surtout sur ordinateur : {value} des visites sur téléphone (tous clients : {base})",
        "mixed_devices": "Téléphone et ordinateur à parts égales : {value} des visites sur téléphone",
        "relationship": "Client(e) depuis {tenure} en moyenne, {orders} commandes chacun(e), la dernière il y a {recency} jours (tous clients : {base_orders} commandes, {base_recency} jours)",
        "relationship_no_orders": "Client(e) depuis {tenure} en moyenne ; la plupart n'ont pas encore acheté",
        "day": "Fait ses achats {part} (vers {hour}), {days}, {device}.",
        "rhythm": "Vient environ {visits} fois par mois et commande {orders} fois par an ; un panier tourne autour de {aov}.",
        "weekend": "plutôt le week-end", "weekdays": "plutôt en semaine", "any_day": "n'importe quel jour",
        "morning": "le matin", "midday": "à l'heure du déjeuner", "afternoon": "l'après-midi",
        "evening": "le soir", "night": "tard dans la nuit",
        "on_phone": "sur son téléphone", "on_computer": "sur ordinateur", "on_tablet": "sur tablette",
        "on_any": "sur tous ses écrans",
        "years": "{n} ans", "months": "{n} mois",
    },
}

# Words for data codes in drafted text (the UI translates codes through its catalogues).
CODES: dict[str, dict[str, str]] = {
    "en": {"mobile": "Mobile", "desktop": "Computer", "tablet": "Tablet", "search": "Search engines",
           "display": "Display ads", "email": "Email", "social": "Social networks", "referral": "Referral sites",
           "direct": "Direct visits", "single": "single", "married": "married", "partnered": "in a relationship",
           "divorced": "divorced", "widowed": "widowed"},
    "fr": {"mobile": "Mobile", "desktop": "Ordinateur", "tablet": "Tablette", "search": "Moteurs de recherche",
           "display": "Publicité display", "email": "E-mail", "social": "Réseaux sociaux", "referral": "Sites partenaires",
           "direct": "Visites directes", "single": "célibataires", "married": "marié(e)s", "partnered": "en couple",
           "divorced": "divorcé(e)s", "widowed": "veufs/veuves"},
}

FEATURE_WORDS: dict[str, dict[str, str]] = {
    "en": {"average_order_value": "Average basket", "discount_share": "Orders with a discount",
           "mobile_share": "Visits on a phone", "frequency": "Completed orders", "sessions_total": "Visits",
           "pages_per_session": "Pages per visit", "cart_abandonment_rate": "Carts abandoned",
           "return_rate": "Orders returned", "recency_days": "Days since last order", "age": "Age",
           "income": "Yearly income", "monetary": "Revenue per customer", "tenure_days": "Days as a customer"},
    "fr": {"average_order_value": "Panier moyen", "discount_share": "Commandes avec remise",
           "mobile_share": "Visites sur téléphone", "frequency": "Commandes", "sessions_total": "Visites",
           "pages_per_session": "Pages par visite", "cart_abandonment_rate": "Paniers abandonnés",
           "return_rate": "Commandes retournées", "recency_days": "Jours depuis la dernière commande", "age": "Âge",
           "income": "Revenu annuel", "monetary": "Chiffre d'affaires par client",
           "tenure_days": "Jours comme client"},
}

_PERCENT_FEATURES = {"discount_share", "mobile_share", "cart_abandonment_rate", "return_rate"}
_MONEY_FEATURES = {"average_order_value", "income", "monetary"}
_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def _number(value: float, lang: str, decimals: int = 0) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


def _percent(value: float, lang: str) -> str:
    return f"{_number(100 * value, lang)}\u202f%" if lang == "fr" else f"{_number(100 * value, lang)}%"


def _money(value: float, lang: str, currency: str | None) -> str:
    symbol = _CURRENCY_SYMBOLS.get(currency or "", currency or "")
    amount = _number(value, lang)
    if lang == "fr":
        return f"{amount}\u202f{symbol}".strip()
    return f"{symbol}{amount}" if len(symbol) == 1 else f"{amount} {symbol}".strip()


def _ratio_text(value: float, lang: str) -> str:
    return _number(value, lang, 1)


def format_value(feature: str, value: float, lang: str, currency: str | None) -> str:
    """A feature's value in words people read: 35%, 72 €, 4.2."""
    if feature in _PERCENT_FEATURES or feature.startswith("category:"):
        return _percent(value, lang)
    if feature in _MONEY_FEATURES:
        return _money(value, lang, currency)
    if feature in ("frequency", "pages_per_session"):
        return _number(value, lang, 1)
    return _number(value, lang)


def describe_trait(trait: Trait, lang: str, currency: str | None = None) -> str:
    """One trait as a line of content: "Average basket: 28 € (all customers: 82 €)"."""
    if trait.feature.startswith("category:"):
        category = trait.feature.split(":", 1)[1]
        return TEXT[lang]["category"].format(category=category, value=_percent(trait.value, lang),
                                             lift=_ratio_text(trait.ratio or 0.0, lang))
    return TEXT[lang]["trait_higher"].format(
        feature=FEATURE_WORDS[lang].get(trait.feature, trait.feature),
        value=format_value(trait.feature, trait.value, lang, currency),
        base=format_value(trait.feature, trait.base, lang, currency),
    )


# ---------------------------------------------------------------- names and avatars


def _initial(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    letters = [c for c in folded if c.isalpha()]
    return letters[0].upper() if letters else ""


class NamePicker:
    """First names of a locale, drawn once with a seed, handed out without repeats."""

    def __init__(self, locale: str, seed: int = 0) -> None:
        try:
            fake = Faker(locale)
        except AttributeError:
            fake = Faker("en_US")  # a locale Faker does not know
        fake.seed_instance(seed)
        self.pools = {
            "female": list(dict.fromkeys(fake.first_name_female() for _ in range(600))),
            "male": list(dict.fromkeys(fake.first_name_male() for _ in range(600))),
        }
        self.used: set[str] = set()
        self.used_adjectives: set[str] = set()

    def with_initial(self, gender: str, initial: str) -> str | None:
        for name in self.pools[gender]:
            if name not in self.used and _initial(name) == initial and " " not in name and "-" not in name:
                self.used.add(name)
                return name
        return None

    def any(self, gender: str) -> str:
        for name in self.pools[gender]:
            if name not in self.used:
                self.used.add(name)
                return name
        return self.pools[gender][0]


def _adjective_options(traits: Sequence[Trait], lang: str) -> list[tuple[Any, str | None]]:
    """(adjective, the trait it comes from), strongest trait first, then fallbacks."""
    # Behaviour and demographic traits first: "passionate" about a category says less.
    ordered = sorted(traits, key=lambda t: t.feature.startswith("category:"))
    options: list[tuple[Any, str | None]] = []
    for trait in ordered:
        key = ("category", "higher") if trait.feature.startswith("category:") else (trait.feature, trait.direction)
        options.extend((a, trait.feature) for a in ADJECTIVES.get(key, {}).get(lang, []))
    return options + [(a, None) for a in FALLBACK_ADJECTIVES[lang]]


def _name_with(first: str, adjective: Any, gender: str, lang: str) -> str:
    if lang == "fr":
        word = adjective[1] if gender == "female" else adjective[0]
        article = "l'" if _initial(word) in "AEIOUYH" else ("la " if gender == "female" else "le ")
        return f"{first} {article}{word}"
    return f"{adjective} {first}"


def alliterative_name(traits: Sequence[Trait], gender: str, lang: str, names: NamePicker
                      ) -> tuple[str, str, str | None]:
    """("Frugal Fred", adjective, trait) from the strongest trait with a matching first name.

    English: "<Adjective> <First name>"; French: "<Prénom> le/la <Adjectif>" (agreed in
    gender, "l'" before a vowel). Falls back to any name when no initial matches.
    """
    def word_of(adjective: Any) -> str:
        if lang == "fr":
            return str(adjective[1] if gender == "female" else adjective[0])
        return str(adjective)

    options = _adjective_options(traits, lang)
    for adjective, trait in options:
        word = word_of(adjective)
        stem = str(adjective[0] if lang == "fr" else adjective)  # "Passionné" and "Passionnée" are one
        if stem in names.used_adjectives:
            continue
        first = names.with_initial(gender, _initial(word))
        if first:
            names.used_adjectives.add(stem)
            return _name_with(first, adjective, gender, lang), word, trait
    adjective, trait = options[0]
    return _name_with(names.any(gender), adjective, gender, lang), word_of(adjective), trait


def avatar_svg(name: str, colour: str) -> str:
    """A 96 px circle with the name's initials (articles skipped): our own markup only."""
    words = [w for w in name.replace("l'", "").split() if w.lower() not in ("le", "la", "the")]
    initials = "".join(_initial(w) for w in words[:2]) or "?"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
        f'<circle cx="48" cy="48" r="48" fill="{xml_escape(colour)}"/>'
        '<text x="48" y="48" dy=".35em" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="36" font-weight="600" fill="#ffffff">{xml_escape(initials)}</text></svg>'
    )


# ---------------------------------------------------------------- drafts


@dataclass
class PersonaDraft:
    """A persona suggested from one cluster or several merged ones, not yet stored."""

    clusters: tuple[int, ...]
    fields: dict[str, Any]
    evidence: dict[str, Any]
    centroid: dict[str, Any]
    customers: int
    share: float
    revenue_share: float | None
    traits: list[Trait] = field(default_factory=list)


def _dominant_gender(profile: ClusterProfile, fallback: int) -> str:
    counts = profile.categorical.get("gender", {})
    female, male = counts.get("female", 0), counts.get("male", 0)
    if female == male:
        return "female" if fallback % 2 == 0 else "male"
    return "female" if female > male else "male"


def _mean(profile: ClusterProfile, feature: str) -> float | None:
    return profile.mean(feature)


def _z(profile: ClusterProfile, base: BaseStats, feature: str) -> float | None:
    mean, base_mean, sd = profile.mean(feature), base.profile.mean(feature), base.sd.get(feature, 0.0)
    if mean is None or base_mean is None or not sd:
        return None
    return (mean - base_mean) / sd


def _code(value: str, lang: str) -> str:
    return CODES[lang].get(value, value)


class _Writer:
    """Drafts the fields of one persona from its profile; keeps each field's evidence."""

    def __init__(self, profile: ClusterProfile, base: BaseStats, lang: str, currency: str | None,
                 span_days: float | None) -> None:
        self.p, self.base, self.lang, self.currency, self.span_days = profile, base, lang, currency, span_days
        self.words = TEXT[lang]
        self.evidence: dict[str, Any] = {}

    def pct(self, value: float) -> str:
        return _percent(value, self.lang)

    def money(self, value: float) -> str:
        return _money(value, self.lang, self.currency)

    def stat(self, feature: str) -> dict[str, Any]:
        return {"cluster": self.p.mean(feature), "all_customers": self.base.profile.mean(feature),
                "z": _z(self.p, self.base, feature), "customers_with_data": self.p.numeric.get(feature, (0, 0))[1]}

    def demographics(self) -> str | None:
        lines, ev = [], {}
        age, base_age = self.p.mean("age"), self.base.profile.mean("age")
        if age is not None and base_age is not None:
            lines.append(self.words["age"].format(value=_number(age, self.lang), base=_number(base_age, self.lang)))
            ev["age"] = self.stat("age")
        genders = self.p.shares("gender")
        if genders:
            top = max(sorted(genders), key=lambda g: genders[g])
            if f"{top}_share" in self.words:
                lines.append(self.words[f"{top}_share"].format(share=self.pct(genders[top])))
            ev["gender"] = genders
        income, base_income = self.p.mean("income"), self.base.profile.mean("income")
        if income is not None and base_income is not None:
            lines.append(self.words["income"].format(value=self.money(income), base=self.money(base_income)))
            ev["income"] = self.stat("income")
        marital = skews(self.p, self.base, "marital_status", top=2, by="share")
        if not marital.empty:
            values = ", ".join(self.words["value_share"].format(value=_code(r.value, self.lang), share=self.pct(r.share))
                               for r in marital.itertuples())
            lines.append(self.words["mostly"].format(values=values))
            ev["marital_status"] = marital.to_dict("records")
        # Regions only when some are over-represented: the biggest regions of the shop say
        # nothing about one persona.
        regions = skews(self.p, self.base, "region", top=3)
        regions = regions[(regions["lift"].fillna(0) >= 1.2) & (regions["share"] >= 0.05)] if not regions.empty else regions
        if not regions.empty:
            values = ", ".join(self.words["value_share"].format(value=r.value, share=self.pct(r.share))
                               for r in regions.itertuples())
            lines.append(self.words["regions"].format(values=values))
            ev["region"] = regions.to_dict("records")
        if not lines:
            return None
        self.evidence["demographics"] = ev
        return "\n".join(f"- {line}" for line in lines)

    def professional_context(self) -> str | None:
        lines, ev = [], {}
        for feature in ("occupation", "education"):
            table = skews(self.p, self.base, feature, top=2, by="share")
            if table.empty:
                continue
            values = ", ".join(self.words["value_share"].format(value=r.value, share=self.pct(r.share))
                               for r in table.itertuples())
            lines.append(self.words[feature].format(values=values))
            ev[feature] = table.to_dict("records")
        if not lines:
            return None
        self.evidence["professional_context"] = ev
        return "\n".join(f"- {line}" for line in lines)

    def preferred_channels(self) -> list[str]:
        items, ev = [], {}
        sources = skews(self.p, self.base, "main_source", top=2)
        for r in sources.itertuples():
            items.append(self.words["value_share_lift"].format(
                value=_code(r.value, self.lang), share=self.pct(r.share), lift=_ratio_text(r.lift or 0.0, self.lang)))
        if not sources.empty:
            ev["main_source"] = sources.to_dict("records")
        devices = self.p.shares("main_device")
        mobile = self.p.mean("mobile_share")
        if mobile is not None:
            items.append(self.words["device"].format(value=_code("mobile", self.lang), share=self.pct(mobile)))
            ev["mobile_share"] = self.stat("mobile_share")
        elif devices:
            top = max(sorted(devices), key=lambda d: devices[d])
            items.append(self.words["value_share"].format(value=_code(top, self.lang), share=self.pct(devices[top])))
            ev["main_device"] = devices
        if items:
            self.evidence["preferred_channels"] = ev
        return items

    def media_preferences(self) -> list[str]:
        share, base = self.p.mean("newsletter_opt_in"), self.base.profile.mean("newsletter_opt_in")
        if share is None or base is None:
            return []
        self.evidence["media_preferences"] = {"newsletter_opt_in": self.stat("newsletter_opt_in")}
        return [self.words["newsletter"].format(value=self.pct(share), base=self.pct(base))]

    def buying_triggers(self) -> list[str]:
        z = _z(self.p, self.base, "discount_share")
        share, base = self.p.mean("discount_share"), self.base.profile.mean("discount_share")
        if z is None or share is None or base is None or abs(z) < 0.3:
            return []  # about the shop's average: the data says nothing particular
        self.evidence["buying_triggers"] = {"discount_share": self.stat("discount_share")}
        key = "discount_high" if z > 0 else "discount_low"
        return [self.words[key].format(value=self.pct(share), base=self.pct(base))]

    def frustrations(self) -> list[str]:
        items, ev = [], {}
        for feature, key in (("cart_abandonment_rate", "abandonment"), ("return_rate", "returns")):
            z = _z(self.p, self.base, feature)
            value, base = self.p.mean(feature), self.base.profile.mean(feature)
            if z is not None and value is not None and base is not None and z >= 0.3:
                items.append(self.words[key].format(value=self.pct(value), base=self.pct(base)))
                ev[feature] = self.stat(feature)
        if items:
            self.evidence["frustrations"] = ev
        return items

    def motivations(self) -> list[str]:
        items, ev = [], {}
        for category in sorted(c for c in self.base.profile.category_spend if c != "_buyers"):
            share, base = self.p.spend_share(category), self.base.profile.spend_share(category)
            if share is None or not base or share < 0.15 or share / base < 1.3:
                continue
            items.append((share, self.words["category"].format(
                category=category, value=self.pct(share), lift=_ratio_text(share / base, self.lang))))
            ev[category] = {"spend_share": share, "all_customers": base}
        if items:
            self.evidence["motivations"] = {"category_spend_share": ev}
        return [text for _, text in sorted(items, key=lambda x: -x[0])[:3]]

    def tech_affinity(self) -> str | None:
        mobile, base = self.p.mean("mobile_share"), self.base.profile.mean("mobile_share")
        if mobile is None or base is None:
            return None
        key = "mobile_first" if mobile >= 0.65 else "desktop" if mobile <= 0.35 else "mixed_devices"
        self.evidence["tech_affinity"] = {"mobile_share": self.stat("mobile_share")}
        return self.words[key].format(value=self.pct(mobile), base=self.pct(base))

    def _duration(self, days: float) -> str:
        if days >= 365:
            return self.words["years"].format(n=_number(days / 365.25, self.lang, 1))
        return self.words["months"].format(n=_number(max(days / 30.44, 1), self.lang))

    def brand_relationship(self) -> str | None:
        tenure = self.p.mean("tenure_days")
        if tenure is None:
            return None
        orders, recency = self.p.mean("frequency"), self.p.mean("recency_days")
        base_orders, base_recency = self.base.profile.mean("frequency"), self.base.profile.mean("recency_days")
        self.evidence["brand_relationship"] = {f: self.stat(f) for f in ("tenure_days", "frequency", "recency_days")}
        if not orders or recency is None or base_orders is None or base_recency is None or orders < 1:
            return self.words["relationship_no_orders"].format(tenure=self._duration(tenure))
        return self.words["relationship"].format(
            tenure=self._duration(tenure), orders=_number(orders, self.lang, 1), recency=_number(recency, self.lang),
            base_orders=_number(base_orders, self.lang, 1), base_recency=_number(base_recency, self.lang))

    def day_in_the_life(self) -> str | None:
        hours = {int(h): n for h, n in self.p.categorical.get("preferred_hour", {}).items()}
        if not hours:
            return None
        # The busiest 3-hour window (on a 24-hour circle), its centre is "around".
        counts = np.array([hours.get(h, 0) for h in range(24)], dtype=float)
        window = counts + np.roll(counts, -1) + np.roll(counts, 1)
        peak = int(window.argmax())
        part = ("night" if peak < 6 or peak >= 23 else "morning" if peak < 11 else "midday" if peak < 14
                else "afternoon" if peak < 18 else "evening")
        weekdays = {int(d): n for d, n in self.p.categorical.get("preferred_weekday", {}).items()}
        base_weekdays = {int(d): n for d, n in self.base.profile.categorical.get("preferred_weekday", {}).items()}
        weekend = sum(n for d, n in weekdays.items() if d >= 5) / max(sum(weekdays.values()), 1)
        base_weekend = sum(n for d, n in base_weekdays.items() if d >= 5) / max(sum(base_weekdays.values()), 1)
        days = ("weekend" if weekend >= base_weekend * 1.15 else "weekdays" if weekend <= base_weekend * 0.85
                else "any_day")
        mobile = self.p.mean("mobile_share")
        devices = self.p.shares("main_device")
        device = "on_any"
        if mobile is not None:
            device = "on_phone" if mobile >= 0.6 else "on_computer" if mobile <= 0.4 else "on_any"
        elif devices:
            top = max(sorted(devices), key=lambda d: devices[d])
            device = {"mobile": "on_phone", "desktop": "on_computer", "tablet": "on_tablet"}.get(top, "on_any")
        hour = f"{peak}\u202fh" if self.lang == "fr" else f"{(peak % 12) or 12} {'am' if peak < 12 else 'pm'}"
        text = self.words["day"].format(part=self.words[part], hour=hour, days=self.words[days],
                                        device=self.words[device])
        evidence: dict[str, Any] = {"peak_hour": peak, "orders_by_hour": hours, "weekend_share": weekend,
                                    "all_customers_weekend_share": base_weekend, "mobile_share": mobile}
        sessions, orders, aov = self.p.mean("sessions_total"), self.p.mean("frequency"), self.p.mean("average_order_value")
        if self.span_days and sessions is not None and orders is not None and aov is not None:
            months = self.span_days / 30.44
            text += " " + self.words["rhythm"].format(
                visits=_number(sessions / months, self.lang, 1), orders=_number(orders / months * 12, self.lang, 1),
                aov=self.money(aov))
            evidence.update(sessions_total=sessions, frequency=orders, average_order_value=aov, data_days=self.span_days)
        self.evidence["day_in_the_life"] = evidence
        return text


def suggested_kind(profile: ClusterProfile, base: BaseStats) -> tuple[str | None, dict[str, Any]]:
    """'anti' when the group likely costs more than it brings (buys nearly only on
    discount, or returns far more than the shop), else None (primary/secondary are decided
    among the drafts by revenue)."""
    discount = profile.mean("discount_share")
    returns, base_returns = profile.mean("return_rate"), base.profile.mean("return_rate")
    evidence = {"discount_share": discount, "return_rate": returns, "all_customers_return_rate": base_returns,
                "rule": f"anti when discount share >= {ANTI_DISCOUNT_SHARE} or return rate >= {ANTI_RETURN_RATE} "
                        f"and >= {ANTI_RETURN_LIFT}x the shop's"}
    if discount is not None and discount >= ANTI_DISCOUNT_SHARE:
        return "anti", evidence
    if (returns is not None and base_returns and returns >= ANTI_RETURN_RATE
            and returns >= ANTI_RETURN_LIFT * base_returns):
        return "anti", evidence
    return None, evidence


def _tagline(traits: Sequence[Trait], lang: str) -> str | None:
    words = []
    for trait in traits:
        if trait.feature.startswith("category:"):
            words.append(trait.feature.split(":", 1)[1])
        else:
            tag = TAGS[lang].get((trait.feature, trait.direction))
            if tag:
                words.append(tag)
        if len(words) == 3:
            break
    if not words:
        return None
    text = " · ".join(words)
    return text[0].upper() + text[1:]


def _data_span_days(cur: duckdb.DuckDBPyConnection) -> float | None:
    rows = cur.execute(
        "SELECT date_diff('day', min(ordered_at), max(ordered_at)) FROM analysis_orders WHERE status = 'completed'"
    ).fetchall()
    value = rows[0][0] if rows else None
    return float(value) if value else None


def _centroid(run: ClusteringRun, clusters: Sequence[int]) -> dict[str, Any]:
    raw = np.asarray(run.centroids.get("raw", []), dtype=float)
    if raw.size == 0:
        return {}
    sizes = np.array([run.profiles[c].customers for c in clusters], dtype=float)
    values = (raw[list(clusters)] * sizes[:, None]).sum(axis=0) / max(sizes.sum(), 1.0)
    return {"run_id": run.run_id, "columns": run.centroids["columns"], "raw": values.tolist()}


def _check_groups(run: ClusteringRun, groups: Sequence[Sequence[int]] | None) -> list[tuple[int, ...]]:
    if groups is None:
        return [(c.cluster,) for c in run.clusters]
    seen: set[int] = set()
    out = []
    for group in groups:
        members = tuple(sorted({int(c) for c in group}))
        if not members:
            continue
        unknown = [c for c in members if c not in run.profiles]
        if unknown:
            raise ValidationError(
                f"run {run.run_id} has clusters 0 to {run.k - 1}; there is no cluster {', '.join(map(str, unknown))}")
        twice = seen.intersection(members)
        if twice:
            raise ValidationError(f"cluster {min(twice)} is picked for two personas; a cluster can go to one only")
        seen.update(members)
        out.append(members)
    if not out:
        raise ValidationError("pick at least one cluster to make a persona from")
    return out


def draft_personas(
    cur: duckdb.DuckDBPyConnection, run_id: int, groups: Sequence[Sequence[int]] | None = None, seed: int = 0
) -> list[PersonaDraft]:
    """One draft per group of clusters (default: one per cluster) of a stored run.

    Kinds: 'anti' for groups `suggested_kind` flags; 'primary' for the group with the most
    revenue among the others; 'secondary' for the rest.
    """
    run = load_run(cur, run_id)
    picked = _check_groups(run, groups)
    locale = get_setting(cur, "locale") or DEFAULT_LOCALE
    lang = content_language(locale)
    currency = get_setting(cur, "currency")
    span_days = _data_span_days(cur)
    names = NamePicker(locale, seed)
    total_customers = max(sum(p.customers for p in run.profiles.values()), 1)
    drafts = []
    for index, clusters in enumerate(picked):
        profile = merge_profiles([run.profiles[c] for c in clusters])
        traits = distinguishing_traits(profile, run.base, top=5)
        writer = _Writer(profile, run.base, lang, currency, span_days)
        gender = _dominant_gender(profile, index)
        name, adjective, name_trait = alliterative_name(traits, gender, lang, names)
        kind, kind_evidence = suggested_kind(profile, run.base)
        share = profile.customers / total_customers
        revenue_share = profile.revenue / run.base.profile.revenue if run.base.profile.revenue else None
        fields: dict[str, Any] = {
            "name": name,
            "nickname": _tagline(traits, lang),
            "kind": kind or "secondary",
            "status": "draft",
            "avatar": avatar_svg(name, AVATAR_COLOURS[clusters[0] % len(AVATAR_COLOURS)]),
            "bio": "\n".join([
                TEXT[lang]["bio"].format(share=_percent(share, lang),
                                         revenue_share=_percent(revenue_share or 0.0, lang)),
                *(f"- {describe_trait(t, lang, currency)}" for t in traits[:3]),
            ]),
            "demographics": writer.demographics(),
            "professional_context": writer.professional_context(),
            "preferred_channels": writer.preferred_channels(),
            "media_preferences": writer.media_preferences(),
            "buying_triggers": writer.buying_triggers(),
            "frustrations": writer.frustrations(),
            "motivations": writer.motivations(),
            "tech_affinity": writer.tech_affinity(),
            "brand_relationship": writer.brand_relationship(),
            "day_in_the_life": writer.day_in_the_life(),
        }
        evidence = {
            **writer.evidence,
            "name": {"trait": name_trait, "adjective": adjective, "gender": gender,
                     "genders": profile.shares("gender"), "locale": locale},
            "nickname": {"traits": [t.feature for t in traits[:3]]},
            "kind": {**kind_evidence, "revenue_share": revenue_share},
            "bio": {"customers": profile.customers, "share": share, "revenue_share": revenue_share,
                    "traits": [t.__dict__ for t in traits]},
            "source": {"run_id": run.run_id, "clusters": list(clusters)},
        }
        drafts.append(PersonaDraft(
            clusters=clusters, fields={k: v for k, v in fields.items() if v not in (None, [], "")},
            evidence=evidence, centroid=_centroid(run, clusters), customers=profile.customers, share=share,
            revenue_share=revenue_share, traits=traits,
        ))
    candidates = [d for d in drafts if d.fields["kind"] != "anti"]
    if candidates:
        best = max(candidates, key=lambda d: (d.revenue_share or 0.0, -d.clusters[0]))
        best.fields["kind"] = "primary"
    return drafts


def create_personas_from_run(
    cur: duckdb.DuckDBPyConnection,
    run_id: int | None = None,
    groups: Sequence[Sequence[int]] | None = None,
    user: str = "cli",
    seed: int = 0,
) -> list[int]:
    """Store the drafts of a run as personas (status draft), with their members.

    groups: the clusters picked, each inner sequence becoming one persona (two clusters
    or more are merged into one); clusters in no group are discarded. Default: every
    cluster becomes a persona. Members are the group's customers in the run who still
    have analytics consent. Returns the new persona ids, in the order of `groups`.
    """
    if run_id is None:
        run_id = latest_run_id(cur)
        if run_id is None:
            raise NoDataError("no clustering run yet: run `python -m persona_engine cluster --db ...` first")
    drafts = draft_personas(cur, run_id, groups, seed)
    ids = []
    for draft in drafts:
        members = cur.execute(
            "SELECT customer_id FROM cluster_assignments WHERE run_id = ? AND cluster IN (SELECT unnest(?))"
            " AND customer_id IN (SELECT customer_id FROM analysis_customers) ORDER BY customer_id",
            [run_id, list(draft.clusters)],
        ).fetchnumpy()["customer_id"]
        ids.append(create_persona(
            cur, draft.fields, user, members=members.tolist(), run_id=run_id, source_clusters=draft.clusters,
            evidence=draft.evidence, centroid=draft.centroid, cubes=False,
        ))
    # The explorer cubes of all the new personas in one pass over the rollups (one pass per
    # persona costs nearly as much as all of them); until then their filters read the
    # customers' rows.
    with transaction(cur):
        write_persona_cubes(cur, ids)
    return ids


def persona_count_advice(active: int) -> str:
    """'few' below the sweet spot, 'ok' within 3-5, 'many' from 6 to 7, 'too_many' above 7."""
    if active < SWEET_SPOT[0]:
        return "few"
    if active <= SWEET_SPOT[1]:
        return "ok"
    return "many" if active <= TOO_MANY else "too_many"


# ---------------------------------------------------------------- interview shortlists

_SHORTLIST_SQL = """
WITH m AS (
    SELECT DISTINCT pm.customer_id, pm.run_id FROM persona_members pm
    JOIN analysis_customers c ON c.customer_id = pm.customer_id
    WHERE pm.persona_id = $persona
),
base AS (
    SELECT m.customer_id, c.first_name, c.last_name, c.email, c.city, c.age,
           coalesce(f.frequency, 0) AS orders, coalesce(f.monetary, 0) AS revenue, f.return_rate,
           f.last_order_at, a.distance
    FROM m
    JOIN analysis_customers c ON c.customer_id = m.customer_id
    LEFT JOIN customer_features f ON f.customer_id = m.customer_id
    LEFT JOIN cluster_assignments a ON a.customer_id = m.customer_id AND a.run_id = m.run_id
),
best AS (SELECT 'best' AS list, * FROM base ORDER BY revenue DESC, orders DESC, customer_id LIMIT $n),
worst AS (SELECT 'worst' AS list, * FROM base
          ORDER BY revenue, return_rate DESC NULLS LAST, customer_id LIMIT $n),
typical AS (SELECT 'representative' AS list, * FROM base WHERE distance IS NOT NULL
            ORDER BY distance, customer_id LIMIT $n)
SELECT * FROM best UNION ALL SELECT * FROM worst UNION ALL SELECT * FROM typical
"""


def interview_shortlist(cur: duckdb.DuckDBPyConnection, persona_id: int, n: int = SHORTLIST_SIZE) -> pd.DataFrame:
    """Customers to interview to check a persona, consenting members only.

    Out: list ('best': highest revenue; 'worst': lowest revenue, most returns first on
    ties; 'representative': closest to their cluster's centre in the source run),
    customer_id, first_name, last_name, email, city, age, orders, revenue, return_rate,
    last_order_at, distance. Contact columns are empty when the shop holds none.
    """
    if not 1 <= n <= 1000:
        raise ValidationError("a shortlist holds 1 to 1,000 customers per list")
    exists = cur.execute("SELECT count(*) FROM personas WHERE persona_id = ? AND deleted_at IS NULL",
                         [persona_id]).fetchall()[0][0]
    if not exists:
        raise NotFoundError(f"persona {persona_id} does not exist")
    frame = fetch_df(cur, _SHORTLIST_SQL, {"persona": persona_id, "n": n})
    order = {"best": 0, "worst": 1, "representative": 2}
    frame["_order"] = frame["list"].map(order)
    return frame.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


# ---------------------------------------------------------------- re-evaluation

DRIFT_FEATURES: tuple[str, ...] = (
    "average_order_value", "frequency", "discount_share", "mobile_share", "cart_abandonment_rate",
    "return_rate", "sessions_total", "age", "income",
)


@dataclass(frozen=True)
class PersonaMatch:
    """Where a persona landed in a new run."""

    persona_id: int
    name: str
    cluster: int | None  # matched cluster of the new run; None when there are fewer clusters
    distance: float | None  # between the persona's centre and the cluster's, in the new run's scaled space
    members_before: int
    size_after: int | None
    stayed: int  # members now in the matched cluster
    last_validated_at: datetime | None
    days_since_validation: int | None
    stale: bool
    drift: dict[str, tuple[float | None, float | None]]  # feature -> (persona at drafting, matched cluster now)


@dataclass(frozen=True)
class Reevaluation:
    run_id: int
    matches: list[PersonaMatch]
    unmatched_clusters: list[int]
    flows: pd.DataFrame  # persona_id, name, cluster, customers: where each persona's members are now


def _scaled(values: np.ndarray, centroids: Mapping[str, Any], columns: Sequence[int]) -> np.ndarray:
    center = np.asarray(centroids["center"], dtype=float)[columns]
    scale = np.asarray(centroids["scale"], dtype=float)[columns]
    weight = np.asarray(centroids["weight"], dtype=float)[columns]
    return (values - center) / scale * weight  # type: ignore[no-any-return]


def match_personas(cur: duckdb.DuckDBPyConnection, run_id: int, now: datetime | None = None) -> Reevaluation:
    """Match a (new) run's clusters to the existing personas and measure the drift.

    Each persona's stored centre (raw feature space) and each cluster's centre are scaled
    with the new run's scaling, over the columns both share; the Hungarian method then pairs
    personas and clusters so that the total distance is smallest (one cluster per persona).
    Flows count the personas' current members by their cluster in the new run. A persona
    whose last validation (or creation, if never validated) is more than STALE_AFTER_DAYS
    ago is flagged stale.
    """
    run = load_run(cur, run_id)
    now = now or datetime.now()
    rows = cur.execute(
        "SELECT persona_id, name, centroid, last_validated_at, created_at, source_run_id, source_clusters"
        " FROM personas WHERE deleted_at IS NULL ORDER BY persona_id"
    ).fetchall()
    personas = [r for r in rows if r[2]]
    run_columns = list(run.centroids.get("columns", []))
    run_centres = np.asarray(run.centroids.get("raw", []), dtype=float)
    cost = np.full((len(personas), run.k), np.inf)
    for i, row in enumerate(personas):
        centroid = json.loads(row[2]) if isinstance(row[2], str) else row[2]
        shared = [(run_columns.index(c), j) for j, c in enumerate(centroid.get("columns", [])) if c in run_columns]
        if not shared:
            continue
        cols = [a for a, _ in shared]
        mine = _scaled(np.asarray(centroid["raw"], dtype=float)[[b for _, b in shared]], run.centroids, cols)
        theirs = _scaled(run_centres[:, cols], run.centroids, cols)
        cost[i] = np.sqrt(((theirs - mine) ** 2).sum(axis=1))
    assigned: dict[int, tuple[int, float]] = {}
    if personas and run.k:
        finite = np.where(np.isfinite(cost), cost, 1e9)
        for i, j in zip(*linear_sum_assignment(finite), strict=True):
            if np.isfinite(cost[i, j]):
                assigned[int(i)] = (int(j), float(cost[i, j]))
    flows = fetch_df(
        cur,
        """
        SELECT pm.persona_id, p.name, a.cluster, count(*) AS customers
        FROM persona_members pm
        JOIN personas p ON p.persona_id = pm.persona_id AND p.deleted_at IS NULL
        JOIN analysis_customers c ON c.customer_id = pm.customer_id
        JOIN cluster_assignments a ON a.customer_id = pm.customer_id AND a.run_id = ?
        GROUP BY ALL ORDER BY 1, 3
        """,
        [run_id],
    )
    members = fetch_df(
        cur,
        "SELECT pm.persona_id, count(DISTINCT pm.customer_id) AS n FROM persona_members pm"
        " JOIN analysis_customers c ON c.customer_id = pm.customer_id GROUP BY 1",
    ).set_index("persona_id")["n"]
    matches = []
    for i, (pid, name, _, validated, created, source_run, source_clusters) in enumerate(personas):
        cluster, distance = assigned.get(i, (None, None))
        reference = validated or created
        days = (now - reference).days if reference is not None else None
        before = _source_profile(cur, source_run, source_clusters)
        after = run.profiles.get(cluster) if cluster is not None else None
        drift = {f: (before.mean(f) if before else None, after.mean(f) if after else None) for f in DRIFT_FEATURES}
        stayed = 0
        if cluster is not None:
            hit = flows[(flows["persona_id"] == pid) & (flows["cluster"] == cluster)]
            stayed = int(hit["customers"].sum())
        matches.append(PersonaMatch(
            persona_id=int(pid), name=name, cluster=cluster, distance=distance,
            members_before=int(members.get(pid, 0)), size_after=after.customers if after else None, stayed=stayed,
            last_validated_at=validated, days_since_validation=days,
            stale=days is None or days > STALE_AFTER_DAYS, drift=drift,
        ))
    taken = {m.cluster for m in matches if m.cluster is not None}
    return Reevaluation(run_id, matches, [c for c in range(run.k) if c not in taken], flows)


def _source_profile(cur: duckdb.DuckDBPyConnection, run_id: int | None, clusters: Sequence[int] | None
                    ) -> ClusterProfile | None:
    if run_id is None or not clusters:
        return None
    try:
        run = load_run(cur, run_id)
    except NotFoundError:
        return None
    picked = [run.profiles[c] for c in clusters if c in run.profiles]
    return merge_profiles(picked) if picked else None


def persona_traits(cur: duckdb.DuckDBPyConnection, persona_id: int, top: int = 3) -> list[Trait]:
    """The distinguishing traits of a persona drafted from clusters (empty for others)."""
    rows = cur.execute("SELECT source_run_id, source_clusters FROM personas WHERE persona_id = ?",
                       [persona_id]).fetchall()
    if not rows or rows[0][0] is None:
        return []
    run_id, clusters = rows[0]
    try:
        run = load_run(cur, run_id)
    except NotFoundError:
        return []
    picked = [run.profiles[c] for c in (clusters or []) if c in run.profiles]
    if not picked:
        return []
    return distinguishing_traits(merge_profiles(picked), run.base, top)

