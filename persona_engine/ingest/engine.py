"""Run an import: find and sniff the files, stage and check them, then replace the shop.

Everything before the write only creates TEMP tables on the caller's cursor; the write
(empty the shop, insert, record the import, settings) is one transaction. A rejection at
any point leaves the database exactly as it was.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from persona_engine.errors import ImportRejected, PersonaStudioError
from persona_engine.ingest import generic, online_retail, shopify
from persona_engine.ingest.context import CANONICAL_TABLES, CANONICAL_TABLES_SQL, BuildContext
from persona_engine.ingest.mapping import MappingInput, load_mapping
from persona_engine.ingest.parse import install_macros, match_columns
from persona_engine.ingest.report import ImportReport, ProgressCallback, SoftProblemsFound
from persona_engine.ingest.sources import (
    SourceFile,
    StagedFile,
    TempFiles,
    detect_encoding,
    expand_inputs,
    scan_file,
    sniff_file,
    stage_file,
)
from persona_engine.ingest.writer import (
    check_keys,
    install_id_macro,
    replace_shop,
    sample_work_counts,
    sample_work_note,
    staged_counts,
)
from persona_engine.store import fetch_df, transaction

PRESETS: dict[str, Callable[[BuildContext], None]] = {
    "generic": generic.build,
    "online-retail": online_retail.build,
    "shopify": shopify.build,
}
SOFT_ERROR_CHOICES = ("stop", "skip")


def parse_consent(consent: str) -> str:
    """Validate a consent declaration: all, none or column:NAME."""
    value = consent.strip()
    if value in ("all", "none"):
        return value
    if value.startswith("column:") and value[len("column:"):].strip():
        return "column:" + value[len("column:"):].strip()
    raise ImportRejected(
        f"consent declaration {consent!r} is not understood; expected all, none or column:NAME "
        "(the column of the file that holds each customer's yes/no)"
    )


def guess_preset(header: Sequence[str]) -> str:
    """The preset whose required columns a file's header has: online-retail, shopify, else generic.

    For a form's default choice; the import itself still checks every column.
    """
    for name, fields in (("online-retail", online_retail.FIELDS), ("shopify", shopify.FIELDS)):
        matched = match_columns(header, fields)
        if all(f.name in matched for f in fields if f.required):
            return name
    return "generic"


def _sniff_all(paths: Sequence[Path], report: ImportReport) -> tuple[list[SourceFile], list[str]]:
    sources: list[SourceFile] = []
    hashes: list[str] = []
    seen: dict[str, str] = {}
    for path in paths:
        source = sniff_file(path)
        source.sha256, valid_utf8 = scan_file(path)
        if source.kind == "csv" and source.encoding == "utf-8" and not valid_utf8:
            # The first megabyte was UTF-8, a later byte is not: decide on the whole file.
            source.encoding = detect_encoding(path, whole_file=True)
        if source.sha256 in seen:
            # The same export twice (renamed, or in two folders) must not count twice.
            report.notes.append(f"{path.name} has the same content as {seen[source.sha256]}: read once")
            continue
        seen[source.sha256] = path.name
        sources.append(source)
        hashes.append(source.sha256)
    return sources, hashes


def _drop_temp_objects(cur: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    # A preset may turn a staging table into a view; drop each name as what it is.
    views = {r[0] for r in cur.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()}
    for name in names:
        # Every name here was created by this module from code constants.
        kind = "VIEW" if name in views else "TABLE"
        cur.execute(f"DROP {kind} IF EXISTS {name}")


def _run_features(cur: duckdb.DuckDBPyConnection) -> str:
    # The features module is written separately; an import must work with or without it.
    if importlib.util.find_spec("persona_engine.features") is None:
        return "skipped: the features module is not installed yet"
    from persona_engine.features import compute_customer_features

    try:
        written = compute_customer_features(cur)
    except (PersonaStudioError, duckdb.Error) as e:
        return f"failed ({e}); run `python -m persona_engine features` once fixed"
    return f"computed for {written:,} customers"


def import_files(
    cur: duckdb.DuckDBPyConnection,
    files: Sequence[str | Path],
    preset: str,
    mapping: MappingInput = None,
    consent: str = "all",
    on_soft_errors: str = "stop",
    progress: ProgressCallback | None = None,
    pseudonymise: bool = False,
    dry_run: bool = False,
    compute_features: bool = True,
) -> ImportReport:
    """Import shop files with a preset, replacing the shop's data; returns the report.

    files: paths, folders (their .csv/.tsv/.txt[.gz]/.parquet/.xlsx files) or glob patterns.
    preset: generic, online-retail or shopify.
    mapping: generic preset only; a mapping file path, a dict
        {"table": "orders", "columns": {"order_id": "Invoice", ...}, "file": "orders*.csv"}
        or a list of such dicts.
    consent: all | none | column:NAME (recorded in imports and shop_settings "consent").
    on_soft_errors: "stop" raises SoftProblemsFound (an ImportRejected carrying the
        report) when any row has a problem; "skip" leaves those rows out and reports them.
    progress: called with (steps done, total steps, what was done, with row counts).
    pseudonymise: shopify preset: customers keyed by the SHA-256 of their email, no names.
    dry_run: check everything and return the report without writing (see check_files).
    compute_features: recompute customer features after the import (when the
        features module exists; the report says when it was skipped).

    Replacing the generated sample shop (shop_settings source = sample) also removes the
    sample's personas, clustering runs and actions, which describe generated customers;
    replacing an imported shop keeps them, to re-evaluate them on the fresh data.

    Raises ImportRejected (one line naming the file, line or column and what was
    expected) on a missing column, unreadable dates, an unknown encoding, conflicting
    duplicate ids, an empty file or a file of another format; the database is then
    unchanged.
    """
    started = time.perf_counter()
    started_at = datetime.now()
    if preset not in PRESETS:
        raise ImportRejected(f"unknown preset {preset!r}; expected one of: {', '.join(PRESETS)}")
    if on_soft_errors not in SOFT_ERROR_CHOICES:
        raise ImportRejected(f"on_soft_errors must be stop or skip, not {on_soft_errors!r}")
    declared = parse_consent(consent)
    mappings = load_mapping(mapping)
    if mappings and preset != "generic":
        raise ImportRejected("a column mapping applies to the generic preset only")
    paths = expand_inputs(files)
    report = ImportReport(
        preset=preset, files=[p.name for p in paths], consent=declared,
        pseudonymised=pseudonymise, on_soft_errors=on_soft_errors,
    )
    steps = 5  # sniff, one per source, checks, write, features (known once staged)
    done = 0

    def step(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, steps), steps, message)

    sources, hashes = _sniff_all(paths, report)
    step(f"checked {len(paths)} file(s)")
    temp = TempFiles()
    ctx = BuildContext(cur=cur, staged=[], report=report, consent=declared,
                       pseudonymise=pseudonymise, mapping=mappings)
    try:
        install_macros(cur)
        install_id_macro(cur)
        cur.execute(CANONICAL_TABLES_SQL)
        staged: list[StagedFile] = []
        for i, source in enumerate(sources):
            parts = stage_file(cur, source, len(staged), ctx.temp(f"ingest_sheet_{i}"), temp)
            for part in parts:
                if part.from_sql.startswith("ingest_sheet_"):
                    ctx.temp(part.from_sql)
            staged.extend(parts)
        ctx.staged = staged
        steps = 4 + len(staged)
        ctx.progress = step
        PRESETS[preset](ctx)
        report.rows_skipped = sum(ctx.bad_rows.values())
        step(f"checked {report.total_rows_read:,} rows: {len(report.problems)} problem(s)")
        check_keys(cur)
        if report.problems and on_soft_errors == "stop" and not dry_run:
            first = report.problems[0]
            more = len(report.problems) - 1
            report.rows_written = {}
            raise SoftProblemsFound(
                first.message + (f" ({more} other problem(s))" if more else "")
                + "; fix the file, or choose to skip bad rows to import the rest",
                report,
            )
        if dry_run:
            # Counting the staged rows costs a pass over them: dry runs only.
            report.rows_written = staged_counts(cur)
            note = sample_work_note(sample_work_counts(cur), done=False)
            if note:
                report.notes.append(note)
            report.seconds = time.perf_counter() - started
            return report
        try:
            with transaction(cur):
                report.import_id = replace_shop(
                    cur, report, [str(p) for p in paths], hashes, started_at)
        except duckdb.TransactionException as e:
            # Another import or a sample generation wrote the shop meanwhile; ours was
            # rolled back whole.
            raise ImportRejected(
                "the shop was changed by another import or generation while this one ran; "
                "nothing was written: import again"
            ) from e
        report.committed = True
        step(f"wrote {sum(report.rows_written.values()):,} rows")
    finally:
        _drop_temp_objects(cur, [*ctx.temp_tables, *CANONICAL_TABLES])
        temp.cleanup()
    if compute_features:
        report.features = _run_features(cur)
        step(f"customer features {report.features}")
    report.seconds = time.perf_counter() - started
    return report


def check_files(
    cur: duckdb.DuckDBPyConnection,
    files: Sequence[str | Path],
    preset: str,
    mapping: MappingInput = None,
    consent: str = "all",
    progress: ProgressCallback | None = None,
    pseudonymise: bool = False,
) -> ImportReport:
    """Run every check of an import without writing: the report a user decides on.

    Soft problems are listed (with counts and first examples), not raised, so a UI can
    show them and ask "skip these rows or stop?"; hard problems raise ImportRejected as
    import_files does. rows_written holds what the import would write.
    """
    return import_files(
        cur, files, preset, mapping=mapping, consent=consent, on_soft_errors="skip",
        progress=progress, pseudonymise=pseudonymise, dry_run=True, compute_features=False,
    )


def list_imports(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Past imports, newest first.

    Columns: import_id, started_at, finished_at, preset, files, consent, rows_read, status.
    """
    return fetch_df(
        cur,
        "SELECT import_id, started_at, finished_at, preset, files, consent, rows_read, status "
        "FROM imports ORDER BY import_id DESC",
    )
