"""Data page, import tab: files, preset, consent and column mapping; check, then import.

The check (`check_files`) writes nothing and shows what the import would do; soft problems
make the user choose between skipping the bad rows and stopping. The import button only
appears for a check of exactly the files and choices on screen.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from persona_engine.errors import ImportRejected, PersonaStudioError
from persona_engine.ingest import (
    GENERIC_LAYOUTS,
    PRESETS,
    ImportReport,
    ProgressCallback,
    check_files,
    guess_preset,
    import_files,
    propose_mapping,
)
from persona_engine.ingest.mapping import table_for_file
from persona_engine.safe_text import plain_markdown
from ui import data
from ui.data_page_data import ACCEPTED_SUFFIXES, HeldProgress, SavedFile, preview, save_uploads
from ui.data_page_view import render_report
from ui.i18n import t

NOT_IN_FILE = ""  # the mapping choice "this field is not in the file"
CHECK_KEY = "data_check_result"
DONE_KEY = "data_last_import"


@dataclass(frozen=True)
class ImportRequest:
    """Everything an import needs, as chosen on the page."""

    files: tuple[SavedFile, ...]
    preset: str
    consent: str
    pseudonymise: bool
    mapping_json: str | None  # the generic mapping, as JSON (hashable)

    @property
    def mapping(self) -> list[dict[str, Any]] | None:
        return json.loads(self.mapping_json) if self.mapping_json else None

    @property
    def paths(self) -> list[str]:
        return [str(f.path) for f in self.files]

    def signature(self) -> str:
        """Same files and choices, same signature: a check stays valid for them only."""
        parts = [f.file_id for f in self.files] + [self.preset, self.consent, str(self.pseudonymise),
                                                   self.mapping_json or ""]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _previews(files: list[SavedFile]) -> dict[str, pd.DataFrame]:
    """Each file's first rows (a file that cannot be read shows its one-line reason)."""
    frames: dict[str, pd.DataFrame] = {}
    for f in files:
        try:
            frames[f.file_id] = preview(str(f.path), f.file_id)
        except PersonaStudioError as e:
            st.error(t("data.unreadable", file=plain_markdown(f.name), message=str(e)))
    return frames


def _default_preset(files: list[SavedFile], frames: dict[str, pd.DataFrame]) -> None:
    # A new set of files: propose the preset their header fits (before the widget exists).
    ids = tuple(f.file_id for f in files)
    if st.session_state.get("data_preset_guessed_for") != ids and files and files[0].file_id in frames:
        st.session_state["data_preset"] = guess_preset(list(frames[files[0].file_id].columns))
        st.session_state["data_preset_guessed_for"] = ids


def _consent(frames: dict[str, pd.DataFrame]) -> str | None:
    choice = st.radio(t("data.consent"), ["all", "none", "column"], key="data_consent", horizontal=True,
                      format_func=lambda c: t(f"data.consent_choice.{c}"), help=t("data.consent_help"))
    if choice != "column":
        return str(choice)
    columns = list(dict.fromkeys(c for frame in frames.values() for c in frame.columns))
    if not columns:
        st.info(t("data.consent_no_columns"))
        return None
    column = st.selectbox(t("data.consent_column"), columns, key="data_consent_column", index=None,
                          placeholder=t("data.choose"))
    return f"column:{column}" if column else None


def _field_label(name: str, required: bool) -> str:
    return f"{t(f'data.field.{name}')} · `{name}`" + (" \\*" if required else "")


def _mapping_for_file(i: int, f: SavedFile, frame: pd.DataFrame) -> dict[str, Any] | None:
    """One file's entry of the mapping: its table and the column feeding each field."""
    with st.expander(t("data.mapping_file", file=plain_markdown(f.name)), expanded=True):
        columns = list(frame.columns)
        guess = table_for_file(f.name, columns)
        tables = list(GENERIC_LAYOUTS)
        table = st.selectbox(t("data.mapping_table"), tables, key=f"data_map_table_{i}",
                             index=tables.index(guess) if guess else None, placeholder=t("data.choose"),
                             format_func=lambda name: t(f"data.table.{name}"))
        st.dataframe(frame.head(5), hide_index=True, key=f"data_preview_{i}")
        if table is None:
            st.warning(t("data.mapping_pick_table", file=plain_markdown(f.name)))
            return None
        proposal = propose_mapping(columns, table)
        chosen: dict[str, str | None] = {}
        options = [NOT_IN_FILE, *columns]
        grid = st.columns(3)
        for n, field in enumerate(GENERIC_LAYOUTS[table]):
            proposed = proposal.get(field.name)
            value = grid[n % 3].selectbox(
                _field_label(field.name, field.required), options, key=f"data_map_{i}_{table}_{field.name}",
                index=options.index(proposed) if proposed in options else 0,
                format_func=lambda c: c if c else t("data.not_in_file"),
            )
            chosen[field.name] = value or None
        missing = [name for name, column in chosen.items() if column is None and any(
            fl.name == name and fl.required for fl in GENERIC_LAYOUTS[table])]
        if missing:
            st.warning(t("data.mapping_missing", file=plain_markdown(f.name), fields=", ".join(missing)))
            return None
        # glob.escape: a name holding [ ] or * is matched as itself by the engine's pattern.
        return {"file": glob.escape(f.name), "table": table, "columns": chosen}


def import_form() -> ImportRequest | None:
    """The upload widget and the choices; None until the files and choices are complete."""
    uploads = st.file_uploader(t("data.upload"), type=ACCEPTED_SUFFIXES, accept_multiple_files=True,
                               key="data_upload", help=t("data.upload_help"))
    if not uploads:
        st.info(t("data.no_files"))
        return None
    files = save_uploads(list(uploads))
    frames = _previews(files)
    if len(frames) < len(files):
        return None
    _default_preset(files, frames)
    presets = list(PRESETS)
    preset = st.selectbox(t("data.preset_label"), presets, key="data_preset",
                          format_func=lambda p: t(f"data.preset.{p}"), help=t("data.preset_help"))
    consent = _consent(frames)
    pseudonymise = False
    if preset == "shopify":
        pseudonymise = st.checkbox(t("data.pseudonymise"), key="data_pseudonymise", help=t("data.pseudonymise_help"))
    mapping: list[dict[str, Any]] | None = None
    if preset == "generic":
        st.subheader(t("data.mapping_title"))
        st.caption(t("data.mapping_intro"))
        entries = [_mapping_for_file(i, f, frames[f.file_id]) for i, f in enumerate(files)]
        if any(e is None for e in entries):
            return None
        mapping = [e for e in entries if e is not None]
    else:
        for i, f in enumerate(files):
            with st.expander(t("data.preview_file", file=plain_markdown(f.name))):
                st.dataframe(frames[f.file_id], hide_index=True, key=f"data_preview_{i}")
    if consent is None:
        return None
    return ImportRequest(tuple(files), str(preset), consent, bool(pseudonymise),
                         json.dumps(mapping, sort_keys=True) if mapping else None)


def _progress_bar(text_key: str) -> tuple[HeldProgress, ProgressCallback]:
    """A progress bar and the engine callback that moves it (steps done, with row counts)."""
    bar = HeldProgress(st.progress(0.0, text=t(text_key)))

    def report(done: int, total: int, message: str) -> None:
        bar.show(done / max(total, 1), lambda: t("data.progress", done=done, total=total, message=message))
    return bar, report


def _rejected(e: PersonaStudioError) -> None:
    st.error(t("data.rejected", message=str(e)))
    st.info(t("data.unchanged"))


def check_and_import(request: ImportRequest) -> None:
    """The check button, the report of the check, the skip-or-stop choice, the import."""
    signature = request.signature()
    if st.button(t("data.check"), key="data_check", help=t("data.check_help"), type="secondary"):
        st.session_state.pop(DONE_KEY, None)
        bar, progress = _progress_bar("data.checking")
        try:
            report = check_files(data.cursor(), request.paths, request.preset, mapping=request.mapping,
                                 consent=request.consent, pseudonymise=request.pseudonymise, progress=progress)
            st.session_state[CHECK_KEY] = (signature, report, None)
        except ImportRejected as e:
            st.session_state[CHECK_KEY] = (signature, None, str(e))
        bar.bar.empty()  # a check stops before the write steps: its bar would stay half full
        bar.release()  # a check writes nothing: a click meanwhile may rerun the page now
    checked = st.session_state.get(CHECK_KEY)
    if checked is None:
        return
    checked_signature, report, error = checked
    if checked_signature != signature:
        st.info(t("data.recheck"))
        return
    if error is not None:
        _rejected(ImportRejected(error))
        return
    assert isinstance(report, ImportReport)
    if report.problems:
        st.warning(t("data.check_problems", n=f"{sum(p.count for p in report.problems):,}"))
    else:
        st.success(t("data.check_ok"))
    render_report(report, key="data_check_report")
    choice = "skip"
    if report.problems:
        choice = st.radio(t("data.soft_choice"), ["skip", "stop"], key="data_soft_choice", index=None,
                          format_func=lambda c: t(f"data.soft.{c}"))
        if choice is None:
            return
        if choice == "stop":
            st.info(t("data.stopped"))
            return
    summary = data.shop_summary(data.data_version())
    if not summary.is_empty:
        st.caption(t("data.replaces", customers=f"{summary.customers:,}", orders=f"{summary.orders:,}"))
    if st.button(t("data.import"), key="data_import", type="primary", help=t("data.import_help")):
        _run_import(request, "skip" if report.problems else "stop")


def _run_import(request: ImportRequest, on_soft_errors: str) -> None:
    bar, progress = _progress_bar("data.importing")
    report: ImportReport | None = None
    error: PersonaStudioError | None = None
    try:
        report = import_files(data.cursor(), request.paths, request.preset, mapping=request.mapping,
                              consent=request.consent, on_soft_errors=on_soft_errors, progress=progress,
                              pseudonymise=request.pseudonymise)
    except PersonaStudioError as e:
        # Raised before or by the one write transaction (features after it never raise):
        # the shop is as it was.
        error = e
    else:
        # Before anything that may stop the page: every cached result is stale now.
        data.after_shop_change()
        st.session_state.pop(CHECK_KEY, None)
        st.session_state[DONE_KEY] = report
    bar.release()
    if error is not None:
        _rejected(error)
        return
    st.rerun()


def last_import() -> None:
    """The report of the import this session just made (shown after the rerun it asks)."""
    report = st.session_state.get(DONE_KEY)
    if isinstance(report, ImportReport):
        st.success(t("data.imported", id=report.import_id, rows=f"{sum(report.rows_written.values()):,}",
                     seconds=f"{report.seconds:.1f}"))
        render_report(report, key="data_import_report")
        st.divider()  # the report above, a next import below
