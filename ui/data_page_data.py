"""Data page: cached reads (quality, imports, erasures, file previews) and this browser
session's uploads folder.

Uploads are written to a folder of their own per browser session, under their original
names (the import report and the mapping name files by them), and only when a file is new:
Streamlit hands the page every uploaded file again on every rerun.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
from streamlit.runtime.uploaded_file_manager import UploadedFile

from persona_engine.ingest import (
    DataQuality,
    data_quality,
    list_erasures,
    list_imports,
    preview_file,
)
from persona_engine.safe_text import plain_markdown
from ui import data
from ui.i18n import t

UPLOAD_ROOT = Path(tempfile.gettempdir()) / "persona_studio_uploads"
# Upload folders of sessions gone for this long are removed when a new session uploads.
STALE_UPLOADS_S = 24 * 3600
# What the importer reads (see persona_engine.ingest.sources); the browser filters on it.
ACCEPTED_SUFFIXES = ["csv", "tsv", "txt", "gz", "parquet", "pq", "xlsx", "xlsm"]
PREVIEW_ROWS = 20
CONSENT_CODES = ("all", "none", "sample")


@dataclass(frozen=True)
class SavedFile:
    """An uploaded file written to disk: its original name, where it is, its upload id."""

    name: str
    path: Path
    file_id: str


class HeldProgress:
    """Draw a long write's progress on a bar without letting the page interrupt the write.

    Streamlit stops or reruns a script at its next st.* call when the browser goes away or
    the user clicks elsewhere. Inside an import or a generation that would abandon the
    work halfway (a generation wipes its partial shop, features stay uncomputed), so such
    a request is held here and raised by `release()` once the write is complete.
    """

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.held: ScriptControlException | None = None

    def show(self, share: float, text: Callable[[], str]) -> None:
        """Move the bar; `text` is called here, since reading the session's language is a
        point where Streamlit stops a script too."""
        if self.held is not None:
            return
        try:
            self.bar.progress(min(max(share, 0.0), 1.0), text=text())
        except ScriptControlException as e:
            self.held = e

    def release(self) -> None:
        if self.held is not None:
            raise self.held


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def quality(version: str) -> DataQuality:
    return data_quality(data.cursor())


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def imports(version: str) -> pd.DataFrame:
    """import_id, started_at, finished_at, preset, files, consent, rows_read, status."""
    return list_imports(data.cursor())


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False)
def erasures(version: str) -> pd.DataFrame:
    """erased_at, erased_by, rows_removed, tables (no customer id, no personal data)."""
    return list_erasures(data.cursor())


@st.cache_data(ttl=data.CACHE_TTL, show_spinner=False, max_entries=64)
def preview(path: str, file_id: str) -> pd.DataFrame:
    """The header and first rows of a saved upload, as text (attrs: kind, encoding, delimiter).

    Keyed by the upload id: a new upload under the same name is read again.
    """
    return preview_file(path, n=PREVIEW_ROWS)


def missing_data() -> list[str]:
    """What the imported shop lacks (codes written by the importer), [] for the sample."""
    try:
        codes = json.loads(data.setting("missing_data") or "[]")
    except json.JSONDecodeError:
        return []
    return [str(c) for c in codes] if isinstance(codes, list) else []


def consent_text(consent: str | None, markdown: bool = True) -> str | None:
    """The shop's consent declaration in words (shop_settings 'consent'), None if unknown.

    markdown: the column name (from the user's file) escaped for st.markdown/st.caption;
    False for a table cell, which shows text as it is.
    """
    if not consent:
        return None
    if consent.startswith("column:"):
        column = consent[len("column:"):]
        return t("data.consent_sidebar.column", column=plain_markdown(column) if markdown else column)
    return t(f"data.consent_sidebar.{consent}") if consent in CONSENT_CODES else None


def _safe_name(name: str) -> str:
    # Browsers send a bare name, but a folder upload may carry a relative path: keep the
    # last part only, so nothing is written outside the session's folder.
    base = Path(name.replace("\\", "/")).name
    return base if base not in ("", ".", "..") else "upload"


def _session_folder() -> Path:
    folder = st.session_state.get("data_upload_dir")
    if folder and Path(folder).is_dir():
        return Path(folder)
    UPLOAD_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in UPLOAD_ROOT.iterdir():
        if old.is_dir() and now - old.stat().st_mtime > STALE_UPLOADS_S:
            shutil.rmtree(old, ignore_errors=True)
    path = UPLOAD_ROOT / uuid.uuid4().hex
    path.mkdir()
    st.session_state["data_upload_dir"] = str(path)
    return path


def save_uploads(files: list[UploadedFile]) -> list[SavedFile]:
    """Write new uploads to this session's folder, drop removed ones; the files in order.

    Each file keeps its original name; a second file of the same name goes in a numbered
    sub-folder, so both keep their names.
    """
    folder = _session_folder()
    saved: dict[str, str] = st.session_state.setdefault("data_saved_files", {})
    current = {f.file_id for f in files}
    for file_id in [k for k in saved if k not in current]:
        Path(saved.pop(file_id)).unlink(missing_ok=True)
    result: list[SavedFile] = []
    for upload in files:
        name = _safe_name(upload.name)
        if upload.file_id not in saved:
            target = folder / name
            n = 1
            while target.exists():
                n += 1
                target = folder / str(n) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upload.getbuffer())
            saved[upload.file_id] = str(target)
        result.append(SavedFile(name, Path(saved[upload.file_id]), upload.file_id))
    return result
