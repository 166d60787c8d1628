"""Credentials file (TOML, bcrypt hashes only), sync into app_users, login check, roles, CLI."""

from __future__ import annotations

import io

import pytest

from persona_engine import auth
from persona_engine.cli import main
from persona_engine.errors import PermissionDenied, ValidationError
from persona_engine.personas import create_persona, delete_persona, role_of, save_persona
from persona_engine.store import open_store

FAST = 4  # bcrypt rounds in tests: same format, a fraction of the time


def test_hash_is_salted_bcrypt_and_verifies():
    first, second = auth.hash_password("correct horse", FAST), auth.hash_password("correct horse", FAST)
    assert first.startswith("$2b$04$") and len(first) == 60
    assert first != second  # a new salt each time
    assert auth.verify_password("correct horse", first)
    assert not auth.verify_password("correct horsE", first)
    assert not auth.verify_password("anything", "not a hash")


@pytest.mark.parametrize(("password", "message"), [("short", "at least 8"), ("é" * 37, "longer than 72 bytes")])
def test_weak_or_too_long_passwords_are_refused(password, message):
    with pytest.raises(ValidationError, match=message):
        auth.hash_password(password, FAST)


def test_file_round_trip_never_holds_the_password(tmp_path):
    path = tmp_path / "users.toml"
    auth.add_user(path, "alice", "s3cret-pass", "admin", "Alice Martin", rounds=FAST)
    auth.add_user(path, "bob", "another-pass", "viewer", 'Bob "Le" Bricoleur', rounds=FAST)
    auth.add_user(path, "alice", "new-pass-123", "editor", rounds=FAST)  # replaces alice's entry
    text = path.read_text()
    assert "s3cret-pass" not in text and "another-pass" not in text and "new-pass-123" not in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    users = {u.user_name: u for u in auth.load_credentials(path)}
    assert sorted(users) == ["alice", "bob"]
    assert users["alice"].role == "editor" and users["alice"].display_name == "alice"
    assert users["bob"].display_name == 'Bob "Le" Bricoleur'
    assert auth.verify_password("new-pass-123", users["alice"].password_hash)
    auth.remove_user(path, "bob")
    assert [u.user_name for u in auth.load_credentials(path)] == ["alice"]
    with pytest.raises(ValidationError, match="not in users.toml"):
        auth.remove_user(path, "bob")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[users.alice]\nrole = "editor"\npassword = "plain"\n', "plain passwords are not accepted"),
        ('[users.alice]\nrole = "owner"\npassword_hash = "$2b$..."\n', "role must be one of viewer, editor, admin"),
        ('[users.alice]\nrole = "editor"\npassword_hash = "md5:abc"\n', "must be a bcrypt hash"),
        ('[users.alice]\nrole = "editor"\nemail = "a@b"\n', "unknown keys email"),
        ("[users\n", "not valid TOML"),
        ('users = "alice"\n', "must be a table"),
    ],
)
def test_bad_credentials_files_are_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "users.toml"
    path.write_text(content)
    with pytest.raises(ValidationError, match=message):
        auth.load_credentials(path)


def test_missing_file_means_no_users(tmp_path):
    assert auth.load_credentials(tmp_path / "none.toml") == []


def test_credentials_path_defaults_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.USERS_FILE_ENV, raising=False)
    assert auth.credentials_path(tmp_path / "shop.duckdb") == tmp_path / "users.toml"
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "elsewhere.toml"))
    assert auth.credentials_path(tmp_path / "shop.duckdb") == tmp_path / "elsewhere.toml"


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users.toml"
    auth.add_user(path, "vera", "viewer-pass", "viewer", "Vera V.", rounds=FAST)
    auth.add_user(path, "eddie", "editor-pass", "editor", "Eddie E.", rounds=FAST)
    auth.add_user(path, "ada", "admin-pass-1", "admin", "Ada A.", rounds=FAST)
    return path


def test_sync_login_and_roles(cur, users_file):
    persona = create_persona(cur, {"name": "Fred"}, "someone")  # no users yet: everyone edits
    assert not auth.login_required(cur)
    assert auth.sync_credentials_file(cur, users_file) == 3
    assert auth.login_required(cur)
    assert auth.authenticate(cur, "eddie", "editor-pass") == auth.SignedIn("eddie", "Eddie E.", "editor")
    assert auth.authenticate(cur, " eddie ", "editor-pass") is not None  # stray blanks around the name
    assert auth.authenticate(cur, "eddie", "wrong-pass") is None
    assert auth.authenticate(cur, "nobody", "editor-pass") is None
    assert [u.user_name for u in auth.list_users(cur)] == ["ada", "eddie", "vera"]
    # Roles are enforced by the engine, not only by the page.
    assert role_of(cur, "vera") == "viewer"
    with pytest.raises(PermissionDenied, match="viewer"):
        save_persona(cur, persona, {"quote": "viewer edit"}, 1, "vera")
    with pytest.raises(PermissionDenied, match="'none'"):
        save_persona(cur, persona, {"quote": "stranger edit"}, 1, "someone")
    assert save_persona(cur, persona, {"quote": "ok"}, 1, "eddie").ok
    with pytest.raises(PermissionDenied, match="admin"):
        delete_persona(cur, persona, "eddie")
    delete_persona(cur, persona, "ada")
    # A removed file empties app_users: no login again.
    users_file.unlink()
    assert auth.sync_credentials_file(cur, users_file) == 0 and not auth.login_required(cur)


def test_cli_users_add_writes_the_file_and_the_database(tmp_path, monkeypatch, capsys):
    db = tmp_path / "shop.duckdb"
    open_store(db).close()
    monkeypatch.delenv(auth.USERS_FILE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    code = main(["users", "add", "--db", str(db), "--name", "alice", "--role", "admin",
                 "--display-name", "Alice M.", "--password-stdin"])
    assert code == 0
    assert "alice (Alice M.) is admin" in capsys.readouterr().out
    assert "a-long-password" not in (tmp_path / "users.toml").read_text()
    s = open_store(db)
    assert auth.authenticate(s.cursor(), "alice", "a-long-password").role == "admin"
    s.close()
    assert main(["users", "list", "--db", str(db)]) == 0
    assert capsys.readouterr().out == "alice\tadmin\tAlice M.\n"
    assert main(["users", "remove", "--db", str(db)]) == 1
    assert capsys.readouterr().err == "error: users remove needs --name\n"
    assert main(["users", "remove", "--db", str(db), "--name", "alice"]) == 0
    s = open_store(db)
    assert not auth.login_required(s.cursor())
    s.close()
