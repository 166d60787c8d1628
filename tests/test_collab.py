"""Comments, presence, change notices, diffs, and safe rendering of what people type."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from persona_engine.auth import hash_password
from persona_engine.collab import (
    add_comment,
    changes_since,
    delete_comment,
    heartbeat,
    history_timeline,
    leave,
    list_comments,
    present_users,
    text_diff,
    value_text,
)
from persona_engine.errors import NotFoundError, PermissionDenied, ValidationError
from persona_engine.personas import create_persona, delete_persona, save_persona
from persona_engine.safe_text import is_safe_url, pdf_markup, plain_markdown, safe_markdown


@pytest.fixture
def persona(cur):
    return create_persona(cur, {"name": "Frugal Fred", "bio": "Buys on sale.\nReads reviews."}, "alice")


def add_users(cur, **roles):
    digest = hash_password("not used here", rounds=4)
    for name, role in roles.items():
        cur.execute("INSERT INTO app_users VALUES (?, ?, ?, ?)", [name, name.title() + " B.", role, digest])


# ---------------------------------------------------------------- comments


def test_comments_are_kept_in_order_with_their_department(cur, persona):
    first = add_comment(cur, persona, "alice", "sales", "Store staff see him with coupons.")
    second = add_comment(cur, persona, "bob", "data", "  Median basket 31 €.  ")
    thread = list_comments(cur, persona)
    assert list(thread["comment_id"]) == [first, second]  # oldest first
    assert list(thread["department"]) == ["sales", "data"]
    assert thread.loc[1, "body"] == "Median basket 31 €."  # surrounding blanks dropped
    assert thread.loc[0, "author_name"] == "alice"  # no app_users: the name itself
    assert len(list_comments(cur, persona, department="data")) == 1


@pytest.mark.parametrize(
    ("department", "body", "message"),
    [("legal", "hi", "department must be one of"), ("sales", "   ", "empty"), ("sales", "x" * 5001, "longer")],
)
def test_bad_comments_are_refused_and_nothing_is_written(cur, persona, department, body, message):
    with pytest.raises(ValidationError, match=message):
        add_comment(cur, persona, "alice", department, body)
    assert len(list_comments(cur, persona)) == 0


def test_comment_on_a_deleted_persona_is_refused(cur, persona):
    add_users(cur, root="admin")
    delete_persona(cur, persona, "root")
    with pytest.raises(NotFoundError):
        add_comment(cur, persona, "root", "sales", "late")


def test_viewer_cannot_comment_and_only_author_or_admin_deletes(cur, persona):
    add_users(cur, vera="viewer", eddie="editor", emma="editor", ada="admin")
    with pytest.raises(PermissionDenied, match="viewer"):
        add_comment(cur, persona, "vera", "marketing", "I only look")
    with pytest.raises(PermissionDenied):
        add_comment(cur, persona, "stranger", "marketing", "not in the credentials file")
    mine = add_comment(cur, persona, "eddie", "marketing", "mine")
    with pytest.raises(PermissionDenied, match="eddie or an admin"):
        delete_comment(cur, mine, "emma")
    delete_comment(cur, mine, "ada")
    assert len(list_comments(cur, persona)) == 0
    assert list_comments(cur, persona).columns.tolist() == [
        "comment_id", "created_at", "author", "author_name", "department", "body"]


def test_comment_author_shows_the_display_name(cur, persona):
    add_users(cur, eddie="editor")
    add_comment(cur, persona, "eddie", "customer_service", "Calls about delivery times.")
    assert list_comments(cur, persona).loc[0, "author_name"] == "Eddie B."


# ---------------------------------------------------------------- presence


def test_presence_lists_people_of_the_last_minute_editors_first(cur, persona):
    now = datetime(2026, 5, 4, 10, 0, 0)
    heartbeat(cur, persona, "zoe", editing=False, now=now - timedelta(seconds=10))
    heartbeat(cur, persona, "bob", editing=True, now=now - timedelta(seconds=59))
    heartbeat(cur, persona, "old", editing=True, now=now - timedelta(seconds=61))  # gone: over a minute
    here = present_users(cur, persona, now=now)
    assert list(here["user_name"]) == ["bob", "zoe"]
    assert list(here["editing"]) == [True, False]
    heartbeat(cur, persona, "zoe", editing=True, now=now)  # same person again: one row, updated
    assert present_users(cur, persona, now=now)["editing"].tolist() == [True, True]
    leave(cur, persona, "bob")
    assert present_users(cur, persona, now=now)["user_name"].tolist() == ["zoe"]


def test_presence_checks_roles(cur, persona):
    add_users(cur, vera="viewer", eddie="editor")
    heartbeat(cur, persona, "vera")  # a viewer may watch
    with pytest.raises(PermissionDenied, match="cannot edit"):
        heartbeat(cur, persona, "vera", editing=True)
    with pytest.raises(PermissionDenied, match="not among the people allowed"):
        heartbeat(cur, persona, "mallory")
    with pytest.raises(PermissionDenied, match="give your name"):
        heartbeat(cur, persona, "  ")
    here = present_users(cur, persona)
    assert here["display_name"].tolist() == ["Vera B."]


# ---------------------------------------------------------------- change notices and history


def test_changes_since_says_who_changed_which_fields(cur, persona):
    save_persona(cur, persona, {"quote": "Never full price", "goals": ["save"]}, 1, "bob")
    save_persona(cur, persona, {"bio": "New bio"}, 2, "carol")
    notices = changes_since(cur, persona, 1)
    assert [(n.version, n.changed_by, n.fields) for n in notices] == [
        (2, "bob", ("goals", "quote")), (3, "carol", ("bio",))]
    assert changes_since(cur, persona, 3) == []


def test_history_timeline_gives_a_line_diff_for_long_fields_only(cur, persona):
    save_persona(cur, persona, {"bio": "Buys on sale.\nCompares prices.", "quote": "Cheap!"}, 1, "bob")
    save_persona(cur, persona, {"goals": ["save money", "free delivery"]}, 2, "carol")
    timeline = history_timeline(cur, persona)
    assert [e.version for e in timeline] == [3, 2, 1]  # newest first
    v2 = {c.field: c for c in timeline[1].changes}
    assert timeline[1].changed_by == "bob"
    assert v2["bio"].diff == "  Buys on sale.\n- Reads reviews.\n+ Compares prices."
    assert v2["quote"].diff is None and v2["quote"].old is None and v2["quote"].new == "Cheap!"
    goals = timeline[0].changes[0]
    assert goals.diff == "+ save money\n+ free delivery"
    with pytest.raises(NotFoundError):
        history_timeline(cur, 999)


def test_text_diff_and_value_text():
    assert text_diff("a\nb\nc", "a\nc\nd") == "  a\n- b\n  c\n+ d"
    assert value_text("goals", ["x", "y"]) == "x\ny"
    assert value_text("avatar_image", {"bytes": 2048}) == "[image, 2,048 bytes]"
    assert value_text("bio", None) == ""


# ---------------------------------------------------------------- safe rendering of user text


@pytest.mark.parametrize(
    "target",
    ["javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)", " javascript:alert(1)",
     "javascript&#58;alert(1)", "&#x6A;avascript:alert(1)", "javascript\\:alert(1)", "data:text/html,<b>",
     "vbscript:msgbox(1)"],
)
def test_unsafe_link_targets_are_recognised(target):
    assert not is_safe_url(target)


@pytest.mark.parametrize("target", ["https://example.com/a?b=c", "http://x.fr", "mailto:a@b.fr", "/relative",
                                    "page#anchor", "//cdn.example.com/x"])
def test_web_and_mail_links_are_kept(target):
    assert is_safe_url(target)


def test_safe_markdown_turns_dangerous_links_into_text():
    bio = (
        "Loves [our shop](https://shop.example).\n"
        "[click me](javascript:alert(1)) and ![pic](javascript:alert(2))\n"
        "[nested [label] here](JAVASCRIPT:alert(3))\n"
        "<javascript:alert(4)> <https://ok.example>\n"
        "[ref]: javascript:alert(5)\n"
        "<script>alert(6)</script>"
    )
    out = safe_markdown(bio)
    assert "[our shop](https://shop.example)" in out  # safe link untouched
    assert "[click me]\\(javascript:alert(1))" in out
    assert "![pic]\\(javascript:alert(2))" in out
    assert "here]\\(JAVASCRIPT:alert(3))" in out
    assert "\\<javascript:alert(4)> <https://ok.example>" in out
    assert "\\[ref]: javascript:alert(5)" in out
    assert "<script>alert(6)</script>" in out  # left to the renderer, which shows tags as text
    assert "](javascript" not in out.lower()


def test_plain_and_pdf_text_are_escaped():
    assert plain_markdown("**Bob** [x](javascript:y)") == "\\*\\*Bob\\*\\* \\[x\\]\\(javascript\\:y\\)"
    assert plain_markdown("two\nlines") == "two lines"
    assert plain_markdown("66,67\u202f€") == "66,67\u202f€"  # French number spacing survives
    assert pdf_markup('<a href="javascript:x">€ & co</a>\nnext') == (
        "&lt;a href=&quot;javascript:x&quot;&gt;€ &amp; co&lt;/a&gt;<br/>next")
