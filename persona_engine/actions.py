"""Marketing actions: what was done, for which personas, from when; validated on every write.

An action's start date anchors the before/after windows of `kpis.before_after`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from persona_engine.errors import NotFoundError, ValidationError
from persona_engine.store import fetch_df, fetch_one

# Channels an action can use; "other" keeps the list from blocking real work.
CHANNELS: tuple[str, ...] = (
    "email", "sms", "push", "app", "web", "social", "display", "search", "store", "mail",
    "phone", "other",
)
MAX_NAME_LENGTH = 120
MAX_DESCRIPTION_LENGTH = 2_000

# Fields update_action may change; `archetypes` is written only by the sample shop.
EDITABLE_FIELDS: tuple[str, ...] = (
    "name", "description", "persona_ids", "starts_on", "ends_on", "channel", "created_by",
)


@dataclass(frozen=True)
class Action:
    """One row of table `actions`. `created_by` is the action's owner."""

    action_id: int
    name: str
    starts_on: date
    persona_ids: tuple[int, ...] = ()
    ends_on: date | None = None
    description: str | None = None
    channel: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    archetypes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (dates as ISO strings)."""
        out = asdict(self)
        out["persona_ids"] = list(self.persona_ids)
        out["archetypes"] = list(self.archetypes)
        for key in ("starts_on", "ends_on", "created_at"):
            value = out[key]
            out[key] = value.isoformat() if value is not None else None
        return out


_SELECT = """
SELECT action_id, name, starts_on, persona_ids, ends_on, description, channel, created_by,
       created_at, archetypes
FROM actions
"""


def _row_to_action(row: Sequence[Any]) -> Action:
    return Action(
        action_id=int(row[0]),
        name=row[1],
        starts_on=row[2],
        persona_ids=tuple(int(p) for p in (row[3] or ())),
        ends_on=row[4],
        description=row[5],
        channel=row[6],
        created_by=row[7],
        created_at=row[8],
        archetypes=tuple(row[9] or ()),
    )


def _as_date(value: Any, label: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(f"{label} must be a date like 2026-03-02; got {value!r}")


def _clean_text(value: Any, label: str, max_length: int, required: bool) -> str | None:
    if value is None:
        if required:
            raise ValidationError(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{label} must be text; got {value!r}")
    text = value.strip()
    if not text:
        if required:
            raise ValidationError(f"{label} cannot be empty")
        return None
    if len(text) > max_length:
        raise ValidationError(f"{label} is {len(text)} characters long; keep it under {max_length}")
    return text


def _existing_persona_ids(cur: duckdb.DuckDBPyConnection) -> list[int]:
    df = fetch_df(cur, "SELECT persona_id FROM personas WHERE deleted_at IS NULL ORDER BY 1")
    return [int(p) for p in df["persona_id"]]


def _clean_persona_ids(cur: duckdb.DuckDBPyConnection, persona_ids: Iterable[Any]) -> tuple[int, ...]:
    if isinstance(persona_ids, str | bytes) or not isinstance(persona_ids, Iterable):
        raise ValidationError(f"personas must be a list of persona ids; got {persona_ids!r}")
    ids: list[int] = []
    for raw in persona_ids:
        try:
            pid = int(raw)
        except (TypeError, ValueError):
            raise ValidationError(f"persona id must be a whole number; got {raw!r}") from None
        if pid not in ids:
            ids.append(pid)
    if not ids:
        raise ValidationError("an action must target at least one persona")
    known = set(_existing_persona_ids(cur))
    unknown = [p for p in ids if p not in known]
    if unknown:
        listed = ", ".join(str(p) for p in sorted(known)) or "none yet"
        raise ValidationError(
            f"unknown persona {', '.join(str(p) for p in unknown)}; existing personas: {listed}"
        )
    return tuple(ids)


def _validated(cur: duckdb.DuckDBPyConnection, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise a full set of action fields; raises ValidationError."""
    starts_on = _as_date(fields.get("starts_on"), "start date")
    ends_raw = fields.get("ends_on")
    ends_on = None if ends_raw in (None, "") else _as_date(ends_raw, "end date")
    if ends_on is not None and ends_on < starts_on:
        raise ValidationError(
            f"the action ends ({ends_on.isoformat()}) before it starts "
            f"({starts_on.isoformat()}); fix one of the two dates"
        )
    channel = _clean_text(fields.get("channel"), "channel", 40, required=False)
    if channel is not None:
        channel = channel.lower()
        if channel not in CHANNELS:
            raise ValidationError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    return {
        "name": _clean_text(fields.get("name"), "action name", MAX_NAME_LENGTH, required=True),
        "description": _clean_text(
            fields.get("description"), "description", MAX_DESCRIPTION_LENGTH, required=False
        ),
        "persona_ids": list(_clean_persona_ids(cur, fields.get("persona_ids") or ())),
        "starts_on": starts_on,
        "ends_on": ends_on,
        "channel": channel,
        "created_by": _clean_text(fields.get("created_by"), "owner", 120, required=False),
    }


def create_action(
    cur: duckdb.DuckDBPyConnection,
    *,
    name: str,
    starts_on: date | str,
    persona_ids: Sequence[int],
    ends_on: date | str | None = None,
    description: str | None = None,
    channel: str | None = None,
    created_by: str | None = None,
) -> int:
    """Validate and insert an action; returns its action_id.

    Raises ValidationError for an empty name, an end before the start, an unknown or
    missing persona, or an unknown channel.
    """
    values = _validated(
        cur,
        {
            "name": name, "starts_on": starts_on, "persona_ids": persona_ids, "ends_on": ends_on,
            "description": description, "channel": channel, "created_by": created_by,
        },
    )
    row = fetch_one(
        cur,
        "INSERT INTO actions (name, description, persona_ids, starts_on, ends_on, channel, "
        "created_by) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING action_id",
        [
            values["name"], values["description"], values["persona_ids"], values["starts_on"],
            values["ends_on"], values["channel"], values["created_by"],
        ],
    )
    assert row is not None
    return int(row[0])


def get_action(cur: duckdb.DuckDBPyConnection, action_id: int) -> Action:
    """The action with this id; NotFoundError naming the existing ids otherwise."""
    row = fetch_one(cur, _SELECT + " WHERE action_id = ?", [int(action_id)])
    if row is None:
        known = fetch_df(cur, "SELECT action_id FROM actions ORDER BY 1")["action_id"].tolist()
        listed = ", ".join(str(a) for a in known) or "none yet"
        raise NotFoundError(f"action {action_id} does not exist; existing actions: {listed}")
    return _row_to_action(row)


def update_action(cur: duckdb.DuckDBPyConnection, action_id: int, **changes: Any) -> Action:
    """Change some fields of an action (see EDITABLE_FIELDS); returns the updated action.

    The whole resulting record is validated, so moving the start after the end is refused
    just like creating it that way.
    """
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            f"cannot change {', '.join(unknown)}; editable fields: {', '.join(EDITABLE_FIELDS)}"
        )
    current = get_action(cur, action_id)
    merged: dict[str, Any] = {
        "name": current.name, "description": current.description,
        "persona_ids": list(current.persona_ids), "starts_on": current.starts_on,
        "ends_on": current.ends_on, "channel": current.channel, "created_by": current.created_by,
    }
    merged.update(changes)
    values = _validated(cur, merged)
    # Column names come from EDITABLE_FIELDS, a code constant, never from the caller.
    assignments = ", ".join(f"{column} = ?" for column in EDITABLE_FIELDS)
    cur.execute(
        f"UPDATE actions SET {assignments} WHERE action_id = ?",  # noqa: S608
        [values[column] for column in EDITABLE_FIELDS] + [int(action_id)],
    )
    return get_action(cur, action_id)


def delete_action(cur: duckdb.DuckDBPyConnection, action_id: int) -> None:
    """Delete an action; NotFoundError if it does not exist. Shop data is untouched."""
    get_action(cur, action_id)
    cur.execute("DELETE FROM actions WHERE action_id = ?", [int(action_id)])


def list_actions(cur: duckdb.DuckDBPyConnection, persona_id: int | None = None) -> list[Action]:
    """Every action, most recent start first; only those targeting `persona_id` if given."""
    if persona_id is None:
        rows = cur.execute(_SELECT + " ORDER BY starts_on DESC, action_id DESC").fetchall()
    else:
        rows = cur.execute(
            _SELECT + " WHERE list_contains(persona_ids, ?) ORDER BY starts_on DESC, action_id DESC",
            [int(persona_id)],
        ).fetchall()
    return [_row_to_action(row) for row in rows]

