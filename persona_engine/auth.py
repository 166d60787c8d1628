"""Who may sign in and with which role: a TOML credentials file, bcrypt hashes, login check.

The credentials file is the single source of truth. At start-up (and whenever the file
changes) the app copies it into the `app_users` table, which `personas.role_of` reads to
enforce roles. No file, or a file without users, means no login: everyone who gives a
display name is an editor.

File format (documented in the README):

    [users.alice]
    display_name = "Alice Martin"
    role = "admin"                     # viewer | editor | admin
    password_hash = "$2b$12$..."       # bcrypt; `python -m persona_engine users add` writes it

Plain passwords are refused: only salted bcrypt hashes are stored anywhere.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import duckdb

from persona_engine.errors import ValidationError
from persona_engine.personas import ROLES
from persona_engine.store import fetch_df, fetch_value, transaction

USERS_FILE_ENV = "PERSONA_STUDIO_USERS"
DEFAULT_FILE_NAME = "users.toml"
BCRYPT_ROUNDS = 12
MAX_NAME_LENGTH = 80
# bcrypt reads at most 72 bytes of a password; longer ones would be silently cut.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_LENGTH = 8
# Checked against when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=4)).decode()


@dataclass(frozen=True)
class UserRecord:
    """One person of the credentials file (and of the app_users table)."""

    user_name: str
    display_name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class SignedIn:
    """A successful login: the name the engine sees, the name people see, the role."""

    user_name: str
    display_name: str
    role: str


# ---------------------------------------------------------------- passwords


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """A salted bcrypt hash of `password` (the salt is inside the hash)."""
    check_password_strength(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def check_password_strength(password: str) -> None:
    """ValidationError for a password bcrypt cannot keep whole or that is too short to be one."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes, which bcrypt would cut; use a shorter one")


def verify_password(password: str, password_hash: str) -> bool:
    """True when `password` matches the bcrypt hash; False for a wrong password or a broken hash."""
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except (ValueError, UnicodeError):
        return False


def _is_bcrypt_hash(text: str) -> bool:
    return len(text) == 60 and text[:4] in ("$2a$", "$2b$", "$2y$")


# ---------------------------------------------------------------- the credentials file


def credentials_path(db_path: str | Path) -> Path:
    """Where the credentials file is: $PERSONA_STUDIO_USERS, else users.toml beside the database."""
    configured = os.environ.get(USERS_FILE_ENV)
    if configured:
        return Path(configured)
    return Path(db_path).resolve().parent / DEFAULT_FILE_NAME


def _clean_user_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise ValidationError("a user name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in cleaned):
        raise ValidationError(f"user name {cleaned!r}: use up to {MAX_NAME_LENGTH} characters without spaces")
    return cleaned


def _record(user_name: str, entry: object, path: Path) -> UserRecord:
    where = f"{path.name}, user {user_name!r}"
    if not isinstance(entry, dict):
        raise ValidationError(f"{where}: expected a table with role and password_hash")
    if "password" in entry:
        raise ValidationError(
            f"{where}: plain passwords are not accepted; replace `password` with a `password_hash` "
            "written by `python -m persona_engine users add`"
        )
    unknown = set(entry) - {"display_name", "role", "password_hash"}
    if unknown:
        raise ValidationError(f"{where}: unknown keys {', '.join(sorted(unknown))}; allowed: display_name, role, password_hash")
    role = entry.get("role")
    if role not in ROLES:
        raise ValidationError(f"{where}: role must be one of {', '.join(ROLES)}; got {role!r}")
    digest = entry.get("password_hash")
    if not isinstance(digest, str) or not _is_bcrypt_hash(digest):
        raise ValidationError(f"{where}: password_hash must be a bcrypt hash ($2b$...), as `users add` writes it")
    display = entry.get("display_name") or user_name
    if not isinstance(display, str):
        raise ValidationError(f"{where}: display_name must be text")
    return UserRecord(_clean_user_name(user_name), display.strip() or user_name, role, digest)


def load_credentials(path: str | Path) -> list[UserRecord]:
    """The users of a credentials file; [] when the file does not exist.

    Raises ValidationError (naming the file and user) for bad TOML, plain passwords, unknown
    roles or keys, or a hash that is not bcrypt.
    """
    file = Path(path)
    if not file.exists():
        return []
    try:
        content = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValidationError(f"{file.name} is not valid TOML: {e}") from e
    users = content.get("users", {})
    if not isinstance(users, dict):
        raise ValidationError(f"{file.name}: [users] must be a table of [users.<name>] entries")
    return [_record(name, entry, file) for name, entry in users.items()]


def _toml_string(text: str) -> str:
    # A JSON string (ASCII, \uXXXX escapes) is a valid TOML basic string.
    return json.dumps(text, ensure_ascii=True)


def save_credentials(path: str | Path, users: list[UserRecord]) -> None:
    """Write the credentials file (atomically, readable by its owner only)."""
    file = Path(path)
    lines = [
        "# Persona Studio users. Roles: viewer (read only), editor, admin (may delete and restore).",
        "# Passwords are stored only as salted bcrypt hashes: add people with",
        "#   python -m persona_engine users add --db PATH --name NAME --role editor",
        "",
    ]
    for user in sorted(users, key=lambda u: u.user_name):
        lines += [
            f"[users.{_toml_string(user.user_name)}]",
            f"display_name = {_toml_string(user.display_name)}",
            f"role = {_toml_string(user.role)}",
            f"password_hash = {_toml_string(user.password_hash)}",
            "",
        ]
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(file)


def add_user(
    path: str | Path, user_name: str, password: str, role: str, display_name: str | None = None,
    rounds: int = BCRYPT_ROUNDS,
) -> UserRecord:
    """Add a person to the credentials file, or replace their entry (new password, role, name)."""
    name = _clean_user_name(user_name)
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    record = UserRecord(name, (display_name or "").strip() or name, role, hash_password(password, rounds))
    others = [u for u in load_credentials(path) if u.user_name != name]
    save_credentials(path, [*others, record])
    return record


def remove_user(path: str | Path, user_name: str) -> None:
    """Take a person out of the credentials file; ValidationError when they are not in it."""
    users = load_credentials(path)
    kept = [u for u in users if u.user_name != user_name]
    if len(kept) == len(users):
        raise ValidationError(f"{user_name!r} is not in {Path(path).name}")
    save_credentials(path, kept)


# ---------------------------------------------------------------- the database side


def sync_users(cur: duckdb.DuckDBPyConnection, users: list[UserRecord]) -> int:
    """Make app_users hold exactly `users` (one transaction); returns how many there are."""
    with transaction(cur):
        cur.execute("DELETE FROM app_users")
        if users:
            cur.executemany(
                "INSERT INTO app_users (user_name, display_name, role, password_hash) VALUES (?, ?, ?, ?)",
                [(u.user_name, u.display_name, u.role, u.password_hash) for u in users],
            )
    return len(users)


def sync_credentials_file(cur: duckdb.DuckDBPyConnection, path: str | Path) -> int:
    """Copy the credentials file into app_users. A missing file empties the table (no login)."""
    return sync_users(cur, load_credentials(path))


def login_required(cur: duckdb.DuckDBPyConnection) -> bool:
    """True when a credentials file with at least one user is in force."""
    return bool(fetch_value(cur, "SELECT count(*) FROM app_users"))


def authenticate(cur: duckdb.DuckDBPyConnection, user_name: str, password: str) -> SignedIn | None:
    """The signed-in person when name and password match app_users, else None.

    An unknown name costs a bcrypt check too, so timing does not reveal who has an account.
    """
    rows = cur.execute(
        "SELECT user_name, display_name, role, password_hash FROM app_users WHERE user_name = ?",
        [(user_name or "").strip()],
    ).fetchall()
    if not rows:
        verify_password(password or "", _DUMMY_HASH)
        return None
    name, display, role, digest = rows[0]
    if not verify_password(password or "", digest):
        return None
    return SignedIn(name, display or name, role)


def list_users(cur: duckdb.DuckDBPyConnection) -> list[SignedIn]:
    """People in app_users (never their hashes), by user name."""
    frame = fetch_df(cur, "SELECT user_name, coalesce(display_name, user_name) AS display_name, role FROM app_users ORDER BY 1")
    return [SignedIn(r.user_name, r.display_name, r.role) for r in frame.itertuples(index=False)]
