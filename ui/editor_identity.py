"""Who is at this browser: a display name, or a login when a credentials file is in force.

Without a credentials file, a person types the name colleagues will see (kept for the whole
session) and is an editor. With one, they sign in; their role is read again from app_users
on every run, so a changed file takes effect without signing out.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import streamlit as st

from persona_engine import auth
from persona_engine.errors import PersonaStudioError
from persona_engine.personas import ROLES, role_of
from persona_engine.safe_text import plain_markdown
from ui import data, editor_data
from ui.i18n import label, t

NAME_KEY = "display_name"  # the sidebar's name field (no login)
SIGNED_IN_KEY = "signed_in_user"  # user name after a successful login


@dataclass(frozen=True)
class Identity:
    user_name: str  # what history, comments and roles record
    display_name: str  # what colleagues see
    role: str  # viewer, editor or admin

    def can(self, needed: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(needed)


def _users_cursor() -> duckdb.DuckDBPyConnection:
    """The cursor, after copying a changed credentials file into app_users.

    Done here and not only in the sidebar, so the login gate never reads a stale table;
    a broken file keeps the previous users (the sidebar shows why).
    """
    try:
        editor_data.sync_users()
    except PersonaStudioError:
        pass
    return data.cursor()


def login_required() -> bool:
    return auth.login_required(_users_cursor())


def current_identity() -> Identity | None:
    """The person at this browser, or None until they gave a name (or signed in)."""
    cur = _users_cursor()
    if auth.login_required(cur):
        user = st.session_state.get(SIGNED_IN_KEY)
        if not user:
            return None
        role = role_of(cur, user)
        if role not in ROLES:  # removed from the file since signing in
            return None
        names = {u.user_name: u.display_name for u in auth.list_users(cur)}
        return Identity(user, names.get(user, user), role)
    name = " ".join(str(st.session_state.get(NAME_KEY) or "").split())
    return Identity(name, name, "editor") if name else None


def _sign_in() -> None:
    user = st.session_state.get("login_user", "")
    signed = auth.authenticate(data.cursor(), user, st.session_state.get("login_password", ""))
    st.session_state["login_password"] = ""  # never kept longer than the check
    if signed is None:
        st.session_state["login_failed"] = True
    else:
        st.session_state[SIGNED_IN_KEY] = signed.user_name
        st.session_state["login_failed"] = False


def _sign_out() -> None:
    st.session_state.pop(SIGNED_IN_KEY, None)


def sidebar_identity() -> None:
    """The sidebar block: sign-in form, or "signed in as", or the display-name field."""
    try:
        editor_data.sync_users()
    except PersonaStudioError as e:
        # A broken file keeps the previous users (sync writes nothing before the file is read).
        st.error(t("identity.file_error", error=str(e)))
    st.divider()
    if not login_required():
        st.text_input(t("identity.your_name"), key=NAME_KEY, max_chars=60, help=t("identity.your_name_help"),
                      placeholder=t("identity.your_name_placeholder"))
        st.caption(t("identity.no_login"))
        return
    who = current_identity()
    if who is not None:
        st.caption(t("identity.signed_in_as", name=plain_markdown(who.display_name), role=label("role", who.role)))
        st.button(t("identity.sign_out"), key="sign_out", on_click=_sign_out)
        return
    with st.form("login_form", clear_on_submit=False, border=False):
        st.text_input(t("identity.user"), key="login_user", max_chars=80)
        st.text_input(t("identity.password"), key="login_password", type="password")
        st.form_submit_button(t("identity.sign_in"), on_click=_sign_in, type="primary")
    if st.session_state.get("login_failed"):
        st.error(t("identity.login_failed"))
