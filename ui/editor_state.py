"""What one person's editor holds between reruns: base version, base values, conflicts, notices.

Pure Python (no Streamlit) so the rules that protect unsaved input are unit-tested:
- a field is "touched" when its widget value differs from the value at the base version;
- when someone else saves, untouched fields take the new value, touched ones are kept, and a
  touched field that the other person changed too becomes a conflict to resolve by hand;
- a save sends only touched fields without an open conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from persona_engine.collab import ChangeNotice
from persona_engine.personas import PERSONA_FIELDS, Persona

# Fields edited through widgets; the picture has its own upload action.
EDITABLE = tuple(name for name, spec in PERSONA_FIELDS.items() if spec.kind != "image" and name != "avatar_mime")
MAX_NOTICES = 5


@dataclass(frozen=True)
class OpenConflict:
    """Someone else saved `field` while this person had unsaved changes in it."""

    field: str
    theirs: Any
    changed_by: str | None
    changed_at: datetime | None


@dataclass
class EditorState:
    persona_id: int
    base_version: int
    base: dict[str, Any]  # stored value of each EDITABLE field at base_version
    conflicts: dict[str, OpenConflict] = field(default_factory=dict)
    notices: list[ChangeNotice] = field(default_factory=list)  # others' saves seen here, newest last
    last_beat: float = 0.0  # when presence was last written (time.monotonic)
    last_editing: bool = False

    @classmethod
    def open(cls, persona: Persona) -> EditorState:
        return cls(persona.persona_id, persona.version, {f: persona.fields[f] for f in EDITABLE})


# ---------------------------------------------------------------- widget <-> field values


def to_widget(name: str, value: Any) -> Any:
    """A stored value as its widget shows it: lists one item per line, empty texts as ""."""
    kind = PERSONA_FIELDS[name].kind
    if kind == "list":
        return "\n".join(value or [])
    if kind == "choice":
        return value
    return value or ""


def from_widget(name: str, value: Any) -> Any:
    """A widget's value as the field stores it (what save_persona receives)."""
    kind = PERSONA_FIELDS[name].kind
    if kind == "list":
        return [line.strip() for line in str(value or "").splitlines() if line.strip()]
    if kind == "choice":
        return value
    text = str(value or "")
    return text if text.strip() else None


def same(name: str, a: Any, b: Any) -> bool:
    """Equal as stored: "" and None, [] and None, trailing blanks in list items do not count."""
    x, y = from_widget(name, to_widget(name, a)), from_widget(name, to_widget(name, b))
    return bool(x == y)


def touched(state: EditorState, widgets: Mapping[str, Any]) -> list[str]:
    """Fields whose widget value differs from the value at the base version."""
    return [f for f in EDITABLE if f in widgets and not same(f, from_widget(f, widgets[f]), state.base[f])]


def pending_changes(state: EditorState, widgets: Mapping[str, Any]) -> dict[str, Any]:
    """What Save sends: touched fields, minus those with an open conflict (resolved one by one)."""
    return {f: from_widget(f, widgets[f]) for f in touched(state, widgets) if f not in state.conflicts}


# ---------------------------------------------------------------- others' saves


def _last_change(notices: list[ChangeNotice], name: str) -> tuple[str | None, datetime | None]:
    for notice in reversed(notices):
        if name in notice.fields:
            return notice.changed_by, notice.changed_at
    return None, None


def rebase(
    state: EditorState, persona: Persona, widgets: Mapping[str, Any], notices: list[ChangeNotice], me: str,
) -> dict[str, Any]:
    """Move the editor onto the persona's stored version; returns widget values to set.

    `notices` are the saves since the old base version (collab.changes_since). Untouched
    fields get the stored value; a touched field someone else changed to another value than
    this person's becomes an OpenConflict; a conflict disappears once both values agree.
    """
    updates: dict[str, Any] = {}
    for name in EDITABLE:
        stored, old = persona.fields[name], state.base[name]
        mine = from_widget(name, widgets[name]) if name in widgets else old
        if not same(name, stored, old):
            if same(name, mine, old):
                updates[name] = to_widget(name, stored)  # untouched here: show their value
            elif not same(name, mine, stored):
                by, at = _last_change(notices, name)
                state.conflicts[name] = OpenConflict(name, stored, by or persona.updated_by, at or persona.updated_at)
        if name in state.conflicts and same(name, mine, stored):
            del state.conflicts[name]  # typed the same, or took theirs
    others = [n for n in notices if n.changed_by != me]
    state.notices = (state.notices + others)[-MAX_NOTICES:]
    state.base = {f: persona.fields[f] for f in EDITABLE}
    state.base_version = persona.version
    return updates


def merge_suggestion(name: str, theirs: Any, mine: Any) -> str:
    """A starting point for merging by hand, in widget form.

    Lists: their items, then mine that they lack. Texts: theirs, a blank line, mine (the
    person edits it down before saving).
    """
    if PERSONA_FIELDS[name].kind == "list":
        items = list(theirs or [])
        items += [item for item in (mine or []) if item not in items]
        return "\n".join(items)
    parts = [str(v) for v in (theirs, mine) if v]
    return "\n\n".join(dict.fromkeys(parts))
