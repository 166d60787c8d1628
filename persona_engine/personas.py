"""Persona records: fields, creation, reading, versions, history, and merge of concurrent edits.

Every change goes through `save_persona`, which merges field by field: a save applies the
fields nobody else changed since the editor's base version and reports the others as
conflicts, so no edit is silently lost. One `persona_history` row per changed field keeps
who changed what, when, from which value to which.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import duckdb
import pandas as pd

from persona_engine.errors import NotFoundError, PermissionDenied, ValidationError
from persona_engine.store import fetch_df, transaction

FieldKind = Literal["text", "markdown", "list", "choice", "image"]


@dataclass(frozen=True)
class FieldSpec:
    kind: FieldKind
    choices: tuple[str, ...] = ()
    required: bool = False
    max_length: int = 20_000


KINDS = ("primary", "secondary", "anti")
STATUSES = ("draft", "active", "archived")

# Every editable attribute of a persona, in the order an editor shows them.
PERSONA_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("text", required=True, max_length=120),
    "nickname": FieldSpec("text", max_length=120),
    "kind": FieldSpec("choice", choices=KINDS, required=True),
    "status": FieldSpec("choice", choices=STATUSES, required=True),
    "avatar": FieldSpec("text", max_length=200_000),  # an emoji, initials or an SVG document
    "avatar_image": FieldSpec("image"),
    "avatar_mime": FieldSpec("text", max_length=50),
    "quote": FieldSpec("text", max_length=500),
    "bio": FieldSpec("markdown"),
    "demographics": FieldSpec("markdown"),
    "goals": FieldSpec("list"),
    "frustrations": FieldSpec("list"),
    "motivations": FieldSpec("list"),
    "buying_triggers": FieldSpec("list"),
    "objections": FieldSpec("list"),
    "preferred_channels": FieldSpec("list"),
    "media_preferences": FieldSpec("list"),
    "tech_affinity": FieldSpec("markdown"),
    "personal_context": FieldSpec("markdown"),
    "professional_context": FieldSpec("markdown"),
    "brand_relationship": FieldSpec("markdown"),
    "day_in_the_life": FieldSpec("markdown"),
    "key_messages": FieldSpec("list"),
    "success_factors": FieldSpec("list"),
}

LIST_FIELDS = tuple(k for k, v in PERSONA_FIELDS.items() if v.kind == "list")
TEXT_FIELDS = tuple(k for k, v in PERSONA_FIELDS.items() if v.kind in ("text", "markdown", "choice"))
ROLES = ("viewer", "editor", "admin")
MAX_SAVE_ATTEMPTS = 50

# DuckDB lets one process at a time open a file for writing, so every concurrent editor of
# a database is a thread of this process: one lock serialises the read-merge-write of saves.
# (Snapshot isolation alone is not enough: a transaction that started before another one
# committed can still write its stale merge.)
_SAVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Conflict:
    """A field someone else changed since the editor's base version."""

    field: str
    theirs: Any  # the value now stored
    yours: Any  # the value this save wanted to write
    changed_by: str | None
    changed_at: datetime | None


@dataclass(frozen=True)
class SaveResult:
    """Outcome of `save_persona`.

    ok: every requested field was applied (no conflict). When conflicts exist, the fields
    without conflict were still applied (so nothing is lost) and `conflicts` lists the rest.
    version: the persona's version after this call.
    """

    ok: bool
    version: int
    applied: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()


@dataclass
class Persona:
    persona_id: int
    version: int
    fields: dict[str, Any]
    updated_at: datetime | None = None
    updated_by: str | None = None
    last_validated_at: datetime | None = None
    source_run_id: int | None = None
    source_clusters: list[int] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    deleted_at: datetime | None = None

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


# ---------------------------------------------------------------- values


def normalise_value(name: str, value: Any) -> Any:
    """Check one field's value and return it in stored form; ValidationError if it does not fit."""
    spec = PERSONA_FIELDS.get(name)
    if spec is None:
        known = ", ".join(PERSONA_FIELDS)
        raise ValidationError(f"unknown persona field {name!r}; known fields: {known}")
    if value is None:
        if spec.required:
            raise ValidationError(f"field {name!r} cannot be empty")
        return [] if spec.kind == "list" else None
    if spec.kind == "list":
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ValidationError(f"field {name!r} takes a list of texts, got {type(value).__name__}")
        items = []
        for item in value:
            if not isinstance(item, str):
                raise ValidationError(f"field {name!r} takes a list of texts; one item is {type(item).__name__}")
            if item.strip():
                items.append(item.strip())
        return items
    if spec.kind == "image":
        if not isinstance(value, bytes | bytearray):
            raise ValidationError(f"field {name!r} takes image bytes, got {type(value).__name__}")
        if len(value) > 2_000_000:
            raise ValidationError(f"field {name!r}: image over 2 MB; use a smaller picture")
        return bytes(value)
    if not isinstance(value, str):
        raise ValidationError(f"field {name!r} takes text, got {type(value).__name__}")
    if spec.kind == "choice" and value not in spec.choices:
        raise ValidationError(f"field {name!r} must be one of {', '.join(spec.choices)}; got {value!r}")
    if spec.required and not value.strip():
        raise ValidationError(f"field {name!r} cannot be empty")
    if len(value) > spec.max_length:
        raise ValidationError(f"field {name!r} is longer than {spec.max_length} characters")
    return value


def _to_json(value: Any) -> str:
    if isinstance(value, bytes):
        return json.dumps({"bytes": len(value)})  # history records that an image changed, not the image
    return json.dumps(value, ensure_ascii=False)


def _from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _same(a: Any, b: Any) -> bool:
    if a in (None, []) and b in (None, [], ""):
        return True
    return bool(a == b)


# ---------------------------------------------------------------- roles


def role_of(cur: duckdb.DuckDBPyConnection, user: str) -> str:
    """The user's role. Without configured users (no credentials file), everyone is an editor."""
    rows = cur.execute("SELECT count(*), max(CASE WHEN user_name = ? THEN role END) FROM app_users", [user]).fetchall()
    configured, role = rows[0]
    if not configured:
        return "editor"
    return role or "none"


def require_role(cur: duckdb.DuckDBPyConnection, user: str, needed: str) -> None:
    """Raise PermissionDenied unless `user` has at least the `needed` role."""
    if not user or not user.strip():
        raise PermissionDenied("give your name before editing personas")
    role = role_of(cur, user)
    if role not in ROLES or ROLES.index(role) < ROLES.index(needed):
        raise PermissionDenied(f"{user} has the role {role!r}; this needs {needed!r}")


# ---------------------------------------------------------------- create and read

_COLUMNS = ", ".join(PERSONA_FIELDS)
_META = "persona_id, version, updated_at, updated_by, last_validated_at, source_run_id, source_clusters, evidence, deleted_at"


def create_persona(
    cur: duckdb.DuckDBPyConnection,
    fields: Mapping[str, Any],
    user: str,
    *,
    members: Iterable[int] | None = None,
    run_id: int | None = None,
    source_clusters: Iterable[int] | None = None,
    evidence: Mapping[str, Any] | None = None,
    centroid: Any = None,
    cubes: bool = True,
) -> int:
    """Insert a persona (version 1) with its members; returns the new persona_id.

    Each non-empty initial field gets a history row at version 1, so any version can be
    rebuilt from history alone. `cubes`: write the persona's explorer cubes with its
    members (see set_members).
    """
    require_role(cur, user, "editor")
    values = {"kind": "secondary", "status": "draft", **fields}
    clean = {k: normalise_value(k, v) for k, v in values.items()}
    if "name" not in clean:
        raise ValidationError("a persona needs a name")
    names = list(clean)
    with transaction(cur):
        persona_id = cur.execute(
            f"INSERT INTO personas ({', '.join(names)}, source_run_id, source_clusters, evidence, centroid, updated_by)"  # noqa: S608 - names validated against PERSONA_FIELDS
            f" VALUES ({', '.join('?' for _ in names)}, ?, ?, ?, ?, ?) RETURNING persona_id",
            [*clean.values(), run_id, list(source_clusters or []),
             json.dumps(evidence or {}, ensure_ascii=False, default=str),
             None if centroid is None else json.dumps(centroid), user],
        ).fetchall()[0][0]
        now = datetime.now()
        cur.executemany(
            "INSERT INTO persona_history (persona_id, version, changed_at, changed_by, field, old_value, new_value)"
            " VALUES (?, 1, ?, ?, ?, NULL, ?)",
            [(persona_id, now, user, k, _to_json(v)) for k, v in clean.items() if v not in (None, [], "")],
        )
        if members is not None:
            set_members(cur, persona_id, members, run_id, cubes=cubes)
    return int(persona_id)


def set_members(
    cur: duckdb.DuckDBPyConnection, persona_id: int, customer_ids: Iterable[int], run_id: int | None,
    cubes: bool = True,
) -> int:
    """Replace a persona's members, and its explorer cubes with them (unless `cubes` is
    False: its old cubes are dropped, and the caller writes the new ones with
    explore.write_persona_cubes, several personas at once being cheaper). Call inside the
    caller's transaction when it has one."""
    # Imported here: explore reads the features, whose module imports more of the engine.
    from persona_engine.explore import write_persona_cubes

    cur.execute("DELETE FROM persona_members WHERE persona_id = ?", [persona_id])
    frame = pd.DataFrame({"customer_id": pd.Series(list(customer_ids), dtype="int64")})
    cur.register("new_members", frame)
    cur.execute(
        "INSERT INTO persona_members (persona_id, customer_id, run_id) SELECT ?, customer_id, ? FROM new_members",
        [persona_id, run_id],
    )
    cur.unregister("new_members")
    write_persona_cubes(cur, [persona_id], members=cubes)
    return len(frame)


def get_persona(cur: duckdb.DuckDBPyConnection, persona_id: int, include_deleted: bool = False) -> Persona:
    """One persona with every field; NotFoundError when it does not exist (or is deleted)."""
    rows = cur.execute(
        f"SELECT {_META}, {_COLUMNS} FROM personas WHERE persona_id = ?",  # noqa: S608 - constant column lists
        [persona_id],
    ).fetchall()
    if not rows or (rows[0][8] is not None and not include_deleted):
        raise NotFoundError(f"persona {persona_id} does not exist")
    row = rows[0]
    values = dict(zip(PERSONA_FIELDS, row[9:], strict=True))
    for name in LIST_FIELDS:
        values[name] = list(values[name] or [])
    return Persona(
        persona_id=row[0], version=row[1], updated_at=row[2], updated_by=row[3], last_validated_at=row[4],
        source_run_id=row[5], source_clusters=list(row[6] or []), evidence=_from_json(row[7]) or {},
        deleted_at=row[8], fields=values,
    )


def list_personas(cur: duckdb.DuckDBPyConnection, include_deleted: bool = False) -> pd.DataFrame:
    """Personas with member counts: persona_id, name, nickname, kind, status, avatar, quote,
    version, updated_at, updated_by, last_validated_at, source_run_id, members, deleted_at."""
    return fetch_df(
        cur,
        """
        SELECT p.persona_id, p.name, p.nickname, p.kind, p.status, p.avatar, p.quote, p.version,
               p.updated_at, p.updated_by, p.last_validated_at, p.source_run_id,
               coalesce(m.members, 0) AS members, p.deleted_at
        FROM personas p
        LEFT JOIN (SELECT persona_id, count(*) AS members FROM persona_members GROUP BY 1) m USING (persona_id)
        WHERE ? OR p.deleted_at IS NULL
        ORDER BY CASE p.kind WHEN 'primary' THEN 0 WHEN 'secondary' THEN 1 ELSE 2 END, p.persona_id
        """,
        [include_deleted],
    )


def current_version(cur: duckdb.DuckDBPyConnection, persona_id: int) -> tuple[int, str | None, datetime | None]:
    """(version, updated_by, updated_at): the cheap check a live view polls."""
    rows = cur.execute(
        "SELECT version, updated_by, updated_at FROM personas WHERE persona_id = ?", [persona_id]
    ).fetchall()
    if not rows:
        raise NotFoundError(f"persona {persona_id} does not exist")
    return rows[0][0], rows[0][1], rows[0][2]


# ---------------------------------------------------------------- save with merge


def save_persona(
    cursor: duckdb.DuckDBPyConnection,
    persona_id: int,
    changes: dict[str, object],
    base_version: int,
    user: str,
) -> SaveResult:
    """Apply `changes` (only the fields this user changed since `base_version`), merging.

    - A field nobody else changed since `base_version` is written; fields others changed
      meanwhile keep their values.
    - A field someone else changed since `base_version` to a value different from this
      user's is not written: it comes back in `conflicts` with both values.
    - Writes happen in one transaction; concurrent saves that collide in DuckDB are rolled
      back and retried, so the merge is atomic.
    Unknown fields, wrong types or a viewer's save raise before anything changes.
    """
    require_role(cursor, user, "editor")
    clean = {name: normalise_value(name, value) for name, value in changes.items()}
    if base_version < 1:
        raise ValidationError("base_version starts at 1")
    for attempt in range(MAX_SAVE_ATTEMPTS):
        try:
            with _SAVE_LOCK:
                return _save_once(cursor, persona_id, clean, base_version, user)
        except duckdb.TransactionException:
            # Another save updated the row in the meantime: read again and merge again.
            time.sleep(random.uniform(0.001, 0.01) * (1 + attempt))
    raise ValidationError("the persona is being saved by many people at once; try again")


def _save_once(
    cur: duckdb.DuckDBPyConnection, persona_id: int, clean: dict[str, Any], base_version: int, user: str
) -> SaveResult:
    with transaction(cur):
        current = get_persona(cur, persona_id)
        if base_version > current.version:
            raise ValidationError(f"base version {base_version} is newer than the persona ({current.version})")
        later = cur.execute(
            """
            SELECT field, changed_by, changed_at FROM persona_history
            WHERE persona_id = ? AND version > ?
            QUALIFY row_number() OVER (PARTITION BY field ORDER BY version DESC) = 1
            """,
            [persona_id, base_version],
        ).fetchall()
        changed_since = {f: (by, at) for f, by, at in later}
        to_write: dict[str, Any] = {}
        conflicts: list[Conflict] = []
        for name, value in clean.items():
            stored = current.fields[name]
            if _same(stored, value):
                continue  # nothing to do: already this value (perhaps someone typed the same)
            if name in changed_since:
                by, at = changed_since[name]
                conflicts.append(Conflict(name, stored, value, by, at))
            else:
                to_write[name] = value
        if not to_write:
            return SaveResult(ok=not conflicts, version=current.version, conflicts=tuple(conflicts))
        new_version = current.version + 1
        now = datetime.now()
        assignments = ", ".join(f"{name} = ?" for name in to_write)
        updated = cur.execute(
            f"UPDATE personas SET {assignments}, version = ?, updated_at = ?, updated_by = ?"  # noqa: S608 - names validated
            " WHERE persona_id = ? AND version = ?",
            [*to_write.values(), new_version, now, user, persona_id, current.version],
        ).fetchall()
        if updated and updated[0][0] != 1:
            raise duckdb.TransactionException("version moved during save")
        cur.executemany(
            "INSERT INTO persona_history (persona_id, version, changed_at, changed_by, field, old_value, new_value)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(persona_id, new_version, now, user, name, _to_json(current.fields[name]), _to_json(value))
             for name, value in to_write.items()],
        )
    return SaveResult(ok=not conflicts, version=new_version, applied=tuple(to_write), conflicts=tuple(conflicts))


# ---------------------------------------------------------------- history and restore


def persona_history(cur: duckdb.DuckDBPyConnection, persona_id: int) -> pd.DataFrame:
    """Timeline, newest first: version, changed_at, changed_by, field, old_value, new_value (decoded)."""
    frame = fetch_df(
        cur,
        "SELECT version, changed_at, changed_by, field, old_value, new_value FROM persona_history"
        " WHERE persona_id = ? ORDER BY version DESC, field",
        [persona_id],
    )
    for column in ("old_value", "new_value"):
        frame[column] = [_from_json(v) if isinstance(v, str) else None for v in frame[column]]
    return frame


def fields_at_version(cur: duckdb.DuckDBPyConnection, persona_id: int, version: int) -> dict[str, Any]:
    """Every field's value as it was right after `version` was saved (rebuilt from history)."""
    rows = cur.execute(
        """
        SELECT field, new_value FROM persona_history
        WHERE persona_id = ? AND version <= ?
        QUALIFY row_number() OVER (PARTITION BY field ORDER BY version DESC) = 1
        """,
        [persona_id, version],
    ).fetchall()
    if not rows:
        raise NotFoundError(f"persona {persona_id} has no version {version}")
    values: dict[str, Any] = {name: ([] if spec.kind == "list" else None) for name, spec in PERSONA_FIELDS.items()}
    for name, raw in rows:
        if name in values and PERSONA_FIELDS[name].kind != "image":
            values[name] = _from_json(raw)
    return values


def restore_version(cur: duckdb.DuckDBPyConnection, persona_id: int, version: int, user: str) -> SaveResult:
    """Bring back the fields of an earlier version, as a new save on top of the current one.

    Images are not versioned in history (only their size is) and stay as they are.
    """
    current = get_persona(cur, persona_id)
    old = fields_at_version(cur, persona_id, version)
    changes = {
        name: value for name, value in old.items()
        if PERSONA_FIELDS[name].kind != "image" and not _same(current.fields[name], value)
        and not (PERSONA_FIELDS[name].required and value in (None, ""))
    }
    return save_persona(cur, persona_id, changes, current.version, user)


def mark_validated(cur: duckdb.DuckDBPyConnection, persona_id: int, user: str) -> None:
    """Record that the team checked the persona against real customers today."""
    require_role(cur, user, "editor")
    get_persona(cur, persona_id)
    cur.execute("UPDATE personas SET last_validated_at = ? WHERE persona_id = ?", [datetime.now(), persona_id])


def delete_persona(cur: duckdb.DuckDBPyConnection, persona_id: int, user: str) -> None:
    """Soft-delete (admins only): hidden everywhere, restorable with `undelete_persona`."""
    require_role(cur, user, "admin")
    get_persona(cur, persona_id)
    cur.execute("UPDATE personas SET deleted_at = ?, updated_by = ? WHERE persona_id = ?",
                [datetime.now(), user, persona_id])


def undelete_persona(cur: duckdb.DuckDBPyConnection, persona_id: int, user: str) -> None:
    require_role(cur, user, "admin")
    get_persona(cur, persona_id, include_deleted=True)
    cur.execute("UPDATE personas SET deleted_at = NULL, updated_by = ? WHERE persona_id = ?", [user, persona_id])
