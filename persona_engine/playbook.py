"""Suggested marketing actions for a persona, from the behavioural playbook (playbook.toml).

The plays are data: each says which traits it fits (conditions over the persona's
customer_features profile and segment shares), whom it targets, which KPI it should move,
and an example message in English and French. playbook.toml is the one file of
persona_engine that carries interface-language text, because those messages are content a
marketer reuses, not interface wording. A suggestion becomes a tracked action in one call
(create_action_from_suggestion).
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from persona_engine.actions import CHANNELS, create_action
from persona_engine.errors import NoDataError, NotFoundError, ValidationError
from persona_engine.kpis import METRICS
from persona_engine.store import fetch_df, fetch_one

PLAYBOOK_PATH = Path(__file__).with_name("playbook.toml")
LANGUAGES: tuple[str, ...] = ("en", "fr")

# Profile features: medians of these customer_features columns...
NUMERIC_FEATURES: tuple[str, ...] = (
    "recency_days", "frequency", "monetary", "average_order_value", "tenure_days",
    "orders_90d", "sessions_90d", "sessions_total", "pages_per_session",
    "cart_abandonment_rate", "abandoned_carts_90d", "discount_share", "return_rate",
    "mobile_share",
)
# ... the share of members with this flag...
SHARE_FEATURES: tuple[str, ...] = ("newsletter_opt_in",)
# ... and the most common value of these.
CATEGORICAL_FEATURES: tuple[str, ...] = ("favourite_category", "main_source", "main_device")
PROFILE_FEATURES = NUMERIC_FEATURES + SHARE_FEATURES + CATEGORICAL_FEATURES

_OPERATORS = ("at_least", "at_most", "vs_shop_at_least", "vs_shop_at_most", "present", "share_at_least")


@dataclass(frozen=True)
class Condition:
    """One trait test: `feature` (or `segment`) compared with `threshold` by `operator`."""

    operator: str
    threshold: float
    feature: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class Play:
    """One entry of the playbook; `text[language]` holds name, goal and message."""

    key: str
    target_segment: str
    goal_metric: str
    channel: str
    match: str
    conditions: tuple[Condition, ...]
    text: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Profile:
    """A persona's (or the shop's) traits: features, segment shares, member count."""

    members: int
    features: Mapping[str, Any]
    segments: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """Why a condition holds: the persona's value, the threshold, the shop's value."""

    trait: str
    operator: str
    threshold: float
    persona_value: Any
    shop_value: Any = None


@dataclass(frozen=True)
class Suggestion:
    """A play that fits a persona, in one language; `strength` >= 1, higher fits better."""

    key: str
    name: str
    goal: str
    message: str
    target_segment: str
    goal_metric: str
    channel: str
    strength: float
    evidence: tuple[Evidence, ...]


# --- Loading -------------------------------------------------------------------------------


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: a condition must be a table like {{ feature = ..., at_least = ... }}")
    feature, segment = raw.get("feature"), raw.get("segment")
    if (feature is None) == (segment is None):
        raise ValidationError(f"{where}: a condition names either a feature or a segment")
    operators = [op for op in _OPERATORS if op in raw]
    extra = set(raw) - {"feature", "segment", *_OPERATORS}
    if len(operators) != 1 or extra:
        raise ValidationError(
            f"{where}: a condition needs exactly one of {', '.join(_OPERATORS)}; got {sorted(raw)}"
        )
    operator = operators[0]
    if feature is not None:
        if feature not in PROFILE_FEATURES:
            raise ValidationError(
                f"{where}: unknown feature {feature!r}; known: {', '.join(PROFILE_FEATURES)}"
            )
        if operator == "share_at_least":
            raise ValidationError(f"{where}: share_at_least applies to segments")
        if operator == "present":
            return Condition(operator, 1.0, feature=feature)
        if feature in CATEGORICAL_FEATURES:
            raise ValidationError(f"{where}: {feature} is categorical; use present = true")
    elif operator != "share_at_least":
        raise ValidationError(f"{where}: a segment condition uses share_at_least")
    threshold = raw[operator]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise ValidationError(f"{where}: {operator} must be a positive number; got {threshold!r}")
    return Condition(operator, float(threshold), feature=feature, segment=segment)


def _play(raw: Any, index: int) -> Play:
    where = f"playbook play #{index + 1}"
    if not isinstance(raw, Mapping) or "key" not in raw:
        raise ValidationError(f"{where} has no key")
    where = f"playbook play {raw['key']!r}"
    for name in ("target_segment", "goal_metric", "channel", "conditions"):
        if name not in raw:
            raise ValidationError(f"{where} has no {name}")
    if raw["goal_metric"] not in METRICS:
        raise ValidationError(f"{where}: unknown goal_metric {raw['goal_metric']!r}")
    if raw["channel"] not in CHANNELS:
        raise ValidationError(f"{where}: unknown channel {raw['channel']!r}")
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        raise ValidationError(f"{where}: match must be 'all' or 'any'")
    conditions = tuple(_condition(c, where) for c in raw["conditions"])
    if not conditions:
        raise ValidationError(f"{where} has no condition")
    text: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        block = raw.get(language)
        if not isinstance(block, Mapping) or any(
            not isinstance(block.get(k), str) or not block[k].strip() for k in ("name", "goal", "message")
        ):
            raise ValidationError(f"{where}: [{language}] needs name, goal and message")
        text[language] = {k: block[k] for k in ("name", "goal", "message")}
    return Play(
        key=str(raw["key"]), target_segment=str(raw["target_segment"]),
        goal_metric=str(raw["goal_metric"]), channel=str(raw["channel"]), match=match,
        conditions=conditions, text=text,
    )


def load_playbook(path: Path | str | None = None) -> tuple[Play, ...]:
    """The plays of a playbook file (default: persona_engine/playbook.toml), validated."""
    return _load(str(path or PLAYBOOK_PATH))


@functools.cache
def _load(path: str) -> tuple[Play, ...]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise NotFoundError(f"playbook file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValidationError(f"playbook file {path} is not valid TOML: {e}") from e
    plays = tuple(_play(raw, i) for i, raw in enumerate(data.get("play", [])))
    keys = [p.key for p in plays]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValidationError(f"playbook keys must be unique; repeated: {', '.join(duplicates)}")
    return plays


# --- Profiles ------------------------------------------------------------------------------

# Feature names come from the constants above, never from input: safe to format into SQL.
_PROFILE_SELECT = ", ".join(
    [f"median(f.{c}) AS {c}" for c in NUMERIC_FEATURES]
    + [f"avg(CASE WHEN f.{c} THEN 1.0 ELSE 0.0 END) AS {c}" for c in SHARE_FEATURES]
    + [f"mode(f.{c}) AS {c}" for c in CATEGORICAL_FEATURES]
)


def _profile(cur: duckdb.DuckDBPyConnection, persona_id: int | None) -> Profile:
    members = (
        "TRUE" if persona_id is None
        else "f.customer_id IN (SELECT customer_id FROM persona_members WHERE persona_id = ?)"
    )
    params = [] if persona_id is None else [int(persona_id)]
    sql = f"""
        SELECT count(*) AS members, {_PROFILE_SELECT}
        FROM customer_features AS f
        JOIN analysis_customers AS c ON c.customer_id = f.customer_id
        WHERE {members}
    """  # noqa: S608 - columns from code constants, values bound
    row = fetch_df(cur, sql, params).iloc[0]
    count = int(row["members"])
    if count == 0:
        who = "the shop" if persona_id is None else f"persona {persona_id}"
        raise NoDataError(
            f"no customer features for {who}: compute them first (python -m persona_engine "
            "features --db ...)"
        )
    features = {c: _plain(row[c]) for c in PROFILE_FEATURES}
    segment_sql = f"""
        WITH m AS (
            SELECT s.customer_id, s.rfm_group, s.segments
            FROM customer_segments AS s
            JOIN analysis_customers AS c ON c.customer_id = s.customer_id
            JOIN customer_features AS f ON f.customer_id = s.customer_id
            WHERE {members}
        )
        SELECT segment, count(DISTINCT customer_id) AS n FROM (
            SELECT customer_id, unnest(segments) AS segment FROM m
            UNION ALL
            SELECT customer_id, rfm_group FROM m WHERE rfm_group IS NOT NULL
        ) GROUP BY segment
    """  # noqa: S608 - same constant condition as above
    segments = fetch_df(cur, segment_sql, params)
    shares = {str(s): float(n) / count for s, n in zip(segments["segment"], segments["n"], strict=True)}
    return Profile(members=count, features=features, segments=shares)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None if value is None else str(value)
    return None if math.isnan(number) else number


def persona_profile(cur: duckdb.DuckDBPyConnection, persona_id: int) -> Profile:
    """Traits of a persona's consenting members: medians of NUMERIC_FEATURES, shares of
    SHARE_FEATURES, most common CATEGORICAL_FEATURES (customer_features), and the share of
    members in each segment and RFM group (customer_segments)."""
    if fetch_one(cur, "SELECT 1 FROM personas WHERE persona_id = ?", [int(persona_id)]) is None:
        raise NotFoundError(f"persona {persona_id} does not exist")
    return _profile(cur, int(persona_id))


def shop_profile(cur: duckdb.DuckDBPyConnection) -> Profile:
    """The same traits over every consenting customer, the reference of vs_shop conditions."""
    return _profile(cur, None)


# --- Matching ------------------------------------------------------------------------------


def _evidence(condition: Condition, persona: Profile, shop: Profile | None) -> Evidence:
    """The persona's (and the shop's) value for a condition's trait."""
    if condition.segment is not None:
        return Evidence(
            f"segment:{condition.segment}", condition.operator, condition.threshold,
            persona.segments.get(condition.segment, 0.0),
            None if shop is None else shop.segments.get(condition.segment, 0.0),
        )
    assert condition.feature is not None
    return Evidence(
        condition.feature, condition.operator, condition.threshold,
        persona.features.get(condition.feature),
        None if shop is None else shop.features.get(condition.feature),
    )


def _strength(condition: Condition, evidence: Evidence) -> float:
    """How far past its threshold a condition is: >= 1 when it holds, < 1 otherwise."""
    value, op, threshold = evidence.persona_value, condition.operator, condition.threshold
    if op == "present":
        return 1.0 if value not in (None, "") else 0.0
    if value is None:
        return 0.0
    if op in ("vs_shop_at_least", "vs_shop_at_most"):
        shop = evidence.shop_value
        if shop is None or shop <= 0:
            return 0.0
        value = value / shop
    if op in ("at_least", "vs_shop_at_least", "share_at_least"):
        return float(value) / threshold
    # at_most / vs_shop_at_most: a value of 0 is as far below as can be
    return math.inf if value <= 0 else threshold / float(value)


def suggest(
    persona: Profile,
    shop: Profile | None,
    plays: Sequence[Play] | None = None,
    language: str = "en",
    fill: Mapping[str, str] | None = None,
) -> list[Suggestion]:
    """Plays whose conditions a profile meets, strongest first (pure; no database).

    strength = the smallest ratio to threshold over the conditions of an "all" play, the
    largest over those of an "any" play (1 = just at the threshold). `fill` gives the
    message placeholders; favourite_category comes from the profile by default.
    """
    if language not in LANGUAGES:
        raise ValidationError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    values = {"favourite_category": str(persona.features.get("favourite_category") or "")}
    values.update(fill or {})
    out: list[Suggestion] = []
    for play in plays if plays is not None else load_playbook():
        evidence = [(c, _evidence(c, persona, shop)) for c in play.conditions]
        holding = [(s, e) for s, e in ((_strength(c, e), e) for c, e in evidence) if s >= 1.0]
        if play.match == "all":
            if len(holding) != len(play.conditions):
                continue
            strength = min(s for s, _ in holding)
        else:
            if not holding:
                continue
            strength = max(s for s, _ in holding)
        text = play.text[language]
        out.append(
            Suggestion(
                key=play.key, name=text["name"], goal=text["goal"],
                message=text["message"].format_map(_Missing(values)),
                target_segment=play.target_segment, goal_metric=play.goal_metric,
                channel=play.channel, strength=round(min(strength, 99.0), 3),
                evidence=tuple(e for _, e in holding),
            )
        )
    out.sort(key=lambda s: (-s.strength, s.key))
    return out


class _Missing(dict[str, str]):
    """format_map mapping that leaves unknown placeholders as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def suggestions_for_persona(
    cur: duckdb.DuckDBPyConnection, persona_id: int, language: str = "en"
) -> list[Suggestion]:
    """Suggested actions for a persona, compared with the whole shop, strongest first."""
    return suggest(persona_profile(cur, persona_id), shop_profile(cur), language=language)


def create_action_from_suggestion(
    cur: duckdb.DuckDBPyConnection,
    key: str,
    persona_id: int,
    starts_on: date | str,
    *,
    language: str = "en",
    ends_on: date | str | None = None,
    created_by: str | None = None,
) -> int:
    """Turn a suggestion into an action targeting the persona; returns its action_id.

    The action's name is the play's name, its description the goal and example message,
    its channel the play's channel. Any play of the playbook may be used, fitting or not:
    the marketer decides.
    """
    plays = {p.key: p for p in load_playbook()}
    if key not in plays:
        raise NotFoundError(f"no play {key!r} in the playbook; known: {', '.join(sorted(plays))}")
    if language not in LANGUAGES:
        raise ValidationError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    play = plays[key]
    text = play.text[language]
    favourite = _favourite(cur, persona_id)
    # Without a favourite category the placeholder stays visible, for the marketer to edit.
    message = text["message"].format_map(
        _Missing({} if favourite is None else {"favourite_category": favourite})
    )
    return create_action(
        cur,
        name=text["name"],
        description=f"{text['goal']}\n\n{message}",
        persona_ids=[persona_id],
        starts_on=starts_on,
        ends_on=ends_on,
        channel=play.channel,
        created_by=created_by,
    )


def _favourite(cur: duckdb.DuckDBPyConnection, persona_id: int) -> str | None:
    row = fetch_one(
        cur,
        "SELECT mode(f.favourite_category) FROM customer_features AS f "
        "JOIN analysis_customers AS c ON c.customer_id = f.customer_id "
        "WHERE f.customer_id IN (SELECT customer_id FROM persona_members WHERE persona_id = ?)",
        [int(persona_id)],
    )
    return None if row is None or row[0] is None else str(row[0])
