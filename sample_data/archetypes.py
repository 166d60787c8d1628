"""The hidden customer archetypes of the sample shop, in one readable place.

Each archetype is a set of distributions, not a template: every customer draws their own
traits from them (ages, incomes, conversion propensity, basket size...), so archetypes
overlap as real customers do. Tests read `sample_truth` to check that clustering finds them.

Probability tables map a code to a weight (normalised when drawn). Codes for gender,
marital status, devices, sources and payment methods are language-neutral; education,
occupation and interests are keys translated per locale in `geography.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Archetype:
    key: str
    name: str
    description: str
    share: float  # share of the customer base
    # Demographics
    age_mean: float
    age_sd: float
    female_share: float
    marital: dict[str, float]
    education: dict[str, float]
    occupation: dict[str, float]
    income_median: float  # yearly, in the shop currency (EUR scale)
    income_sigma: float
    interests: dict[str, float]
    # Behaviour: sessions
    sessions_per_month: float  # median of the customer-level rate
    mobile_share: tuple[float, float]  # Beta(a, b) of each customer's share of mobile sessions
    pages_mean: float
    sources: dict[str, float]
    hours: tuple[tuple[float, float, float], ...]  # mixture of (weight, mean hour, sd)
    weekend_factor: float  # weekend days' weight relative to a weekday
    december_factor: float  # extra weight of the Nov 20 - Dec 22 gift season
    # Behaviour: funnel (per session)
    view_rate: float  # P(product view)
    cart_rate: tuple[float, float]  # Beta(a, b): P(add to cart | product view)
    checkout_rate: float  # P(checkout | cart)
    order_rate: tuple[float, float]  # Beta(a, b): P(order | checkout)
    # Behaviour: orders
    aov: float  # median of the customer-level average basket, EUR scale
    aov_sigma: float  # spread of customer-level baskets
    items_extra: float  # Poisson mean of items beyond the first
    discount_share: tuple[float, float]  # Beta(a, b): P(an order uses a discount)
    discount_depth: tuple[float, float]  # uniform range of the discount share of the basket
    return_rate: tuple[float, float]  # Beta(a, b): P(a delivered order is returned)
    store_orders_per_month: float
    payment: dict[str, float]
    app_user_share: float  # share of mobile orders placed in the app rather than on the web
    categories: dict[str, float]  # category preference, Dirichlet mean
    newsletter_share: float
    acquisition: dict[str, float] = field(default_factory=dict)


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype(
        key="bargain_hunter",
        name="Bargain hunter",
        description="Young to middle-aged, modest income, buys often but only on promotions; "
        "small baskets, returns a fair share; comes from emails and social ads.",
        share=0.25,
        age_mean=33, age_sd=8, female_share=0.62,
        marital={"single": 0.45, "married": 0.25, "partnered": 0.22, "divorced": 0.08},
        education={"secondary": 0.35, "vocational": 0.35, "bachelor": 0.22, "master": 0.08},
        occupation={"employee": 0.5, "worker": 0.25, "intermediate": 0.15, "student": 0.1},
        income_median=26_000, income_sigma=0.3,
        interests={"fashion": 3, "deals": 5, "beauty": 2, "home": 1, "sport": 1},
        sessions_per_month=3.2, mobile_share=(5, 5), pages_mean=7,
        sources={"email": 4, "social": 3, "display": 2, "search": 1, "direct": 0.5},
        hours=((0.5, 13, 2.5), (0.5, 19, 2)), weekend_factor=1.1, december_factor=1.5,
        view_rate=0.85, cart_rate=(7, 13), checkout_rate=0.6, order_rate=(15, 5),
        aov=32, aov_sigma=0.25, items_extra=1.3,
        discount_share=(8, 2), discount_depth=(0.15, 0.4), return_rate=(3, 22),
        store_orders_per_month=0.01,
        payment={"card": 4, "paypal": 3, "klarna": 3},
        app_user_share=0.3,
        categories={"fashion": 5, "beauty": 3, "home": 2, "kids": 1, "sport": 1},
        newsletter_share=0.9,
        acquisition={"email": 3, "social": 4, "display": 2, "search": 1},
    ),
    Archetype(
        key="loyal_premium",
        name="Loyal premium buyer",
        description="Established professionals in their fifties, high income; buy regularly, "
        "large baskets at full price, rarely return; desktop, direct visits, mornings.",
        share=0.15,
        age_mean=52, age_sd=8, female_share=0.45,
        marital={"married": 0.65, "partnered": 0.12, "divorced": 0.13, "single": 0.07, "widowed": 0.03},
        education={"master": 0.5, "doctorate": 0.1, "bachelor": 0.3, "secondary": 0.1},
        occupation={"executive": 0.6, "business_owner": 0.2, "intermediate": 0.1, "retired": 0.1},
        income_median=78_000, income_sigma=0.3,
        interests={"wine": 3, "travel": 3, "tech": 3, "home": 2, "culture": 2},
        sessions_per_month=2.2, mobile_share=(2, 8), pages_mean=5,
        sources={"direct": 5, "email": 2, "search": 2, "referral": 1},
        hours=((0.6, 9, 1.5), (0.4, 13, 1.5)), weekend_factor=0.8, december_factor=1.3,
        view_rate=0.9, cart_rate=(9, 11), checkout_rate=0.85, order_rate=(18, 2),
        aov=165, aov_sigma=0.25, items_extra=0.8,
        discount_share=(1, 19), discount_depth=(0.05, 0.15), return_rate=(1, 40),
        store_orders_per_month=0.12,
        payment={"card": 6, "apple_pay": 1, "bank_transfer": 2},
        app_user_share=0.2,
        categories={"tech": 4, "gourmet": 3, "home": 3, "books": 1},
        newsletter_share=0.5,
        acquisition={"direct": 3, "search": 3, "referral": 2, "email": 1},
    ),
    Archetype(
        key="busy_parent",
        name="Busy mobile parent",
        description="Parents in their late thirties, middle income, shop on the phone in the "
        "app late in the evening after the kids are in bed; kids' items and groceries.",
        share=0.22,
        age_mean=38, age_sd=5, female_share=0.68,
        marital={"married": 0.7, "partnered": 0.2, "divorced": 0.08, "single": 0.02},
        education={"bachelor": 0.4, "vocational": 0.25, "master": 0.25, "secondary": 0.1},
        occupation={"intermediate": 0.45, "employee": 0.35, "executive": 0.15, "business_owner": 0.05},
        income_median=44_000, income_sigma=0.25,
        interests={"kids": 5, "cooking": 3, "home": 3, "health": 2, "deals": 1},
        sessions_per_month=3.5, mobile_share=(12, 2), pages_mean=4,
        sources={"direct": 3, "email": 2, "social": 2, "search": 1},
        hours=((0.8, 21.5, 1.2), (0.2, 7, 1)), weekend_factor=1.3, december_factor=1.6,
        view_rate=0.8, cart_rate=(8, 12), checkout_rate=0.7, order_rate=(16, 4),
        aov=72, aov_sigma=0.2, items_extra=2.0,
        discount_share=(3, 7), discount_depth=(0.1, 0.2), return_rate=(1, 20),
        store_orders_per_month=0.02,
        payment={"card": 4, "apple_pay": 4, "paypal": 2},
        app_user_share=0.85,
        categories={"kids": 6, "gourmet": 3, "home": 2, "beauty": 1},
        newsletter_share=0.6,
        acquisition={"social": 3, "search": 2, "referral": 2, "direct": 1},
    ),
    Archetype(
        key="gift_buyer",
        name="Occasional gift buyer",
        description="Older customers who come mainly before Christmas and for birthdays, "
        "search for a gift, buy one mid-priced item and leave; rarely come back otherwise.",
        share=0.18,
        age_mean=60, age_sd=9, female_share=0.5,
        marital={"married": 0.5, "widowed": 0.15, "divorced": 0.15, "partnered": 0.1, "single": 0.1},
        education={"secondary": 0.35, "vocational": 0.25, "bachelor": 0.25, "master": 0.15},
        occupation={"retired": 0.55, "intermediate": 0.15, "employee": 0.15, "farmer": 0.05, "business_owner": 0.1},
        income_median=38_000, income_sigma=0.35,
        interests={"books": 4, "gardening": 3, "travel": 2, "culture": 3, "cooking": 1},
        sessions_per_month=0.7, mobile_share=(3, 5), pages_mean=9,
        sources={"search": 6, "display": 2, "direct": 1, "referral": 1},
        hours=((0.5, 11, 2), (0.5, 16, 2)), weekend_factor=1.2, december_factor=6.0,
        view_rate=0.9, cart_rate=(10, 10), checkout_rate=0.75, order_rate=(17, 3),
        aov=88, aov_sigma=0.25, items_extra=0.4,
        discount_share=(2, 10), discount_depth=(0.1, 0.2), return_rate=(2, 30),
        store_orders_per_month=0.02,
        payment={"card": 5, "paypal": 2, "gift_card": 1},
        app_user_share=0.05,
        categories={"books": 5, "gourmet": 3, "home": 2, "kids": 2},
        newsletter_share=0.25,
        acquisition={"search": 5, "display": 2, "referral": 1},
    ),
    Archetype(
        key="window_shopper",
        name="Window shopper",
        description="Students and young adults with little income who browse a lot on "
        "mobile from social media, fill carts and abandon most of them.",
        share=0.20,
        age_mean=22, age_sd=3.5, female_share=0.55,
        marital={"single": 0.8, "partnered": 0.2},
        education={"secondary": 0.5, "bachelor": 0.4, "vocational": 0.1},
        occupation={"student": 0.7, "employee": 0.15, "unemployed": 0.15},
        income_median=11_000, income_sigma=0.4,
        interests={"fashion": 4, "gaming": 4, "music": 3, "sport": 2, "tech": 2},
        sessions_per_month=4.5, mobile_share=(9, 3), pages_mean=12,
        sources={"social": 6, "display": 2, "search": 1, "referral": 1},
        hours=((0.3, 16, 2.5), (0.7, 23, 1.5)), weekend_factor=1.2, december_factor=1.3,
        view_rate=0.95, cart_rate=(6, 10), checkout_rate=0.3, order_rate=(6, 10),
        aov=45, aov_sigma=0.3, items_extra=0.5,
        discount_share=(3, 5), discount_depth=(0.1, 0.3), return_rate=(2, 15),
        store_orders_per_month=0.0,
        payment={"card": 3, "paypal": 3, "klarna": 2},
        app_user_share=0.4,
        categories={"fashion": 5, "sport": 3, "tech": 3, "beauty": 2},
        newsletter_share=0.2,
        acquisition={"social": 6, "display": 2, "referral": 1},
    ),
)

ARCHETYPE_KEYS: tuple[str, ...] = tuple(a.key for a in ARCHETYPES)


@dataclass(frozen=True)
class PlantedAction:
    """The marketing action the sample shop plants, and its true effects."""

    name: str
    description: str
    channel: str
    starts_on: str  # ISO date, in the second year of data
    target: str  # archetype key
    conversion_lift: float  # relative lift of the target's conversion rate, on top of the shop-wide lift
    aov_lift: float  # relative lift of the target's average order value, on top of the shop-wide lift
    shop_wide_lift: float  # relative lift of every customer's conversion and AOV from the same date
    name_fr: str = ""
    description_fr: str = ""

    def text(self, words: str) -> tuple[str, str]:
        """(name, description) in the shop's language ("fr" or "en")."""
        if words == "fr" and self.name_fr:
            return self.name_fr, self.description_fr
        return self.name, self.description


PLANTED_ACTION = PlantedAction(
    name="Evening app offer for parents",
    description="Push notifications with a free-delivery basket offer, sent at 9 pm "
    "in the app to busy mobile parents.",
    name_fr="Offre du soir dans l'appli pour les parents",
    description_fr="Notifications push à 21 h dans l'application, avec la livraison offerte "
    "sur le panier, envoyées aux parents pressés qui achètent sur mobile.",
    channel="app",
    starts_on="2026-03-02",
    target="busy_parent",
    conversion_lift=0.30,
    aov_lift=0.15,
    shop_wide_lift=0.05,
)

# The data covers two full years, fixed so that the same seed gives the same shop whatever
# the day it is generated.
DATA_START = "2024-10-01"
DATA_END = "2026-09-30"  # inclusive
