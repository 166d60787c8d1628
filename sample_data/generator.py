"""Synthetic shop with planted ground truth: customers, products, sessions and orders.

Everything is vectorised numpy, generated in fixed-size blocks of customers (each block
seeded from the main seed), and bulk-loaded into DuckDB from Arrow. Faker only builds small
pools of names. The same seed and customer count give identical table contents.

Planted truths, stored for tests: each customer's archetype (`sample_truth`), and a
marketing action (`actions`) after which the target archetype's conversion rate and
average order value rise, on top of a shop-wide lift from the same day (`sample_effects`).
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from faker import Faker
from tqdm import tqdm

from persona_engine.errors import ValidationError
from persona_engine.store import set_setting, transaction
from persona_engine.store.schema import ALL_DATA_TABLES
from sample_data.archetypes import ARCHETYPES, DATA_END, DATA_START, PLANTED_ACTION, Archetype
from sample_data.geography import (
    CATEGORY_PRICES,
    LOCALES,
    PRODUCT_ADJECTIVES,
    PRODUCT_NOUNS,
    WORDS,
)

BLOCK = 50_000  # customers per block; fixed, so that blocks (and seeds) do not depend on size
PRODUCTS_PER_CATEGORY = 60
ANONYMOUS_SESSION_SHARE = 0.3  # anonymous sessions, relative to known customers' sessions
PRE_WINDOW_CUSTOMERS = 0.3  # customers who signed up before the data starts
NO_CONSENT_SHARE = 0.10
CANCEL_RATE = 0.02
DAYS_PER_MONTH = 30.44

START = np.datetime64(DATA_START, "s")
N_DAYS = int((np.datetime64(DATA_END, "D") - np.datetime64(DATA_START, "D")).astype(int)) + 1
ACTION_DAY = int((np.datetime64(PLANTED_ACTION.starts_on, "D") - np.datetime64(DATA_START, "D")).astype(int))
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_PRICES)
DEVICES = ("mobile", "desktop", "tablet")


@dataclass(frozen=True)
class GenerationSummary:
    customers: int
    products: int
    orders: int
    order_items: int
    sessions: int
    seconds: float


# ---------------------------------------------------------------- calendar


def _month_factor(months: np.ndarray) -> np.ndarray:
    # January and June sales, August holidays, the November/December peak.
    table = np.array([1.05, 0.9, 0.95, 0.95, 0.95, 1.05, 0.95, 0.8, 0.95, 1.0, 1.2, 1.35])
    return table[months - 1]


def day_weights(archetype: Archetype) -> np.ndarray:
    """Relative weight of each day of the data for one archetype's visits (mean 1)."""
    days = np.datetime64(DATA_START, "D") + np.arange(N_DAYS)
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    day_of_month = (days - days.astype("datetime64[M]")).astype(int) + 1
    w = _month_factor(months) * np.where(weekday >= 5, archetype.weekend_factor, 1.0)
    gift_season = ((months == 11) & (day_of_month >= 20)) | ((months == 12) & (day_of_month <= 22))
    w = w * np.where(gift_season, archetype.december_factor, 1.0)
    w = w * (1.0 + 0.15 * np.arange(N_DAYS) / N_DAYS)  # the shop grows
    return w / w.mean()


# ---------------------------------------------------------------- drawing helpers


def _draw(rng: np.random.Generator, table: dict[str, float], size: int) -> np.ndarray:
    keys = np.array(list(table), dtype=object)
    p = np.array(list(table.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=p / p.sum())]


def _hours(rng: np.random.Generator, mixture: Sequence[tuple[float, float, float]], size: int) -> np.ndarray:
    weights = np.array([m[0] for m in mixture])
    comp = rng.choice(len(mixture), size=size, p=weights / weights.sum())
    means = np.array([m[1] for m in mixture])[comp]
    sds = np.array([m[2] for m in mixture])[comp]
    return np.mod(rng.normal(means, sds), 24.0)  # fractional hour of day


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _per_archetype(arch_idx: np.ndarray, values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)[arch_idx]


def _beta(rng: np.random.Generator, arch_idx: np.ndarray, params: Sequence[tuple[float, float]]) -> np.ndarray:
    a = _per_archetype(arch_idx, [p[0] for p in params])
    b = _per_archetype(arch_idx, [p[1] for p in params])
    return rng.beta(a, b)


# ---------------------------------------------------------------- pools and catalogue


@dataclass(frozen=True)
class Pools:
    female: np.ndarray
    male: np.ndarray
    last: np.ndarray
    brands: np.ndarray


def _pools(locale: str, seed: int) -> Pools:
    fake = Faker(LOCALES[locale].faker_locale)
    fake.seed_instance(seed)
    female = sorted({fake.first_name_female() for _ in range(400)})
    male = sorted({fake.first_name_male() for _ in range(400)})
    last = sorted({fake.last_name() for _ in range(600)})
    brands = sorted({fake.company().split(" ")[0].strip(",") for _ in range(40)})
    return Pools(np.array(female, dtype=object), np.array(male, dtype=object),
                 np.array(last, dtype=object), np.array(brands, dtype=object))


@dataclass(frozen=True)
class Catalogue:
    table: pa.Table
    prices: list[np.ndarray]  # per category, sorted list prices
    first_id: list[int]  # per category, product id of its cheapest product


def _catalogue(rng: np.random.Generator, locale: str, pools: Pools) -> Catalogue:
    words = LOCALES[locale].words
    ids, names, cats, brands, prices_all = [], [], [], [], []
    prices, first_id = [], []
    next_id = 1
    for cat in CATEGORIES:
        median, spread = CATEGORY_PRICES[cat]
        p = np.sort(np.round(median * rng.lognormal(0.0, spread, PRODUCTS_PER_CATEGORY), 2).clip(1.0))
        nouns = PRODUCT_NOUNS[words][cat]
        adjectives = PRODUCT_ADJECTIVES[words]
        first_id.append(next_id)
        prices.append(p)
        for i, price in enumerate(p):
            ids.append(next_id)
            names.append(f"{nouns[i % len(nouns)]} {adjectives[(i // len(nouns)) % len(adjectives)]} {i + 1:02d}")
            cats.append(WORDS[words]["categories"][cat])
            brands.append(str(pools.brands[rng.integers(len(pools.brands))]))
            prices_all.append(float(price))
            next_id += 1
    table = pa.table({
        "product_id": pa.array(ids, pa.int64()), "external_id": pa.array([f"SKU-{i:05d}" for i in ids]),
        "name": names, "category": cats, "brand": brands, "price": prices_all,
    })
    return Catalogue(table, prices, first_id)


# ---------------------------------------------------------------- one block of customers


@dataclass
class Counters:
    session_id: int = 1
    order_id: int = 1


def _customers_block(
    rng: np.random.Generator, first_id: int, n: int, locale: str, pools: Pools
) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """Customers of one block: their table columns, and hidden per-customer traits."""
    loc = LOCALES[locale]
    words = WORDS[loc.words]
    shares = np.array([a.share for a in ARCHETYPES])
    arch = rng.choice(len(ARCHETYPES), size=n, p=shares / shares.sum())
    ids = np.arange(first_id, first_id + n, dtype=np.int64)

    age = np.clip(rng.normal(_per_archetype(arch, [a.age_mean for a in ARCHETYPES]),
                             _per_archetype(arch, [a.age_sd for a in ARCHETYPES])), 18, 85)
    gender = np.where(rng.random(n) < _per_archetype(arch, [a.female_share for a in ARCHETYPES]),
                      "female", "male").astype(object)
    gender[rng.random(n) < 0.015] = "other"

    marital = np.empty(n, dtype=object)
    education = np.empty(n, dtype=object)
    occupation = np.empty(n, dtype=object)
    acquisition = np.empty(n, dtype=object)
    for k, a in enumerate(ARCHETYPES):
        idx = np.flatnonzero(arch == k)
        marital[idx] = _draw(rng, a.marital, idx.size)
        education[idx] = _draw(rng, a.education, idx.size)
        occupation[idx] = _draw(rng, a.occupation, idx.size)
        acquisition[idx] = _draw(rng, a.acquisition, idx.size)
    # Keep occupations plausible for the age drawn.
    retired_young = (occupation == "retired") & (age < 60)
    age[retired_young] = 60 + rng.integers(0, 15, retired_young.sum())
    student_old = (occupation == "student") & (age > 28)
    occupation[student_old] = "employee"
    income = np.round(
        np.exp(rng.normal(np.log(_per_archetype(arch, [a.income_median for a in ARCHETYPES])),
                          _per_archetype(arch, [a.income_sigma for a in ARCHETYPES]))), -2)

    # Interests: 1 to 3 distinct, drawn by archetype weight (Gumbel top-k).
    vocab = list(words["interests"])
    weights = np.array([[a.interests.get(v, 0.05) for v in vocab] for a in ARCHETYPES])
    scores = np.log(weights[arch]) + rng.gumbel(size=(n, len(vocab)))
    top = np.argsort(-scores, axis=1)[:, :3]
    k_interests = rng.integers(1, 4, n)
    mask = np.arange(3)[None, :] < k_interests[:, None]
    flat = top[mask]
    interest_values = np.array([words["interests"][v] for v in vocab], dtype=object)[flat]
    offsets = np.concatenate([[0], np.cumsum(k_interests)]).astype(np.int32)

    # Places: mostly home country, a few abroad; a city always comes with its region.
    city_w = np.array([c[2] for c in loc.cities])
    ci = rng.choice(len(loc.cities), size=n, p=city_w / city_w.sum())
    city = np.array([c[0] for c in loc.cities], dtype=object)[ci]
    region = np.array([c[1] for c in loc.cities], dtype=object)[ci]
    country = np.full(n, loc.country, dtype=object)
    abroad = rng.random(n) < loc.abroad_share
    ab_w = np.array([c[3] for c in loc.abroad])
    ai = rng.choice(len(loc.abroad), size=int(abroad.sum()), p=ab_w / ab_w.sum())
    country[abroad] = np.array([c[0] for c in loc.abroad], dtype=object)[ai]
    city[abroad] = np.array([c[1] for c in loc.abroad], dtype=object)[ai]
    region[abroad] = np.array([c[2] for c in loc.abroad], dtype=object)[ai]

    # Names and emails.
    female = gender == "female"
    first = np.where(female, pools.female[rng.integers(len(pools.female), size=n)],
                     pools.male[rng.integers(len(pools.male), size=n)])
    last = pools.last[rng.integers(len(pools.last), size=n)]
    domain = np.array(loc.email_domains, dtype=object)[rng.integers(len(loc.email_domains), size=n)]
    ascii_first = np.vectorize(_ascii, otypes=[object])(first)
    ascii_last = np.vectorize(_ascii, otypes=[object])(last)
    email = ascii_first + "." + ascii_last + ids.astype(str).astype(object) + "@" + domain

    # Sign-up: some customers predate the data; the rest join over the two years.
    pre = rng.random(n) < PRE_WINDOW_CUSTOMERS
    created_day = np.where(pre, -rng.integers(1, 3 * 365, n), rng.integers(0, N_DAYS - 7, n))
    created_at = START + created_day.astype("timedelta64[D]") + rng.integers(8 * 3600, 22 * 3600, n).astype("timedelta64[s]")

    # Hidden behavioural traits.
    traits = {
        "archetype": arch,
        "first_day": np.maximum(created_day, 0),
        "created_at": created_at,
        "spm": _per_archetype(arch, [a.sessions_per_month for a in ARCHETYPES]) * rng.lognormal(0, 0.5, n),
        "mobile": _beta(rng, arch, [a.mobile_share for a in ARCHETYPES]),
        "pages": _per_archetype(arch, [a.pages_mean for a in ARCHETYPES]) * rng.lognormal(0, 0.3, n),
        "cart": _beta(rng, arch, [a.cart_rate for a in ARCHETYPES]),
        "order": _beta(rng, arch, [a.order_rate for a in ARCHETYPES]),
        "aov": _per_archetype(arch, [a.aov for a in ARCHETYPES])
        * np.exp(rng.normal(0, _per_archetype(arch, [a.aov_sigma for a in ARCHETYPES]))),
        "discount": _beta(rng, arch, [a.discount_share for a in ARCHETYPES]),
        "returns": _beta(rng, arch, [a.return_rate for a in ARCHETYPES]),
        "app_user": rng.random(n) < _per_archetype(arch, [a.app_user_share for a in ARCHETYPES]),
        "acquisition": acquisition,
    }
    pref = np.array([[a.categories.get(c, 0.1) for c in CATEGORIES] for a in ARCHETYPES])
    g = rng.gamma(pref[arch] * 3.0)
    traits["category_cdf"] = np.cumsum(g / g.sum(axis=1, keepdims=True), axis=1)

    mobile = traits["mobile"]
    preferred_device = np.where(mobile >= 0.5, "mobile", np.where(rng.random(n) < 0.85, "desktop", "tablet"))
    cols: dict[str, object] = {
        "customer_id": ids,
        "external_id": np.char.add("C", ids.astype(str)).astype(object),
        "created_at": created_at,
        "first_name": first, "last_name": last, "email": email,
        "age": age.astype(np.int16), "gender": gender, "marital_status": marital,
        "city": city, "region": region, "country": country,
        "education": np.array([words["education"][e] for e in education], dtype=object),
        "occupation": np.array([words["occupation"][o] for o in occupation], dtype=object),
        "income": income,
        "interests": pa.ListArray.from_arrays(pa.array(offsets), pa.array(interest_values, pa.string())),
        "acquisition_channel": acquisition,
        "preferred_device": preferred_device.astype(object),
        "newsletter_opt_in": rng.random(n) < _per_archetype(arch, [a.newsletter_share for a in ARCHETYPES]),
        "consent_analytics": rng.random(n) >= NO_CONSENT_SHARE,
    }
    return cols, traits


def _place_in_time(
    rng: np.random.Generator, cdf: np.ndarray, first_day: np.ndarray, hours: np.ndarray
) -> np.ndarray:
    """Timestamps on days drawn from a day-weight CDF, from each row's first day on."""
    lo = cdf[first_day]
    u = lo + rng.random(first_day.size) * (cdf[-1] - lo)
    day = np.clip(np.searchsorted(cdf, u, side="right") - 1, first_day, N_DAYS - 1)
    seconds = (hours * 3600).astype(np.int64)
    return START + day.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")


def _lift(day: np.ndarray, targeted: np.ndarray, target_lift: float) -> np.ndarray:
    after = day >= ACTION_DAY
    factor = np.where(after, 1.0 + PLANTED_ACTION.shop_wide_lift, 1.0)
    return factor * np.where(after & targeted, 1.0 + target_lift, 1.0)


def _sessions_block(
    rng: np.random.Generator, traits: dict[str, np.ndarray], ids: np.ndarray, counters: Counters,
    cdfs: list[np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Known customers' sessions. Returns columns and the row index of each session's customer."""
    arch = traits["archetype"]
    first_day = traits["first_day"]
    expected = np.empty(ids.size)
    for k in range(len(ARCHETYPES)):
        idx = np.flatnonzero(arch == k)
        expected[idx] = traits["spm"][idx] / DAYS_PER_MONTH * (cdfs[k][-1] - cdfs[k][first_day[idx]])
    n_sessions = rng.poisson(expected)
    owner = np.repeat(np.arange(ids.size), n_sessions)
    total = owner.size
    started = np.empty(total, dtype="datetime64[s]")
    sess_arch = arch[owner]
    for k, a in enumerate(ARCHETYPES):
        idx = np.flatnonzero(sess_arch == k)
        started[idx] = _place_in_time(rng, cdfs[k], first_day[owner[idx]], _hours(rng, a.hours, idx.size))
    started = np.maximum(started, traits["created_at"][owner])
    day = (started - START).astype("timedelta64[D]").astype(np.int64)

    device = np.where(rng.random(total) < traits["mobile"][owner], 0, np.where(rng.random(total) < 0.85, 1, 2))
    source = np.empty(total, dtype=object)
    for k, a in enumerate(ARCHETYPES):
        idx = np.flatnonzero(sess_arch == k)
        source[idx] = _draw(rng, a.sources, idx.size)
    own_channel = rng.random(total) < 0.35
    source[own_channel] = traits["acquisition"][owner[own_channel]]
    pages = 1 + rng.poisson(np.maximum(traits["pages"][owner] - 1, 0.1))
    duration = (pages * rng.lognormal(np.log(45), 0.5, total)).astype(np.int32)

    targeted = sess_arch == _target_index()
    view_rate = _per_archetype(sess_arch, [a.view_rate for a in ARCHETYPES])
    checkout_rate = _per_archetype(sess_arch, [a.checkout_rate for a in ARCHETYPES])
    cart_p = np.minimum(traits["cart"][owner] * _lift(day, targeted, PLANTED_ACTION.conversion_lift), 1.0)
    viewed = rng.random(total) < view_rate
    cart = viewed & (rng.random(total) < cart_p)
    checkout = cart & (rng.random(total) < checkout_rate)
    ordered = checkout & (rng.random(total) < traits["order"][owner])

    session_ids = np.arange(counters.session_id, counters.session_id + total, dtype=np.int64)
    counters.session_id += total
    cols = {
        "session_id": session_ids, "customer_id": ids[owner], "started_at": started,
        "device": np.array(DEVICES, dtype=object)[device], "source": source,
        "pages_viewed": pages.astype(np.int32), "duration_s": duration,
        "viewed_product": viewed, "added_to_cart": cart, "checkout_started": checkout,
        "ordered": ordered, "owner": owner, "day": day,
    }
    return cols, owner


def _target_index() -> int:
    return [a.key for a in ARCHETYPES].index(PLANTED_ACTION.target)


def _orders_from(
    rng: np.random.Generator, *, counters: Counters, customer_id: np.ndarray, ordered_at: np.ndarray,
    basket: np.ndarray, discount_p: np.ndarray, depth_lo: np.ndarray, depth_hi: np.ndarray,
    return_p: np.ndarray, channel: np.ndarray, device: np.ndarray, payment: np.ndarray,
    items_extra: np.ndarray, category_cdf: np.ndarray, catalogue: Catalogue, currency: str,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Orders with their items: item prices split the basket, amount = items - discount."""
    n = customer_id.size
    order_ids = np.arange(counters.order_id, counters.order_id + n, dtype=np.int64)
    counters.order_id += n
    n_items = 1 + rng.poisson(items_extra)
    item_order = np.repeat(np.arange(n), n_items)
    m = item_order.size
    share = rng.exponential(1.0, m)
    share = share / np.bincount(item_order, weights=share, minlength=n)[item_order]
    quantity = np.where(rng.random(m) < 0.85, 1, np.where(rng.random(m) < 0.8, 2, 3)).astype(np.int32)
    unit_price = np.maximum(np.round(basket[item_order] * share / quantity, 2), 0.5)
    category = (rng.random(m)[:, None] > category_cdf[item_order]).sum(axis=1)
    category = np.minimum(category, len(CATEGORIES) - 1)
    product = np.empty(m, dtype=np.int64)
    for c in range(len(CATEGORIES)):
        idx = np.flatnonzero(category == c)
        prices = catalogue.prices[c]
        pos = np.clip(np.searchsorted(prices, unit_price[idx]), 1, prices.size - 1)
        nearer_left = (unit_price[idx] - prices[pos - 1]) < (prices[pos] - unit_price[idx])
        product[idx] = catalogue.first_id[c] + np.where(nearer_left, pos - 1, pos)
    gross = np.round(np.bincount(item_order, weights=quantity * unit_price, minlength=n), 2)
    discounted = rng.random(n) < discount_p
    depth = rng.uniform(depth_lo, depth_hi)
    discount = np.where(discounted, np.round(gross * depth, 2), 0.0)
    u = rng.random(n)
    status = np.where(u < CANCEL_RATE, "cancelled",
                      np.where(rng.random(n) < return_p, "returned", "completed")).astype(object)
    orders: dict[str, np.ndarray] = {
        "order_id": order_ids, "external_id": np.char.add("O", order_ids.astype(str)).astype(object),
        "customer_id": customer_id, "ordered_at": ordered_at, "channel": channel, "device": device,
        "payment_method": payment, "amount": np.round(gross - discount, 2), "discount": discount,
        "status": status, "currency": np.full(n, currency, dtype=object),
    }
    items: dict[str, np.ndarray] = {"order_id": order_ids[item_order], "product_id": product, "quantity": quantity,
             "unit_price": unit_price}
    return orders, items


def _payments(rng: np.random.Generator, arch: np.ndarray) -> np.ndarray:
    out = np.empty(arch.size, dtype=object)
    for k, a in enumerate(ARCHETYPES):
        idx = np.flatnonzero(arch == k)
        out[idx] = _draw(rng, a.payment, idx.size)
    return out


def _block(
    rng: np.random.Generator, first_id: int, n: int, locale: str, pools: Pools, catalogue: Catalogue,
    counters: Counters, cdfs: list[np.ndarray],
) -> dict[str, pa.Table]:
    currency = LOCALES[locale].currency
    customers, traits = _customers_block(rng, first_id, n, locale, pools)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)  # the block's customer_id column
    sess, owner = _sessions_block(rng, traits, ids, counters, cdfs)
    arch = traits["archetype"]
    target = _target_index()

    # Orders placed in a session (web or app).
    o = np.flatnonzero(sess["ordered"])
    oo = owner[o]
    oarch = arch[oo]
    day = sess["day"][o]
    lift = _lift(day, oarch == target, PLANTED_ACTION.aov_lift)
    basket = traits["aov"][oo] * rng.lognormal(0, 0.35, o.size) * lift
    device = sess["device"][o]
    channel = np.where((device == "mobile") & traits["app_user"][oo], "app", "web").astype(object)
    ordered_at = sess["started_at"][o] + (sess["duration_s"][o] * rng.uniform(0.5, 1.0, o.size)).astype("timedelta64[s]")
    web_orders, web_items = _orders_from(
        rng, counters=counters, customer_id=ids[oo], ordered_at=ordered_at, basket=basket,
        discount_p=traits["discount"][oo],
        depth_lo=_per_archetype(oarch, [a.discount_depth[0] for a in ARCHETYPES]),
        depth_hi=_per_archetype(oarch, [a.discount_depth[1] for a in ARCHETYPES]),
        return_p=traits["returns"][oo], channel=channel, device=device,
        payment=_payments(rng, oarch), items_extra=_per_archetype(oarch, [a.items_extra for a in ARCHETYPES]),
        category_cdf=traits["category_cdf"][oo], catalogue=catalogue, currency=currency,
    )
    session_order = np.full(sess["session_id"].size, -1, dtype=np.int64)
    session_order[o] = web_orders["order_id"]

    # Orders in physical stores: no session behind them.
    rate = np.empty(n)
    for k, a in enumerate(ARCHETYPES):
        idx = np.flatnonzero(arch == k)
        rate[idx] = a.store_orders_per_month / DAYS_PER_MONTH * (cdfs[k][-1] - cdfs[k][traits["first_day"][idx]])
    n_store = rng.poisson(rate)
    so = np.repeat(np.arange(n), n_store)
    sarch = arch[so]
    store_at = np.empty(so.size, dtype="datetime64[s]")
    for k in range(len(ARCHETYPES)):
        idx = np.flatnonzero(sarch == k)
        store_at[idx] = _place_in_time(rng, cdfs[k], traits["first_day"][so[idx]], rng.uniform(10, 19, idx.size))
    store_at = np.maximum(store_at, traits["created_at"][so])
    sday = (store_at - START).astype("timedelta64[D]").astype(np.int64)
    store_orders, store_items = _orders_from(
        rng, counters=counters, customer_id=ids[so], ordered_at=store_at,
        basket=traits["aov"][so] * rng.lognormal(0, 0.35, so.size) * _lift(sday, sarch == target, PLANTED_ACTION.aov_lift),
        discount_p=traits["discount"][so] * 0.5,
        depth_lo=np.full(so.size, 0.1), depth_hi=np.full(so.size, 0.2),
        return_p=traits["returns"][so] * 0.5, channel=np.full(so.size, "store", dtype=object),
        device=np.full(so.size, None, dtype=object), payment=np.full(so.size, "card", dtype=object),
        items_extra=_per_archetype(sarch, [a.items_extra for a in ARCHETYPES]),
        category_cdf=traits["category_cdf"][so], catalogue=catalogue, currency=currency,
    )

    # Anonymous visitors: many sessions, few (guest) orders.
    n_anon = int(round(ANONYMOUS_SESSION_SHARE * sess["session_id"].size))
    mean_cdf = np.mean(cdfs, axis=0)
    anon_started = _place_in_time(rng, mean_cdf, np.zeros(n_anon, dtype=np.int64), _hours(rng, ((1.0, 15, 4.5),), n_anon))
    anon_device = np.array(DEVICES, dtype=object)[rng.choice(3, n_anon, p=[0.6, 0.32, 0.08])]
    anon_source = _draw(rng, {"search": 4, "social": 3, "display": 2, "direct": 1, "referral": 1}, n_anon)
    anon_pages = 1 + rng.poisson(2.5, n_anon)
    anon_view = rng.random(n_anon) < 0.6
    anon_cart = anon_view & (rng.random(n_anon) < 0.12)
    anon_checkout = anon_cart & (rng.random(n_anon) < 0.4)
    anon_order = anon_checkout & (rng.random(n_anon) < 0.35)
    ao = np.flatnonzero(anon_order)
    guest_pref = np.array([1.0 / len(CATEGORIES)] * len(CATEGORIES))
    guest_orders, guest_items = _orders_from(
        rng, counters=counters, customer_id=np.full(ao.size, -1, dtype=np.int64),
        ordered_at=anon_started[ao] + rng.integers(60, 900, ao.size).astype("timedelta64[s]"),
        basket=60 * rng.lognormal(0, 0.5, ao.size), discount_p=np.full(ao.size, 0.2),
        depth_lo=np.full(ao.size, 0.1), depth_hi=np.full(ao.size, 0.2), return_p=np.full(ao.size, 0.05),
        channel=np.full(ao.size, "web", dtype=object), device=anon_device[ao],
        payment=_draw(rng, {"card": 5, "paypal": 3}, ao.size), items_extra=np.full(ao.size, 0.5),
        category_cdf=np.tile(np.cumsum(guest_pref), (ao.size, 1)), catalogue=catalogue, currency=currency,
    )
    anon_ids = np.arange(counters.session_id, counters.session_id + n_anon, dtype=np.int64)
    counters.session_id += n_anon
    anon_order_id = np.full(n_anon, -1, dtype=np.int64)
    anon_order_id[ao] = guest_orders["order_id"]

    sessions = {
        "session_id": np.concatenate([sess["session_id"], anon_ids]),
        "customer_id": np.concatenate([sess["customer_id"], np.full(n_anon, -1, dtype=np.int64)]),
        "started_at": np.concatenate([sess["started_at"], anon_started]),
        "device": np.concatenate([sess["device"], anon_device]),
        "source": np.concatenate([sess["source"], anon_source]),
        "pages_viewed": np.concatenate([sess["pages_viewed"], anon_pages.astype(np.int32)]),
        "duration_s": np.concatenate([sess["duration_s"], (anon_pages * rng.lognormal(np.log(40), 0.5, n_anon)).astype(np.int32)]),
        "viewed_product": np.concatenate([sess["viewed_product"], anon_view]),
        "added_to_cart": np.concatenate([sess["added_to_cart"], anon_cart]),
        "checkout_started": np.concatenate([sess["checkout_started"], anon_checkout]),
        "order_id": np.concatenate([session_order, anon_order_id]),
    }
    orders = {k: np.concatenate([web_orders[k], store_orders[k], guest_orders[k]]) for k in web_orders}
    items = {k: np.concatenate([web_items[k], store_items[k], guest_items[k]]) for k in web_items}

    return {
        "customers": _arrow(customers),
        "sessions": _arrow(sessions, null_minus_one=("customer_id", "order_id")),
        "orders": _arrow(orders, null_minus_one=("customer_id",)),
        "order_items": _arrow(items),
        "sample_truth": pa.table({
            "customer_id": pa.array(ids), "archetype": [ARCHETYPES[k].key for k in arch],
        }),
    }


def _arrow(cols: Mapping[str, object], null_minus_one: Sequence[str] = ()) -> pa.Table:
    arrays = {}
    for name, values in cols.items():
        if isinstance(values, pa.Array):
            arrays[name] = values
            continue
        arr = np.asarray(values)
        if name in null_minus_one:
            arrays[name] = pa.array(arr, mask=arr == -1)
        elif arr.dtype == object:
            arrays[name] = pa.array(arr.tolist(), pa.string())
        elif np.issubdtype(arr.dtype, np.datetime64):
            arrays[name] = pa.array(arr.astype("datetime64[s]"), pa.timestamp("s"))
        else:
            arrays[name] = pa.array(arr)
    return pa.table(arrays)


def _insert(cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    # Table names come from this module's constants, never from input.
    cur.register("incoming_block", data)
    columns = ", ".join(data.column_names)
    cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_block")  # noqa: S608
    cur.unregister("incoming_block")


# ---------------------------------------------------------------- entry point


def generate_shop(
    cur: duckdb.DuckDBPyConnection,
    n_customers: int = 20_000,
    seed: int = 42,
    locale: str = "fr_FR",
    progress: bool = False,
    on_progress: Callable[[float], None] | None = None,
) -> GenerationSummary:
    """Replace the database's shop with a generated one (all data tables are emptied first).

    Writes customers, products, orders, order_items, sessions, sample_truth, sample_effects,
    one planted action in `actions`, and shop settings (locale, currency, source).
    `progress` shows a bar on stderr; `on_progress(fraction done)` serves other front ends.
    """
    if n_customers < 1 or n_customers > 5_000_000:
        raise ValidationError(f"--customers must be between 1 and 5,000,000 (got {n_customers})")
    if locale not in LOCALES:
        raise ValidationError(f"unknown locale {locale!r}; choose one of {', '.join(LOCALES)}")
    started = time.perf_counter()
    pools = _pools(locale, seed)
    seeds = np.random.SeedSequence(seed).spawn(1 + (n_customers + BLOCK - 1) // BLOCK)
    catalogue = _catalogue(np.random.default_rng(seeds[0]), locale, pools)
    cdfs = [np.concatenate([[0.0], np.cumsum(day_weights(a))]) for a in ARCHETYPES]
    counters = Counters()
    totals = {"customers": 0, "orders": 0, "order_items": 0, "sessions": 0}

    try:
        _generate_into(cur, n_customers, seed, seeds, locale, pools, catalogue, cdfs, counters, totals,
                       progress, on_progress)
    except BaseException:
        # Blocks are committed one by one (one transaction for a million customers would hold
        # the whole shop in memory): on failure, leave an empty shop rather than half of one.
        with transaction(cur):
            _wipe(cur)
        raise
    return GenerationSummary(
        customers=totals["customers"], products=catalogue.table.num_rows, orders=totals["orders"],
        order_items=totals["order_items"], sessions=totals["sessions"],
        seconds=time.perf_counter() - started,
    )


def _generate_into(
    cur: duckdb.DuckDBPyConnection, n_customers: int, seed: int, seeds: list[np.random.SeedSequence], locale: str,
    pools: Pools, catalogue: Catalogue, cdfs: list[np.ndarray], counters: Counters, totals: dict[str, int],
    progress: bool, on_progress: Callable[[float], None] | None,
) -> None:
    with transaction(cur):
        _wipe(cur)
        set_setting(cur, "source", "generating")
        _insert(cur, "products", catalogue.table)
    blocks = range(0, n_customers, BLOCK)
    bar = tqdm(blocks, desc="Generating customers, sessions and orders", unit="block",
               disable=not progress, leave=True)
    for b, first in enumerate(bar):
        n = min(BLOCK, n_customers - first)
        rng = np.random.default_rng(seeds[b + 1])
        tables = _block(rng, first + 1, n, locale, pools, catalogue, counters, cdfs)
        with transaction(cur):
            for name, data in tables.items():
                _insert(cur, name, data)
                if name in totals:
                    totals[name] += data.num_rows
        if on_progress is not None:
            on_progress(min(first + n, n_customers) / n_customers)
    with transaction(cur):
        _write_truth(cur, locale)
        set_setting(cur, "locale", locale)
        set_setting(cur, "currency", LOCALES[locale].currency)
        set_setting(cur, "consent", "sample")
        set_setting(cur, "sample_seed", str(seed))
        set_setting(cur, "sample_customers", str(n_customers))
        set_setting(cur, "source", "sample")  # last: the shop is complete


def _wipe(cur: duckdb.DuckDBPyConnection) -> None:
    for table in ALL_DATA_TABLES:
        cur.execute(f"DELETE FROM {table}")  # noqa: S608 - names from the schema module


def planted_effects() -> list[tuple[str, str, float]]:
    """(archetype, metric, relative effect) the planted action causes, per archetype.

    The target's total change is the shop-wide lift compounded with the action's own lift;
    every other archetype changes by the shop-wide lift only. A difference-in-differences
    in relative terms, (1 + target) / (1 + others) - 1, recovers the action's own lift.
    """
    rows = []
    shop = PLANTED_ACTION.shop_wide_lift
    for a in ARCHETYPES:
        targeted = a.key == PLANTED_ACTION.target
        conv = (1 + shop) * (1 + PLANTED_ACTION.conversion_lift) - 1 if targeted else shop
        aov = (1 + shop) * (1 + PLANTED_ACTION.aov_lift) - 1 if targeted else shop
        rows.append((a.key, "conversion_rate", round(conv, 6)))
        rows.append((a.key, "average_order_value", round(aov, 6)))
    return rows


def _write_truth(cur: duckdb.DuckDBPyConnection, locale: str) -> None:
    action_id = cur.execute(
        "INSERT INTO actions (name, description, archetypes, starts_on, channel, created_by)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING action_id",
        [*PLANTED_ACTION.text(LOCALES[locale].words), [PLANTED_ACTION.target],
         PLANTED_ACTION.starts_on, PLANTED_ACTION.channel, "sample shop"],
    ).fetchall()[0][0]
    cur.executemany(
        "INSERT INTO sample_effects (action_id, archetype, metric, relative_effect) VALUES (?, ?, ?, ?)",
        [(action_id, arch, metric, effect) for arch, metric, effect in planted_effects()],
    )
