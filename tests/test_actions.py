"""Marketing actions: create, read, edit, delete, and the validation that guards each write."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from persona_engine import actions
from persona_engine.errors import NotFoundError, ValidationError


@pytest.fixture
def personas(cur: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    cur.execute(
        "INSERT INTO personas (persona_id, name) VALUES (1, 'Frugal'), (2, 'Premium'), (3, 'Gone')"
    )
    cur.execute("UPDATE personas SET deleted_at = current_timestamp WHERE persona_id = 3")
    return cur


def _create(cur, **overrides):
    fields = {
        "name": "Spring offer", "starts_on": date(2026, 3, 2), "persona_ids": [1],
        "ends_on": date(2026, 3, 31), "description": "10% off", "channel": "email",
        "created_by": "ines",
    }
    fields.update(overrides)
    return actions.create_action(cur, **fields)


def test_create_and_read_back(personas):
    action_id = _create(personas, name="  Spring offer  ", persona_ids=[2, 1, 2], channel="Email")
    action = actions.get_action(personas, action_id)
    assert action.name == "Spring offer"  # trimmed
    assert action.persona_ids == (2, 1)  # duplicates dropped, order kept
    assert action.channel == "email"  # channels are lower case
    assert (action.starts_on, action.ends_on) == (date(2026, 3, 2), date(2026, 3, 31))
    assert action.created_by == "ines" and action.description == "10% off"
    assert action.to_dict()["starts_on"] == "2026-03-02"


def test_dates_may_be_iso_text_and_the_end_is_optional(personas):
    action_id = _create(personas, starts_on="2026-04-01", ends_on=None)
    action = actions.get_action(personas, action_id)
    assert action.starts_on == date(2026, 4, 1) and action.ends_on is None


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ends_on": date(2026, 3, 1)}, "ends .*2026-03-01.* before it starts"),
        ({"name": "   "}, "action name cannot be empty"),
        ({"name": None}, "action name is required"),
        ({"name": "x" * 121}, "keep it under 120"),
        ({"persona_ids": [1, 7]}, "unknown persona 7; existing personas: 1, 2"),
        ({"persona_ids": [3]}, "unknown persona 3"),  # deleted
        ({"persona_ids": []}, "at least one persona"),
        ({"persona_ids": ["one"]}, "whole number"),
        ({"starts_on": "next monday"}, "start date must be a date"),
        ({"channel": "carrier pigeon"}, "unknown channel"),
    ],
)
def test_invalid_actions_are_refused(personas, overrides, message):
    with pytest.raises(ValidationError, match=message):
        _create(personas, **overrides)
    assert personas.execute("SELECT count(*) FROM actions").fetchall()[0][0] == 0


def test_update_validates_the_resulting_record(personas):
    action_id = _create(personas)
    updated = actions.update_action(personas, action_id, name="Spring sale", persona_ids=[2])
    assert updated.name == "Spring sale" and updated.persona_ids == (2,)
    assert updated.ends_on == date(2026, 3, 31)  # untouched fields stay
    # Moving the start after the existing end is refused like creating it that way.
    with pytest.raises(ValidationError, match="before it starts"):
        actions.update_action(personas, action_id, starts_on=date(2026, 4, 15))
    with pytest.raises(ValidationError, match="cannot change archetypes"):
        actions.update_action(personas, action_id, archetypes=["x"])
    assert actions.get_action(personas, action_id).starts_on == date(2026, 3, 2)


def test_delete_and_missing_actions(personas):
    action_id = _create(personas)
    actions.delete_action(personas, action_id)
    with pytest.raises(NotFoundError, match=f"action {action_id} does not exist"):
        actions.get_action(personas, action_id)
    with pytest.raises(NotFoundError):
        actions.delete_action(personas, action_id)
    with pytest.raises(NotFoundError):
        actions.update_action(personas, 99, name="x")


def test_list_actions_newest_first_and_by_persona(personas):
    first = _create(personas, name="Winter", starts_on=date(2026, 1, 5), ends_on=None, persona_ids=[1])
    second = _create(personas, name="Spring", starts_on=date(2026, 3, 2), persona_ids=[1, 2])
    third = _create(personas, name="Summer", starts_on=date(2026, 6, 1), ends_on=None, persona_ids=[2])
    assert [a.action_id for a in actions.list_actions(personas)] == [third, second, first]
    assert [a.action_id for a in actions.list_actions(personas, persona_id=1)] == [second, first]
    assert actions.list_actions(personas, persona_id=3) == []
