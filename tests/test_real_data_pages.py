"""Every page of ui.shell.PAGES on the real UCI Online Retail shop (../shared/data).

The shop is imported once with the online-retail preset. It has no sessions and no
demographics, so pages must say so in words ("not available: no session data"), never
show a zero. The test is parametrised over PAGES: a page registered later is covered
without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from persona_engine import auth
from persona_engine.ingest import import_files
from persona_engine.store import open_store
from tests.conftest import SHARED_DATA, open_page
from ui.i18n import t
from ui.shell import PAGES

DATA = SHARED_DATA / "online_retail.csv"

pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="../shared/data is not on this machine")

# Metric labels whose figure needs sessions or demographics (lower case, matched as words).
NEEDS_SESSIONS = re.compile(r"\b(conversion|session|sessions|abandon\w*|pages per|bounce)\b")
NEEDS_DEMOGRAPHICS = re.compile(r"\b(age|gender|income|marital|occupation|education)\b")
ZERO = re.compile(r"^[^\d]*0+([.,]0+)?\s*%?$")

# What a page must say in words on this shop, beyond the checks every page gets.
MUST_SAY: dict[str, list[str]] = {
    "overview": [t("common.no_session_data", lang="en")],
    "data": [t("data.missing.sessions", lang="en"), t("data.missing.demographics", lang="en")],
    # Its default view: the demographic charts, each replaced by this sentence.
    "explorer": [t("explorer.reason.field_missing", lang="en")],
}


@pytest.fixture(scope="session")
def real_shop_db(tmp_path_factory) -> Path:
    """online_retail.csv imported with the online-retail preset, customer features computed."""
    path = tmp_path_factory.mktemp("real_shop") / "online_retail.duckdb"
    store = open_store(path)
    import_files(store.cursor(), [DATA], "online-retail")
    store.close()
    return path


@pytest.fixture
def real_shop(real_shop_db, tmp_path, monkeypatch) -> Iterator[Path]:
    monkeypatch.setenv("PERSONA_STUDIO_DB", str(real_shop_db))
    monkeypatch.setenv(auth.USERS_FILE_ENV, str(tmp_path / "users.toml"))  # no sign-in
    yield real_shop_db


def _all_text(at: AppTest) -> list[str]:
    kinds = ("title", "header", "subheader", "caption", "markdown", "info", "warning", "success", "text")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def test_the_real_shop_has_no_sessions_and_no_demographics(real_shop_db):
    # What the pages below must be honest about: 0 session rows, no customer with an age,
    # a gender or an income, and the importer's list of what is missing says so.
    cur = open_store(real_shop_db, read_only=False).cursor()
    assert cur.execute("SELECT count(*) FROM sessions").fetchall() == [(0,)]
    assert cur.execute("SELECT count(age) + count(gender) + count(income) FROM customers").fetchall() == [(0,)]
    missing = cur.execute("SELECT value FROM shop_settings WHERE key = 'missing_data'").fetchall()[0][0]
    assert "sessions" in missing and "demographics" in missing


@pytest.mark.parametrize("spec", PAGES, ids=[p.key for p in PAGES])
def test_every_page_runs_on_the_real_shop_and_says_what_it_cannot_tell(real_shop, spec):
    at = open_page(f"pages/{spec.file}", timeout=120, display_name="Real data check")
    assert not at.exception, f"{spec.file}: {at.exception}"
    # A guarded engine error shows as st.error: on a valid imported shop none is expected.
    assert [e.value for e in at.error] == [], spec.file
    for m in at.metric:
        label = m.label.lower()
        if NEEDS_SESSIONS.search(label) or NEEDS_DEMOGRAPHICS.search(label):
            assert not ZERO.match(str(m.value)), f"{spec.file}: '{m.label}' shows {m.value!r} for data the shop lacks"
    text = "\n".join(_all_text(at) + [str(m.value) for m in at.metric])
    for sentence in MUST_SAY.get(spec.key, []):
        assert sentence in text, f"{spec.file} does not say {sentence!r}"
