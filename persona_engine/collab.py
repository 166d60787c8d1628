"""Working on a persona together: comments by department, who is here, what changed and how.

Comments and presence check roles here, not only in the page: a viewer reads comments but
cannot write them, and someone unknown to a configured credentials file is not "here".
History entries come with a line diff (difflib) for long texts and lists, so a reviewer sees
what a colleague changed inside a paragraph, not just that it changed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from persona_engine.errors import NotFoundError, PermissionDenied, ValidationError
from persona_engine.personas import (
    PERSONA_FIELDS,
    ROLES,
    get_persona,
    persona_history,
    require_role,
    role_of,
)
from persona_engine.store import fetch_df, fetch_one

DEPARTMENTS = ("marketing", "sales", "customer_service", "data")
MAX_COMMENT_LENGTH = 5_000
PRESENCE_WINDOW_S = 60
# Fields whose history shows a line diff; short texts and choices read fine as old -> new.
DIFF_KINDS = frozenset({"markdown", "list"})


# ---------------------------------------------------------------- comments


def add_comment(
    cur: duckdb.DuckDBPyConnection, persona_id: int, author: str, department: str, body: str
) -> int:
    """Add a comment to a persona's thread; returns its comment_id.

    Needs the editor role (viewers read only). `department` is one of DEPARTMENTS.
    """
    require_role(cur, author, "editor")
    if department not in DEPARTMENTS:
        raise ValidationError(f"department must be one of {', '.join(DEPARTMENTS)}; got {department!r}")
    text = (body or "").strip()
    if not text:
        raise ValidationError("the comment is empty; write something before posting")
    if len(text) > MAX_COMMENT_LENGTH:
        raise ValidationError(f"the comment is longer than {MAX_COMMENT_LENGTH:,} characters; shorten it")
    get_persona(cur, persona_id)  # NotFoundError for a missing or deleted persona
    row = fetch_one(
        cur,
        "INSERT INTO persona_comments (persona_id, created_at, author, department, body)"
        " VALUES (?, ?, ?, ?, ?) RETURNING comment_id",
        [persona_id, datetime.now(), author, department, text],
    )
    assert row is not None
    return int(row[0])


def list_comments(
    cur: duckdb.DuckDBPyConnection, persona_id: int, department: str | None = None
) -> pd.DataFrame:
    """A persona's comment thread, oldest first.

    Columns out: comment_id, created_at, author (user name), author_name (display name from
    app_users, else the user name), department, body. `department` filters when given.
    """
    if department is not None and department not in DEPARTMENTS:
        raise ValidationError(f"department must be one of {', '.join(DEPARTMENTS)}; got {department!r}")
    return fetch_df(
        cur,
        """
        SELECT c.comment_id, c.created_at, c.author, coalesce(u.display_name, c.author) AS author_name,
               c.department, c.body
        FROM persona_comments c LEFT JOIN app_users u ON u.user_name = c.author
        WHERE c.persona_id = ? AND (?::VARCHAR IS NULL OR c.department = ?)
        ORDER BY c.created_at, c.comment_id
        """,
        [persona_id, department, department],
    )


def delete_comment(cur: duckdb.DuckDBPyConnection, comment_id: int, user: str) -> None:
    """Remove a comment: its author (still an editor) or an admin may."""
    row = fetch_one(cur, "SELECT author FROM persona_comments WHERE comment_id = ?", [comment_id])
    if row is None:
        raise NotFoundError(f"comment {comment_id} does not exist")
    require_role(cur, user, "editor")
    if row[0] != user and role_of(cur, user) != "admin":
        raise PermissionDenied(f"only {row[0]} or an admin can delete this comment")
    cur.execute("DELETE FROM persona_comments WHERE comment_id = ?", [comment_id])


# ---------------------------------------------------------------- presence


def heartbeat(
    cur: duckdb.DuckDBPyConnection, persona_id: int, user: str, editing: bool = False,
    now: datetime | None = None,
) -> None:
    """Record that `user` is looking at (editing=False) or editing the persona right now.

    Anyone with a role may be present; only editors and admins may be shown as editing.
    """
    if not user or not user.strip():
        raise PermissionDenied("give your name to appear among the people on this persona")
    role = role_of(cur, user)
    if role not in ROLES:
        raise PermissionDenied(f"{user} is not among the people allowed in; ask an admin to add you")
    if editing and ROLES.index(role) < ROLES.index("editor"):
        raise PermissionDenied(f"{user} has the role {role!r} and cannot edit")
    try:
        cur.execute(
            "INSERT OR REPLACE INTO persona_presence (persona_id, user_name, seen_at, editing) VALUES (?, ?, ?, ?)",
            [persona_id, user, now or datetime.now(), editing],
        )
    except duckdb.TransactionException:
        pass  # the same person's other tab wrote the same row at the same moment: one beat is enough


def leave(cur: duckdb.DuckDBPyConnection, persona_id: int, user: str) -> None:
    """Drop the user from the persona's presence list at once (instead of after a minute)."""
    cur.execute("DELETE FROM persona_presence WHERE persona_id = ? AND user_name = ?", [persona_id, user])


def present_users(
    cur: duckdb.DuckDBPyConnection, persona_id: int, within_s: int = PRESENCE_WINDOW_S,
    now: datetime | None = None,
) -> pd.DataFrame:
    """People seen on the persona in the last `within_s` seconds, editors first.

    Columns out: user_name, display_name (from app_users, else the user name), seen_at, editing.
    """
    since = (now or datetime.now()) - timedelta(seconds=within_s)
    return fetch_df(
        cur,
        """
        SELECT p.user_name, coalesce(u.display_name, p.user_name) AS display_name, p.seen_at, p.editing
        FROM persona_presence p LEFT JOIN app_users u ON u.user_name = p.user_name
        WHERE p.persona_id = ? AND p.seen_at >= ?
        ORDER BY p.editing DESC, display_name
        """,
        [persona_id, since],
    )


# ---------------------------------------------------------------- changes and diffs


@dataclass(frozen=True)
class ChangeNotice:
    """One save by someone: which fields it changed."""

    version: int
    changed_by: str | None
    changed_at: datetime
    fields: tuple[str, ...]


def changes_since(cur: duckdb.DuckDBPyConnection, persona_id: int, version: int) -> list[ChangeNotice]:
    """Saves made after `version`, oldest first: the "who changed what" a live view announces."""
    frame = fetch_df(
        cur,
        """
        SELECT version, any_value(changed_by) AS changed_by, max(changed_at) AS changed_at,
               list(field ORDER BY field) AS fields
        FROM persona_history WHERE persona_id = ? AND version > ?
        GROUP BY version ORDER BY version
        """,
        [persona_id, version],
    )
    return [
        ChangeNotice(int(r.version), r.changed_by, r.changed_at.to_pydatetime(), tuple(r.fields))
        for r in frame.itertuples(index=False)
    ]


def value_text(field: str, value: Any) -> str:
    """A field's value as the text a diff compares: lists one item per line, images as a size."""
    if value is None:
        return ""
    if isinstance(value, dict) and "bytes" in value:  # history keeps an image's size only
        return f"[image, {value['bytes']:,} bytes]"
    if isinstance(value, list | tuple):
        return "\n".join(str(item) for item in value)
    return str(value)


def text_diff(old: str, new: str) -> str:
    """Line diff of two texts, one line per line of either: "  " kept, "- " removed, "+ " added.

    Lines are compared whole (difflib.ndiff without its "? " hint lines), which reads well
    for paragraphs and list items and renders as a `diff` code block.
    """
    lines = difflib.ndiff(old.splitlines(), new.splitlines())
    return "\n".join(line for line in lines if not line.startswith("? "))


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any
    diff: str | None  # line diff for long texts and lists; None for short fields


@dataclass(frozen=True)
class HistoryEntry:
    """One version of a persona: who saved it, when, and each field's old -> new value."""

    version: int
    changed_at: datetime
    changed_by: str | None
    changes: tuple[FieldChange, ...]


def history_timeline(cur: duckdb.DuckDBPyConnection, persona_id: int) -> list[HistoryEntry]:
    """The persona's history as a timeline, newest version first (from persona_history)."""
    frame = persona_history(cur, persona_id)
    if frame.empty:
        get_persona(cur, persona_id, include_deleted=True)  # NotFoundError when it never existed
        return []
    entries: list[HistoryEntry] = []
    for version, rows in frame.groupby("version", sort=False):
        changes = []
        for r in rows.itertuples(index=False):
            spec = PERSONA_FIELDS.get(str(r.field))
            diff = None
            if spec is not None and spec.kind in DIFF_KINDS:
                diff = text_diff(value_text(str(r.field), r.old_value), value_text(str(r.field), r.new_value))
            changes.append(FieldChange(str(r.field), r.old_value, r.new_value, diff))
        first = rows.iloc[0]
        entries.append(HistoryEntry(int(version), first["changed_at"].to_pydatetime(), first["changed_by"], tuple(changes)))
    return entries
