"""Editor state rules, and the Persona editor and Meeting pages through AppTest.

AppTest does not tick `st.fragment(run_every=...)`: each `at.run()` stands for one poll.
Another person's save is made with the engine on the same database file, as a second
browser session of the same server process would.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from persona_engine import auth, collab
from persona_engine.personas import create_persona, get_persona, save_persona
from persona_engine.store import open_store
from tests.conftest import open_page
from tests.test_export import build_shop
from ui.editor_state import (
    EditorState,
    from_widget,
    merge_suggestion,
    pending_changes,
    rebase,
    to_widget,
)

# ---------------------------------------------------------------- editor state (pure)


@pytest.fixture
def fred(cur):
    return create_persona(cur, {"name": "Fred", "quote": "Q1", "bio": "B1", "goals": ["a"]}, "alice")


def widgets_of(cur, persona_id, **typed):
    values = {f: to_widget(f, v) for f, v in get_persona(cur, persona_id).fields.items() if f in EditorState.open(
        get_persona(cur, persona_id)).base}
    values.update(typed)
    return values


def test_list_and_text_values_round_trip_through_widgets():
    assert to_widget("goals", ["a", "b"]) == "a\nb"
    assert from_widget("goals", " a \n\n b ") == ["a", "b"]  # blank lines and spaces dropped
    assert from_widget("bio", "   ") is None and to_widget("bio", None) == ""
    assert from_widget("kind", "primary") == "primary"


def test_rebase_updates_untouched_keeps_touched_and_flags_conflicts(cur, fred):
    state = EditorState.open(get_persona(cur, fred))
    typed = widgets_of(cur, fred, bio="my bio", quote="my quote")  # touched: bio, quote
    save_persona(cur, fred, {"goals": ["a", "b"], "quote": "their quote"}, 1, "bob")
    notices = collab.changes_since(cur, fred, 1)
    updates = rebase(state, get_persona(cur, fred), typed, notices, "alice")
    assert updates == {"goals": "a\nb"}  # untouched here: takes bob's value
    assert list(state.conflicts) == ["quote"]  # both changed it: to resolve
    assert state.conflicts["quote"].theirs == "their quote" and state.conflicts["quote"].changed_by == "bob"
    assert state.base_version == 2 and [n.changed_by for n in state.notices] == ["bob"]
    typed.update(updates)
    # Save sends bio only: the conflicting quote waits for keep mine / take theirs / merge.
    assert pending_changes(state, typed) == {"bio": "my bio"}


def test_own_saves_are_not_announced_and_conflict_clears_when_values_agree(cur, fred):
    state = EditorState.open(get_persona(cur, fred))
    typed = widgets_of(cur, fred, quote="same words")
    save_persona(cur, fred, {"quote": "same words"}, 1, "bob")  # bob typed exactly the same
    rebase(state, get_persona(cur, fred), typed, collab.changes_since(cur, fred, 1), "alice")
    assert state.conflicts == {} and pending_changes(state, typed) == {}
    save_persona(cur, fred, {"bio": "mine"}, 2, "alice")
    rebase(state, get_persona(cur, fred), typed, collab.changes_since(cur, fred, 2), "alice")
    assert [n.version for n in state.notices] == [2]  # alice's own version 3 is not a notice


def test_merge_suggestion_keeps_both_sides():
    assert merge_suggestion("goals", ["a", "b"], ["b", "c"]) == "a\nb\nc"
    assert merge_suggestion("bio", "Theirs.", "Mine.") == "Theirs.\n\nMine."
    assert merge_suggestion("bio", "Same", "Same") == "Same"


# ---------------------------------------------------------------- pages


@pytest.fixture
def shop_db(tmp_path, monkeypatch):
    """A small hand-made shop with persona 1 (Frugal Fred, 3 consenting members), no login."""
    path = tmp_path / "shop.duckdb"
    s = open_store(path)
    build_shop(s.cursor())
    s.close()
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(path))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))
    return path


def editor(name: str | None = "Alice", page: str = "pages/persona_editor.py", **state) -> AppTest:
    if name:
        state = {"display_name": name, **state}
    return open_page(page, timeout=60, **state)


def other_session(db):
    """Another person's cursor on the same database (same process, like another browser)."""
    return open_store(db).cursor()


def test_editor_shows_fields_and_facts_and_saves(shop_db):
    at = editor()
    assert not at.exception, at.exception
    assert at.title[0].value == "Persona editor"
    assert at.text_input(key="pe_1_name").value == "Frugal Fred"
    assert at.text_area(key="pe_1_goals").value == "Save money\nFree delivery over 30 €"
    facts = [m.value for m in at.markdown]
    assert "Customers: **3**" in facts  # members 1-3 (member 4 has no consent)
    assert "Average order value: **€66\\.67**" in facts  # 200 / 3 completed orders
    at.text_input(key="pe_1_quote").set_value("Only on sale")
    at.text_area(key="pe_1_goals").set_value("Save money\nNo fees").run()
    assert "Unsaved changes: Quote, Goals" in [c.value for c in at.caption]
    at.button(key="pe_1_save_top").click().run()
    assert not at.exception, at.exception
    saved = get_persona(other_session(shop_db), 1)
    assert saved.version == 2 and saved["quote"] == "Only on sale" and saved["goals"] == ["Save money", "No fees"]
    assert saved.updated_by == "Alice"
    assert "Saved as version 2: Quote, Goals." in [s.value for s in at.success]


def test_others_saves_appear_and_unsaved_input_stays(shop_db):
    at = editor()
    at.text_area(key="pe_1_bio").set_value("Alice's draft, not saved")
    at.run()
    save_persona(other_session(shop_db), 1, {"quote": "Bob's quote", "goals": ["From Bob"]}, 1, "Bob")
    at.run()  # one poll of the live fragment
    assert not at.exception, at.exception
    assert at.text_input(key="pe_1_quote").value == "Bob's quote"
    assert at.text_area(key="pe_1_goals").value == "From Bob"
    assert at.text_area(key="pe_1_bio").value == "Alice's draft, not saved"
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Bob changed Goals, Quote at ") and c.endswith("(version 2)") for c in captions)
    assert "Unsaved changes: Bio" in captions


@pytest.mark.parametrize("choice", ["keep", "take", "merge"])
def test_conflict_resolution(shop_db, choice):
    at = editor()
    at.text_input(key="pe_1_quote").set_value("Alice's quote")
    at.run()
    save_persona(other_session(shop_db), 1, {"quote": "Bob's quote"}, 1, "Bob")
    at.run()
    conflicts = [w.value for w in at.warning if "while you were editing" in w.value]
    assert conflicts == ["Bob changed **Quote** while you were editing it. Your text is kept; choose what to save."]
    assert at.text_input(key="pe_1_quote").value == "Alice's quote"  # nothing of hers is lost
    assert at.text_input(key="pe_1_quote").disabled  # until she chooses
    if choice == "keep":
        at.button(key="pe_1_quote_keep").click().run()
        expected = "Alice's quote"
    elif choice == "take":
        at.button(key="pe_1_quote_take").click().run()
        assert at.text_input(key="pe_1_quote").value == "Bob's quote"
        expected = "Bob's quote"
    else:
        at.button(key="pe_1_quote_merge_open").click().run()
        assert at.text_area(key="pe_1_quote_merge").value == "Bob's quote\n\nAlice's quote"
        at.text_area(key="pe_1_quote_merge").set_value("Bob's and Alice's quote")
        at.button(key="pe_1_quote_merge_save").click().run()
        expected = "Bob's and Alice's quote"
    assert not at.exception, at.exception
    assert not [w for w in at.warning if "while you were editing" in w.value]
    assert get_persona(other_session(shop_db), 1)["quote"] == expected
    assert at.text_input(key="pe_1_quote").value == expected


def test_history_restore_and_comments(shop_db):
    save_persona(other_session(shop_db), 1, {"quote": "Second quote"}, 1, "Bob")
    at = editor()
    assert "Version 2 · " in at.expander[0].label and "Bob · Quote" in at.expander[0].label
    assert at.expander[0].code[0].value == "- Never full price, 5 € max\n+ Second quote"
    at.button(key="restore_1_1").click().run()
    assert not at.exception, at.exception
    restored = get_persona(other_session(shop_db), 1)
    assert restored.version == 3 and restored["quote"] == "Never full price, 5 € max"
    at.selectbox(key="comment_department").set_value("sales")
    at.text_area(key="comment_body").set_value("Store staff **confirm** [it](javascript:alert(1))")
    at.button(key="comment_post").click().run()
    thread = collab.list_comments(other_session(shop_db), 1)
    assert list(thread["department"]) == ["sales"] and thread.loc[0, "author"] == "Alice"
    bodies = [m.value for m in at.markdown]
    assert "Store staff **confirm** [it]\\(javascript:alert(1))" in bodies  # link made inert


def test_without_a_name_the_page_is_a_read_only_live_view(shop_db):
    at = editor(name=None)
    assert not at.exception, at.exception
    assert at.info[0].value.startswith("Give your name in the sidebar")
    assert len(at.main.text_input) == 0 and len(at.main.text_area) == 0  # no editing widgets
    bio = next(m.value for m in at.markdown if "Hunts" in m.value)
    assert "[click]\\(javascript:alert(1))" in bio and "](javascript" not in bio


def test_login_required_and_viewer_cannot_edit(shop_db, tmp_path):
    users = tmp_path / "users.toml"
    auth.add_user(users, "vera", "viewer-pass", "viewer", "Vera V.", rounds=4)
    auth.add_user(users, "eddie", "editor-pass", "editor", "Eddie E.", rounds=4)
    at = editor(name=None)
    assert at.info[0].value == "Sign in from the sidebar to see the personas."
    # AppTest shows the sidebar on the first run of the default page only: sign in there,
    # then read the outcome from the session and the editor page.
    at = open_page(timeout=60)
    at.text_input(key="login_user").set_value("vera")
    at.text_input(key="login_password").set_value("wrong-pass")
    at.sidebar.button[0].click().run()  # the form's submit button
    assert at.session_state["login_failed"] and "signed_in_user" not in at.session_state
    at = open_page(timeout=60)
    at.text_input(key="login_user").set_value("vera")
    at.text_input(key="login_password").set_value("viewer-pass")
    at.sidebar.button[0].click().run()
    assert not at.exception, at.exception
    assert at.session_state["signed_in_user"] == "vera"
    assert at.session_state["login_password"] == ""  # the password is not kept
    at.switch_page("pages/persona_editor.py").run()
    assert not at.exception, at.exception
    assert at.info[0].value.startswith("You have the viewer role")
    assert len(at.main.text_area) == 0  # read-only view: no editing widgets
    assert not [b for b in at.button if b.key and b.key.startswith("pe_1_save")]
    assert not [b for b in at.button if b.key == "comment_post"]


def test_meeting_page_shows_the_card_and_exports(shop_db):
    at = editor(page="pages/meeting.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Frugal Fred"
    labels = [m.label for m in at.metric]
    assert labels == ["Customers", "Average order value", "Repeat-purchase rate", "Conversion rate", "Share of revenue"]
    assert at.metric[1].value == "€66.67" and at.metric[2].value == "50.0%"
    downloads = [e for e in at.get("download_button")]
    assert len(downloads) == 3


def test_editor_in_french(shop_db):
    at = editor(lang="fr")
    assert not at.exception, at.exception
    assert at.title[0].value == "Éditeur de persona"
    assert at.text_input(key="pe_1_quote").label == "Citation"
    assert at.selectbox(key="pe_1_kind").value == "primary"
    assert at.selectbox(key="pe_1_kind").options == ["Principal", "Secondaire", "Anti-persona"]
    assert "Panier moyen: **66,67\u202f€**" in [m.value for m in at.markdown]  # French number format
