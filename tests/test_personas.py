"""Persona records: field validation, merge of concurrent edits, history, restore, roles."""

from __future__ import annotations

import threading

import pytest

from persona_engine.errors import NotFoundError, PermissionDenied, ValidationError
from persona_engine.personas import (
    PERSONA_FIELDS,
    create_persona,
    current_version,
    delete_persona,
    fields_at_version,
    get_persona,
    list_personas,
    persona_history,
    restore_version,
    save_persona,
    undelete_persona,
)
from persona_engine.store import open_store

# 20 distinct text/list fields that 20 concurrent editors each change once.
TWENTY_FIELDS = [
    "nickname", "quote", "bio", "demographics", "goals", "frustrations", "motivations",
    "buying_triggers", "objections", "preferred_channels", "media_preferences", "tech_affinity",
    "personal_context", "professional_context", "brand_relationship", "day_in_the_life",
    "key_messages", "success_factors", "avatar", "avatar_mime",
]


def value_for(field: str, who: str):
    return [f"{who} item"] if PERSONA_FIELDS[field].kind == "list" else f"{who} wrote {field}"


@pytest.fixture
def persona(cur):
    return create_persona(cur, {"name": "Frugal Fred", "bio": "Buys on sale."}, "alice", members=[1, 2, 3])


def test_create_and_read(cur, persona):
    p = get_persona(cur, persona)
    assert p.version == 1 and p["name"] == "Frugal Fred" and p["kind"] == "secondary" and p["status"] == "draft"
    assert p["goals"] == []
    listed = list_personas(cur)
    assert listed.loc[0, "members"] == 3


def test_save_applies_and_records_history(cur, persona):
    result = save_persona(cur, persona, {"quote": "Never full price", "goals": ["save money", " "]}, 1, "bob")
    assert result.ok and result.version == 2 and set(result.applied) == {"quote", "goals"}
    p = get_persona(cur, persona)
    assert p["goals"] == ["save money"]  # blank items dropped
    hist = persona_history(cur, persona)
    v2 = hist[hist.version == 2].set_index("field")
    assert set(v2.index) == {"quote", "goals"}
    assert v2.loc["quote", "changed_by"] == "bob" and v2.loc["quote", "old_value"] is None
    assert v2.loc["quote", "new_value"] == "Never full price"


def test_other_fields_changed_meanwhile_are_kept(cur, persona):
    # Alice and Bob both start from version 1; Alice saves the quote, then Bob the bio.
    assert save_persona(cur, persona, {"quote": "A"}, 1, "alice").ok
    result = save_persona(cur, persona, {"bio": "B"}, 1, "bob")
    assert result.ok and result.version == 3
    p = get_persona(cur, persona)
    assert (p["quote"], p["bio"]) == ("A", "B")


def test_same_field_conflict_is_reported_not_overwritten(cur, persona):
    save_persona(cur, persona, {"bio": "Alice's bio"}, 1, "alice")
    result = save_persona(cur, persona, {"bio": "Bob's bio", "quote": "Bob's quote"}, 1, "bob")
    assert not result.ok
    assert result.applied == ("quote",)  # the field without conflict still lands
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.theirs, conflict.yours, conflict.changed_by) == ("bio", "Alice's bio", "Bob's bio", "alice")
    assert get_persona(cur, persona)["bio"] == "Alice's bio"
    # Bob keeps his after seeing the conflict: he saves again from the current version.
    again = save_persona(cur, persona, {"bio": "Bob's bio"}, result.version, "bob")
    assert again.ok and get_persona(cur, persona)["bio"] == "Bob's bio"


def test_same_value_is_not_a_conflict(cur, persona):
    save_persona(cur, persona, {"bio": "Same"}, 1, "alice")
    result = save_persona(cur, persona, {"bio": "Same"}, 1, "bob")
    assert result.ok and result.conflicts == () and result.version == 2


def test_bad_input_changes_nothing(cur, persona):
    before = get_persona(cur, persona)
    with pytest.raises(ValidationError, match="unknown persona field 'colour'"):
        save_persona(cur, persona, {"quote": "x", "colour": "red"}, 1, "bob")
    with pytest.raises(ValidationError, match="list of texts"):
        save_persona(cur, persona, {"goals": "not a list"}, 1, "bob")
    with pytest.raises(ValidationError, match="must be one of"):
        save_persona(cur, persona, {"kind": "tertiary"}, 1, "bob")
    with pytest.raises(ValidationError, match="cannot be empty"):
        save_persona(cur, persona, {"name": "  "}, 1, "bob")
    with pytest.raises(NotFoundError):
        save_persona(cur, 999, {"quote": "x"}, 1, "bob")
    after = get_persona(cur, persona)
    assert after.fields == before.fields and after.version == before.version == 1


def test_viewer_cannot_save_admin_may_delete(cur, persona):
    cur.execute("INSERT INTO app_users VALUES ('vera', 'Vera', 'viewer', 'x'), ('eddie', 'Eddie', 'editor', 'x'),"
                " ('ada', 'Ada', 'admin', 'x')")
    with pytest.raises(PermissionDenied, match="viewer"):
        save_persona(cur, persona, {"quote": "x"}, 1, "vera")
    with pytest.raises(PermissionDenied):
        save_persona(cur, persona, {"quote": "x"}, 1, "stranger")
    assert save_persona(cur, persona, {"quote": "x"}, 1, "eddie").ok
    with pytest.raises(PermissionDenied, match="admin"):
        delete_persona(cur, persona, "eddie")
    delete_persona(cur, persona, "ada")
    with pytest.raises(NotFoundError):
        get_persona(cur, persona)
    undelete_persona(cur, persona, "ada")
    assert get_persona(cur, persona)["quote"] == "x"


def test_restore_an_earlier_version_as_a_new_save(cur, persona):
    save_persona(cur, persona, {"bio": "v2 bio", "goals": ["g"]}, 1, "alice")
    save_persona(cur, persona, {"bio": "v3 bio"}, 2, "bob")
    assert fields_at_version(cur, persona, 1)["bio"] == "Buys on sale."
    result = restore_version(cur, persona, 1, "carol")
    assert result.ok and result.version == 4
    p = get_persona(cur, persona)
    assert p["bio"] == "Buys on sale." and p["goals"] == [] and p["name"] == "Frugal Fred"
    assert current_version(cur, persona)[:2] == (4, "carol")


def test_twenty_threads_different_fields_all_kept(tmp_path):
    store = open_store(tmp_path / "p.duckdb")
    pid = create_persona(store.cursor(), {"name": "Busy Bea"}, "setup")
    results = {}

    def edit(i: int) -> None:
        field = TWENTY_FIELDS[i]
        results[field] = save_persona(store.cursor(), pid, {field: value_for(field, f"user{i}")}, 1, f"user{i}")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results.values()), [r for r in results.values() if not r.ok]
    p = get_persona(store.cursor(), pid)
    for i, field in enumerate(TWENTY_FIELDS):
        assert p[field] == value_for(field, f"user{i}"), field
    assert p.version == 21  # 1 + one version per save
    assert len(persona_history(store.cursor(), pid).query("version > 1")) == 20
    store.close()


def test_two_threads_same_field_one_wins_one_conflicts(tmp_path):
    store = open_store(tmp_path / "p.duckdb")
    pid = create_persona(store.cursor(), {"name": "Busy Bea"}, "setup")
    barrier = threading.Barrier(2)
    results = []

    def edit(who: str) -> None:
        barrier.wait()
        results.append(save_persona(store.cursor(), pid, {"bio": f"{who}'s bio"}, 1, who))

    threads = [threading.Thread(target=edit, args=(w,)) for w in ("ann", "ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.ok for r in results) == [False, True]
    winner = next(r for r in results if r.ok)
    loser = next(r for r in results if not r.ok)
    stored = get_persona(store.cursor(), pid)["bio"]
    assert loser.conflicts[0].field == "bio" and loser.conflicts[0].theirs == stored
    assert winner.version == 2 and stored != loser.conflicts[0].yours
    store.close()
