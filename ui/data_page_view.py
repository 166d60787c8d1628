"""Data page rendering: the import report, the data-quality summary, past imports, erasures.

Only shaping for display happens here (column names in the reader's language, lists
joined); every figure comes from persona_engine.ingest.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from persona_engine.ingest import DataQuality, ImportReport
from ui import fmt
from ui.data_page_data import consent_text
from ui.i18n import t


def _word(group: str, code: str) -> str:
    """A code (table, preset, status) in the reader's language, the code itself if unknown."""
    key = f"data.{group}.{code}"
    text = t(key)
    return code if text == key else text


def problem_word(code: str) -> str:
    """A soft problem's code (not_parsed:timestamp, missing:id, unknown_status...) in words."""
    kind, _, detail = code.partition(":")
    return _word("problem", f"{kind}_{detail}" if kind == "not_parsed" else kind)


def table_word(name: str) -> str:
    """A table's name in the reader's language (the name itself when the catalogue has none)."""
    return _word("table", name)


def _counts(*labels: str) -> dict[str, object]:
    """Column settings showing counts with thousands separators (541,909, not 541909)."""
    return {label: st.column_config.NumberColumn(format="localized") for label in labels}


def render_report(report: ImportReport, key: str) -> None:
    """What an import did (or, for a check, would do): counts, problems, rules, notes."""
    written = sum(report.rows_written.values())
    tiles = st.columns(4)
    tiles[0].metric(t("data.rows_read"), fmt.number(report.total_rows_read), border=True)
    tiles[1].metric(t("data.rows_written" if report.committed else "data.rows_to_write"), fmt.number(written),
                    border=True, help=t("data.rows_written_help"))
    tiles[2].metric(t("data.rows_skipped" if report.committed else "data.rows_bad"), fmt.number(report.rows_skipped),
                    border=True)
    tiles[3].metric(t("data.seconds"), fmt.number(report.seconds, 1), border=True)
    consent = consent_text(report.consent)
    if consent:
        st.caption(consent)
    if report.problems:
        st.markdown(f"**{t('data.problems_title')}**")
        problems = pd.DataFrame({
            t("data.col_file"): [p.file for p in report.problems],
            t("data.col_column"): [p.column or "" for p in report.problems],
            t("data.col_problem"): [problem_word(p.problem) for p in report.problems],
            t("data.col_rows"): [p.count for p in report.problems],
            t("data.col_examples"): [" · ".join(p.examples) for p in report.problems],
            t("data.col_expected"): [p.expected for p in report.problems],
        })
        st.dataframe(problems, hide_index=True, key=f"{key}_problems", column_config=_counts(t("data.col_rows")))
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{t('data.tables_title')}**")
        st.dataframe(pd.DataFrame({t("data.col_table"): [table_word(n) for n in report.rows_written],
                                   t("data.col_rows"): list(report.rows_written.values())}),
                     hide_index=True, key=f"{key}_tables", column_config=_counts(t("data.col_rows")))
    with right:
        st.markdown(f"**{t('data.sources_title')}**")
        st.dataframe(pd.DataFrame({t("data.col_file"): list(report.rows_read),
                                   t("data.col_rows"): list(report.rows_read.values())}),
                     hide_index=True, key=f"{key}_sources", column_config=_counts(t("data.col_rows")))
    if report.rules:
        with st.expander(t("data.rules_title")):
            st.dataframe(pd.DataFrame({t("data.col_rule"): list(report.rules),
                                       t("data.col_rows"): list(report.rules.values())}),
                         hide_index=True, key=f"{key}_rules", column_config=_counts(t("data.col_rows")))
    for note in report.notes:
        st.caption(t("data.note", note=note))
    if report.committed:
        st.caption(t("data.features", status=report.features))


def quality_panel(quality: DataQuality, missing_codes: list[str]) -> None:
    """Rows and dates per table, missing values per column, customers without consent."""
    if quality.tables.empty or int(quality.tables["rows"].sum()) == 0:
        st.info(t("data.empty_shop"))
        return
    tiles = st.columns(3)
    tiles[0].metric(t("data.customers_total"), fmt.number(quality.customers), border=True)
    share = quality.customers_without_consent / quality.customers if quality.customers else None
    tiles[1].metric(t("data.without_consent"), fmt.number(quality.customers_without_consent), border=True,
                    help=t("data.without_consent_help"))
    tiles[2].metric(t("data.without_consent_share"), fmt.percent(share), border=True)
    if missing_codes:
        st.markdown(f"**{t('data.cannot_tell_title')}**")
        st.markdown("\n".join(f"- {t(f'data.missing.{code}')}" for code in missing_codes))
    tables = quality.tables
    st.dataframe(
        pd.DataFrame({
            t("data.col_table"): [table_word(n) for n in tables["table"]],
            t("data.col_rows"): tables["rows"],
            t("data.col_first"): tables["first"],
            t("data.col_last"): tables["last"],
        }),
        hide_index=True, key="data_quality_tables",
        column_config={t("data.col_first"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                       t("data.col_last"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                       **_counts(t("data.col_rows"))},
    )
    names = [n for n, rows in zip(tables["table"], tables["rows"], strict=True) if rows]
    picked = st.selectbox(t("data.quality_pick"), names, key="data_quality_table", format_func=table_word)
    if picked is None:
        return
    missing = quality.missing[quality.missing["table"] == picked]
    label = t("data.col_missing_share")
    st.dataframe(
        pd.DataFrame({t("data.col_column"): missing["column"], t("data.col_missing"): missing["missing"],
                      label: missing["missing_share"]}),
        hide_index=True, key="data_quality_missing",
        column_config={label: st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
                       **_counts(t("data.col_missing"))},
    )


def imports_panel(imports: pd.DataFrame) -> None:
    """Past imports, newest first."""
    if imports.empty:
        st.info(t("data.history_empty"))
        return
    st.dataframe(
        pd.DataFrame({
            t("data.col_import"): imports["import_id"],
            t("data.col_started"): imports["started_at"],
            t("data.col_finished"): imports["finished_at"],
            t("data.col_preset"): [_word("preset", p) for p in imports["preset"]],
            # The files' names: an upload's path is a temporary folder nobody needs to see.
            t("data.col_files"): [", ".join(Path(f).name for f in files) for files in imports["files"]],
            t("data.col_consent"): [consent_text(c, markdown=False) or c for c in imports["consent"]],
            t("data.col_rows_read"): imports["rows_read"],
            t("data.col_status"): [_word("status", s) for s in imports["status"]],
        }),
        hide_index=True, key="data_imports_table",
        column_config={t("data.col_started"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                       t("data.col_finished"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                       **_counts(t("data.col_rows_read"))},
    )


def erasures_panel(erasures: pd.DataFrame) -> None:
    """The erasure log: when, by whom, how many rows (never whose)."""
    st.subheader(t("data.erasures_title"))
    st.caption(t("data.erasures_intro"))
    if erasures.empty:
        st.info(t("data.erasures_empty"))
        return
    st.dataframe(
        pd.DataFrame({
            t("data.col_erased_at"): erasures["erased_at"],
            t("data.col_erased_by"): erasures["erased_by"],
            t("data.col_rows_removed"): erasures["rows_removed"],
        }),
        hide_index=True, key="data_erasures_table",
        column_config={t("data.col_erased_at"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                       **_counts(t("data.col_rows_removed"))},
    )
